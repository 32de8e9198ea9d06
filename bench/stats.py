"""Yearly statistics (C9, bulletin tables 1–3) on the demo dataset: ours, cold (computed) and
warm (cached), against a plain GROUP BY over the year's visits, side by side; then the cost
of a change: a visit entered in another year (2025: the 2024 tables stay cached), a visit
entered in the same year (2024: the next request recomputes), a registry change (every
year recomputes).

    .venv/bin/python bench/stats.py [--database-url URL] [--repeat 5]
    scripts/with-postgres.sh .venv/bin/python bench/stats.py --database-url "$TEST_DATABASE_URL"

Without --database-url a fresh SQLite file under a temporary folder is seeded (scale 1.0,
seed 113: about 422,000 visits in 2024); with a URL the database is reset and seeded.
Target (issue 6): ≤ 150 ms for a 430,000-visit year on SQLite and PostgreSQL.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import statistics as stats_module
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def _ms(fn, repeat: int) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        times.append((time.perf_counter() - start) * 1000)
    return stats_module.median(times), result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--database-url")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--keep", action="store_true", help="reuse an already seeded database")
    args = parser.parse_args()
    tmp = tempfile.mkdtemp(prefix="bench-stats-")
    url = args.database_url or f"sqlite:///{tmp}/bench.db"
    os.environ.setdefault("HUEY_IMMEDIATE", "1")
    from app import create_app

    # The production cache without Redis: a file cache shared by the workers of a machine.
    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "CACHE_TYPE": "FileSystemCache", "CACHE_DIR": f"{tmp}/cache",
                      "UPLOAD_FOLDER": f"{tmp}/up"})  # fmt: skip
    from flask_migrate import upgrade
    from sqlalchemy import case, func, select

    from core.data.scope import SYSTEM_SCOPE, Scope, ScopeKind
    from core.extensions import db
    from domain.cessation.statistics import (
        bump_stats_version,
        cessation_statistics,
        compute_cessation_statistics,
    )
    from models.cessation.visit import Visit
    from models.registry.institution import Institution
    from models.registry.reference import County
    from seed.demo import seed_demo
    from seed.testing import reset_database

    with app.app_context():
        if not args.keep:
            if not url.startswith("sqlite"):
                reset_database(db)
            upgrade()
            start = time.perf_counter()
            seed_demo(seed=113, scale=1.0)
            print(f"seeded the demo dataset in {time.perf_counter() - start:.1f} s")
        first, last = dt.date(2024, 1, 1), dt.date(2024, 12, 31)
        year_visits = db.session.scalar(
            select(func.count(Visit.id)).where(Visit.visit_date.between(first, last))
        )
        print(f"database: {db.engine.dialect.name}; visits dated in 2024: {year_visits:,}")

        def plain_group_by():
            return db.session.execute(
                select(
                    Institution.level_id,
                    func.sum(case((Visit.medication_days.is_not(None), 1), else_=0)),
                    func.sum(case((Visit.education_minutes.is_not(None), 1), else_=0)),
                )
                .join(Institution, Institution.id == Visit.institution_id)
                .where(Visit.visit_date.between(first, last))
                .group_by(Institution.level_id)
            ).all()

        tpe = db.session.scalar(select(County.id).where(County.code == "TPE"))
        scopes = {
            "national": SYSTEM_SCOPE,
            "臺北市": Scope(kind=ScopeKind.COUNTY, county_ids=frozenset([tpe])),
        }
        print(f"{'':34}{'ms (median of ' + str(args.repeat) + ')':>22}")
        plain, _ = _ms(plain_group_by, args.repeat)
        print(f"{'plain GROUP BY level (table 3 counts only)':44}{plain:10.1f}")
        for name, scope in scopes.items():
            cold, _ = _ms(
                lambda scope=scope: compute_cessation_statistics(2024, scope),
                max(1, args.repeat // 2),
            )
            print(f"{'ours, cold (all 3 tables), ' + name:44}{cold:10.1f}")

            def after_entry(day, scope=scope):
                """A visit entered (ORM, committed) dated `day`, then the report of 2024."""
                template = db.session.scalar(
                    select(Visit).where(Visit.visit_date == first).limit(1)
                )
                visit = Visit(institution_id=template.institution_id, practitioner_id=template.practitioner_id,
                              quitter_id=template.quitter_id, visit_date=day, medication_days=7,
                              entered_at=dt.datetime(day.year, day.month, day.day, 9), entry_timeliness="within_24h")  # fmt: skip
                db.session.add(visit)
                db.session.commit()
                start = time.perf_counter()
                cessation_statistics(2024, scope)
                elapsed = (time.perf_counter() - start) * 1000
                db.session.delete(visit)
                db.session.commit()
                cessation_statistics(2024, scope)  # warm again for the next round
                return elapsed

            cessation_statistics(2024, scope)
            warm, _ = _ms(lambda scope=scope: cessation_statistics(2024, scope), args.repeat * 20)
            print(f"{'ours, warm (cached), ' + name:44}{warm:10.3f}")
            for label, day in (("2025", dt.date(2025, 6, 1)), ("2024", dt.date(2024, 6, 1))):
                cessation_statistics(2024, scope)
                times = [after_entry(day) for _ in range(max(1, args.repeat // 2))]
                print(
                    f"{'first request after a ' + label + ' visit, ' + name:44}{stats_module.median(times):10.3f}"
                )
            bump_stats_version()  # a registry change: every year
            changed, _ = _ms(lambda scope=scope: cessation_statistics(2024, scope), 1)
            print(f"{'first request after a registry change, ' + name:44}{changed:10.1f}")
        db.session.remove()


if __name__ == "__main__":
    main()
