"""Practitioners (醫事人員) and their service assignments to institutions."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from sqlalchemy import ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from core.data import rules
from core.validators import mask_personal_id
from models.base import AppModel, AuditColumnsMixin, DateRangeMixin, LabelledEnum
from models.registry.institution import Institution
from models.registry.person import PersonKind, PersonMixin


class Profession(LabelledEnum):
    """Profession of a practitioner providing cessation services."""

    PHYSICIAN = "physician", _l("Physician")
    DENTIST = "dentist", _l("Dentist")
    PHARMACIST = "pharmacist", _l("Pharmacist")
    NURSE = "nurse", _l("Nurse")
    PSYCHOLOGIST = "psychologist", _l("Psychologist")
    SOCIAL_WORKER = "social_worker", _l("Social worker")
    OTHER = "other", _l("Other")


PRACTITIONER_RULES = {
    "national_id": rules.personal_id(_l("National ID / resident certificate no.")),
    "name": rules.text(_l("Full name"), required=True, max_length=50),
    "profession": rules.enum(_l("Profession"), Profession),
    "licence_number": rules.text(_l("Licence number"), max_length=30),
}


class Practitioner(PersonMixin, AuditColumnsMixin, AppModel):
    """A practitioner; may serve at several institutions of different levels."""

    __tablename__ = "practitioner"
    __label__ = _l("Practitioner")
    __person_kind__ = PersonKind.PRACTITIONER.value
    __identity_fields__ = ("name",)
    #: What every path accepts (core/data/rules.py); the CHECK constraints below back it.
    __field_rules__ = PRACTITIONER_RULES
    __table_args__ = (
        Index("ix_practitioner_name", "name"),
        *PersonMixin.person_table_args("practitioner"),
        *rules.check_constraints("practitioner", PRACTITIONER_RULES),
        {"extend_existing": True, "sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    national_id: Mapped[str] = mapped_column(String(10), nullable=False)
    name: Mapped[str] = mapped_column(String(50), nullable=False)
    profession: Mapped[str] = mapped_column(String(20), nullable=False, index=True)
    licence_number: Mapped[str | None] = mapped_column(String(30), index=True)

    assignments: Mapped[list[ServiceAssignment]] = relationship(
        back_populates="practitioner", cascade="all, delete-orphan"
    )

    @classmethod
    def scope_clause(cls, scope):
        """Practitioners linked to an institution in scope: an assignment there (past or
        present), or registered there. `id IN (links)`, not a correlated EXISTS: for a
        county the EXISTS probed once per institution for every practitioner (~0.5 s a page)."""
        if scope.national:
            return scope.institution_filter(cls.id)  # true()
        return cls.linked_in_scope(scope)

    @property
    def national_id_masked(self) -> str:
        return mask_personal_id(self.national_id)

    @property
    def profession_label(self) -> str:
        return rules.enum_label(Profession, self.profession)

    def __str__(self) -> str:
        return f"{self.name}（{self.national_id_masked}）"


ASSIGNMENT_RULES = {
    "start_date": rules.date(_l("Start date"), required=True),
    "end_date": rules.date(_l("End date")),
}


class ServiceAssignment(DateRangeMixin, AuditColumnsMixin, AppModel):
    """A practitioner serving at an institution from a start date to an optional end date."""

    __tablename__ = "service_assignment"
    __label__ = _l("Service assignment")
    __field_rules__ = ASSIGNMENT_RULES
    __record_rules__ = (rules.DatesInOrder("start_date", "end_date"),)
    __table_args__ = (
        DateRangeMixin.range_check("ck_assignment_dates"),
        *rules.check_constraints("service_assignment", ASSIGNMENT_RULES),
        Index("ix_assignment_institution_start", "institution_id", "start_date", "id"),
        Index("ix_assignment_practitioner", "practitioner_id", "institution_id", "start_date"),
        Index("ix_assignment_start", "start_date", "id"),
        {"extend_existing": True, "sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    practitioner_id: Mapped[int] = mapped_column(
        ForeignKey("practitioner.id", ondelete="CASCADE"), nullable=False
    )
    institution_id: Mapped[int] = mapped_column(
        ForeignKey("institution.id", ondelete="CASCADE"), nullable=False
    )
    practitioner: Mapped[Practitioner] = relationship(back_populates="assignments")
    institution: Mapped[Institution] = relationship()

    #: An assignment links its practitioner to its institution (models/registry/person.py).
    __person_links__ = ((PersonKind.PRACTITIONER.value, "practitioner_id", "institution_id"),)

    @classmethod
    def scope_clause(cls, scope):
        return scope.institution_filter(cls.institution_id)

    def __str__(self) -> str:
        return f"{self.practitioner} @ {self.institution}"
