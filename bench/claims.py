"""A11: building a monthly claim of about 500 cases and 20,000 lines, and printing its
sign-off PDF and workbook — seconds beside the targets (build ≤ 3 s, PDF ≤ 10 s). Figures to
read, never a timed test.

    .venv/bin/python bench/claims.py [--repeat N] [--database-url URL]

    scripts/with-postgres.sh bash -c \\
        '.venv/bin/python bench/claims.py --database-url "$TEST_DATABASE_URL"'

Builds a scratch database (SQLite in a temporary folder by default), migrates it, syncs roles,
seeds the registry only (no demo cases), then adds the bench: one 高雄市 institution with 500
cases, each with a course, and 40 treatment records and 40 HIS orders in the bench month (four
items on ten days), mapped to a central scheme of the bench year whose cap and budget leave
every line claimable: 20,000 claimable lines. Each round (after one warm-up) times:

* build: BuildClaim(...).run() — the claimable-lines engine over the institution's persons,
  the 20,000 lines inserted, the history row, the commit (the claim is deleted between rounds);
* freeze: the sign-off snapshot (canonical JSON of the 20,000 lines and its sha256);
* PDF: package_pdf() of that snapshot (A4 landscape, 32 lines a page: ~626 pages);
* xlsx: package_xlsx() of that snapshot.
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.list_page import database_label, log, reset_database  # noqa: E402

CASES, DAYS = 500, 10
ITEMS = [("PSY", "P-IND50", "individual_psychotherapy", 1500, True, False),
         ("GRP", "P-GRP90", "group_psychotherapy", 800, True, False),
         ("SW", "S-SW30", "social_work", 600, True, False),
         ("CM", "C-CM15", "case_management", 500, False, True)]  # fmt: skip
YEAR, MONTH = 2030, 3
TARGETS = {"build": 3.0, "freeze": None, "pdf": 10.0, "xlsx": None}


def make_app(url: str, tmp: Path):
    from app import create_app

    return create_app({
        "SQLALCHEMY_DATABASE_URI": url, "CACHE_TYPE": "SimpleCache", "UPLOAD_FOLDER": str(tmp / "uploads"),
        "TESTING": True, "SECRET_KEY": "bench-secret-key-0123456789abcdef", "RATELIMIT_STORAGE_URI": "memory://",
        "MAIL_FOLDER": str(tmp / "mail"),
    })  # fmt: skip


def build(app) -> int:
    """Migrate, seed the registry, add the bench institution and its month; its id."""
    from flask_migrate import upgrade
    from sqlalchemy import insert, select

    from core.extensions import db
    from core.security.permissions import sync_roles
    from domain.roles import ROLE_GRANTS
    from models.addiction.case import Case, Patient
    from models.addiction.course import Course
    from models.addiction.his import HisOrder, OrderCodeMapping
    from models.addiction.record import TreatmentRecord
    from models.addiction.scheme import SchemeItem, SubsidyScheme
    from models.registry.institution import Institution
    from models.registry.practitioner import Practitioner
    from models.registry.reference import County, InstitutionLevel
    from seed.registry.reference import seed_reference

    reset_database(db)
    upgrade()
    sync_roles(app.appbuilder, ROLE_GRANTS)
    seed_reference()
    khh = db.session.scalar(select(County.id).where(County.code == "KHH"))
    level = db.session.scalar(select(InstitutionLevel.id).order_by(InstitutionLevel.sort_order))
    inst = Institution(nhi_code="9900000001", name="效能測試醫院", level_id=level, county_id=khh)
    author = Practitioner(national_id="E123456783", name="效能測試醫師", profession="physician")
    db.session.add_all([inst, author])
    scheme = SubsidyScheme(code="BENCH", name="效能測試補助方案", county_id=None, substance="drug", year=YEAR, version=1,
                           effective_from=dt.date(YEAR, 1, 1), status="published", cap_adult=10_000_000,
                           minor_age=18, budget=1_000_000_000)  # fmt: skip
    for code, _order, kind, amount, within, cm in ITEMS:
        scheme.items.append(SchemeItem(code=code, name=f"項目{code}", unit_amount=amount, within_cap=within,
                                       case_management_fee=cm, kinds=kind))  # fmt: skip
    db.session.add(scheme)
    db.session.flush()
    for code, order, *_ in ITEMS:
        db.session.add(OrderCodeMapping(institution_id=inst.id, order_code=order, item_code=code,
                                        start_date=dt.date(2020, 1, 1)))  # fmt: skip
    run = db.session.execute
    run(insert(Patient), [{"id_kind": "passport", "national_id": f"BENCH{n:06d}", "name": f"測試{n}", "sex": "M",
                           "birth_date": dt.date(1980, 1, 1)} for n in range(CASES)])  # fmt: skip
    patients = db.session.scalars(select(Patient.id).where(Patient.national_id.like("BENCH%")).order_by(Patient.id)).all()
    run(insert(Case), [{"patient_id": p, "institution_id": inst.id, "opened_on": dt.date(YEAR, 1, 1),
                        "substance_category": "drug", "referral_source": "self", "eligibility": "general",
                        "status": "open"} for p in patients])  # fmt: skip
    cases = db.session.execute(select(Case.id, Case.patient_id).where(Case.institution_id == inst.id)).all()
    run(insert(Course), [{"case_id": c, "institution_id": inst.id, "start_date": dt.date(YEAR, 1, 1),
                          "end_date": dt.date(YEAR, 12, 31), "status": "active"} for c, _p in cases])  # fmt: skip
    courses = dict(db.session.execute(select(Course.case_id, Course.id).where(Course.institution_id == inst.id)).all())
    records, orders = [], []
    for case_id, patient_id in cases:
        for d in range(DAYS):
            day = dt.date(YEAR, MONTH, 1 + 2 * d)
            for n, (_code, order, kind, *_rest) in enumerate(ITEMS):
                records.append({"course_id": courses[case_id], "case_id": case_id, "institution_id": inst.id,
                                "executed_on": day, "author_id": author.id, "profession": "physician", "kind": kind,
                                "content": {"topic": "效能"}})  # fmt: skip
                orders.append({"institution_id": inst.id, "his_order_id": f"B{case_id}-{d}", "line": n + 1,
                               "case_id": case_id, "patient_id": patient_id, "order_code": order, "order_date": day,
                               "executed_on": day, "quantity": 1, "source": "api"})  # fmt: skip
    for start in range(0, len(records), 5000):
        run(insert(TreatmentRecord), records[start:start + 5000])
        run(insert(HisOrder), orders[start:start + 5000])
    db.session.commit()
    return inst.id


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--database-url")
    parser.add_argument("--profile", action="store_true", help="print cProfile's top functions of each step")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-claims-"))
    url = args.database_url or f"sqlite:///{tmp / 'bench.db'}"
    app = make_app(url, tmp)
    from core import clock
    from core.dates import TAIPEI
    from core.extensions import db
    from domain.addiction.claim_package import package_pdf, package_xlsx
    from domain.addiction.claims import BuildClaim, FreezePackage
    from models.addiction.claim import Claim

    with app.app_context(), clock.frozen(dt.datetime(YEAR, MONTH + 1, 5, 9, 0, tzinfo=TAIPEI)):
        started = time.perf_counter()
        inst = build(app)
        log(f"built the bench data in {time.perf_counter() - started:.1f} s")
        times: dict[str, list[float]] = {k: [] for k in TARGETS}
        lines = size = 0
        if args.profile:
            import cProfile
            import pstats

            prof = cProfile.Profile()
            claim = prof.runcall(BuildClaim(inst, "BENCH", YEAR - 1911, MONTH).run)
            pstats.Stats(prof).sort_stats("cumulative").print_stats(25)
            prof = cProfile.Profile()
            frozen = prof.runcall(FreezePackage(claim).run)
            pstats.Stats(prof).sort_stats("cumulative").print_stats(20)
            prof = cProfile.Profile()
            prof.runcall(package_pdf, frozen)
            pstats.Stats(prof).sort_stats("tottime").print_stats(15)
            db.session.delete(db.session.get(Claim, claim.id))
            db.session.commit()
        for round_no in range(args.repeat + 1):
            t0 = time.perf_counter()
            claim = BuildClaim(inst, "BENCH", YEAR - 1911, MONTH).run()
            t1 = time.perf_counter()
            snap = FreezePackage(claim).run()
            t2 = time.perf_counter()
            pdf = package_pdf(snap)
            t3 = time.perf_counter()
            path = package_xlsx(snap)
            t4 = time.perf_counter()
            lines, size = snap.lines, len(pdf)
            Path(path).unlink(missing_ok=True)
            db.session.delete(db.session.get(Claim, claim.id))
            db.session.commit()
            log(f"round {round_no}: build {t1 - t0:.2f} s, freeze {t2 - t1:.2f} s, PDF {t3 - t2:.2f} s, xlsx {t4 - t3:.2f} s"
                + ("" if round_no else " (warm-up)"))
            if round_no:  # the first round warms up
                for key, value in zip(TARGETS, (t1 - t0, t2 - t1, t3 - t2, t4 - t3), strict=True):
                    times[key].append(value)
        print(f"A11 claims bench on {database_label(db.engine)}: {CASES} cases, {lines:,} lines, "
              f"PDF {size / 1e6:.1f} MB; median of {args.repeat} rounds (shared, loaded machine: read as upper bounds)")
        for key, target in TARGETS.items():
            figure = statistics.median(times[key])
            bar = f"target ≤ {target:.0f} s {'OK' if figure <= target else 'OVER'}" if target else "(no target)"
            print(f"  {key:7s} {figure:6.2f} s   {bar}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
