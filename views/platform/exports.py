"""匯出進度: a background export's progress bar and its download, for its requester only."""

from __future__ import annotations

from flask import abort, g, jsonify
from flask_appbuilder import expose
from flask_appbuilder.security.decorators import has_access
from flask_babel import gettext

from core.export.background import XLSX, export_key
from core.extensions import db
from core.security.permissions import EXPORT_JOB
from core.storage import send_stored
from core.web.views import ScopedReportView
from models.platform.export_job import ExportJob, ExportStatus


def _own_job(job_id: str) -> ExportJob:
    job = db.session.get(ExportJob, job_id)
    if job is None or job.user_id != g.user.id:
        abort(404)
    return job


class ExportJobView(ScopedReportView):
    """The progress of one's own large exports."""

    route_base = "/exports"
    default_view = "progress"
    class_permission_name = EXPORT_JOB
    method_permission_name = {"progress": "read", "status": "read", "download": "read"}

    @expose("/<job_id>")
    @has_access
    def progress(self, job_id):
        job = _own_job(job_id)
        return self.render_template("exports/progress.html", job=job, title=gettext("Export"),
                                    labels={s.value: str(s.label) for s in ExportStatus})  # fmt: skip

    @expose("/<job_id>/status")
    @has_access
    def status(self, job_id):
        job = _own_job(job_id)
        return jsonify(status=job.status, label=ExportStatus.label_of(job.status), percent=job.percent,
                       done=job.done_rows, total=job.total_rows, error=job.error)  # fmt: skip

    @expose("/<job_id>/download")
    @has_access
    def download(self, job_id):
        job = _own_job(job_id)
        if job.status != ExportStatus.DONE.value:
            abort(404)
        return send_stored(export_key(job.id), job.file_name or "export.xlsx", mimetype=XLSX)
