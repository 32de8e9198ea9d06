"""Helpers shared by the test suite and the benchmarks (never imported by the app): an
empty database to migrate into, a CSRF token for a test client, a login through the form."""

from __future__ import annotations

import hashlib
import os

from itsdangerous import URLSafeTimedSerializer


def reset_database(db) -> None:
    """Empty the test database so `upgrade()` starts from nothing (PostgreSQL may be reused)."""
    from sqlalchemy import inspect, text

    engine = db.engine
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(text("DROP SCHEMA public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
        else:
            for table in inspect(conn).get_table_names():
                conn.execute(text(f'DROP TABLE IF EXISTS "{table}"'))


def csrf_token(app, client) -> str:
    """A valid CSRF token for the client's session (as a rendered form would carry)."""
    with client.session_transaction() as session:
        raw = session.get("csrf_token")
        if raw is None:
            raw = hashlib.sha1(os.urandom(64)).hexdigest()
            session["csrf_token"] = raw
    return URLSafeTimedSerializer(app.config["SECRET_KEY"], salt="wtf-csrf-token").dumps(raw)


def login(app, client, username: str, password: str = "Demo-Pass-2024!"):
    """Log the client in through the login form ."""
    client.get("/login/")
    return client.post(
        "/login/",
        data={"username": username, "password": password, "csrf_token": csrf_token(app, client)},
    )
