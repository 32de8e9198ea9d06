"""Fixtures of issue 18's tests (A6–A10), shared by test_his, test_schemes, test_claimable:
two institutions (臺北市 A, 高雄市 B) with staff, an HIS system account with an API key at
each, schemes of a test year, and patients with cases, courses and records made on demand."""

from __future__ import annotations

import datetime as dt
import itertools
from dataclasses import dataclass

from models.addiction.case import Case, Patient
from models.addiction.course import Course
from models.addiction.his import OrderCodeMapping
from models.addiction.record import TreatmentRecord
from models.addiction.scheme import SchemeItem, SubsidyScheme
from models.registry.institution import Institution
from models.registry.practitioner import Practitioner, ServiceAssignment
from models.registry.reference import County, InstitutionLevel
from tests.conftest import PASSWORD
from tests.factories import _new_id

_serial = itertools.count(1)
#: The test years: no demo scheme is of these years, so only the tests' schemes apply.
YEAR = 2031


@dataclass
class World:
    a: int
    b: int
    author_a: int
    author_b: int
    key_a: str
    key_b: str
    staff_a: str
    staff_b: str


def institution(db, county_code: str) -> Institution:
    county = db.session.query(County).filter_by(code=county_code).one()
    level = db.session.query(InstitutionLevel).order_by(InstitutionLevel.sort_order).first()
    inst = Institution(nhi_code=f"96{next(_serial):08d}", name=f"測試醫令醫院{next(_serial)}", level_id=level.id,
                       county_id=county.id)  # fmt: skip
    db.session.add(inst)
    db.session.flush()
    return inst


def practitioner(db, inst) -> Practitioner:
    person = Practitioner(national_id=_new_id("A"), name="測試醫師", profession="physician")
    db.session.add(person)
    db.session.flush()
    db.session.add(ServiceAssignment(practitioner_id=person.id, institution_id=inst.id, start_date=dt.date(2020, 1, 1)))
    return person


def user(app, db, username, role_name, inst=None, county=None, national=False) -> str:
    from core.security.passwords import demo_passwords_allowed
    from models.platform.user import ScopedUser

    sm = app.appbuilder.sm
    if sm.find_user(username=username) is None:
        with demo_passwords_allowed():
            created = sm.add_user(username, "測試", "帳號", f"{username}@demo.invalid", [sm.find_role(role_name)], PASSWORD)
        row = db.session.get(ScopedUser, created.id)
        if national:
            row.scope_kind = "national"
        elif county is not None:
            row.scope_kind, row.scope_county_id = "county", county
        else:
            row.scope_kind, row.scope_institutions = "facility", [inst]
        db.session.commit()
    return username


def api_key(app, db, username) -> str:
    from models.platform.user import ScopedUser

    with app.test_request_context():
        row = db.session.query(ScopedUser).filter_by(username=username).one()
        return app.appbuilder.sm.create_api_key(row, name=f"{username} HIS")["key"]


def scheme(db, code, county_id, year, cap, budget, items, substance="drug", cap_minor=None, version=1,
           start=None, status="published") -> SubsidyScheme:  # fmt: skip
    row = SubsidyScheme(code=code, name=f"測試方案 {code}", county_id=county_id, substance=substance, year=year,
                        version=version, effective_from=start or dt.date(year, 1, 1), status=status, cap_adult=cap,
                        cap_minor=cap_minor, minor_age=18, budget=budget)  # fmt: skip
    for item in items:
        row.items.append(SchemeItem(**item))
    db.session.add(row)
    db.session.flush()
    return row


def item(code, amount, kinds, within_cap=True, cm=False, professions=None, categories=None) -> dict:
    return {"code": code, "name": f"項目{code}", "unit_amount": amount, "within_cap": within_cap,
            "case_management_fee": cm, "kinds": kinds, "professions": professions, "categories": categories}  # fmt: skip


def build(app, db) -> World:
    """Once per test session: the institutions, accounts, schemes and mappings."""
    from core.security.roles import HIS_INTERFACE, TREATMENT

    existing = db.session.query(Institution).filter(Institution.name == "醫令測試甲院").one_or_none()
    if existing is None:
        a, b = institution(db, "TPE"), institution(db, "KHH")
        a.name, b.name = "醫令測試甲院", "醫令測試乙院"
        pa, pb = practitioner(db, a), practitioner(db, b)
        db.session.commit()
        for year in (YEAR - 1, YEAR, YEAR + 1):
            scheme(db, "T-DRUG", None, year, 10_000, 1_000_000, [
                item("PSY", 1500, "individual_psychotherapy", categories="general,low_income,minor"),
                item("OPD", 500, "outpatient", professions="physician", categories="general,low_income,minor"),
                item("CM", 500, "case_management", within_cap=False, cm=True),
            ])  # fmt: skip
            tpe = db.session.query(County).filter_by(code="TPE").one().id
            scheme(db, "T-TPE", tpe, year, 5_000, 100_000, [item("PSY", 1000, "individual_psychotherapy"),
                                                           item("GRP", 800, "group_psychotherapy")])  # fmt: skip
        for inst in (a, b):
            for code, item_code in (("PSY01", "PSY"), ("OPD01", "OPD"), ("CM01", "CM"), ("GRP01", "GRP")):
                db.session.add(OrderCodeMapping(institution_id=inst.id, order_code=code, item_code=item_code,
                                                start_date=dt.date(2020, 1, 1)))  # fmt: skip
        db.session.commit()
        user(app, db, "his_a", HIS_INTERFACE, inst=a)
        user(app, db, "his_b", HIS_INTERFACE, inst=b)
        user(app, db, "staff_a", TREATMENT, inst=a)
        user(app, db, "staff_b", TREATMENT, inst=b)
        existing = a
    a = existing
    b = db.session.query(Institution).filter(Institution.name == "醫令測試乙院").one()
    pa = db.session.query(ServiceAssignment).filter_by(institution_id=a.id).first().practitioner_id
    pb = db.session.query(ServiceAssignment).filter_by(institution_id=b.id).first().practitioner_id
    return World(a.id, b.id, pa, pb, api_key(app, db, "his_a"), api_key(app, db, "his_b"), "staff_a", "staff_b")


def patient(db, birth=dt.date(1990, 5, 1)) -> Patient:
    row = Patient(id_kind="national_id", national_id=_new_id("C"), name="王測試", sex="M", birth_date=birth)
    db.session.add(row)
    db.session.flush()
    return row


def case(db, inst_id, person, opened=dt.date(YEAR - 1, 1, 1), course=(dt.date(YEAR - 1, 1, 1), dt.date(YEAR + 1, 12, 31)),
         eligibility="general", substance="drug", closed=None) -> Case:  # fmt: skip
    row = Case(patient_id=person.id, institution_id=inst_id, opened_on=opened, substance_category=substance,
               referral_source="self", eligibility=eligibility, status="closed" if closed else "open", closed_on=closed,
               close_reason="結案" if closed else None)  # fmt: skip
    db.session.add(row)
    db.session.flush()
    if course:
        db.session.add(Course(case_id=row.id, institution_id=inst_id, start_date=course[0], end_date=course[1],
                              status="active"))  # fmt: skip
        db.session.flush()
    return row


def record(db, case_row, day, kind="individual_psychotherapy", profession="psychologist", author=None):
    course = db.session.query(Course).filter_by(case_id=case_row.id).first()
    if author is None:
        author = db.session.query(ServiceAssignment).filter_by(institution_id=case_row.institution_id).first().practitioner_id
    db.session.add(TreatmentRecord(course_id=course.id, case_id=case_row.id, institution_id=case_row.institution_id,
                                   executed_on=day, author_id=author, profession=profession, kind=kind,
                                   content={"topic": "測試"}))  # fmt: skip
    db.session.flush()


def order(his_order_id, line, person, code, executed, ordered=None, **extra) -> dict:
    return {"his_order_id": his_order_id, "line": line, "person_id": person.national_id, "order_code": code,
            "order_date": (ordered or executed).isoformat(), "executed_on": executed.isoformat(), **extra}  # fmt: skip


def post(app, key, body, institution=None):
    client = app.test_client()
    payload = dict(body)
    if institution is not None:
        payload["institution"] = institution
    return client.post("/api/v1/his/orders", json=payload, headers={"Authorization": f"Bearer {key}"})
