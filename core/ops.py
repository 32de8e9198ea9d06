"""Operations (issue 20): health and readiness for a load balancer, Prometheus metrics, one
request id in every log line, and JSON log lines when LOG_FORMAT=json.

- ``/healthz``: the process is up (touches nothing: no database, no Redis).
- ``/readyz``: ``SELECT 1`` on the database, and when REDIS_URL is set a Redis PING, and the
  job queue's length read from its storage; 200 with the checks, or 503 with a JSON body naming
  each check that failed and why. Both are unauthenticated, exempt from the rate limit and
  from login; the security headers (Flask-Talisman) are on their answers like on any other.
- ``/metrics`` (prometheus-flask-exporter): request counts and latencies per endpoint
  (flask_http_request_duration_seconds_count / _sum / _bucket by endpoint, method and status;
  flask_http_request_total by method and status), the job queue's length
  (backoffice_job_queue_length, read at each scrape) and failed logins
  (backoffice_failed_logins_total, counted where core/security/manager.py records them).
  Readable from loopback, or from anywhere with ``Authorization: Bearer $METRICS_TOKEN``;
  anyone else gets 404. Under gunicorn with several workers set PROMETHEUS_MULTIPROC_DIR
  to an empty folder (emptied at each start): every worker writes its figures there and a
  scrape of any worker sums them (GunicornInternalPrometheusMetrics; gunicorn.conf.py marks
  a dead worker's files).
- Request id: the caller's X-Request-ID (when it is a sane token), else a fresh one; echoed in
  the response's X-Request-ID and put on every log record (``request_id``; "-" outside a request).
"""

from __future__ import annotations

import hmac
import logging
import os
import re
import time
import uuid

from flask import Flask, g, has_request_context, jsonify, request

#: The request id's header, in and out.
REQUEST_ID_HEADER = "X-Request-ID"
#: A caller's request id is kept only if it looks like one (no spaces, quotes or CR/LF).
_SANE_ID = re.compile(r"[A-Za-z0-9._:@-]{1,128}")
#: Paths that neither count as traffic nor need a user (health checks and the scrape itself).
OPS_PATHS = ("/healthz", "/readyz", "/metrics")
TEXT_FORMAT = "%(asctime)s %(levelname)s [%(request_id)s] %(name)s: %(message)s"
JSON_FIELDS = "%(asctime)s %(levelname)s %(name)s %(request_id)s %(message)s"

log = logging.getLogger("backoffice.request")


def request_id() -> str:
    """The current request's id ("-" outside a request)."""
    if not has_request_context():
        return "-"
    rid = g.get("request_id")
    if rid is None:
        given = request.headers.get(REQUEST_ID_HEADER, "")
        rid = given if _SANE_ID.fullmatch(given) else uuid.uuid4().hex
        g.request_id = rid
    return rid


_factory_installed = False


def _install_record_factory() -> None:
    """Every log record, of every logger and handler (caplog's, gunicorn's), gets request_id."""
    global _factory_installed
    if _factory_installed:
        return
    previous = logging.getLogRecordFactory()

    def factory(*args, **kwargs):
        record = previous(*args, **kwargs)
        try:
            record.request_id = request_id()
        except Exception:  # logging must never fail a request
            record.request_id = "-"
        return record

    logging.setLogRecordFactory(factory)
    _factory_installed = True


def formatter(log_format: str) -> logging.Formatter:
    """The formatter of LOG_FORMAT: "json" (python-json-logger: one JSON object a line) or text."""
    if (log_format or "").strip().lower() == "json":
        from pythonjsonlogger.json import JsonFormatter

        return JsonFormatter(JSON_FIELDS, rename_fields={"asctime": "time", "levelname": "level"})
    return logging.Formatter(TEXT_FORMAT)


def configure_logging(app: Flask) -> None:
    """One stderr handler on the root logger in LOG_FORMAT, at LOG_LEVEL (the last app built wins)."""
    _install_record_factory()
    root = logging.getLogger()
    for handler in [h for h in root.handlers if getattr(h, "_backoffice", False)]:
        root.removeHandler(handler)
    handler = logging.StreamHandler()
    handler._backoffice = True
    handler.setFormatter(formatter(app.config.get("LOG_FORMAT", "text")))
    root.addHandler(handler)
    root.setLevel(app.config.get("LOG_LEVEL", "INFO"))
    if app.config.get("LOG_REQUESTS", True):
        log.setLevel(logging.INFO)  # the request lines, whatever else configures the root


def _metrics_allowed() -> bool:
    token = current_token()
    if token:
        given = request.headers.get("Authorization", "")
        if given.startswith("Bearer ") and hmac.compare_digest(
            given[7:].strip().encode(), token.encode()
        ):
            return True
    from flask import current_app

    loopback = request.remote_addr in ("127.0.0.1", "::1") or (
        request.remote_addr or ""
    ).startswith("127.")
    return bool(current_app.config.get("METRICS_ALLOW_LOOPBACK", True)) and loopback


def current_token() -> str:
    from flask import current_app

    return str(current_app.config.get("METRICS_TOKEN") or "")


def _guarded(view):
    from functools import wraps

    from flask import abort

    @wraps(view)
    def guarded(*args, **kwargs):
        if not _metrics_allowed():
            abort(404)  # as if there were no such page
        _refresh_gauges()
        return view(*args, **kwargs)

    return guarded


def _queue_length() -> int:
    from core.jobs import huey

    return int(huey.pending_count())


def _refresh_gauges() -> None:
    from flask import current_app

    own = current_app.extensions.get("backoffice_metrics")
    if own is None:
        return
    try:
        own["queue"].set(_queue_length())
    except Exception:  # an unreachable queue shows in /readyz; the scrape still answers
        own["queue"].set(-1)


def count_failed_login() -> None:
    """One failed login more (core/security/manager.py calls it where it records the failure)."""
    from flask import current_app, has_app_context

    own = current_app.extensions.get("backoffice_metrics") if has_app_context() else None
    if own is not None:
        own["failed_logins"].inc()


def install_metrics(app: Flask) -> None:
    """prometheus-flask-exporter on this app, its /metrics guarded (see the module)."""
    from prometheus_client import CollectorRegistry, Counter, Gauge

    common = {
        "path": "/metrics", "group_by": "endpoint", "metrics_decorator": _guarded,
        "excluded_paths": ["/static/", "/healthz", "/readyz"], "defaults_prefix": "flask",
    }  # fmt: skip
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_flask_exporter.multiprocess import GunicornInternalPrometheusMetrics

        metrics = GunicornInternalPrometheusMetrics(app, **common)
        own_registry = None  # figures go to the folder's files; the scrape sums them
    else:
        from prometheus_flask_exporter import PrometheusMetrics

        own_registry = CollectorRegistry(auto_describe=True)  # one per app: tests build many
        metrics = PrometheusMetrics(app, registry=own_registry, **common)
    app.extensions["backoffice_metrics"] = {
        "exporter": metrics,
        "failed_logins": Counter(
            "backoffice_failed_logins_total",
            "Failed logins (web form, API, API keys).",
            registry=own_registry,
        ),  # fmt: skip
        "queue": Gauge(
            "backoffice_job_queue_length",
            "Background jobs waiting in the queue.",
            registry=own_registry,
            multiprocess_mode="mostrecent",
        ),  # fmt: skip
    }


def readiness(app: Flask) -> dict[str, str]:
    """Each check's outcome: "ok", or the reason it failed (class and first line of the error)."""
    from sqlalchemy import text

    from core.extensions import db

    checks: dict[str, str] = {}

    def run(name, probe):
        try:
            probe()
            checks[name] = "ok"
        except Exception as exc:  # the reason is the answer
            first = (str(exc).strip().splitlines() or [""])[0][:200]
            checks[name] = f"{type(exc).__name__}: {first}"

    def database():
        with db.engine.connect() as connection:
            connection.execute(text("SELECT 1"))

    run("database", database)
    url = app.config.get("REDIS_URL")
    if url:
        import redis

        run(
            "redis",
            lambda: redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2).ping(),
        )
    run("job_queue", _queue_length)
    return checks


def install_health(app: Flask) -> None:
    """/healthz and /readyz: plain Flask routes (no login), exempt from the rate limit."""

    def healthz():
        return jsonify(status="ok")

    def readyz():
        checks = readiness(app)
        failed = {name: reason for name, reason in checks.items() if reason != "ok"}
        body = {"status": "unavailable" if failed else "ok", "checks": checks}
        if failed:
            body["failed"] = sorted(failed)
        return jsonify(body), 503 if failed else 200

    app.add_url_rule("/healthz", "healthz", healthz)
    app.add_url_rule("/readyz", "readyz", readyz)
    limiter = getattr(getattr(app, "appbuilder", None), "sm", None)
    limiter = getattr(limiter, "limiter", None)
    if limiter is not None:
        for endpoint in ("healthz", "readyz"):
            limiter.exempt(app.view_functions[endpoint])


def install_request_ids(app: Flask) -> None:
    """An id per request (X-Request-ID in, or a fresh one), echoed in the answer, on every log
    record; one log line per request with its method, path, status and time."""

    @app.before_request
    def _start():
        g.request_started = time.perf_counter()
        g.pop("request_id", None)  # tests reuse one app context across requests
        request_id()

    @app.after_request
    def _echo(response):
        response.headers[REQUEST_ID_HEADER] = request_id()
        if app.config.get("LOG_REQUESTS", True) and request.path not in OPS_PATHS:
            took = (time.perf_counter() - g.get("request_started", time.perf_counter())) * 1000
            log.info("%s %s %s %.1fms", request.method, request.path, response.status_code, took)
        return response

    # First, so even a request refused by a later hook (login, CSRF, session) has its id.
    funcs = app.before_request_funcs.setdefault(None, [])
    funcs.insert(0, funcs.pop(funcs.index(_start)))


def settle_heap() -> None:
    """Put what the application built at start-up out of the garbage collector's reach
    (gc.freeze, after one full collection): gunicorn calls it in each worker once the
    application is loaded (gunicorn.conf.py), and the request benches after their set-up.

    The start-up heap (Flask-AppBuilder's views and forms, SQLAlchemy's mappers, the
    catalogs: about a million objects) is never garbage, yet every older-generation
    collection walked it again; a timeline request (1,000 rows of dicts) triggers dozens of
    collections. Measured on PostgreSQL (bench/timeline.py): the timeline page 35.2 -> 26.9
    ms p50, its API 41.7 -> 31.9 ms.
    """
    import gc

    gc.collect()
    gc.freeze()


def install(app: Flask) -> None:
    """Everything above, on one app (create_app calls it after the views are registered)."""
    configure_logging(app)
    install_request_ids(app)
    install_health(app)
    install_metrics(app)
