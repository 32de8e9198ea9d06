"""每月資料自行清查 for people who look at many institutions (C2): per-county and
per-institution summaries of a month, so that the office, the ministry and a bureau see
where to look instead of a national list of names; and the drill-down scope of one
institution (its own list, as the institution sees it).

A gap is a quitter seen at an institution in the two months before the month and not at
that institution in the month: the same definition as the institution's own gap list
(domain/cessation/workqueue.py: gap_quitters_query), counted per institution.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import and_, except_, func, or_, select

from core.data.scope import Scope
from core.extensions import db
from models.cessation.visit import Visit
from models.platform.user import ScopeKind
from models.registry.institution import ContractPeriod, Institution, InstitutionKind
from models.registry.reference import County, InstitutionLevel


@dataclass
class InstitutionRow:
    """One institution's month: visits entered, quitters possibly missed."""

    id: int
    nhi_code: str | None
    name: str
    level: str
    county_code: str
    county: str
    contracted: bool
    visits: int
    gaps: int


@dataclass
class CountyRow:
    """One county's month, summed over its institutions."""

    code: str
    name: str
    contracted: int
    executing: int
    idle: int
    visits: int
    gaps: int


def two_months_before(first: dt.date) -> dt.date:
    """The first day of the month two months before `first`."""
    before = (first - dt.timedelta(days=1)).replace(day=1)
    return (before - dt.timedelta(days=1)).replace(day=1)


def institution_rows(scope: Scope, first: dt.date, after: dt.date, today: dt.date,
                     county_id: int | None = None) -> list[InstitutionRow]:
    """Medical institutions in scope (optionally of one county) that are under contract
    today or have a visit in the month, with their visits and gaps; bulletin order."""
    in_scope = Visit.scope_clause(scope)
    visits = (
        select(Visit.institution_id.label("iid"), func.count().label("n"))
        .where(Visit.visit_date >= first, Visit.visit_date < after, in_scope)
        .group_by(Visit.institution_id).subquery()
    )  # fmt: skip
    # EXCEPT of (institution, quitter) pairs: one pass over the two months' index rows,
    # not one NOT EXISTS probe per earlier visit.
    earlier = select(Visit.institution_id, Visit.quitter_id).where(
        Visit.visit_date >= two_months_before(first), Visit.visit_date < first, in_scope
    )
    now = select(Visit.institution_id, Visit.quitter_id).where(
        Visit.visit_date >= first, Visit.visit_date < after, in_scope
    )
    pairs = except_(earlier, now).subquery()
    gaps = (
        select(pairs.c.institution_id.label("iid"), func.count().label("n"))
        .group_by(pairs.c.institution_id).subquery()
    )  # fmt: skip
    contracted = select(ContractPeriod.institution_id).where(ContractPeriod.covering(today))
    conditions = [
        Institution.kind == InstitutionKind.MEDICAL.value,
        Institution.scope_clause(scope),
        or_(Institution.id.in_(contracted), visits.c.n.is_not(None), gaps.c.n.is_not(None)),
    ]
    if county_id is not None:
        conditions.append(Institution.county_id == county_id)
    stmt = (
        select(Institution.id, Institution.nhi_code, Institution.name, InstitutionLevel.name,
               County.code, County.name, Institution.id.in_(contracted), visits.c.n, gaps.c.n)
        .join(County, County.id == Institution.county_id)
        .outerjoin(InstitutionLevel, InstitutionLevel.id == Institution.level_id)
        .outerjoin(visits, visits.c.iid == Institution.id)
        .outerjoin(gaps, gaps.c.iid == Institution.id)
        .where(and_(*conditions))
        .order_by(County.sort_order, InstitutionLevel.sort_order, Institution.nhi_code, Institution.id)
    )  # fmt: skip
    return [
        InstitutionRow(r[0], r[1], r[2], r[3] or "", r[4], r[5], bool(r[6]), int(r[7] or 0), int(r[8] or 0))
        for r in db.session.execute(stmt)
    ]


def county_rows(rows: list[InstitutionRow]) -> list[CountyRow]:
    """The institution rows summed per county, in the counties' order (rows come sorted)."""
    out: dict[str, CountyRow] = {}
    for row in rows:
        county = out.setdefault(row.county_code, CountyRow(row.county_code, row.county, 0, 0, 0, 0, 0))
        county.contracted += row.contracted
        county.executing += row.contracted and row.visits > 0
        county.idle += row.contracted and row.visits == 0
        county.visits += row.visits
        county.gaps += row.gaps
    return list(out.values())


def county_in_scope(scope: Scope, code: str) -> County | None:
    """The county of that code if the user's scope reaches it (national, or their own)."""
    code = (code or "").strip().upper()
    if not code or len(code) > 3:
        return None
    county = db.session.scalar(select(County).where(County.code == code))
    if county is None:
        return None
    if scope.national or (scope.kind == ScopeKind.COUNTY and county.id in scope.county_ids):
        return county
    return None


def institution_in_scope(scope: Scope, text: str) -> Institution | None:
    """The institution of that id if it lies in the user's scope; else None (a 404)."""
    text = (text or "").strip()
    if not (text.isascii() and text.isdigit()) or len(text) > 9:
        return None
    return db.session.scalar(
        select(Institution).where(Institution.id == int(text), Institution.scope_clause(scope))
    )


def institution_scope(institution: Institution) -> Scope:
    """The scope of one institution's own list: what the institution itself sees."""
    return Scope(kind=ScopeKind.FACILITY, institution_ids=frozenset([institution.id]))


def summarises(scope: Scope) -> bool:
    """Whether the user starts from summaries (national and county users) rather than names."""
    return scope.national or scope.kind == ScopeKind.COUNTY
