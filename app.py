"""Application factory and command-line interface.

    flask --app app init                 migrate the schema, then create/sync roles
    flask --app app seed reference       counties, health bureaus, institution levels
    flask --app app seed demo [--seed N] demo institutions, practitioners and users
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import click
from flask import Flask
from sqlalchemy import event
from sqlalchemy.engine import Engine

import config as app_config
from core.extensions import cache, csrf, db, migrate
from core.mail import mail
from core.security import ratelimit  # noqa: F401  (registers the sqlitefile:// limits storage)

log = logging.getLogger(__name__)
BASE_DIR = Path(__file__).resolve().parent


def create_app(config_overrides: dict | None = None) -> Flask:
    """Build the Flask app; `config_overrides` (tests, benches) win over the environment."""
    app = Flask(__name__, template_folder=str(BASE_DIR / "templates"))
    app.config.from_object(app_config.Config)
    if config_overrides:
        app.config.update(config_overrides)
    Path(app.config["UPLOAD_FOLDER"]).mkdir(parents=True, exist_ok=True)
    from core.storage import backend_name

    backend_name(app.config)  # an unknown STORAGE_BACKEND stops the start, not the first upload
    _prepare_sqlite(app)
    _compile_catalogs()

    db.init_app(app)
    migrate.init_app(app, db, directory=str(BASE_DIR / "migrations"))
    cache.init_app(app)
    mail.init_app(app)
    from core.security.passwords import fab_complexity_validator

    app.config.setdefault("FAB_PASSWORD_COMPLEXITY_VALIDATOR", fab_complexity_validator)
    # Before AppBuilder, or a GET to /delete/<pk> deletes (trap 3).
    csrf.init_app(app)

    import models.all  # noqa: F401  (registers every table on the shared metadata)
    from core.data import audit
    from core.data.datamodel import install_tracking
    from core.security.manager import AppSecurityManager
    from core.web import patches
    from domain.cessation import statistics

    patches.apply()
    with app.app_context():
        from core.web.branding import BrandedAppBuilder

        appbuilder = BrandedAppBuilder(update_perms=False)
        appbuilder.init_app(app, db.session)
        # A failed import of FAB_SECURITY_MANAGER_CLASS silently falls back to FAB's
        # stock manager, which knows nothing of scope (trap 2): refuse to start.
        if not isinstance(appbuilder.sm, AppSecurityManager):
            raise RuntimeError(
                f"security manager is {type(appbuilder.sm).__name__}, expected AppSecurityManager"
            )
        # Only our catalog: FAB's own `zh` catalog is Simplified Chinese (trap 4).
        app.extensions["babel"].translation_directories = [app.config["BABEL_TRANSLATION_DIRECTORIES"]]
        audit.install(db.session)
        statistics.install()
        install_tracking(db.session)
        from models.registry.person import install_person_links

        install_person_links(db.session)
        from core.data import rules

        rules.install(db.session)  # every flush normalises and checks ruled columns
        from views import register

        register(appbuilder)
        _register_template_helpers(app)
        _install_api_errors(app)
        from core.web.badinput import install as install_error_answers

        install_error_answers(app)  # no 500 on bad input; zh_TW 4xx pages (issue 12 class 8)
        _install_login_security(app, appbuilder)
        from core.security.manager import install_http_security

        install_http_security(app, appbuilder)
        from core import ops

        ops.install(app)  # /healthz, /readyz, /metrics, request ids, log format (issue 20)
    _register_cli(app)
    return app


def _prepare_sqlite(app: Flask) -> None:
    uri = app.config["SQLALCHEMY_DATABASE_URI"]
    if uri.startswith("sqlite:///") and not uri.startswith("sqlite:///:memory:"):
        Path(uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)


@event.listens_for(Engine, "connect")
def _sqlite_pragmas(dbapi_connection, connection_record):
    """WAL, a busy timeout and enforced foreign keys for every SQLite connection."""
    import sqlite3

    if isinstance(dbapi_connection, sqlite3.Connection):
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=10000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        # Reads through the OS page cache, shared by every worker, instead of a read()
        # system call and a copy per 4 KB page: a 25-row page of one institution's visits
        # touches pages all over a multi-gigabyte file (measured: −4 ms a page at 3M rows).
        from core.extensions import SQLITE_MMAP_BYTES

        cursor.execute(f"PRAGMA mmap_size={SQLITE_MMAP_BYTES}")
        cursor.close()


def _compile_catalogs() -> None:
    """Compile .po to .mo when the .mo is missing or older (a fresh clone has no .mo)."""
    from babel.messages.mofile import write_mo
    from babel.messages.pofile import read_po

    for po in (BASE_DIR / "babel" / "translations").glob("*/LC_MESSAGES/messages.po"):
        mo = po.with_suffix(".mo")
        if mo.exists() and mo.stat().st_mtime >= po.stat().st_mtime:
            continue
        with po.open("rb") as handle:
            catalog = read_po(handle)
        # One temporary file per process: gunicorn's workers compile at the same moment, and
        # a shared name made the second worker's rename fail (FileNotFoundError, boot failed).
        tmp = mo.with_suffix(f".mo.{os.getpid()}.tmp")
        with tmp.open("wb") as handle:
            write_mo(handle, catalog)
        tmp.replace(mo)


def _install_login_security(app: Flask, appbuilder) -> None:
    """Server-side sessions (logout really ends them, idle and absolute timeouts) and a rate
    limit on the API login like the one FAB puts on the login form."""
    from flask import flash, g, jsonify, redirect, request, session
    from flask_appbuilder.security.api import SecurityApi
    from flask_babel import gettext
    from flask_login import current_user, logout_user, user_logged_in, user_logged_out

    from core.security import sessions as accounts

    @user_logged_in.connect_via(app)
    def _opened(sender, user, **extra):
        if not g.get("background_job"):  # a worker acting for a user opens no browser session
            accounts.start_session(user)

    @user_logged_out.connect_via(app)
    def _closed(sender, user, **extra):
        accounts.end_session(session.pop("sid", None))
        if not g.pop("session_timed_out", False):  # the user signed out: their API tokens end too
            from core.security.manager import revoke_api_tokens

            revoke_api_tokens(getattr(user, "id", None))

    @app.before_request
    def _enforce_server_session():
        if not current_user.is_authenticated or accounts.session_is_valid(current_user.id):
            return None
        g.session_timed_out = True
        logout_user()
        session.clear()
        if request.path.startswith("/api/"):
            return jsonify(message=gettext("Your session has ended. Please sign in again.")), 401
        flash(gettext("Your session has ended. Please sign in again."), "warning")
        return redirect(appbuilder.get_url_for_login)

    for view in appbuilder.baseviews:
        if isinstance(view, SecurityApi):
            appbuilder.sm.limiter.limit(app.config["AUTH_RATE_LIMIT"], methods=["POST"])(
                view.blueprint
            )


def _install_api_errors(app: Flask) -> None:
    """Under /api/ an unknown URL answers JSON, as the OpenAPI document says, not an HTML
    page; a row URL whose key is not a number (GET /api/v1/visit/null) is no such row."""
    from flask import jsonify, request
    from werkzeug.exceptions import MethodNotAllowed, NotFound

    def _json(exc):
        if not request.path.startswith("/api/"):
            from core.web.badinput import http_error

            return http_error(exc)  # a zh_TW page, not werkzeug's English one
        parts = request.path.strip("/").split("/")
        if (
            isinstance(exc, MethodNotAllowed)
            and len(parts) == 4
            and not parts[3].isdigit()
            and not parts[3].startswith("_")
        ):
            return jsonify(message="Not found"), 404
        response = jsonify(message=exc.name)
        response.status_code = exc.code
        if getattr(exc, "valid_methods", None):
            response.headers["Allow"] = ", ".join(exc.valid_methods)
        return response

    app.register_error_handler(NotFound, _json)
    app.register_error_handler(MethodNotAllowed, _json)


def _register_template_helpers(app: Flask) -> None:
    from core.dates import to_roc

    app.jinja_env.filters["roc"] = to_roc
    app.jinja_env.globals["roc"] = to_roc  # roc(day) in every template, once
    from core.web.navbar import cached_navbar

    app.jinja_env.globals["cached_navbar"] = cached_navbar
    from core.web.listrows import fast_page_links, render_rows

    app.jinja_env.globals["render_list_rows"] = render_rows
    fast_page_links(app)
    # Browsers ask for it on every first visit; a 404 there is noise in every console.
    app.add_url_rule("/favicon.ico", "favicon", lambda: ("", 204))


def _register_cli(app: Flask) -> None:
    @app.cli.command("init")
    def init_command():
        """Upgrade the database schema, then create and sync roles and permissions."""
        from flask_migrate import upgrade

        from core.security.permissions import sync_roles
        from domain.roles import ROLE_GRANTS

        upgrade()
        summary = sync_roles(app.appbuilder, ROLE_GRANTS)
        for role, count in summary.items():
            click.echo(f"role {role}: {count} permissions")

    @app.cli.group("seed")
    def seed_group():
        """Load reference or demo data."""

    @seed_group.command("reference")
    def seed_reference_command():
        """Counties with their health bureaus, and the 7 institution levels (idempotent)."""
        from seed.registry.reference import seed_reference

        counts = seed_reference()
        click.echo(f"reference data: {counts}")

    @seed_group.command("demo")
    @click.option("--seed", "seed_value", default=113, show_default=True, type=int)
    @click.option("--scale", default=1.0, show_default=True, type=float)
    def seed_demo_command(seed_value: int, scale: float):
        """Demo institutions, practitioners and one user per role (deterministic per --seed)."""
        from seed.demo import seed_demo

        result = seed_demo(seed=seed_value, scale=scale)
        for key, value in result.items():
            click.echo(f"{key}: {value}")

    @app.cli.command("setup")
    @click.option("--seed", "seed_value", default=113, show_default=True, type=int)
    @click.option("--scale", default=1.0, show_default=True, type=float,
                  help="Demo scale (tests/cluster seeds a small world with 0.03).")  # fmt: skip
    @click.pass_context
    def setup_command(ctx, seed_value: int, scale: float):
        """`make run`'s database steps in one process (each process start costs ~3 s):
        init, seed reference, seed demo, then the demo logins."""
        ctx.invoke(init_command)
        ctx.invoke(seed_reference_command)
        ctx.invoke(seed_demo_command, seed_value=seed_value, scale=scale)
        ctx.invoke(demo_logins_command)

    @app.cli.command("check-rules")
    @click.option("--limit", default=20, show_default=True, help="Rows reported per table.")
    def check_rules_command(limit: int):
        """Report stored rows that break a field rule (core/data/rules.py); exit 1 if any.

        Rows written before the rules (or through raw SQL) are found here, by table, id and
        message, so they can be corrected before the CHECK constraints' migration runs.
        """
        from core.data.rules import ruled_models, scan_rows

        found = 0
        for model in ruled_models():
            for key, column, message in scan_rows(model, limit):
                found += 1
                click.echo(f"{model.__tablename__} {key} {column}: {message}")
        click.echo(f"{found} rows break a field rule" if found else "every row meets the field rules")
        if found:
            raise SystemExit(1)

    @app.cli.command("backup")
    @click.option("--to", "to", default=None, help="Folder of the archive (default INSTANCE_DIR/backups).")
    def backup_command(to):
        """One archive of the database (SQLite online backup or pg_dump) and of the stored
        files on disk, with a manifest of row counts and checksums (core/backup.py)."""
        from core.backup import BackupError, backup, read_manifest

        config = {**app.config, "INSTANCE_DIR": str(app_config.INSTANCE_DIR)}
        try:
            archive = backup(config, to)
        except BackupError as exc:
            raise click.ClickException(str(exc)) from None
        manifest = read_manifest(archive)
        click.echo(f"{archive}: {len(manifest['tables'])} tables, {sum(manifest['tables'].values())} rows, "
                   f"{len(manifest['files'])} files")  # fmt: skip

    @app.cli.command("restore")
    @click.argument("archive", type=click.Path(exists=True, dir_okay=False))
    @click.option("--force", is_flag=True, help="Replace a database or upload folder that is not empty.")
    def restore_command(archive, force):
        """Restore an archive of `flask backup` into an empty database and upload folder,
        checking its checksums first and its row counts after (core/backup.py)."""
        from core.backup import BackupError, restore

        db.session.remove()
        db.engine.dispose()  # no connection of this process holds the database being replaced
        try:
            manifest = restore(app.config, archive, force=force)
        except BackupError as exc:
            raise click.ClickException(str(exc)) from None
        click.echo(f"restored {sum(manifest['tables'].values())} rows in {len(manifest['tables'])} tables "
                   f"and {len(manifest['files'])} files, as of {manifest['created_at']}")  # fmt: skip

    @app.cli.command("demo-logins")
    def demo_logins_command():
        """Print the demo users and their password."""
        from seed.demo import DEMO_USERS

        password = app.config["DEMO_PASSWORD"]
        click.echo(f"Demo logins (password: {password})")
        for username, roles, description in DEMO_USERS:
            click.echo(f"  {username:<14} {'+'.join(roles):<26} {description}")
        # The HIS system account (seed/addiction/his.py): an API client, not a person.
        click.echo(f"  {'his_tpe':<14} {'HisInterface':<26} 醫院資訊系統帳號，臺北市的指定藥癮戒治機構（只以 API 傳送醫令）")
