"""批次上傳: institutions upload visits as .xlsx in the published template."""

from __future__ import annotations

import re
import uuid
from pathlib import Path

import xlsxwriter
from flask import abort, current_app, flash, g, redirect, request, send_file, url_for
from flask_appbuilder import BaseView, expose
from flask_appbuilder.security.decorators import has_access
from flask_babel import gettext
from flask_babel import lazy_gettext as _l

from core.export.xlsx import cell_text
from domain.cessation.batch import (
    COLUMNS,
    BatchError,
    Budget,
    bound,
    headers,
    import_rows,
    read_rows,
    validate,
)
from domain.cessation.grants import VISIT
from domain.cessation.visits import VisitRuleError

REPORT_FOLDER = "batch-reports"


def _report_folder() -> Path:
    folder = Path(current_app.config["UPLOAD_FOLDER"]) / REPORT_FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def write_report(rows) -> str:
    """The uploaded rows with an error column per row; named for its owner only."""
    name = f"{g.user.id}-{uuid.uuid4().hex}.xlsx"
    workbook = xlsxwriter.Workbook(str(_report_folder() / name), {"strings_to_formulas": False})
    sheet = workbook.add_worksheet(gettext("Visit records")[:31])
    red = workbook.add_format({"font_color": "#C00000"})
    for col, header in enumerate([*headers(), gettext("Errors")]):
        sheet.write_string(0, col, header)
    for index, row in enumerate(rows, start=1):
        for col, value in enumerate(row.raw):
            value = cell_text(value)
            (sheet.write_string if isinstance(value, str) else sheet.write_number)(index, col, value)
        sheet.write_string(index, len(COLUMNS), "；".join(row.errors), red)
    workbook.close()
    return name


class VisitUploadView(BaseView):
    """批次上傳就醫資料: the whole file is checked first; one bad row imports nothing."""

    route_base = "/visitupload"
    default_view = "index"
    class_permission_name = VISIT
    method_permission_name = {"index": "create", "template": "create", "report": "create"}

    @expose("/", methods=["GET", "POST"])
    @has_access
    def index(self):
        errors, report = [], None
        if request.method == "POST":
            upload = request.files.get("file")
            # Never more than the limit in memory: a larger file is refused unread.
            max_bytes = bound("BATCH_MAX_BYTES")
            data = upload.read(max_bytes + 1) if upload else b""
            if not data:
                flash(gettext("Please choose the file to upload."), "danger")
            else:
                try:
                    budget = Budget()  # reading and checking share one time budget
                    rows = read_rows(data, budget)
                    validate(rows, budget)
                    errors = [row for row in rows if row.errors]
                    if not errors:
                        count = import_rows(rows)
                        flash(gettext("%(n)d visit records imported.", n=count), "success")
                        return redirect(url_for("VisitView.list"))
                except BatchError as exc:
                    flash(str(exc), "danger")
                except VisitRuleError:
                    errors = [row for row in rows if row.errors]
                if errors:
                    report = write_report(rows)
                    flash(gettext("%(n)d rows have errors; nothing was imported. Download the marked file, correct it and upload it again.", n=len(errors)), "danger")
        return self.render_template(
            "visits/upload.html", errors=errors[:100], report=report, title=gettext("Batch upload of visit records")
        )

    @expose("/template")
    @has_access
    def template(self):
        name = f"template-{uuid.uuid4().hex}.xlsx"
        path = _report_folder() / name
        workbook = xlsxwriter.Workbook(str(path))
        sheet = workbook.add_worksheet(gettext("Visit records")[:31])
        bold = workbook.add_format({"bold": True, "bg_color": "#DDEBF7"})
        for col, header in enumerate(headers()):
            sheet.write_string(0, col, header, bold)
            sheet.set_column(col, col, 16)
        notes = workbook.add_worksheet(gettext("Instructions")[:31])
        for line, text in enumerate(TEMPLATE_NOTES):
            notes.write_string(line, 0, str(text))
        workbook.close()
        response = send_file(path, as_attachment=True, download_name="visit-upload-template.xlsx")
        path.unlink(missing_ok=True)
        return response

    @expose("/report/<name>")
    @has_access
    def report(self, name):
        if not re.fullmatch(r"\d+-[0-9a-f]{32}\.xlsx", name) or not name.startswith(f"{g.user.id}-"):
            abort(404)
        path = _report_folder() / name
        if not path.is_file():
            abort(404)
        return send_file(path, as_attachment=True, download_name="visit-upload-errors.xlsx")


TEMPLATE_NOTES = [
    _l("One visit per row, from the second row on; keep the header row as it is."),
    _l("Dates: ROC (114/04/01 or 114/4/1) or ISO (2025-04-01)."),
    _l("Give medication (name and days), education (minutes) or both."),
    _l("A new quitter needs name, sex (M/F) and birth date; a known one only the national ID and name."),
    _l("The same rules as the form apply: your own institutions, the entry deadline, the practitioner's assignment and the 5-day rule."),
    _l("If any row fails, nothing is imported: you get the file back with an error column."),
]
