"""Load on gunicorn: 2 workers on 127.0.0.1 over the full demo dataset, a bounded mixed
workload as several roles, figures per endpoint.

    .venv/bin/python bench/load.py                       # scratch SQLite, full demo (~1 min to seed)
    .venv/bin/python bench/load.py --database-url postgresql://...   # an existing or empty DB
    .venv/bin/python bench/load.py --reuse /tmp/load-db  # keep/reuse a seeded scratch folder
    scripts/with-postgres.sh scripts/with-redis.sh .venv/bin/python bench/load.py --two-hosts
        # one host, then two hosts (2 workers each, own instance folders) on one PostgreSQL
        # ($TEST_DATABASE_URL or --database-url) and one Redis ($REDIS_URL), same workload

Workload (threads, each a signed-in person with its own session, for --seconds, at most 60):
list pages (visits, institutions, practitioners), show pages, visit entry by the two
facilities (new quitters, so the 5-day rule never refuses; concurrent writers on SQLite are
what WAL and the busy timeout are for), the monthly self-check and the fee-deduction list
(the statistics of this branch), and API lists with JWTs. Only 127.0.0.1 is ever contacted.

Prints requests/s, p50/p99 per endpoint, the error count, and any `database is locked` in the
server log. Targets (issue 7): list pages >= 120 requests/s, p99 <= 150 ms, 0 errors.
The server and this client share the machine's cores: say so with the figures.

--two-hosts (issue 20): the same workload against one gunicorn host, then against two (the
client threads alternate between them, each person's session used on its host), both on
PostgreSQL and Redis with STORAGE_BACKEND=database, as `README: Running on several hosts`
sets them up; prints both reports and one line comparing them.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import random
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections import defaultdict
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
PASSWORD = os.environ.get("DEMO_PASSWORD", "Demo-Pass-2024!")
LIST_PAGES = {"visit list", "institution list", "practitioner list"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def roc(day: dt.date) -> str:
    from core.dates import to_roc

    return to_roc(day)


def national_id(rng: random.Random) -> str:
    from core.validators import personal_id_check_digit

    prefix = rng.choice("ABCDEFGHJKLMNPQRSTUVXYWZ") + rng.choice("12")
    prefix += "".join(rng.choice("0123456789") for _ in range(7))
    return prefix + personal_id_check_digit(prefix)


class Server:
    def __init__(self, env: dict, port: int, log: Path, workers: int = 2, threads: int = 1):
        self.env, self.port, self.log = env, port, log
        self.workers, self.threads = workers, threads
        self.url = f"http://127.0.0.1:{port}"
        self.process = None

    def flask(self, *args):
        subprocess.run([sys.executable, "-m", "flask", "--app", "app", *args], cwd=ROOT, env=self.env,
                       check=True, stdout=subprocess.DEVNULL)  # fmt: skip

    def start(self):
        gunicorn = Path(sys.executable).with_name("gunicorn")
        self.process = subprocess.Popen(
            [str(gunicorn), "--workers", str(self.workers), "--threads", str(self.threads),
             "--bind", f"127.0.0.1:{self.port}", "app:create_app()"],
            cwd=ROOT, env=self.env, stdout=self.log.open("w"), stderr=subprocess.STDOUT,
        )  # fmt: skip
        for _ in range(200):
            try:
                with urllib.request.urlopen(f"{self.url}/login/", timeout=2):
                    return
            except OSError:
                time.sleep(0.3)
        raise SystemExit("gunicorn did not start:\n" + self.log.read_text()[-2000:])

    def stop(self):
        if self.process and self.process.poll() is None:
            # gunicorn's quick shutdown (SIGTERM waits up to 30 s for busy workers)
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def tree_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process and its children (Linux /proc; 0 elsewhere)."""
    tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    total = 0.0
    pids = [pid]
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        pids += [int(c) for c in children]
        for one in pids:
            fields = Path(f"/proc/{one}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick  # utime, stime
    except OSError:
        return 0.0
    return total


class Stats:
    def __init__(self):
        self.lock = threading.Lock()
        self.times: dict[str, list[float]] = defaultdict(list)
        self.errors: dict[str, int] = defaultdict(int)
        self.samples: list[str] = []

    def record(self, name: str, seconds: float, ok: bool, detail: str = ""):
        with self.lock:
            self.times[name].append(seconds)
            if not ok:
                self.errors[name] += 1
                if len(self.samples) < 10:
                    self.samples.append(f"{name}: {detail}")


def login(session: requests.Session, base: str, username: str) -> None:
    page = session.get(f"{base}/login/", timeout=30).text
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page).group(1)
    response = session.post(f"{base}/login/", data={"username": username, "password": PASSWORD,
                            "csrf_token": token}, allow_redirects=False, timeout=30)  # fmt: skip
    if response.status_code != 302 or "/login" in response.headers.get("Location", ""):
        raise SystemExit(f"login failed for {username}")


def worker(base, username, stop_at, stats, ids, rng, writer: bool, lists_only: bool = False):
    session = requests.Session()
    login(session, base, username)
    api = requests.Session()
    token = api.post(f"{base}/api/v1/security/login", json={"username": username, "password": PASSWORD,
                     "provider": "db"}, timeout=30).json()["access_token"]  # fmt: skip
    api.headers["Authorization"] = f"Bearer {token}"
    from core.dates import roc_month

    today = dt.date.today()
    month = roc_month(today.year, today.month)
    mix = [
        ("visit list", lambda: session.get(f"{base}/visitview/list/")),
        ("institution list", lambda: session.get(f"{base}/institutionview/list/")),
        ("practitioner list", lambda: session.get(f"{base}/practitionerview/list/")),
        ("visit show", lambda: session.get(f"{base}/visitview/show/{rng.choice(ids['visit'][username])}")),
        ("institution show", lambda: session.get(f"{base}/institutionview/show/{rng.choice(ids['institution'][username])}")),
        ("self-check", lambda: session.get(f"{base}/selfcheck/?month={month}")),
        ("fee deduction", lambda: session.get(f"{base}/feededuction/")),
        ("api visit list", lambda: api.get(f"{base}/api/v1/visit/")),
        ("api institution list", lambda: api.get(f"{base}/api/v1/institution/")),
    ]  # fmt: skip
    if lists_only:
        mix = [entry for entry in mix if entry[0] in LIST_PAGES]
    elif writer:
        mix += [("visit entry", lambda: enter_visit(session, base, ids, username, rng))] * 3
    while time.monotonic() < stop_at:
        name, call = rng.choice(mix)
        started = time.perf_counter()
        try:
            response = call()
            ok = response.status_code < 400 and "database is locked" not in response.text
            detail = f"{response.status_code} {getattr(response, 'refusal', '')}".strip()
        except requests.RequestException as exc:
            ok, detail = False, repr(exc)
        stats.record(name, time.perf_counter() - started, ok, detail)


def enter_visit(session, base, ids, username, rng):
    """The visit form as a person submits it: a new quitter each time (C4 never refuses)."""
    page = session.get(f"{base}/visitview/add")
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page.text).group(1)
    institution, practitioner = ids["entry"][username]
    day = dt.date.today() - dt.timedelta(days=rng.randrange(0, 3))
    response = session.post(f"{base}/visitview/add", data={
        "csrf_token": token, "institution": institution, "practitioner": practitioner,
        "quitter_national_id": national_id(rng), "quitter_name": LOAD_QUITTER_NAME, "quitter_sex": "M",
        "quitter_birth_date": "70/01/01", "visit_date": roc(day), "medication_name": "Nicotine patch",
        "medication_days": "14",
    }, allow_redirects=False)  # fmt: skip
    if response.status_code != 302:  # the form came back: a refusal, which is an error here
        response.status_code = 422
        found = re.findall(r'class="(?:help-block|alert[^"]*)"[^>]*>([^<]{3,200})', response.text)
        response.refusal = " | ".join(text.strip() for text in found[:3])
    return response


LOAD_QUITTER_NAME = "負載測試"


def forget_earlier_runs(env) -> int:
    """Delete the visits and quitters earlier runs entered, so that every run measures the
    same data (otherwise this month's self-check grows by a few hundred rows per run)."""
    os.environ.update(env)
    from sqlalchemy import delete, select

    from app import create_app
    from core.extensions import db
    from models.cessation.visit import Quitter, Visit
    from models.registry.person import PersonLink

    app = create_app()
    with app.app_context():
        quitters = select(Quitter.id).where(Quitter.name == LOAD_QUITTER_NAME)
        removed = db.session.execute(delete(Visit).where(Visit.quitter_id.in_(quitters))).rowcount
        db.session.execute(delete(PersonLink).where(
            PersonLink.person_kind == "quitter", PersonLink.person_id.in_(quitters)))  # fmt: skip
        db.session.execute(delete(Quitter).where(Quitter.name == LOAD_QUITTER_NAME))
        db.session.commit()
    return removed


def collect_ids(env) -> dict:
    """Rows each user may open, read once through the app's own scoping."""
    os.environ.update(env)
    from sqlalchemy import select

    from app import create_app
    from core.extensions import db
    from models.cessation.visit import Visit
    from models.platform.user import ScopedUser
    from models.registry.institution import Institution
    from models.registry.practitioner import ServiceAssignment

    app = create_app()
    ids = {"visit": {}, "institution": {}, "entry": {}}
    with app.app_context():
        for username in USERS:
            user = db.session.scalar(select(ScopedUser).where(ScopedUser.username == username))
            insts = (
                [i.id for i in user.scope_institutions] if user.scope_kind == "facility" else None
            )
            if user.scope_kind == "county":
                insts = list(
                    db.session.scalars(
                        select(Institution.id).where(Institution.county_id == user.scope_county_id)
                    )
                )
            q_inst = (
                select(Institution.id).limit(500)
                if insts is None
                else select(Institution.id).where(Institution.id.in_(insts)).limit(500)
            )
            q_visit = select(Visit.id).order_by(Visit.id.desc()).limit(500)
            if insts is not None:
                q_visit = q_visit.where(Visit.institution_id.in_(insts))
            ids["institution"][username] = list(db.session.scalars(q_inst))
            ids["visit"][username] = list(db.session.scalars(q_visit))
            if user.scope_kind == "facility":
                assignment = db.session.scalars(select(ServiceAssignment).where(
                    ServiceAssignment.institution_id == insts[0], ServiceAssignment.end_date.is_(None))).first()  # fmt: skip
                ids["entry"][username] = (insts[0], assignment.practitioner_id)
    return ids


USERS = ["office", "bureau_tpe", "bureau_khh", "facility_tpe", "facility_khh"]


def report(stats: Stats, seconds: float, log: Path) -> int:
    total = sum(len(v) for v in stats.times.values())
    errors = sum(stats.errors.values())
    print(f"\n{'endpoint':<22}{'requests':>9}{'req/s':>8}{'p50 ms':>9}{'p99 ms':>9}{'errors':>8}")
    for name in sorted(stats.times):
        times = sorted(stats.times[name])
        p50 = statistics.median(times) * 1000
        p99 = times[min(len(times) - 1, int(len(times) * 0.99))] * 1000
        print(
            f"{name:<22}{len(times):>9}{len(times) / seconds:>8.1f}{p50:>9.1f}{p99:>9.1f}{stats.errors[name]:>8}"
        )
    lists = sorted(t for n in LIST_PAGES for t in stats.times.get(n, []))
    locked = log.read_text(errors="replace").count("database is locked") if log.exists() else 0
    print(
        f"\nall: {total} requests in {seconds:.1f} s = {total / seconds:.1f} req/s, {errors} errors"
    )
    if lists:
        print(f"list pages: {len(lists) / seconds:.1f} req/s, p50 {statistics.median(lists) * 1000:.1f} ms, "
              f"p99 {lists[int(len(lists) * 0.99)] * 1000:.1f} ms")  # fmt: skip
    print(f"'database is locked' in the server log: {locked}")
    for sample in stats.samples:
        print("  error:", sample)
    return 1 if errors or locked else 0


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--database-url", help="PostgreSQL (or SQLite) URL; default: a scratch SQLite file"
    )
    parser.add_argument(
        "--reuse", help="a folder for the scratch database, kept and reused if seeded"
    )
    parser.add_argument("--seconds", type=float, default=45)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--scale", type=float, default=1.0, help="demo scale (1.0 = the full demo)")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers (make run: 2)")
    parser.add_argument("--gunicorn-threads", type=int, default=1,
                        help="threads per worker (> 1: gunicorn's gthread worker)")  # fmt: skip
    parser.add_argument("--lists-only", action="store_true",
                        help="only the three list pages, no other endpoint and no visit entry")  # fmt: skip
    parser.add_argument("--two-hosts", action="store_true",
                        help="one host, then two hosts, on PostgreSQL ($TEST_DATABASE_URL) and Redis ($REDIS_URL)")  # fmt: skip
    args = parser.parse_args()
    seconds = min(args.seconds, 60.0)
    folder = Path(args.reuse or tempfile.mkdtemp(prefix="load-"))
    folder.mkdir(parents=True, exist_ok=True)
    url = args.database_url or (os.environ.get("TEST_DATABASE_URL") if args.two_hosts else None)
    url = url or f"sqlite:///{folder / 'app.db'}"
    env = {**os.environ, "INSTANCE_DIR": str(folder), "DATABASE_URL": url, "MAIL_FOLDER": str(folder / "mail"),
           "AUTH_RATE_LIMIT": "1000 per minute"}  # fmt: skip
    env.pop("HUEY_IMMEDIATE", None)
    if args.two_hosts:
        if not url.startswith("postgresql") or not os.environ.get("REDIS_URL"):
            raise SystemExit("--two-hosts needs PostgreSQL and Redis: run it under "
                             "scripts/with-postgres.sh scripts/with-redis.sh")  # fmt: skip
        env.update({"STORAGE_BACKEND": "database", "SECRET_KEY": "load-" + os.urandom(16).hex()})
    server = Server(env, free_port(), folder / "server.log", args.workers, args.gunicorn_threads)
    marker = folder / f"seeded-{re.sub(r'[^a-z0-9]+', '_', url.lower())[-60:]}"
    if not marker.exists():
        print(
            f"building the demo dataset (scale {args.scale}) in {url.split('@')[-1]} ...",
            flush=True,
        )
        started = time.monotonic()
        server.flask("init")
        server.flask("seed", "reference")
        server.flask("seed", "demo", "--scale", str(args.scale))
        marker.touch()
        print(f"  seeded in {time.monotonic() - started:.0f} s")
    if not args.two_hosts:
        return run_load([server], env, args, seconds)[0]
    one_code, one = run_load([server], env, args, seconds, "one host")
    hosts = []
    for name in ("a", "b"):
        (folder / f"host-{name}").mkdir(exist_ok=True)
        host_env = {**env, "INSTANCE_DIR": str(folder / f"host-{name}")}
        hosts.append(Server(host_env, free_port(), folder / f"host-{name}" / "server.log",
                            args.workers, args.gunicorn_threads))  # fmt: skip
    two_code, two = run_load(hosts, env, args, seconds, "two hosts")
    print(f"\n{'':<12}{'list pages/s':>14}{'mixed req/s':>13}{'errors':>8}")
    for label, figures in (("one host", one), ("two hosts", two)):
        print(f"{label:<12}{figures['lists']:>14.1f}{figures['all']:>13.1f}{figures['errors']:>8}")
    print(f"both on this one machine's {os.cpu_count()} cores (client, hosts, PostgreSQL, Redis); "
          "other work on the machine is not accounted for")  # fmt: skip
    return one_code or two_code


def run_load(servers: list[Server], env: dict, args, seconds: float, label: str = ""):
    """The workload against `servers` (client threads alternate between them): the exit code
    and the figures (list pages/s, all requests/s, errors)."""
    forgotten = forget_earlier_runs(env)
    if forgotten:
        print(f"removed {forgotten:,} visits an earlier run entered (each run starts from the seeded data)")  # fmt: skip
    ids = collect_ids(env)
    for server in servers:
        server.start()
    try:
        where = ", ".join(f"127.0.0.1:{server.port}" for server in servers)
        print(f"{label + ': ' if label else ''}{len(servers)} x gunicorn, {args.workers} workers x "
              f"{args.gunicorn_threads} threads, {where}; "
              f"{'list pages only; ' if args.lists_only else ''}{args.threads} client threads for {seconds:.0f} s "
              f"as {', '.join(USERS)}; server and client share {os.cpu_count()} cores", flush=True)  # fmt: skip
        stats = Stats()
        stop_at = time.monotonic() + seconds
        threads = []
        for index in range(args.threads):
            username = USERS[index % len(USERS)]
            base = servers[index % len(servers)].url
            thread = threading.Thread(
                target=worker,
                args=(base, username, stop_at, stats, ids, random.Random(f"{index}-{time.time_ns()}"), username.startswith("facility"),
                      args.lists_only),
            )  # fmt: skip
            thread.start()
            threads.append(thread)
        started = time.monotonic()
        server_cpu = sum(tree_cpu_seconds(server.process.pid) for server in servers)
        client_cpu = time.process_time()
        for thread in threads:
            thread.join()
        elapsed = time.monotonic() - started
        server_cpu = sum(tree_cpu_seconds(server.process.pid) for server in servers) - server_cpu
        client_cpu = time.process_time() - client_cpu
        code = 0
        for server in servers[:-1]:  # every host's log checked; the figures once
            code |= _locked(server.log)
        code |= report(stats, elapsed, servers[-1].log)
        total = sum(len(v) for v in stats.times.values()) or 1
        print(f"CPU: gunicorn {server_cpu:.1f} s = {server_cpu * 1000 / total:.1f} ms/request, "
              f"this client {client_cpu:.1f} s = {client_cpu * 1000 / total:.1f} ms/request, over "
              f"{elapsed:.0f} s x {os.cpu_count()} cores = {elapsed * os.cpu_count():.0f} CPU s available "
              f"(database server CPU not included)")  # fmt: skip
        lists = sum(len(stats.times.get(n, [])) for n in LIST_PAGES)
        figures = {"lists": lists / elapsed, "all": total / elapsed, "errors": sum(stats.errors.values())}
        return code, figures
    finally:
        for server in servers:
            server.stop()


def _locked(log: Path) -> int:
    """1 when a host's log says `database is locked` (printed), else 0."""
    locked = log.read_text(errors="replace").count("database is locked") if log.exists() else 0
    if locked:
        print(f"'database is locked' in {log}: {locked}")
    return 1 if locked else 0


if __name__ == "__main__":
    sys.exit(main())
