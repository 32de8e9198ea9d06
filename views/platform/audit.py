"""The audit trail, read-only for the admin, in words a person reads.

Model and field names come from core/data/labels.py (the models' __label__, the views'
label_columns, the field rules' labels): no second list is kept here. A change shows as a
table of the changed fields, related rows by name, personal IDs masked for a viewer who sees
them masked, dates in ROC and times in Asia/Taipei.
"""

from __future__ import annotations

import datetime as dt

from flask import current_app
from flask_babel import gettext
from flask_babel import lazy_gettext as _l
from markupsafe import Markup
from sqlalchemy import Enum as SAEnum
from sqlalchemy import select
from wtforms import SelectField

from core.data.datamodel import ScopedInterface
from core.data.filters import is_personal_id, sees_ids_masked
from core.data.labels import column_label, foreign_key_target, mapped_models, model_label
from core.data.rules import enum_label, field_rules
from core.data.scope import current_scope
from core.dates import to_roc
from core.extensions import db
from core.security.labels import scope_kind_label
from core.security.permissions import AUDIT
from core.security.roles import role_label
from core.validators import mask_personal_id
from core.web.views import CAN_EXPORT, CAN_READ, ScopedModelRestApi, ScopedModelView
from models.platform.audit import AuditLog
from models.platform.user import ScopedUser

AUDIT_LABELS = {
    "at": _l("Time"),
    "user_id": _l("User ID"),
    "username": _l("User"),
    "action": _l("Action"),
    "model": _l("Data table"),
    "row_key": _l("Record key"),
    "before": _l("Before"),
    "after": _l("After"),
    "source_ip": _l("Source IP"),
    "reference": _l("Reference"),
    "institution": _l("Institution"),
    "institution_id": _l("Institution"),
    "changes": _l("Changed fields"),
}
ACTION_LABELS = {
    "insert": _l("Insert"), "update": _l("Update"), "delete": _l("Delete"),
    "login": _l("Login"), "login_failed": _l("Failed login"), "login_refused": _l("Login refused"),
    "locked": _l("Account locked"), "unlocked": _l("Account unlocked"),
    "approved": _l("Application approved"), "rejected": _l("Application rejected"),
    "password_set": _l("Password set"), "password_reset": _l("Password reset"),
    "reset_link_sent": _l("Password reset link sent"),
    "role_change": _l("Role change"), "scope_change": _l("Data scope change"),
}  # fmt: skip
#: Keys of an account entry that are no column of the user table.
ACCOUNT_KEYS = {"account": _l("User account"), "roles": _l("Roles"), "scope_kind": _l("Data scope"),
                "scope_county_id": _l("County"), "scope_institutions": _l("Institutions")}  # fmt: skip


#: Stored values of an account entry and the function that names each for a person
#: ('Bureau' is 衛生局, 'county' is 縣市): the names stay stable, the screens translate them.
ACCOUNT_VALUE_LABELS = {"roles": role_label, "scope_kind": scope_kind_label}


def _model_class(name: str):
    return ScopedUser if name == "Account" else mapped_models().get(name)


def _label(model, key: str) -> str:
    if model is ScopedUser and key in ACCOUNT_KEYS:
        return str(ACCOUNT_KEYS[key])
    return column_label(model, key) if model is not None else key


def _related_name(target, value) -> str:
    """A related row by name, if the viewer may read it; else its key."""
    if not isinstance(value, int) or isinstance(value, bool):
        return str(value)
    stmt = select(target).where(list(target.__table__.primary_key.columns)[0] == value)
    if hasattr(target, "scope_clause"):
        stmt = stmt.where(target.scope_clause(current_scope()))
    row = db.session.scalar(stmt)
    if row is None:
        return gettext("#%(key)s (not found)", key=value)
    if isinstance(row, ScopedUser):
        return " ".join(p for p in (row.first_name, row.last_name) if p) or row.username
    return str(getattr(row, "name", None) or getattr(row, "title", None) or row)


def _foreign_target(model, key: str):
    column = model.__table__.columns.get(key)
    return foreign_key_target(column) if column is not None else None


def display_value(model, key: str, value) -> str:
    """One stored value as the screens show it (name, ROC date, Taipei time, label, mask)."""
    if value is None or value == "":
        return ""
    if isinstance(value, bool):
        return gettext("Yes") if value else gettext("No")
    if model is not None and is_personal_id(model, key) and sees_ids_masked():
        return mask_personal_id(str(value))
    if model is ScopedUser and key in ACCOUNT_VALUE_LABELS:
        # An account entry stores role names and the scope kind as the code keeps them.
        label = ACCOUNT_VALUE_LABELS[key]
        return "、".join(label(v) for v in value) if isinstance(value, list) else label(value)
    if isinstance(value, list):
        return "、".join(str(v) for v in value)
    if model is None:
        return str(value)
    target = _foreign_target(model, key)
    if target is not None:
        return _related_name(target, value)
    column = model.__table__.columns.get(key)
    shown = _view_formatted(model, key, value, column)
    if shown is not None:
        return shown
    rule = field_rules(model).get(key)
    if rule is not None and rule.choices is not None:
        return enum_label(rule.choices, value)
    if column is not None and column.info.get("enum") is not None:
        return enum_label(column.info["enum"], value)
    if column is not None and isinstance(column.type, SAEnum) and column.type.enum_class is not None:
        return enum_label(column.type.enum_class, value)
    if isinstance(value, str) and column is not None:
        python_type = _python_type(column)
        try:
            if python_type is dt.datetime:
                return to_roc(dt.datetime.fromisoformat(value))
            if python_type is dt.date:
                return to_roc(dt.date.fromisoformat(value))
        except ValueError:
            return value
    return str(value)


def _view_formatted(model, key: str, value, column):
    """The value as the list of its own model shows it (a status by its label), through the
    formatter a registered view declares for the column; dates and keys are handled apart."""
    if column is None or _python_type(column) in (dt.date, dt.datetime):
        return None
    for view in current_app.appbuilder.baseviews:
        if getattr(getattr(view, "datamodel", None), "obj", None) is not model:
            continue
        formatter = (getattr(view, "formatters_columns", None) or {}).get(key)
        if formatter is None:
            continue
        try:
            shown = formatter(value)
        except Exception:  # a formatter written for the row's object, not its stored value
            continue
        if str(shown) != str(value):  # not one that only blanks a None
            return str(shown)
    return None


def _python_type(column):
    try:
        return column.type.python_type
    except NotImplementedError:
        return None


def change_rows(entry: AuditLog) -> list[tuple[str, str, str]]:
    """(field, before, after) of an entry: the changed fields of an update, every filled
    field of an insert or delete."""
    model = _model_class(entry.model)
    before, after = entry.before or {}, entry.after or {}
    # The row's own key is the entry's 資料鍵值 already.
    keys = [k for k in dict.fromkeys([*after, *before]) if k != "id"]
    rows = []
    for key in keys:
        old, new = before.get(key), after.get(key)
        if old in (None, "") and new in (None, ""):
            continue
        rows.append((_label(model, key), display_value(model, key, old), display_value(model, key, new)))
    return rows


def _changes_table(entry) -> Markup:
    if not isinstance(entry, AuditLog):
        return Markup("")
    rows = change_rows(entry)
    if not rows:
        return Markup("")
    head = Markup("<tr><th>{}</th><th>{}</th><th>{}</th></tr>").format(
        gettext("Field"), gettext("Before"), gettext("After")
    )
    body = Markup("").join(
        Markup('<tr><th scope="row">{}</th><td>{}</td><td>{}</td></tr>').format(*row)
        for row in rows
    )
    return Markup('<table class="table table-condensed table-bordered audit-changes">'
                  "<thead>{}</thead><tbody>{}</tbody></table>").format(head, body)  # fmt: skip


def model_choices() -> list[tuple[str, str]]:
    """The models the trail names, by their zh_TW names (for the search form's dropdown)."""
    names = {name: model_label(name) for name, cls in mapped_models().items()
             if getattr(cls, "__audited__", False)}  # fmt: skip
    names["Account"] = model_label("Account")
    return sorted(names.items(), key=lambda item: item[1])


class ModelSelectField(SelectField):
    """A dropdown of model names by zh_TW name; the stored class name is what is searched."""

    def __init__(self, label=None, validators=None, **kwargs):
        kwargs.setdefault("render_kw", {"class": "form-control"})  # styled as FAB's fields
        super().__init__(label, validators, choices=model_choices, **kwargs)

    def pre_validate(self, form):
        """Any value searches (an unknown one finds nothing): never a form error."""


class ActionSelectField(SelectField):
    """A dropdown of the actions the trail records, by zh_TW name."""

    def __init__(self, label=None, validators=None, **kwargs):
        choices = lambda: [(k, str(v)) for k, v in ACTION_LABELS.items()]  # noqa: E731
        kwargs.setdefault("render_kw", {"class": "form-control"})
        super().__init__(label, validators, choices=choices, **kwargs)

    def pre_validate(self, form):
        """Any value searches (an unknown one finds nothing): never a form error."""


class AuditLogView(ScopedModelView):
    """Browse every insert, update and delete; nothing here can change the trail."""

    datamodel = ScopedInterface(AuditLog)
    class_permission_name = AUDIT
    base_permissions = [f"can_{CAN_READ}", f"can_{CAN_EXPORT}"]
    list_title = show_title = _l("Audit log")
    list_columns = ["at", "username", "action", "model", "row_key", "institution", "reference"]
    show_columns = [
        "at", "username", "action", "model", "row_key", "institution", "reference", "source_ip",
        "changes",
    ]  # fmt: skip
    search_columns = ["username", "institution", "model", "action", "row_key", "reference", "at"]
    search_form_extra_fields = {
        "model": ModelSelectField(_l("Data table")),
        "action": ActionSelectField(_l("Action")),
    }
    order_columns = ["at"]
    base_order = ("at", "desc")
    label_columns = AUDIT_LABELS
    formatters_columns = {
        "username": lambda v: v or gettext("(system)"),
        "action": lambda v: ACTION_LABELS.get(v, v),
        "model": model_label,
        "changes": _changes_table,
    }
    export_columns = ["at", "username", "action", "model", "row_key", "institution.name",
                      "reference", "source_ip"]  # fmt: skip
    export_labels = {"institution.name": _l("Institution")}


class AuditLogApi(ScopedModelRestApi):
    """The audit trail over REST (read-only)."""

    resource_name = "audit_log"
    datamodel = ScopedInterface(AuditLog)
    class_permission_name = AUDIT
    base_permissions = [f"can_{CAN_READ}"]
    include_route_methods = {"get", "get_list", "info"}
    list_columns = ["id", "at", "username", "action", "model", "row_key", "reference"]
    show_columns = list_columns + ["before", "after", "source_ip", "user_id", "institution_id"]
    search_columns = ["username", "action", "model", "row_key", "reference", "institution_id"]
    order_columns = ["at", "id"]
    base_order = ("id", "desc")
    label_columns = AUDIT_LABELS
