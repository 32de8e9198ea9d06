"""批次上傳: institutions upload visits as .xlsx in the published template."""

from __future__ import annotations

import re
import uuid
from pathlib import Path

from flask import abort, current_app, flash, g, redirect, request, send_file, url_for
from flask_appbuilder import BaseView, expose
from flask_appbuilder.security.decorators import has_access
from flask_babel import gettext

from core.imports import bound
from core.web.views import refusals_flashed
from domain.cessation.batch import import_visits, spreadsheet
from domain.cessation.grants import VISIT

REPORT_FOLDER = "batch-reports"


def _report_folder() -> Path:
    folder = Path(current_app.config["UPLOAD_FOLDER"]) / REPORT_FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def write_report(rows) -> str:
    """The uploaded rows with an error column per row; named for its owner only."""
    name = f"{g.user.id}-{uuid.uuid4().hex}.xlsx"
    spreadsheet().write_report(rows, str(_report_folder() / name))
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
                with refusals_flashed():  # a file not in the template (BatchError)
                    outcome = import_visits(data)
                    errors = outcome.failed
                    if not errors:
                        flash(gettext("%(n)d visit records imported.", n=outcome.imported), "success")
                        return redirect(url_for("VisitView.list"))
                    report = write_report(outcome.rows)
                    flash(gettext("%(n)d rows have errors; nothing was imported. Download the marked file, correct it and upload it again.", n=len(errors)), "danger")
        return self.render_template(
            "visits/upload.html", errors=errors[:100], report=report, title=gettext("Batch upload of visit records")
        )

    @expose("/template")
    @has_access
    def template(self):
        name = f"template-{uuid.uuid4().hex}.xlsx"
        path = _report_folder() / name
        spreadsheet().write_template(str(path))
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
