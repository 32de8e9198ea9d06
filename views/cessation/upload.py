"""批次上傳: institutions upload visits as .xlsx in the published template."""

from __future__ import annotations

import io

from flask import flash, redirect, request, send_file, url_for
from flask_appbuilder import BaseView, expose
from flask_appbuilder.security.decorators import has_access
from flask_babel import gettext

from core.imports import ErrorReports, bound
from core.web.views import refusals_flashed
from domain.cessation.batch import import_visits, spreadsheet
from domain.cessation.grants import VISIT

#: The marked copies of refused uploads (core/imports.py ErrorReports), for their uploader only.
REPORTS = ErrorReports("batch-reports")


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
                with refusals_flashed():  # a file not in the template (BatchError)
                    outcome = import_visits(data)
                    errors = outcome.failed
                    if not errors:
                        flash(gettext("%(n)d visit records imported.", n=outcome.imported), "success")
                        return redirect(url_for("VisitView.list"))
                    report = REPORTS.save(spreadsheet(), outcome.rows)
                    flash(gettext("%(n)d rows have errors; nothing was imported. Download the marked file, correct it and upload it again.", n=len(errors)), "danger")
        return self.render_template(
            "visits/upload.html", errors=errors[:100], report=report, title=gettext("Batch upload of visit records")
        )

    @expose("/template")
    @has_access
    def template(self):
        buffer = io.BytesIO()
        spreadsheet().write_template(buffer)
        buffer.seek(0)
        return send_file(buffer, as_attachment=True, download_name="visit-upload-template.xlsx")

    @expose("/report/<name>")
    @has_access
    def report(self, name):
        return REPORTS.send(name, "visit-upload-errors.xlsx")
