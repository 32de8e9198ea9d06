"""List-page and list-API latency and SQL query counts: stock Flask-AppBuilder versus ours.

    .venv/bin/python bench/list_page.py [--rows N] [--repeat N] [--database-url URL] [--explain]

    scripts/with-postgres.sh bash -c \\
        '.venv/bin/python bench/list_page.py --database-url "$TEST_DATABASE_URL"'

Builds a scratch database (SQLite in a temporary folder by default, never instance/app.db;
with --database-url the schema of that database is dropped and recreated), migrates it,
syncs roles, seeds the demo registry (seed 113) and bulk-inserts service assignments until
the table holds --rows rows (default 300,000), then runs ANALYZE.

Two pairs of endpoints are measured over the same data, as the national `office` user
(logged in through /login/ with a CSRF token, and with a JWT for the APIs):

* STOCK: a plain ModelView and a plain ModelRestApi over ServiceAssignment with FAB's
  stock SQLAInterface, defined below and registered on the same app. The stock API lists
  the same columns as ours, so both APIs return the same payload.
* OURS: ServiceAssignmentView (/serviceassignmentview/list/) and ServiceAssignmentApi
  (/api/v1/service_assignment/).

For page 1 and for a deep page (offset ~90% of the rows), ordered by start_date desc, each
endpoint gets 2 warm-up requests, then --repeat timed requests (time.perf_counter around
the test client call); every SQL statement is counted with a before_cursor_execute
listener. The table gives p50/p95 in ms and statements per request, then whether ours
meets the target (p50 <= 20 ms on SQLite, <= 8 queries per request). When ours misses,
or with --explain, the statements of one request are listed by duration with the query
plan of the slowest ones.
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import math
import platform
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import prison
import sqlalchemy
from sqlalchemy import event, func, insert, select, text

ROOT = Path(__file__).resolve().parent.parent
PAGE_SIZE = 25
WARMUP = 2
CHUNK = 50_000
TARGET_P50_MS = 20.0
TARGET_QUERIES = 8
STOCK_VIEW_PERMISSION = "BenchStockAssignmentView"
STOCK_API_PERMISSION = "BenchStockAssignmentApi"


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
def stock_classes():
    """A plain ModelView and ModelRestApi over ServiceAssignment, with FAB's defaults."""
    from flask_appbuilder import ModelRestApi, ModelView
    from flask_appbuilder.models.sqla.interface import SQLAInterface

    from models.practitioner import ServiceAssignment
    from views.registry import ServiceAssignmentApi

    class BenchStockAssignmentView(ModelView):
        datamodel = SQLAInterface(ServiceAssignment)
        class_permission_name = STOCK_VIEW_PERMISSION
        list_columns = ["practitioner", "institution", "start_date", "end_date"]
        base_order = ("start_date", "desc")
        page_size = PAGE_SIZE

    class BenchStockAssignmentApi(ModelRestApi):
        resource_name = "bench_stock_service_assignment"
        datamodel = SQLAInterface(ServiceAssignment)
        class_permission_name = STOCK_API_PERMISSION
        list_columns = list(ServiceAssignmentApi.list_columns)
        base_order = ("start_date", "desc")
        page_size = PAGE_SIZE

    return BenchStockAssignmentView, BenchStockAssignmentApi


# ------------------------------------------------------------------ database
def reset_database(db) -> None:
    """Empty the database so upgrade() starts from nothing (the test suite's helper)."""
    from tests.conftest import reset_database as reset

    reset(db)


def build_database(app, rows: int, log) -> int:
    """Migrate, sync roles, seed, top up service assignments to `rows`; return the count."""
    from flask_migrate import upgrade

    from core import roles
    from core.extensions import db
    from models.institution import Institution
    from models.practitioner import Practitioner, ServiceAssignment
    from seed.demo import seed_demo

    started = time.perf_counter()
    reset_database(db)
    upgrade()
    roles.sync_roles(app.appbuilder)
    _grant_stock_permissions(app, roles.OFFICE)
    seeded = seed_demo(seed=113)
    log(f"seeded demo registry: {seeded} ({time.perf_counter() - started:.1f} s)")

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
    with db.engine.begin() as conn:
        conn.execute(text("ANALYZE"))
    total = db.session.scalar(select(func.count()).select_from(table))
    db.session.remove()
    log(f"service_assignment rows: {total:,} ({time.perf_counter() - started:.1f} s)")
    return total


def _grant_stock_permissions(app, role_name: str) -> None:
    """The stock views have resources of their own: let the measured user's role use them.

    sync_roles already gave Admin every permission, these included.
    """
    from core.extensions import db

    sm = app.appbuilder.sm
    role = sm.find_role(role_name)
    for resource in (STOCK_VIEW_PERMISSION, STOCK_API_PERMISSION):
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


# ------------------------------------------------------------------- clients
def logged_in_client(app, username: str, password: str):
    from tests.conftest import login

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

    @property
    def p50(self) -> float:
        return statistics.median(self.times_ms)

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


def check(response, endpoint: Endpoint) -> None:
    if response.status_code != 200:
        raise SystemExit(
            f"{endpoint.url}: HTTP {response.status_code} {response.headers.get('Location', '')}"
        )
    if endpoint.api and len(response.json["result"]) != PAGE_SIZE:
        raise SystemExit(f"{endpoint.url}: {len(response.json['result'])} rows, not {PAGE_SIZE}")


def measure(client, endpoint: Endpoint, queries: QueryLog, repeat: int) -> Result:
    for _ in range(WARMUP):
        check(client.get(endpoint.url, headers=endpoint.headers), endpoint)
    result = Result()
    for _ in range(repeat):
        queries.reset()
        started = time.perf_counter()
        response = client.get(endpoint.url, headers=endpoint.headers)
        elapsed = time.perf_counter() - started
        check(response, endpoint)
        result.times_ms.append(elapsed * 1000)
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


def endpoints(view: str, api_base: str, deep_page: int, api_headers) -> list[Endpoint]:
    order = f"_oc_{view}=start_date&_od_{view}=desc"
    list_url = f"/{view.lower()}/list/?{order}"

    def api_url(page: int) -> str:
        q = prison.dumps(
            {
                "page": page,
                "page_size": PAGE_SIZE,
                "order_column": "start_date",
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


# ---------------------------------------------------------------------- main
def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--rows",
        type=int,
        default=300_000,
        help="service assignments to hold at least (default 300000)",
    )
    parser.add_argument(
        "--repeat", type=int, default=30, help="timed requests per measurement (default 30)"
    )
    parser.add_argument(
        "--database-url",
        help="run against this database (its schema is dropped!) instead of a scratch SQLite file",
    )
    parser.add_argument(
        "--explain", action="store_true", help="always list our statements with their query plans"
    )
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    logging.basicConfig(level=logging.WARNING)
    for noisy in ("flask_appbuilder", "alembic"):
        logging.getLogger(noisy).setLevel(logging.ERROR)

    def log(message: str) -> None:
        print(f"# {message}", file=sys.stderr, flush=True)

    with tempfile.TemporaryDirectory(prefix="bench-list-") as tmp:
        url = args.database_url or f"sqlite:///{tmp}/bench.db"
        return run(args, url, Path(tmp), log)


def run(args, url: str, tmp: Path, log) -> int:
    import flask_appbuilder

    from app import create_app
    from core.extensions import db

    app = create_app(
        {
            "SQLALCHEMY_DATABASE_URI": url,
            "CACHE_TYPE": "SimpleCache",
            "UPLOAD_FOLDER": str(tmp / "uploads"),
            "TESTING": True,
            "SECRET_KEY": "bench-secret-key-0123456789abcdef",
        }
    )
    stock_view, stock_api = stock_classes()
    with app.app_context():
        # Before the first request, and before sync_roles creates the permissions.
        app.appbuilder.add_view_no_menu(stock_view)
        app.appbuilder.add_api(stock_api)
        total = build_database(app, args.rows, log)
        engine = db.engine
        db_label = database_label(engine)
    queries = QueryLog(engine)

    password = app.config["DEMO_PASSWORD"]
    client = logged_in_client(app, "office", password)
    headers = jwt_headers(app, "office", password)
    deep_page = int(total * 0.9) // PAGE_SIZE
    from views.registry import ServiceAssignmentApi, ServiceAssignmentView

    stock = endpoints(
        stock_view.__name__, f"/api/v1/{stock_api.resource_name}/", deep_page, headers
    )
    ours = endpoints(
        ServiceAssignmentView.__name__,
        f"/api/v1/{ServiceAssignmentApi.resource_name}/",
        deep_page,
        headers,
    )

    results = []
    for mine, theirs in zip(ours, stock, strict=True):
        log(f"measuring {mine.label} ...")
        results.append(
            (
                mine.label,
                measure(client, theirs, queries, args.repeat),
                measure(client, mine, queries, args.repeat),
            )
        )

    print()
    print(
        f"service_assignment rows: {total:,} | database: {db_label} | "
        f"Python {platform.python_version()} | SQLAlchemy {sqlalchemy.__version__} | "
        f"Flask-AppBuilder {flask_appbuilder.__version__}"
    )
    print(
        f"user: office (national) | page size {PAGE_SIZE} | deep page offset "
        f"{deep_page * PAGE_SIZE:,} | {WARMUP} warm-up + {args.repeat} timed requests each"
    )
    print()
    width = max(len(label) for label, _, _ in results)
    head = f"{'endpoint':<{width}} | stock p50 | stock p95 | stock q | ours p50 | ours p95 | ours q"
    print(head)
    print("-" * len(head))
    for label, theirs, mine in results:
        print(
            f"{label:<{width}} | {theirs.p50:9.1f} | {theirs.p95:9.1f} | {theirs.q_label():>7} | "
            f"{mine.p50:8.1f} | {mine.p95:8.1f} | {mine.q_label():>6}"
        )
    print("(times in ms; q = SQL statements per request, min-max when it varies)")

    sqlite = engine.dialect.name == "sqlite"
    print()
    print(
        f"target for ours: p50 <= {TARGET_P50_MS:g} ms on SQLite, <= {TARGET_QUERIES} "
        "queries per request"
    )
    missed = []
    for (label, _, mine), endpoint in zip(results, ours, strict=True):
        fast = mine.p50 <= TARGET_P50_MS
        few = mine.q_max <= TARGET_QUERIES
        latency = f"p50 {mine.p50:.1f} ms " + (
            ("OK" if fast else "MISS") if sqlite else "(latency target is for SQLite)"
        )
        count = f"{mine.q_max} queries " + ("OK" if few else "MISS")
        print(f"  {label:<{width}}  {latency:<40} {count}")
        if (sqlite and not fast) or not few:
            missed.append(endpoint)
    verdict = "MET" if not missed else f"MISSED on {len(missed)} of {len(ours)} endpoints"
    scope = "" if sqlite else " (query count only: the latency target is for SQLite)"
    print(f"overall{scope}: {verdict}")

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
