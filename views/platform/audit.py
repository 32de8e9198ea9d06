"""The audit trail, read-only for the admin."""

import json

from flask_babel import lazy_gettext as _l
from markupsafe import Markup, escape

from core.data.datamodel import ScopedInterface
from core.security.permissions import AUDIT
from core.web.views import CAN_EXPORT, CAN_READ, ScopedModelRestApi, ScopedModelView
from models.platform.audit import AuditLog

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
}
ACTION_LABELS = {"insert": _l("Insert"), "update": _l("Update"), "delete": _l("Delete")}


def _pretty(value):
    if not value:
        return ""
    text = json.dumps(value, ensure_ascii=False, indent=1, sort_keys=True)
    return Markup("<pre>{}</pre>").format(escape(text))


class AuditLogView(ScopedModelView):
    """Browse every insert, update and delete; nothing here can change the trail."""

    datamodel = ScopedInterface(AuditLog)
    class_permission_name = AUDIT
    base_permissions = [f"can_{CAN_READ}", f"can_{CAN_EXPORT}"]
    list_title = show_title = _l("Audit log")
    list_columns = ["at", "username", "action", "model", "row_key", "reference", "source_ip"]
    show_columns = [
        "at", "username", "user_id", "action", "model", "row_key", "reference", "source_ip",
        "before", "after",
    ]  # fmt: skip
    search_columns = ["username", "action", "model", "row_key", "reference", "at"]
    order_columns = ["at"]
    base_order = ("at", "desc")
    label_columns = AUDIT_LABELS
    formatters_columns = {
        "action": lambda v: ACTION_LABELS.get(v, v),
        "before": _pretty,
        "after": _pretty,
    }
    export_columns = ["at", "username", "action", "model", "row_key", "reference", "source_ip"]


class AuditLogApi(ScopedModelRestApi):
    """The audit trail over REST (read-only)."""

    resource_name = "audit_log"
    datamodel = ScopedInterface(AuditLog)
    class_permission_name = AUDIT
    base_permissions = [f"can_{CAN_READ}"]
    include_route_methods = {"get", "get_list", "info"}
    list_columns = ["id", "at", "username", "action", "model", "row_key", "reference"]
    show_columns = list_columns + ["before", "after", "source_ip", "user_id"]
    search_columns = ["username", "action", "model", "row_key", "reference"]
    order_columns = ["at", "id"]
    base_order = ("id", "desc")
    label_columns = AUDIT_LABELS
