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

The result is cached per (year, scope) under a version token; every statement that writes
to a table the figures depend on (whatever the path: ORM flush, bulk insert, Core, raw SQL)
marks its connection, and the commit replaces the token, so no figure outlives a change.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import threading
import uuid
from decimal import ROUND_HALF_UP, Decimal

from flask import has_app_context
from sqlalchemy import case, event, exists, func, select
from sqlalchemy.engine import Engine
from sqlalchemy.pool import Pool

from core.extensions import cache, db
from core.scope import Scope, ScopeKind
from models.institution import Institution
from models.practitioner import ServiceAssignment
from models.reference import InstitutionLevel
from models.visit import Visit

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
_DIRTY = "cessation_stats_dirty"  # on a connection: this transaction wrote a watched table
_POST_COMMIT = "cessation_stats_post_commit"  # bump again once the connection is returned
_missed = threading.Event()  # a bump requested outside an app context


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
                ServiceAssignment.start_date <= last,
                (ServiceAssignment.end_date.is_(None)) | (ServiceAssignment.end_date >= last),
                contracted,
                in_scope,
            )
            .distinct()
        ).all()
    )
    # One pass over the year's visits for table 2's pairs, one for table 3; both group by
    # institution (the leading column of an index) and the level is looked up in Python.
    level_of = dict(
        session.execute(select(Institution.id, Institution.level_id).where(in_scope)).all()
    )
    in_scope_visits = scope.institution_filter(Visit.institution_id)
    visit_pairs = {
        (practitioner_id, level_of[institution_id])
        for institution_id, practitioner_id in session.execute(
            select(Visit.institution_id, Visit.practitioner_id)
            .where(*visit_in_year, in_scope_visits)
            .distinct()
        )
    }
    executing_pairs = contracted_pairs & visit_pairs

    # Table 3: per (institution, quitter) how many visits had each service.
    med = case((Visit.medication_days.is_not(None), 1), else_=0)
    edu = case((Visit.education_minutes.is_not(None), 1), else_=0)
    visits = {level_id: [0, 0, set(), set()] for level_id, _, _ in levels}
    med_people, edu_people = set(), set()
    for institution_id, quitter_id, med_visits, edu_visits in session.execute(
        select(Visit.institution_id, Visit.quitter_id, func.sum(med), func.sum(edu))
        .where(*visit_in_year, in_scope_visits)
        .group_by(Visit.institution_id, Visit.quitter_id)
    ):
        row = visits.setdefault(level_of[institution_id], [0, 0, set(), set()])
        if med_visits:
            row[0] += int(med_visits)
            row[2].add(quitter_id)
            med_people.add(quitter_id)
        if edu_visits:
            row[1] += int(edu_visits)
            row[3].add(quitter_id)
            edu_people.add(quitter_id)
    table3 = {level_id: (m, e, len(mq), len(eq)) for level_id, (m, e, mq, eq) in visits.items()}
    national_quitters = (len(med_people), len(edu_people))

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
        "roc_year": year - 1911,
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


class StatisticsRequestError(ValueError):
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
    if not text.isdigit():
        raise StatisticsRequestError(gettext("Give the year as an ROC year, e.g. 113."))
    year = int(text)
    year = year + 1911 if year < 1000 else year
    if not 1912 <= year <= clock.today().year:
        raise StatisticsRequestError(gettext("Give the year as an ROC year, e.g. 113."))
    return year


def report_scope(user_scope: Scope, county_code: str | None) -> tuple[Scope, object | None]:
    """The scope of a report for a user: their own, or (national users only) one county.

    Returns (scope, county row or None). A county outside the user's own is refused.
    """
    from flask_babel import gettext

    from models.reference import County

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


def scope_key(scope: Scope) -> str:
    if scope.national:
        return "national"
    if scope.kind == ScopeKind.COUNTY:
        return "county:" + ",".join(map(str, sorted(scope.county_ids)))
    if scope.kind == ScopeKind.FACILITY:
        return "inst:" + ",".join(map(str, sorted(scope.institution_ids)))
    return "none"


def stats_version() -> str:
    """The current version token (a fresh random one if the cache lost it, so an evicted
    token can never bring back figures stored under an older one)."""
    if _missed.is_set():
        _missed.clear()
        bump_stats_version()
    version = cache.get(_VERSION_KEY)
    if version is None:
        version = uuid.uuid4().hex
        cache.set(_VERSION_KEY, version, timeout=0)
    return version


def bump_stats_version() -> None:
    """Invalidate every cached table, in every process sharing the cache."""
    if not has_app_context():
        _missed.set()
        return
    cache.set(_VERSION_KEY, uuid.uuid4().hex, timeout=0)


def _transaction_wrote_watched_tables() -> bool:
    """This session's open transaction wrote a watched table (its figures are not committed)."""
    session = db.session()
    if not session.in_transaction():
        return False
    return bool(session.connection().info.get(_DIRTY))


def cessation_statistics(year: int, scope: Scope) -> dict:
    """The three tables for (year, scope), from the cache when nothing changed since."""
    if _transaction_wrote_watched_tables():
        return compute_cessation_statistics(year, scope)
    key = f"cessation-stats:{stats_version()}:{year}:{scope_key(scope)}"
    result = cache.get(key)
    if result is None:
        result = compute_cessation_statistics(year, scope)
        cache.set(key, result, timeout=_RESULT_TIMEOUT)
    return result


# --- invalidation hooks (installed once, process-wide) --------------------------------


def _before_cursor_execute(conn, cursor, statement, parameters, context, executemany):
    if _WRITE_RE.match(statement):
        conn.info[_DIRTY] = True


class _Pending(threading.local):
    flag = False


_pending_after_commit = _Pending()


def _on_commit(conn):
    if conn.info.pop(_DIRTY, False):
        # Before the database commits (a reader may still see the old rows and cache them
        # under the new token), and again after it: when the session reports its commit,
        # or when a Core connection is handed back to the pool.
        bump_stats_version()
        conn.info[_POST_COMMIT] = True
        _pending_after_commit.flag = True


def _on_rollback(conn):
    conn.info.pop(_DIRTY, None)


def _on_checkin(dbapi_connection, record):
    if record is not None and record.info.pop(_POST_COMMIT, False):
        bump_stats_version()


def _on_session_commit(session):
    if _pending_after_commit.flag:
        _pending_after_commit.flag = False
        bump_stats_version()


def install() -> None:
    """Listen to every engine, pool and session of the process (idempotent)."""
    from sqlalchemy.orm import Session

    if event.contains(Engine, "before_cursor_execute", _before_cursor_execute):
        return
    event.listen(Engine, "before_cursor_execute", _before_cursor_execute)
    event.listen(Engine, "commit", _on_commit)
    event.listen(Engine, "rollback", _on_rollback)
    event.listen(Pool, "checkin", _on_checkin)
    event.listen(Session, "after_commit", _on_session_commit)


__all__ = [
    "TOTAL",
    "bump_stats_version",
    "cessation_statistics",
    "compute_cessation_statistics",
    "install",
]
