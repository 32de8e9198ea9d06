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
from sqlalchemy import case, distinct, event, exists, func, select
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
    session = db.session
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
    visit_pairs = set(
        session.execute(
            select(Visit.practitioner_id, Institution.level_id)
            .join(Institution, Institution.id == Visit.institution_id)
            .where(*visit_in_year, in_scope)
            .distinct()
        ).all()
    )
    executing_pairs = contracted_pairs & visit_pairs

    # Table 3: visits per level, distinct quitters per level and over all levels.
    med = Visit.medication_days.is_not(None)
    edu = Visit.education_minutes.is_not(None)
    med_quitter = case((med, Visit.quitter_id))
    edu_quitter = case((edu, Visit.quitter_id))
    services_base = (
        select(Institution.level_id)
        .select_from(Visit)
        .join(Institution, Institution.id == Visit.institution_id)
    )
    table3 = {
        row[0]: tuple(int(v or 0) for v in row[1:])
        for row in session.execute(
            services_base.add_columns(
                func.sum(case((med, 1), else_=0)),
                func.sum(case((edu, 1), else_=0)),
                func.count(distinct(med_quitter)),
                func.count(distinct(edu_quitter)),
            )
            .where(*visit_in_year, in_scope)
            .group_by(Institution.level_id)
        )
    }
    national_quitters = session.execute(
        select(func.count(distinct(med_quitter)), func.count(distinct(edu_quitter)))
        .select_from(Visit)
        .join(Institution, Institution.id == Visit.institution_id)
        .where(*visit_in_year, in_scope)
    ).one()

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
    session = db.session
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
