"""Server CPU per request, per endpoint and user, over the demo dataset (no HTTP, no gunicorn).

    .venv/bin/python bench/request_cost.py --reuse /tmp/load-db       # the folder bench/load.py seeded
    .venv/bin/python bench/request_cost.py --database-url postgresql://... [--repeat 20]
    .venv/bin/python bench/request_cost.py --reuse /tmp/load-db --profile "practitioner list" --user bureau_tpe

For each (endpoint, user) of bench/load.py's list pages (and a few others) it signs in with the
Flask test client, warms up, then times --repeat requests: wall ms (p50) and process CPU ms
(mean), and counts SQL statements. CPU ms per request is what caps a 2-worker sync server:
requests/s <= cores x 1000 / CPU ms, whatever the client does. --profile prints a
pyinstrument-style cProfile summary of one endpoint for one user.
"""

from __future__ import annotations

import argparse
import cProfile
import datetime as dt
import os
import pstats
import re
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
PASSWORD = os.environ.get("DEMO_PASSWORD", "Demo-Pass-2024!")
USERS = ["office", "bureau_tpe", "facility_tpe"]


def endpoints() -> dict[str, str]:
    from core.dates import roc_month

    today = dt.date.today()
    return {
        "visit list": "/visitview/list/",
        "institution list": "/institutionview/list/",
        "practitioner list": "/practitionerview/list/",
        "self-check": f"/selfcheck/?month={roc_month(today.year, today.month)}",
        "fee deduction": "/feededuction/",
        "quitter list": "/quitterview/list/",
        "assignment list": "/serviceassignmentview/list/",
        "contract list": "/contractperiodview/list/",
        "ticket list": "/corrections/list/",
        "api visit list": "/api/v1/visit/",
        "api institution list": "/api/v1/institution/",
    }


def sign_in(app, username):
    client = app.test_client()
    page = client.get("/login/").get_data(as_text=True)
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page).group(1)
    response = client.post(
        "/login/", data={"username": username, "password": PASSWORD, "csrf_token": token}
    )
    assert response.status_code == 302, f"login failed for {username}"
    jwt = client.post(
        "/api/v1/security/login",
        json={"username": username, "password": PASSWORD, "provider": "db"},
    ).json["access_token"]
    return client, {"Authorization": f"Bearer {jwt}"}


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--reuse", help="the instance folder bench/load.py seeded")
    parser.add_argument("--database-url")
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--profile", help="an endpoint name to profile")
    parser.add_argument("--user", default="bureau_tpe")
    parser.add_argument("--only", help="comma-separated endpoint names")
    parser.add_argument("--users", help="comma-separated users (default: office, bureau_tpe, facility_tpe)")
    args = parser.parse_args()
    if args.reuse:
        os.environ["INSTANCE_DIR"] = args.reuse
        os.environ.setdefault("DATABASE_URL", f"sqlite:///{Path(args.reuse) / 'app.db'}")
    if args.database_url:
        os.environ["DATABASE_URL"] = args.database_url
    os.environ.setdefault("AUTH_RATE_LIMIT", "1000 per minute")
    from sqlalchemy import event

    from app import create_app
    from core.extensions import db

    app = create_app()
    statements = [0]
    with app.app_context():
        event.listen(db.engine, "before_cursor_execute", lambda *a: statements.__setitem__(0, statements[0] + 1))
    paths = endpoints()
    if args.profile:
        client, headers = sign_in(app, args.user)
        path = paths[args.profile]
        for _ in range(3):
            assert client.get(path, headers=headers).status_code == 200
        profiler = cProfile.Profile()
        profiler.enable()
        for _ in range(args.repeat):
            client.get(path, headers=headers)
        profiler.disable()
        stats = pstats.Stats(profiler).sort_stats("cumulative")
        stats.print_stats(45)
        stats.sort_stats("tottime").print_stats(25)
        return 0
    names = args.only.split(",") if args.only else list(paths)
    print(f"database: {os.environ['DATABASE_URL'].split('@')[-1]}; {args.repeat} timed requests each")
    print(f"{'endpoint':<22}{'user':<14}{'wall p50':>9}{'cpu p50':>8}{'cpu min':>8}{'sql':>5}")
    cpu_all = []
    for username in args.users.split(",") if args.users else USERS:
        client, headers = sign_in(app, username)
        for name in names:
            path = paths[name]
            response = client.get(path, headers=headers)
            if response.status_code in (403, 302):  # not this user's screen
                continue
            assert response.status_code == 200, (name, username, response.status_code)
            client.get(path, headers=headers)
            walls, cpus = [], []
            statements[0] = 0
            for _ in range(args.repeat):
                w, c = time.perf_counter(), time.process_time()
                client.get(path, headers=headers)
                cpus.append(time.process_time() - c)
                walls.append(time.perf_counter() - w)
            cpu = statistics.median(cpus) * 1000
            if name in ("visit list", "institution list", "practitioner list"):
                cpu_all.append(cpu)
            print(f"{name:<22}{username:<14}{statistics.median(walls) * 1000:>9.1f}{cpu:>8.1f}{min(cpus) * 1000:>8.1f}"
                  f"{statements[0] / args.repeat:>5.0f}")  # fmt: skip
    if cpu_all:
        mean = statistics.mean(cpu_all)
        print(f"\nload.py's list pages: mean {mean:.1f} CPU ms in this process -> at most "
              f"{2 * 1000 / mean:.0f} requests/s on 2 cores, before the database's own CPU")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
