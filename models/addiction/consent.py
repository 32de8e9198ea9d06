"""Informed consent to cross-hospital lookup (治療知情同意書, A12) and the log of every
cross-institution look at a person's timeline.

A consent belongs to the person, not to a case: recorded at one of the institutions where the
person has a case, it lets every other institution that treats the person read the course
timeline (and, if ticked, the lab results). At most one consent of a person is current (not
revoked, not superseded: a partial unique index); a new one supersedes it and the old one is
kept. Revocation is a date and a reason on the row; the timeline reads the row on every view,
so no process holds a grant that outlives it (domain/addiction/timeline.py)."""

from __future__ import annotations

import datetime as dt

from flask_babel import lazy_gettext as _l
from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    and_,
    or_,
    select,
    text,
    true,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from core.dates import utcnow
from models.addiction.case import Case, Patient
from models.base import AppModel, AuditColumnsMixin, LabelledEnum
from models.registry.institution import Institution


class ConsentStatus(LabelledEnum):
    """Where a consent stands (computed from its dates, never stored)."""

    ACTIVE = "active", _l("Valid")
    REVOKED = "revoked", _l("Revoked")
    EXPIRED = "expired", _l("Expired")
    SUPERSEDED = "superseded", _l("Superseded by a newer consent")


def patients_served_in(scope):
    """Ids of the patients with a case at an institution in `scope` (the person's institutions)."""
    return select(Case.patient_id).where(scope.institution_filter(Case.institution_id))


_CURRENT = "revoked_at IS NULL AND superseded_at IS NULL"


class Consent(AuditColumnsMixin, AppModel):
    """A person's signed 治療知情同意書: cross-hospital lookup allowed or not, what it covers, until when."""

    __tablename__ = "consent"
    __label__ = _l("Informed consent")
    __table_args__ = (
        CheckConstraint("lab_results = false OR cross_hospital = true", name="ck_consent_lab_needs_lookup"),
        CheckConstraint("valid_until IS NULL OR valid_until >= signed_on", name="ck_consent_period"),
        CheckConstraint("revoked_on IS NULL OR revoked_on >= signed_on", name="ck_consent_revoked_after_signed"),
        CheckConstraint("(revoked_at IS NULL) = (revoked_on IS NULL)", name="ck_consent_revocation"),
        Index("ix_consent_patient", "patient_id", "id"),
        # One current consent per person: a second would make "which one holds" a guess.
        Index("uq_consent_current", "patient_id", unique=True,
              sqlite_where=text(_CURRENT), postgresql_where=text(_CURRENT)),  # fmt: skip
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patient.id"), nullable=False)
    #: Where it was signed and recorded (an institution where the person has a case).
    institution_id: Mapped[int] = mapped_column(ForeignKey("institution.id"), nullable=False)
    #: The case it was recorded from (the consent itself holds for the person).
    case_id: Mapped[int] = mapped_column(ForeignKey("addiction_case.id"), nullable=False)
    recorded_by_id: Mapped[int | None] = mapped_column(ForeignKey("ab_user.id", ondelete="SET NULL"))
    recorded_by_name: Mapped[str | None] = mapped_column(String(100), info={"label": _l("Recorded by")})
    signed_on: Mapped[dt.date] = mapped_column(Date, nullable=False, info={"label": _l("Date signed")})
    valid_until: Mapped[dt.date | None] = mapped_column(Date, info={"label": _l("Valid until")})
    cross_hospital: Mapped[bool] = mapped_column(Boolean, nullable=False, info={"label": _l("Cross-hospital lookup allowed")})
    lab_results: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False, info={"label": _l("Including lab results")})
    #: The signed scan (core/files.py: checked by content, random stored name, SHA-256).
    scan_name: Mapped[str] = mapped_column(String(64), nullable=False, info={"label": _l("Stored file name")})
    scan_mime: Mapped[str] = mapped_column(String(30), nullable=False, info={"label": _l("File type of the signed scan")})
    scan_size: Mapped[int] = mapped_column(Integer, nullable=False, info={"label": _l("Size of the signed scan (bytes)")})
    scan_sha256: Mapped[str] = mapped_column(String(64), nullable=False, info={"label": _l("SHA-256")})
    superseded_at: Mapped[dt.datetime | None] = mapped_column(DateTime, info={"label": _l("Superseded at")})
    superseded_by_id: Mapped[int | None] = mapped_column(ForeignKey("consent.id"), info={"label": _l("Superseded by")})
    revoked_on: Mapped[dt.date | None] = mapped_column(Date, info={"label": _l("Revoked on")})
    revoked_reason: Mapped[str | None] = mapped_column(String(200), info={"label": _l("Reason for revocation")})
    revoked_at: Mapped[dt.datetime | None] = mapped_column(DateTime, info={"label": _l("Revocation recorded at")})
    revoked_by_name: Mapped[str | None] = mapped_column(String(100), info={"label": _l("Revoked by")})

    patient: Mapped[Patient] = relationship()
    institution: Mapped[Institution] = relationship()
    case: Mapped[Case] = relationship()
    superseded_by: Mapped[Consent | None] = relationship(remote_side=[id])

    @classmethod
    def scope_clause(cls, scope):
        """Consents recorded at an institution in scope (their whole history), and the valid
        cross-hospital consent of a person with a case in scope wherever it was recorded.

        Nothing else: a refusal, a revoked or an expired consent recorded elsewhere would tell
        another institution that the person is treated there, which only a valid consent
        allows (DOMAIN.md, persons and institutions)."""
        if scope.national:
            return true()
        from core import clock

        return or_(
            scope.institution_filter(cls.institution_id),
            and_(cls.patient_id.in_(patients_served_in(scope)), cls.valid_clause(clock.today())),
        )

    @classmethod
    def valid_clause(cls, day: dt.date):
        """Current (not revoked, not superseded), allowing cross-hospital lookup, not ended on `day`."""
        return and_(
            cls.revoked_at.is_(None), cls.superseded_at.is_(None), cls.cross_hospital.is_(True),
            cls.signed_on <= day, or_(cls.valid_until.is_(None), cls.valid_until >= day),
        )  # fmt: skip

    def status_on(self, day: dt.date) -> str:
        """有效 / 已撤回 / 已過期 / 已由新同意書取代 on `day`."""
        if self.revoked_at is not None:
            return ConsentStatus.REVOKED.value
        if self.superseded_at is not None:
            return ConsentStatus.SUPERSEDED.value
        if self.valid_until is not None and self.valid_until < day:
            return ConsentStatus.EXPIRED.value
        return ConsentStatus.ACTIVE.value

    @property
    def status(self) -> str:
        from core import clock

        return self.status_on(clock.today())

    @property
    def status_label(self) -> str:
        return ConsentStatus.label_of(self.status)

    @property
    def scopes(self) -> list[str]:
        """What it lets another institution read: the timeline; lab results."""
        if not self.cross_hospital:
            return []
        return ["timeline", "lab_results"] if self.lab_results else ["timeline"]

    def __str__(self) -> str:
        from core.dates import to_roc

        return f"{_l('Informed consent')} #{self.id}（{to_roc(self.signed_on)}）"


class ConsentAccess(AppModel):
    """One look at a person's cross-hospital timeline by another institution: who, when, from where, under which consent."""

    __tablename__ = "consent_access"
    __label__ = _l("Cross-hospital lookup log")
    #: A log of its own, like the audit trail: never changed or deleted (core/data/audit.py
    #: refuses it in the session, triggers in the database), and not audited twice.
    __audited__ = False
    __append_only__ = True
    __table_args__ = (
        Index("ix_consent_access_patient", "patient_id", "id"),
        Index("ix_consent_access_at", "at", "id"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(DateTime, nullable=False, default=utcnow, info={"label": _l("Time")})
    # No foreign keys: the log outlives the rows it names (like audit_log).
    user_id: Mapped[int | None] = mapped_column(Integer)
    username: Mapped[str | None] = mapped_column(String(100), info={"label": _l("User")})
    #: The institution the viewer looked from (the case's).
    institution_id: Mapped[int] = mapped_column(Integer, nullable=False)
    patient_id: Mapped[int] = mapped_column(Integer, nullable=False)
    case_id: Mapped[int] = mapped_column(Integer, nullable=False)
    consent_id: Mapped[int] = mapped_column(Integer, nullable=False, info={"label": _l("Under consent no.")})
    #: page / api
    channel: Mapped[str] = mapped_column(String(10), nullable=False, info={"label": _l("Viewed through")})
    #: Rows of other institutions shown (courses, records, lab results).
    rows_shown: Mapped[int] = mapped_column(Integer, nullable=False, default=0, info={"label": _l("Rows shown")})
    source_ip: Mapped[str | None] = mapped_column(String(45), info={"label": _l("Source IP")})

    institution = relationship(
        "Institution", primaryjoin="foreign(ConsentAccess.institution_id) == Institution.id", viewonly=True,
    )  # fmt: skip
    patient = relationship(
        "Patient", primaryjoin="foreign(ConsentAccess.patient_id) == Patient.id", viewonly=True,
    )  # fmt: skip
    consent = relationship(
        "Consent", primaryjoin="foreign(ConsentAccess.consent_id) == Consent.id", viewonly=True,
    )  # fmt: skip

    @classmethod
    def scope_clause(cls, scope):
        """The person's institutions (a case there) and their county bureaus; national users all."""
        if scope.national:
            return true()
        return cls.patient_id.in_(patients_served_in(scope))

    def __str__(self) -> str:
        return f"#{self.id}"
