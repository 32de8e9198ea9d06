"""zh_TW labels for the resources and actions of permissions, so that the admin's role screens
never show FAB's identifiers ("can read on PersonalId", "menu access on …", view class names).

Resource labels are discovered from the registered application: a menu entry's or category's
label, a view's menu label or title; the few resources without a screen are named here."""

from __future__ import annotations

from flask import current_app
from flask_babel import gettext
from flask_babel import lazy_gettext as _l

from core.data.scope import ScopeKind

ACTION_LABELS = {
    "can_read": _l("Read"),
    "can_list": _l("Read"),
    "can_show": _l("Read"),
    "can_get": _l("Read"),
    "can_info": _l("Read"),
    "can_create": _l("Add"),
    "can_add": _l("Add"),
    "can_post": _l("Add"),
    "can_edit": _l("Edit"),
    "can_put": _l("Edit"),
    "can_delete": _l("Delete"),
    "can_export": _l("Export"),
    "can_download": _l("Download"),
    "menu_access": _l("Menu"),
    "can_review": _l("Review"),
    "can_convert": _l("Convert"),
    "can_merge": _l("Merge"),
    "can_approve": _l("Approve"),
    "can_reject": _l("Reject"),
    "can_unlock": _l("Unlock"),
    "can_send_reset": _l("Send a password-reset link"),
    "can_userinfo": _l("Own profile"),
    "userinfoedit": _l("Edit own profile"),
    "resetmypassword": _l("Change own password"),
    "resetpasswords": _l("Reset passwords"),
    "can_this_form_get": _l("Open the form"),
    "can_this_form_post": _l("Send the form"),
    "copyrole": _l("Copy role"),
    "can_chart": _l("Chart"),
    "can_invalidate": _l("Sign out everywhere"),
}

#: Resources that have no screen of their own (permission-only, FAB's form views, the API).
RESOURCE_LABELS = {
    "PersonalId": _l("Full personal IDs"),
    "OpenApi": _l("API documentation"),
    "SwaggerView": _l("API documentation"),
    "ExportJob": _l("Background exports"),
    "ResetMyPasswordView": _l("Change own password"),
    "ResetPasswordView": _l("Reset passwords"),
    "UserInfoEditView": _l("Edit own profile"),
    "AuthDBView": _l("Login"),
    "UserStatsChartView": _l("User's Statistics"),
}


def _registered_labels() -> dict[str, str]:
    """Resource and menu names of the registered application, each with its shown label
    (asked once per request: a role list labels hundreds of permissions)."""
    from core.data.versions import request_memo

    return request_memo("permission_labels", _discover_labels)


def _discover_labels() -> dict[str, str]:
    from flask_appbuilder.baseviews import BaseView

    appbuilder = current_app.appbuilder
    labels: dict[str, str] = {}
    for view in appbuilder.baseviews:
        model = getattr(getattr(view, "datamodel", None), "obj", None)
        title = getattr(model, "__label__", None)
        if getattr(view, "resource_label", None):  # a screen without a title names itself
            title = view.resource_label
        elif isinstance(view, BaseView):
            title = getattr(view, "list_title", None) or getattr(view, "form_title", None) or title
        if title and not labels.get(view.class_permission_name):
            labels[view.class_permission_name] = str(title)
    named: set[str] = set()
    for category in appbuilder.menu.get_list():
        labels[category.name] = str(category.label or gettext(category.name))
        for item in category.childs:
            if item.name == "-":
                continue
            labels[item.name] = str(item.label or gettext(item.name))
            view = getattr(item, "baseview", None)
            # The first menu entry of a resource names it (Visit is 戒菸者就醫資料, not 批次上傳).
            if view is not None and view.class_permission_name not in named:
                named.add(view.class_permission_name)
                labels[view.class_permission_name] = str(item.label or gettext(item.name))
    return labels


def resource_label(name: str) -> str:
    """The zh_TW name of a permission's resource (a view, an API, a menu entry)."""
    fixed = RESOURCE_LABELS.get(name)
    if fixed is not None:
        return str(fixed)
    return _registered_labels().get(name) or gettext(name)


def action_label(name: str) -> str:
    """The zh_TW name of a permission's action."""
    label = ACTION_LABELS.get(name)
    return str(label) if label is not None else gettext(name.removeprefix("can_").replace("_", " "))


def permission_label(permission_view) -> str:
    """'讀取：特約機構' instead of FAB's raw 'can read on Institution'."""
    return f"{action_label(permission_view.permission.name)}：{resource_label(permission_view.view_menu.name)}"


#: The stored scope kinds of an account (models/platform/user.py) as a person reads them: the
#: admin's user form offers these, and the audit log shows a scope change with them.
SCOPE_KIND_CHOICES = [
    ("", _l("No scope (sees nothing)")),
    (ScopeKind.NATIONAL, _l("National")),
    (ScopeKind.COUNTY, _l("County")),
    (ScopeKind.FACILITY, _l("Facility")),
]


def scope_kind_label(value) -> str:
    """The zh_TW name of a stored scope kind ('county' is 縣市); an unknown one shows as stored."""
    for key, label in SCOPE_KIND_CHOICES:
        if key == (value or ""):
            return str(label)
    return str(value)
