"""Cessation reports in the user's scope: the fee-deduction list (C8) and the monthly
self-check of an institution's visits (C2)."""

from __future__ import annotations

import datetime as dt

from flask import abort, request
from flask_appbuilder import expose
from flask_appbuilder.security.decorators import has_access
from flask_babel import gettext
from flask_babel import lazy_gettext as _l
from sqlalchemy import and_, extract, func, select

from core import clock, dates
from core.data.scope import current_scope
from core.dates import (
    MAX_DATE,
    MIN_DATE,
    DateFormatError,
    gregorian_year,
    out_of_range_message,
    to_roc,
)
from core.export.xlsx import export_file_name, send_xlsx, write_xlsx
from core.extensions import db
from core.validators import mask_personal_id
from core.web.views import ScopedReportView
from domain.cessation.grants import FEE_DEDUCTION, SELF_CHECK
from models.cessation.visit import Quitter, Timeliness, Visit, entry_deadline
from models.registry.institution import Institution
from models.registry.practitioner import Practitioner
from models.registry.reference import County


def parse_roc_month(text: str | None) -> tuple[int, int] | None:
    """'114/05', '114/5', '2025-05' → (2025, 5); empty → None; anything else → DateFormatError."""
    text = (text or "").strip()
    if not text:
        return None
    for separator in ("/", "-", "."):
        if separator in text:
            year_text, _, month_text = text.partition(separator)
            break
    else:
        raise DateFormatError(gettext("Use the ROC month form 114/05."))
    try:
        year, month = int(year_text), int(month_text)
    except ValueError:
        raise DateFormatError(gettext("Use the ROC month form 114/05.")) from None
    year = gregorian_year(year)
    if not 1 <= month <= 12:
        raise DateFormatError(gettext("Use the ROC month form 114/05."))
    if not MIN_DATE.year <= year <= MAX_DATE.year:
        # 9999/12 overflowed the month's end (dt.date + 32 days) into a 500 (issue 12 class 8).
        raise DateFormatError(out_of_range_message())
    return year, month


def roc_month(year: int, month: int) -> str:
    return dates.roc_month(year, month)


class FeeDeductionView(ScopedReportView):
    """核扣清單 (C8): per institution and month, records entered after their deadline, and for
    information the records entered later than 24 hours."""

    route_base = "/feededuction"
    default_view = "index"
    class_permission_name = FEE_DEDUCTION
    method_permission_name = {"index": "read", "export": "export"}

    def rows(self, month: tuple[int, int] | None):
        year_col = extract("year", Visit.visit_date)
        month_col = extract("month", Visit.visit_date)
        late = func.sum((Visit.entry_timeliness == Timeliness.AFTER_DEADLINE.value).cast(db.Integer))
        slow = func.sum((Visit.entry_timeliness == Timeliness.BEFORE_DEADLINE.value).cast(db.Integer))
        conditions = [
            # IN, not "!= within_24h": the timeliness index then reads only the late rows.
            Visit.entry_timeliness.in_([Timeliness.BEFORE_DEADLINE.value, Timeliness.AFTER_DEADLINE.value]),
            Visit.scope_clause(current_scope()),
        ]
        if month:
            first = dt.date(month[0], month[1], 1)
            after = (first + dt.timedelta(days=32)).replace(day=1)
            conditions.append(and_(Visit.visit_date >= first, Visit.visit_date < after))
        stmt = (
            select(Institution.nhi_code, Institution.name, County.name, year_col, month_col, late, slow)
            .select_from(Visit)
            .join(Institution, Institution.id == Visit.institution_id)
            .join(County, County.id == Institution.county_id)
            .where(*conditions)
            .group_by(Institution.nhi_code, Institution.name, County.name, year_col, month_col)
            .order_by(year_col.desc(), month_col.desc(), Institution.nhi_code)
        )
        return [
            {"nhi_code": r[0], "name": r[1], "county": r[2], "month": roc_month(int(r[3]), int(r[4])),
             "after_deadline": int(r[5] or 0), "late_24h": int(r[6] or 0)}
            for r in db.session.execute(stmt)
        ]  # fmt: skip

    def _month(self):
        """The month asked for; by default last month (the one whose deadline just passed).

        ?month=all lists every month (it can be thousands of rows: the export streams them).
        """
        text = request.args.get("month")
        if text == "all":
            return None
        if not text:
            last = clock.today().replace(day=1) - dt.timedelta(days=1)
            return last.year, last.month
        try:
            return parse_roc_month(text)
        except DateFormatError as exc:  # not a flash: the page says it and lists every month
            self._error = str(exc)
            return None

    @expose("/")
    @has_access
    def index(self):
        self._error = None
        month = self._month()
        return self.render_template(
            "reports/fee_deduction.html",
            rows=self.rows(month),
            month=request.args.get("month") or (roc_month(*month) if month else ""),
            error=self._error,
            title=gettext("Fee-deduction list"),
        )

    @expose("/export")
    @has_access
    def export(self):
        self._error = None
        month = self._month()
        rows = self.rows(month)
        headers = [gettext("NHI institution code"), gettext("Institution name"), gettext("County"),
                   gettext("Visit month"), gettext("Entered after the deadline (fee deduction)"),
                   gettext("Entered after 24 hours, within the deadline")]  # fmt: skip
        keys = ["nhi_code", "name", "county", "month", "after_deadline", "late_24h"]
        name = gettext("Fee-deduction list")
        # The title row names the month as the page does (就醫月份 114/05), or every month.
        period = roc_month(*month) if month else gettext("All months")
        label = gettext("Visit month")
        title = f"{name}（{label} {period}）"
        path, _ = write_xlsx(headers, ([r[k] for k in keys] for r in rows), sheet_name=name, title=title)
        return send_xlsx(path, export_file_name(name))


#: Visit rows per page of the self-check, and the most practitioners and gaps it lists.
SELF_CHECK_PAGE = 200
SELF_CHECK_BOUND = 200


class SelfCheckView(ScopedReportView):
    """每月自行清查 (C2): a month's visits of the user's institutions, what may be missing,
    and until when the institution can still fix them itself."""

    route_base = "/selfcheck"
    default_view = "index"
    class_permission_name = SELF_CHECK
    method_permission_name = {"index": "read", "idle": "read"}

    @expose("/idle")
    @has_access
    def idle(self):
        """Contracted institutions in scope with no visit in a month (the home page's item)."""
        from domain.cessation.workqueue import idle_institutions_query, month_bounds, running_month

        today = clock.today()
        error = None
        try:
            month = parse_roc_month(request.args.get("month")) or running_month(today)
        except DateFormatError as exc:  # the page says it and shows the running month
            error, month = str(exc), running_month(today)
        first, after = month_bounds(month)
        ids = idle_institutions_query(current_scope(), first, after, today)
        total = db.session.scalar(select(func.count()).select_from(ids.subquery())) or 0
        pages = max(1, -(-total // SELF_CHECK_PAGE))
        page = min(max(request.args.get("page", 1, type=int) or 1, 1), pages)
        rows = db.session.execute(
            select(Institution.id, Institution.nhi_code, Institution.name, County.name)
            .join(County, County.id == Institution.county_id)
            .where(Institution.id.in_(ids))
            .order_by(County.sort_order, Institution.nhi_code, Institution.id)
            .offset((page - 1) * SELF_CHECK_PAGE).limit(SELF_CHECK_PAGE)
        ).all()  # fmt: skip
        return self.render_template(
            "reports/idle_institutions.html",
            title=gettext("Contracted institutions with no visit in %(month)s", month=roc_month(*month)),
            month=roc_month(*month), error=error, rows=rows, total=total,
            first_row=(page - 1) * SELF_CHECK_PAGE + 1, page=page, pages=pages,
            deadline=to_roc(entry_deadline(first).date()),
        )  # fmt: skip

    @expose("/")
    @has_access
    def index(self):
        today = clock.today()
        error = None
        try:
            month = parse_roc_month(request.args.get("month")) or (today.year, today.month)
        except DateFormatError as exc:  # not a flash: the page says it and shows this month
            error, month = str(exc), (today.year, today.month)
        first = dt.date(month[0], month[1], 1)
        after = (first + dt.timedelta(days=32)).replace(day=1)
        scope = Visit.scope_clause(current_scope())
        in_month = and_(Visit.visit_date >= first, Visit.visit_date < after, scope)
        # A facility's month is tens to hundreds of rows; the office's is tens of thousands,
        # so every list here is paged or bounded, with its full count shown.
        visits_total = db.session.scalar(select(func.count()).select_from(Visit).where(in_month))
        pages = max(1, -(-visits_total // SELF_CHECK_PAGE))
        page = min(max(request.args.get("page", 1, type=int) or 1, 1), pages)
        visits = db.session.execute(
            select(Visit.visit_date, Institution.name, Quitter.name, Quitter.national_id,
                   Practitioner.name, Visit.medication_days, Visit.education_minutes,
                   Visit.entry_timeliness)
            .select_from(Visit)
            .join(Institution, Institution.id == Visit.institution_id)
            .join(Quitter, Quitter.id == Visit.quitter_id)
            .join(Practitioner, Practitioner.id == Visit.practitioner_id)
            .where(in_month).order_by(Visit.visit_date, Visit.id)
            .offset((page - 1) * SELF_CHECK_PAGE).limit(SELF_CHECK_PAGE)
        ).all()  # fmt: skip
        per_day = db.session.execute(
            select(Visit.visit_date, func.count()).where(in_month)
            .group_by(Visit.visit_date).order_by(Visit.visit_date)
        ).all()  # fmt: skip
        per_practitioner = db.session.execute(
            select(Practitioner.name, func.count()).select_from(Visit)
            .join(Practitioner, Practitioner.id == Visit.practitioner_id)
            .where(in_month).group_by(Practitioner.id, Practitioner.name)
            .order_by(func.count().desc(), Practitioner.name).limit(SELF_CHECK_BOUND + 1)
        ).all()  # fmt: skip
        # Quitters seen in the two months before but not in this one: a visit may be missing.
        before = (first - dt.timedelta(days=1)).replace(day=1)
        before = (before - dt.timedelta(days=1)).replace(day=1)
        # Their last visit before this month lies in those two months, so only the two
        # months' visits are read (not each quitter's whole history).
        seen_now = select(Visit.quitter_id).where(in_month)
        gaps = db.session.execute(
            select(Quitter.name, Quitter.national_id, func.max(Visit.visit_date))
            .join(Visit, Visit.quitter_id == Quitter.id)
            .where(Visit.visit_date >= before, Visit.visit_date < first, scope,
                   Visit.quitter_id.not_in(seen_now))
            .group_by(Quitter.id, Quitter.name, Quitter.national_id)
            .order_by(func.max(Visit.visit_date), Quitter.id).limit(SELF_CHECK_BOUND + 1)
        ).all()  # fmt: skip
        deadline = entry_deadline(first)
        days_left = (deadline.date() - today).days
        from domain.cessation.corrections import pending_reentries

        return self.render_template(
            "reports/self_check.html",
            title=gettext("Monthly self-check"),
            month=roc_month(*month),
            error=error,
            visits=visits,
            visits_total=visits_total,
            first_row=(page - 1) * SELF_CHECK_PAGE + 1,
            page=page,
            pages=pages,
            per_day=per_day,
            per_practitioner=per_practitioner[:SELF_CHECK_BOUND],
            more_practitioners=len(per_practitioner) > SELF_CHECK_BOUND,
            gaps=gaps[:SELF_CHECK_BOUND],
            more_gaps=len(gaps) > SELF_CHECK_BOUND,
            bound=SELF_CHECK_BOUND,
            deadline=to_roc(deadline.date()),
            days_left=days_left,
            open=clock.now() <= deadline,
            mask=mask_personal_id,
            timeliness_labels={t.value: str(t.label) for t in Timeliness},
            reminders=pending_reentries(current_scope()),
        )


REPORT_LABELS = {"fee": _l("Fee-deduction list"), "self": _l("Monthly self-check")}
__all__ = ["FeeDeductionView", "SelfCheckView", "abort"]
