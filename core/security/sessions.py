"""Sign-in security (rule A13): lockout, server-side sessions, one-time links, security
events. The commands that use them (applications, helpdesk) live in domain/accounts/."""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets

from flask import current_app, has_request_context, request, session, url_for
from flask_babel import gettext
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from core.actor import current_actor
from core.dates import utcnow
from core.errors import UserError
from core.extensions import db
from models.platform.audit import AuditLog
from models.platform.session import LoginThrottle, OneTimeToken, UserSession

SET_PASSWORD, RESET_PASSWORD = "set_password", "reset_password"


class AccountError(UserError):
    """A refused account operation; str() is the zh_TW message shown to the user."""


def _hash(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def _ip() -> str | None:
    return request.remote_addr if has_request_context() else None


# ----------------------------------------------------------------- security events
def record_event(action: str, account_id: int | None, account_name: str | None, **detail) -> None:
    """One line in the audit trail about an account: login, lockout, password, role …"""
    actor = current_actor()
    actor_id, actor_name = actor.id, actor.username if actor.id else None
    db.session.execute(
        AuditLog.__table__.insert().values(
            at=utcnow(),
            user_id=actor_id if actor_id is not None else account_id,
            username=actor_name or account_name,
            action=action,
            model="Account",
            row_key=str(account_id) if account_id is not None else f"name:{account_name}",
            after={"account": account_name, **detail} if detail or account_name else None,
            source_ip=_ip(),
        )
    )


def account_events(user_id: int, limit: int = 50) -> list[AuditLog]:
    """The security events of one account, newest first (the helpdesk's history)."""
    return db.session.scalars(
        select(AuditLog)
        .where(AuditLog.model == "Account", AuditLog.row_key == str(user_id))
        .order_by(AuditLog.id.desc())
        .limit(limit)
    ).all()


# ------------------------------------------------------------------------ lockout
def _key(username: str | None) -> str:
    return (username or "").strip().lower()[:150]


def lockout_state(username: str | None) -> LoginThrottle | None:
    return db.session.get(LoginThrottle, _key(username))


def is_locked(username: str | None) -> bool:
    state = lockout_state(username)
    return bool(state and state.locked_until and state.locked_until > utcnow())


def register_failure(username: str | None) -> bool:
    """Count a failed login for this username (known or not); True when it is now locked.

    Unknown usernames are counted too, so the lockout message reveals nothing about which
    accounts exist. The increment is one UPDATE, safe across workers.
    """
    key, now = _key(username), utcnow()
    threshold = current_app.config["LOCKOUT_THRESHOLD"]
    # A lock that has run out starts a fresh count.
    db.session.execute(
        update(LoginThrottle)
        .where(LoginThrottle.username == key, LoginThrottle.locked_until <= now)
        .values(failures=0, locked_until=None)
    )
    result = db.session.execute(
        update(LoginThrottle)
        .where(LoginThrottle.username == key)
        .values(failures=LoginThrottle.failures + 1, last_failure_at=now)
    )
    if result.rowcount == 0:
        try:
            with db.session.begin_nested():
                db.session.add(LoginThrottle(username=key, failures=1, last_failure_at=now))
        except IntegrityError:
            db.session.execute(
                update(LoginThrottle)
                .where(LoginThrottle.username == key)
                .values(failures=LoginThrottle.failures + 1, last_failure_at=now)
            )
    state = db.session.get(LoginThrottle, key, populate_existing=True)
    locked_now = state.failures >= threshold and not (state.locked_until and state.locked_until > now)
    if locked_now:
        state.locked_until = now + dt.timedelta(minutes=current_app.config["LOCKOUT_MINUTES"])
    db.session.commit()
    return locked_now


def clear_failures(username: str | None) -> None:
    db.session.execute(
        update(LoginThrottle)
        .where(LoginThrottle.username == _key(username))
        .values(failures=0, locked_until=None)
    )


# ----------------------------------------------------------------------- sessions
def start_session(user) -> None:
    """Open a server-side session record for a browser login and tie the cookie to it."""
    raw = secrets.token_urlsafe(32)
    db.session.add(UserSession(id=_hash(raw), user_id=user.id, ip=_ip()))
    db.session.commit()
    session["sid"] = raw
    session.permanent = True


def current_session_key() -> str:
    """The stored key of this browser's server session ("" when there is none)."""
    raw = session.get("sid")
    return _hash(raw) if raw else ""


def end_session(raw: str | None) -> None:
    if not raw:
        return
    row = db.session.get(UserSession, _hash(raw))
    if row is not None and row.ended_at is None:
        row.ended_at = utcnow()
        db.session.commit()


def end_all_sessions(user_id: int) -> None:
    db.session.execute(
        update(UserSession)
        .where(UserSession.user_id == user_id, UserSession.ended_at.is_(None))
        .values(ended_at=utcnow())
    )


def request_session_id() -> str | None:
    """The key of the request cookie's server-side session (None outside a request or
    without one): the user's load fetches that row with the user (manager.get_user_by_id)."""
    if not has_request_context():
        return None
    raw = session.get("sid")
    return _hash(raw) if raw else None


def session_is_valid(user_id: int) -> bool:
    """The cookie's session exists on the server, is not ended, idle or too old.

    The row was read with the user in this request (manager.get_user_by_id), so the get
    is answered from the identity map; it reads the row itself when not."""
    key = request_session_id()
    if key is None:
        return False
    row = db.session.get(UserSession, key)
    now = utcnow()
    if row is None or row.ended_at is not None or row.user_id != user_id:
        return False
    idle = dt.timedelta(minutes=current_app.config["SESSION_IDLE_MINUTES"])
    absolute = dt.timedelta(hours=current_app.config["SESSION_ABSOLUTE_HOURS"])
    if now - row.last_seen_at > idle or now - row.created_at > absolute:
        row.ended_at = now
        db.session.commit()
        return False
    if now - row.last_seen_at > dt.timedelta(minutes=1):  # one write a minute, not per request
        row.last_seen_at = now
        db.session.commit()
    return True


# ------------------------------------------------------------------ one-time links
def issue_token(user, purpose: str) -> str:
    raw = secrets.token_urlsafe(32)
    hours = current_app.config["ONE_TIME_LINK_HOURS"]
    db.session.add(
        OneTimeToken(
            token_hash=_hash(raw),
            user_id=user.id,
            purpose=purpose,
            expires_at=utcnow() + dt.timedelta(hours=hours),
        )
    )
    return raw


def find_token(raw: str) -> OneTimeToken:
    """The unused, unexpired token for this link, or AccountError."""
    token = db.session.scalar(select(OneTimeToken).where(OneTimeToken.token_hash == _hash(raw or "")))
    if token is None:
        raise AccountError(gettext("This link is not valid."))
    if token.used_at is not None:
        raise AccountError(gettext("This link has already been used."))
    if token.expires_at <= utcnow():
        raise AccountError(gettext("This link has expired: ask the helpdesk for a new one."))
    return token


def password_link(raw: str) -> str:
    """The absolute URL of a set-password link."""
    return url_for("SetPasswordView.set_password", token=raw, _external=True)
