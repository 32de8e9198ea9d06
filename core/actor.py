"""Who is acting now: the signed-in user of this request (browser, API token or a background
job logged in as its requester), else the user a CLI command names, else nobody.

One definition for the audit trail, the scope, security events and workflow history: before
it there were three, and they disagreed on whether an anonymous request has a user.
"""

from __future__ import annotations

from dataclasses import dataclass

from flask import current_app, g, has_app_context, has_request_context, request


@dataclass(frozen=True)
class Actor:
    """The acting user's id and name (None when anonymous) and the request's address."""

    id: int | None = None
    username: str | None = None
    ip: str | None = None


def current_actor() -> Actor:
    """The actor of the current context; never raises, anonymous is Actor()."""
    if not has_request_context():
        return Actor(username=g.get("audit_cli_user")) if has_app_context() else Actor()
    try:
        user = current_app.appbuilder.sm.current_user
    except AttributeError:  # a context without FAB's g.user (nested test context)
        user = None
    ip = request.remote_addr
    if user is None or not getattr(user, "is_authenticated", False):
        return Actor(ip=ip)
    # API-key logins load FAB's base User class (trap 2): only its id and name are read here.
    return Actor(getattr(user, "id", None), getattr(user, "username", None), ip)
