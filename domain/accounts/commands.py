"""The commands behind online applications and the helpdesk (rule A13).

Each is a core.commands.Command: `validate()` raises AccountError with a zh_TW message and
changes nothing, `run()` does the work in one transaction, and the mails go out only after
it is committed.
"""

from __future__ import annotations

import secrets

from flask import current_app
from flask_babel import gettext

from core.actor import current_actor
from core.commands import Command
from core.data.scope import ScopeKind
from core.dates import to_roc, utcnow
from core.extensions import db
from core.mail import send_mail
from core.security.passwords import check_password
from core.security.roles import (
    ADDICTION_BUREAU,
    ADDICTION_MINISTRY,
    BUREAU,
    FACILITY,
    MINISTRY,
    OFFICE,
    TREATMENT,
)
from core.security.sessions import (
    RESET_PASSWORD,
    SET_PASSWORD,
    AccountError,
    clear_failures,
    end_all_sessions,
    find_token,
    issue_token,
    password_link,
    record_event,
)
from domain.registry.persons import register_person
from models.accounts.application import AccountApplication, ApplicationStatus, RequestedRole
from models.platform.user import ScopedUser
from models.registry.practitioner import Practitioner, Profession

#: Which role an approved application gets.
ROLE_FOR_REQUEST = {
    RequestedRole.FACILITY.value: FACILITY,
    RequestedRole.BUREAU.value: BUREAU,
    RequestedRole.OFFICE.value: OFFICE,
    RequestedRole.MINISTRY.value: MINISTRY,
    RequestedRole.TREATMENT.value: TREATMENT,
    RequestedRole.ADDICTION_BUREAU.value: ADDICTION_BUREAU,
    RequestedRole.ADDICTION_MINISTRY.value: ADDICTION_MINISTRY,
}
#: Requests scoped to one institution, and to one county.
INSTITUTION_REQUESTS = {RequestedRole.FACILITY.value, RequestedRole.TREATMENT.value}
COUNTY_REQUESTS = {RequestedRole.BUREAU.value, RequestedRole.ADDICTION_BUREAU.value}


class SetPassword(Command):
    """Set a password through a one-time link; activates a newly approved account."""

    def __init__(self, raw_token: str, password: str):
        self.raw_token, self.password = raw_token, password

    def validate(self) -> None:
        self.token = find_token(self.raw_token)
        self.user = db.session.get(ScopedUser, self.token.user_id)
        check_password(self.password, self.user.username)

    def execute(self) -> ScopedUser:
        sm = current_app.appbuilder.sm
        sm.reset_password(self.user.id, self.password)
        self.user.active = True
        self.user.fail_login_count = 0
        self.token.used_at = utcnow()
        clear_failures(self.user.username)
        end_all_sessions(self.user.id)
        action = "password_set" if self.token.purpose == SET_PASSWORD else "password_reset"
        record_event(action, self.user.id, self.user.username)
        return self.user


class ApproveApplication(Command):
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

    def execute(self) -> ScopedUser:
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
        if application.requested_role in INSTITUTION_REQUESTS:
            user.scope_kind = ScopeKind.FACILITY
            user.scope_institutions = [application.institution]
        elif application.requested_role in COUNTY_REQUESTS:
            user.scope_kind = ScopeKind.COUNTY
            user.scope_county = application.county
        else:
            user.scope_kind = ScopeKind.NATIONAL
        if application.requested_role == RequestedRole.TREATMENT.value:
            user.practitioner_id = staff_profile(application).id
        application.status = ApplicationStatus.APPROVED.value
        application.decided_at = utcnow()
        application.decided_by_id = current_actor().id
        application.user_id = user.id
        self.user, self.raw_token = user, issue_token(user, SET_PASSWORD)
        record_event("approved", user.id, user.username, application=application.id)
        return user

    def after_commit(self) -> None:
        application, user = self.application, self.user
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
                link=password_link(self.raw_token),
            ),
        )


def staff_profile(application: AccountApplication) -> Practitioner:
    """The staff profile of an approved treatment-staff application (A1, A14): the practitioner
    of the applicant's national ID and name, found or registered (domain/registry/persons.py),
    linked to the applicant's institution."""
    professions = [p for p in (application.professions or "").split(",") if p]
    registry_professions = {p.value for p in Profession}
    profession = next((p for p in professions if p in registry_professions), Profession.OTHER.value)
    return register_person(
        Practitioner, application.national_id, {"name": application.applicant_name.strip()},
        [application.institution_id], source="application", extra={"profession": profession},
    )  # fmt: skip


class RejectApplication(Command):
    """Return an application with a reason, mailed to the applicant."""

    def __init__(self, application: AccountApplication, reason: str):
        self.application, self.reason = application, (reason or "").strip()

    def validate(self) -> None:
        if self.application.status != ApplicationStatus.PENDING.value:
            raise AccountError(gettext("This application has already been decided."))
        if len(self.reason) < 4:
            raise AccountError(gettext("Please give the reason for rejecting the application."))

    def execute(self) -> None:
        application = self.application
        application.status = ApplicationStatus.REJECTED.value
        application.reject_reason = self.reason
        application.decided_at = utcnow()
        application.decided_by_id = current_actor().id
        record_event("rejected", None, application.email, application=application.id)

    def after_commit(self) -> None:
        application = self.application
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


class UnlockAccount(Command):
    """Helpdesk/admin: lift a lockout and reset the failure counter."""

    def __init__(self, user: ScopedUser):
        self.user = user

    def validate(self) -> None:
        if self.user is None:
            raise AccountError(gettext("Record not found."))

    def execute(self) -> None:
        clear_failures(self.user.username)
        self.user.fail_login_count = 0
        record_event("unlocked", self.user.id, self.user.username)


class SendPasswordReset(Command):
    """Helpdesk/admin: mail the account holder a one-time link to choose a new password."""

    def __init__(self, user: ScopedUser):
        self.user = user

    def validate(self) -> None:
        if self.user is None or not self.user.email:
            raise AccountError(gettext("This account has no e-mail address."))

    def execute(self) -> None:
        self.raw_token = issue_token(self.user, RESET_PASSWORD)
        record_event("reset_link_sent", self.user.id, self.user.username)

    def after_commit(self) -> None:
        send_mail(
            self.user.email,
            gettext("Reset your password"),
            gettext(
                "Hello,\n\nPlease reset the password of account %(username)s within %(hours)d hours "
                "with this link (it works once):\n%(link)s\n\nIf you did not ask for this, "
                "contact the helpdesk.\n",
                hours=current_app.config["ONE_TIME_LINK_HOURS"],
                username=self.user.username,
                link=password_link(self.raw_token),
            ),
        )
