"""Demo visits: a year shaped like ROC 113 (2024), plus the last weeks for the demo facilities.

Per level, the executing institutions of bulletin table 1 get visits; medication and
education visits follow the proportions of table 3 (the statistics issue calibrates the
exact figures). Inserted with Core in chunks: fast, and not an audited user action.
"""

from __future__ import annotations

import datetime as dt
import random

from sqlalchemy import insert, select

from core import clock
from core.extensions import db
from core.validators import personal_id_check_digit
from core.visits import timeliness
from models.institution import Institution
from models.practitioner import ServiceAssignment
from models.reference import InstitutionLevel
from models.visit import Quitter, Visit

#: Bulletin table 1: executing institutions per level (of the contracted ones).
EXECUTING_PER_LEVEL = [24, 88, 176, 1031, 297, 33, 402]
#: Bulletin table 3: medication visits and education visits per level in ROC 113.
MEDICATION_VISITS = [17_430, 35_579, 20_468, 73_322, 18_260, 1_401, 49_040]
EDUCATION_VISITS = [39_426, 42_147, 24_814, 33_328, 24_380, 729, 48_194]
#: Share of visits that carry both services (an assumption until issue 6 calibrates it).
BOTH_SHARE = 0.25
YEAR = 2024
DRUGS = ["Varenicline", "Nicotine patch", "Nicotine gum", "Nicotine lozenge"]
SURNAMES = "陳林黃張李王吳劉蔡楊許鄭謝郭洪曾邱廖賴周徐蘇葉莊呂江何蕭羅高潘簡朱鍾游彭詹胡施沈余盧梁趙顏柯翁魏孫戴"
GIVEN = "志明俊傑家豪建宏冠宇承翰怡君雅婷淑芬美玲佳穎欣怡宗翰柏翰詩涵品妤思妤宜蓁子晴育誠文彥心怡惠雯國華政達"


def seed_visits(seed: int, scale: float, demo_institution_ids: list[int]) -> int:
    """Insert the demo year of visits once; returns how many visits exist afterwards."""
    if db.session.scalar(select(Visit.id).limit(1)) is not None:
        return db.session.query(Visit).count()
    rng = random.Random(seed * 7919 + 1)
    staff = _staff_by_institution()
    levels = db.session.execute(
        select(InstitutionLevel.id).order_by(InstitutionLevel.sort_order)
    ).scalars().all()
    by_level: dict[int, list[int]] = {level: [] for level in levels}
    for institution_id, level_id in db.session.execute(
        select(Institution.id, Institution.level_id).order_by(Institution.nhi_code)
    ):
        if staff.get(institution_id):
            by_level[level_id].append(institution_id)
    quitters, visits = [], []
    used_ids: set[str] = set()
    for index, level_id in enumerate(levels):
        candidates = by_level[level_id]
        executing = rng.sample(candidates, min(len(candidates), max(1, round(EXECUTING_PER_LEVEL[index] * scale))))
        medication = MEDICATION_VISITS[index] * scale
        education = EDUCATION_VISITS[index] * scale
        total = max(len(executing), round((medication + education) / (1 + BOTH_SHARE)))
        p_med = min(1.0, medication / total)
        p_edu = min(1.0, education / total)
        p_both = max(0.0, p_med + p_edu - 1)
        produced = 0
        while produced < total:
            institution_id = executing[produced % len(executing)] if produced < len(executing) else rng.choice(executing)
            quitter = _new_quitter(rng, used_ids)
            quitters.append(quitter)
            day = dt.date(YEAR, 1, 1) + dt.timedelta(days=rng.randrange(360))
            for _ in range(rng.choice((1, 1, 2, 2, 3, 3, 4, 5))):
                if day.year != YEAR or produced >= total:
                    break
                visits.append(_visit(rng, institution_id, staff[institution_id], quitter, day, p_med, p_edu, p_both))
                produced += 1
                day += dt.timedelta(days=rng.randrange(7, 35))
    # The demo facilities also have visits in the last weeks, for the self-check screen.
    today = clock.today()
    for institution_id in demo_institution_ids:
        for offset in range(3, 45, 3):
            quitter = _new_quitter(rng, used_ids)
            quitters.append(quitter)
            visits.append(_visit(rng, institution_id, staff[institution_id], quitter,
                                 today - dt.timedelta(days=offset), 0.6, 0.6, 0.2))  # fmt: skip
    _insert(Quitter, quitters)
    ids = dict(db.session.execute(select(Quitter.national_id, Quitter.id)).all())
    for visit in visits:
        visit["quitter_id"] = ids[visit.pop("national_id")]
    _insert(Visit, visits)
    db.session.commit()
    return len(visits)


def _staff_by_institution() -> dict[int, list[int]]:
    staff: dict[int, list[int]] = {}
    for practitioner_id, institution_id in db.session.execute(
        select(ServiceAssignment.practitioner_id, ServiceAssignment.institution_id).where(
            ServiceAssignment.start_date <= dt.date(YEAR, 1, 1)
        )
    ):
        staff.setdefault(institution_id, []).append(practitioner_id)
    return staff


def _new_quitter(rng: random.Random, used: set[str]) -> dict:
    while True:
        prefix = rng.choice("ABCDEFGHJKLMNPQRSTUVXYWZ") + rng.choice("12") + f"{rng.randrange(10**7):07d}"
        national_id = prefix + personal_id_check_digit(prefix)
        if national_id not in used:
            used.add(national_id)
            break
    sex = "M" if national_id[1] == "1" else "F"
    return {
        "national_id": national_id,
        "name": rng.choice(SURNAMES) + rng.choice(GIVEN[::2]) + rng.choice(GIVEN[1::2]),
        "sex": sex,
        "birth_date": dt.date(rng.randrange(1945, 2006), rng.randrange(1, 13), rng.randrange(1, 29)),
    }


def _visit(rng, institution_id, staff, quitter, day, p_med, p_edu, p_both) -> dict:
    roll = rng.random()
    # both with p_both, medication only up to p_med, education only for the rest: the
    # expected counts are then p_med and p_edu of all visits (p_med + p_edu = 1 + p_both).
    medication = roll < p_med
    education = roll < p_both or roll >= p_med
    entered = dt.datetime.combine(day, dt.time(rng.randrange(8, 21), rng.randrange(60)))
    if rng.random() < 0.08:  # a few are entered late, within the deadline
        entered += dt.timedelta(days=rng.randrange(2, 15))
    entered_utc = entered - dt.timedelta(hours=8)
    return {
        "institution_id": institution_id,
        "practitioner_id": rng.choice(staff),
        "national_id": quitter["national_id"],
        "visit_date": day,
        "medication_name": rng.choice(DRUGS) if medication else None,
        "medication_days": rng.choice((7, 14, 28)) if medication else None,
        "education_minutes": rng.choice((10, 15, 20, 30)) if education else None,
        "entered_at": entered_utc,
        "entry_timeliness": timeliness(day, entered_utc).value,
    }


def _insert(model, rows: list[dict], chunk: int = 20_000) -> None:
    for start in range(0, len(rows), chunk):
        db.session.execute(insert(model), rows[start : start + chunk])
