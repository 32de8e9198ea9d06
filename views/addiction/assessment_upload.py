"""評估批次匯入 (A3, A4): a nurse's workbook of one instrument's responses, one row each,
checked as a whole and imported all or nothing (domain/addiction/assessment_bulk.py on
core/imports.py), with a template per instrument and the marked file handed back."""

from __future__ import annotations

import io

import xlsxwriter
from flask import abort, current_app, flash, redirect, request, send_file, url_for
from flask_appbuilder import BaseView, expose
from flask_appbuilder.security.decorators import has_access
from flask_babel import gettext

from core.dates import to_roc
from core.export.xlsx import XLSX_MIMETYPE, cell_text, export_file_name
from core.imports import ErrorReports
from core.web.views import refusals_flashed, valid_pk
from domain.addiction.assessment_bulk import import_workbook, template_courses, workbook
from domain.addiction.assessments import usable_instruments
from domain.addiction.grants import ASSESSMENT
from domain.addiction.scoring import answerable, options_of

#: The marked copies of refused uploads (core/imports.py ErrorReports), for their uploader only.
REPORTS = ErrorReports("assessment-reports")


def _instrument(pk):
    """A usable instrument (in scope, enabled, published) of this id, or 404."""
    if not valid_pk(pk):
        abort(404)
    found = next((i for i in usable_instruments() if i.id == int(pk)), None)
    if found is None:
        abort(404)
    return found


def write_template(instrument, target) -> None:
    """The instrument's workbook: the header row (dropdowns of the labels for choice items),
    the instructions, and the courses in progress the user may assess (number, patient, dates)."""
    sheet_def = workbook(instrument)
    book = xlsxwriter.Workbook(target, {"strings_to_formulas": False, "strings_to_urls": False})
    sheet = book.add_worksheet(sheet_def._sheet_name())
    bold = book.add_format({"bold": True, "bg_color": "#DDEBF7", "text_wrap": True})
    text = book.add_format({"num_format": "@"})
    for col, header in enumerate(sheet_def.headers()):
        sheet.write_string(0, col, header, bold)
        sheet.set_column(col, col, 16, text if col in (1, 2) else None)
    sheet.freeze_panes(1, 3)
    newest = max((v for v in instrument.versions if v.published), key=lambda v: v.number)
    items = {i["linkId"]: i for i in answerable(newest.definition)}
    max_rows = sheet_def.max_rows
    for col, column in enumerate(sheet_def.columns):
        item = items.get(column.key[5:]) if column.key.startswith("item:") else None
        if item is None or item["type"] == "multi":
            continue
        labels = [str(o.get("display") or o["code"]) for o in options_of(newest.definition, item)]
        if labels and sum(len(x) + 1 for x in labels) < 255:  # Excel's limit on a list's text
            sheet.data_validation(1, col, max_rows, col, {"validate": "list", "source": labels,
                                                          "error_type": "warning"})  # fmt: skip
    notes = book.add_worksheet(gettext("Instructions")[:31])
    for line, note in enumerate(sheet_def.notes):
        notes.write_string(line, 0, cell_text(str(note)))
    courses = book.add_worksheet(gettext("Courses in progress")[:31])
    for col, header in enumerate([gettext("Treatment course number"), gettext("Patient"), gettext("Start date"),
                                  gettext("End date")]):  # fmt: skip
        courses.write_string(0, col, header, bold)
    for row, (course_id, patient, start, end) in enumerate(template_courses(), start=1):
        courses.write_number(row, 0, course_id)
        courses.write_string(row, 1, cell_text(patient))
        courses.write_string(row, 2, to_roc(start))
        courses.write_string(row, 3, to_roc(end))
    book.close()


class AssessmentUploadView(BaseView):
    """評估批次匯入: choose the instrument, download its template, upload the filled file;
    one bad row imports nothing and hands the file back with an error column."""

    route_base = "/assessmentupload"
    default_view = "index"
    class_permission_name = ASSESSMENT
    method_permission_name = {"index": "create", "template": "create", "report": "create"}

    @expose("/", methods=["GET", "POST"])
    @has_access
    def index(self):
        """The instruments with their templates; the upload and its outcome."""
        errors, report, chosen = [], None, None
        instruments = usable_instruments()
        if request.method == "POST":
            chosen = _instrument(request.form.get("instrument"))
            upload = request.files.get("file")
            limit = int(current_app.config.get("ASSESSMENT_BULK_MAX_BYTES", 8 * 1024 * 1024))
            data = upload.read(limit + 1) if upload else b""  # never more than the limit in memory
            if not data:
                flash(gettext("Please choose the file to upload."), "danger")
            else:
                with refusals_flashed():  # a file not in the template (WorkbookRefused)
                    sheet, outcome = import_workbook(chosen, data)
                    errors = outcome.failed
                    if not errors:
                        flash(gettext("%(n)d assessments imported: %(title)s.", n=outcome.imported,
                                      title=chosen.title), "success")  # fmt: skip
                        return redirect(url_for("AssessmentView.list"))
                    report = REPORTS.save(sheet, outcome.rows)
                    flash(gettext("%(n)d rows have errors; nothing was imported. Download the marked file, "
                                  "correct it and upload it again.", n=len(errors)), "danger")  # fmt: skip
        return self.render_template(
            "addiction/assessment_upload.html", title=gettext("Batch upload of assessments"),
            instruments=instruments, chosen=chosen, errors=errors[:100], more=max(len(errors) - 100, 0),
            report=report,
        )  # fmt: skip

    @expose("/template/<pk>")
    @has_access
    def template(self, pk):
        """The instrument's template (.xlsx)."""
        instrument = _instrument(pk)
        buffer = io.BytesIO()
        write_template(instrument, buffer)
        buffer.seek(0)
        name = export_file_name(f"{gettext('Batch upload of assessments')}-{instrument.title}")
        return send_file(buffer, as_attachment=True, download_name=name, mimetype=XLSX_MIMETYPE)

    @expose("/report/<name>")
    @has_access
    def report(self, name):
        """The uploaded file with its error column, for the user who uploaded it only."""
        return REPORTS.send(name, export_file_name(gettext("Upload errors")))
