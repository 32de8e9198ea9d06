"""公告: the admin writes announcements; every user reads them on the home page in their period."""

from flask_babel import lazy_gettext as _l
from wtforms.validators import DataRequired, Length

from core.data.datamodel import ScopedInterface
from core.security.permissions import ANNOUNCEMENT
from core.web.views import CAN_CREATE, CAN_DELETE, CAN_EDIT, CAN_READ, ScopedModelView
from models.platform.announcement import Announcement

ANNOUNCEMENT_LABELS = {
    "title": _l("Announcement title"),
    "body": _l("Announcement text"),
    "start_date": _l("Shown from"),
    "end_date": _l("Shown until"),
    "changed_on": _l("Last changed"),
}


class AnnouncementView(ScopedModelView):
    """The admin's list of announcements; every change is in the audit trail."""

    datamodel = ScopedInterface(Announcement)
    class_permission_name = ANNOUNCEMENT
    route_base = "/announcements"
    base_permissions = [f"can_{p}" for p in (CAN_READ, CAN_CREATE, CAN_EDIT, CAN_DELETE)]
    list_title = show_title = _l("Announcements")
    add_title = _l("New announcement")
    edit_title = _l("Edit announcement")
    list_columns = ["title", "start_date", "end_date", "changed_on"]
    show_columns = ["title", "body", "start_date", "end_date", "changed_on"]
    add_columns = edit_columns = ["title", "body", "start_date", "end_date"]
    search_columns = ["title", "start_date", "end_date"]
    order_columns = ["title", "start_date", "end_date"]
    base_order = ("start_date", "desc")
    label_columns = ANNOUNCEMENT_LABELS
    validators_columns = {"body": [DataRequired(), Length(max=2000)]}
    description_columns = {
        "end_date": _l("Leave empty to show the announcement until it is removed."),
    }
