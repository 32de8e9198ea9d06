"""成癮醫療業務統計: the addiction programme's yearly reports (A11, issue 19 part 5), for the
Ministry nationally, a bureau its county, a treatment institution its own, per calendar year.

One function per section, each a handful of SQL aggregates over the year's rows (never a
Python loop over cases or records); Python only arranges the few grouped rows into tables.
All of them read rows through the scope's `institution_filter`, as every addiction view does.

Definitions (year Y = 1/1–12/31; "the cut" = 12/31 of Y, or today if earlier):

- **cases** (`cases_section`): *opened* = cases whose opening date falls in Y; *active* = cases
  opened on or before the cut and not closed before 1/1 of Y (no closing date, or one on or
  after 1/1). By substance category and by referral source (the case's own fields).
- **courses** (`courses_section`): *started* = courses whose start date falls in Y;
  *completed* / *interrupted* = courses whose history records the step to 已完成 / 中斷 on a
  day of Y (Taipei time). Completion rate = completed / (completed + interrupted).
- **attendance 出席率** (`attendance_section`): the system has no session schedule; a course's
  plan is its period (A2, 療程 start and end), and the plan is **one session per calendar month
  of the course** (the seed's law-mandated course: 12 months, at least 12 sessions). For each
  course running in Y, its window is from max(start, 1/1) to min(end, the day it left 進行中,
  the cut); *planned* = the calendar months the window touches; *held* = those months in which
  the course has at least one treatment record (lab tests are not sessions). 出席率 = held /
  planned months, summed over the courses. The number of session records is shown beside.
- **retention 留置率** (`retention_section`): the cohort is the cases opened in Y. A case is
  *still in treatment* N months (3, 6, 12) after its opening date d, at t = d + N months (the
  calendar month, 1/31 + 1 month = 2/28 or 2/29), when (a) it has no closing date on or before
  t, and (b) one of its courses covers t (start ≤ t ≤ end) and had not stopped before t: the
  course is still 進行中, or it has a treatment record dated on or after t. Only cases whose t
  is today or earlier count (the *due* ones); 留置率 = retained / due.
- **assessments on time** (`assessments_section`, A3): courses started in Y. The initial
  assessment is *on time* when answered within `ADDICTION_INITIAL_DUE_DAYS` (default 14) days
  of the start; the follow-up falls due `ADDICTION_FOLLOW_UP_MONTHS` after the start (as the
  due list says: domain/addiction/assessments.py) and is *on time* when answered on or before
  that day, *late* after it, *overdue* when missing past it. *On the due list now* counts the
  courses `courses_due_query()` lists today (the same rule: `due_condition()`).

Cached per (section, year, scope, day) under the write versions of the tables each section
reads (core/data/counts.py: any ORM flush, bulk statement or `note_written` write to them
bumps them at commit, in every process): a write that touches a figure's table is seen by the
next request; a session with uncommitted writes computes for itself and caches nothing.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from decimal import ROUND_HALF_UP, Decimal

from flask import current_app
from flask_babel import gettext
from sqlalchemy import Date, and_, case, distinct, exists, extract, func, or_, select
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.expression import FunctionElement

from core import clock
from core.data.counts import _PENDING, table_versions
from core.data.scope import Scope, ScopeKind
from core.dates import ROC_OFFSET, TAIPEI, roc_year
from core.errors import UserError
from core.extensions import cache, db
from domain.addiction.assessments import DEFAULT_FOLLOW_UP_MONTHS, due_condition
from models.addiction.case import Case, ReferralSource, SubstanceCategory
from models.addiction.course import Course, CourseStatus, CourseTransition
from models.addiction.instrument import AssessmentResponse, Instrument, InstrumentPurpose
from models.addiction.record import TreatmentKind, TreatmentRecord
from models.registry.reference import County

TOTAL = "total"
#: 留置率 is measured this many months after a case's opening.
RETENTION_MONTHS = (3, 6, 12)
DEFAULT_INITIAL_DUE_DAYS = 14
_RESULT_SECONDS = 24 * 3600


# ------------------------------------------------------------------ request checks
class ReportRequestError(UserError):
    """A report request that cannot be answered (bad year, bad county); zh_TW message."""

    status = 400


class ReportForbidden(ReportRequestError):
    """A scope wider than, or outside, the user's own."""

    status = 403


class ReportNotFound(ReportRequestError):
    """No such county, or no such section."""

    status = 404


def parse_year(text: str | None) -> int:
    """'114' (ROC) or '2025' → 2025; empty → this year; anything else a ReportRequestError.

    ASCII digits only ('١١٤' and '²' are digits to str.isdigit), 1–4 of them, a year from
    ROC 1 to this year."""
    text = (text or "").strip()
    today = clock.today()
    if not text:
        return today.year
    if not (text.isascii() and text.isdigit()) or len(text) > 4:
        raise ReportRequestError(gettext("Give the year as an ROC year, e.g. 113."))
    year = int(text)
    year = year + ROC_OFFSET if year < 1000 else year
    if not ROC_OFFSET + 1 <= year <= today.year:
        raise ReportRequestError(gettext("Give the year as an ROC year, e.g. 113."))
    return year


def report_scope(user_scope: Scope, county_code: str | None) -> tuple[Scope, County | None]:
    """The scope of a report: the user's own, or (national users only) one county's."""
    if not user_scope.has_any:
        raise ReportForbidden(gettext("Your account has no data scope."))
    code = (county_code or "").strip().upper()
    if not code:
        county = None
        if user_scope.kind == ScopeKind.COUNTY and len(user_scope.county_ids) == 1:
            county = db.session.get(County, next(iter(user_scope.county_ids)))
        return user_scope, county
    county = db.session.scalar(select(County).where(County.code == code[:10]))
    if county is None:
        raise ReportNotFound(gettext("No county with the code %(code)s.", code=code[:10]))
    if user_scope.national:
        return Scope(kind=ScopeKind.COUNTY, county_ids=frozenset([county.id])), county
    if user_scope.kind == ScopeKind.COUNTY and user_scope.county_ids == frozenset([county.id]):
        return user_scope, county
    raise ReportForbidden(gettext("You may only see the statistics of your own scope."))


# ------------------------------------------------------------------ SQL helpers
class shift_date(FunctionElement):
    """date + `months` calendar months (clamped to the month's end, as relativedelta) +
    `days` days, in SQL; the numbers are literals of the statement, not parameters."""

    type = Date()
    inherit_cache = True

    def __init__(self, expr, months: int = 0, days: int = 0):
        self.months, self.days = int(months), int(days)
        super().__init__(expr)


@compiles(shift_date, "sqlite")
def _shift_sqlite(element, compiler, **kw):
    (expr,) = list(element.clauses)
    x = compiler.process(expr, **kw)
    out = x
    if element.months:
        m = element.months
        # SQLite rolls 1/31 + 1 month over to 3/3: the smaller of that and the target
        # month's last day is relativedelta's answer.
        out = f"min(date({x}, '+{m} months'), date({x}, 'start of month', '+{m + 1} months', '-1 day'))"
    if element.days:
        out = f"date({out}, '+{element.days} days')"
    return out if out != x else f"date({x})"


@compiles(shift_date, "postgresql")
def _shift_pg(element, compiler, **kw):
    (expr,) = list(element.clauses)
    x = compiler.process(expr, **kw)
    return (
        f"CAST(({x} + INTERVAL '{element.months} months' + INTERVAL '{element.days} days') AS DATE)"
    )


class taipei_date(FunctionElement):
    """The Asia/Taipei calendar day of a naive UTC datetime column (UTC+8, no DST)."""

    type = Date()
    inherit_cache = True


@compiles(taipei_date, "sqlite")
def _taipei_sqlite(element, compiler, **kw):
    return f"date({compiler.process(list(element.clauses)[0], **kw)}, '+8 hours')"


@compiles(taipei_date, "postgresql")
def _taipei_pg(element, compiler, **kw):
    return (
        f"CAST(({compiler.process(list(element.clauses)[0], **kw)} + INTERVAL '8 hours') AS DATE)"
    )


class month_key(FunctionElement):
    """A date's calendar month as a value to count distinct (SQLite: '2025-03', from the
    stored text; PostgreSQL: the month's first day)."""

    inherit_cache = True


@compiles(month_key, "sqlite")
def _month_key_sqlite(element, compiler, **kw):
    return f"substr({compiler.process(list(element.clauses)[0], **kw)}, 1, 7)"


@compiles(month_key, "postgresql")
def _month_key_pg(element, compiler, **kw):
    return f"date_trunc('month', {compiler.process(list(element.clauses)[0], **kw)})"


def _month_index(expr):
    """year × 12 + month of a date expression (months between two dates by subtraction)."""
    return extract("year", expr) * 12 + extract("month", expr)


def _least(a, b):
    return case((a < b, a), else_=b)


def _greatest(a, b):
    return case((a > b, a), else_=b)


def _count_if(condition):
    return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)


def _utc_bounds(first: dt.date, last: dt.date) -> tuple[dt.datetime, dt.datetime]:
    """[Taipei midnight of `first`, Taipei midnight after `last`) as naive UTC datetimes."""
    start = dt.datetime.combine(first, dt.time(), TAIPEI).astimezone(dt.UTC).replace(tzinfo=None)
    end = dt.datetime.combine(last + dt.timedelta(days=1), dt.time(), TAIPEI)
    return start, end.astimezone(dt.UTC).replace(tzinfo=None)


def percent(part: int, whole: int) -> str | None:
    """part/whole as a percentage, two decimals, half up ('73.88'); None without a whole."""
    if not whole:
        return None
    return str((Decimal(part) * 100 / Decimal(whole)).quantize(Decimal("0.01"), ROUND_HALF_UP))


def _window(year: int, today: dt.date) -> tuple[dt.date, dt.date, dt.date]:
    first, last = dt.date(year, 1, 1), dt.date(year, 12, 31)
    return first, last, min(last, today)


def _rows(enum, grouped: dict, fields: tuple[str, ...], derive=None) -> list[dict]:
    """One row per member of `enum` (its order), then the total row; `grouped` maps a code
    to its figures; `derive(row)` adds the computed columns (rates). Rows carry no label:
    the cache is shared by readers of every language, so labels are put on when read."""
    rows = []
    for member in enum:
        values = grouped.get(member.value, {})
        rows.append({"key": member.value, **{f: int(values.get(f, 0)) for f in fields}})
    rows.append({"key": TOTAL, **{f: sum(r[f] for r in rows) for f in fields}})
    if derive is not None:
        for row in rows:
            row.update(derive(row))
    return rows


def _labelled(result: dict) -> dict:
    """A copy of a section's result whose rows carry their label in the reader's language."""
    labels = {m.value: str(m.label) for enum in (SubstanceCategory, ReferralSource) for m in enum}
    labels[TOTAL] = gettext("Total")
    out = {}
    for key, value in result.items():
        if isinstance(value, list) and value and isinstance(value[0], dict) and "key" in value[0]:
            value = [{"key": r["key"], "label": labels.get(r["key"], r["key"]),
                      **{k: v for k, v in r.items() if k != "key"}} for r in value]  # fmt: skip
        out[key] = value
    return out


# ------------------------------------------------------------------ sections
def cases_section(year: int, scope: Scope, today: dt.date) -> dict:
    """Cases opened in the year and active during it, by substance and by referral source."""
    first, last, cut = _window(year, today)
    opened = Case.opened_on.between(first, last)
    active = or_(Case.closed_on.is_(None), Case.closed_on >= first)
    grouped = db.session.execute(
        select(Case.substance_category, Case.referral_source, _count_if(opened), _count_if(active))
        .where(Case.scope_clause(scope), Case.opened_on <= cut)
        .group_by(Case.substance_category, Case.referral_source)
    ).all()  # fmt: skip
    by_substance: dict[str, dict] = {}
    by_referral: dict[str, dict] = {}
    for substance, referral, n_opened, n_active in grouped:
        for bucket, key in ((by_substance, substance), (by_referral, referral)):
            cell = bucket.setdefault(key, {"opened": 0, "active": 0})
            cell["opened"] += int(n_opened)
            cell["active"] += int(n_active)
    fields = ("opened", "active")
    return {
        "by_substance": _rows(SubstanceCategory, by_substance, fields),
        "by_referral": _rows(ReferralSource, by_referral, fields),
    }


def courses_section(year: int, scope: Scope, today: dt.date) -> dict:
    """Courses started, completed and interrupted in the year, by substance."""
    first, last, _cut = _window(year, today)
    started = dict(db.session.execute(
        select(Case.substance_category, func.count(Course.id))
        .join(Case, Case.id == Course.case_id)
        .where(Course.scope_clause(scope), Course.start_date.between(first, last))
        .group_by(Case.substance_category)
    ).all())  # fmt: skip
    since, until = _utc_bounds(first, last)
    ended = db.session.execute(
        select(Case.substance_category, CourseTransition.to_status, func.count(distinct(Course.id)))
        .join(Course, Course.id == CourseTransition.course_id)
        .join(Case, Case.id == Course.case_id)
        .where(Course.scope_clause(scope),
               CourseTransition.to_status.in_([CourseStatus.COMPLETED.value, CourseStatus.INTERRUPTED.value]),
               CourseTransition.at >= since, CourseTransition.at < until)
        .group_by(Case.substance_category, CourseTransition.to_status)
    ).all()  # fmt: skip
    grouped: dict[str, dict] = {k: {"started": v} for k, v in started.items()}
    for substance, status, n in ended:
        grouped.setdefault(substance, {})[status] = n
    return {
        "rows": _rows(
            SubstanceCategory,
            grouped,
            ("started", "completed", "interrupted"),
            lambda r: {
                "completion_rate": percent(r["completed"], r["completed"] + r["interrupted"])
            },
        )  # fmt: skip
    }


def attendance_section(year: int, scope: Scope, today: dt.date) -> dict:
    """出席率: months with a session held against the months planned, by substance."""
    first, last, cut = _window(year, today)
    stopped = (
        select(
            CourseTransition.course_id.label("course_id"), func.min(CourseTransition.at).label("at")
        )
        .where(CourseTransition.to_status != CourseStatus.ACTIVE.value)
        .group_by(CourseTransition.course_id)
        .subquery("stopped")
    )
    stop_day = taipei_date(stopped.c.at)
    end = case(
        (and_(stopped.c.at.is_not(None), stop_day < Course.end_date), stop_day),
        else_=Course.end_date,
    )
    windows = (
        select(Course.id.label("course_id"), Case.substance_category.label("substance"),
               _greatest(Course.start_date, first).label("ws"), _least(end, cut).label("we"))
        .join(Case, Case.id == Course.case_id)
        .outerjoin(stopped, stopped.c.course_id == Course.id)
        .where(Course.scope_clause(scope), Course.start_date <= cut, Course.end_date >= first)
        .cte("windows")
    )  # fmt: skip
    w = windows.c
    # Per course, two correlated counts read from ix_record_course_date alone (course, date,
    # id, kind; migration a19c0de5f1a2): 0.41 s CPU for the national demo year in sqlite3,
    # where a join of the records to the windows grouped by course took 0.9–1.1 s (a temp
    # B-tree over the year's ~280,000 sessions, and STRFTIME twice per record).
    sessions = (
        TreatmentRecord.course_id == w.course_id,
        TreatmentRecord.kind != TreatmentKind.LAB_TEST.value,
        TreatmentRecord.executed_on >= w.ws,
        TreatmentRecord.executed_on <= w.we,
    )
    held = select(func.count(distinct(month_key(TreatmentRecord.executed_on)))).where(*sessions)
    records = select(func.count()).select_from(TreatmentRecord).where(*sessions)
    planned = case((w.we >= w.ws, _month_index(w.we) - _month_index(w.ws) + 1), else_=0)
    per_course = select(
        w.substance.label("substance"),
        case((w.we >= w.ws, 1), else_=0).label("running"),
        planned.label("planned"),
        held.scalar_subquery().label("held"),
        records.scalar_subquery().label("records"),
    ).subquery("per_course")
    p = per_course.c
    grouped = {
        substance: {"courses": n, "planned": planned_months, "held": held_months, "records": n_records}
        for substance, n, planned_months, held_months, n_records in db.session.execute(
            select(p.substance, func.coalesce(func.sum(p.running), 0), func.coalesce(func.sum(p.planned), 0),
                   func.coalesce(func.sum(p.held), 0), func.coalesce(func.sum(p.records), 0))
            .group_by(p.substance)
        )
    }  # fmt: skip
    return {
        "rows": _rows(
            SubstanceCategory,
            grouped,
            ("courses", "planned", "held", "records"),
            lambda r: {"rate": percent(r["held"], r["planned"])},
        )  # fmt: skip
    }


def retention_section(year: int, scope: Scope, today: dt.date) -> dict:
    """留置率: of the cases opened in the year, those still in treatment 3, 6, 12 months on."""
    first, last, _cut = _window(year, today)
    columns = [func.count(Case.id)]
    for months in RETENTION_MONTHS:
        t = shift_date(Case.opened_on, months=months)
        in_course = exists().where(
            Course.case_id == Case.id, Course.start_date <= t, Course.end_date >= t,
            or_(Course.status == CourseStatus.ACTIVE.value,
                # t reads the case two levels up: correlated by name, else SQLAlchemy puts
                # addiction_case in this subquery's own FROM (any case's t, a cross join that
                # ran for minutes on PostgreSQL at the demo scale).
                exists().where(TreatmentRecord.course_id == Course.id, TreatmentRecord.executed_on >= t)
                .correlate(Course, Case)),
        )  # fmt: skip
        due = t <= today
        columns += [
            _count_if(due),
            _count_if(and_(due, or_(Case.closed_on.is_(None), Case.closed_on > t), in_course)),
        ]
    grouped = {}
    for substance, cohort, *figures in db.session.execute(
        select(Case.substance_category, *columns)
        .where(Case.scope_clause(scope), Case.opened_on.between(first, last))
        .group_by(Case.substance_category)
    ):  # fmt: skip
        cell = grouped[substance] = {"cohort": cohort}
        for n, months in enumerate(RETENTION_MONTHS):
            cell[f"due_{months}"], cell[f"retained_{months}"] = figures[2 * n], figures[2 * n + 1]
    fields = ("cohort", *(f"{k}_{m}" for m in RETENTION_MONTHS for k in ("due", "retained")))
    return {
        "months": list(RETENTION_MONTHS),
        "rows": _rows(
            SubstanceCategory, grouped, fields,
            lambda r: {f"rate_{m}": percent(r[f"retained_{m}"], r[f"due_{m}"]) for m in RETENTION_MONTHS},
        ),
    }  # fmt: skip


def initial_due_days() -> int:
    return int(current_app.config.get("ADDICTION_INITIAL_DUE_DAYS", DEFAULT_INITIAL_DUE_DAYS))


def follow_up_months() -> int:
    return int(current_app.config.get("ADDICTION_FOLLOW_UP_MONTHS", DEFAULT_FOLLOW_UP_MONTHS))


def _first_answers():
    """Per course, the first day it was assessed with an initial and with a follow-up
    instrument: one pass over the responses, grouped (a correlated subquery per course and
    purpose, four per course with the due rule's, took 1.4 s nationally on PostgreSQL at the
    demo scale, bench/addiction_reports.py)."""
    def first(purpose):
        return func.min(case((Instrument.purpose == purpose, AssessmentResponse.answered_on)))

    return (
        select(AssessmentResponse.course_id.label("course_id"),
               first(InstrumentPurpose.INITIAL.value).label("initial"),
               first(InstrumentPurpose.FOLLOW_UP.value).label("follow_up"))
        .join(Instrument, Instrument.id == AssessmentResponse.instrument_id)
        .where(Instrument.purpose.in_([InstrumentPurpose.INITIAL.value, InstrumentPurpose.FOLLOW_UP.value]))
        .group_by(AssessmentResponse.course_id)
        .subquery("first_answers")
    )  # fmt: skip


def assessments_section(year: int, scope: Scope, today: dt.date) -> dict:
    """A3 on time: the initial and follow-up assessments of the courses started in the year."""
    first, last, _cut = _window(year, today)
    answers = _first_answers()
    courses = (
        select(Case.substance_category.label("substance"), answers.c.initial, answers.c.follow_up,
               shift_date(Course.start_date, days=initial_due_days()).label("initial_due"),
               shift_date(Course.start_date, months=follow_up_months()).label("follow_up_due"),
               case((due_condition(today, answers.c.initial.is_(None), answers.c.follow_up.is_(None)), 1),
                    else_=0).label("on_due_list"))
        .join(Case, Case.id == Course.case_id)
        .outerjoin(answers, answers.c.course_id == Course.id)
        .where(Course.scope_clause(scope), Course.start_date.between(first, last))
        .subquery("year_courses")
    )  # fmt: skip
    c = courses.c
    grouped = {
        row[0]: dict(zip(_ASSESSMENT_FIELDS, row[1:], strict=True))
        for row in db.session.execute(
            select(
                c.substance, func.count(),
                _count_if(c.initial.is_not(None)), _count_if(c.initial <= c.initial_due),
                _count_if(c.follow_up_due <= today), _count_if(c.follow_up <= c.follow_up_due),
                _count_if(c.follow_up > c.follow_up_due),
                _count_if(and_(c.follow_up.is_(None), c.follow_up_due < today)),
                func.coalesce(func.sum(c.on_due_list), 0),
            ).group_by(c.substance)
        )
    }  # fmt: skip
    return {
        "initial_days": initial_due_days(),
        "follow_up_months": follow_up_months(),
        "rows": _rows(
            SubstanceCategory, grouped, _ASSESSMENT_FIELDS,
            lambda r: {"initial_rate": percent(r["initial_on_time"], r["courses"]),
                       "follow_up_rate": percent(r["follow_up_on_time"], r["follow_up_due"])},
        ),
    }  # fmt: skip


_ASSESSMENT_FIELDS = ("courses", "initial_done", "initial_on_time", "follow_up_due", "follow_up_on_time",
                      "follow_up_late", "follow_up_overdue", "on_due_list")  # fmt: skip


#: section -> (its computation, the tables it reads). The lead plugs the subsidy report of
#: the claims work (domain/addiction/claim_report.py, branch i19-claims) in here after the
#: merge, as "subsidy", with the claim tables: the page, the export and the API follow.
SECTIONS: dict[str, tuple] = {
    "cases": (cases_section, ("addiction_case", "institution")),
    "courses": (courses_section, ("course", "course_transition", "addiction_case", "institution")),
    "attendance": (attendance_section, ("course", "course_transition", "treatment_record", "addiction_case",
                                        "institution")),
    "retention": (retention_section, ("addiction_case", "course", "treatment_record", "institution")),
    "assessments": (assessments_section, ("course", "addiction_case", "assessment_response", "instrument",
                                          "institution")),
}  # fmt: skip


# ------------------------------------------------------------------ cache
def _scope_key(scope: Scope) -> str:
    return f"{scope.kind}:{sorted(scope.county_ids)}:{sorted(scope.institution_ids)}"


def _compute(section: str, year: int, scope: Scope, today: dt.date) -> dict:
    compute, _tables = SECTIONS[section]
    return {
        "section": section,
        "year": year,
        "roc_year": roc_year(year),
        **compute(year, scope, today),
    }


def compute_section(section: str, year: int, scope: Scope, today: dt.date | None = None) -> dict:
    """One section's tables for (year, scope), computed now (no cache)."""
    if section not in SECTIONS:
        raise ReportNotFound(gettext("No such report."))
    return _labelled(_compute(section, year, scope, today or clock.today()))


def report_section(section: str, year: int, scope: Scope, today: dt.date | None = None) -> dict:
    """One section for (year, scope), from the cache unless a write to one of its tables was
    committed since (or this session holds uncommitted writes: then computed, not cached)."""
    if section not in SECTIONS:
        raise ReportNotFound(gettext("No such report."))
    today = today or clock.today()
    session = db.session()
    if session.info.get(_PENDING):
        return _labelled(_compute(section, year, scope, today))
    tables = sorted(set(SECTIONS[section][1]))
    tokens = ",".join(f"{n}={t}" for n, t in zip(tables, table_versions(tables), strict=True))
    config = f"{initial_due_days()}:{follow_up_months()}"
    identity = f"{section}|{year}|{_scope_key(scope)}|{today}|{config}|{tokens}"
    key = "addiction-report:" + hashlib.sha1(identity.encode()).hexdigest()
    result = cache.get(key)
    if result is None:
        result = _compute(section, year, scope, today)
        cache.set(key, result, timeout=_RESULT_SECONDS)
    return _labelled(result)


__all__ = [
    "RETENTION_MONTHS",
    "SECTIONS",
    "TOTAL",
    "ReportForbidden",
    "ReportNotFound",
    "ReportRequestError",
    "compute_section",
    "parse_year",
    "percent",
    "report_scope",
    "report_section",
]
