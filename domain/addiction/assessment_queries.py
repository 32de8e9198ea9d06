"""What the assessment screens read and the one admin change they make (A3, A4): the courses
whose required assessments are due or overdue, per institution and county; one instrument's
responses as export rows (one column per item that ever existed, so no answer moves into
another's column); a case's totals over time per instrument; and recording the licence that
enables a built-in whose licence is not free (FTND).

Every query here is filtered by the scope_clause of the rows it reads, for the scope handed in.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass

from dateutil.relativedelta import relativedelta
from flask import current_app
from flask_babel import gettext
from sqlalchemy import Text, cast, func, select

from core import clock
from core.commands import Command
from core.data.datamodel import ScopedInterface
from core.dates import to_roc
from core.errors import UserError
from core.export.xlsx import cell_text
from core.extensions import db
from domain.addiction.assessments import DEFAULT_FOLLOW_UP_MONTHS, courses_due_query, has_assessment
from domain.addiction.scoring import answerable, options_of
from models.addiction.case import Case, Patient
from models.addiction.course import Course
from models.addiction.instrument import (
    AssessmentResponse,
    Instrument,
    InstrumentPurpose,
    InstrumentVersion,
)
from models.registry.institution import Institution
from models.registry.practitioner import Practitioner
from models.registry.reference import County

#: The due list shows at most this many courses on screen (the export has them all).
DUE_SCREEN_LIMIT = 500
#: A licence note is at most this long (the column's size).
LICENCE_NOTE_MAX = 500


def follow_up_months() -> int:
    """A3: months after the start the follow-up falls due (ADDICTION_FOLLOW_UP_MONTHS)."""
    return int(current_app.config.get("ADDICTION_FOLLOW_UP_MONTHS", DEFAULT_FOLLOW_UP_MONTHS))


# ------------------------------------------------------------------ A3: due list
@dataclass
class DueRow:
    """One course whose initial or follow-up assessment is due: where, whose, what is missing."""

    course_id: int
    case_id: int
    county: str
    institution_code: str
    institution: str
    institution_id: int
    patient: str
    start_date: dt.date
    follow_up_due: dt.date
    missing_initial: bool
    missing_follow_up: bool
    overdue: bool

    @property
    def missing(self) -> str:
        """The missing assessments, as the course page names them."""
        labels = []
        if self.missing_initial:
            labels.append(str(InstrumentPurpose.INITIAL.label))
        if self.missing_follow_up:
            labels.append(str(InstrumentPurpose.FOLLOW_UP.label))
        return "、".join(labels)


def _due_conditions(scope, today, county_id, institution_id):
    """The due list's conditions: A3's query, the scope, the chosen county or institution."""
    conditions = [courses_due_query(today), Course.scope_clause(scope)]
    if county_id is not None:
        conditions.append(Institution.county_id == county_id)
    if institution_id is not None:
        conditions.append(Course.institution_id == institution_id)
    return conditions


def due_rows(scope, today: dt.date | None = None, county_id: int | None = None,
             institution_id: int | None = None, limit: int | None = None):
    """A3: courses in progress in `scope` whose initial assessment is missing, or whose
    follow-up is due and missing; by county, institution, start date (a generator: the
    export streams it)."""  # fmt: skip
    today = today or clock.today()
    months = follow_up_months()
    code = func.coalesce(Institution.nhi_code, Institution.registry_code)
    stmt = (
        select(Course.id, Course.case_id, County.name, code, Institution.name, Institution.id, Patient.name,
               Course.start_date, has_assessment(InstrumentPurpose.INITIAL.value), has_assessment(InstrumentPurpose.FOLLOW_UP.value))
        .join(Institution, Institution.id == Course.institution_id)
        .join(County, County.id == Institution.county_id)
        .join(Case, Case.id == Course.case_id)
        .join(Patient, Patient.id == Case.patient_id)
        .where(*_due_conditions(scope, today, county_id, institution_id))
        .order_by(County.code, code, Course.start_date, Course.id)
    )  # fmt: skip
    if limit is not None:
        stmt = stmt.limit(limit)
    for cid, case_id, county, inst_code, inst, inst_id, patient, start, initial, follow in db.session.execute(
        stmt.execution_options(yield_per=2000)
    ):
        due = start + relativedelta(months=months)
        missing_follow = not follow and due <= today
        yield DueRow(cid, case_id, county, inst_code or "", inst, inst_id, patient, start, due,
                     not initial, missing_follow, missing_follow and due < today)  # fmt: skip


def due_counts(scope, today: dt.date | None = None, county_id: int | None = None,
               institution_id: int | None = None) -> tuple[list, list]:
    """A3: how many courses are due per county [(county, n)] and per institution
    [(county, code, name, institution id, n)], in `scope`."""  # fmt: skip
    today = today or clock.today()
    code = func.coalesce(Institution.nhi_code, Institution.registry_code)
    conditions = _due_conditions(scope, today, county_id, institution_id)
    base = select().select_from(Course).join(Institution, Institution.id == Course.institution_id).join(
        County, County.id == Institution.county_id
    )  # fmt: skip
    per_county = db.session.execute(
        base.add_columns(County.name, func.count(Course.id)).where(*conditions)
        .group_by(County.id, County.name, County.code).order_by(County.code)
    ).all()  # fmt: skip
    per_institution = db.session.execute(
        base.add_columns(County.name, code, Institution.name, Institution.id, func.count(Course.id))
        .where(*conditions).group_by(County.name, County.code, code, Institution.name, Institution.id)
        .order_by(County.code, code)
    ).all()  # fmt: skip
    return [tuple(r) for r in per_county], [tuple(r) for r in per_institution]


# ------------------------------------------------------------------ export per instrument
@dataclass
class ExportColumn:
    """One item column of an instrument's export: its linkId, header and answer labels."""

    link: str
    header: str
    labels: dict[str, str]
    multi: bool


def export_columns(instrument: Instrument) -> list[ExportColumn]:
    """One column per answerable item of every version, in the order first seen (newest
    version's text as the header); a choice is exported as its label."""
    columns: dict[str, ExportColumn] = {}
    for version in instrument.versions:
        definition = version.definition
        for item in answerable(definition):
            labels = {o["code"]: o.get("display") or o["code"] for o in options_of(definition, item)}
            column = columns.get(item["linkId"])
            if column is None:
                columns[item["linkId"]] = ExportColumn(item["linkId"], item.get("text") or item["linkId"], labels,
                                                       item["type"] == "multi")  # fmt: skip
            else:
                column.header = item.get("text") or column.header
                column.labels = {**column.labels, **labels}
    return list(columns.values())


def answer_text(column: ExportColumn, value) -> str | int | float:
    """An answer as a person reads it: a choice by its label, several joined by 、."""
    if value is None:
        return ""
    if isinstance(value, list):
        return "、".join(str(column.labels.get(str(v), v)) for v in value)
    if column.labels:
        return str(column.labels.get(str(value), value))
    return value


def _cell_of(column: ExportColumn):
    """answer_text for one column, as its cell (cell_text), by the fastest function that
    gives the same cell: the export calls it for every item of every response (3,000,000
    times for 100,000 30-item responses)."""
    if column.multi or not column.labels:
        return lambda value: cell_text(answer_text(column, value))
    labels = {str(code): cell_text(str(label)) for code, label in column.labels.items()}

    def cell(value):
        if value is None:
            return ""
        if value.__class__ is str:
            found = labels.get(value)
            return found if found is not None else cell_text(value)
        return cell_text(answer_text(column, value))

    return cell


def count_instrument_responses(scope, instrument: Instrument) -> int:
    """How many of the instrument's responses `scope` sees (the export's size)."""
    return db.session.scalar(
        select(func.count(AssessmentResponse.id))
        .where(AssessmentResponse.instrument_id == instrument.id, AssessmentResponse.scope_clause(scope))
    ) or 0  # fmt: skip


class _Memo(dict):
    """A value's cell, worked out once per distinct value (a date, an institution, an
    assessor repeat on many rows); emptied when it grows large, so memory stays bounded."""

    def __init__(self, convert):
        super().__init__()
        self.convert = convert

    def __missing__(self, key):
        if len(self) > 20000:
            self.clear()
        value = self[key] = self.convert(key)
        return value


def _json(value):
    """A JSON column read as text (cast in SQL: the ORM's per-row decoding is skipped)."""
    if value is None or value.__class__ is not str:
        return value  # a driver that decodes JSON itself
    return json.loads(value)


def instrument_export_rows(scope, instrument: Instrument, columns: list[ExportColumn], batch: int = 5000):
    """The instrument's responses in `scope`, oldest first, as cells ready for
    write_xlsx(ready=True): the fixed columns, then one cell per item column. A generator:
    plain rows from one cursor, `batch` at a time, never ORM objects, so memory stays flat
    whatever the count (measured in bench/assessments.py)."""
    code = func.coalesce(Institution.nhi_code, Institution.registry_code)
    stmt = (
        select(AssessmentResponse.id, AssessmentResponse.answered_on, code, Institution.name,
               AssessmentResponse.course_id, Patient.name, Practitioner.name, InstrumentVersion.number,
               AssessmentResponse.total, AssessmentResponse.band, cast(AssessmentResponse.result, Text),
               AssessmentResponse.spec, cast(AssessmentResponse.answers, Text))
        .join(Institution, Institution.id == AssessmentResponse.institution_id)
        .join(Case, Case.id == AssessmentResponse.case_id)
        .join(Patient, Patient.id == Case.patient_id)
        .join(Practitioner, Practitioner.id == AssessmentResponse.author_id)
        .join(InstrumentVersion, InstrumentVersion.id == AssessmentResponse.version_id)
        .where(AssessmentResponse.instrument_id == instrument.id, AssessmentResponse.scope_clause(scope))
        .order_by(AssessmentResponse.answered_on, AssessmentResponse.id)
    )  # fmt: skip
    cells = [(c.link, _cell_of(c)) for c in columns]
    text, day_text = _Memo(cell_text), _Memo(to_roc)
    for rid, day, inst_code, inst, course_id, patient, author, number, total, band, result, spec, answers in (
        db.session.connection().execute(stmt.execution_options(yield_per=batch))
    ):
        # Most responses raise no flag: their stored result says so without being decoded.
        if result is None or (result.__class__ is str and '"flags": []' in result):
            flags = ""
        else:
            flags = "、".join(f.get("label", "") for f in (_json(result) or {}).get("flags") or [])
        get = (_json(answers) or {}).get
        yield (rid, day_text[day] if day else "", text[inst_code or ""], text[inst], course_id, text[patient],
               text[author], number, "" if total is None else total, text[band or ""], text[flags], text[spec],
               *[cell(get(link)) for link, cell in cells])  # fmt: skip


# ------------------------------------------------------------------ a case's scores over time
@dataclass
class ScoreSeries:
    """One instrument's totals for a case, oldest first, with its bands (for the chart)."""

    instrument: Instrument
    label: str
    points: list[tuple[dt.date, float, str, int]]
    bands: list[dict]


def case_score_series(scope, case_id: int) -> list[ScoreSeries]:
    """Per instrument with a scored response of the case (in scope): (date, total, band, id)
    and the bands of the newest version's first score."""
    rows = db.session.execute(
        select(AssessmentResponse.instrument_id, AssessmentResponse.answered_on, AssessmentResponse.total,
               AssessmentResponse.band, AssessmentResponse.id)
        .where(AssessmentResponse.case_id == case_id, AssessmentResponse.total.is_not(None),
               AssessmentResponse.scope_clause(scope))
        .order_by(AssessmentResponse.answered_on, AssessmentResponse.id)
    ).all()  # fmt: skip
    by_instrument: dict[int, list] = {}
    for instrument_id, day, total, band, rid in rows:
        by_instrument.setdefault(instrument_id, []).append((day, total, band or "", rid))
    out = []
    for instrument_id, points in by_instrument.items():
        instrument = db.session.get(Instrument, instrument_id)
        specs = ((instrument.versions[-1].definition.get("scoring") or {}).get("scores") or [{}]) \
            if instrument.versions else [{}]  # fmt: skip
        first = specs[0] if specs else {}
        out.append(ScoreSeries(instrument, first.get("label") or gettext("Total score"), points,
                               list(first.get("bands") or [])))  # fmt: skip
    return sorted(out, key=lambda s: (s.instrument.institution_id is not None, s.instrument.title))


# ------------------------------------------------------------------ A4: licences
class LicenceRefused(UserError):
    """A licence record the rules refuse; str() is the zh_TW message."""


class RecordLicence(Command):
    """Enable (with the licence recorded) or disable a built-in instrument whose licence is
    not free; an instrument free to use needs no licence and is not changed here."""

    def __init__(self, instrument_id, note, enable: bool):
        """The instrument's id as given, the licence note as typed, enable or disable."""
        self.instrument_id, self.note, self.enable = instrument_id, note, enable

    def validate(self) -> None:
        """A built-in in scope, not free to use; enabling needs a note."""
        text = str(self.instrument_id or "")
        pk = int(text) if text.isascii() and text.isdigit() and len(text) < 10 else None
        self.instrument = ScopedInterface(Instrument).get(pk) if pk else None
        if self.instrument is None or not self.instrument.builtin:
            raise LicenceRefused(gettext("The selected %(what)s does not exist or is outside your data scope.",
                                         what=str(Instrument.__label__)), status=404)  # fmt: skip
        if self.instrument.free_use:
            raise LicenceRefused(gettext("%(title)s is free to use and needs no licence.",
                                         title=self.instrument.title))  # fmt: skip
        self.note = " ".join(str(self.note or "").split())
        if self.enable and not self.note:
            raise LicenceRefused(gettext(
                "Please record the licence (who granted it, for whom, until when) before enabling %(title)s.",
                title=self.instrument.title))  # fmt: skip
        if len(self.note) > LICENCE_NOTE_MAX:
            raise LicenceRefused(gettext("The licence note is at most %(n)d characters.", n=LICENCE_NOTE_MAX))

    def execute(self) -> Instrument:
        """Set enabled and record the note."""
        instrument = self.instrument
        instrument.enabled = self.enable
        if self.enable:
            instrument.licence_note = self.note
        elif self.note:
            instrument.licence_note = self.note
        db.session.flush()
        return instrument
