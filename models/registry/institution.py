"""Contracted institutions (特約機構) and their contract periods."""

from __future__ import annotations

import datetime as dt

from flask_babel import lazy_gettext as _l
from sqlalchemy import ForeignKey, Index, Integer, String, exists
from sqlalchemy.orm import Mapped, mapped_column, relationship

from core.data import rules
from models.base import AppModel, AuditColumnsMixin, DateRangeMixin
from models.registry.reference import County, InstitutionLevel

INSTITUTION_RULES = {
    "nhi_code": rules.nhi_code(_l("NHI institution code")),
    "name": rules.text(_l("Institution name"), required=True, max_length=100),
    "address": rules.text(_l("Address"), max_length=200),
    "phone": rules.text(_l("Phone"), max_length=30),
}


class Institution(AuditColumnsMixin, AppModel):
    """A contracted institution, identified by its 10-digit NHI institution code."""

    __tablename__ = "institution"
    __label__ = _l("Institution")
    #: What every path accepts (core/data/rules.py); the CHECK constraints below back it.
    __field_rules__ = INSTITUTION_RULES
    __table_args__ = (
        Index("ix_institution_county_level", "county_id", "level_id", "id"),
        Index("ix_institution_level_code", "level_id", "nhi_code"),
        Index("ix_institution_name", "name"),
        *rules.check_constraints("institution", INSTITUTION_RULES),
        {"extend_existing": True, "sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    nhi_code: Mapped[str] = mapped_column(String(10), unique=True, nullable=False)
    name: Mapped[str] = mapped_column(String(100), nullable=False)
    level_id: Mapped[int] = mapped_column(ForeignKey("institution_level.id"), nullable=False)
    county_id: Mapped[int] = mapped_column(ForeignKey("county.id"), nullable=False)
    address: Mapped[str | None] = mapped_column(String(200))
    phone: Mapped[str | None] = mapped_column(String(30))

    # "unnested": when an outer join reaches an institution, its level and county chain
    # flat after it rather than nest, which SQLite would materialise for every request.
    level: Mapped[InstitutionLevel] = relationship(lazy="joined", innerjoin="unnested")
    county: Mapped[County] = relationship(lazy="joined", innerjoin="unnested")
    contracts: Mapped[list[ContractPeriod]] = relationship(
        back_populates="institution", cascade="all, delete-orphan", order_by="ContractPeriod.start_date"
    )

    @classmethod
    def scope_clause(cls, scope):
        return scope.institution_filter(cls.id)

    @classmethod
    def contracted_on(cls, day: dt.date):
        """Clause: the institution holds a contract covering `day` (e.g. 12/31 of a year)."""
        return exists().where(ContractPeriod.institution_id == cls.id, ContractPeriod.covering(day))

    @classmethod
    def contracted_at_year_end(cls, year: int):
        """Clause: contracted on 12/31 of the (Gregorian) year, as rule C9 counts it."""
        return cls.contracted_on(dt.date(year, 12, 31))

    def is_contracted_on(self, day: dt.date) -> bool:
        return any(c.covers(day) for c in self.contracts)

    def __str__(self) -> str:
        return f"{self.nhi_code} {self.name}"


CONTRACT_RULES = {
    "start_date": rules.date(_l("Start date"), required=True),
    "end_date": rules.date(_l("End date")),
}


class ContractPeriod(DateRangeMixin, AuditColumnsMixin, AppModel):
    """One contract period of an institution; it may start and end within the same year."""

    __tablename__ = "contract_period"
    __label__ = _l("Contract period")
    __field_rules__ = CONTRACT_RULES
    __record_rules__ = (rules.DatesInOrder("start_date", "end_date"),)
    __table_args__ = (
        DateRangeMixin.range_check("ck_contract_dates"),
        *rules.check_constraints("contract_period", CONTRACT_RULES),
        Index("ix_contract_institution_dates", "institution_id", "start_date", "end_date"),
        {"extend_existing": True, "sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    institution_id: Mapped[int] = mapped_column(
        ForeignKey("institution.id", ondelete="CASCADE"), nullable=False
    )
    institution: Mapped[Institution] = relationship(back_populates="contracts")

    @classmethod
    def scope_clause(cls, scope):
        return scope.institution_filter(cls.institution_id)

    def __str__(self) -> str:
        from core.dates import to_roc

        return f"{to_roc(self.start_date)} – {to_roc(self.end_date) or '…'}"
