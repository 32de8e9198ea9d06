"""The cessation programme's items on the home page's work queue (core/web/workqueue.py).

A facility sees the month whose entry deadline is running (C1) and the days left, its
records still open to change (C2), quitters of the two months before who have no visit in
that month (the self-check's gaps), visits to re-enter after a swap-case conversion (C6)
and its returned tickets; the office and a bureau see the open tickets by status with the
longest wait, and the contracted institutions with no visit yet in the running month.
Every count is the count of the rows the item's link lists.
"""

from __future__ import annotations

import datetime as dt

from flask import current_app, url_for
from flask_babel import gettext
from sqlalchemy import and_, func, select

from core import clock
from core.dates import roc_month, to_roc
from core.extensions import db
from core.web.workqueue import QueueItem, cached_value, scope_key
from domain.cessation.grants import CORRECTION, SELF_CHECK, VISIT
from models.cessation.correction import CorrectionLine, CorrectionTicket, TicketStatus
from models.cessation.visit import DEADLINE_DAY, Quitter, Visit, month_deadline
from models.platform.user import ScopeKind
from models.registry.institution import ContractPeriod, Institution, InstitutionKind

#: Ticket statuses that wait for the office (the queue's open part), oldest step first.
OPEN_STATUSES = (
    TicketStatus.RECEIVED, TicketStatus.IN_REVIEW, TicketStatus.APPROVED, TicketStatus.CONVERTED,
)  # fmt: skip
#: FAB's filter positions in a list URL (`_flt_<n>_<column>`): equal on a text column,
#: greater / smaller on a date column.
TEXT_EQUAL, DATE_GREATER, DATE_SMALLER = 3, 1, 2


def running_month(today: dt.date) -> tuple[int, int]:
    """The earliest month whose entry deadline has not passed (C1): last month until the
    20th, this month after it."""
    if today.day <= DEADLINE_DAY:
        last = today.replace(day=1) - dt.timedelta(days=1)
        return last.year, last.month
    return today.year, today.month


def month_bounds(month: tuple[int, int]) -> tuple[dt.date, dt.date]:
    """The first day of the month and the first day of the next."""
    first = dt.date(month[0], month[1], 1)
    return first, (first + dt.timedelta(days=32)).replace(day=1)


# ------------------------------------------------------------------ queries
def open_records_clause(scope, first: dt.date):
    """Visits in scope still open to the institution (C2): dated in the running month or later."""
    return and_(Visit.visit_date >= first, Visit.scope_clause(scope))


def gap_quitters_query(scope, first: dt.date, after: dt.date):
    """Quitters with a visit in scope in the two months before `first` and none in the month
    (the self-check's "possibly missed" list, views/cessation/reports.py)."""
    before = (first - dt.timedelta(days=1)).replace(day=1)
    before = (before - dt.timedelta(days=1)).replace(day=1)
    in_scope = Visit.scope_clause(scope)
    seen_now = select(Visit.quitter_id).where(
        Visit.visit_date >= first, Visit.visit_date < after, in_scope
    )
    return (
        select(Quitter.id)
        .join(Visit, Visit.quitter_id == Quitter.id)
        .where(Visit.visit_date >= before, Visit.visit_date < first, in_scope,
               Visit.quitter_id.not_in(seen_now))
        .group_by(Quitter.id)
    )  # fmt: skip


def reentry_clause(scope):
    """Lines of converted tickets in scope whose displaced visit is still to re-enter (C6)."""
    return and_(
        CorrectionTicket.status == TicketStatus.CONVERTED.value,
        CorrectionLine.displaced_date.is_not(None),
        CorrectionTicket.scope_clause(scope),
    )


def idle_institutions_query(scope, first: dt.date, after: dt.date, today: dt.date):
    """Medical institutions in scope under contract today with no visit dated in the month."""
    contracted = select(ContractPeriod.institution_id).where(ContractPeriod.covering(today))
    visited = select(Visit.institution_id).where(Visit.visit_date >= first, Visit.visit_date < after)
    return select(Institution.id).where(
        Institution.kind == InstitutionKind.MEDICAL.value,
        Institution.scope_clause(scope),
        Institution.id.in_(contracted),
        Institution.id.not_in(visited),
    )


def _count(statement) -> int:
    return int(db.session.scalar(select(func.count()).select_from(statement.subquery())) or 0)


def _can(permission: str, resource: str) -> bool:
    return current_app.appbuilder.sm.has_access(f"can_{permission}", resource)


# ---------------------------------------------------------------- providers
def facility_items(user, scope) -> list[QueueItem]:
    """A facility's month: deadline, open records, possible gaps, C6 re-entries, returned tickets."""
    if scope.kind != ScopeKind.FACILITY or not scope.institution_ids or not _can("read", SELF_CHECK):
        return []
    today = clock.today()
    month = running_month(today)
    first, after = month_bounds(month)
    deadline = month_deadline(*month).date()
    days_left = (deadline - today).days
    key = f"cessation-facility:{scope_key(scope)}:{today}"

    def compute():
        return {
            "open": _count(select(Visit.id).where(open_records_clause(scope, first))),
            "gaps": _count(gap_quitters_query(scope, first, after)),
            "reentry": _count(
                select(CorrectionLine.id)
                .join(CorrectionTicket, CorrectionTicket.id == CorrectionLine.ticket_id)
                .where(reentry_clause(scope))
            ),
            "returned": _count(select(CorrectionTicket.id).where(
                CorrectionTicket.status == TicketStatus.RETURNED.value,
                CorrectionTicket.scope_clause(scope),
            )),  # fmt: skip
        }

    counts = cached_value(key, ("visit", "quitter", "correction_ticket", "correction_line"), compute)
    group = gettext("Smoking cessation")
    shown = roc_month(*month)
    check = url_for("SelfCheckView.index", month=shown)
    level = "danger" if days_left <= 3 else "warning" if days_left <= 7 else "info"
    items = [
        QueueItem(gettext("Entry deadline of %(month)s: %(date)s", month=shown, date=to_roc(deadline)),
                  None, check, level,
                  gettext("%(days)d days left", days=days_left), group),
        QueueItem(gettext("Records still open to change (from %(date)s)", date=to_roc(first)),
                  counts["open"],
                  url_for("VisitView.list", **{f"_flt_{DATE_GREATER}_visit_date": to_roc(first - dt.timedelta(days=1))}),
                  "info", gettext("Until its deadline a record can be changed or deleted here."), group),
        QueueItem(gettext("Quitters possibly missed in %(month)s", month=shown), counts["gaps"],
                  check + "#gaps", "warning" if counts["gaps"] else "default",
                  gettext("Seen in the two months before, no visit in %(month)s yet.", month=shown), group),
        QueueItem(gettext("Visits to re-enter after a conversion"), counts["reentry"],
                  check + "#reentry-reminders", "danger" if counts["reentry"] else "default",
                  gettext("The converted record replaced a real visit: enter that visit again."), group),
    ]  # fmt: skip
    if _can("read", CORRECTION):
        items.append(QueueItem(
            gettext("Returned correction requests"), counts["returned"],
            url_for("CorrectionTicketView.list", **{f"_flt_{TEXT_EQUAL}_status": TicketStatus.RETURNED.value}),
            "warning" if counts["returned"] else "default",
            gettext("Read the reason, then file a corrected request."), group,
        ))  # fmt: skip
    return items


def ticket_items(user, scope) -> list[QueueItem]:
    """The office's (or a bureau's) open tickets per status, with the longest wait."""
    if scope.kind == ScopeKind.FACILITY or not scope.has_any or not _can("read", CORRECTION):
        return []
    today = clock.today()
    key = f"cessation-tickets:{scope_key(scope)}:{today}"

    def compute():
        rows = db.session.execute(
            select(CorrectionTicket.status, func.count(), func.min(CorrectionTicket.received_on))
            .where(CorrectionTicket.status.in_([s.value for s in OPEN_STATUSES]),
                   CorrectionTicket.scope_clause(scope))
            .group_by(CorrectionTicket.status)
        ).all()  # fmt: skip
        return {status: (int(count), oldest) for status, count, oldest in rows}

    counts = cached_value(key, ("correction_ticket",), compute)
    group = gettext("Correction requests")
    items = []
    for status in OPEN_STATUSES:
        count, oldest = counts.get(status.value, (0, None))
        wait = (today - oldest).days if oldest else 0
        level = "default" if not count else "danger" if wait > 30 else "warning" if wait > 14 else "info"
        hint = gettext("Longest wait: %(days)d days (received %(date)s)", days=wait, date=to_roc(oldest)) if oldest else ""
        items.append(QueueItem(
            str(status.label), count,
            url_for("CorrectionTicketView.list", **{f"_flt_{TEXT_EQUAL}_status": status.value}),
            level, hint, group,
        ))  # fmt: skip
    return items


def county_items(user, scope) -> list[QueueItem]:
    """The office's and a bureau's running month: visits entered so far, institutions with none."""
    if scope.kind == ScopeKind.FACILITY or not scope.has_any or not _can("read", SELF_CHECK):
        return []
    today = clock.today()
    month = running_month(today)
    first, after = month_bounds(month)
    key = f"cessation-county:{scope_key(scope)}:{today}"

    def compute():
        visits = db.session.scalar(
            select(func.count()).select_from(Visit)
            .where(Visit.visit_date >= first, Visit.visit_date < after, Visit.scope_clause(scope))
        )  # fmt: skip
        return {"visits": int(visits or 0),
                "idle": _count(idle_institutions_query(scope, first, after, today))}

    counts = cached_value(key, ("visit", "institution", "contract_period"), compute)
    group = gettext("Smoking cessation")
    shown = roc_month(*month)
    deadline = month_deadline(*month).date()
    items = []
    if _can("read", VISIT):
        items.append(QueueItem(
            gettext("Visits of %(month)s entered so far", month=shown), counts["visits"],
            url_for("VisitView.list", **{
                f"_flt_{DATE_GREATER}_visit_date": to_roc(first - dt.timedelta(days=1)),
                f"_flt_{DATE_SMALLER}_visit_date": to_roc(after),
            }),
            "info", gettext("Entry deadline %(date)s, %(days)d days left",
                            date=to_roc(deadline), days=(deadline - today).days), group,
        ))  # fmt: skip
    items.append(QueueItem(
        gettext("Contracted institutions with no visit in %(month)s", month=shown), counts["idle"],
        url_for("SelfCheckView.idle", month=shown),
        "warning" if counts["idle"] else "default",
        gettext("Under contract today; nothing entered for the month yet."), group,
    ))  # fmt: skip
    return items


PROVIDERS = (facility_items, ticket_items, county_items)
