"""成癮醫療業務統計 (issue 19 part 5): the programme's yearly reports in the reader's scope —
cases, courses, 出席率, 留置率 and assessments on time — each a table with an SVG chart, an
Excel workbook (/addictionreport/export/<section>?year=114) and a JSON API
(GET /api/v1/addictionreport/<section>?year=114[&county=KHH]). The figures are computed in
domain/addiction/reports.py; this module words and draws them."""

from __future__ import annotations

import os
import tempfile
from decimal import Decimal

from flask import abort, request
from flask_appbuilder import expose
from flask_appbuilder.api import BaseApi
from flask_appbuilder.security.decorators import has_access, protect
from flask_babel import gettext
from flask_babel import lazy_gettext as _l
from markupsafe import Markup, escape
from sqlalchemy import select

from core import clock
from core.data.scope import current_scope
from core.dates import roc_year
from core.export.xlsx import export_file_name, send_xlsx
from core.extensions import db
from core.web.views import ScopedReportView
from domain.addiction.grants import ADDICTION_REPORT, SCHEME_SPENDING
from domain.addiction.reports import (
    RETENTION_MONTHS,
    SECTIONS,
    TOTAL,
    ReportNotFound,
    ReportRequestError,
    parse_year,
    report_scope,
    report_section,
)
from domain.registry.scopes import scope_label
from models.registry.reference import County

#: The first ROC year the year selector offers (the system was built from ROC 108, seed Q1).
FIRST_ROC_YEAR = 108
COUNT, RATE = "count", "rate"
_COLOURS = ("#337ab7", "#5cb85c", "#f0ad4e", "#d9534f", "#777777")


# ------------------------------------------------------------------ wording
def _col(key: str, header: str, kind: str = COUNT) -> tuple[str, str, str]:
    return key, header, kind


def layouts() -> dict[str, dict]:
    """Each section's title, tables (key in the result, caption, first column, columns),
    definition and chart, in zh_TW (the seed's terms: 出席率, 留置率, 療程)."""
    by_substance = gettext("Substance category")
    retention_cols = [_col("cohort", gettext("Cases opened"))]
    for m in RETENTION_MONTHS:
        retention_cols += [
            _col(f"due_{m}", gettext("Due at %(months)d months", months=m)),
            _col(f"retained_{m}", gettext("In treatment at %(months)d months", months=m)),
            _col(f"rate_{m}", gettext("Retention rate at %(months)d months", months=m), RATE),
        ]
    return {
        "cases": {
            "title": gettext("Cases opened and active"),
            "tables": [
                ("by_substance", gettext("By substance category"), by_substance,
                 [_col("opened", gettext("Cases opened")), _col("active", gettext("Active cases"))]),
                ("by_referral", gettext("By referral source"), gettext("Referral source"),
                 [_col("opened", gettext("Cases opened")), _col("active", gettext("Active cases"))]),
            ],
            "definition": gettext(
                "Cases opened: cases whose opening date falls in the year. Active cases: cases opened on or "
                "before the end of the year (or today) and not closed before the year began."
            ),
            "chart": ("by_substance", [("opened", gettext("Cases opened")), ("active", gettext("Active cases"))], COUNT),
        },
        "courses": {
            "title": gettext("Treatment courses started, completed and interrupted"),
            "tables": [
                ("rows", gettext("By substance category"), by_substance,
                 [_col("started", gettext("Courses started")), _col("completed", gettext("Courses completed")),
                  _col("interrupted", gettext("Courses interrupted")),
                  _col("completion_rate", gettext("Completion rate"), RATE)]),
            ],
            "definition": gettext(
                "Started: courses whose start date falls in the year. Completed / interrupted: courses whose "
                "history records the step to completed / interrupted on a day of the year. Completion rate: "
                "completed / (completed + interrupted)."
            ),
            "chart": ("rows", [("started", gettext("Courses started")), ("completed", gettext("Courses completed")),
                               ("interrupted", gettext("Courses interrupted"))], COUNT),
        },
        "attendance": {
            "title": gettext("Attendance rate"),
            "tables": [
                ("rows", gettext("By substance category"), by_substance,
                 [_col("courses", gettext("Courses in the year")), _col("planned", gettext("Sessions planned (months)")),
                  _col("held", gettext("Sessions held (months)")), _col("rate", gettext("Attendance rate"), RATE),
                  _col("records", gettext("Treatment records"))]),
            ],
            "definition": gettext(
                "A course's plan is one session a calendar month over its period (start to end date, or the day "
                "it was completed or interrupted), within the year and up to today. Held: the months of that "
                "plan with at least one treatment record of the course (laboratory tests are not sessions). "
                "Attendance rate: months held / months planned."
            ),
            "chart": ("rows", [("rate", gettext("Attendance rate"))], RATE),
        },
        "retention": {
            "title": gettext("Retention rate"),
            "tables": [("rows", gettext("Cases opened in the year, by substance category"), by_substance,
                        retention_cols)],
            "definition": gettext(
                "Cohort: the cases opened in the year. A case is still in treatment N months after its opening "
                "date when it is not closed by that day and one of its courses covers that day and had not "
                "stopped before it (still in progress, or with a treatment record on or after that day). Only "
                "cases whose day has come count (due). Retention rate: in treatment / due."
            ),
            "chart": ("rows", [(f"rate_{m}", gettext("%(months)d months", months=m)) for m in RETENTION_MONTHS], RATE),
        },
        "assessments": {
            "title": gettext("Assessments done on time"),
            "tables": [
                ("rows", gettext("Courses started in the year, by substance category"), by_substance,
                 [_col("courses", gettext("Courses started")), _col("initial_done", gettext("Initial assessment done")),
                  _col("initial_on_time", gettext("Initial assessment on time")),
                  _col("initial_rate", gettext("Initial on-time rate"), RATE),
                  _col("follow_up_due", gettext("Follow-up due")),
                  _col("follow_up_on_time", gettext("Follow-up on time")),
                  _col("follow_up_late", gettext("Follow-up late")),
                  _col("follow_up_overdue", gettext("Follow-up overdue")),
                  _col("follow_up_rate", gettext("Follow-up on-time rate"), RATE),
                  _col("on_due_list", gettext("On the due list today"))]),
            ],
            "definition": None,  # worded with the configured days and months: see definition()
            "chart": ("rows", [("initial_rate", gettext("Initial on-time rate")),
                               ("follow_up_rate", gettext("Follow-up on-time rate"))], RATE),
        },
    }  # fmt: skip


def definition(section: str, layout: dict, result: dict) -> str:
    if section == "assessments":
        return gettext(
            "Courses started in the year. The initial assessment is on time when answered within %(days)d days "
            "of the start. The follow-up falls due %(months)d months after the start: on time when answered on "
            "or before that day, late after it, overdue when still missing after it. The due list is the list "
            "of courses missing a required assessment today.",
            days=result["initial_days"], months=result["follow_up_months"],
        )  # fmt: skip
    return layout["definition"]


def cell(value, kind: str) -> str:
    if kind == RATE:
        return f"{value}%" if value is not None else "—"
    return f"{int(value):,}"


# ------------------------------------------------------------------ chart
def bar_chart(
    chart_id: str, title: str, rows: list[dict], series: list[tuple[str, str]], kind: str
) -> Markup:
    """Grouped horizontal bars, one group per row (substance, total last) and one bar per
    series, as inline SVG drawn on the server (no network, no script), like the cessation
    statistics' chart. Rates are drawn on 0–100 %, counts on 0–the largest value."""
    bar_x, bar_width, bar_h, gap = 150, 330, 14, 10
    values = [float(Decimal(r[k])) if r[k] is not None else 0.0 for r in rows for k, _ in series]
    top = 100.0 if kind == RATE else max(values + [1.0])
    group_h = bar_h * len(series) + gap
    legend_h = 22
    height = legend_h + len(rows) * group_h + 30
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" id="{escape(chart_id)}" class="report-chart" role="img" '
        f'width="560" height="{height}" aria-label="{escape(title)}">',
        f"<title>{escape(title)}</title>",
    ]
    x = 0
    for n, (_key, label) in enumerate(series):
        colour = _COLOURS[n % len(_COLOURS)]
        parts.append(f'<rect x="{x}" y="4" width="12" height="12" fill="{colour}"></rect>')
        parts.append(f'<text x="{x + 16}" y="15" font-size="12">{escape(label)}</text>')
        x += 24 + 13 * len(str(label))
    for g, row in enumerate(rows):
        y0 = legend_h + g * group_h
        weight = ' font-weight="bold"' if row["key"] == TOTAL else ""
        parts.append(
            f'<text x="0" y="{y0 + group_h // 2 + 2}" font-size="13"{weight}>{escape(row["label"])}</text>'
        )
        for n, (key, _label) in enumerate(series):
            value = row[key]
            number = float(Decimal(value)) if value is not None else 0.0
            width = int(min(number, top) * bar_width / top) if top else 0
            y = y0 + n * bar_h
            parts.append(
                f'<rect class="bar" data-row="{escape(row["key"])}" data-series="{escape(key)}" x="{bar_x}" '
                f'y="{y}" width="{width}" height="{bar_h - 2}" fill="{_COLOURS[n % len(_COLOURS)]}"></rect>'
            )
            parts.append(f'<text x="{bar_x + width + 4}" y="{y + bar_h - 3}" font-size="11">'
                         f"{escape(cell(value, kind))}</text>")  # fmt: skip
    axis_y = legend_h + len(rows) * group_h + 2
    parts.append(
        f'<line x1="{bar_x}" y1="{axis_y}" x2="{bar_x + bar_width}" y2="{axis_y}" stroke="#999"></line>'
    )
    ticks = (0, 50, 100) if kind == RATE else (0, top / 2, top)
    for n, tick in enumerate(ticks):
        label = f"{int(tick)}%" if kind == RATE else f"{int(tick):,}"
        parts.append(
            f'<text x="{bar_x + n * bar_width // 2 - 8}" y="{axis_y + 16}" font-size="11">{label}</text>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))


# ------------------------------------------------------------------ scope and request
def _scope_of_request():
    """(scope, county) of ?county= within the user's scope (ReportRequestError otherwise)."""
    return report_scope(current_scope(), request.args.get("county"))


def year_error(text: str) -> str:
    """The bad-year message, quoting what was typed (shortened)."""
    return f"「{text[:20]}」：" + gettext("Give the year as an ROC year, e.g. 113.")


# ------------------------------------------------------------------ Excel
def write_workbook(sections: list[tuple[str, dict]], scope_name: str) -> str:
    """One sheet per section: title, each table with zh_TW headers, its definition."""
    import xlsxwriter

    fd, path = tempfile.mkstemp(suffix=".xlsx", prefix="addiction-report-")
    os.close(fd)
    all_layouts = layouts()
    workbook = xlsxwriter.Workbook(path, {"strings_to_formulas": False, "strings_to_urls": False})
    title_f = workbook.add_format({"bold": True, "font_size": 14})
    caption_f = workbook.add_format({"bold": True})
    header_f = workbook.add_format({"bold": True, "border": 1, "align": "center", "valign": "vcenter",
                                    "text_wrap": True, "bg_color": "#D9E1F2"})  # fmt: skip
    name_f = workbook.add_format({"border": 1})
    bold_f = workbook.add_format({"border": 1, "bold": True})
    count_f = workbook.add_format({"border": 1, "num_format": "#,##0"})
    percent_f = workbook.add_format({"border": 1, "num_format": "0.00%"})
    note_f = workbook.add_format({"italic": True})
    for section, result in sections:
        layout = all_layouts[section]
        sheet = workbook.add_worksheet(layout["title"][:31])
        sheet.set_column(0, 0, 22)
        sheet.set_column(1, 12, 14)
        sheet.write_string(0, 0, gettext("ROC %(year)d %(title)s (%(scope)s)", year=result["roc_year"],
                                         title=layout["title"], scope=scope_name), title_f)  # fmt: skip
        row = 2
        for key, caption, first, columns in layout["tables"]:
            sheet.write_string(row, 0, caption, caption_f)
            row += 1
            sheet.write_string(row, 0, first, header_f)
            for c, (_k, header, _kind) in enumerate(columns, start=1):
                sheet.write_string(row, c, header, header_f)
            sheet.set_row(row, 45)
            row += 1
            for r in result[key]:
                sheet.write_string(row, 0, r["label"], bold_f if r["key"] == TOTAL else name_f)
                for c, (k, _header, kind) in enumerate(columns, start=1):
                    value = r[k]
                    if kind == RATE:
                        if value is None:
                            sheet.write_string(row, c, "—", name_f)
                        else:
                            sheet.write_number(row, c, float(Decimal(value) / 100), percent_f)
                    else:
                        sheet.write_number(row, c, int(value), count_f)
                row += 1
            row += 1
        sheet.write_string(row, 0, definition(section, layout, result), note_f)
    workbook.close()
    return path


# ------------------------------------------------------------------ screens
def other_reports() -> list[tuple[str, str]]:
    """Links to the programme's other reports the user may open, beside the sections.

    The subsidy claimed / approved / returned report (A11, views/addiction/claims.py) and the
    spending against budget, each guarded by its permission and opened for the same year."""
    from flask import current_app, url_for

    from domain.addiction.grants import CLAIM_REPORT

    links = []
    if current_app.appbuilder.sm.has_access("can_read", CLAIM_REPORT):
        year = request.args.get("year")
        args = {"year": year} if year and year.isascii() and year.isdigit() and len(year) <= 4 else {}
        links.append((gettext("Subsidy claims against budget"), url_for("ClaimReportView.index", **args)))
    if current_app.appbuilder.sm.has_access("can_read", SCHEME_SPENDING):
        links.append(
            (gettext("Subsidy spending against budget"), url_for("SchemeSpendingView.index"))
        )
    return links


class AddictionReportView(ScopedReportView):
    """成癮醫療業務統計: the programme's yearly figures in the user's scope, all sections."""

    route_base = "/addictionreport"
    default_view = "index"
    class_permission_name = ADDICTION_REPORT
    method_permission_name = {"index": "read", "export": "export"}

    @expose("/")
    @has_access
    def index(self):
        user_scope = current_scope()
        try:
            scope, county = _scope_of_request()
        except ReportRequestError as exc:  # a scope refused: the status page, no figures
            abort(exc.status)
        typed = request.args.get("year")
        error = None
        try:
            year = parse_year(typed)
        except ReportRequestError:  # said on the page, which shows this year's figures
            error, year = year_error(typed or ""), parse_year(None)
        all_layouts = layouts()
        sections = []
        for section in SECTIONS:
            layout = all_layouts.get(section)
            if layout is None:
                continue
            result = report_section(section, year, scope)
            key, series, kind = layout["chart"]
            sections.append({
                "key": section, "layout": layout, "result": result,
                "definition": definition(section, layout, result),
                "chart": bar_chart(f"chart-{section}", layout["title"], result[key], series, kind),
            })  # fmt: skip
        counties = (
            db.session.scalars(select(County).order_by(County.sort_order)).all()
            if user_scope.national
            else []
        )
        return self.render_template(
            "addiction/reports.html",
            title=gettext("Addiction treatment statistics"),
            roc_year=roc_year(year),
            years=list(range(roc_year(clock.today().year), FIRST_ROC_YEAR - 1, -1)),
            counties=counties,
            county=county,
            scope_name=scope_label(scope, county),
            error=error,
            typed=typed,
            sections=sections,
            cell=cell,
            total=TOTAL,
            other_reports=other_reports(),
        )

    @expose("/export/<section>")
    @has_access
    def export(self, section):
        if section != "all" and section not in SECTIONS:
            abort(404)
        try:
            scope, county = _scope_of_request()
            year = parse_year(request.args.get("year"))
        except ReportRequestError as exc:
            abort(exc.status)
        names = list(SECTIONS) if section == "all" else [section]
        names = [n for n in names if n in layouts()]
        results = [(n, report_section(n, year, scope)) for n in names]
        who = scope_label(scope, county)
        path = write_workbook(results, who)
        title = (
            gettext("Addiction treatment statistics")
            if section == "all"
            else layouts()[section]["title"]
        )
        return send_xlsx(path, export_file_name(f"{title}-{roc_year(year)}年-{who}"))


class AddictionReportApi(BaseApi):
    """GET /api/v1/addictionreport/<section>?year=114[&county=KHH]: one section's tables as
    JSON in the caller's scope (national users may name a county; others only their own)."""

    resource_name = "addictionreport"
    class_permission_name = ADDICTION_REPORT
    method_permission_name = {"section": "read"}
    allow_browser_login = True
    openapi_spec_tag = "Reports"

    @expose("/<section>", methods=["GET"])
    @protect()
    def section(self, section):
        """One section of 成癮醫療業務統計 for ?year= (ROC or Gregorian) in the caller's scope.
        ---
        get:
          parameters:
          - in: path
            name: section
            required: true
            schema:
              type: string
              enum: [cases, courses, attendance, retention, assessments]
          - in: query
            name: year
            required: false
            schema:
              type: string
            description: ROC year (114) or Gregorian (2025); default this year
          - in: query
            name: county
            required: false
            schema:
              type: string
            description: county code (national users only)
          responses:
            200:
              description: the section's tables (rows by category, the total last; rates are
                percentages with two decimals as text, null without a denominator)
            400:
              description: bad year, named per field
            401:
              description: no token, or a forged or expired one
            403:
              description: a scope outside the caller's
            404:
              description: no such section or county
        """
        if section not in SECTIONS:
            return self.response(404, message=str(ReportNotFound(gettext("No such report."))))
        try:
            scope, county = _scope_of_request()
        except ReportRequestError as exc:
            return self.response(exc.status, message=exc.answer())
        typed = request.args.get("year")
        try:
            year = parse_year(typed)
        except ReportRequestError:
            return self.response(400, message={"year": [year_error(typed or "")]})
        result = report_section(section, year, scope)
        return self.response(
            200,
            **{k: v for k, v in result.items() if k not in ("year", "roc_year")},
            year=result["roc_year"],
            gregorian_year=result["year"],
            scope={
                "kind": scope.kind,
                "county": county.code if county is not None else None,
                "name": scope_label(scope, county),
            },  # fmt: skip
        )


def register(appbuilder, category, category_label, category_icon) -> None:
    appbuilder.add_view(
        AddictionReportView, "Addiction treatment statistics", label=_l("Addiction treatment statistics"),
        icon="fa-bar-chart", category=category, category_label=category_label, category_icon=category_icon,
    )  # fmt: skip
    appbuilder.add_api(AddictionReportApi)


__all__ = ["AddictionReportApi", "AddictionReportView", "bar_chart", "layouts", "write_workbook"]
