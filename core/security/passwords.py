"""The password policy, applied on every path that sets a password (rule A13's accounts).

At least 12 characters, at least three of upper case / lower case / digit / symbol, not
containing the username, and not the demo password. Demo users are exempt only while
DEMO_MODE is on, and only when the demo seed itself sets their password.
"""

from __future__ import annotations

import contextlib
from contextvars import ContextVar

from flask import current_app, g, has_request_context, request
from flask_appbuilder.exceptions import PasswordComplexityValidationError
from flask_babel import gettext

from core.errors import UserError

MIN_LENGTH = 12
_demo_seeding: ContextVar[bool] = ContextVar("demo_seeding", default=False)


@contextlib.contextmanager
def demo_passwords_allowed():
    """While seeding demo users with DEMO_MODE on, the demo password is accepted."""
    token = _demo_seeding.set(bool(current_app.config.get("DEMO_MODE")))
    try:
        yield
    finally:
        _demo_seeding.reset(token)


class PasswordPolicyError(UserError, PasswordComplexityValidationError):
    """The password breaks the policy; str() is a zh_TW message for the user."""


def policy_problems(password: str, username: str | None = None) -> list[str]:
    """Every rule the password breaks, as user-facing messages (empty when it is fine)."""
    password = password or ""
    problems = []
    if len(password) < MIN_LENGTH:
        problems.append(gettext("at least %(n)d characters", n=MIN_LENGTH))
    classes = sum(
        (
            any(c.isupper() for c in password),
            any(c.islower() for c in password),
            any(c.isdigit() for c in password),
            any(not c.isalnum() for c in password),
        )
    )
    if classes < 3:
        problems.append(gettext("at least three of: upper case, lower case, digits, symbols"))
    if username and len(username) >= 3 and username.lower() in password.lower():
        problems.append(gettext("must not contain the username"))
    demo = current_app.config.get("DEMO_PASSWORD") if current_app else None
    if demo and password == demo:
        problems.append(gettext("must not be the demo password"))
    return problems


def check_password(password: str, username: str | None = None) -> None:
    """Raise PasswordPolicyError listing what the password lacks."""
    if _demo_seeding.get() and password == current_app.config.get("DEMO_PASSWORD"):
        return
    problems = policy_problems(password, username)
    if problems:
        raise PasswordPolicyError(
            gettext("The password does not meet the policy: %(rules)s.", rules="；".join(problems))
        )


def _username_in_context() -> str | None:
    """The account whose password a form is setting, wherever FAB keeps it."""
    if not has_request_context():
        return None
    if g.get("password_target_username"):
        return g.password_target_username
    if request.form.get("username"):
        return request.form["username"]
    target = request.args.get("pk")
    if target and target.isdigit():
        user = current_app.appbuilder.sm.get_user_by_id(int(target))
        return getattr(user, "username", None)
    user = g.get("user")
    return getattr(user, "username", None) if getattr(user, "is_authenticated", False) else None


def fab_complexity_validator(password: str) -> None:
    """FAB_PASSWORD_COMPLEXITY_VALIDATOR: FAB's own password forms call this."""
    check_password(password, _username_in_context())


class PasswordPolicy:
    """WTForms validator for our own forms (set-password link, reset link)."""

    def __init__(self, username_field: str | None = None):
        self.username_field = username_field

    def __call__(self, form, field):
        from wtforms.validators import ValidationError

        username = None
        if self.username_field and hasattr(form, self.username_field):
            username = getattr(form, self.username_field).data
        try:
            check_password(field.data, username or _username_in_context())
        except PasswordPolicyError as exc:
            raise ValidationError(str(exc)) from None
