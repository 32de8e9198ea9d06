"""Two app hosts, one state (issue 20 part 2): `make test-cluster`, run by `make test`.

scripts/with-postgres.sh and scripts/with-redis.sh give one throwaway PostgreSQL and one
throwaway Redis (TEST_DATABASE_URL, REDIS_URL); this harness migrates and seeds a small world
once (`flask setup --scale 0.03`), then starts two gunicorn hosts (2 workers each, each with
its own INSTANCE_DIR, STORAGE_BACKEND=database) and one huey consumer (`huey_consumer
worker.huey`, its own INSTANCE_DIR too), all configured by environment variables only, as a
deployment would be. Never run by the plain `pytest` (pyproject: norecursedirs); without
PostgreSQL and Redis it FAILS, it never skips.
"""

from __future__ import annotations

import http.cookiejar
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
PASSWORD = "Demo-Pass-2024!"
SCALE, SEED = "0.03", "7"
#: The application form's limit, low enough to reach in a few requests (test_rate_limit...).
APPLY_LIMIT = 4


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def cluster_env(database_url: str, redis_url: str, instance: Path) -> dict:
    """What every host of the deployment is given: the same database, Redis, secret key and
    storage backend; only INSTANCE_DIR differs per host."""
    env = {k: v for k, v in os.environ.items() if k not in {"HUEY_IMMEDIATE", "TEST_DATABASE_URL"}}
    env.update({
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "STORAGE_BACKEND": "database",
        "SECRET_KEY": CLUSTER_SECRET,
        "METRICS_TOKEN": "cluster-metrics-token",
        "INSTANCE_DIR": str(instance),
        "MAIL_FOLDER": str(instance / "mail"),
        "DEMO_PASSWORD": PASSWORD,
        # every test signs in from 127.0.0.1: the login limit must not be what they meet
        "AUTH_RATE_LIMIT": "300 per minute",
        "APPLY_RATE_LIMIT": f"{APPLY_LIMIT} per hour",
        # a facility's visit list (a few hundred rows) becomes a background job
        "EXPORT_ASYNC_THRESHOLD": "5",
        "PYTHONUNBUFFERED": "1",
    })  # fmt: skip
    return env


CLUSTER_SECRET = "cluster-" + secrets.token_hex(16)


class Process:
    """One long-running process of the deployment, its output in a log file."""

    #: The quick shutdown: gunicorn's SIGTERM waits up to 30 s for its workers, SIGINT does
    #: not; the huey consumer stops at once on SIGTERM.
    stop_signal = signal.SIGTERM

    def __init__(self, name: str, args: list[str], env: dict, log: Path):
        self.name, self.log = name, log
        self.handle = subprocess.Popen(args, cwd=ROOT, env=env, stdout=log.open("w"),
                                       stderr=subprocess.STDOUT)  # fmt: skip

    def signal_stop(self) -> None:
        if self.handle.poll() is None:
            self.handle.send_signal(self.stop_signal)

    def stop(self) -> None:
        self.signal_stop()
        try:
            self.handle.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.handle.kill()
            self.handle.wait()

    def errors(self) -> list[str]:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return [line for line in text.splitlines() if "Traceback" in line or "[ERROR]" in line
                and "Worker" not in line]  # fmt: skip


class Host(Process):
    """gunicorn, 2 workers, on a free loopback port."""

    stop_signal = signal.SIGINT

    def __init__(self, name: str, env: dict, folder: Path):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        folder.mkdir(parents=True, exist_ok=True)
        super().__init__(name, [str(BIN / "gunicorn"), "--workers", "2", "--bind", f"127.0.0.1:{self.port}",
                                "--access-logfile", "-", "app:create_app()"],
                         env, folder / "server.log")  # fmt: skip

    def wait_ready(self, deadline: float) -> None:
        while time.monotonic() < deadline:
            if self.handle.poll() is not None:
                raise RuntimeError(f"{self.name} exited:\n{self.log.read_text()[-3000:]}")
            try:
                # a generous timeout: a fresh worker's first page is slow on a loaded machine,
                # and a poll given up on only queues another request behind it
                with urllib.request.urlopen(f"{self.url}/login/", timeout=30) as response:
                    if response.status == 200:
                        return
            except OSError:
                time.sleep(0.5)
        raise RuntimeError(f"{self.name} did not answer in time:\n{self.log.read_text()[-3000:]}")


class Cluster:
    def __init__(self, a: Host, b: Host, worker: Process, database_url: str, redis_url: str):
        self.a, self.b, self.worker = a, b, worker
        self.database_url, self.redis_url = database_url, redis_url
        self.processes = [a, b, worker]

    def errors(self) -> list[str]:
        return [f"{p.name}: {line}" for p in self.processes for line in p.errors()]


def start_cluster(folder: Path, database_url: str, redis_url: str, seed: bool = True) -> Cluster:
    """Seed the small world (once) while hosts A and B and the job consumer boot (creating
    the app runs no SQL, so they need no schema yet); then wait until both hosts answer."""
    started = time.monotonic()
    seeding = None
    if seed:
        seeding = subprocess.Popen(
            [str(BIN / "flask"), "--app", "app", "setup", "--scale", SCALE, "--seed", SEED],
            cwd=ROOT, env=cluster_env(database_url, redis_url, folder / "setup"),
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
    a = Host("host A", cluster_env(database_url, redis_url, folder / "a"), folder / "a")
    b = Host("host B", cluster_env(database_url, redis_url, folder / "b"), folder / "b")
    (folder / "worker").mkdir(parents=True, exist_ok=True)
    worker = Process("huey consumer", [str(BIN / "huey_consumer"), "worker.huey", "--workers", "1"],
                     cluster_env(database_url, redis_url, folder / "worker"), folder / "worker" / "worker.log")  # fmt: skip
    cluster = Cluster(a, b, worker, database_url, redis_url)
    try:
        if seeding is not None:
            _, errors = seeding.communicate(timeout=600)
            if seeding.returncode != 0:
                raise RuntimeError(f"flask setup failed:\n{errors[-3000:]}")
        seeded = time.monotonic()
        deadline = seeded + 180
        with ThreadPoolExecutor(2) as pool:
            list(pool.map(lambda host: host.wait_ready(deadline), (a, b)))
        if worker.handle.poll() is not None:
            raise RuntimeError(f"the huey consumer exited:\n{worker.log.read_text()[-3000:]}")
        print(f"\ncluster: seeded in {seeded - started:.0f} s (hosts booting meanwhile), "
              f"both hosts answering {time.monotonic() - seeded:.0f} s later", file=sys.stderr)  # fmt: skip
    except BaseException:
        if seeding is not None and seeding.poll() is None:
            seeding.kill()
        stop_cluster(cluster)
        raise
    return cluster


def stop_cluster(cluster: Cluster) -> None:
    for process in cluster.processes:  # all at once, then wait for each
        process.signal_stop()
    for process in cluster.processes:
        process.stop()


_failed_start: list[str] = []


@pytest.fixture(scope="session")
def cluster(tmp_path_factory):
    database_url, redis_url = os.environ.get("TEST_DATABASE_URL"), os.environ.get("REDIS_URL")
    if not (database_url and database_url.startswith("postgresql") and redis_url):
        pytest.fail("the two-host test needs PostgreSQL and Redis: run `make test-cluster` "
                    "(scripts/with-postgres.sh scripts/with-redis.sh pytest tests/cluster)")  # fmt: skip
    if _failed_start:  # pytest retries a failed session fixture for every test: start once
        pytest.fail(f"the cluster did not start: {_failed_start[0][:300]}")
    try:
        started = start_cluster(tmp_path_factory.mktemp("cluster"), database_url, redis_url)
    except Exception as exc:
        _failed_start.append(str(exc))
        raise
    yield started
    stop_cluster(started)


@pytest.fixture(autouse=True)
def _no_errors_logged(request):
    """No host and no worker logged a traceback during the test (a 500 the test missed)."""
    if "cluster" not in request.fixturenames:
        yield
        return
    cluster = request.getfixturevalue("cluster")
    before = set(cluster.errors())
    yield
    new = [line for line in cluster.errors() if line not in before]
    assert not new, "\n".join(new)


@pytest.fixture(scope="session")
def world(cluster):
    """An app in this process on the cluster's database and Redis, to look rows up."""
    os.environ.pop("HUEY_IMMEDIATE", None)
    from app import create_app

    app = create_app({
        "SQLALCHEMY_DATABASE_URI": cluster.database_url, "CACHE_TYPE": "RedisCache",
        "CACHE_REDIS_URL": cluster.redis_url, "RATELIMIT_STORAGE_URI": cluster.redis_url,
        "UPLOAD_FOLDER": str(Path(cluster.a.log).parent.parent / "tests-uploads"),
        "SECRET_KEY": CLUSTER_SECRET,
    })  # fmt: skip
    return app


# ------------------------------------------------------------------ an HTTP client
class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


class Response:
    def __init__(self, status: int, headers, body: bytes):
        self.status, self.headers, self.body = status, headers, body

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")

    @property
    def location(self) -> str:
        return self.headers.get("Location", "")

    def json(self):
        import json

        return json.loads(self.body)


class Browser:
    """One person's browser behind a load balancer: one cookie jar for every host (cookies
    are per host name, 127.0.0.1, not per port), no redirects followed."""

    def __init__(self):
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(self.jar), _NoRedirect
        )
        self.token: str | None = None

    def request(self, url: str, data: bytes | None = None, headers: dict | None = None,
                method: str | None = None) -> Response:  # fmt: skip
        headers = dict(headers or {})
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        req = urllib.request.Request(url, data=data, headers=headers, method=method)
        try:
            with self.opener.open(req, timeout=60) as response:
                return Response(response.status, response.headers, response.read())
        except urllib.error.HTTPError as error:
            return Response(error.code, error.headers, error.read())

    def get(self, host, path: str) -> Response:
        return self.request(host.url + path)

    def csrf(self, host, path: str) -> str:
        page = self.get(host, path)
        assert page.status == 200, (path, page.status)
        return re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page.text).group(1)

    def post(
        self, host, path: str, form: dict, files: dict | None = None, form_page: str | None = None
    ) -> Response:
        form = {**form, "csrf_token": self.csrf(host, form_page or path)}
        if not files:
            body = urllib.parse.urlencode(form).encode()
            return self.request(
                host.url + path, body, {"Content-Type": "application/x-www-form-urlencoded"}
            )
        boundary = "----cluster" + secrets.token_hex(8)
        parts = []
        for name, value in form.items():
            parts.append(
                f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
            )
        for name, (filename, content, mime) in files.items():
            parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="{filename}"\r\n'
                         f"Content-Type: {mime}\r\n\r\n".encode() + content + b"\r\n")  # fmt: skip
        parts.append(f"--{boundary}--\r\n".encode())
        return self.request(host.url + path, b"".join(parts),
                            {"Content-Type": f"multipart/form-data; boundary={boundary}"})  # fmt: skip

    def login(self, host, username: str, password: str = PASSWORD) -> Response:
        return self.post(host, "/login/", {"username": username, "password": password})

    def api_login(self, host, username: str) -> str:
        import json

        response = self.request(f"{host.url}/api/v1/security/login",
                                json.dumps({"username": username, "password": PASSWORD, "provider": "db"}).encode(),
                                {"Content-Type": "application/json"})  # fmt: skip
        assert response.status == 200, response.text
        return response.json()["access_token"]


def signed_in(location: str) -> bool:
    return bool(location) and "/login" not in location
