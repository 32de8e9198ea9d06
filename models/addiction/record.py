"""Treatment records by profession (A5): each record is a built-in structured form of its
kind, or the institution's own record form uploaded as a PDF; lab results are structured."""

from __future__ import annotations

import datetime as dt

from flask_babel import lazy_gettext as _l
from sqlalchemy import (
    JSON,
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
    select,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from core.data import rules
from core.dates import to_roc, utcnow
from models.addiction.case import Case
from models.addiction.course import Course
from models.base import AppModel, AuditColumnsMixin, LabelledEnum
from models.registry.institution import Institution
from models.registry.practitioner import Practitioner


class TreatmentKind(LabelledEnum):
    """The kinds of treatment a record documents (which professions may sign each:
    domain/addiction/records.py)."""

    OUTPATIENT = "outpatient", _l("Outpatient visit / medication")
    INDIVIDUAL_PSYCHOTHERAPY = "individual_psychotherapy", _l("Individual psychotherapy")
    GROUP_PSYCHOTHERAPY = "group_psychotherapy", _l("Group psychotherapy")
    FAMILY_THERAPY = "family_therapy", _l("Family therapy")
    SOCIAL_WORK = "social_work", _l("Social-work intervention")
    NURSING_EDUCATION = "nursing_education", _l("Nursing health education")
    OCCUPATIONAL_THERAPY = "occupational_therapy", _l("Occupational therapy")
    CASE_MANAGEMENT = "case_management", _l("Case management")
    LAB_TEST = "lab_test", _l("Laboratory test")


class RecordForm(AuditColumnsMixin, AppModel):
    """An institution's own blank record form for one kind of treatment, one row per version
    (A5). No patient data: the Ministry lists every institution's forms (seed Q15)."""

    __tablename__ = "record_form"
    __label__ = _l("Record form")
    __table_args__ = (
        UniqueConstraint("institution_id", "kind", "version", name="uq_record_form_version"),
        CheckConstraint("version >= 1", name="ck_record_form_version"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    institution_id: Mapped[int] = mapped_column(ForeignKey("institution.id"), nullable=False)
    kind: Mapped[str] = mapped_column(String(30), nullable=False)
    version: Mapped[int] = mapped_column(Integer, nullable=False)
    title: Mapped[str] = mapped_column(String(200), nullable=False)
    #: The blank PDF as stored by core/files.py, its size, pages and SHA-256.
    stored_name: Mapped[str] = mapped_column(String(64), nullable=False, info={"label": _l("Stored file name")})
    size: Mapped[int] = mapped_column(Integer, nullable=False)
    pages: Mapped[int] = mapped_column(Integer, nullable=False)
    sha256: Mapped[str] = mapped_column(String(64), nullable=False)

    institution: Mapped[Institution] = relationship()

    @classmethod
    def scope_clause(cls, scope):
        return scope.institution_filter(cls.institution_id)

    def __str__(self) -> str:
        return f"{self.title} v{self.version}"


class TreatmentRecord(AuditColumnsMixin, AppModel):
    """One treatment of a course, by a staff member of its institution (A5).

    Its content is either `content` (the built-in form of its kind, as JSON) or an uploaded
    filled-in PDF (`stored_name`, `sha256`) that points at the blank `form_id` it used."""

    __tablename__ = "treatment_record"
    __label__ = _l("Treatment record")
    __table_args__ = (
        CheckConstraint("minutes IS NULL OR (minutes >= 1 AND minutes <= 1440)", name="ck_record_minutes"),
        CheckConstraint("(stored_name IS NULL) = (sha256 IS NULL)", name="ck_record_pdf"),
        # kind too: the attendance report reads a year's sessions from this index alone
        # (migration a19c0de5f1a2).
        Index("ix_record_course_date", "course_id", "executed_on", "id", "kind"),
        Index("ix_record_institution_date", "institution_id", "executed_on", "id"),
        Index("ix_record_case_date", "case_id", "executed_on"),
        Index("ix_record_date", "executed_on", "id"),  # national list (migration c4d5e6f7a8b9)
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    course_id: Mapped[int] = mapped_column(ForeignKey("course.id"), nullable=False)
    #: The course's case and institution, repeated for scope and the lists' indexes; set by
    #: the domain command from the course, never from input.
    case_id: Mapped[int] = mapped_column(ForeignKey("addiction_case.id"), nullable=False)
    institution_id: Mapped[int] = mapped_column(ForeignKey("institution.id"), nullable=False)
    executed_on: Mapped[dt.date] = mapped_column(Date, nullable=False)
    author_id: Mapped[int] = mapped_column(ForeignKey("practitioner.id"), nullable=False)
    profession: Mapped[str] = mapped_column(String(30), nullable=False)
    kind: Mapped[str] = mapped_column(String(30), nullable=False)
    minutes: Mapped[int | None] = mapped_column(Integer)
    content: Mapped[dict | None] = mapped_column(JSON, info={"label": _l("Content")})
    form_id: Mapped[int | None] = mapped_column(ForeignKey("record_form.id"))
    stored_name: Mapped[str | None] = mapped_column(String(64), info={"label": _l("Stored file name")})
    sha256: Mapped[str | None] = mapped_column(String(64))

    course: Mapped[Course] = relationship()
    case: Mapped[Case] = relationship()
    institution: Mapped[Institution] = relationship()
    author: Mapped[Practitioner] = relationship()
    form: Mapped[RecordForm | None] = relationship()
    lab_results: Mapped[list[LabResult]] = relationship(
        back_populates="record", cascade="all, delete-orphan", order_by="LabResult.id"
    )

    @classmethod
    def scope_clause(cls, scope):
        return scope.institution_filter(cls.institution_id)

    @property
    def kind_label(self) -> str:
        return rules.enum_label(TreatmentKind, self.kind)

    def __str__(self) -> str:
        return f"{to_roc(self.executed_on)} {self.kind_label}"


class LabOutcome(LabelledEnum):
    """A toxicology result."""

    NEGATIVE = "negative", _l("Negative")
    POSITIVE = "positive", _l("Positive")
    INCONCLUSIVE = "inconclusive", _l("Inconclusive")


class LabResult(AppModel):
    """One substance tested in a lab-test record (e.g. urine toxicology): what, when, result.
    Structured because the cross-hospital timeline shows lab results (A12)."""

    __tablename__ = "lab_result"
    __label__ = _l("Lab result")
    __table_args__ = (
        CheckConstraint("outcome IN ('negative', 'positive', 'inconclusive')", name="ck_lab_outcome"),
        Index("ix_lab_result_record", "record_id"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    record_id: Mapped[int] = mapped_column(
        ForeignKey("treatment_record.id", ondelete="CASCADE"), nullable=False
    )
    substance: Mapped[str] = mapped_column(String(50), nullable=False)
    sampled_on: Mapped[dt.date] = mapped_column(Date, nullable=False)
    outcome: Mapped[str] = mapped_column(String(12), nullable=False)
    value: Mapped[str | None] = mapped_column(String(50))
    recorded_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow, nullable=False, info={"label": _l("Recorded at")})

    record: Mapped[TreatmentRecord] = relationship(back_populates="lab_results")

    @classmethod
    def scope_clause(cls, scope):
        return cls.record_id.in_(select(TreatmentRecord.id).where(TreatmentRecord.scope_clause(scope)))
