"""Actions and permissions: the action names every resource is granted, and the exact sync of
roles to the grants they are handed (roles are data: domain/roles.py; resources are constants
of each domain's grants.py, never string literals in views)."""

from __future__ import annotations

from flask import current_app
from sqlalchemy.orm import joinedload

from core.data.versions import request_memo
from core.security.manager import bump_security_version
from core.security.roles import ADMIN

#: Permission names shared by a resource's view and API (roles are granted these).
CAN_READ, CAN_CREATE, CAN_EDIT, CAN_DELETE, CAN_EXPORT = (
    "read", "create", "edit", "delete", "export",
)  # fmt: skip
CAN_GET = "get"
READ = {CAN_READ}
READ_EXPORT = {CAN_READ, CAN_EXPORT}
ALL = {CAN_READ, CAN_CREATE, CAN_EDIT, CAN_DELETE, CAN_EXPORT}

#: A permission only (no view): reading personal IDs unmasked (core/web/views.py masks them).
PERSONAL_ID = "PersonalId"
#: FAB's /api/v1/_openapi document.
OPENAPI = "OpenApi"
#: Background exports, followed by their requester (core/export/background.py).
EXPORT_JOB = "ExportJob"
#: The audit trail (Admin only).
AUDIT = "AuditLog"
#: Home-page announcements (Admin only; every user reads them on the home page).
ANNOUNCEMENT = "Announcement"
#: Holders of this permission see personal IDs in full; everyone else sees A12****789.
FULL_ID_PERMISSION = ("can_read", PERSONAL_ID)
#: Resources that exist as permissions although no view declares them.
PERMISSION_ONLY = {PERSONAL_ID: {"can_read"}}


def can_see_full_ids() -> bool:
    """Whether the current user sees personal IDs in full (asked once per request: a list
    page would otherwise check the permission for every masked cell)."""
    return request_memo(
        "full_ids", lambda: current_app.appbuilder.sm.has_access(*FULL_ID_PERMISSION)
    )


#: Self-service pages every signed-in role may use (its own profile and password).
SELF_SERVICE = [
    ("can_userinfo", "{user_view}"),
    ("resetmypassword", "{user_view}"),
    ("userinfoedit", "{user_view}"),
    ("can_this_form_get", "ResetMyPasswordView"),
    ("can_this_form_post", "ResetMyPasswordView"),
    ("can_this_form_get", "UserInfoEditView"),
    ("can_this_form_post", "UserInfoEditView"),
]


def self_service_permissions(appbuilder) -> set[tuple[str, str]]:
    """SELF_SERVICE with the name of the user view actually registered."""
    view = appbuilder.sm.userdbmodelview
    name = view.__name__ if isinstance(view, type) else type(view).__name__
    return {(p, v.format(user_view=name)) for p, v in SELF_SERVICE}


def _entry_action(view) -> str:
    """The action a menu entry's page requires (its default view's permission, e.g. a view
    whose index is mapped to "create" needs can_create, not can_read)."""
    default = getattr(view, "default_view", "list") or "list"
    mapped = (getattr(view, "method_permission_name", None) or {}).get(default, default)
    return mapped.removeprefix("can_")


def menus_by_resource(appbuilder) -> dict[str, dict[str, set[str]]]:
    """Per resource: the menu entries (and their categories) that open a view of it, by the
    action the entry's page requires."""
    result: dict[str, dict[str, set[str]]] = {}
    for category in appbuilder.menu.get_list():
        items = category.childs or [category]
        for item in items:
            view = getattr(item, "baseview", None)
            resource = getattr(view, "class_permission_name", None)
            if resource:
                names = result.setdefault(resource, {}).setdefault(_entry_action(view), set())
                names.add(item.name)
                if item is not category:
                    names.add(category.name)
    return result


def sync_roles(appbuilder, grants: dict[str, dict[str, set[str]]]) -> dict[str, int]:
    """Create every permission, then set each role's permissions to exactly `grants`
    (domain/roles.py ROLE_GRANTS: every domain's grants, merged); Admin gets every one."""
    sm = appbuilder.sm
    session = sm.session
    # FAB_CREATE_DB is off, so nothing else creates the two built-in roles.
    for name in (ADMIN, sm.auth_role_public):
        if sm.find_role(name) is None:
            sm.add_role(name)
    _sync_permissions(appbuilder)
    menus = menus_by_resource(appbuilder)

    # Every permission at once: one lookup query per grant was 775 queries, 4 of the 9 s
    # that `flask init` spent syncing roles.
    model = sm.permissionview_model
    known = {
        (p.permission.name, p.view_menu.name): p
        for p in session.query(model).options(joinedload(model.permission), joinedload(model.view_menu))
        if p.permission is not None and p.view_menu is not None
    }

    def pv(permission, view):
        found = known.get((permission, view))
        if found is None:
            raise LookupError(f"no permission {permission} on {view}: is the view registered?")
        return found

    summary = {}
    for role_name, role_grants in grants.items():
        role = sm.find_role(role_name) or sm.add_role(role_name)
        desired = {pv(p, v) for p, v in self_service_permissions(appbuilder)}
        for resource, actions in role_grants.items():
            for action in actions:
                desired.add(pv(f"can_{action}", resource))
            # A menu entry only where its page opens (批次上傳 needs create, not read).
            for action, entries in menus.get(resource, {}).items():
                if action in actions or (action == "list" and CAN_READ in actions):
                    for menu in entries:
                        desired.add(pv("menu_access", menu))
        role.permissions = sorted(desired, key=lambda p: p.id)
        summary[role_name] = len(desired)
    admin = sm.find_role(ADMIN) or sm.add_role(ADMIN)
    admin.permissions = session.query(sm.permissionview_model).all()
    summary[ADMIN] = len(admin.permissions)
    public = sm.find_role(sm.auth_role_public) or sm.add_role(sm.auth_role_public)
    public.permissions = []
    session.commit()
    bump_security_version()
    return summary


def _sync_permissions(appbuilder) -> None:
    """Create each resource's permissions: the union over every view and API sharing it.

    FAB's own add_permissions() prunes a resource down to the last view's list, so a view
    and an API sharing a resource would delete each other's permissions.
    """
    from flask_appbuilder.baseviews import BaseView

    sm = appbuilder.sm
    session = sm.session
    # Created here in one transaction: FAB's add_view_menu / add_permission_view_menu commit
    # once per call, 250 commits (fsyncs) for a fresh database's `flask init`.
    permissions_by_name = {p.name: p for p in session.query(sm.permission_model)}
    view_menus = {v.name: v for v in session.query(sm.viewmenu_model)}
    existing = {
        (pv.permission.name, pv.view_menu.name)
        for pv in session.query(sm.permissionview_model)
        if pv.permission is not None and pv.view_menu is not None
    }

    def view_menu_of(name):
        found = view_menus.get(name)
        if found is None:
            found = view_menus[name] = sm.viewmenu_model(name=name)
            session.add(found)
        return found

    def ensure(permission, resource):
        if (permission, resource) in existing:
            return
        found = permissions_by_name.get(permission)
        if found is None:
            found = permissions_by_name[permission] = sm.permission_model(name=permission)
            session.add(found)
        pv = sm.permissionview_model()
        pv.permission, pv.view_menu = found, view_menu_of(resource)
        session.add(pv)
        existing.add((permission, resource))

    wanted: dict[str, set[str]] = {name: set(perms) for name, perms in PERMISSION_ONLY.items()}
    for view in appbuilder.baseviews:
        if isinstance(view, BaseView) or hasattr(view, "base_permissions"):
            name = view.class_permission_name
            wanted.setdefault(name, set()).update(view.base_permissions or [])
    for resource, permissions in wanted.items():
        view_menu = view_menu_of(resource)
        for permission in sorted(permissions):
            ensure(permission, resource)
        session.flush()
        for stale in sm.find_permissions_view_menu(view_menu):
            if stale.permission is not None and stale.permission.name not in permissions:
                for role in sm.get_all_roles():
                    if stale in role.permissions:
                        role.permissions.remove(stale)
                sm.session.delete(stale)
    menus = set()
    for category in appbuilder.menu.get_list():
        ensure("menu_access", category.name)
        menus.add(category.name)
        for item in category.childs:
            if item.name != "-":
                ensure("menu_access", item.name)
                menus.add(item.name)
    session.flush()
    # A screen no longer registered (FAB's raw permission lists, its user-statistics chart)
    # leaves no permission behind: the role screens would list it under its class name.
    for view_menu in sm.get_all_view_menu():
        if view_menu.name in wanted or view_menu.name in menus:
            continue
        for stale in sm.find_permissions_view_menu(view_menu):
            for role in sm.get_all_roles():
                if stale in role.permissions:
                    role.permissions.remove(stale)
            sm.session.delete(stale)
    sm.session.commit()
