"""Large exports run as background jobs: progress, and the file for the requester only."""

from __future__ import annotations

import io

import pytest
from openpyxl import load_workbook

from models.cessation.visit import Visit
from models.platform.export_job import ExportJob
from tests.scope_oracle import expected_split, user_view

#: Issue 20: the finished workbook is stored on both backends.
pytestmark = pytest.mark.usefixtures("storage_backend")


def test_a_large_export_becomes_a_job_with_progress_and_a_private_download(app, db, login_as):
    app.config["EXPORT_ASYNC_THRESHOLD"] = 10
    try:
        client = login_as("bureau_tpe")
        response = client.get("/visitview/export/xlsx")
    finally:
        app.config["EXPORT_ASYNC_THRESHOLD"] = 1_000_000
    assert response.status_code == 302 and "/exports/" in response.headers["Location"]
    job_id = response.headers["Location"].rstrip("/").split("/")[-1]
    db.session.expire_all()
    job = db.session.get(ExportJob, job_id)
    assert job.status == "done", job.error
    page = client.get(f"/exports/{job_id}")
    assert page.status_code == 200 and "export-bar" in page.text
    status = client.get(f"/exports/{job_id}/status").json
    assert status["percent"] == 100 and status["status"] == "done"
    data = client.get(f"/exports/{job_id}/download")
    rows = list(load_workbook(io.BytesIO(data.data), read_only=True).active.iter_rows(values_only=True))
    visible, _ = expected_split(db, Visit, user_view(db, "bureau_tpe"))
    assert rows[0][0] == "戒菸者就醫資料"  # the title row, then the headers
    assert len(rows) - 2 == len(visible)  # the requester's scope, not the worker's
    # nobody else sees the job or its file
    for other in ("bureau_khh", "admin"):
        assert login_as(other).get(f"/exports/{job_id}/download").status_code == 404
        assert login_as(other).get(f"/exports/{job_id}").status_code == 404
