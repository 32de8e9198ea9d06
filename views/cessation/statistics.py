"""年度戒菸服務統計: bulletin tables 1–3 (rule C9) for a year, in the user's scope, as a
screen, an Excel workbook and a JSON API (GET /api/v1/reports/cessation?year=113)."""

from __future__ import annotations

from decimal import Decimal

from flask import abort, request
from flask_appbuilder import expose
from flask_appbuilder.api import BaseApi
from flask_appbuilder.security.decorators import has_access, protect
from flask_babel import gettext
from markupsafe import Markup, escape
from sqlalchemy import select

from core import clock, dates
from core.data.scope import current_scope
from core.export.xlsx import export_file_name, send_xlsx
from core.extensions import db
from core.web.views import ScopedReportView
from domain.cessation.grants import CESSATION_STATISTICS
from domain.cessation.statistics import (
    TOTAL,
    StatisticsRequestError,
    cessation_statistics,
    parse_year,
    report_scope,
)
from domain.registry.scopes import scope_label
from models.registry.reference import County

RESOURCE = CESSATION_STATISTICS


def labels() -> dict[str, str]:
    """Headers and notes, worded as in the bulletin (section 肆)."""
    return {
        "level": gettext("By level"),
        "item": gettext("Item"),
        "total": gettext("Total"),
        "contracted_institutions": gettext("Number of contracted institutions"),
        "executing_institutions": gettext("Executing institutions"),
        "contracted_practitioners": gettext("Contracted practitioners"),
        "executing_practitioners": gettext("Executing practitioners"),
        "rate": gettext("Execution rate"),
        "medication_visits": gettext("Medication visits"),
        "education_visits": gettext("Education visits"),
        "medication_average": gettext("Average medication visits per person (visits/person)"),
        "education_average": gettext("Average education visits per person (visits/person)"),
        "footnote": gettext(
            "*Note: some practitioners serve at institutions of different levels, so the levels "
            "may add up to more than the total."
        ),
    }


def titles(roc_year: int) -> list[str]:
    return [
        gettext("Table 1. Cessation service contracts and execution by institution level, ROC %(year)d", year=roc_year),
        gettext("Table 2. Cessation service contracts and execution of practitioners by level, ROC %(year)d", year=roc_year),
        gettext("Table 3. Medication and education services by level, ROC %(year)d", year=roc_year),
    ]  # fmt: skip


def definitions(roc_year: int) -> list[str]:
    """Rule C9, worded for the reader, one paragraph per table."""
    return [
        gettext(
            "Contracted: institutions holding a contract that covers %(year)d/12/31. Executing: contracted "
            "institutions with at least one visit record dated in ROC %(year)d. Execution rate = executing / "
            "contracted.",
            year=roc_year,
        ),
        gettext(
            "Contracted: practitioners with a service assignment covering %(year)d/12/31 at a contracted "
            "institution of that level. Executing: contracted practitioners who are the practitioner of at "
            "least one visit dated in ROC %(year)d at an institution of that level. A practitioner counts once "
            "in every level they qualify in, and once in the total.",
            year=roc_year,
        ),
        gettext(
            "Visits dated in ROC %(year)d at institutions of that level, whatever their contract status. A "
            "medication visit is a visit with medication, an education visit one with education; a visit with "
            "both counts in both. Averages divide by the distinct quitters who received that service at that "
            "level; the total row divides by distinct quitters over all levels.",
            year=roc_year,
        ),
    ]


def row_name(row: dict, total_label: str) -> str:
    return total_label if row["level"] == TOTAL else row["name"]


def rate_chart(rows: list[dict], title: str) -> Markup:
    """A horizontal bar chart of the execution rate per level, as inline SVG (no network)."""
    levels = [r for r in rows if r["level"] != TOTAL]
    bar_x, bar_width, height = 90, 300, 22
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" id="execution-rate-chart" role="img" width="460" '
        f'height="{len(levels) * height + 30}" aria-label="{escape(title)}">',
        f'<title>{escape(title)}</title>',
    ]
    for n, row in enumerate(levels):
        y = n * height + 5
        value = Decimal(row["rate"]) if row["rate"] is not None else Decimal(0)
        width = int(value * bar_width / 100)
        parts.append(f'<text x="0" y="{y + 15}" font-size="13">{escape(row["name"])}</text>')
        parts.append(
            f'<rect class="bar" data-level="{escape(row["level"])}" x="{bar_x}" y="{y}" width="{width}" '
            f'height="{height - 6}" fill="#337ab7"></rect>'
        )
        label = f"{row['rate']}%" if row["rate"] is not None else "—"
        parts.append(f'<text x="{bar_x + width + 5}" y="{y + 15}" font-size="12">{label}</text>')
    axis_y = len(levels) * height + 8
    parts.append(f'<line x1="{bar_x}" y1="{axis_y}" x2="{bar_x + bar_width}" y2="{axis_y}" stroke="#999"></line>')
    for pct in (0, 50, 100):
        parts.append(
            f'<text x="{bar_x + pct * bar_width // 100 - 8}" y="{axis_y + 16}" font-size="11">{pct}%</text>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))


def _request():
    """(year, scope, county) of the request, from ?year= and ?county= within the user's scope."""
    year = parse_year(request.args.get("year"))
    scope, county = report_scope(current_scope(), request.args.get("county"))
    return year, scope, county


def write_workbook(result: dict, scope_name: str) -> str:
    """The three tables formatted like the bulletin, in one sheet; returns the file's path."""
    import os
    import tempfile

    import xlsxwriter

    fd, path = tempfile.mkstemp(suffix=".xlsx", prefix="cessation-")
    os.close(fd)
    text = labels()
    roc_year = result["roc_year"]
    workbook = xlsxwriter.Workbook(path, {"strings_to_formulas": False, "strings_to_urls": False})
    sheet = workbook.add_worksheet(gettext("ROC %(year)d", year=roc_year))
    title = workbook.add_format({"bold": True, "font_size": 14})
    caption = workbook.add_format({"bold": True})
    header = workbook.add_format({"bold": True, "border": 1, "align": "center", "valign": "vcenter",
                                  "text_wrap": True, "bg_color": "#D9E1F2"})  # fmt: skip
    name = workbook.add_format({"border": 1})
    count = workbook.add_format({"border": 1, "num_format": "#,##0"})
    percent = workbook.add_format({"border": 1, "num_format": "0.00%"})
    decimal1 = workbook.add_format({"border": 1, "num_format": "0.0"})
    bold_name = workbook.add_format({"border": 1, "bold": True})
    note = workbook.add_format({"italic": True, "text_wrap": False})
    sheet.set_column(0, 0, 14)
    sheet.set_column(1, 4, 18)
    sheet.write_string(0, 0, gettext("ROC %(year)d cessation services (%(scope)s)", year=roc_year, scope=scope_name), title)
    table_titles = titles(roc_year)
    explain = definitions(roc_year)
    row = 2

    def rate_table(index, rows, contracted_label, executing_label, total_label):
        nonlocal row
        sheet.write_string(row, 0, table_titles[index], caption)
        row += 1
        for col, label in enumerate([text["level"], contracted_label, executing_label, text["rate"]]):
            sheet.write_string(row, col, label, header)
        row += 1
        for r in rows:
            sheet.write_string(row, 0, row_name(r, total_label), bold_name if r["level"] == TOTAL else name)
            sheet.write_number(row, 1, r["contracted"], count)
            sheet.write_number(row, 2, r["executing"], count)
            if r["rate"] is None:
                sheet.write_string(row, 3, "—", name)
            else:
                sheet.write_number(row, 3, float(Decimal(r["rate"]) / 100), percent)
            row += 1

    rate_table(0, result["institutions"], text["contracted_institutions"], text["executing_institutions"], text["total"])
    sheet.write_string(row, 0, explain[0], note)
    row += 2
    rate_table(1, result["practitioners"], text["contracted_practitioners"], text["executing_practitioners"],
               text["total"] + "*")  # fmt: skip
    sheet.write_string(row, 0, text["footnote"], note)
    sheet.write_string(row + 1, 0, explain[1], note)
    row += 3
    sheet.write_string(row, 0, table_titles[2], caption)
    row += 1
    for col, label in enumerate([text["item"], text["medication_visits"], text["education_visits"],
                                 text["medication_average"], text["education_average"]]):  # fmt: skip
        sheet.write_string(row, col, label, header)
    sheet.set_row(row, 45)
    row += 1
    for r in result["services"]:
        sheet.write_string(row, 0, row_name(r, text["total"]), bold_name if r["level"] == TOTAL else name)
        sheet.write_number(row, 1, r["medication_visits"], count)
        sheet.write_number(row, 2, r["education_visits"], count)
        for col, key in ((3, "medication_average"), (4, "education_average")):
            if r[key] is None:
                sheet.write_string(row, col, "—", name)
            else:
                sheet.write_number(row, col, float(r[key]), decimal1)
        row += 1
    sheet.write_string(row, 0, explain[2], note)
    workbook.close()
    return path


class CessationStatisticsView(ScopedReportView):
    """年度戒菸服務統計 (C9): tables 1–3 of the bulletin for a year, in the user's scope."""

    route_base = "/cessationstats"
    default_view = "index"
    class_permission_name = RESOURCE
    method_permission_name = {"index": "read", "export": "export"}

    @expose("/")
    @has_access
    def index(self):
        user_scope = current_scope()
        error = None
        try:
            scope, county = report_scope(user_scope, request.args.get("county"))
        except StatisticsRequestError as exc:  # a scope refused: the bare status page, no report
            abort(exc.status)
        try:
            year = parse_year(request.args.get("year"))
        except StatisticsRequestError as exc:  # not a flash: the page says it and shows this year
            error, year = str(exc), parse_year(None)
        result = cessation_statistics(year, scope)
        roc_year = result["roc_year"]
        counties = db.session.scalars(select(County).order_by(County.sort_order)).all() if user_scope.national else []
        text = labels()
        return self.render_template(
            "reports/cessation.html",
            title=gettext("Yearly cessation statistics"),
            result=result,
            roc_year=roc_year,
            years=list(range(dates.roc_year(clock.today().year), 99, -1)),
            counties=counties,
            county=county,
            scope_name=scope_label(scope, county),
            error=error,
            text=text,
            table_titles=titles(roc_year),
            definitions=definitions(roc_year),
            chart=rate_chart(result["institutions"], gettext("Execution rate of contracted institutions by level")),
            total=TOTAL,
        )

    @expose("/export")
    @has_access
    def export(self):
        try:
            year, scope, county = _request()
        except StatisticsRequestError as exc:  # a scope refused: the bare status page, no report
            abort(exc.status)
        result = cessation_statistics(year, scope)
        path = write_workbook(result, scope_label(scope, county))
        # 戒菸服務統計-113年-臺北市-1151201-1707.xlsx: the year and whose figures, in zh_TW.
        stats = gettext("Cessation statistics")
        name = f"{stats}-{result['roc_year']}年-{scope_label(scope, county)}"
        return send_xlsx(path, export_file_name(name))


class CessationStatisticsApi(BaseApi):
    """GET /api/v1/reports/cessation?year=113[&county=TPE]: tables 1–3 as JSON, in the
    caller's scope (national users may name a county; others only their own)."""

    resource_name = "reports"
    class_permission_name = RESOURCE
    method_permission_name = {"cessation": "read"}
    allow_browser_login = True
    openapi_spec_tag = "Reports"

    @expose("/cessation", methods=["GET"])
    @protect()
    def cessation(self):
        """Bulletin tables 1–3 (rule C9) for ?year= (ROC or Gregorian) in the caller's scope.
        ---
        get:
          responses:
            200:
              description: the three tables
            400:
              description: bad year
            401:
              description: no token, or a forged or expired one
            403:
              description: a scope outside the caller's
            404:
              description: no such county
        """
        try:
            year, scope, county = _request()
        except StatisticsRequestError as exc:  # a BaseApi, not a ScopedModelRestApi: answered here
            return self.response(exc.status, message=exc.answer())
        result = cessation_statistics(year, scope)
        return self.response(
            200,
            year=result["roc_year"],
            gregorian_year=result["year"],
            scope={"kind": scope.kind, "county": county.code if county is not None else None,
                   "name": scope_label(scope, county)},  # fmt: skip
            institutions=result["institutions"],
            practitioners=result["practitioners"],
            services=result["services"],
        )
