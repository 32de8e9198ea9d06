"""Fixtures: one migrated, seeded database per test run (SQLite, or PostgreSQL when
TEST_DATABASE_URL is set), clients logged in as any demo user, CSRF tokens, JWTs."""

from __future__ import annotations

import os
import re

import pytest

# Background jobs run in-process during tests (must be set before core.jobs is imported).
os.environ.setdefault("HUEY_IMMEDIATE", "1")

from app import create_app  # noqa: E402
from seed.testing import csrf_token, login, reset_database  # noqa: E402,F401  (bench/ uses them too)

DEMO_SCALE = 0.03  # ~83 institutions, ~344 practitioners: every county, every level
DEMO_SEED = 7
PASSWORD = "Demo-Pass-2024!"
USERNAMES = [
    "admin", "office", "ministry", "bureau_tpe", "bureau_khh", "facility_tpe", "facility_khh",
    "helpdesk",
    # The addiction programme's staff (A1): one programme's role only.
    "dr_tpe", "psy_tpe", "cm_khh", "psy_clinic", "sw_office",
]  # fmt: skip


@pytest.fixture(scope="session")
def database_url(tmp_path_factory) -> str:
    url = os.environ.get("TEST_DATABASE_URL")
    if url:
        return url
    return f"sqlite:///{tmp_path_factory.mktemp('db') / 'test.db'}"


#: With REDIS_URL set (`make test-redis`: scripts/with-redis.sh), the shared state lives in
#: Redis as on several hosts: the cache (list counts, table, security and statistics version
#: tokens, permission sets, revoked API tokens), the rate limits and the job queue
#: (core/jobs.py: huey on Redis, tasks still run in-process). Otherwise in this process.
REDIS_URL = os.environ.get("REDIS_URL")


def shared_state_config(tmp) -> dict:
    """The cache and rate-limit settings of a test app: Redis when REDIS_URL is set."""
    if REDIS_URL:
        return {"CACHE_TYPE": "RedisCache", "CACHE_REDIS_URL": REDIS_URL, "RATELIMIT_STORAGE_URI": REDIS_URL}
    return {"CACHE_TYPE": "SimpleCache", "RATELIMIT_STORAGE_URI": f"sqlitefile://{tmp / 'ratelimit.db'}"}


@pytest.fixture(scope="session")
def app(database_url, tmp_path_factory):
    """The application over a freshly migrated, role-synced, demo-seeded database."""
    tmp = tmp_path_factory.mktemp("instance")
    application = create_app(
        {
            "TESTING": True,
            "SQLALCHEMY_DATABASE_URI": database_url,
            **shared_state_config(tmp),
            "UPLOAD_FOLDER": str(tmp / "uploads"),
            "SECRET_KEY": "test-secret-key-0123456789-abcdefghij",
            "DEMO_PASSWORD": PASSWORD,
            "MAIL_FOLDER": str(tmp / "mail"),
            "AUTH_RATE_LIMIT": "10000 per minute",
            "APPLY_RATE_LIMIT": "10000 per hour",
            "EXPORT_ASYNC_THRESHOLD": 1_000_000,
        }
    )
    from flask import g
    from flask_migrate import upgrade

    def fresh_request_globals():
        # Tests keep an app context open (the `db` fixture), and Flask reuses it for the
        # client's requests, so `g` would carry the previous request's user (Flask-Login
        # caches it in g._login_user). In production every request has its own context.
        for name in ("_login_user", "user", "_request_memo", "_api_key_user",
                     # flask-jwt-extended's verified token: a later request would be
                     # authorised by the previous request's JWT without checking its own.
                     "_jwt_extended_jwt_user", "_jwt_extended_jwt", "_jwt_extended_jwt_header"):
            g.pop(name, None)

    application.before_request_funcs.setdefault(None, []).insert(0, fresh_request_globals)
    from core import jobs

    jobs.set_app(application)

    from core.extensions import db
    from core.security.permissions import sync_roles
    from domain.roles import ROLE_GRANTS
    from seed.demo import seed_demo

    with application.app_context():
        reset_database(db)
        upgrade()
        sync_roles(application.appbuilder, ROLE_GRANTS)
        seed_demo(seed=DEMO_SEED, scale=DEMO_SCALE)
        db.session.remove()
    yield application


@pytest.fixture
def db(app):
    from core.extensions import db as _db

    with app.app_context():
        yield _db
        _db.session.remove()


_session_cookies: dict[str, str] = {}


@pytest.fixture
def login_as(app):
    """login_as('facility_tpe') -> a test client with a logged-in session for that user."""

    def _login_as(username: str):
        client = app.test_client()
        cookie = _session_cookies.get(username)
        if cookie is not None:
            client.set_cookie("session", cookie)
            if client.get("/users/userinfo/").status_code == 200:
                return client
            client = app.test_client()
        response = login(app, client, username)
        assert response.status_code == 302 and "/login" not in response.headers["Location"], (
            f"login failed for {username}"
        )
        _session_cookies[username] = client.get_cookie("session").value
        return client

    return _login_as


_jwt_cache: dict[str, str] = {}


@pytest.fixture
def api_as(app):
    """api_as('bureau_khh') -> (client, headers) authenticated with a JWT."""

    def _api_as(username: str):
        client = app.test_client()
        if username in _jwt_cache and not _token_still_valid(app, _jwt_cache[username]):
            del _jwt_cache[username]  # expired (15 min), or revoked by a logout in a test
        if username not in _jwt_cache:
            response = client.post(
                "/api/v1/security/login",
                json={"username": username, "password": PASSWORD, "provider": "db"},
            )
            assert response.status_code == 200, response.text
            _jwt_cache[username] = response.json["access_token"]
        return client, {"Authorization": f"Bearer {_jwt_cache[username]}"}

    return _api_as


def _token_still_valid(app, token: str) -> bool:
    from flask_jwt_extended import decode_token

    from core.security.manager import token_revoked

    with app.app_context():
        try:
            payload = decode_token(token)
        except Exception:  # expired, or any other reason to log in again
            return False
        import time

        return payload["exp"] - time.time() > 120 and not token_revoked(payload)


def post_form(app, client, url: str, data: dict, **kwargs):
    """POST a form with the session's CSRF token, as the browser would."""
    return client.post(url, data={**data, "csrf_token": csrf_token(app, client)}, **kwargs)


def institution_form(institution, **changes) -> dict:
    """The institution edit form as the browser would post it, with some fields changed."""
    form = {
        "kind": institution.kind,
        "nhi_code": institution.nhi_code,
        "name": institution.name,
        "level": str(institution.level_id),
        "county": str(institution.county_id),
        "address": institution.address or "",
        "phone": institution.phone or "",
    }
    form.update({key: str(value) for key, value in changes.items()})
    return form


def visible_text(html: str) -> str:
    """The text a person sees: no tags, scripts, styles or attribute values."""
    html = re.sub(r"(?is)<(script|style)\b.*?</\1>", " ", html)
    html = re.sub(r"(?s)<!--.*?-->", " ", html)
    html = re.sub(r"(?s)<[^>]+>", " ", html)
    import html as html_lib

    return re.sub(r"\s+", " ", html_lib.unescape(html)).strip()


@pytest.fixture(params=["local", "database"])
def storage_backend(request, app, monkeypatch):
    """Issue 20: a file test runs on both storage backends (core/storage.py), the app's
    STORAGE_BACKEND switched for the test; `STORAGE_BACKEND=database pytest …` runs the whole
    suite, seeded files included, on the database backend."""
    monkeypatch.setitem(app.config, "STORAGE_BACKEND", request.param)
    return request.param
