"""The addiction programme's items on the home page's work queue (A14): staff short of this
year's addiction-training hours and licences ending within LICENCE_EXPIRY_WARNING_DAYS, for
treatment institutions and bureaus; both link to the reminders report, which lists exactly
those staff."""

from __future__ import annotations

from flask import current_app, url_for
from flask_babel import gettext

from core import clock
from core.web.workqueue import QueueItem, cached_value, scope_key
from domain.addiction.grants import CLAIM, CLAIM_REVIEW, ORDER_MAPPING, STAFF_SHORTFALL
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


def bureau_claim_items(user, scope) -> list[QueueItem]:
    """A11: the county's claims waiting for the bureau (送出, 再送出, 審核中), the oldest first:
    how many, the longest wait in days and the amount waiting."""
    if scope.kind != "county" or not scope.has_any:
        return []
    if not current_app.appbuilder.sm.has_access("can_edit", CLAIM_REVIEW):
        return []
    from domain.addiction.claims import waiting_claims

    rows = cached_value(f"addiction-claims-waiting:{scope_key(scope)}:{clock.today()}", ("claim",),
                        lambda: waiting_claims(scope))  # fmt: skip
    oldest = rows[0]["days"] if rows else 0
    amount = sum(r["amount"] for r in rows)
    hint = (gettext("Oldest first: %(days)d days waiting; NT$%(amount)s in all.", days=oldest, amount=f"{amount:,}")
            if rows else gettext("No claim is waiting."))  # fmt: skip
    return [QueueItem(gettext("Subsidy claims waiting for review"), len(rows), url_for("ClaimReviewView.list"),
                      "danger" if oldest > 14 else ("warning" if rows else "default"), hint,
                      gettext("Addiction case management"))]  # fmt: skip


def institution_claim_items(user, scope) -> list[QueueItem]:
    """A11: the institution's draft claims, its returned claims (with the reasons) and the
    claimable lines of last month and before not yet in any claim."""
    if scope.kind != "facility" or not scope.has_any:
        return []
    if not current_app.appbuilder.sm.has_access("can_create", CLAIM):
        return []
    from domain.addiction.claims import institution_claim_summary

    today = clock.today()
    summary = cached_value(f"addiction-claims-mine:{scope_key(scope)}:{today}", CLAIM_SUMMARY_TABLES,
                           lambda: institution_claim_summary(scope, today))  # fmt: skip
    url = url_for("ClaimView.list")
    group = gettext("Addiction case management")
    from models.addiction.claim import ReturnReason

    reasons = "、".join(ReturnReason.label_of(r) for r in summary["reasons"][:3])
    return [
        QueueItem(gettext("Draft subsidy claims"), summary["drafts"], url, "info" if summary["drafts"] else "default",
                  gettext("Print the sign-off package, then submit to the bureau."), group),
        QueueItem(gettext("Returned subsidy claims"), summary["returned"], url,
                  "danger" if summary["returned"] else "default",
                  (gettext("Reasons: %(reasons)s", reasons=reasons) if reasons
                   else gettext("Correct the returned lines and resubmit.")), group),
        QueueItem(gettext("Claimable lines not yet claimed"), summary["unclaimed"], url_for("ClaimView.add"),
                  "warning" if summary["unclaimed"] else "default",
                  gettext("Lines of past months in no claim: prepare the month's claim."), group),
    ]  # fmt: skip


#: What the institution's claim summary reads (the claimable lines' tables and the claims).
CLAIM_SUMMARY_TABLES = ("claim", "claim_line", "his_order", "order_code_mapping", "treatment_record", "course",
                        "addiction_case", "patient", "subsidy_scheme", "scheme_item")  # fmt: skip

PROVIDERS = (staff_items, unmapped_order_items, bureau_claim_items, institution_claim_items)
