"""Export throughput: the visit list of a national user as .xlsx, through the same code path
as the background job (ScopedModelView.write_export), rows/s and peak RSS of the exporting
process.

    .venv/bin/python bench/export.py [--rows 430000] [--database-url URL]

Target (issue 4): ≥ 10,000 rows/s and ≤ 150 MB peak RSS for 430,000 visits.
"""

from __future__ import annotations

import argparse
import datetime as dt
import multiprocessing
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _app(url: str, tmp: str):
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("HUEY_IMMEDIATE", "1")
    from app import create_app

    return create_app({"SQLALCHEMY_DATABASE_URI": url, "CACHE_TYPE": "SimpleCache",
                       "UPLOAD_FOLDER": f"{tmp}/uploads", "EXPORT_ASYNC_THRESHOLD": 10**9})  # fmt: skip


def build(url: str, tmp: str, rows: int) -> int:
    """Migrate, seed the demo (a ROC 113 year of visits), then top up to `rows` visits."""
    from sqlalchemy import func, insert, select

    app = _app(url, tmp)
    from flask_migrate import upgrade

    from core.extensions import db
    from core.security.permissions import sync_roles
    from domain.roles import ROLE_GRANTS
    from models.cessation.visit import Visit
    from seed.demo import seed_demo
    from seed.testing import reset_database

    with app.app_context():
        if not url.startswith("sqlite"):
            reset_database(db)
        upgrade()
        sync_roles(app.appbuilder, ROLE_GRANTS)
        seed_demo(seed=113)
        have = db.session.scalar(select(func.count(Visit.id)))
        template = db.session.execute(select(Visit).limit(50_000)).scalars().all()
        extra, day = [], 0
        while have + len(extra) < rows:
            v = template[len(extra) % len(template)]
            day += 1
            extra.append({"institution_id": v.institution_id, "practitioner_id": v.practitioner_id,
                          "quitter_id": v.quitter_id, "visit_date": dt.date(2023, 1, 1) + dt.timedelta(days=day % 360),
                          "medication_name": v.medication_name, "medication_days": v.medication_days,
                          "education_minutes": v.education_minutes, "entered_at": v.entered_at,
                          "entry_timeliness": v.entry_timeliness})  # fmt: skip
        for start in range(0, len(extra), 20_000):
            db.session.execute(insert(Visit), extra[start : start + 20_000])
        db.session.commit()
        return db.session.scalar(select(func.count(Visit.id)))


def export(url: str, tmp: str, queue) -> None:
    """In a fresh process: export as `office` and report rows, seconds and peak RSS."""
    app = _app(url, tmp)
    from flask import g
    from flask_login import login_user

    with app.app_context():
        view = next(v for v in app.appbuilder.baseviews if type(v).__name__ == "VisitView")
        user = app.appbuilder.sm.find_user(username="office")
        with app.test_request_context("/visitview/export/xlsx"):
            g.background_job, g.user = True, user
            login_user(user)
            started = time.perf_counter()
            path, count, _name = view.write_export()
            seconds = time.perf_counter() - started
    size = os.path.getsize(path)
    os.remove(path)
    peak_mb = _peak_rss_mb()
    queue.put((count, seconds, peak_mb, size))


def _peak_rss_mb() -> float:
    """VmHWM: this process's peak resident set. (ru_maxrss would carry over the parent's
    peak across fork+exec on Linux, and the parent just built the whole database.)"""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=430_000)
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-export-") as tmp:
        url = args.database_url or f"sqlite:///{tmp}/bench.db"
        print(f"# building {args.rows:,} visits ...", file=sys.stderr)
        total = build(url, tmp, args.rows)
        context = multiprocessing.get_context("spawn")
        queue = context.Queue()
        child = context.Process(target=export, args=(url, tmp, queue))
        child.start()
        count, seconds, peak_mb, size = queue.get()
        child.join()
    backend = "sqlite" if url.startswith("sqlite") else "postgresql"
    rate = count / seconds
    print(f"database: {backend} | visits in table: {total:,} | exported rows: {count:,}")
    print(f"time: {seconds:.1f} s | throughput: {rate:,.0f} rows/s | file: {size / 1e6:.1f} MB | "
          f"peak RSS of the exporting process: {peak_mb:.0f} MB")  # fmt: skip
    ok = rate >= 10_000 and peak_mb <= 150
    print(f"target (≥ 10,000 rows/s, ≤ 150 MB): {'MET' if ok else 'MISSED'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
