"""Patients (national persons of the addiction programme) and their cases at institutions.

A patient is one national row per identity document (national ID, resident certificate, or a
passport for foreigners); a case (個案) is that patient at one institution. The same person at a
second institution is a second case, never a second patient (models/registry/person.py)."""

from __future__ import annotations

import datetime as dt

from flask_babel import lazy_gettext as _l
from sqlalchemy import CheckConstraint, Date, ForeignKey, Index, Integer, String, Text, true
from sqlalchemy.orm import Mapped, mapped_column, relationship

from core.data import rules
from core.validators import mask_personal_id
from models.base import AppModel, AuditColumnsMixin, LabelledEnum
from models.registry.institution import Institution
from models.registry.person import PersonKind, PersonMixin


class IdKind(LabelledEnum):
    """The identity document a patient is registered by."""

    NATIONAL_ID = "national_id", _l("National ID")
    RESIDENT_CERTIFICATE = "resident_certificate", _l("Resident certificate")
    PASSPORT = "passport", _l("Passport (foreigners)")


class PatientSex(LabelledEnum):
    """Sex as recorded on the identity document."""

    MALE = "M", _l("Male")
    FEMALE = "F", _l("Female")


PATIENT_RULES = {
    "id_kind": rules.enum(_l("Identity document"), IdKind),
    "national_id": rules.text(_l("ID / resident certificate / passport no."), required=True, max_length=20),
    "name": rules.text(_l("Full name"), required=True, max_length=50),
    "sex": rules.enum(_l("Sex"), PatientSex),
    "birth_date": rules.date(_l("Birth date"), required=True),
}


class Patient(PersonMixin, AuditColumnsMixin, AppModel):
    """A person in addiction treatment; one verified row per identity document, nationwide."""

    __tablename__ = "patient"
    __label__ = _l("Patient")
    __person_kind__ = PersonKind.PATIENT.value
    __identity_fields__ = ("name", "sex", "birth_date")
    __identity_enums__ = {"sex": PatientSex}
    __field_rules__ = PATIENT_RULES
    __table_args__ = (
        Index("ix_patient_name", "name"),
        *PersonMixin.person_table_args("patient"),
        *rules.check_constraints("patient", PATIENT_RULES),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    id_kind: Mapped[str] = mapped_column(String(20), nullable=False)
    #: National ID or resident certificate (checksum-validated), or a passport number.
    national_id: Mapped[str] = mapped_column(String(20), nullable=False)
    name: Mapped[str] = mapped_column(String(50), nullable=False)
    sex: Mapped[str] = mapped_column(String(1), nullable=False)
    birth_date: Mapped[dt.date] = mapped_column(Date, nullable=False)

    @classmethod
    def scope_clause(cls, scope):
        """Patients with a case (or a registration) at an institution in scope."""
        if scope.national:
            return true()
        return cls.linked_in_scope(scope)

    @property
    def national_id_masked(self) -> str:
        """The ID as everyone may see it: A12****789."""
        return mask_personal_id(self.national_id)

    @property
    def national_id_for_viewer(self) -> str:
        """The ID in full for a viewer allowed full IDs (can_see_full_ids), masked for everyone
        else and outside a request (a background job has no viewer to ask)."""
        from core.data.filters import sees_ids_masked

        return self.national_id_masked if sees_ids_masked() else self.national_id

    def __str__(self) -> str:
        # Dropdowns, show pages and exports print a patient as this: the ID follows the viewer.
        return f"{self.name}（{self.national_id_for_viewer}）"


class SubstanceCategory(LabelledEnum):
    """What the case is treated for."""

    DRUG = "drug", _l("Drug addiction")
    ALCOHOL = "alcohol", _l("Alcohol addiction")
    BOTH = "both", _l("Drug and alcohol addiction")


class ReferralSource(LabelledEnum):
    """How the case came to the institution."""

    SELF = "self", _l("Self-referred")
    DEFERRED_PROSECUTION = "deferred_prosecution", _l("Deferred prosecution with treatment")
    DOMESTIC_VIOLENCE = "domestic_violence", _l("Domestic-violence offender treatment")
    DRUNK_DRIVING = "drunk_driving", _l("Drunk driving")
    OTHER = "other", _l("Other")


class EligibilityCategory(LabelledEnum):
    """The case's category for subsidies (schemes decide what each may claim)."""

    GENERAL = "general", _l("General")
    LOW_INCOME = "low_income", _l("Low or middle-low income")
    MINOR = "minor", _l("Minor")
    LAW_MANDATED_SELF_PAY = "law_mandated_self_pay", _l("Law-mandated, self-paying")


class CaseStatus(LabelledEnum):
    """Where the case stands at its institution."""

    OPEN = "open", _l("Open")
    CLOSED = "closed", _l("Closed")
    REFERRED = "referred", _l("Referred")


CASE_RULES = {
    "opened_on": rules.date(_l("Opened on"), required=True),
    "substance_category": rules.enum(_l("Substance category"), SubstanceCategory),
    "substances": rules.text(_l("Substances"), max_length=200),
    "referral_source": rules.enum(_l("Referral source"), ReferralSource),
    "eligibility": rules.enum(_l("Eligibility category"), EligibilityCategory),
    "status": rules.enum(_l("Case status"), CaseStatus),
    "closed_on": rules.date(_l("Closed on")),
    "close_reason": rules.text(_l("Reason for closing"), max_length=200),
}


class Case(AuditColumnsMixin, AppModel):
    """A patient at one institution (個案): opened, treated in courses, closed or referred."""

    __tablename__ = "addiction_case"
    __label__ = _l("Case")
    __field_rules__ = CASE_RULES
    __table_args__ = (
        *rules.check_constraints("addiction_case", CASE_RULES),
        CheckConstraint("closed_on IS NULL OR closed_on >= opened_on", name="ck_case_dates"),
        CheckConstraint(
            "(status = 'referred') = (referred_to_id IS NOT NULL)", name="ck_case_referral"
        ),
        Index("ix_case_institution_opened", "institution_id", "opened_on", "id"),
        Index("ix_case_patient", "patient_id", "institution_id"),
        Index("ix_case_opened", "opened_on", "id"),  # national list (migration c4d5e6f7a8b9)
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patient.id"), nullable=False)
    institution_id: Mapped[int] = mapped_column(ForeignKey("institution.id"), nullable=False)
    opened_on: Mapped[dt.date] = mapped_column(Date, nullable=False)
    substance_category: Mapped[str] = mapped_column(String(10), nullable=False)
    substances: Mapped[str | None] = mapped_column(String(200))
    referral_source: Mapped[str] = mapped_column(String(30), nullable=False)
    eligibility: Mapped[str] = mapped_column(String(30), nullable=False)
    status: Mapped[str] = mapped_column(String(10), nullable=False, default=CaseStatus.OPEN.value)
    closed_on: Mapped[dt.date | None] = mapped_column(Date)
    close_reason: Mapped[str | None] = mapped_column(String(200))
    referred_to_id: Mapped[int | None] = mapped_column(ForeignKey("institution.id"))
    note: Mapped[str | None] = mapped_column(Text)

    patient: Mapped[Patient] = relationship()
    institution: Mapped[Institution] = relationship(foreign_keys=[institution_id])
    referred_to: Mapped[Institution | None] = relationship(foreign_keys=[referred_to_id])

    #: A case links its patient to its institution (models/registry/person.py).
    __person_links__ = ((PersonKind.PATIENT.value, "patient_id", "institution_id"),)

    @classmethod
    def scope_clause(cls, scope):
        return scope.institution_filter(cls.institution_id)

    @property
    def status_label(self) -> str:
        return rules.enum_label(CaseStatus, self.status)

    def __str__(self) -> str:
        # The institution is the viewer's own (only its staff see cases): its name beside
        # every case in a list said nothing; the opening date tells two cases of a person apart.
        from core.dates import to_roc

        opened = _l("opened %(date)s", date=to_roc(self.opened_on))
        return f"{self.patient} {opened}"
