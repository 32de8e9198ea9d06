"""core/storage.py (issue 20 part 3): one storage interface for every stored file, on the
local folder and on the database; files are served only through a row in scope, never by path."""

from __future__ import annotations

import datetime as dt
import hashlib
import io

import pytest
from sqlalchemy import select

from core import clock
from core.dates import TAIPEI
from core.storage import DatabaseStorage, LocalStorage, backend_name, storage
from models.cessation.correction import CorrectionTicket
from models.platform.stored_file import StoredFile
from seed.documents import blank_pdf
from tests.conftest import post_form
from tests.factories import _form, _new_id, _setup


def test_storage_put_read_open_exists_delete_on_both_backends(app, db, storage_backend):
    """The same calls on either backend: a key of kind and name, the bytes back, gone after delete."""
    data = b"%PDF-1.4 not really\n" + bytes(range(256))
    with app.test_request_context():
        backend = storage()
        assert backend.name == storage_backend
        key = backend.put("test-kind", data, "abc123.pdf", "application/pdf")
        assert key == "test-kind/abc123.pdf"
        assert backend.exists(key) and backend.read(key) == data
        with backend.open(key) as handle:
            assert handle.read() == data
        assert backend.put("test-kind", io.BytesIO(b"second"), "abc123.pdf") == key  # put replaces
        assert backend.read(key) == b"second"
        backend.delete(key)
        assert not backend.exists(key) and backend.read(key) is None and backend.open(key) is None
        backend.delete(key)  # deleting what is gone is no error
        db.session.rollback()


def test_database_backend_keeps_size_sha256_and_type_beside_the_bytes(app, db, monkeypatch):
    """A stored_file row: bytes, size, SHA-256, type; in the caller's transaction (a rollback
    takes the file with it, as it takes the owning row)."""
    monkeypatch.setitem(app.config, "STORAGE_BACKEND", "database")
    data = b"\x89PNG fake but bytes"
    with app.test_request_context():
        key = storage().put("test-kind", data, "row.png", "image/png")
        row = db.session.get(StoredFile, key)
        assert (row.kind, row.size, row.content_type) == ("test-kind", len(data), "image/png")
        assert row.sha256 == hashlib.sha256(data).hexdigest() and row.content == data
        db.session.rollback()
        assert DatabaseStorage().read(key) is None


def test_local_storage_refuses_names_that_leave_its_folder(tmp_path):
    """No key reaches outside UPLOAD_FOLDER; a name with a separator is refused on put."""
    local = LocalStorage(tmp_path / "up")
    assert (
        local.path("../secret") is None
        and local.path("/etc/passwd") is None
        and local.path("") is None
    )
    with pytest.raises(ValueError):
        local.put("kind", b"x", "../escape.pdf")
    assert not (tmp_path / "escape.pdf").exists()


def test_an_unknown_storage_backend_stops_the_start():
    """STORAGE_BACKEND is local or database; any other value is refused at start-up."""
    assert backend_name({"STORAGE_BACKEND": "Database"}) == "database"
    assert backend_name({}) == "local"
    with pytest.raises(ValueError):
        backend_name({"STORAGE_BACKEND": "s3"})


def _file_online(app, client, institution_id, national_id, pdf: bytes):
    form = {
        "institution": str(institution_id),
        "quitter_national_id": national_id,
        "lines-0-recorded_date": "114/04/01",
        "lines-0-corrected_date": "114/02/15",
        "reason": "個案 114/02/15 就診資料漏未登錄，已以發現日建檔，申請更正就診日期。",
        "form_file": (io.BytesIO(pdf), "附錄九.pdf"),
    }
    return post_form(app, client, "/corrections/add", form, content_type="multipart/form-data")


def test_a_correction_attachment_on_the_database_backend_is_served_through_its_row_only(
    app, db, login_as, monkeypatch
):
    """Uploaded through the web with STORAGE_BACKEND=database: the scan is a stored_file row,
    not a file under UPLOAD_FOLDER; its uploader and the county's bureau download the same
    bytes; another institution and another county get 404; no URL serves it by path or key."""
    monkeypatch.setitem(app.config, "STORAGE_BACKEND", "database")
    institution_id, practitioner_id = _setup(db, "facility_tpe")
    national_id = _new_id()
    facility = login_as("facility_tpe")
    pdf = blank_pdf()
    with clock.frozen(dt.datetime(2025, 4, 1, 9, 0, tzinfo=TAIPEI)):
        post_form(
            app,
            facility,
            "/visitview/add",
            _form(institution_id, practitioner_id, national_id, "114/04/01"),
        )
        assert _file_online(app, facility, institution_id, national_id, pdf).status_code == 302
    db.session.expire_all()
    ticket = db.session.scalar(
        select(CorrectionTicket).order_by(CorrectionTicket.id.desc()).limit(1)
    )
    attachment = ticket.attachments[0]
    key = f"corrections/{attachment.stored_name}"
    row = db.session.get(StoredFile, key)
    assert row is not None and row.sha256 == hashlib.sha256(pdf).hexdigest()
    from pathlib import Path

    assert not list(Path(app.config["UPLOAD_FOLDER"]).rglob(attachment.stored_name))
    for username in ("facility_tpe", "bureau_tpe"):
        answer = login_as(username).get(f"/corrections/attachment/{attachment.id}")
        assert answer.status_code == 200 and answer.data == pdf, username
    for username in ("facility_khh", "bureau_khh"):
        assert login_as(username).get(f"/corrections/attachment/{attachment.id}").status_code == 404
    for url in (f"/uploads/{key}", f"/static/../uploads/{key}", f"/{key}", f"/storage/{key}",
                f"/corrections/download/{attachment.stored_name}"):  # fmt: skip
        assert facility.get(url).status_code == 404, url
