"""Assessment instruments (量表與問卷, A3, A4): the shipped ones and those an institution
designs, their immutable published versions, and the responses pinned to a version with the
scores the engine computed (domain/addiction/scoring.py)."""

from __future__ import annotations

import datetime as dt

from flask_babel import lazy_gettext as _l
from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    or_,
    select,
    true,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from core.data import rules
from core.dates import to_roc
from models.addiction.case import Case
from models.addiction.course import Course
from models.base import AppModel, AuditColumnsMixin, LabelledEnum
from models.registry.institution import Institution
from models.registry.practitioner import Practitioner


class InstrumentPurpose(LabelledEnum):
    """The assessments every course needs (A3); other instruments have none."""

    INITIAL = "initial", _l("Initial assessment")
    FOLLOW_UP = "follow_up", _l("Follow-up assessment")


class InstrumentSharing(LabelledEnum):
    """Who besides its institution may use a custom instrument (read-only)."""

    PRIVATE = "private", _l("This institution only")
    COUNTY = "county", _l("Shared within the county")
    NATIONAL = "national", _l("Shared nationally")


class VersionStatus(LabelledEnum):
    """A version is edited as a draft; once published it never changes."""

    DRAFT = "draft", _l("Draft")
    PUBLISHED = "published", _l("Published")


class Instrument(AuditColumnsMixin, AppModel):
    """One questionnaire: built-in (no institution; source and licence recorded, disabled
    until licensed where its licence is not free) or an institution's own (A4)."""

    __tablename__ = "instrument"
    __label__ = _l("Instrument")
    __table_args__ = (
        UniqueConstraint("institution_id", "code", name="uq_instrument_code"),
        CheckConstraint("purpose IS NULL OR purpose IN ('initial', 'follow_up')", name="ck_instrument_purpose"),
        CheckConstraint("sharing IN ('private', 'county', 'national')", name="ck_instrument_sharing"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    #: None for the instruments the system ships.
    institution_id: Mapped[int | None] = mapped_column(ForeignKey("institution.id"), index=True)
    code: Mapped[str] = mapped_column(String(40), nullable=False)
    title: Mapped[str] = mapped_column(String(200), nullable=False)
    purpose: Mapped[str | None] = mapped_column(String(12), info={"label": _l("Purpose")})
    source: Mapped[str | None] = mapped_column(String(500))
    licence: Mapped[str | None] = mapped_column(String(500))
    #: False where the licence does not allow free use: enabled only once a licence is recorded.
    free_use: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True)
    enabled: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True)
    licence_note: Mapped[str | None] = mapped_column(String(500))
    sharing: Mapped[str] = mapped_column(String(10), nullable=False, default=InstrumentSharing.PRIVATE.value,
                                         info={"label": _l("Sharing")})

    institution: Mapped[Institution | None] = relationship()
    versions: Mapped[list[InstrumentVersion]] = relationship(
        back_populates="instrument", order_by="InstrumentVersion.number", cascade="all, delete-orphan"
    )

    @classmethod
    def scope_clause(cls, scope):
        """Built-ins for every scope; an institution's own where its institution is in scope,
        in its county when shared with the county, everywhere when shared nationally."""
        if not scope.has_any:
            return cls.id.is_(None)
        if scope.national:
            return true()
        in_county = cls.institution_id.in_(
            select(Institution.id).where(scope.county_filter(Institution.county_id))
        )
        return or_(
            cls.institution_id.is_(None),
            scope.institution_filter(cls.institution_id),
            cls.sharing == InstrumentSharing.NATIONAL.value,
            (cls.sharing == InstrumentSharing.COUNTY.value) & in_county,
        )

    @property
    def builtin(self) -> bool:
        return self.institution_id is None

    @property
    def purpose_label(self) -> str:
        return rules.enum_label(InstrumentPurpose, self.purpose) if self.purpose else ""

    def __str__(self) -> str:
        return self.title


class InstrumentVersion(AuditColumnsMixin, AppModel):
    """One version of an instrument: its items and scoring spec (a definition). A published
    version is immutable; responses point at the version they were answered on."""

    __tablename__ = "instrument_version"
    __label__ = _l("Instrument version")
    __table_args__ = (
        UniqueConstraint("instrument_id", "number", name="uq_instrument_version"),
        CheckConstraint("number >= 1", name="ck_instrument_version_number"),
        CheckConstraint("status IN ('draft', 'published')", name="ck_instrument_version_status"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    instrument_id: Mapped[int] = mapped_column(ForeignKey("instrument.id"), nullable=False)
    number: Mapped[int] = mapped_column(Integer, nullable=False, info={"label": _l("Version number")})
    status: Mapped[str] = mapped_column(String(10), nullable=False, default=VersionStatus.DRAFT.value,
                                        info={"label": _l("Version status")})
    definition: Mapped[dict] = mapped_column(JSON, nullable=False, info={"label": _l("Items and scoring")})
    #: The fingerprint of the scoring spec (domain/addiction/scoring.py spec_fingerprint).
    spec: Mapped[str] = mapped_column(String(16), nullable=False, info={"label": _l("Scoring fingerprint")})
    published_at: Mapped[dt.datetime | None] = mapped_column(DateTime, info={"label": _l("Published at")})
    #: What publishing this version changed against the previous one (safe / breaking).
    changes: Mapped[list | None] = mapped_column(JSON, info={"label": _l("Changes from the previous version")})

    instrument: Mapped[Instrument] = relationship(back_populates="versions")

    @classmethod
    def scope_clause(cls, scope):
        return cls.instrument_id.in_(select(Instrument.id).where(Instrument.scope_clause(scope)))

    @property
    def published(self) -> bool:
        return self.status == VersionStatus.PUBLISHED.value

    def __str__(self) -> str:
        return f"{self.instrument.title} v{self.number}"


class AssessmentResponse(AuditColumnsMixin, AppModel):
    """One filled-in instrument for a course: answers pinned to the version, and the scores,
    bands and flags the engine computed with the spec fingerprint that computed them."""

    __tablename__ = "assessment_response"
    __label__ = _l("Assessment")
    __table_args__ = (
        Index("ix_assessment_course", "course_id", "answered_on"),
        Index("ix_assessment_institution_date", "institution_id", "answered_on", "id"),
        Index("ix_assessment_instrument", "instrument_id", "id"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    version_id: Mapped[int] = mapped_column(ForeignKey("instrument_version.id"), nullable=False)
    #: The version's instrument, course's case and institution, repeated for scope and the
    #: lists' indexes; set by the domain command, never from input.
    instrument_id: Mapped[int] = mapped_column(ForeignKey("instrument.id"), nullable=False)
    course_id: Mapped[int] = mapped_column(ForeignKey("course.id"), nullable=False)
    case_id: Mapped[int] = mapped_column(ForeignKey("addiction_case.id"), nullable=False)
    institution_id: Mapped[int] = mapped_column(ForeignKey("institution.id"), nullable=False)
    answered_on: Mapped[dt.date] = mapped_column(Date, nullable=False)
    author_id: Mapped[int] = mapped_column(ForeignKey("practitioner.id"), nullable=False)
    answers: Mapped[dict] = mapped_column(JSON, nullable=False, info={"label": _l("Answers")})
    result: Mapped[dict] = mapped_column(JSON, nullable=False, info={"label": _l("Scores, bands and flags")})
    spec: Mapped[str] = mapped_column(String(16), nullable=False)
    #: The total score (the first score of the spec), repeated for lists and charts.
    total: Mapped[float | None] = mapped_column(Float)
    band: Mapped[str | None] = mapped_column(String(100))
    note: Mapped[str | None] = mapped_column(Text)

    version: Mapped[InstrumentVersion] = relationship()
    instrument: Mapped[Instrument] = relationship()
    course: Mapped[Course] = relationship()
    case: Mapped[Case] = relationship()
    institution: Mapped[Institution] = relationship()
    author: Mapped[Practitioner] = relationship()

    @classmethod
    def scope_clause(cls, scope):
        return scope.institution_filter(cls.institution_id)

    def __str__(self) -> str:
        return f"{to_roc(self.answered_on)} {self.instrument.title if self.instrument else ''}"
