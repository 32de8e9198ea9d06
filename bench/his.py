"""HIS orders and claimable lines (issue 18): figures beside their targets, never a timed test.

    .venv/bin/python bench/his.py [--database-url URL] [--lines 100000] [--cases 2000] [--records 80000]

Builds a scratch database (SQLite in a temporary folder; with --database-url, that database,
emptied first: e.g. scripts/with-postgres.sh '.venv/bin/python bench/his.py --database-url
"$TEST_DATABASE_URL"'): the reference data, two institutions of 臺北市, --cases patients with
a case and a course each (half at each institution), --records treatment records in 2025, the
central and 臺北市 schemes of 2025 with their items, the code mappings, and an HIS system
account with an API key per institution. Then measures:

* import: --lines order lines posted through `POST /api/v1/his/orders` (test client: the
  whole request — API-key check, JSON, parsing, the case lookup, INSERT … ON CONFLICT DO
  NOTHING, the receipt) in batches of 5,000, lines/s (target >= 5,000/s);
* re-post: the same batches again: seconds, and that nothing changed (target <= 30 s);
* county-year: the claimable lines of every person treated in 臺北市 in 2025 (the cap over
  all their institutions, budgets applied), seconds (target <= 5 s);
* one case: the case page's computation (case_year) for 50 cases, p50 ms (target <= 20 ms).
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

YEAR = 2025
BATCH = 5000
KINDS = [("individual_psychotherapy", "psychologist", "PSY01"), ("outpatient", "physician", "OPD01"),
         ("group_psychotherapy", "psychologist", "GRP01"), ("case_management", "case_manager", "CM01"),
         ("nursing_education", "nurse", "EDU01")]  # fmt: skip


def build(app, db, cases: int, records: int, rng: random.Random) -> dict:
    from core.security.passwords import demo_passwords_allowed
    from core.security.roles import HIS_INTERFACE
    from core.validators import personal_id_check_digit
    from models.addiction.case import Case, Patient
    from models.addiction.course import Course
    from models.addiction.his import OrderCodeMapping
    from models.addiction.record import TreatmentRecord
    from models.addiction.scheme import SchemeItem, SubsidyScheme
    from models.platform.user import ScopedUser
    from models.registry.institution import Institution
    from models.registry.practitioner import Practitioner, ServiceAssignment
    from models.registry.reference import County, InstitutionLevel

    tpe = db.session.query(County).filter_by(code="TPE").one()
    level = db.session.query(InstitutionLevel).order_by(InstitutionLevel.sort_order).first()
    insts = [Institution(nhi_code=f"01019{n:05d}", name=f"壓測醫院{n}", level_id=level.id, county_id=tpe.id)
             for n in (1, 2)]  # fmt: skip
    db.session.add_all(insts)
    db.session.flush()
    author = Practitioner(national_id="A100000001", name="壓測醫師", profession="physician")
    db.session.add(author)
    db.session.flush()
    for inst in insts:
        db.session.add(ServiceAssignment(practitioner_id=author.id, institution_id=inst.id, start_date=dt.date(2020, 1, 1)))
    items = [("PSY", 1500, True, False, "individual_psychotherapy"), ("OPD", 500, True, False, "outpatient"),
             ("GRP", 800, True, False, "group_psychotherapy"), ("EDU", 300, True, False, "nursing_education"),
             ("CM", 500, False, True, "case_management")]  # fmt: skip
    for code, county, cap, budget, names in (("MOHW-DRUG", None, 40000, 60_000_000, None),
                                             ("TPE-DRUG", tpe.id, 35000, 3_000_000, {"PSY", "GRP"})):  # fmt: skip
        scheme = SubsidyScheme(code=code, name=code, county_id=county, substance="drug", year=YEAR, version=1,
                               effective_from=dt.date(YEAR, 1, 1), status="published", cap_adult=cap, cap_minor=None,
                               minor_age=18, budget=budget)  # fmt: skip
        for c, amount, within, cm, kinds in items:
            if names is None or c in names:
                scheme.items.append(SchemeItem(code=c, name=c, unit_amount=amount, within_cap=within,
                                               case_management_fee=cm, kinds=kinds))  # fmt: skip
        db.session.add(scheme)
    for inst in insts:
        for order_code, item in (("PSY01", "PSY"), ("OPD01", "OPD"), ("GRP01", "GRP"), ("EDU01", "EDU"), ("CM01", "CM")):
            db.session.add(OrderCodeMapping(institution_id=inst.id, order_code=order_code, item_code=item,
                                            start_date=dt.date(2020, 1, 1)))  # fmt: skip
    db.session.commit()
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    audit = {"created_on": now, "changed_on": now}
    patients, ids = [], []
    for n in range(cases):
        prefix = f"B1{n:07d}"
        ids.append(prefix + personal_id_check_digit(prefix))
        patients.append({"id_kind": "national_id", "national_id": ids[-1], "name": f"壓測{n}", "sex": "M",
                         "birth_date": dt.date(1980 + n % 30, 1 + n % 12, 1 + n % 28), "identity_status": "verified",
                         **audit})  # fmt: skip
    db.session.execute(Patient.__table__.insert(), patients)
    patient_ids = dict(db.session.execute(db.select(Patient.national_id, Patient.id).where(Patient.national_id.in_(ids))).all())
    db.session.execute(Case.__table__.insert(), [
        {"patient_id": patient_ids[pid], "institution_id": insts[n % 2].id, "opened_on": dt.date(YEAR - 1, 6, 1),
         "substance_category": "drug", "referral_source": "self", "eligibility": "general", "status": "open", **audit}
        for n, pid in enumerate(ids)])  # fmt: skip
    case_rows = db.session.execute(db.select(Case.id, Case.patient_id, Case.institution_id).order_by(Case.id)).all()
    db.session.execute(Course.__table__.insert(), [
        {"case_id": c, "institution_id": i, "start_date": dt.date(YEAR - 1, 6, 1), "end_date": dt.date(YEAR + 1, 5, 31),
         "status": "active", **audit} for c, _, i in case_rows])  # fmt: skip
    course_of = dict(db.session.execute(db.select(Course.case_id, Course.id)).all())
    per_case = records // len(case_rows)
    rows, record_days = [], {}
    for c, _, i in case_rows:
        days = sorted(rng.sample(range(365), per_case))
        for k, day in enumerate(days):
            kind, profession, code = KINDS[k % len(KINDS)]
            executed = dt.date(YEAR, 1, 1) + dt.timedelta(days=day)
            record_days.setdefault(c, []).append((executed, code))
            rows.append({"course_id": course_of[c], "case_id": c, "institution_id": i, "executed_on": executed,
                         "author_id": author.id, "profession": profession, "kind": kind, **audit})  # fmt: skip
    for start in range(0, len(rows), 20000):
        db.session.execute(TreatmentRecord.__table__.insert(), rows[start : start + 20000])
    db.session.commit()
    sm = app.appbuilder.sm
    keys = {}
    role = sm.find_role(HIS_INTERFACE)
    for n, inst in enumerate(insts):
        with demo_passwords_allowed():
            user = sm.add_user(f"his_bench_{n}", "HIS", "壓測", f"his{n}@bench.invalid", [role], password="Bench-Pass-2024!")
        row = db.session.get(ScopedUser, user.id)
        row.scope_kind, row.scope_institutions = "facility", [inst]
        db.session.commit()
        with app.test_request_context():
            keys[inst.id] = sm.create_api_key(db.session.get(ScopedUser, user.id), name="bench")["key"]
    national = {patient_ids[pid]: pid for pid in ids}
    return {"insts": [i.id for i in insts], "keys": keys, "cases": case_rows, "record_days": record_days,
            "national": national}  # fmt: skip


def batches(world: dict, lines: int, rng: random.Random) -> list[tuple[str, dict]]:
    """Order lines: each record's order (a few twice: three orders, one line), the rest on days
    without a record, spread over both institutions, in batches of 5,000 per institution."""
    per_inst: dict[int, list] = {i: [] for i in world["insts"]}
    cases = world["cases"]
    per_case = max(lines // len(cases), 1)
    for c, patient, inst in cases:
        person = world["national"][patient]
        made = 0
        for n, (day, code) in enumerate(world["record_days"][c][:per_case]):
            per_inst[inst].append({"his_order_id": f"O{c}-{n}", "line": 1, "person_id": person, "order_code": code,
                                   "order_date": day.isoformat(), "executed_on": day.isoformat(), "quantity": 1})  # fmt: skip
            made += 1
        while made < per_case:
            day = dt.date(YEAR, 1, 1) + dt.timedelta(days=rng.randrange(365))
            per_inst[inst].append({"his_order_id": f"X{c}-{made}", "line": 1, "person_id": person,
                                   "order_code": KINDS[made % len(KINDS)][2], "order_date": day.isoformat(),
                                   "executed_on": day.isoformat(), "quantity": 1})  # fmt: skip
            made += 1
    out = []
    for inst, orders in per_inst.items():
        for start in range(0, len(orders), BATCH):
            out.append((world["keys"][inst], {"orders": orders[start : start + BATCH]}))
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url")
    parser.add_argument("--lines", type=int, default=100_000)
    parser.add_argument("--cases", type=int, default=2000)
    parser.add_argument("--records", type=int, default=80_000)
    args = parser.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="bench-his-"))
    url = args.database_url or f"sqlite:///{tmp / 'bench.db'}"
    from flask_migrate import upgrade

    from app import create_app

    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "CACHE_TYPE": "SimpleCache", "UPLOAD_FOLDER": str(tmp / "up"),
                      "RATELIMIT_ENABLED": False, "WTF_CSRF_ENABLED": False})  # fmt: skip
    from core.extensions import db
    from core.security.permissions import sync_roles
    from domain.roles import ROLE_GRANTS
    from seed.registry.reference import seed_reference
    from seed.testing import reset_database

    rng = random.Random(18)
    with app.app_context():
        if args.database_url:
            reset_database(db)
        upgrade()
        sync_roles(app.appbuilder, ROLE_GRANTS)
        seed_reference()
        db.session.commit()
        print(f"# {db.engine.dialect.name}: building {args.cases} cases, {args.records} records ...", flush=True)
        world = build(app, db, args.cases, args.records, rng)
    posts = batches(world, args.lines, rng)
    total = sum(len(body["orders"]) for _, body in posts)
    client = app.test_client()

    def post_all():
        accepted = duplicate = rejected = 0
        for key, body in posts:
            response = client.post("/api/v1/his/orders", json=body, headers={"Authorization": f"Bearer {key}"})
            if response.status_code != 200:
                raise SystemExit(f"refused: {response.status_code} {response.text[:300]}")
            accepted += response.json["accepted"]
            duplicate += response.json["duplicate"]
            rejected += response.json["rejected"]
        return accepted, duplicate, rejected

    began, cpu = time.perf_counter(), time.process_time()
    first = post_all()
    import_s, import_cpu = time.perf_counter() - began, time.process_time() - cpu
    from models.addiction.his import HisOrder

    with app.app_context():
        stored = db.session.query(HisOrder).count()
    began, cpu = time.perf_counter(), time.process_time()
    second = post_all()
    repost_s, repost_cpu = time.perf_counter() - began, time.process_time() - cpu
    with app.app_context():
        unchanged = db.session.query(HisOrder).count() == stored
    # CPU seconds of this process beside wall time: on a shared, loaded machine the wall time
    # includes waiting for a core (the database is in-process for SQLite, not for PostgreSQL).
    print(f"import    {total:,} lines in {import_s:.1f} s = {total / import_s:,.0f} lines/s "
          f"(CPU {import_cpu:.1f} s = {total / import_cpu:,.0f} lines/s)   (target >= 5,000/s)   "
          f"receipt accepted/duplicate/rejected {first}")
    print(f"re-post   {repost_s:.1f} s (CPU {repost_cpu:.1f} s) (target <= 30 s)   receipt {second}   "
          f"stored unchanged: {unchanged}")
    from domain.addiction.claimable import case_year, compute_territory
    from models.addiction.case import Case
    from models.registry.institution import Institution
    from models.registry.reference import County

    with app.test_request_context():
        tpe = db.session.query(County).filter_by(code="TPE").one().id
        runs, cpus = [], []
        for _ in range(3):
            began, cpu = time.perf_counter(), time.process_time()
            territory = compute_territory(YEAR, Institution.county_id == tpe)
            runs.append(time.perf_counter() - began)
            cpus.append(time.process_time() - cpu)
        paid = sum(1 for line in territory.lines if line.amount > 0)
        print(f"county-year {len(territory.lines):,} lines ({paid:,} claimable) of {args.cases:,} cases, "
              f"{args.records:,} records: median {statistics.median(runs):.2f} s "
              f"(CPU {statistics.median(cpus):.2f} s) (target <= 5 s)")
        sample = [db.session.get(Case, c) for c, _, _ in world["cases"][:: max(len(world["cases"]) // 50, 1)][:50]]
        times = []
        for case in sample * 2:
            began = time.perf_counter()
            case_year(case, YEAR)
            times.append((time.perf_counter() - began) * 1000)
        print(f"one case  p50 {statistics.median(times):.1f} ms, max {max(times):.1f} ms (target <= 20 ms)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
