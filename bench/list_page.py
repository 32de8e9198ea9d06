"""List-page and list-API latency and SQL query counts: stock Flask-AppBuilder versus ours.

    .venv/bin/python bench/list_page.py [--model {assignments,visits}] [--rows N] [--repeat N]
                                        [--stock-repeat N] [--database-url URL [--reuse]]
                                        [--explain]

    scripts/with-postgres.sh bash -c \\
        '.venv/bin/python bench/list_page.py --database-url "$TEST_DATABASE_URL"'

Builds a scratch database (SQLite in a temporary folder by default, never instance/app.db;
with --database-url the schema of that database is dropped and recreated, unless --reuse
finds it already built by an earlier run), migrates it,
syncs roles, seeds the demo registry (seed 113), bulk-inserts rows of the measured table
until it holds --rows rows, then runs ANALYZE:

* --model assignments (the default): service assignments, default 300,000 rows, random
  practitioner, institution and start date (2012-2024).
* --model visits: visits, default 3,000,000 rows (the demo seed has ~343,000); each new row
  copies the institution, practitioner, quitter and services of a random existing visit,
  with a visit date spread over 2019-2025, entered at 10:00 local (02:00 UTC) that day.

Two pairs of endpoints are measured over the same data, as the national `office` user
(logged in through /login/ with a CSRF token, and with a JWT for the APIs):

* STOCK: a plain ModelView and a plain ModelRestApi over the model with FAB's stock
  SQLAInterface and default search columns, defined below and registered on the same app.
  The stock API lists the same columns as ours, so both APIs return the same payload.
* OURS: ServiceAssignmentView (/serviceassignmentview/list/) and ServiceAssignmentApi
  (/api/v1/service_assignment/), or VisitView (/visitview/list/) and VisitApi
  (/api/v1/visit/).

Assignments: page 1 and a deep page (offset ~90% of the rows), ordered by start_date desc,
of the list and of the API. Visits, ordered by visit_date desc: list page 1 and deep page;
the list filtered by the institution with the most visits (ours: its NHI code in the text
filter, _flt_0_institution=<code>; stock: FAB's relation filter, _flt_0_institution=<id>),
page 1 and last page; the list filtered by one month (_flt_1_visit_date=<day before>&
_flt_2_visit_date=<first of next month>: FAB's date filters are [equal, greater, smaller,
not equal]), page 1; API page 1 and deep page.

Each endpoint gets 2 warm-up requests, then --repeat timed requests (--stock-repeat for
stock; default 5) (time.perf_counter
around the test client call); every SQL statement is counted with a before_cursor_execute
listener. Responses are checked: HTTP 200, the rows on the page, and for filtered lists the
record count. The table gives p50/p95 in ms and statements per request, then whether ours
meets the target (p50 <= 20 ms on SQLite, and for visits <= 30 ms on PostgreSQL; <= 8
queries per request). When ours misses, or with --explain, the statements of one request
are listed by duration with the query plan of the slowest ones.
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import math
import platform
import random
import re
import sqlite3
import statistics
import sys
import tempfile
import time
from array import array
from dataclasses import dataclass, field
from pathlib import Path

import prison
import sqlalchemy
from sqlalchemy import event, func, insert, select, text

ROOT = Path(__file__).resolve().parent.parent
PAGE_SIZE = 25
WARMUP = 2
CHUNK = 50_000
TARGET_QUERIES = 8


@dataclass(frozen=True)
class Bench:
    """What --model measures."""

    table: str
    default_rows: int
    order_column: str
    stock_view_permission: str
    stock_api_permission: str
    #: p50 target for ours per database dialect; no entry means no latency target there.
    target_p50_ms: dict[str, float]


BENCHES = {
    "assignments": Bench(
        table="service_assignment",
        default_rows=300_000,
        order_column="start_date",
        stock_view_permission="BenchStockAssignmentView",
        stock_api_permission="BenchStockAssignmentApi",
        target_p50_ms={"sqlite": 20.0},
    ),
    "visits": Bench(
        table="visit",
        default_rows=3_000_000,
        order_column="visit_date",
        stock_view_permission="BenchStockVisitView",
        stock_api_permission="BenchStockVisitApi",
        target_p50_ms={"sqlite": 20.0, "postgresql": 30.0},
    ),
}
DIALECT_LABELS = {"sqlite": "SQLite", "postgresql": "PostgreSQL"}


# ------------------------------------------------------------------ query log
class QueryLog:
    """Counts every statement on an engine; optionally records SQL, parameters and time."""

    def __init__(self, engine):
        self.count = 0
        self.recording = False
        self.statements: list[tuple[float, str, object]] = []
        event.listen(engine, "before_cursor_execute", self._before)
        event.listen(engine, "after_cursor_execute", self._after)

    def _before(self, conn, cursor, statement, parameters, context, executemany):
        self.count += 1
        conn.info.setdefault("bench_started", []).append(time.perf_counter())

    def _after(self, conn, cursor, statement, parameters, context, executemany):
        started = conn.info["bench_started"].pop()
        if self.recording:
            self.statements.append((time.perf_counter() - started, statement, parameters))

    def reset(self) -> None:
        self.count = 0


# -------------------------------------------------------------- stock views
def stock_classes(model: str = "assignments"):
    """A plain ModelView and ModelRestApi over the model, with FAB's defaults."""
    from flask_appbuilder import ModelRestApi, ModelView
    from flask_appbuilder.models.sqla.interface import SQLAInterface

    if model == "visits":
        from models.cessation.visit import Visit
        from views.cessation.visits import VisitApi

        class BenchStockVisitView(ModelView):
            datamodel = SQLAInterface(Visit)
            class_permission_name = BENCHES["visits"].stock_view_permission
            list_columns = ["visit_date", "institution", "quitter", "practitioner"]
            base_order = ("visit_date", "desc")
            page_size = PAGE_SIZE

        class BenchStockVisitApi(ModelRestApi):
            resource_name = "bench_stock_visit"
            datamodel = SQLAInterface(Visit)
            class_permission_name = BENCHES["visits"].stock_api_permission
            list_columns = list(VisitApi.list_columns)
            base_order = ("visit_date", "desc")
            page_size = PAGE_SIZE

        return BenchStockVisitView, BenchStockVisitApi

    from models.registry.practitioner import ServiceAssignment
    from views.registry.institutions import ServiceAssignmentApi

    class BenchStockAssignmentView(ModelView):
        datamodel = SQLAInterface(ServiceAssignment)
        class_permission_name = BENCHES["assignments"].stock_view_permission
        list_columns = ["practitioner", "institution", "start_date", "end_date"]
        base_order = ("start_date", "desc")
        page_size = PAGE_SIZE

    class BenchStockAssignmentApi(ModelRestApi):
        resource_name = "bench_stock_service_assignment"
        datamodel = SQLAInterface(ServiceAssignment)
        class_permission_name = BENCHES["assignments"].stock_api_permission
        list_columns = list(ServiceAssignmentApi.list_columns)
        base_order = ("start_date", "desc")
        page_size = PAGE_SIZE

    return BenchStockAssignmentView, BenchStockAssignmentApi


def our_classes(model: str = "assignments"):
    if model == "visits":
        from views.cessation.visits import VisitApi, VisitView

        return VisitView, VisitApi
    from views.registry.institutions import ServiceAssignmentApi, ServiceAssignmentView

    return ServiceAssignmentView, ServiceAssignmentApi


# ------------------------------------------------------------------ database
def reset_database(db) -> None:
    """Empty the database so upgrade() starts from nothing (the test suite's helper)."""
    from seed.testing import reset_database as reset

    reset(db)


def build_database(app, rows: int, log, model: str = "assignments") -> int:
    """Migrate, sync roles, seed, top up the model's table to `rows`; return its count."""
    from flask_migrate import upgrade

    from core.extensions import db
    from core.security import roles
    from core.security.permissions import sync_roles
    from domain.roles import ROLE_GRANTS
    from seed.demo import seed_demo

    bench = BENCHES[model]
    started = time.perf_counter()
    reset_database(db)
    upgrade()
    sync_roles(app.appbuilder, ROLE_GRANTS)
    _grant_stock_permissions(app, roles.OFFICE, bench)
    seeded = seed_demo(seed=113)
    log(f"seeded demo registry: {seeded} ({time.perf_counter() - started:.1f} s)")

    top_up = _top_up_visits if model == "visits" else _top_up_assignments
    table = top_up(db, rows, log)
    inserted = time.perf_counter()
    with db.engine.begin() as conn:
        conn.execute(text("ANALYZE"))
    total = db.session.scalar(select(func.count()).select_from(table))
    db.session.remove()
    log(
        f"{bench.table} rows: {total:,} ({inserted - started:.1f} s, ANALYZE "
        f"{time.perf_counter() - inserted:.1f} s)"
    )
    return total


def _top_up_assignments(db, rows: int, log):
    from models.registry.institution import Institution
    from models.registry.practitioner import Practitioner, ServiceAssignment

    table = ServiceAssignment.__table__
    practitioners = db.session.scalars(select(Practitioner.id)).all()
    institutions = db.session.scalars(select(Institution.id)).all()
    current = db.session.scalar(select(func.count()).select_from(table))
    rng = random.Random(20240101)
    first, span = dt.date(2012, 1, 1), (dt.date(2024, 12, 31) - dt.date(2012, 1, 1)).days
    while current < rows:
        size = min(CHUNK, rows - current)
        batch = [
            {
                "practitioner_id": rng.choice(practitioners),
                "institution_id": rng.choice(institutions),
                "start_date": first + dt.timedelta(days=rng.randrange(span + 1)),
                "end_date": None,
            }
            for _ in range(size)
        ]
        db.session.execute(insert(table), batch)
        db.session.commit()
        current += size
    return table


def _top_up_visits(db, rows: int, log):
    """Copies of random existing visits (who, where, which services) on other days.

    The source rows are held in typed arrays (~15 bytes a visit) and the new rows are
    generated and inserted one chunk at a time, so memory stays flat whatever --rows is.
    """
    from models.cessation.visit import Visit

    table = Visit.__table__
    c = table.c
    institution, practitioner, quitter = array("i"), array("i"), array("i")
    medication, medication_days, education = array("b"), array("h"), array("h")
    names: list[str | None] = [None]
    result = db.session.execute(
        select(
            c.institution_id,
            c.practitioner_id,
            c.quitter_id,
            c.medication_name,
            c.medication_days,
            c.education_minutes,
        ).execution_options(yield_per=20_000)
    )
    for inst, prac, quit_, name, days, minutes in result:
        if name not in names:
            names.append(name)
        institution.append(inst)
        practitioner.append(prac)
        quitter.append(quit_)
        medication.append(names.index(name))
        medication_days.append(days or 0)
        education.append(minutes or 0)
    result.close()
    db.session.commit()
    sources = len(institution)
    current = sources
    days = [
        dt.date(2019, 1, 1) + dt.timedelta(days=n)
        for n in range((dt.date(2025, 12, 31) - dt.date(2019, 1, 1)).days + 1)
    ]
    # 10:00 in Taiwan is 02:00 UTC, stored naive: entered on the day, so within 24 hours.
    entered = [dt.datetime.combine(day, dt.time(10)) - dt.timedelta(hours=8) for day in days]
    rng = random.Random(20250101)
    started = time.perf_counter()
    while current < rows:
        size = min(CHUNK, rows - current)
        batch = []
        for _ in range(size):
            source, day = rng.randrange(sources), rng.randrange(len(days))
            batch.append(
                {
                    "institution_id": institution[source],
                    "practitioner_id": practitioner[source],
                    "quitter_id": quitter[source],
                    "visit_date": days[day],
                    "medication_name": names[medication[source]],
                    "medication_days": medication_days[source] or None,
                    "education_minutes": education[source] or None,
                    "entered_at": entered[day],
                    "entry_timeliness": "within_24h",
                }
            )
        db.session.execute(insert(table), batch)
        db.session.commit()
        current += size
        if current // 500_000 != (current - size) // 500_000 or current >= rows:
            log(f"visits: {current:,} ({time.perf_counter() - started:.1f} s inserting)")
    return table


def _grant_stock_permissions(app, role_name: str, bench: Bench = BENCHES["assignments"]) -> None:
    """The stock views have resources of their own: let the measured user's role use them.

    sync_roles already gave Admin every permission, these included.
    """
    from core.extensions import db

    sm = app.appbuilder.sm
    role = sm.find_role(role_name)
    for resource in (bench.stock_view_permission, bench.stock_api_permission):
        for permission_view in sm.find_permissions_view_menu(sm.find_view_menu(resource)):
            if permission_view not in role.permissions:
                role.permissions.append(permission_view)
    db.session.commit()


def database_label(engine) -> str:
    if engine.dialect.name == "sqlite":
        return f"sqlite {sqlite3.sqlite_version}"
    with engine.connect() as conn:
        version = conn.execute(text("SHOW server_version")).scalar()
    return f"{engine.dialect.name} {version}"


@dataclass
class VisitFacts:
    """What the filtered visit lists select, and how many rows they should find."""

    institution_id: int
    institution_code: str
    institution_visits: int
    month: dt.date
    month_visits: int


def visit_facts(month: dt.date = dt.date(2024, 6, 1)) -> VisitFacts:
    """The institution with the most visits, and the visits of `month` (exact counts)."""
    from core.extensions import db
    from models.cessation.visit import Visit
    from models.registry.institution import Institution

    visits = func.count().label("visits")
    institution_id, count = db.session.execute(
        select(Visit.institution_id, visits)
        .group_by(Visit.institution_id)
        .order_by(visits.desc(), Visit.institution_id)
        .limit(1)
    ).one()
    code = db.session.scalar(select(Institution.nhi_code).where(Institution.id == institution_id))
    month_visits = db.session.scalar(
        select(func.count())
        .select_from(Visit)
        .where(Visit.visit_date >= month, Visit.visit_date < _next_month(month))
    )
    db.session.remove()
    return VisitFacts(institution_id, code, count, month, month_visits)


def _next_month(day: dt.date) -> dt.date:
    return (day.replace(day=1) + dt.timedelta(days=32)).replace(day=1)


# ------------------------------------------------------------------- clients
def logged_in_client(app, username: str, password: str):
    from seed.testing import login

    client = app.test_client()
    response = login(app, client, username, password)
    location = response.headers.get("Location", "")
    if response.status_code != 302 or "/login" in location:
        raise SystemExit(f"login as {username} failed: {response.status_code} {location}")
    return client


def jwt_headers(app, username: str, password: str) -> dict[str, str]:
    response = app.test_client().post(
        "/api/v1/security/login",
        json={"username": username, "password": password, "provider": "db"},
    )
    if response.status_code != 200:
        raise SystemExit(f"JWT login as {username} failed: {response.status_code} {response.text}")
    return {"Authorization": f"Bearer {response.json['access_token']}"}


# --------------------------------------------------------------- measurement
@dataclass
class Result:
    times_ms: list[float] = field(default_factory=list)
    queries: list[int] = field(default_factory=list)
    #: This process's CPU time per request (time.process_time): on a shared, loaded machine
    #: the wall time also counts the time other processes held the cores.
    cpu_ms: list[float] = field(default_factory=list)
    #: The first (warm-up) request: caches still cold, e.g. our deep-page bookmarks.
    first_ms: float = 0.0
    first_queries: int = 0

    @property
    def p50(self) -> float:
        return statistics.median(self.times_ms)

    @property
    def cpu_p50(self) -> float:
        return statistics.median(self.cpu_ms) if self.cpu_ms else float("nan")

    @property
    def p95(self) -> float:
        ordered = sorted(self.times_ms)
        return ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)]

    @property
    def q_max(self) -> int:
        return max(self.queries)

    def q_label(self) -> str:
        low, high = min(self.queries), max(self.queries)
        return str(low) if low == high else f"{low}-{high}"


@dataclass
class Endpoint:
    label: str
    url: str
    api: bool
    headers: dict[str, str] | None = None
    #: Rows the page must show (default: a full page).
    rows: int = PAGE_SIZE
    #: Record count the list must report (filtered lists: their filter must have applied).
    count: int | None = None


#: Every row of FAB's list widget links to its show page (the search form comes first and
#: may hold a <tbody> of its own, so rows are counted by their distinct show links).
_SHOW_LINK = re.compile(r'href="[^"]*/show/(\d+)"')
#: FAB's list prints "<strong>Record Count:</strong> N" (translated label).
_RECORD_COUNT = re.compile(r"<strong>[^<]*</strong>\s*([\d,]+)\s*</")


def _list_rows(html: str) -> int:
    return len(set(_SHOW_LINK.findall(html)))


def check(response, endpoint: Endpoint) -> None:
    if response.status_code != 200:
        raise SystemExit(
            f"{endpoint.url}: HTTP {response.status_code} {response.headers.get('Location', '')}"
        )
    if endpoint.api:
        rows, count = len(response.json["result"]), response.json.get("count")
    else:
        html = response.get_data(as_text=True)
        rows = _list_rows(html)
        found = _RECORD_COUNT.search(html)
        count = int(found.group(1).replace(",", "")) if found else None
    if rows != endpoint.rows:
        raise SystemExit(f"{endpoint.url}: {rows} rows, not {endpoint.rows}")
    if endpoint.count is not None and count != endpoint.count:
        raise SystemExit(f"{endpoint.url}: record count {count}, not {endpoint.count}")


def measure(client, endpoint: Endpoint, queries: QueryLog, repeat: int) -> Result:
    result = Result()
    for warmup in range(WARMUP):
        queries.reset()
        started = time.perf_counter()
        response = client.get(endpoint.url, headers=endpoint.headers)
        if warmup == 0:
            result.first_ms = (time.perf_counter() - started) * 1000
            result.first_queries = queries.count
        check(response, endpoint)
    for _ in range(repeat):
        queries.reset()
        started, cpu = time.perf_counter(), time.process_time()
        response = client.get(endpoint.url, headers=endpoint.headers)
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
        check(response, endpoint)
        result.times_ms.append(elapsed * 1000)
        result.cpu_ms.append(cpu * 1000)
        result.queries.append(queries.count)
    return result


def record_one(client, endpoint: Endpoint, queries: QueryLog):
    """The statements of one request, slowest first."""
    queries.statements = []
    queries.recording = True
    try:
        check(client.get(endpoint.url, headers=endpoint.headers), endpoint)
    finally:
        queries.recording = False
    return sorted(queries.statements, key=lambda s: s[0], reverse=True)


def explain(engine, statement: str, parameters) -> list[str]:
    if engine.dialect.name == "sqlite":
        prefix = "EXPLAIN QUERY PLAN "
    else:
        prefix = "EXPLAIN (ANALYZE, BUFFERS) "
    with engine.connect() as conn:
        rows = conn.exec_driver_sql(prefix + statement, parameters).all()
    if engine.dialect.name == "sqlite":
        return [f"{row[0]:>3} {row[1]:>3}  {row[3]}" for row in rows]
    return [row[0] for row in rows]


def endpoints(
    view: str, api_base: str, deep_page: int, api_headers, order_column: str = "start_date"
) -> list[Endpoint]:
    order = f"_oc_{view}={order_column}&_od_{view}=desc"
    list_url = f"/{view.lower()}/list/?{order}"

    def api_url(page: int) -> str:
        q = prison.dumps(
            {
                "page": page,
                "page_size": PAGE_SIZE,
                "order_column": order_column,
                "order_direction": "desc",
            }
        )
        return f"{api_base}?q={q}"

    return [
        Endpoint("list page 1", f"{list_url}&page_{view}=0", api=False),
        Endpoint(
            f"list deep (page {deep_page + 1})", f"{list_url}&page_{view}={deep_page}", api=False
        ),
        Endpoint("api page 1", api_url(0), api=True, headers=api_headers),
        Endpoint(
            f"api deep (page {deep_page + 1})", api_url(deep_page), api=True, headers=api_headers
        ),
    ]


def visit_endpoints(
    view: str, api_base: str, deep_page: int, api_headers, facts: VisitFacts, institution: str
) -> list[Endpoint]:
    """The visit list's endpoints; `institution` is the value of the institution filter."""
    page_1, deep, api_page_1, api_deep = endpoints(
        view, api_base, deep_page, api_headers, order_column="visit_date"
    )
    order = f"_oc_{view}=visit_date&_od_{view}=desc"
    by_institution = f"/{view.lower()}/list/?_flt_0_institution={institution}&{order}"
    last = math.ceil(facts.institution_visits / PAGE_SIZE) - 1
    month = facts.month
    by_month = (
        f"/{view.lower()}/list/?_flt_1_visit_date={month - dt.timedelta(days=1):%Y-%m-%d}"
        f"&_flt_2_visit_date={_next_month(month):%Y-%m-%d}&{order}"
    )
    return [
        page_1,
        deep,
        Endpoint(
            "list institution page 1",
            f"{by_institution}&page_{view}=0",
            api=False,
            rows=min(PAGE_SIZE, facts.institution_visits),
            count=facts.institution_visits,
        ),
        Endpoint(
            f"list institution last (page {last + 1})",
            f"{by_institution}&page_{view}={last}",
            api=False,
            rows=facts.institution_visits - last * PAGE_SIZE,
            count=facts.institution_visits,
        ),
        Endpoint(
            f"list month {month:%Y-%m} page 1",
            f"{by_month}&page_{view}=0",
            api=False,
            rows=min(PAGE_SIZE, facts.month_visits),
            count=facts.month_visits,
        ),
        api_page_1,
        api_deep,
    ]


# ---------------------------------------------------------------------- main
def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--model",
        choices=sorted(BENCHES),
        default="assignments",
        help="the list to measure: service assignments (default) or visits",
    )
    parser.add_argument(
        "--rows",
        type=int,
        default=None,
        help="rows the measured table holds at least "
        "(default 300000 service assignments, 3000000 visits)",
    )
    parser.add_argument(
        "--repeat", type=int, default=30, help="timed requests per measurement (default 30)"
    )
    parser.add_argument(
        "--stock-repeat",
        type=int,
        default=5,
        help="timed requests per stock measurement (default 5: stock pages take seconds "
        "at millions of rows; 0 skips stock)",
    )
    parser.add_argument(
        "--database-url",
        help="run against this database (its schema is dropped!) instead of a scratch SQLite file",
    )
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="with --database-url: keep a database an earlier run built when it already holds "
        "--rows rows, instead of dropping and rebuilding it",
    )
    parser.add_argument(
        "--explain", action="store_true", help="always list our statements with their query plans"
    )
    args = parser.parse_args(argv)
    if args.rows is None:
        args.rows = BENCHES[args.model].default_rows
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    logging.basicConfig(level=logging.WARNING)
    for noisy in ("flask_appbuilder", "alembic"):
        logging.getLogger(noisy).setLevel(logging.ERROR)

    with tempfile.TemporaryDirectory(prefix="bench-list-") as tmp:
        url = args.database_url or f"sqlite:///{tmp}/bench.db"
        return run(args, url, Path(tmp), log)


def log(message: str) -> None:
    print(f"# {message}", file=sys.stderr, flush=True)


def make_app(url: str, tmp: Path, model: str = "assignments"):
    """The application with the model's stock view and API registered alongside ours."""
    from app import create_app

    app = create_app(
        {
            "SQLALCHEMY_DATABASE_URI": url,
            "CACHE_TYPE": "SimpleCache",
            "UPLOAD_FOLDER": str(tmp / "uploads"),
            "TESTING": True,
            "SECRET_KEY": "bench-secret-key-0123456789abcdef",
            # The bench logs in for a token per endpoint; runs back to back would hit the
            # API login's limit in the shared limiter store.
            "RATELIMIT_STORAGE_URI": "memory://",
            "AUTH_RATE_LIMIT": "10000 per minute",
        }
    )
    stock_view, stock_api = stock_classes(model)
    with app.app_context():
        # Before the first request, and before sync_roles creates the permissions.
        app.appbuilder.add_view_no_menu(stock_view)
        app.appbuilder.add_api(stock_api)
    return app, stock_view, stock_api


def reusable_rows(args) -> int | None:
    """The measured table's row count when an earlier run of this bench built the database
    (its stock permissions exist and the table holds --rows rows); None means build it."""
    from core.extensions import db

    bench = BENCHES[args.model]
    try:
        total = db.session.scalar(text(f"SELECT count(*) FROM {bench.table}"))
        built = db.session.scalar(
            text("SELECT count(*) FROM ab_view_menu WHERE name = :name"),
            {"name": bench.stock_view_permission},
        )
    except sqlalchemy.exc.DBAPIError:
        db.session.rollback()
        return None
    return total if built and total >= args.rows else None


def run(args, url: str, tmp: Path, log) -> int:
    from core.extensions import db

    app, stock_view, stock_api = make_app(url, tmp, args.model)
    with app.app_context():
        total = reusable_rows(args) if args.reuse else None
        if total is None:
            total = build_database(app, args.rows, log, args.model)
        else:
            log(f"reusing {url}: {total:,} {BENCHES[args.model].table} rows")
        facts = visit_facts() if args.model == "visits" else None
        engine = db.engine
    return measure_and_report(args, app, stock_view, stock_api, engine, total, facts)


def measure_and_report(args, app, stock_view, stock_api, engine, total, facts=None) -> int:
    """Measure stock and ours over the built database, print the table and the verdict."""
    import flask_appbuilder

    bench = BENCHES[args.model]
    db_label = database_label(engine)
    queries = QueryLog(engine)

    password = app.config["DEMO_PASSWORD"]
    client = logged_in_client(app, "office", password)
    headers = jwt_headers(app, "office", password)
    deep_page = int(total * 0.9) // PAGE_SIZE
    our_view, our_api = our_classes(args.model)

    if facts is None:
        stock = endpoints(
            stock_view.__name__, f"/api/v1/{stock_api.resource_name}/", deep_page, headers
        )
        ours = endpoints(our_view.__name__, f"/api/v1/{our_api.resource_name}/", deep_page, headers)
    else:
        stock = visit_endpoints(
            stock_view.__name__,
            f"/api/v1/{stock_api.resource_name}/",
            deep_page,
            headers,
            facts,
            institution=str(facts.institution_id),
        )
        ours = visit_endpoints(
            our_view.__name__,
            f"/api/v1/{our_api.resource_name}/",
            deep_page,
            headers,
            facts,
            institution=facts.institution_code,
        )

    results = []
    for mine, theirs in zip(ours, stock, strict=True):
        log(f"measuring {mine.label} ...")
        # A long run outlives the access token (15 minutes): the endpoints share this dict.
        headers.update(jwt_headers(app, "office", password))
        results.append(
            (
                mine.label,
                measure(client, theirs, queries, args.stock_repeat) if args.stock_repeat else None,
                measure(client, mine, queries, args.repeat),
            )
        )

    print()
    print(
        f"{bench.table} rows: {total:,} | database: {db_label} | "
        f"Python {platform.python_version()} | SQLAlchemy {sqlalchemy.__version__} | "
        f"Flask-AppBuilder {flask_appbuilder.__version__}"
    )
    print(
        f"user: office (national) | page size {PAGE_SIZE} | deep page offset "
        f"{deep_page * PAGE_SIZE:,} | {WARMUP} warm-up + {args.repeat} timed requests each "
        f"(stock: {args.stock_repeat})"
    )
    if facts is not None:
        print(
            f"institution filter: {facts.institution_code} (id {facts.institution_id}, "
            f"{facts.institution_visits:,} visits) | month filter: {facts.month:%Y-%m} "
            f"({facts.month_visits:,} visits)"
        )
    print()
    width = max(len(label) for label, _, _ in results)
    head = f"{'endpoint':<{width}} | stock p50 | stock p95 | stock q | ours p50 | ours p95 | ours q"
    print(head)
    print("-" * len(head))
    for label, theirs, mine in results:
        stock_cells = (
            f"{theirs.p50:9.1f} | {theirs.p95:9.1f} | {theirs.q_label():>7}"
            if theirs
            else f"{'-':>9} | {'-':>9} | {'-':>7}"
        )
        print(
            f"{label:<{width}} | {stock_cells} | "
            f"{mine.p50:8.1f} | {mine.p95:8.1f} | {mine.q_label():>6}"
        )
    print("(times in ms; q = SQL statements per request, min-max when it varies)")
    print()
    print("first request of each endpoint (the first warm-up, before any cache of ours is warm):")
    for label, theirs, mine in results:
        stock_first = (
            f"stock {theirs.first_ms:9.1f} ms {theirs.first_queries:>3} q"
            if theirs
            else f"stock {'-':>9}         "
        )
        print(
            f"  {label:<{width}}  {stock_first}"
            f" | ours {mine.first_ms:8.1f} ms {mine.first_queries:>3} q"
        )

    dialect = engine.dialect.name
    target_ms = bench.target_p50_ms.get(dialect)
    latency_for = ", ".join(
        f"<= {ms:g} ms on {DIALECT_LABELS.get(name, name)}"
        for name, ms in bench.target_p50_ms.items()
    )
    latency_scope = " and ".join(DIALECT_LABELS.get(name, name) for name in bench.target_p50_ms)
    print()
    print(f"target for ours: p50 {latency_for}, <= {TARGET_QUERIES} queries per request")
    missed = []
    for (label, _, mine), endpoint in zip(results, ours, strict=True):
        fast = target_ms is None or mine.p50 <= target_ms
        few = mine.q_max <= TARGET_QUERIES
        latency = f"p50 {mine.p50:.1f} ms " + (
            ("OK" if fast else "MISS")
            if target_ms is not None
            else f"(latency target is for {latency_scope})"
        )
        count = f"{mine.q_max} queries " + ("OK" if few else "MISS")
        print(f"  {label:<{width}}  {latency:<40} {count}")
        if not fast or not few:
            missed.append(endpoint)
    verdict = "MET" if not missed else f"MISSED on {len(missed)} of {len(ours)} endpoints"
    scope = (
        ""
        if target_ms is not None
        else f" (query count only: the latency target is for {latency_scope})"
    )
    print(f"overall{scope}: {verdict}")

    if missed or args.explain:
        headers.update(jwt_headers(app, "office", password))
    for endpoint in ours if args.explain else missed:
        print()
        print(f"== statements of one request to ours: {endpoint.label} ({endpoint.url})")
        statements = record_one(client, endpoint, queries)
        for index, (seconds, statement, _) in enumerate(statements, start=1):
            sql = " ".join(statement.split())
            print(f"  {index:>2}. {seconds * 1000:7.2f} ms  {sql[:160]}")
        selects = [s for s in statements if s[1].lstrip().upper().startswith("SELECT")]
        for seconds, statement, parameters in selects[:2]:
            print()
            print(f"  -- {seconds * 1000:.2f} ms: {' '.join(statement.split())}")
            print(f"  -- parameters: {parameters}")
            for line in explain(engine, statement, parameters):
                print(f"     {line}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
