"""Contracted institutions (特約機構) and their contract periods."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from flask_babel import gettext
from flask_babel import lazy_gettext as _l
from sqlalchemy import (
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    String,
    event,
    exists,
    func,
    select,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from core.data import rules
from models.base import AppModel, AuditColumnsMixin, DateRangeMixin, LabelledEnum
from models.registry.reference import County, InstitutionLevel


class InstitutionKind(LabelledEnum):
    """What an institution is (A1): a medical institution (醫事機構, always with an NHI code and
    a level), or one of the approved non-hospital institutions of the addiction programme,
    which may have no NHI code. Prosecutors' offices and NGOs are no kind of institution here."""

    MEDICAL = "medical", _l("Medical institution")
    PSYCHOTHERAPY_CLINIC = "psychotherapy_clinic", _l("Psychotherapy clinic")
    SOCIAL_WORK_OFFICE = "social_work_office", _l("Social-worker office")


#: Prefix of the system's own registry codes, never a digit: no registry code can pass for
#: an NHI code (10 digits).
REGISTRY_CODE_PREFIX = "R"


@dataclass(frozen=True)
class CodeForKind:
    """A record rule: a medical institution has an NHI code and a level (A1); the cessation
    programme's paths (forms, uploads, applications) keep requiring the code."""

    start: str = "kind"
    end: str = "nhi_code"

    def error(self, values: dict) -> tuple[str, str] | None:
        if (values.get(self.start) or InstitutionKind.MEDICAL.value) == InstitutionKind.MEDICAL.value:
            if not values.get(self.end):
                return self.end, gettext("A medical institution must have its NHI institution code.")
        return None

    def check_sql(self) -> str:
        return "kind <> 'medical' OR (nhi_code IS NOT NULL AND level_id IS NOT NULL)"


@dataclass(frozen=True)
class LevelForKind:
    """A record rule: a medical institution has its level (the bulletin's levels, A1)."""

    start: str = "kind"
    #: The level as a form sets it (the relation) or a seed does (the column).
    end: str = "level_given"

    def error(self, values: dict) -> tuple[str, str] | None:
        if (values.get(self.start) or InstitutionKind.MEDICAL.value) == InstitutionKind.MEDICAL.value:
            if not values.get(self.end):
                return "level", gettext("A medical institution must have its level.")
        return None


INSTITUTION_RULES = {
    # Not required: left out (an older client, a bulk insert) it is a medical institution.
    "kind": rules.enum(_l("Institution type"), InstitutionKind, required=False),
    "nhi_code": rules.nhi_code(_l("NHI institution code"), required=False),
    "name": rules.text(_l("Institution name"), required=True, max_length=100),
    "address": rules.text(_l("Address"), max_length=200),
    "phone": rules.text(_l("Phone"), max_length=30),
}


class Institution(AuditColumnsMixin, AppModel):
    """An institution: a medical one by its 10-digit NHI institution code; an approved
    non-hospital one (A1) by that code if it has one, else by the registry code the system
    gives it ('R' + 9 digits, never a fake NHI code)."""

    __tablename__ = "institution"
    __label__ = _l("Institution")
    #: What every path accepts (core/data/rules.py); the CHECK constraints below back it.
    __field_rules__ = INSTITUTION_RULES
    __record_rules__ = (CodeForKind(), LevelForKind())
    __table_args__ = (
        Index("ix_institution_county_level", "county_id", "level_id", "id"),
        Index("ix_institution_level_code", "level_id", "nhi_code"),
        Index("ix_institution_name", "name"),
        *rules.check_constraints("institution", INSTITUTION_RULES),
        CheckConstraint(CodeForKind().check_sql(), name="ck_institution_medical_code"),
        CheckConstraint(
            "nhi_code IS NOT NULL OR registry_code IS NOT NULL", name="ck_institution_code"
        ),
        {"extend_existing": True, "sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    nhi_code: Mapped[str | None] = mapped_column(String(10), unique=True)
    #: The system's code of an institution without an NHI code (see generate_registry_code).
    registry_code: Mapped[str | None] = mapped_column(String(10), unique=True)
    kind: Mapped[str] = mapped_column(
        String(30), nullable=False, default=InstitutionKind.MEDICAL.value,
        server_default=InstitutionKind.MEDICAL.value,
    )  # fmt: skip
    name: Mapped[str] = mapped_column(String(100), nullable=False)
    #: Medical institutions only (the bulletin's levels); a non-hospital one has none.
    level_id: Mapped[int | None] = mapped_column(ForeignKey("institution_level.id"))
    county_id: Mapped[int] = mapped_column(ForeignKey("county.id"), nullable=False)
    address: Mapped[str | None] = mapped_column(String(200))
    phone: Mapped[str | None] = mapped_column(String(30))

    # "unnested": when an outer join reaches an institution, its level and county chain
    # flat after it rather than nest, which SQLite would materialise for every request.
    # A non-hospital institution has no level: an outer join keeps it in every list.
    level: Mapped[InstitutionLevel | None] = relationship(lazy="joined")
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

    @property
    def level_given(self) -> bool:
        """Whether a level is set, by relation or by id (LevelForKind reads it before a flush)."""
        return self.level is not None or self.level_id is not None

    @property
    def code(self) -> str:
        """The code the institution is known by: its NHI code, else its registry code."""
        return self.nhi_code or self.registry_code or ""

    @property
    def kind_label(self) -> str:
        return rules.enum_label(InstitutionKind, self.kind)

    def __str__(self) -> str:
        return f"{self.code} {self.name}"


def next_registry_code(connection) -> str:
    """The next free registry code: 'R' and 9 digits, one more than the highest given."""
    highest = connection.scalar(
        select(func.max(Institution.registry_code)).where(
            Institution.registry_code.like(f"{REGISTRY_CODE_PREFIX}%")
        )
    )
    number = int(highest[1:]) + 1 if highest else 1
    return f"{REGISTRY_CODE_PREFIX}{number:09d}"


@event.listens_for(Institution, "before_insert")
def _give_registry_code(mapper, connection, target) -> None:
    # Every ORM path (form, REST, seed) gets the code from here, so none can invent one;
    # the unique constraint refuses a concurrent duplicate.
    if not target.nhi_code and not target.registry_code:
        target.registry_code = next_registry_code(connection)


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
