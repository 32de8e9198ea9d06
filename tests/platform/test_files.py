"""core/files.py, the one upload service: content check, size limit, random stored names,
downloads only through a row in scope, under a sanitised name (issue 13; issue 12 class 9)."""

from __future__ import annotations

import io
import re

import pytest
from werkzeug.datastructures import FileStorage
from werkzeug.exceptions import NotFound

from core.files import PDF, FileStore, UploadRefused, content_type
from tests.platform.test_security_hardening import _disposition, _image

#: Issue 20: every test of the file service runs on both storage backends.
pytestmark = pytest.mark.usefixtures("storage_backend")

KEY = "TEST_FILES_MAX_BYTES"
SCANS = FileStore("test-files", {PDF: "pdf", "image/png": "png"}, KEY, "scan")
#: The first bytes of a Windows executable (the MZ header and the PE offset that follows).
EXE = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff\x00\x00" + b"\x00" * 200


def _pdf() -> bytes:
    from pypdf import PdfWriter

    writer, buffer = PdfWriter(), io.BytesIO()
    writer.add_blank_page(width=72, height=72)
    writer.write(buffer)
    return buffer.getvalue()


@pytest.fixture
def limit(app, monkeypatch):
    """A 1 MB limit under the store's own config key."""
    monkeypatch.setitem(app.config, KEY, 1024 * 1024)
    return 1024 * 1024


def _reason(data: bytes) -> str:
    with pytest.raises(UploadRefused) as refused:
        SCANS.check(data)
    return refused.value.reason


def test_the_content_decides_the_type_not_the_name(app, limit):
    """A renamed .exe, an HTML page behind a PDF or PNG signature: refused; real files pass."""
    with app.test_request_context():
        assert _reason(EXE) == UploadRefused.WRONG_TYPE  # whatever it is called: scan.png
        assert _reason(b"%PDF-1.7\n<html><script>alert(1)</script></html>") == UploadRefused.WRONG_TYPE
        assert _reason(b"\x89PNG\r\n\x1a\n<html></html>") == UploadRefused.WRONG_TYPE
        assert _reason(_image("JPEG")) == UploadRefused.WRONG_TYPE  # a real type, not accepted here
        assert SCANS.check(_image("PNG")) == "image/png"
        assert SCANS.check(_pdf()) == PDF
    assert content_type(EXE) is None and content_type(_image("JPEG")) == "image/jpeg"


def test_the_size_limit_is_the_config_key(app, limit):
    """Exactly the limit passes, one byte more is refused with the limit in MB; empty is refused."""
    png = _image("PNG")
    with app.test_request_context():
        assert SCANS.check(png + b"\x00" * (limit - len(png))) == "image/png"
        with pytest.raises(UploadRefused) as refused:
            SCANS.check(png + b"\x00" * (limit - len(png) + 1))
        assert refused.value.reason == UploadRefused.TOO_LARGE and refused.value.limit_mb == 1
        assert _reason(b"") == UploadRefused.EMPTY


def test_read_stops_one_byte_past_the_limit(app, limit):
    """A huge upload is never read whole; no chosen file reads as None."""
    with app.test_request_context():
        big = FileStorage(io.BytesIO(b"0" * (3 * limit)), filename="big.pdf")
        assert len(SCANS.read(big)) == limit + 1
        assert SCANS.read(None) is None
        assert SCANS.read(FileStorage(io.BytesIO(b"x"), filename="")) is None


def test_files_are_stored_under_random_names_in_their_folder(app, limit, storage_backend):
    """Each save is a fresh hex uuid with the checked type's extension, under the store's
    kind; discard removes it (a folder under UPLOAD_FOLDER, or stored_file rows)."""
    from core.storage import storage

    data = _image("PNG")
    with app.test_request_context():
        first, second = SCANS.save(data, "image/png"), SCANS.save(data, "image/png")
        assert first != second
        assert all(re.fullmatch(r"[0-9a-f]{32}\.png", name) for name in (first, second))
        assert SCANS.key(first) == f"test-files/{first}"
        assert SCANS.read_stored(first) == data and storage().exists(SCANS.key(first))
        if storage_backend == "local":
            folder = SCANS.directory()
            assert folder.name == "test-files" and str(folder.parent) == app.config["UPLOAD_FOLDER"]
            assert (folder / first).read_bytes() == data
        assert SCANS.path("../../etc/passwd") is None and SCANS.path("") is None
        assert SCANS.key("../../etc/passwd") is None and SCANS.key("") is None
        SCANS.discard([first, second])
        assert SCANS.read_stored(first) is None and SCANS.read_stored(second) is None


def _stored_png(app) -> str:
    from core.extensions import db

    with app.test_request_context():
        stored = SCANS.save(_image("PNG"), "image/png")
        db.session.commit()  # the database backend writes in the caller's transaction
        return stored


def test_a_row_out_of_scope_answers_404(app, db, limit):
    """The row comes from the scoped datamodel: another institution's row is None, hence 404,
    though the file exists; the user's own row is served."""
    from flask import g
    from flask_login import login_user
    from sqlalchemy import select

    from core.data.datamodel import ScopedInterface
    from models.platform.user import ScopedUser
    from models.registry.institution import Institution

    stored = _stored_png(app)
    user = db.session.scalar(select(ScopedUser).where(ScopedUser.username == "facility_tpe"))
    own = user.scope_institutions[0].id
    other = db.session.scalar(
        select(Institution.id).where(Institution.id.not_in([i.id for i in user.scope_institutions]))
    )
    with app.test_request_context():
        login_user(user)
        g.user = user  # what FAB's before_request sets for a signed-in request
        rows = ScopedInterface(Institution)

        def send(pk):
            return SCANS.send(rows.get(pk), stored=lambda _: stored, name=lambda r: r.name)

        try:
            assert send(own).status_code == 200
            with pytest.raises(NotFound):
                send(other)
            with pytest.raises(NotFound):  # a row whose file is gone
                SCANS.send(rows.get(own), stored=lambda _: "0" * 32 + ".png", name=lambda _: "x")
        finally:  # the db fixture's app context outlives this request: leave no user in g
            for name in ("user", "_login_user", "_scope"):
                g.pop(name, None)


def test_the_download_name_is_sanitised(app, limit):
    """No path, quotes or control characters; the stored type's extension; fallback name."""
    stored = _stored_png(app)
    with app.test_request_context():
        sent = SCANS.send(object(), stored=lambda _: stored, name=lambda _: '../../"掃描"\r\n.exe',
                          mimetype=lambda _: "image/png")  # fmt: skip
        assert sent.mimetype == "image/png"
        assert "attachment" in sent.headers["Content-Disposition"]
        assert _disposition(sent)[1] == "掃描.png"
        unnamed = SCANS.send(object(), stored=lambda _: stored, name=lambda _: None,
                             mimetype=lambda _: "image/png", as_attachment=False)  # fmt: skip
        assert _disposition(unnamed)[0] == "scan.png"
        assert unnamed.headers["Content-Disposition"].startswith("inline")
        for response in (sent, unnamed):
            response.close()


# ------------------------------------------------------------------ the PDF profile
PAGES_KEY = "TEST_FILES_MAX_PAGES"
FORMS = FileStore("test-forms", {PDF: "pdf"}, KEY, "form", max_pages_key=PAGES_KEY)


def _pdf_with(pages: int = 1, javascript: str | None = None, open_action: bool = False,
              launch: bool = False, password: str | None = None) -> bytes:
    """A PDF of `pages` blank pages, optionally with a script, an open or launch action, or encrypted."""
    from pypdf import PdfWriter
    from pypdf.generic import ArrayObject, DictionaryObject, NameObject, TextStringObject

    writer, buffer = PdfWriter(), io.BytesIO()
    for _ in range(pages):
        writer.add_blank_page(width=72, height=72)
    if javascript:  # a document-level script in the Names tree, where readers run it on open
        script = writer._add_object(DictionaryObject({
            NameObject("/S"): NameObject("/JavaScript"), NameObject("/JS"): TextStringObject(javascript),
        }))  # fmt: skip
        names = DictionaryObject({NameObject("/Names"): ArrayObject([TextStringObject("x"), script])})
        writer._root_object[NameObject("/Names")] = DictionaryObject(
            {NameObject("/JavaScript"): writer._add_object(names)}
        )
    if open_action or launch:
        action = DictionaryObject({
            NameObject("/S"): NameObject("/Launch" if launch else "/GoTo"),
            NameObject("/F"): TextStringObject("calc.exe"),
        })  # fmt: skip
        key = "/OpenAction" if open_action else "/Dummy"
        writer._root_object[NameObject(key)] = writer._add_object(action)
    if password:
        writer.encrypt(password)
    writer.write(buffer)
    return buffer.getvalue()


def _form_reason(data: bytes) -> str:
    with pytest.raises(UploadRefused) as refused:
        FORMS.check(data)
    return refused.value.reason


def test_pdf_profile_refuses_encrypted_scripted_and_long_pdfs(app, limit, monkeypatch):
    """A store with a PDF profile keeps a plain PDF of at most its pages; an encrypted one, one
    with JavaScript, an open action or a launch action, or one page too many is refused."""
    monkeypatch.setitem(app.config, PAGES_KEY, 3)
    with app.test_request_context():
        assert FORMS.check(_pdf_with(3)) == PDF
        assert _form_reason(_pdf_with(4)) == UploadRefused.TOO_MANY_PAGES
        assert _form_reason(_pdf_with(1, password="secret")) == UploadRefused.ENCRYPTED
        assert _form_reason(_pdf_with(1, javascript="app.alert(1)")) == UploadRefused.ACTIVE_CONTENT
        assert _form_reason(_pdf_with(1, open_action=True)) == UploadRefused.ACTIVE_CONTENT
        assert _form_reason(_pdf_with(1, launch=True)) == UploadRefused.ACTIVE_CONTENT
        assert _form_reason(b"%PDF-1.7\nnot really") == UploadRefused.WRONG_TYPE
        # The same PDFs pass a store without the profile (correction scans are only parsed).
        assert SCANS.check(_pdf_with(4, javascript="app.alert(1)")) == PDF


def test_sha256_is_the_hex_digest():
    """The digest stored beside a file is its SHA-256 in hex."""
    from core.files import sha256

    assert sha256(b"abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
