"""The other programme's pages do not exist for a user (A1: programme separation).

A cessation clinic that types an addiction URL, or an addiction clinic a cessation one,
is answered 404 — the same as a row outside its scope — not 403, which would tell it the
page is there. A resource belongs to a programme when, Admin aside, only that programme's
roles hold any permission on it; the holders are read from the roles themselves (data,
synced by `flask init`), once per security version.
"""

from __future__ import annotations

from flask import current_app, request

from core.security.manager import security_version
from core.security.roles import ADDICTION_ROLES, ADMIN, CESSATION_ROLES

_PROGRAMMES = (ADDICTION_ROLES, CESSATION_ROLES)


def _holders() -> dict[str, frozenset[str]]:
    """Resource name -> the programme roles holding any permission on it (cached)."""
    cache = current_app.extensions.setdefault("programme_holders", {})
    version = security_version()
    holders = cache.get(version)
    if holders is None:
        collected: dict[str, set[str]] = {}
        for role in current_app.appbuilder.sm.get_all_roles():
            if role.name == ADMIN:
                continue
            for pv in role.permissions:
                collected.setdefault(pv.view_menu.name, set()).add(role.name)
        holders = {name: frozenset(roles) for name, roles in collected.items()}
        cache.clear()
        cache[version] = holders
    return holders


def outside_programme(resource: str | None, role_names) -> bool:
    """True if the resource belongs to one programme and none of these roles does."""
    if not resource:
        return False
    held = _holders().get(resource, frozenset())
    roles = set(role_names)
    for programme in _PROGRAMMES:
        if held and held <= programme:
            return not roles & programme
    return False


def request_resource() -> str | None:
    """The permission resource of the view or API answering this request."""
    endpoint = request.endpoint or ""
    class_name = endpoint.split(".", 1)[0]
    appbuilder = current_app.appbuilder
    names = current_app.extensions.get("resource_by_endpoint")
    if names is None:
        names = {type(v).__name__: getattr(v, "class_permission_name", None) for v in appbuilder.baseviews}
        current_app.extensions["resource_by_endpoint"] = names
    return names.get(class_name)


def hides_request() -> bool:
    """The current request is for a page of a programme the signed-in user is not in."""
    user = current_app.appbuilder.sm.current_user  # a session's or a bearer token's
    if not getattr(user, "is_authenticated", False):
        return False
    return outside_programme(request_resource(), [r.name for r in user.roles])
