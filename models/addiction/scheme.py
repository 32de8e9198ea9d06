"""Subsidy schemes (補助方案, A9, A10): central ones owned by the Ministry, local ones by a
county bureau; one row per scheme, year and version. A published version is frozen: a change
makes the next version, which applies from its own date (domain/addiction/schemes.py)."""

from __future__ import annotations

import datetime as dt

from flask_babel import lazy_gettext as _l
from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
    or_,
    select,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from core.dates import roc_year, to_roc
from models.base import AppModel, AuditColumnsMixin, LabelledEnum
from models.registry.reference import County


class SchemeStatus(LabelledEnum):
    """A scheme version is drafted, then published (and frozen)."""

    DRAFT = "draft", _l("Draft")
    PUBLISHED = "published", _l("Published")


class SchemeSubstance(LabelledEnum):
    """Which cases a scheme pays for (a case treated for both matches both)."""

    DRUG = "drug", _l("Drug addiction")
    ALCOHOL = "alcohol", _l("Alcohol addiction")


class SubsidyScheme(AuditColumnsMixin, AppModel):
    """One version of a scheme for one year: owner, cap per person (adults, minors), budget."""

    __tablename__ = "subsidy_scheme"
    __label__ = _l("Subsidy scheme")
    __table_args__ = (
        UniqueConstraint("code", "year", "version", name="uq_subsidy_scheme_version"),
        CheckConstraint("cap_adult >= 0", name="ck_scheme_cap_adult"),
        CheckConstraint("cap_minor IS NULL OR cap_minor >= 0", name="ck_scheme_cap_minor"),
        CheckConstraint("budget >= 0", name="ck_scheme_budget"),
        CheckConstraint("version >= 1", name="ck_scheme_version"),
        CheckConstraint("year >= 2000 AND year <= 2200", name="ck_scheme_year"),
        CheckConstraint("status IN ('draft', 'published')", name="ck_scheme_status"),
        CheckConstraint("substance IN ('drug', 'alcohol')", name="ck_scheme_substance"),
        CheckConstraint("claim_period IN ('month', 'quarter')", name="ck_scheme_claim_period"),
        Index("ix_subsidy_scheme_year", "year", "county_id"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    #: The scheme's code, the same in every year and version (e.g. MOHW-DRUG, TPE-ALC).
    code: Mapped[str] = mapped_column(String(30), nullable=False)
    name: Mapped[str] = mapped_column(String(100), nullable=False)
    #: None: a central scheme (the Ministry's); else the county whose bureau owns it.
    county_id: Mapped[int | None] = mapped_column(ForeignKey("county.id"))
    substance: Mapped[str] = mapped_column(String(10), nullable=False)
    #: The subsidy year (Gregorian); a line belongs to its execution date's year (A8).
    year: Mapped[int] = mapped_column(Integer, nullable=False)
    version: Mapped[int] = mapped_column(Integer, nullable=False, default=1)
    #: The first day this version applies (version 1: 1 January of the year).
    effective_from: Mapped[dt.date] = mapped_column(Date, nullable=False)
    status: Mapped[str] = mapped_column(String(10), nullable=False, default=SchemeStatus.DRAFT.value)
    #: NT$ per person per year within the cap, all institutions together (A9).
    cap_adult: Mapped[int] = mapped_column(Integer, nullable=False)
    #: NT$ for a person under `minor_age` on the execution date; empty: the adults' cap.
    cap_minor: Mapped[int | None] = mapped_column(Integer)
    minor_age: Mapped[int] = mapped_column(Integer, nullable=False, default=18)
    #: NT$ for the year, every person together.
    budget: Mapped[int] = mapped_column(Integer, nullable=False)
    #: How often institutions claim it (A11): "month", or "quarter" where the scheme says so.
    claim_period: Mapped[str] = mapped_column(String(10), nullable=False, default="month", server_default="month", info={"label": _l("Claim period")})

    county: Mapped[County | None] = relationship()
    items: Mapped[list[SchemeItem]] = relationship(
        back_populates="scheme", cascade="all, delete-orphan", order_by="SchemeItem.code"
    )

    @classmethod
    def scope_clause(cls, scope):
        """Central schemes for everyone with a scope; a local one in its county."""
        if scope.national:
            return cls.id.is_not(None)
        if not scope.has_any:
            return cls.id.is_(None)
        return or_(cls.county_id.is_(None), scope.county_filter(cls.county_id))

    @property
    def central(self) -> bool:
        return self.county_id is None

    @property
    def published(self) -> bool:
        return self.status == SchemeStatus.PUBLISHED.value

    def cap_for_age(self, age: int) -> int:
        if self.cap_minor is not None and age < self.minor_age:
            return self.cap_minor
        return self.cap_adult

    def __str__(self) -> str:
        return f"{self.name} {roc_year(self.year)} v{self.version}（{to_roc(self.effective_from)}）"


class SchemeItem(AuditColumnsMixin, AppModel):
    """A subsidy item of a scheme version: code, amount, inside or outside the cap, what justifies it."""

    __tablename__ = "scheme_item"
    __label__ = _l("Subsidy item")
    __table_args__ = (
        UniqueConstraint("scheme_id", "code", name="uq_scheme_item_code"),
        CheckConstraint("unit_amount >= 0 AND unit_amount <= 1000000", name="ck_scheme_item_amount"),
        # The case-management fee never counts toward the cap (A9).
        CheckConstraint("NOT (case_management_fee AND within_cap)", name="ck_scheme_item_cm_fee"),
        Index("ix_scheme_item_scheme", "scheme_id", "code"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    scheme_id: Mapped[int] = mapped_column(ForeignKey("subsidy_scheme.id", ondelete="CASCADE"), nullable=False)
    code: Mapped[str] = mapped_column(String(30), nullable=False)
    name: Mapped[str] = mapped_column(String(100), nullable=False)
    unit_amount: Mapped[int] = mapped_column(Integer, nullable=False)
    within_cap: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True)
    #: 個案管理服務費: outside the cap, and an institution may add it without an order (A9).
    case_management_fee: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    #: Treatment kinds whose record that day justifies the item (A7), comma-separated codes.
    kinds: Mapped[str] = mapped_column(String(300), nullable=False)
    #: Professions the record's author must hold, comma-separated; empty: any who signed it.
    professions: Mapped[str | None] = mapped_column(String(200))
    #: Eligibility categories of the case that may claim it, comma-separated; empty: all.
    categories: Mapped[str | None] = mapped_column(String(200))

    scheme: Mapped[SubsidyScheme] = relationship(back_populates="items")

    @classmethod
    def scope_clause(cls, scope):
        return cls.scheme_id.in_(select(SubsidyScheme.id).where(SubsidyScheme.scope_clause(scope)))

    @staticmethod
    def split(text: str | None) -> frozenset[str]:
        return frozenset(p.strip() for p in (text or "").split(",") if p.strip())

    def __str__(self) -> str:
        return f"{self.code} {self.name}"
