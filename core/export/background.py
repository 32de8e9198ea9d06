"""Large exports as background jobs, with progress, downloadable by their requester only."""

from __future__ import annotations

import os
import uuid

from flask import g
from flask_login import login_user

from core.dates import utcnow
from core.extensions import db
from core.jobs import huey, worker_app
from core.storage import storage, storage_key
from models.platform.export_job import ExportJob, ExportStatus

#: The storage kind of finished exports (core/storage.py): "exports/<job id>.xlsx".
EXPORTS = "exports"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def export_key(job_id: str) -> str:
    """The storage key of a job's workbook."""
    return storage_key(EXPORTS, f"{job_id}.xlsx")


def queue_export(view, total: int, query_string: str, user_id: int) -> ExportJob:
    """Record the job and hand it to the worker."""
    job = ExportJob(
        id=uuid.uuid4().hex, user_id=user_id, view=type(view).__name__, query_string=query_string,
        total_rows=total, status=ExportStatus.QUEUED.value,
    )  # fmt: skip
    db.session.add(job)
    db.session.commit()
    run_export(job.id)
    return job


def _progress(job_id: str):
    """A callback for write_xlsx: store the row count every few thousand rows."""
    from sqlalchemy import update

    def report(done: int) -> None:
        with db.engine.begin() as conn:
            conn.execute(update(ExportJob).where(ExportJob.id == job_id).values(done_rows=done))

    return report


def run_export_job(app, job_id: str) -> None:
    """In the worker: replay the list's request as its user, write the file, mark done."""
    with app.app_context():
        job = db.session.get(ExportJob, job_id)
        if job is None or job.status != ExportStatus.QUEUED.value:
            return
        job.status = ExportStatus.RUNNING.value
        db.session.commit()
        view = next(v for v in app.appbuilder.baseviews if type(v).__name__ == job.view)
        user = app.appbuilder.sm.get_user_by_id(job.user_id)
        try:
            with app.test_request_context(f"/export?{job.query_string}"):
                g.background_job, g.user = True, user
                login_user(user)  # the user's own scope and permissions, as on the web
                path, count, name = view.write_export(progress=_progress(job_id))
            try:
                with open(path, "rb") as written:  # local: copied in chunks; database: one row
                    storage().put(EXPORTS, written, f"{job.id}.xlsx", XLSX)
            finally:
                os.unlink(path)
            job = db.session.get(ExportJob, job_id)
            job.status, job.done_rows, job.total_rows = ExportStatus.DONE.value, count, count
            job.file_name, job.finished_at = name, utcnow()
        except Exception as exc:  # the user sees "failed" with the reason, not a hung bar
            db.session.rollback()
            job = db.session.get(ExportJob, job_id)
            job.status, job.error, job.finished_at = ExportStatus.FAILED.value, str(exc)[:500], utcnow()
        db.session.commit()


@huey.task()
def run_export(job_id: str) -> None:
    """Write one export job's workbook, reporting progress as it goes (in the worker)."""
    run_export_job(worker_app(), job_id)
