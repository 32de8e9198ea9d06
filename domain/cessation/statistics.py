"""Yearly cessation statistics, bulletin tables 1–3, exactly as rule C9 defines them.

For a calendar year Y and a scope (national, one county, or some institutions):

- table 1, per level: **contracted** institutions hold a contract covering 12/31 of Y;
  **executing** ones are contracted and have at least one visit dated in Y;
- table 2, per level: **contracted** practitioners hold a service assignment covering 12/31
  of Y at a contracted institution of that level; **executing** ones are contracted there and
  are the practitioner of at least one visit dated in Y at an institution of that level.
  A person counts once in every level they qualify in, and once in the total row;
- table 3, per level: visits dated in Y at institutions of that level, whatever their
  contract status: medication visits, education visits (a visit with both counts in both),
  and visits per distinct quitter who received that service at that level; the total row
  divides by distinct quitters over all levels.

Rates are percentages with two decimals, averages one decimal, both rounded half up.

The result is cached per (year, scope) under two version tokens, a global one and one per
year; every statement that writes to a table the figures depend on (whatever the path: ORM
flush, bulk insert, Core, raw SQL) marks its connection with the years it changes, and the
commit replaces those years' tokens, so no figure outlives a change. A visit write touches
the years of its dates (old and new on an update); a registry write, or any visit write
whose dates cannot be told (raw SQL, UPDATE by a condition), touches every year.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import threading
from decimal import ROUND_HALF_UP, Decimal

from sqlalchemy import (
    Delete,
    Insert,
    Integer,
    Update,
    case,
    distinct,
    event,
    exists,
    func,
    inspect,
    literal,
    select,
    union_all,
)
from sqlalchemy.engine import Engine
from sqlalchemy.pool import Pool
from sqlalchemy.sql import operators
from sqlalchemy.sql.elements import BinaryExpression, BindParameter, BooleanClauseList

from core.data.scope import Scope, ScopeKind
from core.data.versions import bump, versions
from core.dates import gregorian_year, roc_year
from core.errors import UserError
from core.extensions import cache, db
from domain.registry.persons import person_merged
from models.cessation.visit import Visit
from models.registry.institution import Institution
from models.registry.practitioner import ServiceAssignment
from models.registry.reference import InstitutionLevel

log = logging.getLogger(__name__)

TOTAL = "total"
#: Tables whose rows change a figure (levels and counties only by name, but cheap to watch).
WATCHED_TABLES = (
    "visit", "institution", "contract_period", "service_assignment", "practitioner", "institution_level",
)  # fmt: skip
_WRITE_RE = re.compile(
    r"^\s*(?:insert\s+(?:or\s+\w+\s+)?into|update|delete\s+from|truncate(?:\s+table)?)\s+"
    r"(?:only\s+)?(?:\"?\w+\"?\.)?\"?(" + "|".join(WATCHED_TABLES) + r")\"?(?:\s|\(|$|,|;)",
    re.IGNORECASE,
)
_VERSION_KEY = "cessation-stats:version"
_RESULT_TIMEOUT = 24 * 3600
#: In a set of years: every year (a registry change, or a write whose years are unknown).
ALL = "all"
_DIRTY = "cessation_stats_dirty"  # on a connection: the years this transaction changed
_POST_COMMIT = "cessation_stats_post_commit"  # bump them again once the connection is returned
_ORM_ROWS = "cessation_stats_orm_rows"  # visit id -> years, told by the unit of work


# --- rounding -------------------------------------------------------------------------


def rate(part: int, whole: int) -> str | None:
    """part/whole as a percentage with two decimals ('73.88'); None when whole is 0."""
    if not whole:
        return None
    return str((Decimal(part) * 100 / Decimal(whole)).quantize(Decimal("0.01"), ROUND_HALF_UP))


def average(visits: int, people: int) -> str | None:
    """visits/people with one decimal ('2.8'); None without people."""
    if not people:
        return None
    return str((Decimal(visits) / Decimal(people)).quantize(Decimal("0.1"), ROUND_HALF_UP))


# --- computation ----------------------------------------------------------------------


def compute_cessation_statistics(year: int, scope: Scope) -> dict:
    """The three tables for Gregorian `year` within `scope` (no cache)."""
    first, last = dt.date(year, 1, 1), dt.date(year, 12, 31)
    session = db.session.connection()  # Core rows: no ORM row processing over 10^5 rows
    levels = session.execute(
        select(InstitutionLevel.id, InstitutionLevel.code, InstitutionLevel.name).order_by(
            InstitutionLevel.sort_order
        )
    ).all()
    in_scope = scope.institution_filter(Institution.id)
    contracted = Institution.contracted_at_year_end(year)
    visit_in_year = (Visit.visit_date >= first, Visit.visit_date <= last)

    # Table 1: one row per level, an index probe per institution for "any visit in Y".
    has_visit = exists().where(Visit.institution_id == Institution.id, *visit_in_year)
    table1 = {
        level_id: (int(n), int(executing or 0))
        for level_id, n, executing in session.execute(
            select(Institution.level_id, func.count(), func.sum(case((has_visit, 1), else_=0)))
            .where(contracted, in_scope)
            .group_by(Institution.level_id)
        )
    }

    # Table 2: (practitioner, level) pairs contracted at year end, and those with a visit.
    contracted_pairs = set(
        session.execute(
            select(ServiceAssignment.practitioner_id, Institution.level_id)
            .join(Institution, Institution.id == ServiceAssignment.institution_id)
            .where(
                ServiceAssignment.covering(last),
                contracted,
                in_scope,
            )
            .distinct()
        ).all()
    )
    # The year's visits are read from the covering index ix_visit_statistics alone.
    in_scope_visits = scope.institution_filter(Visit.institution_id)
    visit_pairs = set(
        session.execute(
            select(Visit.practitioner_id, Institution.level_id)
            .join(Institution, Institution.id == Visit.institution_id)
            .where(*visit_in_year, in_scope_visits)
            .distinct()
        ).all()
    )
    executing_pairs = contracted_pairs & visit_pairs

    # Table 3: one pass over the year's visits groups them by (level, quitter); the same
    # derived set then gives each level's visits and quitters, and the distinct quitters of
    # the total row (a quitter seen at two levels counts once there).
    med = func.sum(case((Visit.medication_days.is_not(None), 1), else_=0))
    edu = func.sum(case((Visit.education_minutes.is_not(None), 1), else_=0))
    per_quitter = (
        select(Institution.level_id.label("level_id"), Visit.quitter_id.label("quitter_id"),
               med.label("med"), edu.label("edu"))
        .join(Institution, Institution.id == Visit.institution_id)
        .where(*visit_in_year, in_scope_visits)
        .group_by(Institution.level_id, Visit.quitter_id)
        .cte("per_quitter")
    )  # fmt: skip
    q = per_quitter.c
    with_med = case((q.med > 0, 1), else_=0)
    with_edu = case((q.edu > 0, 1), else_=0)
    by_level = select(
        q.level_id, func.sum(q.med), func.sum(q.edu), func.sum(with_med), func.sum(with_edu)
    )
    national = select(
        literal(None, Integer), literal(0, Integer), literal(0, Integer),
        func.count(distinct(case((q.med > 0, q.quitter_id)))),
        func.count(distinct(case((q.edu > 0, q.quitter_id)))),
    )  # fmt: skip
    table3, national_quitters = {}, (0, 0)
    for level_id, med_visits, edu_visits, med_quitters, edu_quitters in session.execute(
        union_all(by_level.group_by(q.level_id), national)
    ):
        if level_id is None:
            national_quitters = (int(med_quitters or 0), int(edu_quitters or 0))
        else:
            table3[level_id] = (
                int(med_visits),
                int(edu_visits),
                int(med_quitters),
                int(edu_quitters),
            )

    institutions, practitioners, services = [], [], []
    for level_id, code, name in levels:
        n, executing = table1.get(level_id, (0, 0))
        institutions.append(_rate_row(code, name, n, executing))
        n = sum(1 for _, lv in contracted_pairs if lv == level_id)
        executing = sum(1 for _, lv in executing_pairs if lv == level_id)
        practitioners.append(_rate_row(code, name, n, executing))
        services.append(_service_row(code, name, *table3.get(level_id, (0, 0, 0, 0))))
    institutions.append(
        _rate_row(
            TOTAL,
            None,
            sum(r["contracted"] for r in institutions),
            sum(r["executing"] for r in institutions),
        )
    )
    practitioners.append(
        _rate_row(
            TOTAL, None, len({p for p, _ in contracted_pairs}), len({p for p, _ in executing_pairs})
        )
    )
    services.append(
        _service_row(
            TOTAL, None,
            sum(r["medication_visits"] for r in services), sum(r["education_visits"] for r in services),
            int(national_quitters[0] or 0), int(national_quitters[1] or 0),
        )
    )  # fmt: skip
    return {
        "year": year,
        "roc_year": roc_year(year),
        "institutions": institutions,
        "practitioners": practitioners,
        "services": services,
    }


def _rate_row(code, name, contracted: int, executing: int) -> dict:
    return {"level": code, "name": name, "contracted": contracted, "executing": executing,
            "rate": rate(executing, contracted)}  # fmt: skip


def _service_row(code, name, med_visits, edu_visits, med_quitters, edu_quitters) -> dict:
    return {
        "level": code,
        "name": name,
        "medication_visits": med_visits,
        "education_visits": edu_visits,
        "medication_quitters": med_quitters,
        "education_quitters": edu_quitters,
        "medication_average": average(med_visits, med_quitters),
        "education_average": average(edu_visits, edu_quitters),
    }


# --- what a request may ask for -------------------------------------------------------


class StatisticsRequestError(UserError, ValueError):
    """A report request that cannot be answered; `status` is the HTTP code, the message zh_TW."""

    status = 400


class StatisticsForbidden(StatisticsRequestError):
    """The user asked for a scope wider than or outside their own."""

    status = 403


class StatisticsNotFound(StatisticsRequestError):
    """No such county."""

    status = 404


def default_year() -> int:
    """The last complete calendar year."""
    from core import clock

    return clock.today().year - 1


def parse_year(text: str | None) -> int:
    """'113' (ROC) or '2024' → 2024; empty → the last complete year; else an error."""
    from flask_babel import gettext

    from core import clock

    text = (text or "").strip()
    if not text:
        return default_year()
    if not (text.isascii() and text.isdigit()) or len(text) > 4:  # '²'.isdigit() is True
        raise StatisticsRequestError(gettext("Give the year as an ROC year, e.g. 113."))
    year = int(text)
    year = gregorian_year(year)
    if not 1912 <= year <= clock.today().year:
        raise StatisticsRequestError(gettext("Give the year as an ROC year, e.g. 113."))
    return year


def report_scope(user_scope: Scope, county_code: str | None) -> tuple[Scope, object | None]:
    """The scope of a report for a user: their own, or (national users only) one county.

    Returns (scope, county row or None). A county outside the user's own is refused.
    """
    from flask_babel import gettext

    from models.registry.reference import County

    if not user_scope.has_any:
        raise StatisticsForbidden(gettext("Your account has no data scope."))
    county_code = (county_code or "").strip().upper()
    if not county_code:
        county = None
        if user_scope.kind == ScopeKind.COUNTY and len(user_scope.county_ids) == 1:
            county = db.session.get(County, next(iter(user_scope.county_ids)))
        return user_scope, county
    county = db.session.scalar(select(County).where(County.code == county_code))
    if county is None:
        raise StatisticsNotFound(gettext("No county with the code %(code)s.", code=county_code))
    if user_scope.national:
        return Scope(kind=ScopeKind.COUNTY, county_ids=frozenset([county.id])), county
    if user_scope.kind == ScopeKind.COUNTY and user_scope.county_ids == frozenset([county.id]):
        return user_scope, county
    raise StatisticsForbidden(gettext("You may only see the statistics of your own scope."))


# --- cache ----------------------------------------------------------------------------
#
# Every cached table is keyed by two tokens: a global one (a change to the registry, or any
# write whose years cannot be told) and one per calendar year (a visit written with a date
# in that year). A visit entry dated 2025 therefore leaves the 2024 tables cached.


def scope_key(scope: Scope) -> str:
    if scope.national:
        return "national"
    if scope.kind == ScopeKind.COUNTY:
        return "county:" + ",".join(map(str, sorted(scope.county_ids)))
    if scope.kind == ScopeKind.FACILITY:
        return "inst:" + ",".join(map(str, sorted(scope.institution_ids)))
    return "none"


def _year_key(year: int) -> str:
    return f"{_VERSION_KEY}:{year}"


def stats_version(year: int) -> str:
    """The current token of `year`'s tables: the global token and the year's own
    (core/data/versions.py: fresh random ones if the cache lost them, so an evicted token
    never brings back figures stored under an older one)."""
    token, year_token = versions(_VERSION_KEY, _year_key(year))
    return f"{token}:{year_token}"


def bump_stats_version(years=None) -> None:
    """Invalidate the cached tables of `years` (every year when None or when it holds ALL),
    in every process sharing the cache."""
    if years is None or ALL in years:
        bump(_VERSION_KEY)
    else:
        bump(*(_year_key(int(year)) for year in years))


def _transaction_wrote(year: int) -> bool:
    """This session's open transaction wrote figures of `year` (not committed yet)."""
    session = db.session()
    if not session.in_transaction():
        return False
    dirty = session.connection().info.get(_DIRTY)
    return bool(dirty) and (ALL in dirty or year in dirty)


def cessation_statistics(year: int, scope: Scope) -> dict:
    """The three tables for (year, scope), from the cache when nothing changed since."""
    if _transaction_wrote(year):
        return compute_cessation_statistics(year, scope)
    key = f"cessation-stats:{stats_version(year)}:{year}:{scope_key(scope)}"
    result = cache.get(key)
    if result is None:
        result = compute_cessation_statistics(year, scope)
        cache.set(key, result, timeout=_RESULT_TIMEOUT)
    return result


# --- which years a write touches ------------------------------------------------------


def _mark(conn, years) -> None:
    conn.info.setdefault(_DIRTY, set()).update(years)


def _dates_years(values) -> set | None:
    """The years of a list of dates; None if any value is not a date."""
    years = set()
    for value in values:
        if not isinstance(value, dt.date):
            return None
        years.add(value.year)
    return years


def _orm_row_years(mapper, connection, target) -> None:
    """Unit of work, before a visit row is updated or deleted: remember the years its old
    and new dates fall in, by id, for the statement that follows (see _visit_write_years)."""
    history = inspect(target).attrs.visit_date.history
    if not (history.unchanged or history.deleted):
        return  # the date it had is not known here: the statement will touch every year
    years = _dates_years([*history.added, *history.unchanged, *history.deleted])
    if years and target.id is not None:
        connection.info.setdefault(_ORM_ROWS, {})[target.id] = years


def _pk_bind_key(statement) -> str | None:
    """'id' for the unit of work's `WHERE visit.id = :id`; None for any other condition."""
    where = statement.whereclause
    if isinstance(where, BooleanClauseList) and len(where.clauses) == 1:
        where = where.clauses[0]
    if (
        isinstance(where, BinaryExpression)
        and where.operator is operators.eq
        and getattr(where.left, "name", None) == "id"
        and getattr(getattr(where.left, "table", None), "name", None) == Visit.__tablename__
        and isinstance(where.right, BindParameter)
    ):
        return where.right.key
    return None


def _visit_write_years(conn, context) -> set | None:
    """The years a statement writing the visit table touches, or None when they cannot be
    told (raw SQL, INSERT ... SELECT, upserts, UPDATE/DELETE by any condition but the id of
    a row the unit of work described): then every year is invalidated."""
    compiled = getattr(context, "compiled", None)
    statement = getattr(compiled, "statement", None)
    parameters = getattr(context, "compiled_parameters", None)
    table = getattr(statement, "table", None)  # ORM statements carry an annotated copy
    if not parameters or getattr(table, "name", None) != Visit.__tablename__:
        return None
    if isinstance(statement, Insert):
        if statement.select is not None or statement._post_values_clause is not None:
            return None
        return _dates_years([p.get("visit_date") for p in parameters])
    if not isinstance(statement, Update | Delete):
        return None
    key = _pk_bind_key(statement)
    if key is None:
        return None
    described = conn.info.get(_ORM_ROWS, {})
    years = set()
    for p in parameters:
        row_years = described.pop(p.get(key), None)
        if row_years is None:
            return None
        years |= row_years
        if "visit_date" in p:  # SET visit_date = :visit_date
            new = _dates_years([p["visit_date"]])
            if new is None:
                return None
            years |= new
    return years


# --- invalidation hooks (installed once, process-wide) --------------------------------


def _before_cursor_execute(conn, cursor, statement, parameters, context, executemany):
    match = _WRITE_RE.match(statement)
    if not match:
        return
    years = None
    if match.group(1).lower() == "visit":
        years = _visit_write_years(conn, context)
    _mark(conn, years if years is not None else {ALL})


class _Pending(threading.local):
    years: set | None = None


_pending_after_commit = _Pending()


def _on_commit(conn):
    conn.info.pop(_ORM_ROWS, None)
    years = conn.info.pop(_DIRTY, None)
    if years:
        # Before the database commits (a reader may still see the old rows and cache them
        # under the new token), and again after it: when the session reports its commit,
        # or when a Core connection is handed back to the pool.
        bump_stats_version(years)
        conn.info.setdefault(_POST_COMMIT, set()).update(years)
        _pending_after_commit.years = (_pending_after_commit.years or set()) | years


def _on_rollback(conn):
    conn.info.pop(_DIRTY, None)
    conn.info.pop(_ORM_ROWS, None)


def _on_checkin(dbapi_connection, record):
    if record is not None:
        years = record.info.pop(_POST_COMMIT, None)
        if years:
            bump_stats_version(years)


def _on_session_commit(session):
    years, _pending_after_commit.years = _pending_after_commit.years, None
    if years:
        bump_stats_version(years)


def install() -> None:
    """Listen to every engine, pool, session and visit write of the process (idempotent)."""
    from sqlalchemy.orm import Session

    if event.contains(Engine, "before_cursor_execute", _before_cursor_execute):
        return
    event.listen(Engine, "before_cursor_execute", _before_cursor_execute)
    event.listen(Engine, "commit", _on_commit)
    event.listen(Engine, "rollback", _on_rollback)
    event.listen(Pool, "checkin", _on_checkin)
    event.listen(Session, "after_commit", _on_session_commit)
    event.listen(Visit, "before_update", _orm_row_years)
    event.listen(Visit, "before_delete", _orm_row_years)
    # A merged person changes the distinct quitters per level (C9).
    person_merged.connect(_on_person_merged)


def _on_person_merged(model, **_) -> None:
    """A quitter's registrations were merged: every year's distinct counts may change."""
    bump_stats_version()


__all__ = [
    "ALL",
    "TOTAL",
    "bump_stats_version",
    "cessation_statistics",
    "compute_cessation_statistics",
    "install",
]
