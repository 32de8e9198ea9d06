"""Configuration read from the environment; every value has a safe local default."""

import datetime as dt
import json
import os
from pathlib import Path

from flask_appbuilder.const import AUTH_DB

BASE_DIR = Path(__file__).resolve().parent
INSTANCE_DIR = Path(os.environ.get("INSTANCE_DIR", BASE_DIR / "instance"))


def _bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _json(name: str, default):
    """An environment variable holding JSON (a mapping, a list), else the default."""
    value = os.environ.get(name)
    return default if value is None or not value.strip() else json.loads(value)


def database_url() -> str:
    url = os.environ.get("DATABASE_URL")
    if url:
        # Heroku-style URLs say postgres://, SQLAlchemy wants postgresql://
        return url.replace("postgres://", "postgresql://", 1)
    return f"sqlite:///{INSTANCE_DIR / 'app.db'}"


class Config:
    """Defaults for every environment; create_app(config_overrides=...) adjusts them."""

    APP_NAME = "戒菸服務管理系統"
    #: The addiction programme's name (seed 004: 衛生福利部「藥酒癮醫療個案管理系統」); a user
    #: of both programmes, and the login page, read both (core/web/branding.py).
    ADDICTION_APP_NAME = "藥酒癮醫療個案管理系統"
    APP_ICON = ""
    SECRET_KEY = os.environ.get("SECRET_KEY", "dev-only-change-me-" + "x" * 16)
    SQLALCHEMY_DATABASE_URI = database_url()
    SQLALCHEMY_TRACK_MODIFICATIONS = False
    SQLALCHEMY_ENGINE_OPTIONS: dict = {}

    # Flask-AppBuilder
    AUTH_TYPE = AUTH_DB
    AUTH_ROLE_ADMIN = "Admin"
    AUTH_ROLE_PUBLIC = "Public"
    AUTH_USER_REGISTRATION = False  # accounts are opened after approval (A13)
    FAB_SECURITY_MANAGER_CLASS = "core.security.manager.AppSecurityManager"
    FAB_CREATE_DB = False  # Alembic owns the schema (trap 5)
    FAB_UPDATE_PERMS = False  # permissions are synced by `flask init`, not at every start
    FAB_ADD_SECURITY_API = False
    # FAB's screens of raw permission, resource and permission-resource names: roles are data
    # (domain/*/grants.py, synced by `flask init`), and the role screens name them in zh_TW.
    FAB_ADD_SECURITY_PERMISSION_VIEW = False
    FAB_ADD_SECURITY_VIEW_MENU_VIEW = False
    FAB_ADD_SECURITY_PERMISSION_VIEWS_VIEW = False
    FAB_API_KEY_ENABLED = True
    FAB_API_SWAGGER_UI = True
    FAB_API_MAX_PAGE_SIZE = 100
    # FAB's menu API feeds its React front end, which we do not use: one surface less.
    FAB_ADD_MENU_API = False
    FAB_INDEX_VIEW = "views.platform.index.HomeView"
    FAB_BASE_TEMPLATE = "base.html"

    # Language: Traditional Chinese first, English on request.
    BABEL_DEFAULT_LOCALE = "zh_TW"
    BABEL_DEFAULT_TIMEZONE = "Asia/Taipei"
    LANGUAGES = {
        "zh_TW": {"flag": "tw", "name": "繁體中文"},
        "en": {"flag": "gb", "name": "English"},
    }
    BABEL_TRANSLATION_DIRECTORIES = str(BASE_DIR / "babel" / "translations")

    # CSRF on everything, including GET-is-not-a-mutation for FAB's delete (trap 3).
    WTF_CSRF_ENABLED = True
    WTF_CSRF_TIME_LIMIT = None
    # WTForms ships zh_TW, Flask-WTF asks for zh_Hant_TW and would fall back to Simplified zh:
    # core/web/patches.py hands WTForms our own catalog instead, which translates its messages.
    WTF_I18N_ENABLED = True

    # Sessions (issue 3 tightens further)
    SESSION_COOKIE_HTTPONLY = True
    SESSION_COOKIE_SAMESITE = "Lax"
    SESSION_COOKIE_SECURE = _bool("SESSION_COOKIE_SECURE", False)

    # Shared state: Redis when REDIS_URL is set, embedded otherwise.
    REDIS_URL = os.environ.get("REDIS_URL")
    # The embedded fallback must still be shared by every gunicorn worker: a file cache.
    CACHE_TYPE = "RedisCache" if REDIS_URL else "FileSystemCache"
    CACHE_REDIS_URL = REDIS_URL
    CACHE_DIR = str(INSTANCE_DIR / "cache")
    CACHE_THRESHOLD = 100_000
    CACHE_DEFAULT_TIMEOUT = 300
    # Without Redis, a SQLite file every worker of this machine shares (core/security/ratelimit.py).
    RATELIMIT_STORAGE_URI = REDIS_URL or f"sqlitefile://{INSTANCE_DIR / 'ratelimit.db'}"

    # Mail: SMTP when MAIL_SERVER is set, otherwise .eml files in MAIL_FOLDER.
    MAIL_SERVER = os.environ.get("MAIL_SERVER")
    MAIL_PORT = int(os.environ.get("MAIL_PORT", "25"))
    MAIL_USE_TLS = _bool("MAIL_USE_TLS", False)
    MAIL_USERNAME = os.environ.get("MAIL_USERNAME")
    MAIL_PASSWORD = os.environ.get("MAIL_PASSWORD")
    MAIL_DEFAULT_SENDER = os.environ.get("MAIL_DEFAULT_SENDER", "no-reply@cessation.invalid")
    MAIL_FOLDER = os.environ.get("MAIL_FOLDER", str(INSTANCE_DIR / "mail"))

    # Accounts (issue 3): lockout, sessions, applications, links.
    LOCKOUT_THRESHOLD = 5
    LOCKOUT_MINUTES = 15
    SESSION_IDLE_MINUTES = 30
    SESSION_ABSOLUTE_HOURS = 8
    ONE_TIME_LINK_HOURS = 24
    APPLICATION_MAX_BYTES = 5 * 1024 * 1024
    MAX_CONTENT_LENGTH = 8 * 1024 * 1024
    RATELIMIT_ENABLED = True
    AUTH_RATE_LIMITED = True
    AUTH_RATE_LIMIT = os.environ.get("AUTH_RATE_LIMIT", "20 per minute")
    APPLY_RATE_LIMIT = os.environ.get("APPLY_RATE_LIMIT", "10 per hour")
    FAB_PASSWORD_COMPLEXITY_ENABLED = True
    # FAB_PASSWORD_COMPLEXITY_VALIDATOR is set by create_app (core.security.passwords).
    PERMANENT_SESSION_LIFETIME = 8 * 3600
    REMEMBER_COOKIE_DURATION = 0
    # API tokens end with the session (issue 12): short access tokens, refresh tokens no
    # longer than the session's absolute limit (create_app clamps them to it), both revoked
    # by logout and by every password change (core/security/manager.py, denylist in the shared cache).
    JWT_ACCESS_TOKEN_EXPIRES = dt.timedelta(minutes=int(os.environ.get("JWT_ACCESS_MINUTES", "15")))
    JWT_REFRESH_TOKEN_EXPIRES = dt.timedelta(hours=SESSION_ABSOLUTE_HOURS)

    # Security headers (core/security/manager.py install_security_headers, Flask-Talisman). HTTPS is
    # forced (redirect + HSTS) only when configured: behind a TLS proxy set FORCE_HTTPS or
    # SESSION_COOKIE_SECURE; a plain-HTTP local run keeps working.
    FORCE_HTTPS = _bool("FORCE_HTTPS", False)
    HSTS_SECONDS = int(os.environ.get("HSTS_SECONDS", str(365 * 24 * 3600)))

    # Operations (core/ops.py): log lines as JSON when LOG_FORMAT=json; /metrics from loopback,
    # or with "Authorization: Bearer $METRICS_TOKEN" (set METRICS_ALLOW_LOOPBACK=0 behind a
    # proxy on the same host, where every caller looks like loopback).
    LOG_FORMAT = os.environ.get("LOG_FORMAT", "text")
    LOG_LEVEL = os.environ.get("LOG_LEVEL", "INFO")
    METRICS_TOKEN = os.environ.get("METRICS_TOKEN", "")
    METRICS_ALLOW_LOOPBACK = _bool("METRICS_ALLOW_LOOPBACK", True)

    UPLOAD_FOLDER = str(INSTANCE_DIR / "uploads")
    #: Where stored files live (core/storage.py): "local" (folders under UPLOAD_FOLDER, one host)
    #: or "database" (the stored_file table: every host sees every file, one backup holds all).
    STORAGE_BACKEND = os.environ.get("STORAGE_BACKEND", "local")
    #: Correction tickets (Appendix 9): the largest scanned attachment accepted, per file.
    CORRECTION_ATTACHMENT_MAX_BYTES = int(os.environ.get("CORRECTION_ATTACHMENT_MAX_BYTES", str(5 * 1024 * 1024)))
    #: Treatment records (A5): the largest uploaded PDF (a filled-in record or a blank record
    #: form) and its most pages.
    RECORD_PDF_MAX_BYTES = int(os.environ.get("RECORD_PDF_MAX_BYTES", str(5 * 1024 * 1024)))
    RECORD_PDF_MAX_PAGES = int(os.environ.get("RECORD_PDF_MAX_PAGES", "20"))
    #: Informed consent (A12): the largest signed scan (PDF, PNG or JPEG) and a PDF's most pages.
    CONSENT_SCAN_MAX_BYTES = int(os.environ.get("CONSENT_SCAN_MAX_BYTES", str(5 * 1024 * 1024)))
    CONSENT_SCAN_MAX_PAGES = int(os.environ.get("CONSENT_SCAN_MAX_PAGES", "10"))
    # HIS order batches (A6): lines and bytes per POST /api/v1/his/orders (and per upload).
    HIS_BATCH_MAX_LINES = int(os.environ.get("HIS_BATCH_MAX_LINES", "5000"))
    HIS_BATCH_MAX_BYTES = int(os.environ.get("HIS_BATCH_MAX_BYTES", str(2 * 1024 * 1024)))
    # A scheme's budget spent (seed: "until the budget is exhausted"): "flag" marks the lines
    # past it, "stop" does not pay them (domain/addiction/claimable.py apply_budgets).
    SCHEME_BUDGET_POLICY = os.environ.get("SCHEME_BUDGET_POLICY", "flag")
    # 成癮醫療業務統計 (domain/addiction/reports.py): an initial assessment answered within this
    # many days of its course's start counts as on time (A3; the seed names no delay).
    ADDICTION_INITIAL_DUE_DAYS = int(os.environ.get("ADDICTION_INITIAL_DUE_DAYS", "14"))
    #: Spreadsheet imports (core/imports.py; the visit batch upload): refused before parsing above these sizes,
    #: and when reading and checking the rows takes longer than the budget (seconds).
    BATCH_MAX_BYTES = int(os.environ.get("BATCH_MAX_BYTES", str(2 * 1024 * 1024)))
    BATCH_MAX_UNPACKED_BYTES = int(os.environ.get("BATCH_MAX_UNPACKED_BYTES", str(20 * 1024 * 1024)))
    BATCH_MAX_PARTS = 100
    BATCH_TIME_BUDGET = float(os.environ.get("BATCH_TIME_BUDGET", "20"))
    #: Bulk import of assessments (API and workbook): responses per batch, and the workbook's
    #: size packed and unpacked (10,000 rows of a 30-item instrument: ~1.1 MB and ~16 MB).
    ASSESSMENT_BULK_MAX_ROWS = int(os.environ.get("ASSESSMENT_BULK_MAX_ROWS", "10000"))
    ASSESSMENT_BULK_MAX_BYTES = int(os.environ.get("ASSESSMENT_BULK_MAX_BYTES", str(8 * 1024 * 1024)))
    ASSESSMENT_BULK_MAX_UNPACKED_BYTES = int(
        os.environ.get("ASSESSMENT_BULK_MAX_UNPACKED_BYTES", str(96 * 1024 * 1024))
    )
    #: Addiction staff (A14): yearly hours of addiction training required per profession
    #: (models/addiction/staff.py StaffProfession values; a profession not listed needs none),
    #: how far ahead the shortfall list warns of a licence ending, and the largest certificate.
    ADDICTION_TRAINING_HOURS = _json("ADDICTION_TRAINING_HOURS", {
        "physician": 6, "psychologist": 6, "social_worker": 6, "nurse": 4,
        "occupational_therapist": 4, "case_manager": 8,
    })  # fmt: skip
    #: The helpdesk (客服) contact shown on every home page.
    HELPDESK_CONTACT = os.environ.get(
        "HELPDESK_CONTACT", "客服專線 (02) 2351-0000（週一至週五 09:00–17:30）；電子郵件 helpdesk@example.gov.tw"
    )
    LICENCE_EXPIRY_WARNING_DAYS = int(os.environ.get("LICENCE_EXPIRY_WARNING_DAYS", "60"))
    TRAINING_CERTIFICATE_MAX_BYTES = int(os.environ.get("TRAINING_CERTIFICATE_MAX_BYTES", str(5 * 1024 * 1024)))
    EXPORT_MAX_ROWS = int(os.environ.get("EXPORT_MAX_ROWS", "5000000"))
    #: Exports larger than this run as a background job with a progress bar.
    EXPORT_ASYNC_THRESHOLD = int(os.environ.get("EXPORT_ASYNC_THRESHOLD", "20000"))
    DEMO_PASSWORD = os.environ.get("DEMO_PASSWORD", "Demo-Pass-2024!")
    DEMO_MODE = _bool("DEMO_MODE", True)
