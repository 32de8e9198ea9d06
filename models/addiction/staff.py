"""Addiction-treatment staff (A14): a staff member is a practitioner of the registry
(models/registry/practitioner.py; employment is its service assignments), with licences by
profession and validity period, and training records."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from flask_babel import lazy_gettext as _l
from sqlalchemy import Date, ForeignKey, Index, Integer, Numeric, String, select
from sqlalchemy.orm import Mapped, mapped_column, relationship

from core.data import rules
from models.base import AppModel, AuditColumnsMixin, DateRangeMixin, LabelledEnum
from models.registry.practitioner import Practitioner


class StaffProfession(LabelledEnum):
    """The professions of the addiction programme's treatment staff."""

    PHYSICIAN = "physician", _l("Physician")
    PSYCHOLOGIST = "psychologist", _l("Psychologist")
    SOCIAL_WORKER = "social_worker", _l("Social worker")
    NURSE = "nurse", _l("Nurse")
    OCCUPATIONAL_THERAPIST = "occupational_therapist", _l("Occupational therapist")
    CASE_MANAGER = "case_manager", _l("Case manager")


LICENCE_RULES = {
    "profession": rules.enum(_l("Profession"), StaffProfession),
    "licence_number": rules.text(_l("Licence number"), required=True, max_length=30),
    "start_date": rules.date(_l("Valid from"), required=True),
    "end_date": rules.date(_l("Valid until")),
}


def _in_practitioner_scope(column, scope):
    return column.in_(select(Practitioner.id).where(Practitioner.scope_clause(scope)))


class StaffLicence(DateRangeMixin, AuditColumnsMixin, AppModel):
    """A practitioner's licence (or certificate, for case managers) in one profession, valid
    from a date to an optional end (A14); a record's author needs one valid that day (A5)."""

    __tablename__ = "staff_licence"
    __label__ = _l("Staff licence")
    __field_rules__ = LICENCE_RULES
    __record_rules__ = (rules.DatesInOrder("start_date", "end_date"),)
    __table_args__ = (
        DateRangeMixin.range_check("ck_staff_licence_dates"),
        *rules.check_constraints("staff_licence", LICENCE_RULES),
        Index("ix_staff_licence_practitioner", "practitioner_id", "profession", "start_date"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    practitioner_id: Mapped[int] = mapped_column(
        ForeignKey("practitioner.id", ondelete="CASCADE"), nullable=False
    )
    profession: Mapped[str] = mapped_column(String(30), nullable=False)
    licence_number: Mapped[str] = mapped_column(String(30), nullable=False)

    practitioner: Mapped[Practitioner] = relationship()

    @classmethod
    def scope_clause(cls, scope):
        return _in_practitioner_scope(cls.practitioner_id, scope)

    @property
    def profession_label(self) -> str:
        return rules.enum_label(StaffProfession, self.profession)

    def __str__(self) -> str:
        return f"{self.practitioner} {self.profession_label} {self.licence_number}"


class TrainingCategory(LabelledEnum):
    """Kinds of professional training counted toward the yearly hours (A14)."""

    ADDICTION = "addiction", _l("Addiction treatment")
    MENTAL_HEALTH = "mental_health", _l("Mental health")
    LAW_ETHICS = "law_ethics", _l("Law and ethics")
    OTHER = "other", _l("Other")


TRAINING_RULES = {
    "course_name": rules.text(_l("Course"), required=True, max_length=200),
    "organiser": rules.text(_l("Organiser"), required=True, max_length=100),
    "held_on": rules.date(_l("Date"), required=True),
    "category": rules.enum(_l("Training category"), TrainingCategory),
}


class Training(AuditColumnsMixin, AppModel):
    """One training a staff member attended: course, organiser, date, hours, certificate (A14)."""

    __tablename__ = "staff_training"
    __label__ = _l("Training record")
    __field_rules__ = TRAINING_RULES
    __table_args__ = (
        *rules.check_constraints("staff_training", TRAINING_RULES),
        Index("ix_staff_training_practitioner", "practitioner_id", "held_on"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    practitioner_id: Mapped[int] = mapped_column(
        ForeignKey("practitioner.id", ondelete="CASCADE"), nullable=False
    )
    course_name: Mapped[str] = mapped_column(String(200), nullable=False)
    organiser: Mapped[str] = mapped_column(String(100), nullable=False)
    held_on: Mapped[dt.date] = mapped_column(Date, nullable=False)
    hours: Mapped[Decimal] = mapped_column(Numeric(5, 1), nullable=False)
    category: Mapped[str] = mapped_column(String(20), nullable=False)
    #: The certificate as stored by core/files.py (random name), its type and SHA-256.
    certificate_name: Mapped[str | None] = mapped_column(String(64), info={"label": _l("Certificate file")})
    certificate_mime: Mapped[str | None] = mapped_column(String(50), info={"label": _l("Certificate file type")})
    certificate_sha256: Mapped[str | None] = mapped_column(String(64), info={"label": _l("Certificate checksum (SHA-256)")})

    practitioner: Mapped[Practitioner] = relationship()

    @classmethod
    def scope_clause(cls, scope):
        return _in_practitioner_scope(cls.practitioner_id, scope)

    @property
    def category_label(self) -> str:
        return rules.enum_label(TrainingCategory, self.category)

    @property
    def certificate_id(self) -> int | None:
        """The row's id when it holds a certificate (the list links its download), else None."""
        return self.id if self.certificate_name else None

    def __str__(self) -> str:
        return f"{self.course_name} ({self.hours} h)"
