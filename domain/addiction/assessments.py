"""Assessments of a course (A3): the instruments the system ships, a response written through
the engine (scored at every write, pinned to its version), and the rule that every course
needs its initial and follow-up assessment before it is completed.

- The follow-up falls due ADDICTION_FOLLOW_UP_MONTHS (default 3) after the course's start.
- A response's date lies inside its course and not in the future; its author serves at the
  course's institution; its instrument is in the user's scope, enabled, and published.
- Scores are computed here (domain/addiction/scoring.py) and stored with the version and the
  spec fingerprint that computed them; `rescore_all` recomputes every stored score.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from dateutil.relativedelta import relativedelta
from flask import current_app
from flask_babel import gettext
from sqlalchemy import exists, func, select
from sqlalchemy.orm import joinedload

from core import clock
from core.commands import Command
from core.data.datamodel import ScopedInterface
from core.dates import to_roc, utcnow
from core.errors import UserError
from core.extensions import db
from domain.addiction.builtin_instruments import BUILTINS
from domain.addiction.scoring import check_definition, score_response, spec_fingerprint
from models.addiction.course import Course, CourseStatus
from models.addiction.instrument import (
    AssessmentResponse,
    Instrument,
    InstrumentPurpose,
    InstrumentVersion,
    VersionStatus,
)
from models.registry.practitioner import ServiceAssignment

DEFAULT_FOLLOW_UP_MONTHS = 3


class AssessmentRefused(UserError):
    """An assessment the rules refuse; str() is the zh_TW message."""


def follow_up_due(course: Course) -> dt.date:
    """A3: the day the follow-up assessment falls due (configurable months after the start)."""
    months = int(current_app.config.get("ADDICTION_FOLLOW_UP_MONTHS", DEFAULT_FOLLOW_UP_MONTHS))
    return course.start_date + relativedelta(months=months)


# ------------------------------------------------------------------ built-ins
def ensure_builtins() -> int:
    """Create each shipped instrument with its published version 1, or publish a new version
    where the shipped definition changed; returns how many versions were added (idempotent)."""
    added = 0
    now = utcnow()
    for builtin in BUILTINS:
        check_definition(builtin.definition)
        instrument = db.session.scalar(
            select(Instrument).where(Instrument.institution_id.is_(None), Instrument.code == builtin.code)
        )
        if instrument is None:
            instrument = Instrument(
                code=builtin.code, title=builtin.title, purpose=builtin.purpose, source=builtin.source,
                licence=builtin.licence, free_use=builtin.free_use, enabled=builtin.free_use,
            )  # fmt: skip
            db.session.add(instrument)
            db.session.flush()
        latest = instrument.versions[-1] if instrument.versions else None
        if latest is not None and latest.definition == builtin.definition:
            continue
        db.session.add(InstrumentVersion(
            instrument=instrument, number=(latest.number + 1) if latest else 1,
            status=VersionStatus.PUBLISHED.value, definition=builtin.definition,
            spec=spec_fingerprint(builtin.definition), published_at=now,
        ))  # fmt: skip
        added += 1
    db.session.flush()
    return added


def published_version(instrument: Instrument) -> InstrumentVersion | None:
    """The newest published version (the one new responses are answered on)."""
    published = [v for v in instrument.versions if v.status == VersionStatus.PUBLISHED.value]
    return published[-1] if published else None


def usable_instruments() -> list[Instrument]:
    """Instruments the user may fill in for a course: in scope, enabled, with a published version."""
    rows = ScopedInterface(Instrument).filtered_query().filter(Instrument.enabled.is_(True)).all()
    rows = [i for i in rows if published_version(i) is not None]
    order = {"initial": 0, "follow_up": 1}
    return sorted(rows, key=lambda i: (order.get(i.purpose or "", 2), i.institution_id is not None, i.title))


# ------------------------------------------------------------------ writing a response
@dataclass
class AssessmentInput:
    """What a form, the API or an import hands over (ids as typed, answers per linkId)."""

    course_id: object
    instrument_id: object
    answered_on: dt.date | None
    author_id: object
    answers: object
    note: str | None = None


def _valid_id(value) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if 0 < value < 2**31 else None
    text = str(value or "").strip()
    return int(text) if text.isascii() and text.isdigit() and len(text) < 10 else None


def _outside(what) -> AssessmentRefused:
    return AssessmentRefused(
        gettext("The selected %(what)s does not exist or is outside your data scope.", what=str(what)),
        status=404,
    )


class WriteAssessment(Command):
    """A new assessment of a course, or (with `response`) a correction of one: answers checked
    and scored against the version (a correction keeps the version it was answered on)."""

    def __init__(self, given: AssessmentInput, response: AssessmentResponse | None = None):
        self.given, self.response = given, response
        self.course: Course | None = None
        self.version: InstrumentVersion | None = None

    def validate(self) -> None:
        given = self.given
        if self.response is not None:
            self.course, self.version = self.response.course, self.response.version
        else:
            course_id = _valid_id(given.course_id)
            self.course = ScopedInterface(Course).get(course_id) if course_id else None
            if self.course is None:
                raise _outside(Course.__label__)
            instrument_id = _valid_id(given.instrument_id)
            instrument = ScopedInterface(Instrument).get(instrument_id) if instrument_id else None
            if instrument is None:
                raise _outside(Instrument.__label__)
            if not instrument.enabled:
                raise AssessmentRefused(gettext(
                    "%(title)s is not enabled: its licence must be recorded by the system administrator first.",
                    title=instrument.title))  # fmt: skip
            self.version = published_version(instrument)
            if self.version is None:
                raise AssessmentRefused(gettext("%(title)s has no published version yet.", title=instrument.title))
        course = self.course
        day = given.answered_on
        if not isinstance(day, dt.date):
            raise AssessmentRefused(gettext("Please fill in %(field)s.", field=gettext("Assessment date")))
        if day > clock.today():
            raise AssessmentRefused(gettext("The assessment date cannot be in the future."))
        if not course.start_date <= day <= course.end_date:
            raise AssessmentRefused(gettext(
                "The assessment date must lie inside its course (%(start)s–%(end)s).",
                start=to_roc(course.start_date), end=to_roc(course.end_date)))  # fmt: skip
        author_id = _valid_id(given.author_id)
        serving = author_id is not None and db.session.scalar(select(exists().where(
            ServiceAssignment.practitioner_id == author_id,
            ServiceAssignment.institution_id == course.institution_id)))  # fmt: skip
        if not serving:
            raise AssessmentRefused(gettext("The assessor must be a staff member of the course's institution."))
        self.author_id = author_id
        self.answers, self.scored = score_response(self.version.definition, given.answers)
        if given.note is not None and len(given.note) > 4000:
            raise AssessmentRefused(gettext("The note is at most %(n)d characters.", n=4000))

    def execute(self) -> AssessmentResponse:
        course, scored = self.course, self.scored
        response = self.response or AssessmentResponse(
            version_id=self.version.id, instrument_id=self.version.instrument_id, course_id=course.id,
            case_id=course.case_id, institution_id=course.institution_id,
        )  # fmt: skip
        response.answered_on = self.given.answered_on
        response.author_id = self.author_id
        response.answers = self.answers
        response.result = scored.as_json()
        response.spec = scored.spec
        first = next(iter(scored.scores), None)
        response.total = scored.scores.get(first) if first else None
        response.band = scored.bands.get(first) if first else None
        response.note = (self.given.note or "").strip() or None
        if self.response is None:
            db.session.add(response)
        db.session.flush()
        ScopedInterface(AssessmentResponse).enforce_scope([response])
        return response


# ------------------------------------------------------------------ A3
@dataclass
class CourseAssessments:
    """A course's required assessments: done (the response) or due, and the follow-up's due date."""

    initial: AssessmentResponse | None
    follow_up: AssessmentResponse | None
    follow_up_due: dt.date
    others: list[AssessmentResponse]

    @property
    def missing(self) -> list[str]:
        """The labels of the required assessments not yet done."""
        out = []
        if self.initial is None:
            out.append(str(InstrumentPurpose.INITIAL.label))
        if self.follow_up is None:
            out.append(str(InstrumentPurpose.FOLLOW_UP.label))
        return out

    @property
    def follow_up_overdue(self) -> bool:
        return self.follow_up is None and clock.today() > self.follow_up_due


def course_assessments(course: Course) -> CourseAssessments:
    """A3 for one course, from its responses in date order."""
    responses = db.session.scalars(
        select(AssessmentResponse).where(AssessmentResponse.course_id == course.id)
        .options(joinedload(AssessmentResponse.instrument))
        .order_by(AssessmentResponse.answered_on, AssessmentResponse.id)
    ).all()  # fmt: skip
    initial = next((r for r in responses if r.instrument.purpose == InstrumentPurpose.INITIAL.value), None)
    follow_up = next((r for r in responses if r.instrument.purpose == InstrumentPurpose.FOLLOW_UP.value), None)
    others = [r for r in responses if r.instrument.purpose is None]
    return CourseAssessments(initial, follow_up, follow_up_due(course), others)


def check_course_can_complete(course: Course) -> None:
    """A3: a course is completed only with its initial and follow-up assessments done."""
    missing = course_assessments(course).missing
    if missing:
        raise AssessmentRefused(gettext(
            "This course cannot be completed yet: its %(missing)s is missing.", missing="、".join(missing)))  # fmt: skip


def has_assessment(purpose: str):
    """Whether the course (correlated on Course.id) has a response to an instrument of this purpose."""
    return exists().where(
        AssessmentResponse.course_id == Course.id,
        AssessmentResponse.instrument_id.in_(select(Instrument.id).where(Instrument.purpose == purpose)),
    )


def due_condition(today: dt.date, initial_missing, follow_up_missing):
    """A3's due rule over Course, given how to tell that its initial and its follow-up
    assessment are missing: in progress, and the initial missing, or the follow-up due (the
    course started ADDICTION_FOLLOW_UP_MONTHS ago or more) and missing."""
    months = int(current_app.config.get("ADDICTION_FOLLOW_UP_MONTHS", DEFAULT_FOLLOW_UP_MONTHS))
    started_before = today - relativedelta(months=months)
    return (Course.status == CourseStatus.ACTIVE.value) & (
        initial_missing | ((Course.start_date <= started_before) & follow_up_missing)
    )


def courses_due_query(today: dt.date | None = None):
    """A3: courses in progress whose initial assessment is missing, or whose follow-up is due
    and missing (a query over Course for the scoped list and its export)."""
    return due_condition(today or clock.today(), ~has_assessment(InstrumentPurpose.INITIAL.value),
                         ~has_assessment(InstrumentPurpose.FOLLOW_UP.value))  # fmt: skip


def rescore_all(batch: int = 2000):
    """Every stored response recomputed with its version: yields (response id, stored, now)
    for each whose stored result differs (the demo data and every write must yield none)."""
    last = 0
    versions: dict[int, dict] = {}
    while True:
        rows = db.session.execute(
            select(AssessmentResponse.id, AssessmentResponse.version_id, AssessmentResponse.answers,
                   AssessmentResponse.result)
            .where(AssessmentResponse.id > last).order_by(AssessmentResponse.id).limit(batch)
        ).all()  # fmt: skip
        if not rows:
            return
        for response_id, version_id, answers, stored in rows:
            if version_id not in versions:
                versions[version_id] = db.session.get(InstrumentVersion, version_id).definition
            _clean, scored = score_response(versions[version_id], answers)
            if scored.as_json() != stored:
                yield response_id, stored, scored.as_json()
            last = response_id


def count_responses() -> int:
    """How many responses are stored (for the seed's summary)."""
    return db.session.scalar(select(func.count(AssessmentResponse.id))) or 0
