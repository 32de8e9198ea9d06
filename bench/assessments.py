"""Assessments (issue 16): figures to read beside their targets, never a timed test.

    .venv/bin/python bench/assessments.py [--scale S] [--responses N] [--export-rows N]
                                          [--saves N] [--single N]

Builds a scratch SQLite database (migrate, roles, seed_demo at --scale, default 0.05), adds a
published 30-item Likert questionnaire (two subscales, a reverse item, bands, a flag) at
psy_tpe's institution, and measures:

* save: the assessment form's POST of a 30-item response as psy_tpe (test client, the whole
  request: form, WriteAssessment's checks and scoring, insert, redirect), p50 and p95 ms and
  SQL statements per save (target: p50 <= 30 ms on SQLite);
* single writes: --single responses (default 300) through WriteAssessment one by one (the
  single API POST's command), responses/s, for comparison;
* engine alone: score_response on --responses answer sets, responses/s;
* bulk API: POST /api/v1/assessment/bulk of --responses responses (default 10,000) as one
  JSON body (the request as the server handles it: JSON decoding, the checks, scoring,
  the INSERTs, the audit rows, the commit), responses/s (target >= 1,000/s);
* bulk workbook: the same count as an .xlsx in the instrument's template uploaded to
  /assessmentupload/ (reading, checks, scoring, INSERTs, commit), responses/s (target >= 1,000/s);
* export: the database is topped up to --export-rows responses (default 100,000) of the
  instrument, then a fresh process runs the per-instrument export (the work the background
  job does above EXPORT_ASYNC_THRESHOLD) and reports rows/s and the export's own peak memory:
  the process's peak resident set (VmHWM) reset just before the export, minus its resident set
  then (target >= 10,000 rows/s in <= 150 MB for 100,000 rows).
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.list_page import jwt_headers, logged_in_client  # noqa: E402

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


def _rss_kb(field: str) -> int:
    """A line of /proc/self/status in kB (VmRSS, VmHWM)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def export_child(database: str, instrument_id: int) -> int:
    """In a fresh process: the per-instrument export as psy_tpe, its time and own peak memory."""
    from app import create_app

    app = create_app({"SQLALCHEMY_DATABASE_URI": f"sqlite:///{database}", "CACHE_TYPE": "SimpleCache",
                      "UPLOAD_FOLDER": str(Path(database).parent / "up"), "RATELIMIT_ENABLED": False})  # fmt: skip
    from flask import g
    from flask_login import login_user

    from core.extensions import db
    from models.addiction.instrument import Instrument
    from models.platform.user import ScopedUser
    from views.addiction.assessments import AssessmentView

    view = next(v for v in app.appbuilder.baseviews if isinstance(v, AssessmentView))
    with app.test_request_context():
        user = db.session.query(ScopedUser).filter_by(username="psy_tpe").one()
        login_user(user)
        g.user = user
        instrument = db.session.get(Instrument, instrument_id)
        _ = instrument.versions
        # Linux: writing 5 to clear_refs resets the peak (VmHWM) to the current resident set.
        with open("/proc/self/clear_refs", "w") as clear:
            clear.write("5")
        before = _rss_kb("VmRSS")
        began = time.perf_counter()
        path, count, _name = view.write_instrument_export(instrument)
        seconds = time.perf_counter() - began
        peak = _rss_kb("VmHWM")
        size = os.path.getsize(path)
        os.remove(path)
    print(json.dumps({"rows": count, "seconds": seconds, "peak_mb": (peak - before) / 1024, "bytes": size,
                      "rss_mb": before / 1024}))  # fmt: skip
    return 0


def _workbook(headers: list[str], rows: list[list]) -> bytes:
    """The responses as a nurse's filled-in template (.xlsx)."""
    import xlsxwriter

    buffer = io.BytesIO()
    book = xlsxwriter.Workbook(buffer, {"constant_memory": True})
    sheet = book.add_worksheet("BENCH30")
    for col, header in enumerate(headers):
        sheet.write_string(0, col, header)
    for line, row in enumerate(rows, start=1):
        for col, value in enumerate(row):
            if isinstance(value, str):
                sheet.write_string(line, col, value)
            elif value is not None:
                sheet.write_number(line, col, value)
    book.close()
    return buffer.getvalue()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=0.05)
    parser.add_argument("--responses", type=int, default=10_000)
    parser.add_argument("--export-rows", type=int, default=100_000)
    parser.add_argument("--saves", type=int, default=50)
    parser.add_argument("--single", type=int, default=300)
    parser.add_argument("--export-child", nargs=2, metavar=("DB", "INSTRUMENT"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.export_child:
        return export_child(args.export_child[0], int(args.export_child[1]))
    tmp = Path(tempfile.mkdtemp(prefix="bench-assessments-"))
    from flask_migrate import upgrade

    from app import create_app

    database = tmp / "bench.db"
    app = create_app({"SQLALCHEMY_DATABASE_URI": f"sqlite:///{database}", "CACHE_TYPE": "SimpleCache",
                      "UPLOAD_FOLDER": str(tmp / "up"), "WTF_CSRF_ENABLED": False,
                      "RATELIMIT_ENABLED": False})  # fmt: skip
    from core.extensions import db
    from core.security.permissions import sync_roles
    from domain.roles import ROLE_GRANTS
    from models.addiction.course import Course
    from models.addiction.instrument import Instrument, InstrumentVersion
    from models.platform.user import ScopedUser
    from models.registry.practitioner import Practitioner, ServiceAssignment
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
        author_national_id = db.session.get(Practitioner, author).national_id
        course_id, instrument_id, start, end = course.id, instrument.id, course.start_date, course.end_date
        day = min(end, dt.date.today()) if start <= dt.date.today() else start
    rng = random.Random(16)
    answer_sets = [{f"q{n}": str(rng.randint(1, 5)) for n in range(1, ITEMS + 1)} for _ in range(args.responses)]

    # -- save through the form (the start-up heap settled as each gunicorn worker does)
    from core.ops import settle_heap

    settle_heap()
    client = logged_in_client(app, "psy_tpe", app.config["DEMO_PASSWORD"])
    from sqlalchemy import event, func, select

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

    # -- single writes and the engine
    from domain.addiction.assessments import AssessmentInput, WriteAssessment
    from domain.addiction.scoring import score_response

    with app.test_request_context():
        from flask import g
        from flask_login import login_user

        user = db.session.query(ScopedUser).filter_by(username="psy_tpe").one()
        login_user(user)
        g.user = user
        began = time.perf_counter()
        for answers in answer_sets[: args.single]:
            WriteAssessment(AssessmentInput(course_id, instrument_id, day, author, answers)).run()
        single_seconds = time.perf_counter() - began
        version = db.session.get(Instrument, instrument_id).versions[0].definition
        began = time.perf_counter()
        for answers in answer_sets:
            score_response(version, answers)
        engine_seconds = time.perf_counter() - began

    # -- bulk through the API: one JSON body, encoded before the clock starts
    token = jwt_headers(app, "psy_tpe", app.config["DEMO_PASSWORD"])
    body = json.dumps([{"course": course_id, "instrument": instrument_id, "answered_on": day.isoformat(),
                        "author": author, "answers": answers} for answers in answer_sets]).encode()  # fmt: skip
    counted[0] = 0
    began = time.perf_counter()
    response = app.test_client().post("/api/v1/assessment/bulk", data=body, content_type="application/json",
                                      headers=token)  # fmt: skip
    api_seconds = time.perf_counter() - began
    api_statements = counted[0]
    if response.status_code != 201:
        print("bulk API refused:", response.status_code, response.text[:600])
        return 1

    # -- bulk through a workbook in the instrument's template
    with app.test_request_context():
        from domain.addiction.assessment_bulk import workbook

        headers = workbook(db.session.get(Instrument, instrument_id)).headers()
    roc_day = f"{day.year - 1911}/{day.month:02d}/{day.day:02d}"
    rows = [[course_id, roc_day, author_national_id, None, None, *[a[f"q{n}"] for n in range(1, ITEMS + 1)]]
            for a in answer_sets]  # fmt: skip
    data = _workbook(headers, rows)
    counted[0] = 0
    began = time.perf_counter()
    response = client.post("/assessmentupload/", data={"instrument": str(instrument_id),
                                                       "file": (io.BytesIO(data), "bench.xlsx")},
                           content_type="multipart/form-data")  # fmt: skip
    workbook_seconds = time.perf_counter() - began
    workbook_statements = counted[0]
    n_api = args.responses
    print(f"# bulk API {n_api:,} in {api_seconds:.2f} s, workbook in {workbook_seconds:.2f} s", flush=True)
    if response.status_code != 302:
        import re

        flashes = re.findall(r'class="alert[^"]*"[^>]*>(.*?)</div>', response.text, re.S)
        errors = re.findall(r"<tr><td>(\d+)</td><td>(.*?)</td></tr>", response.text)[:5]
        print("workbook refused:", response.status_code, [re.sub(r"<[^>]+>|\s+", " ", f) for f in flashes], errors)
        return 1

    # -- top up to --export-rows responses through the bulk import (its write path), then export
    from domain.addiction.assessment_bulk import BulkEntry, ImportAssessments
    from models.addiction.instrument import AssessmentResponse

    with app.test_request_context():
        user = db.session.query(ScopedUser).filter_by(username="psy_tpe").one()
        login_user(user)
        g.user = user
        stored = db.session.scalar(select(func.count(AssessmentResponse.id))
                                   .where(AssessmentResponse.instrument_id == instrument_id))  # fmt: skip
        print(f"# topping up to {args.export_rows:,} responses ...", flush=True)
        while stored < args.export_rows:
            n = min(args.responses, args.export_rows - stored)
            ImportAssessments([BulkEntry(i, course_id, instrument_id, answered_on=day, author=author,
                                         answers=answer_sets[i % len(answer_sets)]) for i in range(n)]).run()  # fmt: skip
            stored += n
    child = subprocess.run([sys.executable, __file__, "--export-child", str(database), str(instrument_id)],
                           capture_output=True, text=True, cwd=str(ROOT))  # fmt: skip
    if child.returncode != 0:
        print("export child failed:", child.stderr[-2000:])
        return 1
    export = json.loads(child.stdout.strip().splitlines()[-1])

    p50, p95 = statistics.median(times), sorted(times)[int(len(times) * 0.95) - 1]
    n = args.responses
    load = os.getloadavg()
    print()
    print(f"database: SQLite | scale {args.scale} | Python {sys.version.split()[0]} | "
          f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} on {os.cpu_count()} cores")  # fmt: skip
    print(f"{'measure':<52} | {'ours':>12} | target")
    print("-" * 84)
    print(f"{'save a 30-item response (form POST) p50':<52} | {p50:>9.1f} ms | <= 30 ms")
    print(f"{'  p95':<52} | {p95:>9.1f} ms |")
    print(f"{'  SQL statements per save':<52} | {statistics.median(statements):>12.0f} |")
    print(f"{f'single writes (WriteAssessment x {args.single}), responses/s':<52} | "
          f"{args.single / single_seconds:>12.0f} |")  # fmt: skip
    print(f"{'engine alone (score_response), responses/s':<52} | {n / engine_seconds:>12.0f} |")
    print(f"{f'bulk API, {n:,} responses ({len(body) / 1e6:.1f} MB JSON), responses/s':<52} | "
          f"{n / api_seconds:>12.0f} | >= 1,000")  # fmt: skip
    print(f"{'  seconds, SQL statements':<52} | {api_seconds:>8.2f} s {api_statements:>3} |")
    print(f"{f'bulk workbook, {n:,} rows ({len(data) / 1e6:.1f} MB .xlsx), responses/s':<52} | "
          f"{n / workbook_seconds:>12.0f} | >= 1,000")  # fmt: skip
    print(f"{'  seconds, SQL statements':<52} | {workbook_seconds:>8.2f} s {workbook_statements:>3} |")
    label = f"export, {export['rows']:,} rows ({export['bytes'] / 1e6:.1f} MB .xlsx), rows/s"
    print(f"{label:<52} | "
          f"{export['rows'] / export['seconds']:>12.0f} | >= 10,000")  # fmt: skip
    print(f"{'  the export own peak memory (fresh process)':<52} | {export['peak_mb']:>9.1f} MB | <= 150 MB")
    print(f"{'  resident before the export (app loaded)':<52} | {export['rss_mb']:>9.1f} MB |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
