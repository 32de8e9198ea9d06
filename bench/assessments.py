"""Assessments (issue 16): figures to read beside their targets, never a timed test.

    .venv/bin/python bench/assessments.py [--scale S] [--responses N] [--saves N]

Builds a scratch SQLite database (migrate, roles, seed_demo at --scale, default 0.05), adds a
published 30-item Likert questionnaire (two subscales, a reverse item, bands, a flag) at
psy_tpe's institution, and measures:

* save: the assessment form's POST of a 30-item response as psy_tpe (test client, the whole
  request: form, WriteAssessment's checks and scoring, insert, redirect), p50 and p95 ms and
  SQL statements per save (target: p50 <= 30 ms on SQLite);
* write path: --responses responses (default 10,000) through WriteAssessment, the command
  the REST API and every import call, in one request context: responses/s with every score
  computed (target >= 1,000/s); HTTP and JSON decoding per request are not in this figure;
* engine alone: score_response on the same answer sets, responses/s (the share of the
  write path that is scoring);
* export: the per-instrument Excel export of the questionnaire's responses, rows/s and the
  process's peak resident memory (target >= 10,000 rows/s in <= 150 MB for 100,000 rows;
  this bench exports the --responses written above).
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.list_page import logged_in_client  # noqa: E402

ITEMS = 30


def definition() -> dict:
    """30 Likert items on one 5-point scale; two subscales, item 30 reversed, bands, a flag."""
    scale = [{"code": str(n), "display": label, "weight": n}
             for n, label in enumerate(["非常不同意", "不同意", "普通", "同意", "非常同意"], start=1)]  # fmt: skip
    links = [f"q{n}" for n in range(1, ITEMS + 1)]
    return {
        "scales": {"agree": scale},
        "items": [{"linkId": link, "type": "likert", "scale": "agree", "text": f"第 {n} 題", "required": True}
                  for n, link in enumerate(links, start=1)],  # fmt: skip
        "scoring": {
            "scores": [
                {"name": "total", "label": "總分", "method": "sum", "items": links, "reverse": ["q30"],
                 "missing": "refuse", "bands": [{"min": 30, "max": 89, "label": "低"},
                                                {"min": 90, "max": 150, "label": "高"}]},
                {"name": "first", "label": "前半", "method": "mean", "items": links[:15], "missing": "zero"},
                {"name": "second", "label": "後半", "method": "mean", "items": links[15:], "missing": "zero"},
            ],
            "flags": [{"name": "low", "label": "第 1 題非常不同意", "item": "q1", "operator": "<=", "value": 1}],
        },
    }  # fmt: skip


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=0.05)
    parser.add_argument("--responses", type=int, default=10_000)
    parser.add_argument("--saves", type=int, default=50)
    args = parser.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="bench-assessments-"))
    from flask_migrate import upgrade

    from app import create_app

    app = create_app({"SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp / 'bench.db'}", "CACHE_TYPE": "SimpleCache",
                      "UPLOAD_FOLDER": str(tmp / "up"), "WTF_CSRF_ENABLED": False,
                      "RATELIMIT_ENABLED": False})  # fmt: skip
    from core.extensions import db
    from core.security.permissions import sync_roles
    from domain.roles import ROLE_GRANTS
    from models.addiction.course import Course
    from models.addiction.instrument import Instrument, InstrumentVersion
    from models.platform.user import ScopedUser
    from models.registry.practitioner import ServiceAssignment
    from seed.demo import seed_demo

    with app.app_context():
        upgrade()
        sync_roles(app.appbuilder, ROLE_GRANTS)
        print(f"# seeding the demo at scale {args.scale} ...", flush=True)
        seed_demo(seed=113, scale=args.scale)
        user = db.session.query(ScopedUser).filter_by(username="psy_tpe").one()
        institution_id = user.scope_institutions[0].id
        from domain.addiction.scoring import spec_fingerprint

        spec = definition()
        instrument = Instrument(institution_id=institution_id, code="BENCH30", title="三十題量表", sharing="private")
        instrument.versions = [InstrumentVersion(number=1, status="published", definition=spec,
                                                 spec=spec_fingerprint(spec), published_at=dt.datetime.now())]  # fmt: skip
        db.session.add(instrument)
        db.session.commit()
        course = db.session.query(Course).filter(Course.institution_id == institution_id).order_by(Course.id).first()
        author = db.session.query(ServiceAssignment.practitioner_id).filter_by(institution_id=institution_id).first()[0]
        course_id, instrument_id, start, end = course.id, instrument.id, course.start_date, course.end_date
        day = min(end, dt.date.today()) if start <= dt.date.today() else start
    rng = random.Random(16)
    answer_sets = [{f"q{n}": str(rng.randint(1, 5)) for n in range(1, ITEMS + 1)} for _ in range(args.responses)]

    # -- save through the form
    client = logged_in_client(app, "psy_tpe", app.config["DEMO_PASSWORD"])
    from sqlalchemy import event

    with app.app_context():
        engine = db.engine
    counted = [0]
    event.listen(engine, "before_cursor_execute", lambda *a: counted.__setitem__(0, counted[0] + 1))
    url = f"/assessment/add?course={course_id}&instrument={instrument_id}"
    times, statements = [], []
    for n in range(args.saves + 2):
        form = {"answered_on": f"{day.year - 1911}/{day.month:02d}/{day.day:02d}", "author": str(author), "note": ""}
        form |= {f"a_{k}": v for k, v in answer_sets[n].items()}
        counted[0] = 0
        began = time.perf_counter()
        response = client.post(url, data=form)
        elapsed = (time.perf_counter() - began) * 1000
        if response.status_code != 302:
            print(f"save refused: {response.status_code}", response.text[:400])
            return 1
        if n >= 2:
            times.append(elapsed)
            statements.append(counted[0])

    # -- the write path and the engine
    from domain.addiction.assessments import AssessmentInput, WriteAssessment
    from domain.addiction.scoring import score_response

    with app.test_request_context():
        from flask import g
        from flask_login import login_user

        user = db.session.query(ScopedUser).filter_by(username="psy_tpe").one()
        login_user(user)
        g.user = user
        began = time.perf_counter()
        for answers in answer_sets:
            WriteAssessment(AssessmentInput(course_id, instrument_id, day, author, answers)).run()
        write_seconds = time.perf_counter() - began
        version = db.session.get(Instrument, instrument_id).versions[0].definition
        began = time.perf_counter()
        for answers in answer_sets:
            score_response(version, answers)
        engine_seconds = time.perf_counter() - began

    # -- the per-instrument export
    began = time.perf_counter()
    response = client.get(f"/assessment/export/instrument/{instrument_id}")
    body = response.data
    export_seconds = time.perf_counter() - began
    rows = args.responses + args.saves + 2
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    p50, p95 = statistics.median(times), sorted(times)[int(len(times) * 0.95) - 1]
    print()
    print(f"database: SQLite | scale {args.scale} | Python {sys.version.split()[0]}")
    print(f"{'measure':<44} | {'ours':>12} | target")
    print("-" * 76)
    print(f"{'save a 30-item response (form POST) p50':<44} | {p50:>9.1f} ms | <= 30 ms")
    print(f"{'  p95':<44} | {p95:>9.1f} ms |")
    print(f"{'  SQL statements per save':<44} | {statistics.median(statements):>12.0f} |")
    print(f"{'write path (WriteAssessment), responses/s':<44} | {args.responses / write_seconds:>12.0f} | >= 1,000")
    print(f"{'engine alone (score_response), responses/s':<44} | {args.responses / engine_seconds:>12.0f} |")
    print(f"{f'export, rows/s ({rows:,} rows, {len(body):,} bytes)':<44} | "
          f"{rows / export_seconds:>12.0f} | >= 10,000")  # fmt: skip
    print(f"{'peak resident memory of the process':<44} | {peak_mb:>9.0f} MB | <= 150 MB (export)")
    print(f"export status {response.status_code}, {response.headers.get('Content-Type', '')[:40]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
