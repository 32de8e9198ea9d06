"""Demo visits: a year shaped exactly like ROC 113 (2024), plus the months around it.

At full scale the visits of 2024 reproduce bulletin tables 1–3 (seed/cessation/bulletin113.py) under
rule C9 (domain/cessation/statistics.py):

- per level, the executing institutions of table 1 (those with the most staff) get visits;
- per level, the executing practitioners of table 2 are chosen among the staff of those
  institutions, so that every executing institution has one, and exactly as many
  two-level practitioners execute at both levels as the gap between the levels' sum and the
  total row requires;
- per level, the medication and education visits of table 3 are spread over as many
  distinct quitters as the one-decimal averages need; some quitters visit two levels, so
  that the national distinct counts give the total row's averages too.

Every quitter's visits are at least 5 days apart (C4) and every visit is by a practitioner
assigned at its institution on that day, which holds a contract then (C1). Visits in the
last months of 2023 and from 2025 to today give the other screens (self-check,
fee-deduction list) data. Inserted with Core executemany in chunks: fast, not audited.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import multiprocessing
import os
import random
import tempfile
from decimal import Decimal

from sqlalchemy import func, select

from core import clock
from core.dates import utcnow
from core.extensions import db
from core.validators import personal_id_check_digit
from domain.cessation.statistics import average, bump_stats_version
from models.cessation.visit import Quitter, Timeliness, Visit, timeliness
from models.registry.institution import ContractPeriod, Institution
from models.registry.practitioner import ServiceAssignment
from models.registry.reference import InstitutionLevel
from seed.cessation import bulletin113 as bulletin

log = logging.getLogger(__name__)

YEAR = bulletin.YEAR
LEVELS = bulletin.LEVEL_CODES
#: Bulletin table 1: executing institutions per level; table 2: executing practitioners.
EXECUTING_PER_LEVEL = [bulletin.TABLE1[c][1] for c in LEVELS]
EXECUTING_PRACTITIONERS = [bulletin.TABLE2[c][1] for c in LEVELS]
EXECUTING_PRACTITIONERS_TOTAL = bulletin.TABLE2_TOTAL[1]
#: Bulletin table 3: medication and education visits per level in ROC 113, and averages.
MEDICATION_VISITS = [bulletin.TABLE3[c][0] for c in LEVELS]
EDUCATION_VISITS = [bulletin.TABLE3[c][1] for c in LEVELS]
MEDICATION_AVERAGE = [Decimal(bulletin.TABLE3[c][2]) for c in LEVELS]
EDUCATION_AVERAGE = [Decimal(bulletin.TABLE3[c][3]) for c in LEVELS]
#: Of the quitters given both services at a level, one visit carries both.
BOTH_SHARE = 0.1
#: Visits per month outside 2024 (at full scale), for the other screens.
EXTRA_PER_MONTH = 1_500
DRUGS = ["Varenicline", "Nicotine patch", "Nicotine gum", "Nicotine lozenge"]
SURNAMES = "陳林黃張李王吳劉蔡楊許鄭謝郭洪曾邱廖賴周徐蘇葉莊呂江何蕭羅高潘簡朱鍾游彭詹胡施沈余盧梁趙顏柯翁魏孫戴"
GIVEN = "志明俊傑家豪建宏冠宇承翰怡君雅婷淑芬美玲佳穎欣怡宗翰柏翰詩涵品妤思妤宜蓁子晴育誠文彥心怡惠雯國華政達"


def quitters_for(visits: int, target: Decimal) -> int:
    """How many distinct quitters make visits/quitters round to `target` (one decimal)."""
    if visits <= 0:
        return 0
    people = max(1, min(visits, round(visits / target)))
    if average(visits, people) != str(target):  # the nearest count may round the other way
        for candidate in range(max(1, people - 50), min(visits, people + 50) + 1):
            if average(visits, candidate) == str(target):
                return candidate
    return people


def seed_visits(seed: int, scale: float, demo_institution_ids: list[int]) -> int:
    """Insert the demo visits once; returns how many visits exist afterwards."""
    return PendingVisits(seed, scale, demo_institution_ids, fork=False).finish()


class PendingVisits:
    """The demo visits, planned while the caller seeds something else: on SQLite a forked
    process plans them and writes them to a scratch database on the other core, and
    `finish()` copies them in with two INSERT … SELECT; elsewhere (or with fork=False)
    `finish()` plans and inserts them itself. Both give the same rows.

    Why: planning and writing 462,671 visits is ~30 s of pure Python, the addiction demo
    ~12 s more; side by side on 2 cores `make run` is that much shorter (measured in the
    note of the change that made this)."""

    def __init__(self, seed: int, scale: float, demo_institution_ids: list[int], fork: bool = True):
        self.count: int | None = None
        self.child = None
        if db.session.scalar(select(Visit.id).limit(1)) is not None:
            self.count = db.session.query(Visit).count()
            return
        self.plan = _Plan(random.Random(seed * 7919 + 1), scale, demo_institution_ids)
        connection = db.session.connection()
        if (
            not fork
            or connection.dialect.name != "sqlite"
            or "fork" not in multiprocessing.get_all_start_methods()
        ):
            return
        self.first_id = (connection.scalar(select(func.max(Quitter.id))) or 0) + 1
        self.folder = tempfile.TemporaryDirectory(prefix="demo-visits-")
        self.scratch = os.path.join(self.folder.name, "visits.db")
        self.child = multiprocessing.get_context("fork").Process(
            target=_plan_into, args=(self.plan, self.first_id, self.scratch), daemon=True
        )
        self.child.start()

    def finish(self) -> int:
        """Wait for the visits and insert them; how many visits exist afterwards."""
        if self.count is not None:
            return self.count
        if self.child is None:
            quitters, visits = self.plan.build()
            _insert_all(quitters, visits)
            return len(visits)
        self.child.join()
        try:
            if self.child.exitcode != 0:
                raise RuntimeError(
                    f"planning the demo visits failed (exit code {self.child.exitcode})"
                )
            return _copy_in(self.scratch)
        finally:
            self.folder.cleanup()


def _plan_into(plan: _Plan, first_id: int, path: str) -> None:
    """In the forked process: plan the visits and write them, as the driver will store
    them, to a scratch SQLite database (quitters with the ids they will get)."""
    import sqlite3

    quitters, visits = plan.build()
    now = utcnow()
    for number, row in enumerate(quitters, start=first_id):
        row["id"] = number
        row["created_on"] = row["changed_on"] = now
    ids = {row["national_id"]: row["id"] for row in quitters}
    _link_visits(visits, ids, now)
    scratch = sqlite3.connect(path)
    for table, columns, rows in (
        ("quitter", ["id", *QUITTER_COLUMNS], quitters),
        ("visit", VISIT_COLUMNS, visits),
    ):
        scratch.execute(f"CREATE TABLE {table} ({', '.join(columns)})")
        sql = f"INSERT INTO {table} VALUES ({', '.join('?' * len(columns))})"
        scratch.executemany(sql, _sqlite_rows(columns, rows))
    scratch.commit()
    scratch.close()


def _copy_in(path: str) -> int:
    """Copy the scratch database's quitters and visits into the application's tables."""
    db.session.commit()  # SQLite refuses ATTACH inside a transaction
    connection = db.session.connection()
    connection.exec_driver_sql("PRAGMA cache_size=-262144")  # the indexes are built in memory
    connection.exec_driver_sql("ATTACH DATABASE ? AS scratch", (path,))
    try:
        for table, columns in (
            (Quitter.__table__, ["id", *QUITTER_COLUMNS]),
            (Visit.__table__, VISIT_COLUMNS),
        ):
            names = ", ".join(columns)
            with _indexes_built_after(connection, table):
                connection.exec_driver_sql(
                    f"INSERT INTO {table.name} ({names}) SELECT {names} FROM scratch.{table.name} ORDER BY rowid"
                )
        count = connection.exec_driver_sql("SELECT count(*) FROM scratch.visit").scalar()
        db.session.commit()
    finally:
        connection = db.session.connection()
        connection.exec_driver_sql("DETACH DATABASE scratch")
    bump_stats_version()  # every year
    return count


class _Plan:
    """Who executes where in 2024, and the quitters and visits that make the tables."""

    def __init__(self, rng: random.Random, scale: float, demo_ids: list[int]):
        self.rng, self.scale, self.demo_ids = rng, scale, set(demo_ids)
        self.level_ids = db.session.scalars(
            select(InstitutionLevel.id).order_by(InstitutionLevel.sort_order)
        ).all()
        index = {level_id: i for i, level_id in enumerate(self.level_ids)}
        self.institutions: list[list[int]] = [[] for _ in self.level_ids]
        self.level_of: dict[int, int] = {}
        for institution_id, level_id in db.session.execute(
            # Non-hospital institutions (A1) have no level and no cessation contract.
            select(Institution.id, Institution.level_id)
            .where(Institution.level_id.is_not(None))
            .order_by(Institution.nhi_code)
        ):
            self.institutions[index[level_id]].append(institution_id)
            self.level_of[institution_id] = index[level_id]
        #: practitioner -> {level index: institution}; and each institution's staff.
        self.posts: dict[int, dict[int, int]] = {}
        self.staff: dict[int, list[int]] = {}
        self.started: dict[tuple[int, int], dt.date] = {}
        for practitioner_id, institution_id, start in db.session.execute(
            select(
                ServiceAssignment.practitioner_id,
                ServiceAssignment.institution_id,
                ServiceAssignment.start_date,
            )
            .where(ServiceAssignment.start_date <= dt.date(YEAR, 1, 1))
            .order_by(ServiceAssignment.id)
        ):
            self.posts.setdefault(practitioner_id, {})[self.level_of[institution_id]] = (
                institution_id
            )
            self.staff.setdefault(institution_id, []).append(practitioner_id)
            self.started[(practitioner_id, institution_id)] = start
        self.contract_start: dict[int, dt.date] = dict(
            db.session.execute(
                select(ContractPeriod.institution_id, func.min(ContractPeriod.start_date)).group_by(
                    ContractPeriod.institution_id
                )
            ).all()
        )
        self.quitters: list[dict] = []
        self.used_ids: set[str] = set()

    def build(self) -> tuple[list[dict], list[dict]]:
        """Every quitter and visit of the demo (pure computation: no database)."""
        self.choose_executing()
        visits = self.year_visits()
        visits += self.extra_visits()
        return self.quitters, visits

    def _target(self, value: int, ceiling: int, floor: int = 1) -> int:
        return max(0, min(ceiling, max(floor, round(value * self.scale))))

    # -- tables 1 and 2 --------------------------------------------------------------

    def choose_executing(self) -> None:
        rng = self.rng
        self.executing_institutions: list[list[int]] = []
        for level, institutions in enumerate(self.institutions):
            staffed = [i for i in institutions if self.staff.get(i)]
            # The demo facilities first, then those with the most staff.
            order = sorted(
                staffed, key=lambda i: (i not in self.demo_ids, -len(self.staff[i]), rng.random())
            )
            count = self._target(EXECUTING_PER_LEVEL[level], len(order))
            self.executing_institutions.append(order[:count])
        executing_sets = [set(x) for x in self.executing_institutions]
        pool = [
            sorted(
                p for p, posts in self.posts.items() if posts.get(level) in executing_sets[level]
            )
            for level in range(len(self.level_ids))
        ]
        wanted = [
            self._target(n, len(pool[level]), len(self.executing_institutions[level]))
            for level, n in enumerate(EXECUTING_PRACTITIONERS)
        ]
        both_wanted = max(
            0, round((sum(EXECUTING_PRACTITIONERS) - EXECUTING_PRACTITIONERS_TOTAL) * self.scale)
        )
        chosen: list[set[int]] = [set() for _ in self.level_ids]

        def elsewhere(p: int, level: int) -> bool:
            return any(p in chosen[other] for other in self.posts[p] if other != level)

        # 1. every executing institution has an executing practitioner (one-level people first)
        for level, institutions in enumerate(self.executing_institutions):
            for institution_id in institutions:
                staff = sorted(
                    self.staff[institution_id],
                    key=lambda p: (len(self.posts[p]) > 1, elsewhere(p, level), rng.random()),
                )
                chosen[level].add(staff[0])
        # 2. exactly `both_wanted` two-level people execute at both of their levels
        both = {p for p in self.posts if sum(p in chosen[level] for level in self.posts[p]) > 1}
        duals = [
            p for p in pool[0] + [q for level in pool[1:] for q in level] if len(self.posts[p]) > 1
        ]
        duals = sorted(set(duals))
        rng.shuffle(duals)
        for p in duals:
            if len(both) >= both_wanted:
                break
            levels = list(self.posts[p])
            if any(p not in pool[level] for level in levels) or p in both:
                continue
            missing = [level for level in levels if p not in chosen[level]]
            if all(len(chosen[level]) < wanted[level] for level in missing):
                for level in missing:
                    chosen[level].add(p)
                both.add(p)
        # 3. the rest of each level: people who do not execute at another level, the
        #    tightest levels first, one-level people before two-level ones
        for level in sorted(range(len(self.level_ids)), key=lambda lv: len(pool[lv]) - wanted[lv]):
            candidates = [
                p for p in pool[level] if p not in chosen[level] and not elsewhere(p, level)
            ]
            rng.shuffle(candidates)
            candidates.sort(key=lambda p: len(self.posts[p]) > 1)
            for p in candidates[: max(0, wanted[level] - len(chosen[level]))]:
                chosen[level].add(p)
        self.executing_practitioners = chosen
        if self.scale == 1.0:
            got = [len(c) for c in chosen]
            if (
                got != EXECUTING_PRACTITIONERS
                or len(set().union(*chosen)) != EXECUTING_PRACTITIONERS_TOTAL
            ):
                log.warning(
                    "executing practitioners %s (total %s) differ from the bulletin",
                    got,
                    len(set().union(*chosen)),
                )

    # -- table 3 --------------------------------------------------------------------

    def year_visits(self) -> list[dict]:
        rng = self.rng
        slots: list[dict] = []  # one per (quitter, level)
        for level in range(len(self.level_ids)):
            institutions = self.executing_institutions[level]
            if not institutions:
                continue
            med_visits = round(MEDICATION_VISITS[level] * self.scale)
            edu_visits = round(EDUCATION_VISITS[level] * self.scale)
            med_people = quitters_for(med_visits, MEDICATION_AVERAGE[level])
            edu_people = quitters_for(edu_visits, EDUCATION_AVERAGE[level])
            both = round(BOTH_SHARE * min(med_people, edu_people))
            med = _spread(rng, med_visits, med_people)
            edu = _spread(rng, edu_visits, edu_people)
            # Institutions weighted by their executing staff: each executing practitioner's
            # institution then gets at least as many visits as it has executing staff.
            executing = self.executing_practitioners[level]
            weighted = [i for i in institutions for p in self.staff[i] if p in executing]
            rng.shuffle(weighted)
            level_slots = (
                [
                    {"level": level, "med": m, "edu": e, "combined": 1}
                    for m, e in zip(med[:both], edu[:both], strict=True)
                ]
                + [{"level": level, "med": m, "edu": 0, "combined": 0} for m in med[both:]]
                + [{"level": level, "med": 0, "edu": e, "combined": 0} for e in edu[both:]]
            )
            rng.shuffle(level_slots)
            for n, slot in enumerate(level_slots):
                slot["institution"] = (
                    weighted[n % len(weighted)] if n < len(weighted) else rng.choice(weighted)
                )
            slots += level_slots
        people = self._merge(slots)
        visits_by_institution: dict[int, list[dict]] = {}
        for person in people:
            quitter = self._new_quitter()
            kinds = []
            for slot in person:
                combined = slot["combined"]
                kinds += [(slot["institution"], True, True)] * combined
                kinds += [(slot["institution"], True, False)] * (slot["med"] - combined)
                kinds += [(slot["institution"], False, True)] * (slot["edu"] - combined)
            rng.shuffle(kinds)
            for day, (institution_id, med, edu) in zip(
                _schedule(rng, len(kinds)), kinds, strict=True
            ):
                visit = _visit(rng, institution_id, quitter, day, med, edu)
                visits_by_institution.setdefault(institution_id, []).append(visit)
        # Practitioners in turn per institution: every executing one sees someone.
        visits = []
        for level in range(len(self.level_ids)):
            executing = self.executing_practitioners[level]
            for institution_id in self.executing_institutions[level]:
                staff = [p for p in self.staff[institution_id] if p in executing]
                rng.shuffle(staff)
                for n, visit in enumerate(visits_by_institution.get(institution_id, [])):
                    visit["practitioner_id"] = staff[n % len(staff)]
                    visits.append(visit)
        return visits

    def _merge(self, slots: list[dict]) -> list[list[dict]]:
        """Group slots into people so that the national distinct quitter counts give the
        total row's averages: pairs of one-service slots of two levels become one person."""
        people: list[list[dict]] = [[s] for s in slots]
        med_total = sum(s["med"] for s in slots)
        edu_total = sum(s["edu"] for s in slots)
        target_med = quitters_for(med_total, Decimal(bulletin.TABLE3_TOTAL[2]))
        target_edu = quitters_for(edu_total, Decimal(bulletin.TABLE3_TOTAL[3]))
        med_people = sum(1 for s in slots if s["med"])
        edu_people = sum(1 for s in slots if s["edu"])
        merged: list[list[dict]] = []
        for service, excess in (("med", med_people - target_med), ("edu", edu_people - target_edu)):
            other = "edu" if service == "med" else "med"
            singles = [p for p in people if len(p) == 1 and p[0][service] and not p[0][other]]
            by_level: dict[int, list[list[dict]]] = {}
            for p in singles:
                by_level.setdefault(p[0]["level"], []).append(p)
            taken: set[int] = set()
            pairs = 0
            # Pair a slot of the level with most such slots with one of another level.
            levels = sorted(by_level, key=lambda lv: -len(by_level[lv]))
            queues = {lv: list(by_level[lv]) for lv in levels}
            while pairs < excess:
                levels = sorted(
                    (lv for lv in queues if queues[lv]), key=lambda lv: -len(queues[lv])
                )
                if len(levels) < 2:
                    break
                a, b = queues[levels[0]].pop(), queues[levels[1]].pop()
                taken.update((id(a), id(b)))
                merged.append(a + b)
                pairs += 1
            people = [p for p in people if id(p) not in taken]
        return people + merged

    def _new_quitter(self) -> dict:
        rng = self.rng
        while True:
            prefix = (
                rng.choice("ABCDEFGHJKLMNPQRSTUVXYWZ")
                + rng.choice("12")
                + f"{rng.randrange(10**7):07d}"
            )
            national_id = prefix + personal_id_check_digit(prefix)
            if national_id not in self.used_ids:
                self.used_ids.add(national_id)
                break
        quitter = {
            "national_id": national_id,
            "name": rng.choice(SURNAMES) + rng.choice(GIVEN[::2]) + rng.choice(GIVEN[1::2]),
            "sex": "M" if national_id[1] == "1" else "F",
            "birth_date": dt.date(
                rng.randrange(1945, 2006), rng.randrange(1, 13), rng.randrange(1, 29)
            ),
        }
        self.quitters.append(quitter)
        return quitter

    # -- the months around 2024 -----------------------------------------------------

    def extra_visits(self) -> list[dict]:
        """Visits from 2023-10 to 2023-12 and from 2025-01 to today, by new quitters."""
        rng = self.rng
        today = clock.today()
        executing = [i for level in self.executing_institutions for i in level]
        visits: list[dict] = []
        months = [(2023, m) for m in (10, 11, 12)]
        year, month = YEAR + 1, 1
        while (year, month) <= (today.year, today.month):
            months.append((year, month))
            year, month = (year + 1, 1) if month == 12 else (year, month + 1)
        per_month = max(10, round(EXTRA_PER_MONTH * self.scale))
        for year, month in months:
            first = dt.date(year, month, 1)
            days = ((first + dt.timedelta(days=32)).replace(day=1) - first).days
            if (year, month) == (today.year, today.month):
                days = today.day
            produced = 0
            while produced < per_month:
                institution_id = rng.choice(executing)
                day = first + dt.timedelta(days=rng.randrange(days))
                if self.contract_start.get(institution_id, day) > day:
                    continue
                staff = [
                    p
                    for p in self.staff[institution_id]
                    if self.started[(p, institution_id)] <= day
                ]
                if not staff:
                    continue
                quitter = self._new_quitter()
                for _ in range(rng.choice((1, 1, 2, 3))):
                    if day > today or day.year == YEAR:
                        break
                    roll = rng.random()
                    visit = _visit(
                        rng, institution_id, quitter, day, roll < 0.75, roll >= 0.45, late=True
                    )
                    visit["practitioner_id"] = rng.choice(staff)
                    visits.append(visit)
                    produced += 1
                    day += dt.timedelta(days=rng.randrange(7, 35))
        # The demo facilities also have visits in the last weeks, for the self-check screen.
        for institution_id in self.demo_ids:
            for offset in range(3, 45, 3):
                day = today - dt.timedelta(days=offset)
                if day.year == YEAR:
                    continue
                quitter = self._new_quitter()
                roll = rng.random()
                visit = _visit(rng, institution_id, quitter, day, roll < 0.8, roll >= 0.4)
                visit["practitioner_id"] = rng.choice(self.staff[institution_id])
                visits.append(visit)
        return visits


def _spread(rng: random.Random, visits: int, people: int) -> list[int]:
    """`visits` over `people` (each at least one), a few with many: a skewed multinomial."""
    if people <= 0:
        return []
    counts = [1] * people
    weights = [rng.random() ** 2 + 0.05 for _ in range(people)]
    for person in rng.choices(range(people), weights, k=visits - people):
        counts[person] += 1
    return counts


def _schedule(rng: random.Random, n: int) -> list[dt.date]:
    """n dates in the year, at least 5 days apart (C4)."""
    if n > 73:
        raise ValueError(f"{n} visits do not fit in a year 5 days apart")
    longest = 364 // max(1, n - 1)
    gaps = [rng.randint(5, max(5, min(35, longest))) for _ in range(n - 1)]
    start = dt.date(YEAR, 1, 1) + dt.timedelta(days=rng.randrange(max(1, 365 - sum(gaps))))
    days = [start]
    for gap in gaps:
        days.append(days[-1] + dt.timedelta(days=gap))
    return days


_WITHIN_24H = Timeliness.WITHIN_24H.value


def _visit(rng, institution_id, quitter, day, medication, education, late=False) -> dict:
    entered = dt.datetime.combine(day, dt.time(rng.randrange(8, 21), rng.randrange(60)))
    status = _WITHIN_24H
    roll = rng.random()
    if roll < 0.08:  # a few are entered late, within the deadline
        entered += dt.timedelta(days=rng.randrange(2, 15))
        status = None
    elif late and roll < 0.11:  # and some after it: the fee-deduction list (C8)
        entered += dt.timedelta(days=rng.randrange(45, 70))
        status = None
    entered_utc = entered - dt.timedelta(hours=8)
    if status is None:
        now = clock.utc_naive()
        if entered_utc > now:  # never entered in the future
            entered_utc = dt.datetime.combine(day, dt.time(10)) - dt.timedelta(hours=8)
        status = timeliness(day, entered_utc).value
    return {
        "institution_id": institution_id,
        "national_id": quitter["national_id"],
        "visit_date": day,
        "medication_name": rng.choice(DRUGS) if medication else None,
        "medication_days": rng.choice((7, 14, 28)) if medication else None,
        "education_minutes": rng.choice((10, 15, 20, 30)) if education else None,
        "entered_at": entered_utc,
        "entry_timeliness": status,
    }


QUITTER_COLUMNS = ["national_id", "name", "sex", "birth_date", "created_on", "changed_on"]
VISIT_COLUMNS = [
    "institution_id", "practitioner_id", "quitter_id", "visit_date", "medication_name", "medication_days",
    "education_minutes", "entered_at", "entry_timeliness", "created_on", "changed_on",
]  # fmt: skip


def _link_visits(visits: list[dict], ids: dict[str, int], now: dt.datetime) -> None:
    """Visits in insertion order (by date, then institution), each with its quitter's id."""
    visits.sort(key=lambda v: (v["visit_date"], v["institution_id"]))
    for visit in visits:
        visit["quitter_id"] = ids[visit.pop("national_id")]
        visit["created_on"] = visit["changed_on"] = now


def _insert_all(quitters: list[dict], visits: list[dict], chunk: int = 20_000) -> None:
    now = utcnow()
    connection = db.session.connection()
    for row in quitters:
        row["created_on"] = row["changed_on"] = now
    _bulk_insert(connection, Quitter.__table__, QUITTER_COLUMNS, quitters, chunk)
    ids = dict(connection.execute(select(Quitter.national_id, Quitter.id)).all())
    _link_visits(visits, ids, now)
    _bulk_insert(connection, Visit.__table__, VISIT_COLUMNS, visits, chunk)
    db.session.commit()
    # The SQLite path below writes through the driver, past the statistics hooks.
    bump_stats_version()  # every year


def _sqlite_value(value):
    if isinstance(value, dt.datetime):
        # SQLAlchemy's SQLite storage format; isoformat writes it 5x faster than strftime
        # (650,000 entry times), and the same text for a naive time.
        if value.tzinfo is None:
            return value.isoformat(" ", "microseconds")
        return value.strftime("%Y-%m-%d %H:%M:%S.%f")
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


def _sqlite_rows(columns: list[str], rows: list[dict]) -> list[tuple]:
    """The rows as driver tuples. Dates and times repeat (a visit date, the load's `now`), so
    each distinct value is formatted once (462,671 visits: 9.1 s of conversion before)."""
    memo: dict = {}

    def text(value):
        if not isinstance(value, dt.date):
            return value
        out = memo.get(value)
        if out is None:
            out = memo[value] = _sqlite_value(value)
        return out

    return [tuple([text(row.get(c)) for c in columns]) for row in rows]


def _bulk_insert(connection, table, columns: list[str], rows: list[dict], chunk: int) -> None:
    """executemany in chunks; on SQLite straight through the driver (no per-value processing)
    with a large page cache, so the visit table's six indexes are updated in memory."""
    if connection.dialect.name != "sqlite":
        for start in range(0, len(rows), chunk):
            connection.execute(table.insert(), rows[start : start + chunk])
        return
    connection.exec_driver_sql("PRAGMA cache_size=-262144")
    sql = (
        f"INSERT INTO {table.name} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"
    )
    cursor = connection.connection.cursor()
    try:
        with _indexes_built_after(connection, table):
            for start in range(0, len(rows), chunk):
                cursor.executemany(sql, _sqlite_rows(columns, rows[start : start + chunk]))
    finally:
        cursor.close()


@contextlib.contextmanager
def _indexes_built_after(connection, table):
    """Into an empty SQLite table, the indexes are built once after the load instead of
    updated row by row (462,671 visits with six indexes: 29.5 s before, measured on 2 busy
    cores)."""
    rebuild = []
    if not connection.exec_driver_sql(f"SELECT 1 FROM {table.name} LIMIT 1").first():
        existing = {r[0] for r in connection.exec_driver_sql(
            "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = ?", (table.name,))}  # fmt: skip
        rebuild = sorted((i for i in table.indexes if i.name in existing), key=lambda i: i.name)
        for index in rebuild:
            index.drop(connection)
    yield
    for index in rebuild:
        index.create(connection)
