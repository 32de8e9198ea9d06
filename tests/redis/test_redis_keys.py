"""Shared state on Redis (issue 20 part 1): with REDIS_URL set, every piece of state that
several hosts must share is really in Redis, read back with redis-py, not in a file cache
of this host: the cache (list counts, table, security and statistics version tokens,
permission sets, revoked API tokens), the rate-limit counters and the job queue.

Lockout counters and server-side sessions live in the database (LoginThrottle, UserSession),
which every host shares already; tests/cluster proves both across two hosts.

Run by `make test-redis` (scripts/with-redis.sh starts a throwaway redis-server), on the
PostgreSQL half of `make test`; never by the plain `pytest` (pyproject: norecursedirs).
Without REDIS_URL these tests FAIL: they never skip.
"""

from __future__ import annotations

import datetime as dt
import os

import pytest
import redis
from sqlalchemy import select

from tests.conftest import PASSWORD, post_form

REDIS_URL = os.environ.get("REDIS_URL")


@pytest.fixture(scope="module")
def r():
    if not REDIS_URL:
        pytest.fail("REDIS_URL is not set: run `make test-redis` (scripts/with-redis.sh)")
    client = redis.Redis.from_url(REDIS_URL)
    client.ping()
    return client


def _keys(r, pattern: str) -> list[str]:
    return sorted(key.decode() for key in r.scan_iter(match=pattern, count=1000))


def test_redis_url_puts_the_cache_rate_limits_and_jobs_on_redis(app, r):
    """No piece falls back to a file cache, a SQLite file or memory when REDIS_URL is set."""
    from cachelib.redis import RedisCache

    from core import jobs
    from core.extensions import cache

    with app.app_context():  # the cache of this app (other tests build apps of their own)
        assert isinstance(cache.cache, RedisCache)
    assert app.config["RATELIMIT_STORAGE_URI"] == REDIS_URL
    limiter = app.appbuilder.sm.limiter
    assert type(limiter.storage).__name__ == "RedisStorage", type(limiter.storage)
    assert type(jobs.huey).__name__ == "RedisHuey"
    assert type(jobs.huey.storage).__name__ == "RedisStorage"
    # The production config too, not only the tests' app: the same three settings.
    import config

    assert config.Config.REDIS_URL == REDIS_URL
    assert config.Config.CACHE_TYPE == "RedisCache"
    assert config.Config.RATELIMIT_STORAGE_URI == REDIS_URL


def test_list_counts_and_table_versions_are_in_redis(app, login_as, r):
    """core/data/counts.py: the count of a list page and the version token of its table."""
    client = login_as("facility_tpe")
    assert client.get("/visitview/list/").status_code == 200
    assert _keys(r, "flask_cache_table-version:visit")
    assert _keys(r, "flask_cache_count:*")
    before = r.get("flask_cache_table-version:visit")
    from tests.factories import _form, _new_id, _setup

    with app.app_context():
        from core.extensions import db

        institution_id, practitioner_id = _setup(db, "facility_tpe")
    day = (dt.date.today() - dt.timedelta(days=1)).strftime("%Y/%m/%d")
    roc = f"{int(day[:4]) - 1911}{day[4:]}"
    response = post_form(app, client, "/visitview/add",
                         _form(institution_id, practitioner_id, _new_id("R"), roc))  # fmt: skip
    assert response.status_code == 302, response.text[-800:]
    # the visit's commit gave the table a fresh token in Redis: every host's next count misses
    assert r.get("flask_cache_table-version:visit") != before


def test_permission_sets_and_the_security_version_are_in_redis(app, login_as, r):
    """core/security/manager.py: the security version token and the cached permission sets."""
    assert login_as("bureau_tpe").get("/visitview/list/").status_code == 200
    assert _keys(r, "flask_cache_security:version")
    token = int(r.get("flask_cache_security:version"))
    # permission sets, scopes and the navbar are cached under `<kind>:<security token>:...`
    assert _keys(r, f"flask_cache_*:{token}:*"), "no permission set cached in Redis"
    from core.security.manager import bump_security_version

    before = r.get("flask_cache_security:version")
    with app.app_context():
        bump_security_version()
    assert r.get("flask_cache_security:version") != before


def test_statistics_tokens_and_figures_are_in_redis(app, api_as, r):
    """domain/cessation/statistics.py: the version tokens (global, per year) and the figures."""
    client, headers = api_as("bureau_tpe")
    year = dt.date.today().year
    assert client.get(f"/api/v1/reports/cessation?year={year}", headers=headers).status_code == 200
    assert _keys(r, "flask_cache_cessation-stats:version")
    assert _keys(r, f"flask_cache_cessation-stats:version:{year}")
    figures = [k for k in _keys(r, "flask_cache_cessation-stats:*") if "version" not in k]
    assert figures, "the figures themselves are not cached in Redis"


def test_revoked_api_tokens_are_marked_in_redis(app, r):
    """core/security/manager.py revoke_api_tokens: a logout voids the account's JWTs on
    every host, through a mark in Redis."""
    from models.platform.user import ScopedUser

    client = app.test_client()
    login = client.post("/api/v1/security/login",
                        json={"username": "helpdesk", "password": PASSWORD, "provider": "db"})  # fmt: skip
    assert login.status_code == 200
    token = login.json["access_token"]
    with app.app_context():
        from core.extensions import db
        from core.security.manager import revoke_api_tokens

        user_id = db.session.scalar(select(ScopedUser.id).where(ScopedUser.username == "helpdesk"))
        revoke_api_tokens(user_id)
    assert r.get(f"flask_cache_jwt-valid-after:{user_id}") is not None
    refused = client.get("/api/v1/visit/", headers={"Authorization": f"Bearer {token}"})
    assert refused.status_code == 401


def test_rate_limit_counters_are_in_redis(app, r):
    """Flask-Limiter's counters (the login form, the API login, the application form)."""
    client = app.test_client()
    client.post(
        "/api/v1/security/login", json={"username": "nobody", "password": "x", "provider": "db"}
    )
    assert _keys(r, "LIMITS:*"), _keys(r, "*")[:20]


def test_background_jobs_are_queued_in_redis(app, db, login_as, r):
    """core/jobs.py: an export job goes through huey's queue in Redis; a consumer (here this
    process, standing for `huey_consumer worker.huey`) takes it from there."""
    from core import jobs
    from models.platform.export_job import ExportJob

    huey = jobs.huey
    huey.immediate = False  # queue for real: the task waits in Redis for a consumer
    app.config["EXPORT_ASYNC_THRESHOLD"] = 10
    try:
        queue = huey.storage.queue_key
        pool = huey.storage.conn.connection_pool.connection_kwargs
        assert f"{pool['host']}:{pool['port']}" in REDIS_URL
        huey.flush()
        response = login_as("bureau_tpe").get("/visitview/export/xlsx")
        assert response.status_code == 302 and "/exports/" in response.headers["Location"]
        job_id = response.headers["Location"].rstrip("/").split("/")[-1]
        assert r.llen(queue) == 1
        db.session.expire_all()
        assert db.session.get(ExportJob, job_id).status == "queued"
        task = huey.dequeue()
        huey.execute(task)
        assert r.llen(queue) == 0
        db.session.expire_all()
        assert db.session.get(ExportJob, job_id).status == "done"
    finally:
        app.config["EXPORT_ASYNC_THRESHOLD"] = 1_000_000
        huey.immediate = True
