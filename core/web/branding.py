"""The site's name as each user reads it: the programme (or programmes) their roles reach.

A clinic psychologist of the addiction programme should not work in a system titled
「戒菸服務管理系統」, nor a cessation clinic nurse in the addiction one; a user of both
(a county bureau, the Ministry, admin and helpdesk) and the login page read both names.
"""

from __future__ import annotations

from flask import current_app, g
from flask_appbuilder import AppBuilder

from core.security.roles import ADDICTION_ROLES, CESSATION_ROLES


def programme_names(role_names) -> tuple[str, ...]:
    """Config keys of the names a user with these roles reads (one programme, or both)."""
    names = set(role_names)
    addiction, cessation = bool(names & ADDICTION_ROLES), bool(names & CESSATION_ROLES)
    if addiction and not cessation and names <= ADDICTION_ROLES:
        return ("ADDICTION_APP_NAME",)
    if cessation and not addiction and names <= CESSATION_ROLES:
        return ("APP_NAME",)
    return ("APP_NAME", "ADDICTION_APP_NAME")


def site_name() -> str:
    """The current user's site name (both programmes' for anyone not logged in)."""
    user = getattr(g, "user", None)
    roles = [r.name for r in user.roles] if getattr(user, "is_authenticated", False) else []
    config = current_app.config
    keys = programme_names(roles) if roles else ("APP_NAME", "ADDICTION_APP_NAME")
    return config.get("APP_NAME_JOINER", "・").join(config.get(k) or config["APP_NAME"] for k in keys)


class BrandedAppBuilder(AppBuilder):
    """FAB's AppBuilder whose `app_name` (navbar brand, page titles) is the user's site name."""

    @property
    def app_name(self) -> str:
        return site_name()
