"""What can be claimed (A7, A8, A9, A10): the claimable lines of a person's subsidy year.

A7  a line is one (case, subsidy item, execution date): the orders mapped to that item that
    day collapse to it, so one order or three make the same line; an item is claimable on a
    day only where a treatment record of a kind that justifies it (and, if the item says so,
    by one of its professions) exists that day for the case — no record, no claim, whatever
    the orders.
A8  a line belongs to the subsidy year of its execution date, never its order date.
A9  lines inside the cap are allocated against the person's annual cap in one fixed order —
    execution date, then the line's id (its HIS order id and line, then institution) — so the
    result never depends on the order in which orders or records were entered; the cap is the
    person's across institutions (minors may have their own); the case-management fee never
    counts toward it, and an institution without a matching order may add that item itself
    (AddCaseManagementFee). Each line that cannot be claimed says why (REASONS).
A10 a line is offered to the central schemes first, then to the local schemes of its
    institution's county, and paid by the first that can pay it: never twice.

An institution sees its own lines and, of a person's cap, only the amount that remains.
Budgets: each scheme-year's spending is the sum of its paid lines nationally (central) or in
its county (local); lines past the budget (same fixed order over every person) are flagged
"over budget" in the spending and unclaimed reports, and with SCHEME_BUDGET_POLICY = "stop"
they are not paid there.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field

from flask import current_app, has_app_context
from flask_babel import gettext
from flask_babel import lazy_gettext as _l
from sqlalchemy import Date, String, bindparam, select, type_coerce

from core.commands import Command
from core.data.scope import SYSTEM_SCOPE
from core.errors import UserError
from core.extensions import db
from models.addiction.case import Case, Patient
from models.addiction.course import Course
from models.addiction.his import HisOrder, OrderCodeMapping, OrderSource
from models.addiction.record import TreatmentRecord
from models.addiction.scheme import SchemeItem, SchemeStatus, SubsidyScheme
from models.registry.institution import Institution

#: Why a line is not (fully) claimable.
REASONS = {
    "unmapped": _l("Order code not mapped to a subsidy item"),
    "no_item": _l("No scheme in force has this item"),
    "outside_course": _l("Outside the case's treatment courses"),
    "not_eligible": _l("Case category not eligible for this item"),
    "no_record": _l("No treatment record of a kind that justifies it that day"),
    "over_cap": _l("Over the person's annual cap"),
    "over_budget": _l("Over the scheme's budget"),
}
#: The order of the checks, and which reason a line shows when several schemes refuse it.
_PRIORITY = ["over_cap", "no_record", "not_eligible", "outside_course", "no_item", "unmapped"]


def budget_policy() -> str:
    if has_app_context():
        return current_app.config.get("SCHEME_BUDGET_POLICY", "flag")
    return "flag"


@dataclass(frozen=True)
class Version:
    id: int
    code: str
    name: str
    county_id: int | None
    substance: str
    effective_from: dt.date
    cap_adult: int
    cap_minor: int | None
    minor_age: int
    budget: int
    items: dict  # item code -> Item

    def cap_for_age(self, age: int) -> int:
        if self.cap_minor is not None and age < self.minor_age:
            return self.cap_minor
        return self.cap_adult


@dataclass(frozen=True)
class Item:
    code: str
    name: str
    unit_amount: int
    within_cap: bool
    case_management_fee: bool
    kinds: frozenset
    professions: frozenset
    categories: frozenset


@dataclass(slots=True)
class Line:
    """One (case, item, execution date) and what it may claim."""

    case_id: int
    institution_id: int
    item_code: str | None
    executed_on: dt.date
    key: tuple  # (HIS order id, line, institution id): the fixed tiebreak within a day
    orders: list = field(default_factory=list)  # HisOrder ids collapsed into the line
    order_code: str | None = None
    scheme_code: str | None = None
    scheme_id: int | None = None
    item_name: str | None = None
    unit_amount: int = 0
    amount: int = 0
    within_cap: bool = False
    reason: str | None = None
    over_budget: bool = False

    @property
    def sort_key(self):
        return (self.executed_on, self.key)

    @property
    def claimable(self) -> bool:
        return self.amount > 0

    @property
    def reason_label(self) -> str:
        return str(REASONS[self.reason]) if self.reason else ""


@dataclass
class PersonYear:
    patient_id: int
    year: int
    lines: list[Line]
    #: scheme code -> (cap, used, remaining) for the person's age at the year's end or today.
    caps: dict


def _raw(column):
    """A date column read as the driver gives it: PostgreSQL's driver a date, SQLite's an ISO
    text that _day turns into a date once per distinct day (SQLAlchemy's SQLite date parser,
    a regular expression per value, was a sixth of a county-year's 180,000 rows)."""
    return type_coerce(column, String)


_IDS = bindparam("ids", expanding=True)
_FIRST, _LAST = bindparam("first", type_=Date), bindparam("last", type_=Date)
# Built once: constructing the six selects cost a case page more than running them.
_ORDERS = (
    select(HisOrder.id, HisOrder.patient_id, HisOrder.case_id, HisOrder.institution_id, HisOrder.his_order_id,
           HisOrder.line, HisOrder.order_code, _raw(HisOrder.executed_on), HisOrder.item_code)
    .where(HisOrder.patient_id.in_(_IDS), HisOrder.executed_on >= _FIRST, HisOrder.executed_on <= _LAST)
)  # fmt: skip
_CASES = (
    select(Case.id, Case.patient_id, Case.institution_id, Case.eligibility, Case.substance_category,
           Institution.county_id)
    .join(Institution, Institution.id == Case.institution_id).where(Case.patient_id.in_(_IDS))
)  # fmt: skip
_BIRTHS = select(Patient.id, _raw(Patient.birth_date)).where(Patient.id.in_(_IDS))
_COURSES = select(Course.case_id, _raw(Course.start_date), _raw(Course.end_date)).where(Course.case_id.in_(_IDS))
_RECORDS = (
    select(TreatmentRecord.case_id, _raw(TreatmentRecord.executed_on), TreatmentRecord.kind,
           TreatmentRecord.profession)
    .where(TreatmentRecord.case_id.in_(_IDS), TreatmentRecord.executed_on >= _FIRST,
           TreatmentRecord.executed_on <= _LAST)
)  # fmt: skip
_MAPPINGS = (
    select(OrderCodeMapping.institution_id, OrderCodeMapping.order_code, _raw(OrderCodeMapping.start_date),
           _raw(OrderCodeMapping.end_date), OrderCodeMapping.item_code)
    .where(OrderCodeMapping.institution_id.in_(_IDS))
)  # fmt: skip


class _Days(dict):
    """ISO text (SQLite) -> date, each distinct day parsed once; a date or None as it is."""

    def __missing__(self, value):
        day = dt.date.fromisoformat(value[:10]) if isinstance(value, str) else value
        self[value] = day
        return day


class Data:
    """Everything the engine reads for a set of patients and a year, in a few statements
    (Core selects built once, plain tuples fetched whole: the county-year reads ~100,000
    orders and ~80,000 records)."""

    def __init__(self, patient_ids, year: int, today: dt.date | None = None):
        self.year = year
        first, last = dt.date(year, 1, 1), dt.date(year, 12, 31)
        self.today = today or dt.date.today()
        ids = sorted(set(patient_ids))
        run = db.session.connection().execute
        days = _Days()
        self.orders = defaultdict(list)
        self.cases = {}
        self.courses = defaultdict(list)
        self.by_day = defaultdict(set)  # (case, day) -> {(kind, profession)} of its records
        self.birth = {}
        self.county_of = {}
        orders = self.orders
        for chunk in _chunks(ids):
            for oid, pid, case_id, inst, his_id, number, code, day, item in run(
                _ORDERS, {"ids": chunk, "first": first, "last": last}
            ).all():
                orders[pid].append((oid, pid, case_id, inst, his_id, number, code, days[day], item))
            for row in run(_CASES, {"ids": chunk}).all():
                self.cases[row[0]] = row
                self.county_of[row[2]] = row[5]
            self.birth.update((pid, days[birth]) for pid, birth in run(_BIRTHS, {"ids": chunk}).all())
        by_day = self.by_day
        for chunk in _chunks(sorted(self.cases)):
            for case_id, start, end in run(_COURSES, {"ids": chunk}).all():
                self.courses[case_id].append((days[start], days[end]))
            for case_id, day, kind, profession in run(_RECORDS, {"ids": chunk, "first": first, "last": last}).all():
                by_day[(case_id, days[day])].add((kind, profession))
        self.mappings = defaultdict(list)
        for chunk in _chunks(sorted(self.county_of)):
            for inst, code, start, end, item in run(_MAPPINGS, {"ids": chunk}).all():
                self.mappings[(inst, code)].append((days[start], days[end], item))
        self.families = schemes_of_year(year)
        #: (scheme code, day) -> the version in force that day (or None), filled as read.
        self.in_force: dict = {}


_MISSING = object()


def schemes_of_year(year: int) -> dict:
    """load_schemes(year), kept between requests until a scheme or an item is written."""
    if not has_app_context():
        return load_schemes(year)
    from core.web.workqueue import cached_value

    return cached_value(f"schemes-of-year:{year}", ("subsidy_scheme", "scheme_item"), lambda: load_schemes(year))


def _chunks(values, size=900):
    values = list(values)
    for start in range(0, len(values), size):
        yield values[start : start + size]


def load_schemes(year: int) -> dict[str, list[Version]]:
    """scheme code -> its published versions of the year, by effective date."""
    items = defaultdict(dict)
    schemes = db.session.execute(
        select(SubsidyScheme).where(SubsidyScheme.year == year, SubsidyScheme.status == SchemeStatus.PUBLISHED.value)
    ).scalars().all()  # fmt: skip
    ids = [s.id for s in schemes]
    if ids:
        for row in db.session.scalars(select(SchemeItem).where(SchemeItem.scheme_id.in_(ids))):
            items[row.scheme_id][row.code] = Item(
                row.code, row.name, row.unit_amount, row.within_cap, row.case_management_fee,
                SchemeItem.split(row.kinds), SchemeItem.split(row.professions), SchemeItem.split(row.categories),
            )  # fmt: skip
    families = defaultdict(list)
    for s in schemes:
        families[s.code].append(Version(s.id, s.code, s.name, s.county_id, s.substance, s.effective_from,
                                        s.cap_adult, s.cap_minor, s.minor_age, s.budget, items[s.id]))  # fmt: skip
    for versions in families.values():
        versions.sort(key=lambda v: v.effective_from)
    return dict(families)


def _in_force(versions: list[Version], day: dt.date) -> Version | None:
    found = None
    for version in versions:
        if version.effective_from <= day:
            found = version
    return found


def _age(birth: dt.date | None, day: dt.date) -> int:
    if birth is None:
        return 99
    return day.year - birth.year - ((day.month, day.day) < (birth.month, birth.day))


def _substance_matches(scheme_substance: str, case_substance: str) -> bool:
    return case_substance == "both" or case_substance == scheme_substance


def compute_person(data: Data, patient_id: int) -> PersonYear:
    """The person's lines of the year, allocated in the fixed order (A7–A10)."""
    lines: dict[tuple, Line] = {}
    unmapped: list[Line] = []
    for oid, _pid, case_id, inst, his_id, number, code, day, manual_item in data.orders.get(patient_id, ()):
        item = manual_item
        if item is None:
            for start, end, mapped in data.mappings.get((inst, code), ()):
                if start <= day and (end is None or end >= day):
                    item = mapped
                    break
        key = (his_id, number, inst)
        if item is None:
            unmapped.append(Line(case_id, inst, None, day, key, [oid], code, reason="unmapped"))
            continue
        line = lines.get((case_id, item, day))
        if line is None:
            lines[(case_id, item, day)] = Line(case_id, inst, item, day, key, [oid], code)
        else:
            line.orders.append(oid)
            if key < line.key:
                line.key, line.order_code = key, code
    used: dict[str, int] = defaultdict(int)
    families = data.families
    ordered = sorted(families.items(), key=lambda kv: (kv[1][0].county_id is not None, kv[0]))
    birth = data.birth.get(patient_id)
    courses, by_day, cases, county_of = data.courses, data.by_day, data.cases, data.county_of
    in_order = sorted(lines.values(), key=lambda ln: (ln.executed_on, ln.key))
    in_force = data.in_force
    for line in in_order:
        case = cases[line.case_id]
        county, day = county_of.get(line.institution_id), line.executed_on
        reasons = []
        age = None
        for code, versions in ordered:
            head = versions[0]
            if head.county_id is not None and head.county_id != county:
                continue
            if case[4] != "both" and case[4] != head.substance:
                continue
            version = in_force.get((code, day), _MISSING)
            if version is _MISSING:
                version = in_force[(code, day)] = _in_force(versions, day)
            item = version.items.get(line.item_code) if version else None
            if item is None:
                reasons.append("no_item")
                continue
            line.item_name, line.unit_amount = item.name, item.unit_amount
            if not any(s <= day <= e for s, e in courses.get(line.case_id, ())):
                reasons.append("outside_course")
                continue
            if item.categories and case[3] not in item.categories:
                reasons.append("not_eligible")
                continue
            done = by_day.get((line.case_id, day), ())
            if not any(k in item.kinds and (not item.professions or p in item.professions) for k, p in done):
                reasons.append("no_record")
                continue
            amount = item.unit_amount
            if item.within_cap:
                if age is None:
                    age = _age(birth, day)
                room = version.cap_for_age(age) - used[code]
                if room <= 0:
                    reasons.append("over_cap")
                    continue
                amount = min(amount, room)
                used[code] += amount
                if amount < item.unit_amount:
                    line.reason = "over_cap"  # paid in part: the cap ran out on this line
            line.scheme_code, line.scheme_id, line.amount, line.within_cap = code, version.id, amount, item.within_cap
            break
        if line.scheme_code is None:
            line.reason = min(reasons, key=_PRIORITY.index) if reasons else "no_item"
    day = min(data.today, dt.date(data.year, 12, 31))
    caps = {}
    for code, versions in families.items():
        version = _in_force(versions, day) or versions[0]
        cap = version.cap_for_age(_age(birth, day))
        caps[code] = (cap, used[code], max(cap - used[code], 0))
    result = in_order + unmapped
    return PersonYear(patient_id, data.year, result, caps)


def case_year(case: Case, year: int, today: dt.date | None = None) -> tuple[list[Line], dict]:
    """One case's lines of the year and the remaining cap of its person per scheme (A9:
    computed over the person's lines at every institution; only the remaining amount leaves
    this function, never another institution's lines)."""
    data = Data([case.patient_id], year, today)
    person = compute_person(data, case.patient_id)
    mine = [line for line in person.lines if line.case_id == case.id]
    relevant = {code for code, versions in data.families.items()
                if _substance_matches(versions[0].substance, case.substance_category)
                and versions[0].county_id in (None, data.county_of.get(case.institution_id))}  # fmt: skip
    remaining = {code: person.caps[code][2] for code in sorted(relevant)}
    names = {code: data.families[code][-1].name for code in relevant}
    return mine, {"remaining": remaining, "names": names,
                  "within": {code: any(i.within_cap for v in data.families[code] for i in v.items.values())
                             for code in relevant}}  # fmt: skip


def territory_patients(year: int, institution_clause) -> list[int]:
    first, last = dt.date(year, 1, 1), dt.date(year, 12, 31)
    return list(db.session.scalars(
        select(HisOrder.patient_id).join(Institution, Institution.id == HisOrder.institution_id)
        .where(institution_clause, HisOrder.executed_on >= first, HisOrder.executed_on <= last).distinct()
    ))  # fmt: skip


@dataclass
class Territory:
    """Every line of the persons treated in a territory (institutions) in a year."""

    year: int
    lines: list[Line]
    families: dict
    county_of: dict


def compute_territory(year: int, institution_clause=None, today=None) -> Territory:
    """The lines of every person with an order in the year at an institution of the clause
    (all institutions by default), over all their institutions (the cap is per person), with
    each scheme's budget applied in the fixed order over every person."""
    clause = institution_clause if institution_clause is not None else Institution.scope_clause(SYSTEM_SCOPE)
    patients = territory_patients(year, clause)
    data = Data(patients, year, today)
    lines = []
    for patient_id in patients:
        lines.extend(compute_person(data, patient_id).lines)
    apply_budgets(lines, data.families, budget_policy())
    return Territory(year, lines, data.families, data.county_of)


def apply_budgets(lines: list[Line], families: dict, policy: str) -> None:
    """Flag (or, with policy "stop", unpay) the paid lines past their scheme's budget, in the
    fixed order over every person. Only a scheme whose lines add up past its budget is
    sorted (100,000 lines sorted by date and id were a third of a county-year)."""
    totals: dict[str, int] = defaultdict(int)
    for line in lines:
        if line.scheme_code:
            totals[line.scheme_code] += line.amount
    over = {code for code, total in totals.items() if total > families[code][-1].budget}
    if not over:
        return
    spent: dict[str, int] = defaultdict(int)
    paid = [ln for ln in lines if ln.scheme_code in over]
    for line in sorted(paid, key=lambda ln: (ln.executed_on, ln.key)):
        budget = families[line.scheme_code][-1].budget
        if spent[line.scheme_code] + line.amount > budget:
            line.over_budget = True
            if policy == "stop":
                line.amount, line.reason = 0, "over_budget"
                continue
        spent[line.scheme_code] += line.amount


@dataclass(frozen=True)
class Spending:
    code: str
    name: str
    county_id: int | None
    budget: int
    spent: int
    lines: int
    over_budget_lines: int

    @property
    def remaining(self) -> int:
        return self.budget - self.spent

    @property
    def share(self) -> float:
        return self.spent / self.budget if self.budget else 0.0


def spending(territory: Territory, county_id: int | None = None) -> list[Spending]:
    """Per scheme: budget, what its paid lines spend (in one county's institutions, if given)."""
    totals = defaultdict(lambda: [0, 0, 0])
    for line in territory.lines:
        if not line.scheme_code or line.amount <= 0 and not line.over_budget:
            continue
        if county_id is not None and territory.county_of.get(line.institution_id) != county_id:
            continue
        t = totals[line.scheme_code]
        t[0] += line.amount
        t[1] += 1
        t[2] += line.over_budget
    result = []
    for code, versions in sorted(territory.families.items(), key=lambda kv: (kv[1][0].county_id is not None, kv[0])):
        owner = versions[0].county_id
        if county_id is not None and owner not in (None, county_id):
            continue
        spent, count, over = totals.get(code, (0, 0, 0))
        result.append(Spending(code, versions[-1].name, owner, versions[-1].budget, spent, count, over))
    return result


# ------------------------------------------------------------------ A9: the fee added by hand
class FeeError(UserError):
    """The case-management fee cannot be added."""


class AddCaseManagementFee(Command):
    """An institution with no matching order adds the case-management fee itself (A9): a
    line of source "manual", idempotent per case and day like an imported order."""

    def __init__(self, case: Case, executed_on: dt.date):
        self.case, self.day = case, executed_on

    def validate(self) -> None:
        if not isinstance(self.day, dt.date):
            raise FeeError(gettext("Give the date of the case-management service."))
        if self.case.opened_on > self.day or (self.case.closed_on and self.case.closed_on < self.day):
            raise FeeError(gettext("The case is not open on that date."))
        families = load_schemes(self.day.year)
        codes = set()
        for versions in families.values():
            version = _in_force(versions, self.day)
            if version is None or version.county_id not in (None, self.case.institution.county_id):
                continue
            if not _substance_matches(version.substance, self.case.substance_category):
                continue
            codes |= {i.code for i in version.items.values() if i.case_management_fee}
        if not codes:
            raise FeeError(gettext("No scheme in force that day has a case-management fee item."))
        self.item_code = sorted(codes)[0]

    def execute(self) -> HisOrder:
        key = {"institution_id": self.case.institution_id, "his_order_id": f"CMFEE-{self.case.id}",
               "line": self.day.toordinal()}  # fmt: skip
        existing = db.session.scalar(select(HisOrder).filter_by(**key))
        if existing is not None:
            return existing
        order = HisOrder(**key, case_id=self.case.id, patient_id=self.case.patient_id, order_code=self.item_code,
                         order_date=self.day, executed_on=self.day, quantity=1, source=OrderSource.MANUAL.value,
                         item_code=self.item_code)  # fmt: skip
        db.session.add(order)
        db.session.flush()
        return order


__all__ = ["AddCaseManagementFee", "Data", "Line", "REASONS", "case_year", "compute_person", "compute_territory",
           "spending"]
