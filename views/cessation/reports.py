"""Cessation reports in the user's scope: the fee-deduction list (C8) and the monthly
self-check of an institution's visits (C2)."""

from __future__ import annotations

import datetime as dt

from flask import abort, request, url_for
from flask_appbuilder import expose
from flask_appbuilder.security.decorators import has_access
from flask_babel import gettext
from flask_babel import lazy_gettext as _l
from markupsafe import Markup, escape
from sqlalchemy import and_, extract, func, select

from core import clock, dates
from core.data.filters import sees_ids_masked
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
from core.security.permissions import CAN_CREATE, CAN_READ
from core.validators import mask_personal_id
from core.web.views import ScopedReportView
from domain.cessation.grants import FEE_DEDUCTION, QUITTER, SELF_CHECK, VISIT
from models.cessation.visit import Quitter, Timeliness, Visit, entry_deadline, month_deadline
from models.platform.user import ScopeKind
from models.registry.institution import Institution
from models.registry.practitioner import Practitioner
from models.registry.reference import County

#: Fullwidth digits and slash (a Taiwanese IME's default) read as ASCII; every other
#: non-ASCII digit ('²', '١') stays a refusal, since int() would take some of them.
_FULLWIDTH = str.maketrans("０１２３４５６７８９／－．", "0123456789/-.")
#: Longer than any month (114/05, 2025-05) with room for spaces: refused unread.
MONTH_MAX_LENGTH = 16


def parse_roc_month(text: str | None) -> tuple[int, int] | None:
    """'114/05', '114/5', '2025-05', '１１４／０５' → (2025, 5); empty → None; anything else
    (abc, 115/13, ５月, '114/²', a huge number) → DateFormatError."""
    text = (text or "").strip().translate(_FULLWIDTH)
    if not text:
        return None
    if len(text) > MONTH_MAX_LENGTH:
        raise DateFormatError(gettext("Use the ROC month form 114/05."))
    for separator in ("/", "-", "."):
        if separator in text:
            year_text, _, month_text = text.partition(separator)
            break
    else:
        raise DateFormatError(gettext("Use the ROC month form 114/05."))
    year_text, month_text = year_text.strip(), month_text.strip()
    if not all(t.isascii() and t.isdigit() for t in (year_text, month_text)):
        # Not int(): int() reads '-5', ' 5' and Arabic-Indic digits.
        raise DateFormatError(gettext("Use the ROC month form 114/05."))
    year, month = int(year_text), int(month_text)
    year = gregorian_year(year)
    if not 1 <= month <= 12:
        raise DateFormatError(gettext("Use the ROC month form 114/05."))
    if not MIN_DATE.year <= year <= MAX_DATE.year:
        # 9999/12 overflowed the month's end (dt.date + 32 days) into a 500 (issue 12 class 8).
        raise DateFormatError(out_of_range_message())
    return year, month


def roc_month(year: int, month: int) -> str:
    return dates.roc_month(year, month)


#: The fee-deduction list's sortable columns (?sort=, ?dir=asc|desc).
FEE_SORT_KEYS = ("nhi_code", "name", "county", "month", "after_deadline", "late_24h")
#: Which timeliness a drill-down lists (?kind=): the C8 count or the 24-hour one.
FEE_KINDS = {"after_deadline": Timeliness.AFTER_DEADLINE, "late_24h": Timeliness.BEFORE_DEADLINE}
#: Records per page of a fee-deduction drill-down.
FEE_RECORDS_PAGE = 200


def last_closed_month(now: dt.datetime) -> tuple[int, int]:
    """The last month whose entry deadline has passed (C1, C8): the month before the one
    whose deadline is running (domain/cessation/workqueue.py)."""
    from domain.cessation.workqueue import running_month

    year, month = running_month(now.date())
    return (year, month - 1) if month > 1 else (year - 1, 12)


def provisional(month: tuple[int, int], now: dt.datetime) -> bool:
    """A month whose entry deadline has not passed: its after-deadline count can still grow."""
    return now <= month_deadline(*month)


class FeeDeductionView(ScopedReportView):
    """核扣清單 (C8): per institution and month, records entered after their deadline, and for
    information the records entered later than 24 hours; each count opens its records."""

    route_base = "/feededuction"
    default_view = "index"
    class_permission_name = FEE_DEDUCTION
    method_permission_name = {"index": "read", "export": "export", "records": "read"}

    def rows(self, month: tuple[int, int] | None):
        """One row per institution and month in scope with late records."""
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
            select(Institution.id, Institution.nhi_code, Institution.name, County.name, year_col, month_col,
                   late, slow)
            .select_from(Visit)
            .join(Institution, Institution.id == Visit.institution_id)
            .join(County, County.id == Institution.county_id)
            .where(*conditions)
            .group_by(Institution.id, Institution.nhi_code, Institution.name, County.name, year_col, month_col)
            .order_by(year_col.desc(), month_col.desc(), Institution.nhi_code)
        )
        now = clock.now()
        return [
            {"id": r[0], "nhi_code": r[1], "name": r[2], "county": r[3], "month": roc_month(int(r[4]), int(r[5])),
             "after_deadline": int(r[6] or 0), "late_24h": int(r[7] or 0),
             "provisional": provisional((int(r[4]), int(r[5])), now)}
            for r in db.session.execute(stmt)
        ]  # fmt: skip

    def _month(self):
        """The month asked for; by default the last one whose deadline has passed (C8).

        ?month=all lists every month (it can be thousands of rows: the export streams them).
        """
        text = request.args.get("month")
        if text == "all":
            return None
        if not text:
            return last_closed_month(clock.now())
        try:
            return parse_roc_month(text)
        except DateFormatError as exc:  # not a flash: the page says it, the input stays
            self._error = str(exc)
            return None

    @staticmethod
    def _sort(rows: list[dict]) -> tuple[str, str]:
        """Sort the rows in place by ?sort= and ?dir=; unknown values keep the default order."""
        key = request.args.get("sort", "")
        direction = "asc" if request.args.get("dir") == "asc" else "desc"
        if key not in FEE_SORT_KEYS:
            return "", ""
        rows.sort(key=lambda r: (r[key] is None, r[key]), reverse=direction == "desc")
        return key, direction

    @expose("/")
    @has_access
    def index(self):
        self._error = None
        month = self._month()
        typed = request.args.get("month")
        rows = [] if self._error else self.rows(month)
        sort, direction = self._sort(rows)
        totals = {"after_deadline": sum(r["after_deadline"] for r in rows),
                  "late_24h": sum(r["late_24h"] for r in rows)}  # fmt: skip
        now = clock.now()
        shown = typed if typed is not None and (self._error or typed == "all") else roc_month(*month)
        return self.render_template(
            "reports/fee_deduction.html",
            rows=rows,
            totals=totals,
            month=shown,
            month_key=(typed if typed == "all" else shown) if not self._error else "",
            sort=sort,
            direction=direction,
            sort_keys=FEE_SORT_KEYS,
            error=self._error,
            provisional=bool(month) and not self._error and provisional(month, now),
            deadline=to_roc(month_deadline(*month).date()) if month and not self._error else "",
            title=gettext("Fee-deduction list"),
        )

    @expose("/records")
    @has_access
    def records(self):
        """The records behind one count: an institution's late records of a month."""
        kind = FEE_KINDS.get(request.args.get("kind", ""))
        from domain.cessation.selfcheck import institution_in_scope

        institution = institution_in_scope(current_scope(), request.args.get("institution", ""))
        try:
            month = parse_roc_month(request.args.get("month"))
        except DateFormatError:
            month = None
        if kind is None or institution is None or month is None:
            abort(404)  # a count the list never links: nothing to show, nothing learnt
        first = dt.date(month[0], month[1], 1)
        after = (first + dt.timedelta(days=32)).replace(day=1)
        where = and_(Visit.institution_id == institution.id, Visit.visit_date >= first, Visit.visit_date < after,
                     Visit.entry_timeliness == kind.value, Visit.scope_clause(current_scope()))  # fmt: skip
        total = db.session.scalar(select(func.count()).select_from(Visit).where(where)) or 0
        records = db.session.execute(
            select(Visit.id, Visit.visit_date, Visit.entered_at, Quitter.id, Quitter.name, Quitter.national_id,
                   Practitioner.name)
            .join(Quitter, Quitter.id == Visit.quitter_id)
            .join(Practitioner, Practitioner.id == Visit.practitioner_id)
            .where(where).order_by(Visit.visit_date, Visit.id).limit(FEE_RECORDS_PAGE)
        ).all()  # fmt: skip
        return self.render_template(
            "reports/fee_deduction_records.html",
            title=gettext("Fee-deduction list"),
            institution=institution,
            month=roc_month(*month),
            kind_label=(gettext("Entered after the deadline (fee deduction)") if kind is Timeliness.AFTER_DEADLINE
                        else gettext("Entered after 24 hours, within the deadline")),
            records=records,
            total=total,
            bound=FEE_RECORDS_PAGE,
            deadline=to_roc(month_deadline(*month).date()),
            mask=mask_personal_id,
            provisional=provisional(month, clock.now()),
        )

    @expose("/export")
    @has_access
    def export(self):
        self._error = None
        month = self._month()
        rows = [] if self._error else self.rows(month)
        headers = [gettext("NHI institution code"), gettext("Institution name"), gettext("County"),
                   gettext("Visit month"), gettext("Entered after the deadline (fee deduction)"),
                   gettext("Entered after 24 hours, within the deadline")]  # fmt: skip
        keys = ["nhi_code", "name", "county", "month", "after_deadline", "late_24h"]
        name = gettext("Fee-deduction list")
        # The title row names the month as the page does (就醫月份 114/05), or every month.
        period = roc_month(*month) if month else gettext("All months")
        label = gettext("Visit month")
        title = f"{name}（{label} {period}）"
        if month and provisional(month, clock.now()):
            title += gettext("(provisional: the entry deadline %(date)s has not passed)",
                             date=to_roc(month_deadline(*month).date()))
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
        """The month whose deadline is running (or ?month=): summaries for national and
        county users, drilled down by ?county= and ?institution=; an institution's own list."""
        from domain.cessation import selfcheck
        from domain.cessation.workqueue import month_bounds, running_month

        today = clock.today()
        typed = request.args.get("month")
        try:
            month = parse_roc_month(typed) or running_month(today)
        except DateFormatError as exc:
            # Refused, and nothing else shown: another month's figures under the typed
            # text would be read as that month's (the input stays in the field).
            return self.render_template("reports/self_check.html", title=gettext("Monthly self-check"),
                                        mode="error", month=typed, error=str(exc))  # fmt: skip
        user_scope = current_scope()
        first, after = month_bounds(month)
        county = institution = None
        if request.args.get("institution"):
            institution = selfcheck.institution_in_scope(user_scope, request.args["institution"])
            if institution is None:
                abort(404)
        elif request.args.get("county"):
            county = selfcheck.county_in_scope(user_scope, request.args["county"])
            if county is None:
                abort(404)
        elif user_scope.kind == ScopeKind.COUNTY and len(user_scope.county_ids) == 1:
            county = db.session.get(County, next(iter(user_scope.county_ids)))
        if institution is not None:
            scope, mode = selfcheck.institution_scope(institution), "list"
            county = db.session.get(County, institution.county_id)
        elif selfcheck.summarises(user_scope):
            scope, mode = user_scope, ("institutions" if county is not None else "counties")
        else:
            scope, mode = user_scope, "list"
        in_month = and_(Visit.visit_date >= first, Visit.visit_date < after, Visit.scope_clause(scope))
        if county is not None and mode == "institutions":
            in_month = and_(in_month, Visit.institution_id.in_(
                select(Institution.id).where(Institution.county_id == county.id)))  # fmt: skip
        per_day = db.session.execute(
            select(Visit.visit_date, func.count()).where(in_month)
            .group_by(Visit.visit_date).order_by(Visit.visit_date)
        ).all()  # fmt: skip
        deadline = entry_deadline(first)
        shown = roc_month(*month)
        context = dict(
            title=gettext("Monthly self-check"), mode=mode, month=shown, error=None,
            county=county, institution=institution, national=user_scope.national,
            deadline=to_roc(deadline.date()), days_left=(deadline.date() - today).days,
            open=clock.now() <= deadline,
            chart=visits_per_day_chart(first, after, per_day,
                                       gettext("Visits per day, %(month)s", month=shown)),
        )  # fmt: skip
        if mode in ("counties", "institutions"):
            rows = selfcheck.institution_rows(scope, first, after, today,
                                              county.id if county is not None else None)  # fmt: skip
            summary = selfcheck.county_rows(rows) if mode == "counties" else rows
            totals = {"visits": sum(r.visits for r in rows), "gaps": sum(r.gaps for r in rows),
                      "contracted": sum(r.contracted for r in rows),
                      "idle": sum(r.contracted and not r.visits for r in rows)}  # fmt: skip
            return self.render_template("reports/self_check.html", rows=summary, totals=totals, **context)
        return self.render_template("reports/self_check.html", **context, **self._list(scope, first, after, today))

    def _list(self, scope, first: dt.date, after: dt.date, today: dt.date) -> dict:
        """One institution's (or a facility user's) month: visits, practitioners, gaps."""
        in_month = and_(Visit.visit_date >= first, Visit.visit_date < after, Visit.scope_clause(scope))
        # A facility's month is tens to hundreds of rows; a drilled-down hospital's a few
        # thousand, so every list here is paged or bounded, with its full count shown.
        visits_total = db.session.scalar(select(func.count()).select_from(Visit).where(in_month))
        pages = max(1, -(-visits_total // SELF_CHECK_PAGE))
        page = min(max(request.args.get("page", 1, type=int) or 1, 1), pages)
        visits = db.session.execute(
            select(Visit.visit_date, Institution.name, Quitter.name, Quitter.national_id,
                   Practitioner.name, Visit.medication_days, Visit.education_minutes,
                   Visit.entry_timeliness, Visit.id, Quitter.id)
            .select_from(Visit)
            .join(Institution, Institution.id == Visit.institution_id)
            .join(Quitter, Quitter.id == Visit.quitter_id)
            .join(Practitioner, Practitioner.id == Visit.practitioner_id)
            .where(in_month).order_by(Visit.visit_date, Visit.id)
            .offset((page - 1) * SELF_CHECK_PAGE).limit(SELF_CHECK_PAGE)
        ).all()  # fmt: skip
        per_practitioner = db.session.execute(
            select(Practitioner.name, func.count()).select_from(Visit)
            .join(Practitioner, Practitioner.id == Visit.practitioner_id)
            .where(in_month).group_by(Practitioner.id, Practitioner.name)
            .order_by(func.count().desc(), Practitioner.name).limit(SELF_CHECK_BOUND + 1)
        ).all()  # fmt: skip
        # Quitters seen in the two months before but not in this one: a visit may be missing.
        # Their last visit before this month lies in those two months, so only the two
        # months' visits are read (not each quitter's whole history).
        from domain.cessation.selfcheck import two_months_before

        seen_now = select(Visit.quitter_id).where(in_month)
        gaps = db.session.execute(
            select(Quitter.name, Quitter.national_id, func.max(Visit.visit_date), Quitter.id)
            .join(Visit, Visit.quitter_id == Quitter.id)
            .where(Visit.visit_date >= two_months_before(first), Visit.visit_date < first,
                   Visit.scope_clause(scope), Visit.quitter_id.not_in(seen_now))
            .group_by(Quitter.id, Quitter.name, Quitter.national_id)
            .order_by(func.max(Visit.visit_date), Quitter.id).limit(SELF_CHECK_BOUND + 1)
        ).all()  # fmt: skip
        from domain.cessation.corrections import pending_reentries

        sm = self.appbuilder.sm
        # 補登 carries the full ID in its link: only for those who enter visits and see IDs.
        can_enter = sm.has_access(f"can_{CAN_CREATE}", VISIT) and not sees_ids_masked()
        return dict(
            visits=visits,
            visits_total=visits_total,
            first_row=(page - 1) * SELF_CHECK_PAGE + 1,
            page=page,
            pages=pages,
            per_practitioner=per_practitioner[:SELF_CHECK_BOUND],
            more_practitioners=len(per_practitioner) > SELF_CHECK_BOUND,
            gaps=[(name, pid, last, qid, suggested_visit_date(last, first, after, today))
                  for name, pid, last, qid in gaps[:SELF_CHECK_BOUND]],  # fmt: skip
            more_gaps=len(gaps) > SELF_CHECK_BOUND,
            bound=SELF_CHECK_BOUND,
            can_enter=can_enter,
            visit_add_path=url_for("VisitView.add"),
            can_show_visit=sm.has_access(f"can_{CAN_READ}", VISIT),
            can_show_quitter=sm.has_access(f"can_{CAN_READ}", QUITTER),
            mask=mask_personal_id,
            timeliness_labels={t.value: str(t.label) for t in Timeliness},
            reminders=pending_reentries(scope),
        )


def suggested_visit_date(last: dt.date, first: dt.date, after: dt.date, today: dt.date) -> dt.date:
    """The day a missed visit most likely fell on: the last visit's day of the month in the
    checked month (a monthly return), never past the month's end nor today."""
    last_day = after - dt.timedelta(days=1)
    day = first.replace(day=min(last.day, last_day.day))
    return max(first, min(day, today))


def visits_per_day_chart(first: dt.date, after: dt.date, per_day, title: str) -> Markup:
    """Every day of the month as a bar of its visits, drawn as inline SVG on the server (no
    script, no CDN); a day without visits shows as an empty slot, weekends shaded."""
    counts = {day: int(n) for day, n in per_day}
    days = (after - first).days
    top = max(counts.values(), default=0)
    slot, left, plot, base = 22, 34, 120, 140
    width = left + days * slot + 10
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" id="per-day-chart" role="img" width="{width}" '
        f'height="{base + 34}" viewBox="0 0 {width} {base + 34}" aria-label="{escape(title)}" '
        'style="max-width:100%;height:auto">',
        f"<title>{escape(title)}</title>",
        f'<line x1="{left}" y1="{base}" x2="{width - 6}" y2="{base}" stroke="#999"></line>',
        f'<text x="{left - 6}" y="{base - plot + 4}" font-size="11" text-anchor="end">{top}</text>',
        f'<text x="{left - 6}" y="{base + 4}" font-size="11" text-anchor="end">0</text>',
    ]
    for n in range(days):
        day = first + dt.timedelta(days=n)
        value = counts.get(day, 0)
        x = left + n * slot
        if day.weekday() >= 5:
            parts.append(f'<rect x="{x}" y="{base - plot}" width="{slot}" height="{plot}" fill="#f3f3f3"></rect>')
        height = round(value * plot / top) if top else 0
        parts.append(
            f'<rect class="bar" data-date="{day.isoformat()}" data-visits="{value}" x="{x + 3}" '
            f'y="{base - height}" width="{slot - 6}" height="{height}" fill="#337ab7">'
            f"<title>{escape(to_roc(day))}: {value}</title></rect>"
        )
        if value:
            parts.append(f'<text x="{x + slot / 2}" y="{base - height - 3}" font-size="10" '
                         f'text-anchor="middle">{value}</text>')  # fmt: skip
        parts.append(f'<text x="{x + slot / 2}" y="{base + 14}" font-size="10" '
                     f'text-anchor="middle">{day.day}</text>')  # fmt: skip
    parts.append("</svg>")
    return Markup("".join(parts))


REPORT_LABELS = {"fee": _l("Fee-deduction list"), "self": _l("Monthly self-check")}
__all__ = ["FeeDeductionView", "SelfCheckView", "abort"]
