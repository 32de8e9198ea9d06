"""Account workflows (rule A13): lockout, server-side sessions, one-time links, security
events, and the commands behind online applications and the helpdesk.

Commands follow one shape: construct, `validate()` (raises AccountError with a zh_TW
message, changes nothing), `run()` (does the work in one transaction).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets

from flask import current_app, g, has_request_context, request, session, url_for
from flask_babel import gettext
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from core.data.scope import ScopeKind
from core.dates import to_roc, utcnow
from core.extensions import db
from core.mail import send_mail
from core.security.passwords import check_password
from models.accounts.application import (
    AccountApplication,
    ApplicationStatus,
    LoginThrottle,
    OneTimeToken,
    RequestedRole,
    UserSession,
)
from models.platform.audit import AuditLog
from models.platform.user import ScopedUser

#: Which role an approved application gets.
ROLE_FOR_REQUEST = {
    RequestedRole.FACILITY.value: "Facility",
    RequestedRole.BUREAU.value: "Bureau",
    RequestedRole.OFFICE.value: "Office",
    RequestedRole.MINISTRY.value: "Ministry",
}
SET_PASSWORD, RESET_PASSWORD = "set_password", "reset_password"


class AccountError(Exception):
    """A refused account operation; str() is the zh_TW message shown to the user."""


def _hash(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def _ip() -> str | None:
    return request.remote_addr if has_request_context() else None


# ----------------------------------------------------------------- security events
def record_event(action: str, account_id: int | None, account_name: str | None, **detail) -> None:
    """One line in the audit trail about an account: login, lockout, password, role …"""
    actor = None
    if has_request_context():
        try:
            actor = current_app.appbuilder.sm.current_user
        except AttributeError:  # no FAB g.user in this context
            actor = None
    actor_id = getattr(actor, "id", None) if getattr(actor, "is_authenticated", False) else None
    actor_name = getattr(actor, "username", None) if actor_id else None
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


def session_is_valid(user_id: int) -> bool:
    """The cookie's session exists on the server, is not ended, idle or too old."""
    raw = session.get("sid")
    if not raw:
        return False
    row = db.session.get(UserSession, _hash(raw))
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


def _link(raw: str) -> str:
    return url_for("SetPasswordView.set_password", token=raw, _external=True)


# ----------------------------------------------------------------------- commands
class SetPassword:
    """Set a password through a one-time link; activates a newly approved account."""

    def __init__(self, raw_token: str, password: str):
        self.raw_token, self.password = raw_token, password

    def validate(self) -> None:
        self.token = find_token(self.raw_token)
        self.user = db.session.get(ScopedUser, self.token.user_id)
        check_password(self.password, self.user.username)

    def run(self) -> ScopedUser:
        self.validate()
        sm = current_app.appbuilder.sm
        sm.reset_password(self.user.id, self.password)
        self.user.active = True
        self.user.fail_login_count = 0
        self.token.used_at = utcnow()
        clear_failures(self.user.username)
        end_all_sessions(self.user.id)
        action = "password_set" if self.token.purpose == SET_PASSWORD else "password_reset"
        record_event(action, self.user.id, self.user.username)
        db.session.commit()
        return self.user


class ApproveApplication:
    """Open the account an application asks for: exactly its role and scope, inactive until
    the applicant sets a password through the mailed one-time link."""

    def __init__(self, application: AccountApplication):
        self.application = application

    def validate(self) -> None:
        application = self.application
        if application.status != ApplicationStatus.PENDING.value:
            raise AccountError(gettext("This application has already been decided."))
        sm = current_app.appbuilder.sm
        if sm.find_user(username=application.email) or sm.find_user(email=application.email):
            raise AccountError(gettext("An account with this e-mail address already exists."))

    def run(self) -> ScopedUser:
        self.validate()
        application = self.application
        sm = current_app.appbuilder.sm
        role = sm.find_role(ROLE_FOR_REQUEST[application.requested_role])
        name = application.applicant_name.strip()
        # The account is inactive and this password is never told to anyone: the applicant
        # chooses their own through the link.
        placeholder = secrets.token_urlsafe(24) + "aA1!"
        user = sm.add_user(
            application.email, name[1:] or name, name[:1], application.email, [role], placeholder
        )
        if not user:
            raise AccountError(gettext("The account could not be created."))
        user = db.session.get(ScopedUser, user.id)
        user.active = False
        if application.requested_role == RequestedRole.FACILITY.value:
            user.scope_kind = ScopeKind.FACILITY
            user.scope_institutions = [application.institution]
        elif application.requested_role == RequestedRole.BUREAU.value:
            user.scope_kind = ScopeKind.COUNTY
            user.scope_county = application.county
        else:
            user.scope_kind = ScopeKind.NATIONAL
        application.status = ApplicationStatus.APPROVED.value
        application.decided_at = utcnow()
        application.decided_by_id = g.user.id if has_request_context() and g.get("user") else None
        application.user_id = user.id
        raw = issue_token(user, SET_PASSWORD)
        record_event("approved", user.id, user.username, application=application.id)
        db.session.commit()
        hours = current_app.config["ONE_TIME_LINK_HOURS"]
        send_mail(
            application.email,
            gettext("Your account has been approved"),
            gettext(
                "Dear %(name)s,\n\nYour account application has been approved. Your username is "
                "%(username)s.\nPlease set your password within %(hours)d hours with this link "
                "(it works once):\n%(link)s\n",
                name=application.applicant_name,
                username=user.username,
                hours=hours,
                link=_link(raw),
            ),
        )
        return user


class RejectApplication:
    """Return an application with a reason, mailed to the applicant."""

    def __init__(self, application: AccountApplication, reason: str):
        self.application, self.reason = application, (reason or "").strip()

    def validate(self) -> None:
        if self.application.status != ApplicationStatus.PENDING.value:
            raise AccountError(gettext("This application has already been decided."))
        if len(self.reason) < 4:
            raise AccountError(gettext("Please give the reason for rejecting the application."))

    def run(self) -> None:
        self.validate()
        application = self.application
        application.status = ApplicationStatus.REJECTED.value
        application.reject_reason = self.reason
        application.decided_at = utcnow()
        application.decided_by_id = g.user.id if has_request_context() and g.get("user") else None
        record_event("rejected", None, application.email, application=application.id)
        db.session.commit()
        send_mail(
            application.email,
            gettext("Your account application was not approved"),
            gettext(
                "Dear %(name)s,\n\nYour account application of %(date)s was not approved, for this "
                "reason:\n%(reason)s\n\nFor questions, contact your health bureau or the helpdesk.\n",
                name=application.applicant_name,
                date=to_roc(application.created_on),
                reason=self.reason,
            ),
        )


class UnlockAccount:
    """Helpdesk/admin: lift a lockout and reset the failure counter."""

    def __init__(self, user: ScopedUser):
        self.user = user

    def validate(self) -> None:
        if self.user is None:
            raise AccountError(gettext("Record not found."))

    def run(self) -> None:
        self.validate()
        clear_failures(self.user.username)
        self.user.fail_login_count = 0
        record_event("unlocked", self.user.id, self.user.username)
        db.session.commit()


class SendPasswordReset:
    """Helpdesk/admin: mail the account holder a one-time link to choose a new password."""

    def __init__(self, user: ScopedUser):
        self.user = user

    def validate(self) -> None:
        if self.user is None or not self.user.email:
            raise AccountError(gettext("This account has no e-mail address."))

    def run(self) -> None:
        self.validate()
        raw = issue_token(self.user, RESET_PASSWORD)
        record_event("reset_link_sent", self.user.id, self.user.username)
        db.session.commit()
        send_mail(
            self.user.email,
            gettext("Reset your password"),
            gettext(
                "Hello,\n\nPlease reset the password of account %(username)s within %(hours)d hours "
                "with this link (it works once):\n%(link)s\n\nIf you did not ask for this, "
                "contact the helpdesk.\n",
                hours=current_app.config["ONE_TIME_LINK_HOURS"],
                username=self.user.username,
                link=_link(raw),
            ),
        )
