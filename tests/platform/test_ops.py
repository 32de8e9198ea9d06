"""core/ops.py (issue 20 part 4): health and readiness, metrics readable only from loopback or
with the token, one request id per request in the answer and in the log lines, JSON logs."""

from __future__ import annotations

import json
import logging
import re

from tests.conftest import PASSWORD

OUTSIDE = {"REMOTE_ADDR": "203.0.113.9"}  # an address that is not loopback


def test_healthz_answers_without_login_database_or_session(app):
    """Process up: 200 JSON for an anonymous caller, security headers on, no cookie set."""
    answer = app.test_client().get("/healthz", environ_base=OUTSIDE)
    assert answer.status_code == 200 and answer.json == {"status": "ok"}
    assert "default-src 'self'" in answer.headers["Content-Security-Policy"]
    assert (
        answer.headers["X-Frame-Options"] == "DENY"
        and answer.headers["X-Content-Type-Options"] == "nosniff"
    )


def test_readyz_checks_the_database_and_the_job_queue(app):
    """Ready: every check "ok", 200, without login, from anywhere."""
    answer = app.test_client().get("/readyz", environ_base=OUTSIDE)
    assert answer.status_code == 200, answer.json
    assert answer.json["status"] == "ok" and answer.json["checks"]["database"] == "ok"
    assert answer.json["checks"]["job_queue"] == "ok"
    assert "Content-Security-Policy" in answer.headers


def test_readyz_is_503_naming_the_database_when_its_url_is_broken(tmp_path):
    """A database nobody answers on: 503 with a JSON body naming the failed check and why;
    /healthz of the same process still answers 200 (it touches no database)."""
    from app import create_app

    broken = create_app({
        "TESTING": True, "SQLALCHEMY_DATABASE_URI": "postgresql://nobody:none@127.0.0.1:1/nothing",
        "UPLOAD_FOLDER": str(tmp_path / "up"), "CACHE_TYPE": "SimpleCache",
        "RATELIMIT_STORAGE_URI": f"sqlitefile://{tmp_path / 'rl.db'}", "REDIS_URL": None,
    })  # fmt: skip
    client = broken.test_client()
    answer = client.get("/readyz")
    assert answer.status_code == 503
    assert answer.json["status"] == "unavailable" and answer.json["failed"] == ["database"]
    assert "OperationalError" in answer.json["checks"]["database"]
    assert answer.json["checks"]["job_queue"] == "ok"
    assert client.get("/healthz").status_code == 200


def test_readyz_names_redis_when_it_is_configured_and_unreachable(app, monkeypatch):
    """With REDIS_URL set, a Redis that does not answer fails readiness by name."""
    monkeypatch.setitem(app.config, "REDIS_URL", "redis://127.0.0.1:1/0")
    answer = app.test_client().get("/readyz")
    assert answer.status_code == 503 and "redis" in answer.json["failed"]
    assert answer.json["checks"]["database"] == "ok"


def test_health_endpoints_are_exempt_from_the_rate_limit(app, monkeypatch):
    """Probes every second from a load balancer are never refused with 429."""
    client = app.test_client()
    assert all(client.get("/healthz").status_code == 200 for _ in range(60))
    assert all(client.get("/readyz").status_code == 200 for _ in range(30))


def _scrape(app, **kwargs):
    return app.test_client().get("/metrics", **kwargs)


def test_metrics_from_loopback_count_requests_per_endpoint_and_failed_logins(app):
    """Loopback reads the Prometheus text: requests and latencies per endpoint, the job queue's
    length, and failed logins (counted where the lockout records them)."""
    client = app.test_client()
    before = _sample(_scrape(app).text, "backoffice_failed_logins_total")
    client.get("/login/")
    client.post("/api/v1/security/login", json={"username": "office", "password": "wrong-" + PASSWORD,
                                                "provider": "db"})  # fmt: skip
    text = _scrape(app).text
    assert _sample(text, "backoffice_failed_logins_total") == before + 1
    assert re.search(
        r'flask_http_request_duration_seconds_count\{.*endpoint="\w*AuthDBView\.login".*\} [1-9]',
        text,
    )
    assert re.search(r'flask_http_request_total\{method="GET",status="200"\} [1-9]', text)
    assert re.search(
        r'flask_http_request_duration_seconds_bucket\{.*endpoint="\w*AuthDBView\.login"', text
    )
    assert re.search(r"^backoffice_job_queue_length 0\.0$", text, re.M)
    assert "healthz" not in text  # probes are not traffic


def _sample(text: str, name: str) -> float:
    match = re.search(rf"^{name} (\S+)$", text, re.M)
    return float(match.group(1)) if match else 0.0


def test_metrics_need_loopback_or_the_token_else_404(app, monkeypatch):
    """From another address: 404 without the token, 404 with a wrong one, 200 with
    METRICS_TOKEN; with no token configured, only loopback reads them."""
    assert _scrape(app, environ_base=OUTSIDE).status_code == 404
    monkeypatch.setitem(app.config, "METRICS_TOKEN", "s3cret-metrics-token")
    assert (
        _scrape(app, environ_base=OUTSIDE, headers={"Authorization": "Bearer wrong"}).status_code
        == 404
    )
    allowed = _scrape(
        app, environ_base=OUTSIDE, headers={"Authorization": "Bearer s3cret-metrics-token"}
    )
    assert allowed.status_code == 200 and "flask_http_request_total" in allowed.text
    monkeypatch.setitem(app.config, "METRICS_ALLOW_LOOPBACK", False)  # behind a proxy on this host
    assert _scrape(app).status_code == 404


def test_the_request_id_is_echoed_and_on_every_log_line_of_the_request(app, caplog):
    """A caller's X-Request-ID comes back and marks the request's log lines; without one (or
    with a hostile one) a fresh id is made."""
    client = app.test_client()
    with caplog.at_level(logging.INFO):
        answer = client.get("/healthz", headers={"X-Request-ID": "lb-7f3a-0001"})
        assert answer.headers["X-Request-ID"] == "lb-7f3a-0001"
        client.get("/login/", headers={"X-Request-ID": "lb-7f3a-0002"})
    lines = [
        r for r in caplog.records if r.name == "backoffice.request" and "/login/" in r.getMessage()
    ]
    assert lines and all(r.request_id == "lb-7f3a-0002" for r in lines)
    fresh = client.get("/healthz").headers["X-Request-ID"]
    hostile = client.get("/healthz", headers={"X-Request-ID": 'x" onload=1 <script>' + "a" * 300})
    assert re.fullmatch(r"[0-9a-f]{32}", fresh) and re.fullmatch(
        r"[0-9a-f]{32}", hostile.headers["X-Request-ID"]
    )
    assert fresh != hostile.headers["X-Request-ID"]


def test_log_format_json_writes_one_json_object_a_line_with_the_request_id(app):
    """LOG_FORMAT=json (python-json-logger): time, level, logger, request_id and message."""
    from core.ops import formatter

    seen = []

    class Keep(logging.Handler):
        def emit(self, record):
            seen.append(self.format(record))

    handler = Keep()
    handler.setFormatter(formatter("json"))
    logger = logging.getLogger("backoffice.request")
    logger.addHandler(handler)
    try:
        app.test_client().get("/login/", headers={"X-Request-ID": "json-line-1"})
    finally:
        logger.removeHandler(handler)
    entry = json.loads(next(line for line in seen if "/login/" in line))
    assert entry["request_id"] == "json-line-1" and entry["level"] == "INFO"
    assert entry["name"] == "backoffice.request" and entry["message"].startswith("GET /login/ 200")
    assert "time" in entry
    text = formatter("text").format(logging.makeLogRecord({"msg": "x", "request_id": "r-1"}))
    assert "[r-1]" in text


def test_each_gunicorn_worker_settles_its_start_up_heap():
    """gunicorn.conf.py's post_worker_init hook freezes the heap the application built
    (core/ops.py settle_heap), so older-generation collections no longer walk it."""
    import gc
    import runpy
    from pathlib import Path

    hooks = runpy.run_path(str(Path(__file__).resolve().parents[2] / "gunicorn.conf.py"))
    gc.unfreeze()
    assert gc.get_freeze_count() == 0
    try:
        hooks["post_worker_init"](None)
        assert gc.get_freeze_count() > 10_000
    finally:
        gc.unfreeze()
