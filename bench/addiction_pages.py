"""Addiction pages at the demo scale: p50 ms and SQL statements, stock Flask-AppBuilder
versus ours, side by side (figures to read, never a timed test).

    .venv/bin/python bench/addiction_pages.py [--scale S] [--repeat N] [--stock-repeat N]
                                              [--database-url URL [--reuse]]
                                              [--profile PAGE [--user admin|bench_staff]]

    scripts/with-postgres.sh bash -c \\
        '.venv/bin/python bench/addiction_pages.py --database-url "$TEST_DATABASE_URL"'

Builds a scratch database (SQLite in a temporary folder by default; with --database-url
that database's schema is dropped and recreated unless --reuse finds it seeded), migrates
it, syncs roles, runs seed_demo (seed 113, --scale, default 1: ~15,000 cases, ~450,000
treatment records) and ANALYZE. Measured twice over the same data: as the national `admin`
user, and as `bench_staff`, a treatment-institution account (role Treatment, scope: the
institution with the most records, made by the bench; scoped queries are what staff run),
over the same pages (the course and the month are that institution's):

* case list, page 1 (ordered by FAB's default);
* a course page: the show page of the course whose record count is nearest 200 (at least
  200), which lists its treatment records (stock: FAB's related view of the records);
* the record list filtered by the institution with the most records and its busiest month
  (stock, FAB's filters: _flt_0_institution=<id>, executed_on greater than the day before
  and smaller than the first of the next month; ours, its text filter and MonthFilter:
  _flt_0_institution=<NHI code>&_flt_0_executed_on=<ROC month, 114/01>); the record count
  must match.

STOCK is a plain ModelView per model with FAB's SQLAInterface, registered below (unscoped:
the staff account sees every institution's rows there; its role gets the stock views'
permissions through a BenchStock role). --stock-repeat 0 skips stock. OURS are
looked up by class name among the registered views (CaseView, CourseView from
views/addiction/cases.py, TreatmentRecordView from views/addiction/records.py); an absent
view is skipped with a message, and so is a filter URL ours does not understand.
Helpers (query counting, login, the measurement loop) are bench/list_page.py's.

--profile PAGE (cases, course or records) measures nothing: it prints a cProfile of
--repeat requests of that page as --user (cumulative, then own time), to find the fixed
per-request Python that is left once the statements are few.

Each page's figures are also logged as soon as they are measured: on this machine
(CPython 3.11.7, SQLAlchemy 2.0.58) the process sometimes segfaulted inside a stock page
(FAB's search dropdowns load every case, patient and practitioner: ~14,600 statements and
~40,000 objects per request), with or without SQLAlchemy's C extensions, in 5 runs of 7
that measured stock; never in a run with --stock-repeat 0.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import logging
import platform
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import sqlalchemy  # noqa: E402
from sqlalchemy import func, select, text  # noqa: E402

from bench.list_page import (  # noqa: E402
    Endpoint,
    QueryLog,
    _list_rows,
    _next_month,
    database_label,
    log,
    logged_in_client,
    measure,
    reset_database,
)

USER = "admin"
#: The institution account the bench makes (Treatment role, the busiest institution).
STAFF_USER = "bench_staff"
STOCK_ROLE = "BenchStock"
#: Our views, by class name (built by the addiction views' workers).
OURS = {"cases": "CaseView", "course": "CourseView", "records": "TreatmentRecordView"}


def stock_classes():
    """Plain ModelViews over cases, courses (with their records) and treatment records."""
    from flask_appbuilder import ModelView
    from flask_appbuilder.models.sqla.interface import SQLAInterface

    from models.addiction.case import Case
    from models.addiction.course import Course
    from models.addiction.record import TreatmentRecord

    class BenchStockRecordView(ModelView):
        datamodel = SQLAInterface(TreatmentRecord)
        list_columns = ["executed_on", "institution", "case", "kind", "author", "minutes"]

    class BenchStockCaseView(ModelView):
        datamodel = SQLAInterface(Case)
        list_columns = ["patient", "institution", "opened_on", "substance_category", "status"]

    class BenchStockCourseView(ModelView):
        datamodel = SQLAInterface(Course)
        show_columns = ["case", "start_date", "end_date", "status", "interrupt_reason"]
        related_views = [BenchStockRecordView]

    return {"records": BenchStockRecordView, "cases": BenchStockCaseView,
            "course": BenchStockCourseView}  # fmt: skip


def make_app(url: str, tmp: Path):
    """The application with the stock views registered alongside ours."""
    from app import create_app

    app = create_app({
        "SQLALCHEMY_DATABASE_URI": url, "CACHE_TYPE": "SimpleCache",
        "UPLOAD_FOLDER": str(tmp / "uploads"), "TESTING": True,
        "SECRET_KEY": "bench-secret-key-0123456789abcdef", "RATELIMIT_STORAGE_URI": "memory://",
        "AUTH_RATE_LIMIT": "10000 per minute",
    })  # fmt: skip
    stock = stock_classes()
    with app.app_context():
        for view in stock.values():  # before sync_roles, which grants Admin their permissions
            app.appbuilder.add_view_no_menu(view)
    return app, stock


def build_database(app, scale: float) -> None:
    """Migrate, sync roles, seed the demo (with the addiction data) and ANALYZE."""
    from flask_migrate import upgrade

    from core.extensions import db
    from core.security.permissions import sync_roles
    from domain.roles import ROLE_GRANTS
    from seed.demo import seed_demo

    started = time.perf_counter()
    reset_database(db)
    upgrade()
    sync_roles(app.appbuilder, ROLE_GRANTS)
    seeded = seed_demo(seed=113, scale=scale)
    seeded_at = time.perf_counter()
    with db.engine.begin() as conn:
        conn.execute(text("ANALYZE"))
    db.session.remove()
    log(
        f"seeded {seeded} ({seeded_at - started:.1f} s, ANALYZE {time.perf_counter() - seeded_at:.1f} s)"
    )


def seeded() -> bool:
    """The database already holds the addiction demo (for --reuse)."""
    from core.extensions import db

    try:
        return bool(db.session.scalar(text("SELECT count(*) FROM treatment_record")))
    except sqlalchemy.exc.DBAPIError:
        db.session.rollback()
        return False


def facts(institution_id: int | None = None) -> dict:
    """The institution with the most records (or `institution_id`), its course nearest 200
    records (at least 200) and its busiest month: pages both users can open."""
    from core.extensions import db
    from models.addiction.record import TreatmentRecord as R
    from models.registry.institution import Institution

    records = func.count().label("n")
    if institution_id is None:
        institution_id, _ = db.session.execute(
            select(R.institution_id, records).group_by(R.institution_id)
            .order_by(records.desc(), R.institution_id).limit(1)
        ).one()  # fmt: skip
    course_id, course_records = db.session.execute(
        select(R.course_id, records).where(R.institution_id == institution_id)
        .group_by(R.course_id).having(func.count() >= 200)
        .order_by(func.abs(func.count() - 200), R.course_id).limit(1)
    ).one()  # fmt: skip
    month = func.substr(func.cast(R.executed_on, sqlalchemy.String), 1, 7)
    busiest = db.session.execute(
        select(month.label("m"), records).where(R.institution_id == institution_id)
        .group_by(month).order_by(records.desc(), month).limit(1)
    ).one()[0]  # fmt: skip
    first = dt.date.fromisoformat(f"{busiest}-01")
    month_records = db.session.scalar(
        select(func.count()).select_from(R).where(
            R.institution_id == institution_id, R.executed_on >= first,
            R.executed_on < _next_month(first),
        )
    )  # fmt: skip
    code = db.session.scalar(select(Institution.nhi_code).where(Institution.id == institution_id))
    cases = db.session.scalar(select(func.count()).select_from(text("addiction_case")))
    db.session.remove()
    return {"course_id": course_id, "course_records": course_records, "institution_id": institution_id,
            "institution_code": code, "month": first, "month_records": month_records, "cases": cases}  # fmt: skip


def staff_user(app, stock: dict, institution_id: int) -> str:
    """`bench_staff`: a Treatment account scoped to the institution, also allowed the stock
    views (a BenchStock role: the Treatment role itself is left as sync_roles made it)."""
    from core.extensions import db
    from core.security.passwords import demo_passwords_allowed
    from core.security.roles import TREATMENT
    from models.platform.user import ScopedUser, ScopeKind
    from models.registry.institution import Institution

    sm = app.appbuilder.sm
    stock_role = sm.find_role(STOCK_ROLE) or sm.add_role(STOCK_ROLE)
    for view in stock.values():
        for permission_view in sm.find_permissions_view_menu(sm.find_view_menu(view.__name__)):
            if permission_view not in stock_role.permissions:
                stock_role.permissions.append(permission_view)
    db.session.commit()
    user = sm.find_user(username=STAFF_USER)
    if user is None:
        with demo_passwords_allowed():
            user = sm.add_user(STAFF_USER, "bench", "staff", f"{STAFF_USER}@demo.invalid",
                               [sm.find_role(TREATMENT), stock_role], app.config["DEMO_PASSWORD"])  # fmt: skip
        if not user:
            raise SystemExit(f"could not create {STAFF_USER}")
    user = db.session.get(ScopedUser, user.id)
    user.roles = [sm.find_role(TREATMENT), stock_role]
    user.scope_kind = ScopeKind.FACILITY
    user.scope_institutions = [db.session.get(Institution, institution_id)]
    db.session.commit()
    db.session.remove()
    return STAFF_USER


def registered(app, class_name: str):
    """The registered view of that class name, or None."""
    return next((v for v in app.appbuilder.baseviews if type(v).__name__ == class_name), None)


def probe(client, label: str, url: str, count: int | None = None) -> Endpoint | None:
    """An Endpoint for `url` with the rows it shows now; None (with a message) if it fails
    or does not report `count` records (a filter it does not understand)."""
    from bench.list_page import _RECORD_COUNT

    response = client.get(url)
    if response.status_code != 200:
        log(f"skip {label}: {url} answered HTTP {response.status_code}")
        return None
    html = response.get_data(as_text=True)
    if count is not None:
        found = _RECORD_COUNT.search(html)
        shown = int(found.group(1).replace(",", "")) if found else None
        if shown != count:
            log(f"skip {label}: {url} reports {shown} records, not {count}")
            return None
    return Endpoint(label, url, api=False, rows=_list_rows(html), count=count)


def endpoints(app, client, stock: dict, f: dict, with_stock: bool = True):
    """(label, stock Endpoint or None, ours Endpoint or None) for the three pages."""
    day_before = f["month"] - dt.timedelta(days=1)
    roc_month = f"{f['month'].year - 1911}/{f['month'].month:02d}"
    month_filter = (f"_flt_1_executed_on={day_before.isoformat()}"
                    f"&_flt_2_executed_on={_next_month(f['month']).isoformat()}")  # fmt: skip
    pages = [
        ("case list p1", "cases", "list/", [""], None),
        (f"course page ({f['course_records']} records)", "course", f"show/{f['course_id']}", [""], None),
        (f"records {f['institution_code']} {f['month']:%Y-%m}", "records", "list/",
         [f"?_flt_0_institution={f['institution_id']}&{month_filter}",
          f"?_flt_0_institution={f['institution_code']}&{month_filter}",
          f"?_flt_0_institution={f['institution_code']}&_flt_0_executed_on={roc_month}"],
         f["month_records"]),
    ]  # fmt: skip
    rows = []
    for label, key, path, queries, count in pages:
        base = registered(app, stock[key].__name__).route_base
        theirs = probe(client, f"stock {label}", f"{base}/{path}{queries[0]}", count) if with_stock else None
        mine = None
        view = registered(app, OURS[key])
        if view is None:
            log(f"skip ours {label}: no registered view named {OURS[key]} (not built yet)")
        else:
            # Ours first in its own terms (the last form), then in FAB's.
            for query in reversed(queries):
                mine = probe(client, f"ours {label}", f"{view.route_base}/{path}{query}", count)
                if mine is not None:
                    break
        rows.append((label, theirs, mine))
    return rows


def profile(app, stock, f: dict, args) -> int:
    """cProfile --repeat requests of one of our pages as --user (after the warm-up)."""
    import cProfile
    import pstats

    client = logged_in_client(app, args.user, app.config["DEMO_PASSWORD"])
    # endpoints() lists the case list, the course page and the record list, in that order.
    page = endpoints(app, client, stock, f, with_stock=False)[list(OURS).index(args.profile)][2]
    if page is None:
        return 1
    for _ in range(3):
        client.get(page.url)
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(args.repeat):
        client.get(page.url)
    profiler.disable()
    if args.profile_out:
        profiler.dump_stats(args.profile_out)
    log(f"{page.url} as {args.user}, {args.repeat} requests")
    stats = pstats.Stats(profiler).sort_stats("cumulative")
    stats.print_stats(60)
    stats.sort_stats("tottime").print_stats(40)
    return 0


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0, help="seed_demo scale (default 1)")
    parser.add_argument("--repeat", type=int, default=20, help="timed requests per page (ours)")
    parser.add_argument("--stock-repeat", type=int, default=5, help="timed requests (stock)")
    parser.add_argument("--database-url", help="measure on this database (default: SQLite)")
    parser.add_argument("--reuse", action="store_true", help="keep an already seeded database")
    parser.add_argument("--profile", choices=sorted(OURS), help="cProfile one page of ours instead")
    parser.add_argument("--user", default=USER, help=f"with --profile: {USER} or {STAFF_USER}")
    parser.add_argument("--profile-out", help="with --profile: also dump the stats to this file")
    return parser.parse_args(argv)


def run(args, url: str, tmp: Path) -> int:
    """Build (or reuse) the database, measure as admin and as the staff account, print."""
    import flask_appbuilder

    from core.extensions import db

    app, stock = make_app(url, tmp)
    with app.app_context():
        if not (args.reuse and seeded()):
            build_database(app, args.scale)
        f = facts()
        staff = staff_user(app, stock, f["institution_id"])
        engine = db.engine
        db_label = database_label(engine)
    # Requests run outside any app context of ours, as a server runs them: each gets its
    # own context, so its session (identity map) and `g` end with it. Measured inside one
    # long app context, a page's lazy loads were answered from the identity map of the
    # warm-up requests and went uncounted (the course page showed 5 statements, not 11).
    queries = QueryLog(engine)
    from core.ops import settle_heap

    settle_heap()  # as each gunicorn worker does once the application is loaded
    if args.profile:
        return profile(app, stock, f, args)
    # Every page of ours, for both users, before any stock page: measured after stock pages
    # (whose requests build ~40,000 objects each), the record list took 26–27 ms p50 where it
    # takes 17 ms in a process that never ran one (same data, same machine, 30 requests).
    users = ((USER, "national"), (staff, f"institution {f['institution_code']}"))
    clients = {user: logged_in_client(app, user, app.config["DEMO_PASSWORD"]) for user, _ in users}
    pages = {user: endpoints(app, clients[user], stock, f, args.stock_repeat > 0) for user, _ in users}
    measured: dict = {}
    for side in ("ours", "stock"):
        for user, _scope in users:
            for label, theirs, mine in pages[user]:
                endpoint, repeat = (mine, args.repeat) if side == "ours" else (theirs, args.stock_repeat)
                if endpoint is None:
                    continue
                log(f"measuring {side} {label} as {user} ...")
                gc.collect()
                result = measured[side, user, label] = measure(clients[user], endpoint, queries, repeat)
                # As measured too: a run that dies later (see the note in the docstring) keeps them.
                log(f"  {side} {label} as {user}: p50 {result.p50:.1f} ms (CPU {result.cpu_p50:.1f}), "
                    f"{result.q_label()} statements")  # fmt: skip
    tables = [(user, scope, [(label, measured.get(("stock", user, label)), measured.get(("ours", user, label)))
                             for label, _theirs, _mine in pages[user]]) for user, scope in users]  # fmt: skip
    print()
    print(
        f"cases: {f['cases']:,} | database: {db_label} | Python {platform.python_version()} | "
        f"SQLAlchemy {sqlalchemy.__version__} | Flask-AppBuilder {flask_appbuilder.__version__}"
    )
    for user, scope, results in tables:
        print()
        print(f"user: {user} ({scope}) | records of the filtered month: {f['month_records']:,} | "
              f"{args.repeat} timed requests each (stock: {args.stock_repeat})")  # fmt: skip
        print()
        width = max(len(label) for label, _, _ in results)
        head = f"{'page':<{width}} | stock p50 | stock q | ours p50 | ours cpu | ours q"
        print(head)
        print("-" * len(head))

        def cells(result, cpu=False):
            if not result:
                return f"{'-':>9} | {'-':>7}" + (f" | {'-':>8}" if cpu else "")
            return (
                f"{result.p50:9.1f} | "
                + (f"{result.cpu_p50:8.1f} | " if cpu else "")
                + f"{result.q_label():>7}"
            )

        for label, theirs, mine in results:
            print(f"{label:<{width}} | {cells(theirs)} | {cells(mine, cpu=True)}")
    return 0


def main(argv=None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    for noisy in ("flask_appbuilder", "alembic"):
        logging.getLogger(noisy).setLevel(logging.ERROR)
    with tempfile.TemporaryDirectory(prefix="bench-addiction-") as tmp:
        url = args.database_url or f"sqlite:///{tmp}/bench.db"
        return run(args, url, Path(tmp))


if __name__ == "__main__":
    sys.exit(main())
