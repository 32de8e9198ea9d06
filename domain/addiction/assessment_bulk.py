"""Bulk import of assessment responses (A3, A4): a JSON list through the API or a workbook
through the shared all-or-nothing import (core/imports.py), built-in or custom instruments.

The same rules as one response written by WriteAssessment (domain/addiction/assessments.py),
checked for the whole batch in memory: the course in the user's scope, the instrument in
scope, enabled and published (a published version may be named; else the newest), the date
inside the course and not in the future, the assessor serving at the course's institution,
and the answers cleaned and scored by the same engine (score_response), the spec fingerprint
stored beside the scores. One bad line refuses the batch: every line's problems are named
(line and item), and nothing is stored.

Speed (issue 16: 10,000 responses >= 1,000/s with every score computed): courses,
instruments, versions and assessors are read once per batch (a few IN queries), rows are
inserted in one multi-row statement, their audit rows in another (core/data/audit.py
audit_bulk_insert: the same rows the session hook writes for a single save), one commit.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from flask import current_app
from flask_babel import gettext
from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from core import clock
from core.actor import current_actor
from core.commands import Command
from core.data.audit import audit_bulk_insert
from core.data.scope import current_scope
from core.dates import DateFormatError, parse_date, to_roc, utcnow
from core.errors import UserError
from core.extensions import db
from core.imports import Column, Row, RowRules, Spreadsheet
from core.validators import normalize_id
from domain.addiction.assessment_queries import export_columns
from domain.addiction.scoring import AnswersRefused, answerable, options_of, score_response
from models.addiction.case import Case, Patient
from models.addiction.course import Course, CourseStatus
from models.addiction.instrument import (
    AssessmentResponse,
    Instrument,
    InstrumentVersion,
    VersionStatus,
)
from models.registry.practitioner import Practitioner, ServiceAssignment

#: At most this many responses in one batch (ASSESSMENT_BULK_MAX_ROWS).
DEFAULT_BULK_MAX_ROWS = 10_000
#: A note is at most this long (as on the form).
NOTE_MAX = 4000
#: IN lists are read in chunks of this many ids (SQLite's and PostgreSQL's parameter limits).
CHUNK = 900


def bulk_max_rows() -> int:
    """The batch limit (config ASSESSMENT_BULK_MAX_ROWS, default 10,000)."""
    return int(current_app.config.get("ASSESSMENT_BULK_MAX_ROWS", DEFAULT_BULK_MAX_ROWS))


class BulkRefused(UserError):
    """A batch refused as a whole; `lines` lists each refused line's problems by field or
    linkId ([{"line": 3, "errors": {"q4": "..."}}])."""

    def __init__(self, message: str, lines: list[dict] | None = None, status: int | None = None):
        super().__init__(message, status)
        self.lines = lines or []

    def answer(self):
        return self.message


@dataclass
class BulkEntry:
    """One response as given: ids and values as typed (the checks decide), answers by linkId."""

    line: int
    course: object = None
    instrument: object = None
    instrument_code: object = None
    #: A published version's number; None for the newest.
    version: object = None
    answered_on: object = None
    author: object = None
    author_national_id: object = None
    answers: object = None
    note: object = None


@dataclass
class _Course:
    id: int
    case_id: int
    institution_id: int
    start_date: dt.date
    end_date: dt.date


@dataclass
class _Instrument:
    id: int
    institution_id: int | None
    code: str
    title: str
    enabled: bool
    versions: dict[int, tuple[int, dict]] = field(
        default_factory=dict
    )  # number → (version id, definition)

    @property
    def newest(self) -> int | None:
        return max(self.versions) if self.versions else None


def _valid_id(value) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if 0 < value < 2**31 else None
    if isinstance(value, float) and value.is_integer():
        return _valid_id(int(value))
    text = str(value or "").strip()
    return int(text) if text.isascii() and text.isdigit() and len(text) < 10 else None


def _chunks(values):
    values = sorted(values)
    for start in range(0, len(values), CHUNK):
        yield values[start : start + CHUNK]


def _outside(what) -> str:
    return gettext(
        "The selected %(what)s does not exist or is outside your data scope.", what=str(what)
    )


def _day(value) -> dt.date:
    """A date as given (a date, a datetime, ISO or ROC text); DateFormatError otherwise."""
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if value is None or (isinstance(value, str) and not value.strip()):
        raise DateFormatError(
            gettext("Please fill in %(field)s.", field=gettext("Assessment date"))
        )
    return parse_date(str(value)[:40])


class AssessmentBatch:
    """The checks of one batch: what it refers to, read once (prepare), then each entry
    checked in memory (check), then all rows inserted (insert)."""

    def __init__(self, scope=None):
        self.scope = scope or current_scope()
        self.courses: dict[int, _Course] = {}
        self.instruments: dict[int, _Instrument] = {}
        self.by_code: dict[str, list[_Instrument]] = {}
        self.serving: set[tuple[int, int]] = set()
        self.by_national_id: dict[tuple[str, int], int] = {}
        self.today = clock.today()

    # ------------------------------------------------------------ read once
    def prepare(self, entries: list[BulkEntry]) -> None:
        """Read the courses, instruments (with their published versions) and assessors the
        entries name, each in the user's scope, in a few queries."""
        course_ids = {i for e in entries if (i := _valid_id(e.course)) is not None}
        for chunk in _chunks(course_ids):
            for row in db.session.execute(
                select(Course.id, Course.case_id, Course.institution_id, Course.start_date, Course.end_date)
                .where(Course.id.in_(chunk), Course.scope_clause(self.scope))
            ):  # fmt: skip
                self.courses[row[0]] = _Course(*row)
        ids = {i for e in entries if (i := _valid_id(e.instrument)) is not None}
        codes = {
            str(e.instrument_code).strip()[:40]
            for e in entries
            if e.instrument is None and e.instrument_code
        }
        found = []
        for chunk in _chunks(ids):
            found += db.session.execute(self._instrument_query(Instrument.id.in_(chunk))).all()
        for chunk in _chunks(codes):
            found += db.session.execute(self._instrument_query(Instrument.code.in_(chunk))).all()
        for row in found:
            if row[0] not in self.instruments:
                self.instruments[row[0]] = _Instrument(*row)
        for instrument in self.instruments.values():
            self.by_code.setdefault(instrument.code, []).append(instrument)
        for chunk in _chunks(self.instruments):
            for version_id, instrument_id, number, definition in db.session.execute(
                select(InstrumentVersion.id, InstrumentVersion.instrument_id, InstrumentVersion.number,
                       InstrumentVersion.definition)
                .where(InstrumentVersion.instrument_id.in_(chunk),
                       InstrumentVersion.status == VersionStatus.PUBLISHED.value)
            ):  # fmt: skip
                self.instruments[instrument_id].versions[number] = (version_id, definition)
        institutions = {c.institution_id for c in self.courses.values()}
        for chunk in _chunks(institutions):
            self.serving |= set(db.session.execute(
                select(ServiceAssignment.practitioner_id, ServiceAssignment.institution_id)
                .where(ServiceAssignment.institution_id.in_(chunk))
            ).tuples())  # fmt: skip
        national_ids = {
            normalize_id(str(e.author_national_id)) for e in entries if e.author_national_id
        }
        for chunk in _chunks(national_ids):
            for practitioner_id, national_id, institution_id in db.session.execute(
                select(Practitioner.id, Practitioner.national_id, ServiceAssignment.institution_id)
                .join(ServiceAssignment, ServiceAssignment.practitioner_id == Practitioner.id)
                .where(Practitioner.national_id.in_(chunk), ServiceAssignment.institution_id.in_(institutions))
            ):  # fmt: skip
                self.by_national_id[(national_id, institution_id)] = practitioner_id

    def _instrument_query(self, condition):
        return select(Instrument.id, Instrument.institution_id, Instrument.code, Instrument.title,
                      Instrument.enabled).where(condition, Instrument.scope_clause(self.scope))  # fmt: skip

    # ------------------------------------------------------------ one entry
    def _instrument(
        self, entry: BulkEntry, course: _Course | None, errors: dict
    ) -> _Instrument | None:
        if entry.instrument is not None and entry.instrument != "":
            found = self.instruments.get(_valid_id(entry.instrument) or 0)
            if found is None:
                errors["instrument"] = _outside(Instrument.__label__)
            return found
        code = str(entry.instrument_code or "").strip()
        if not code:
            errors["instrument"] = gettext("Give the instrument's id or its code.")
            return None
        candidates = self.by_code.get(code, [])
        if len(candidates) > 1 and course is not None:
            # The course's institution's own instrument first, then the shipped one.
            own = [i for i in candidates if i.institution_id == course.institution_id]
            candidates = own or [i for i in candidates if i.institution_id is None] or candidates
        if not candidates:
            errors["instrument"] = _outside(Instrument.__label__)
            return None
        if len(candidates) > 1:
            errors["instrument"] = gettext(
                "More than one instrument in your scope has the code %(code)s: give its id.", code=code[:40])  # fmt: skip
            return None
        return candidates[0]

    def check(self, entry: BulkEntry) -> tuple[dict, dict | None]:
        """(errors by field or linkId, the row to insert): one of the two is empty."""
        errors: dict[str, str] = {}
        course = self.courses.get(_valid_id(entry.course) or 0)
        if course is None:
            errors["course"] = _outside(Course.__label__)
        instrument = self._instrument(entry, course, errors)
        version = None
        if instrument is not None:
            if not instrument.enabled:
                errors["instrument"] = gettext(
                    "%(title)s is not enabled: its licence must be recorded by the system administrator first.",
                    title=instrument.title)  # fmt: skip
            elif instrument.newest is None:
                errors["instrument"] = gettext(
                    "%(title)s has no published version yet.", title=instrument.title
                )
            elif entry.version in (None, ""):
                version = instrument.versions[instrument.newest]
            else:
                number = _valid_id(entry.version)
                version = instrument.versions.get(number or 0)
                if version is None:
                    errors["version"] = gettext("%(title)s has no published version %(n)s.", title=instrument.title,
                                                n=str(entry.version)[:10])  # fmt: skip
        day = None
        try:
            day = _day(entry.answered_on)
        except DateFormatError as exc:
            errors["answered_on"] = str(exc)
        if day is not None and course is not None:
            if day > self.today:
                errors["answered_on"] = gettext("The assessment date cannot be in the future.")
            elif not course.start_date <= day <= course.end_date:
                errors["answered_on"] = gettext(
                    "The assessment date must lie inside its course (%(start)s–%(end)s).",
                    start=to_roc(course.start_date), end=to_roc(course.end_date))  # fmt: skip
        author_id = None
        if course is not None:
            if entry.author_national_id not in (None, ""):
                author_id = self.by_national_id.get(
                    (normalize_id(str(entry.author_national_id)), course.institution_id)
                )
            elif (given := _valid_id(entry.author)) is not None and (
                given,
                course.institution_id,
            ) in self.serving:
                author_id = given
            if author_id is None:
                errors["author"] = gettext(
                    "The assessor must be a staff member of the course's institution."
                )
        note = entry.note
        if note is not None and not isinstance(note, str):
            note = str(note)
        if note is not None and len(note) > NOTE_MAX:
            errors["note"] = gettext("The note is at most %(n)d characters.", n=NOTE_MAX)
        clean = scored = None
        if version is not None:
            try:
                clean, scored = score_response(version[1], entry.answers)
            except AnswersRefused as exc:
                errors.update(exc.errors)
        if errors:
            return errors, None
        first = next(iter(scored.scores), None)
        return {}, {
            "version_id": version[0], "instrument_id": instrument.id, "course_id": course.id,
            "case_id": course.case_id, "institution_id": course.institution_id, "answered_on": day,
            "author_id": author_id, "answers": clean, "result": scored.as_json(), "spec": scored.spec,
            "total": scored.scores.get(first) if first else None, "band": scored.bands.get(first) if first else None,
            "note": (note or "").strip() or None,
        }  # fmt: skip

    # ------------------------------------------------------------ write
    def insert(self, rows: list[dict]) -> list[int]:
        """Every checked row in multi-row INSERTs (1,000 rows a statement), and their audit
        rows likewise; the caller commits. Returns the new ids, ascending.

        RETURNING hands back every stored column, and the audit rows are made of those: the
        id of each row with the values stored under it. (Asking SQLAlchemy for the ids in the
        order given, sort_by_parameter_order, made SQLite run one INSERT per row: 10,000
        statements.)"""
        now, actor = utcnow(), current_actor().id
        for row in rows:
            row.update(created_on=now, changed_on=now, created_by_id=actor, changed_by_id=actor)
        table = AssessmentResponse.__table__
        stored = [dict(r._mapping) for r in db.session.execute(table.insert().returning(*table.c), rows)]
        audit_bulk_insert(db.session, AssessmentResponse, stored)
        # Scope as it stands after the write (every write path ends with this check).
        institutions = {r["institution_id"] for r in stored}
        allowed = {r[0] for chunk in _chunks(institutions) for r in db.session.execute(
            select(Course.institution_id).where(Course.institution_id.in_(chunk), Course.scope_clause(self.scope))
            .distinct())}  # fmt: skip
        if institutions - allowed:
            raise BulkRefused(_outside(Course.__label__), status=404)
        return sorted(r["id"] for r in stored)


def refusal_message(refused: int, total: int) -> str:
    """The batch's one-line refusal."""
    return gettext(
        "%(bad)d of %(n)d responses have errors, so nothing was imported.", bad=refused, n=total
    )


def check_batch_size(count: int, error=BulkRefused) -> None:
    """An empty batch (400), or one over the limit (413), is refused before anything is read."""
    if count == 0:
        raise error(gettext("The batch has no responses."), status=400)
    limit = bulk_max_rows()
    if count > limit:
        raise error(gettext(
            "A batch holds at most %(n)d responses; this one has %(given)d: split it into smaller batches.",
            n=limit, given=count), status=413)  # fmt: skip


class ImportAssessments(Command):
    """A JSON batch of responses: all checked, then all stored in one commit, or none."""

    def __init__(self, entries: list[BulkEntry]):
        self.entries = entries
        self.batch = AssessmentBatch()
        self.rows: list[dict] = []

    def validate(self) -> None:
        check_batch_size(len(self.entries))
        self.batch.prepare(self.entries)
        refused = []
        for entry in self.entries:
            errors, row = self.batch.check(entry)
            if errors:
                refused.append({"line": entry.line, "errors": errors})
            else:
                self.rows.append(row)
        if refused:
            raise BulkRefused(refusal_message(len(refused), len(self.entries)), refused)

    def execute(self) -> list[int]:
        return self.batch.insert(self.rows)


# ------------------------------------------------------------------ the workbook
class WorkbookRefused(UserError):
    """An assessment workbook refused as a whole (not an .xlsx, other columns, too many rows)."""

    status = 400


#: The fixed columns of an assessment workbook, before one column per item.
FIXED_COLUMNS = [
    Column("course", _l("Treatment course number"), 1234),
    Column("answered_on", _l("Assessment date"), "114/04/01"),
    Column("author_national_id", _l("Assessor's national ID"), "A123456789"),
    Column("version", _l("Version (blank: the newest)"), None),
    Column("note", _l("Note"), None),
]
FIXED_KEYS = {column.key for column in FIXED_COLUMNS}


def item_header(link: str, text: str) -> str:
    """An item column's header: its linkId, then its text (as the per-instrument export)."""
    return f"{link} {text}".strip()[:200]


def workbook_columns(instrument: Instrument) -> list[Column]:
    """The workbook of an instrument: the fixed columns, then one per item that any
    published version has (the export's columns, so an export can be edited and re-imported)."""
    published = [v for v in instrument.versions if v.status == VersionStatus.PUBLISHED.value]
    shadow = type("Published", (), {"versions": published})
    return [
        *FIXED_COLUMNS,
        *(Column(f"item:{c.link}", item_header(c.link, c.header)) for c in export_columns(shadow)),
    ]


def workbook_notes(instrument: Instrument) -> list[str]:
    """The instructions sheet: how to fill in the rows, then every item with its answers."""
    notes = [
        gettext("One response per row, from the second row on; keep the header row as it is."),
        gettext("Treatment course number: see the sheet of the courses in progress in this file."),
        gettext("Dates: ROC (114/04/01 or 114/4/1) or ISO (2025-04-01)."),
        gettext("A choice is answered by its code or its label; several choices are separated by 、 or a comma."),
        gettext("Leave an item empty where it is not asked (a hidden item takes no answer)."),
        gettext("The same rules as the form apply; if any row fails, nothing is imported and you get the file back with an error column."),
        "",
    ]  # fmt: skip
    for version in instrument.versions:
        if version.status != VersionStatus.PUBLISHED.value:
            continue
        notes.append(gettext("Version %(n)d", n=version.number))
        definition = version.definition
        for item in answerable(definition):
            options = "；".join(
                f"{o['code']} = {o.get('display') or o['code']}"
                for o in options_of(definition, item)
            )
            required = gettext("required") if item.get("required") else ""
            notes.append(
                f"  {item['linkId']} {item.get('text') or ''} [{item['type']}] {required} {options}".rstrip()
            )
    return notes


def workbook(instrument: Instrument) -> Spreadsheet:
    """The spreadsheet of an instrument's responses, read with calamine within its own
    bounds (ASSESSMENT_BULK_MAX_BYTES, ASSESSMENT_BULK_MAX_UNPACKED_BYTES)."""
    config = current_app.config
    return Spreadsheet(
        workbook_columns(instrument), instrument.code, WorkbookRefused, workbook_notes(instrument),
        max_rows=bulk_max_rows(), reader="calamine",
        max_bytes=int(config.get("ASSESSMENT_BULK_MAX_BYTES", 8 * 1024 * 1024)),
        max_unpacked_bytes=int(config.get("ASSESSMENT_BULK_MAX_UNPACKED_BYTES", 96 * 1024 * 1024)),
    )  # fmt: skip


def _cell_reader(definition: dict, item: dict):
    """How a cell of the item becomes an answer: a choice by its code or label (several by
    、 or comma), a number as given, a date cell as ISO; the engine decides whether it is
    valid. Built once per item of a file, not per cell."""
    kind = item.get("type")
    options = options_of(definition, item)
    by_label = {str(o.get("display") or ""): o["code"] for o in options}
    codes = {o["code"] for o in options}

    def code(text: str) -> str:
        text = text.strip()
        return text if text in codes else by_label.get(text, text)

    def read(value):
        if isinstance(value, dt.datetime):
            value = value.date()
        if isinstance(value, dt.date):
            return value.isoformat()
        if kind == "date":
            try:
                return parse_date(str(value)).isoformat()
            except (DateFormatError, ValueError, OverflowError):
                return str(value)
        if not options:
            return value
        text = str(int(value)) if isinstance(value, float) and value.is_integer() else str(value)
        if kind == "multi":
            return [code(part) for part in text.replace(",", "、").replace("，", "、").split("、") if part.strip()]
        return code(text)

    return read


class WorkbookRows(RowRules):
    """The workbook's rows through the batch's checks: prepared once for the whole file,
    each row checked in memory, all rows inserted at once before the one commit."""

    row_errors = (UserError,)

    def __init__(self, instrument: Instrument, columns: list[Column]):
        self.instrument = instrument
        self.labels = {c.key: str(c.label) for c in columns}
        self.batch = AssessmentBatch()
        self.definitions = {v.number: v.definition for v in instrument.versions
                            if v.status == VersionStatus.PUBLISHED.value}  # fmt: skip
        self.readers = {number: {i["linkId"]: _cell_reader(d, i) for i in answerable(d)}
                        for number, d in self.definitions.items()}  # fmt: skip
        self.newest = max(self.definitions, default=0)
        self.rows: list[dict] = []

    def _entry(self, row: Row, cells: dict) -> BulkEntry:
        number = _valid_id(cells.get("version")) or self.newest
        readers = self.readers.get(number)
        answers = {}
        if readers is not None:
            for key, value in cells.items():
                if not key.startswith("item:") or value is None or (value.__class__ is str and not value.strip()):
                    continue
                link = key[5:]
                read = readers.get(link)
                # A column of another version answered here is refused by the engine by name.
                answers[link] = read(value) if read else value
        return BulkEntry(
            line=row.number, course=cells.get("course"), instrument=self.instrument.id,
            version=cells.get("version"), answered_on=cells.get("answered_on"),
            author_national_id=cells.get("author_national_id") or "", answers=answers,
            note=cells.get("note"),
        )  # fmt: skip

    def prepare(self, rows: list[Row], cells: list[dict]) -> None:
        self.entries = {row.number: self._entry(row, c) for row, c in zip(rows, cells, strict=True)}
        self.batch.prepare(list(self.entries.values()))

    def check(self, row: Row, cells: dict) -> None:
        errors, values = self.batch.check(self.entries[row.number])
        for key, message in errors.items():
            if key in FIXED_KEYS or key == "author":
                # The assessor is given by national ID in a workbook.
                label = self.labels["author_national_id" if key == "author" else key]
                row.errors.append(gettext("%(column)s: %(message)s", column=label, message=message))
            else:
                row.errors.append(message)  # the engine's message names the item already
        row.values = values or {}

    def save(self, row: Row) -> None:
        self.rows.append(row.values)

    def before_commit(self) -> None:
        self.batch.insert(self.rows)


def import_workbook(instrument: Instrument, data: bytes):
    """Check every row of an uploaded workbook; import them all only if none fails
    (core/imports.py Outcome: the rows, with their errors, and how many were imported)."""
    sheet = workbook(instrument)
    return sheet, sheet.run(data, WorkbookRows(instrument, list(sheet.columns)))


def template_courses(limit: int = 5000):
    """The courses in progress in the user's scope (number, patient, start) for the
    template's lookup sheet."""
    return db.session.execute(
        select(Course.id, Patient.name, Course.start_date, Course.end_date)
        .join(Case, Case.id == Course.case_id).join(Patient, Patient.id == Case.patient_id)
        .where(Course.status == CourseStatus.ACTIVE.value, Course.scope_clause(current_scope()))
        .order_by(Course.id.desc()).limit(limit)
    ).all()  # fmt: skip
