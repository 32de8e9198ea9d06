"""Demo data of issue 18 (A6–A10): both central schemes and two counties' local schemes for
2024–2026 (2026 has a second version from 7/1), each demo institution's order-code mappings
(some codes left unmapped, one mapping changed mid-year), HIS orders for the demo cases
(most treatment records have one, some three, some have none, some orders have no record,
order sets arrive as their members), and the HIS system account `his_tpe`."""

from __future__ import annotations

import datetime as dt
import random

from flask import current_app
from sqlalchemy import func, select

from core.extensions import db
from core.security.roles import HIS_INTERFACE
from models.addiction.case import Case
from models.addiction.his import HisOrder, OrderCodeMapping
from models.addiction.record import TreatmentRecord
from models.addiction.scheme import SchemeItem, SubsidyScheme
from models.platform.user import ScopedUser, ScopeKind
from models.registry.institution import Institution
from models.registry.reference import County
from seed.addiction.registry import demo_addiction_institution

YEARS = (2024, 2025, 2026)
PAYING = "general,low_income,minor"
#: code, name, NT$, within the cap, case-management fee, kinds, professions.
ITEMS = [
    ("OPD", "門診診察及藥物治療", 500, True, False, "outpatient", "physician"),
    ("PSY", "個別心理治療", 1500, True, False, "individual_psychotherapy", ""),
    ("GRP", "團體心理治療", 800, True, False, "group_psychotherapy", ""),
    ("FAM", "家族治療", 1500, True, False, "family_therapy", ""),
    ("SW", "社工處遇", 600, True, False, "social_work", "social_worker"),
    ("EDU", "護理衛教", 300, True, False, "nursing_education", "nurse"),
    ("OT", "職能治療", 800, True, False, "occupational_therapy", ""),
    ("LAB", "尿液毒物檢驗", 1000, True, False, "lab_test", ""),
    ("CM", "個案管理服務費", 500, False, True, "case_management", ""),
]
#: code, name, owner county code (None: central), substance, cap adults, cap minors, budget at scale 1,
#: the items it has.
SCHEMES = [
    ("MOHW-DRUG", "藥癮治療費用補助方案", None, "drug", 40000, None, 60_000_000, [i[0] for i in ITEMS]),
    ("MOHW-ALC", "酒癮治療費用補助方案", None, "alcohol", 40000, None, 30_000_000, [i[0] for i in ITEMS]),
    ("TPE-DRUG", "臺北市藥癮者治療補助計畫", "TPE", "drug", 35000, 40000, 3_000_000, ["PSY", "GRP", "FAM", "SW"]),
    ("KHH-ALC", "高雄市酒癮治療補助方案", "KHH", "alcohol", 20000, None, 1_500_000, ["PSY", "GRP", "OPD", "LAB"]),
]
#: HIS order code of each kind of record, as the demo hospitals code them.
ORDER_CODES = {
    "outpatient": "A-OPD01", "individual_psychotherapy": "P-IND50", "group_psychotherapy": "P-GRP90",
    "family_therapy": "P-FAM60", "social_work": "S-SW30", "nursing_education": "N-EDU20",
    "occupational_therapy": "O-OT50", "case_management": "C-CM15", "lab_test": "L-UDT01",
}  # fmt: skip
ITEM_OF_CODE = {
    "A-OPD01": "OPD", "P-IND50": "PSY", "P-GRP90": "GRP", "P-FAM60": "FAM", "S-SW30": "SW", "N-EDU20": "EDU",
    "O-OT50": "OT", "C-CM15": "CM", "L-UDT01": "LAB",
}  # fmt: skip
#: Codes some institutions never map (they wait in the work queue).
UNMAPPED = ("L-UDT01", "X-NEW01")
#: Share of the institutions with cases whose HIS sends orders (the named demo ones always).
SENDING = 0.15
MAX_ORDERS = 80_000


def seed_his_demo(seed: int, scale: float) -> dict[str, int]:
    """Insert the demo once (in the session's transaction); returns its counts."""
    if db.session.scalar(select(SubsidyScheme.id).limit(1)) is None:
        rng = random.Random(seed * 7919 + 18)
        _schemes(scale)
        institutions = _mappings(rng)
        _orders(rng, institutions, scale)
        _system_account()
        db.session.commit()
    return {
        "subsidy schemes": db.session.scalar(select(func.count()).select_from(SubsidyScheme)),
        "HIS orders": db.session.scalar(select(func.count()).select_from(HisOrder)),
        "order code mappings": db.session.scalar(select(func.count()).select_from(OrderCodeMapping)),
    }


def _schemes(scale: float) -> None:
    counties = {c.code: c.id for c in db.session.scalars(select(County))}
    items = {i[0]: i for i in ITEMS}
    for year in YEARS:
        for code, name, county, substance, cap, cap_minor, budget, item_codes in SCHEMES:
            versions = [(1, dt.date(year, 1, 1))] + ([(2, dt.date(year, 7, 1))] if year == 2026 and county is None else [])
            for version, start in versions:
                scheme = SubsidyScheme(
                    code=code, name=name, county_id=counties[county] if county else None, substance=substance,
                    year=year, version=version, effective_from=start, status="published", cap_adult=cap,
                    cap_minor=cap_minor, minor_age=18, budget=max(int(budget * scale), 100_000),
                )  # fmt: skip
                for item_code in item_codes:
                    c, n, amount, within, cm, kinds, professions = items[item_code]
                    if version == 2 and c == "PSY":
                        amount = 1600  # the 2026 second version raises psychotherapy from 7/1
                    scheme.items.append(SchemeItem(
                        code=c, name=n, unit_amount=amount, within_cap=within, case_management_fee=cm, kinds=kinds,
                        professions=professions or None, categories=None if cm else PAYING,
                    ))  # fmt: skip
                db.session.add(scheme)
    db.session.flush()


def _mappings(rng: random.Random) -> list[int]:
    """Mappings of every sending institution; returns the sending institutions."""
    with_cases = list(db.session.scalars(select(Case.institution_id).distinct().order_by(Case.institution_id)))
    named = [demo_addiction_institution(k).id for k in ("hospital_tpe", "hospital_khh", "clinic_tpe", "office_tpe")]
    sending = sorted(set(named) | {i for i in with_cases if rng.random() < SENDING})
    rows = []
    for institution_id in sending:
        for code, item in ITEM_OF_CODE.items():
            if code == "X-NEW01" or (code in UNMAPPED and institution_id == named[1]):
                continue  # left unmapped: the work queue shows it
            if code in UNMAPPED and institution_id not in named and rng.random() < 0.5:
                continue
            if institution_id == named[0] and code == "P-IND50":
                # A mapping changed mid-year: ended 2025-06-30, the new one from 2025-08-01, so
                # July's psychotherapy orders wait in the unmapped-codes queue.
                rows.append(OrderCodeMapping(institution_id=institution_id, order_code=code, item_code="PSY",
                                             start_date=dt.date(2024, 1, 1), end_date=dt.date(2025, 6, 30)))  # fmt: skip
                rows.append(OrderCodeMapping(institution_id=institution_id, order_code=code, item_code="PSY",
                                             start_date=dt.date(2025, 8, 1)))  # fmt: skip
                continue
            rows.append(OrderCodeMapping(institution_id=institution_id, order_code=code, item_code=item,
                                         start_date=dt.date(2024, 1, 1)))  # fmt: skip
    db.session.add_all(rows)
    db.session.flush()
    return sending


def _orders(rng: random.Random, institutions: list[int], scale: float) -> None:
    records = db.session.execute(
        select(TreatmentRecord.id, TreatmentRecord.case_id, TreatmentRecord.institution_id,
               TreatmentRecord.executed_on, TreatmentRecord.kind, Case.patient_id)
        .join(Case, Case.id == TreatmentRecord.case_id)
        .where(TreatmentRecord.institution_id.in_(institutions))
        .order_by(TreatmentRecord.id)
    ).all()  # fmt: skip
    limit = max(int(MAX_ORDERS * max(scale, 0.05)), 2000)
    rows = []
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    for record_id, case_id, institution_id, day, kind, patient_id in records:
        if len(rows) >= limit:
            break
        if rng.random() < 0.1:
            continue  # a record with no order: claimable for the fee only if added by hand
        code = ORDER_CODES[kind]
        ordered = day - dt.timedelta(days=rng.choice((0, 0, 0, 1, 2)))
        copies = 3 if rng.random() < 0.03 else 1  # three orders, one line (A7)
        base = {"institution_id": institution_id, "his_order_id": f"H{record_id:09d}", "case_id": case_id,
                "patient_id": patient_id, "order_date": ordered, "executed_on": day, "quantity": 1,
                "source": "api", "created_on": now, "changed_on": now}  # fmt: skip
        if kind == "outpatient" and rng.random() < 0.3:
            # An order set (組套) of a visit with a urine test, as its members.
            rows.append({**base, "line": 1, "order_code": "A-OPD01", "order_set_code": "SET-OPD-UDT"})
            rows.append({**base, "line": 2, "order_code": "L-UDT01", "order_set_code": "SET-OPD-UDT"})
            continue
        for line in range(1, copies + 1):
            rows.append({**base, "line": line, "order_code": code, "order_set_code": None})
        if rng.random() < 0.04:
            # An order executed a day no record exists (not claimable: no record, A7).
            other = day + dt.timedelta(days=3)
            rows.append({**base, "line": 9, "order_code": code, "order_set_code": None, "executed_on": other,
                         "order_date": other})  # fmt: skip
        if rng.random() < 0.01:
            rows.append({**base, "line": 8, "order_code": "X-NEW01", "order_set_code": None})
    for start in range(0, len(rows), 20_000):
        db.session.execute(HisOrder.__table__.insert(), rows[start : start + 20_000])


def _system_account() -> None:
    """his_tpe: the HIS system account of the Taipei demo hospital (API key or JWT login)."""
    from core.security.passwords import demo_passwords_allowed

    sm = current_app.appbuilder.sm
    if sm.find_user(username="his_tpe") is not None:
        return
    role = sm.find_role(HIS_INTERFACE) or sm.add_role(HIS_INTERFACE)
    with demo_passwords_allowed():
        user = sm.add_user("his_tpe", "HIS", "系統帳號", "his_tpe@demo.invalid", [role],
                           password=current_app.config["DEMO_PASSWORD"])  # fmt: skip
    user = db.session.get(ScopedUser, user.id)
    user.scope_kind = ScopeKind.FACILITY
    user.scope_institutions = [db.session.get(Institution, demo_addiction_institution("hospital_tpe").id)]
    db.session.flush()
