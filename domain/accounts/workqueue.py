"""The accounts domain's item on the home page's work queue: applications waiting for the
reader's decision (A13) — a bureau its county's facility staff, the admin every other."""

from __future__ import annotations

from flask import current_app, url_for
from flask_babel import gettext
from sqlalchemy import func, select

from core.extensions import db
from core.web.workqueue import QueueItem, cached_value, scope_key
from domain.accounts.grants import APPLICATION, CAN_APPROVE
from models.accounts.application import AccountApplication, ApplicationStatus

#: FAB's "equal" filter position on a text column in a list URL.
TEXT_EQUAL = 3


def pending_clause(scope):
    """Pending applications in scope."""
    return (AccountApplication.status == ApplicationStatus.PENDING.value) & AccountApplication.scope_clause(scope)


def application_items(user, scope) -> list[QueueItem]:
    """Pending applications, with the oldest's date, for whoever may approve them."""
    if not scope.has_any or not current_app.appbuilder.sm.has_access(f"can_{CAN_APPROVE}", APPLICATION):
        return []

    def compute():
        count, oldest = db.session.execute(
            select(func.count(), func.min(AccountApplication.created_on)).where(pending_clause(scope))
        ).one()
        return int(count or 0), oldest

    count, oldest = cached_value(f"accounts-pending:{scope_key(scope)}", ("account_application",), compute)
    from core.dates import to_roc

    return [QueueItem(
        gettext("Account applications waiting for approval"), count,
        url_for("AccountApplicationView.list", **{f"_flt_{TEXT_EQUAL}_status": ApplicationStatus.PENDING.value}),
        "warning" if count else "default",
        gettext("Oldest submitted %(date)s", date=to_roc(oldest)) if oldest else "",
        gettext("Accounts"),
    )]  # fmt: skip


PROVIDERS = (application_items,)
