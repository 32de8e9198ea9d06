"""The addiction programme's items on the home page's work queue (A14): staff short of this
year's addiction-training hours and licences ending within LICENCE_EXPIRY_WARNING_DAYS, for
treatment institutions and bureaus; both link to the reminders report, which lists exactly
those staff."""

from __future__ import annotations

from flask import current_app, url_for
from flask_babel import gettext

from core import clock
from core.web.workqueue import QueueItem, cached_value, scope_key
from domain.addiction.grants import ORDER_MAPPING, STAFF_SHORTFALL
from domain.addiction.staff import shortfall_rows


def staff_items(user, scope) -> list[QueueItem]:
    """Staff short of training hours and licences ending soon, in the reader's scope."""
    # National readers (the Ministry) get the report from the menu: a nationwide list
    # of every staff member is no one's task for today.
    if scope.national or not scope.has_any:
        return []
    if not current_app.appbuilder.sm.has_access("can_read", STAFF_SHORTFALL):
        return []
    today = clock.today()

    def compute():
        rows = shortfall_rows(scope, today)
        return sum(r.hours_short for r in rows), sum(r.licence_ending for r in rows)

    short, ending = cached_value(
        f"addiction-staff:{scope_key(scope)}:{today}",
        ("service_assignment", "staff_licence", "training", "institution", "practitioner"),
        compute,
    )
    url = url_for("StaffShortfallView.index")
    days = int(current_app.config["LICENCE_EXPIRY_WARNING_DAYS"])
    group = gettext("Addiction case management")
    return [
        QueueItem(gettext("Staff short of this year's training hours"), short, url,
                  "warning" if short else "default",
                  gettext("Addiction-training hours below the profession's requirement."), group),
        QueueItem(gettext("Licences ending within %(days)d days", days=days), ending, url,
                  "danger" if ending else "default",
                  gettext("Renew the licence, then record the new one."), group),
    ]  # fmt: skip


def unmapped_order_items(user, scope) -> list[QueueItem]:
    """A6, Q9: orders waiting for a code mapping at the reader's institutions."""
    if scope.national or not scope.has_any or scope.kind != "facility":
        return []
    if not current_app.appbuilder.sm.has_access("can_read", ORDER_MAPPING):
        return []
    from domain.addiction.mapping import unmapped_count

    waiting = cached_value(f"addiction-unmapped:{scope_key(scope)}", ("his_order", "order_code_mapping"),
                           lambda: unmapped_count(scope))  # fmt: skip
    return [QueueItem(gettext("HIS orders waiting for a code mapping"), waiting, url_for("UnmappedCodesView.index"),
                      "warning" if waiting else "default",
                      gettext("Map their order codes to subsidy items: they are claimed only once mapped."),
                      gettext("Addiction case management"))]  # fmt: skip


PROVIDERS = (staff_items, unmapped_order_items)
