"""issue 12 class 7: the batch upload does bounded work whatever the file declares.

Hostile workbooks are built in memory: a sheet of three million blank rows (declared in the
dimension, or only present), a zip part that would unpack to 30 MB, a file over the byte
limit. Each is refused with a zh_TW message on the upload page within a couple of seconds,
and nothing is imported."""

from __future__ import annotations

import datetime as dt
import io
import re
import time
import zipfile

import pytest
from openpyxl import Workbook

from core import clock
from core.dates import TAIPEI
from domain.cessation import batch
from models.cessation.visit import Visit
from tests.cessation.test_batch_upload import _rows, _template, _xlsx
from tests.conftest import csrf_token, visible_text
from tests.factories import _new_id, _setup


def _upload(app, client, data: bytes):
    return client.post(
        "/visitupload/",
        data={"file": (io.BytesIO(data), "visits.xlsx"), "csrf_token": csrf_token(app, client)},
        content_type="multipart/form-data",
    )


def _header_only(header) -> bytes:
    workbook = Workbook()
    workbook.active.append(header)
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def _rewrite_sheet(data: bytes, change) -> bytes:
    """The workbook with its first sheet's XML passed through `change` (str → str)."""
    source = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as target:
        for info in source.infolist():
            content = source.read(info.filename)
            if info.filename == "xl/worksheets/sheet1.xml":
                content = change(content.decode()).encode()
            target.writestr(info.filename, content)
    return out.getvalue()


def _blank_rows(header, count: int, *, declare: bool, numbered: bool, last_only=False) -> bytes:
    def change(xml: str) -> str:
        if last_only:  # one cell in row `count + 1`: the rows before are missing, not blank
            n = count + 1
            rows = f'<row r="{n}"><c r="A{n}" t="inlineStr"><is><t>x</t></is></c></row>'
        elif numbered:
            rows = "".join(f'<row r="{n}"/>' for n in range(2, count + 2))
        else:
            rows = "<row/>" * count
        xml = xml.replace("</sheetData>", rows + "</sheetData>")
        ref = f"A1:J{count + 1}" if declare else "A1:J1"
        return re.sub(r'<dimension ref="[^"]*"\s*/>', f'<dimension ref="{ref}"/>', xml)

    return _rewrite_sheet(_header_only(header), change)


def _visit_count(db) -> int:
    db.session.expire_all()
    return db.session.query(Visit).count()


@pytest.mark.parametrize(
    "count, declare, numbered, last_only",
    [
        (3_000_000, True, False, False),  # 36 s on the unbounded reader
        (3_000_000, True, False, True),  # 5 s: openpyxl fills the missing rows
        (3_000_000, False, False, False),  # a dimension that hides the rows
        (300_000, False, True, False),
    ],
    ids=["declared-blank-rows", "declared-one-far-row", "undeclared-blank-rows", "numbered-blank-rows"],
)
def test_three_million_blank_rows_are_refused_within_seconds(
    app, db, login_as, count, declare, numbered, last_only
):
    """issue 12 class 7: rows are counted blank or not, the dimension read before any row."""
    client = login_as("facility_tpe")
    data = _blank_rows(_template(client), count, declare=declare, numbered=numbered, last_only=last_only)
    # Under the byte limit: the work the file declares, not its size, is what is bounded.
    assert len(data) < (400_000 if not numbered else app.config["BATCH_MAX_BYTES"])
    before = _visit_count(db)
    started = time.monotonic()
    response = _upload(app, client, data)
    elapsed = time.monotonic() - started
    assert response.status_code == 200
    text = visible_text(response.text)
    assert elapsed < 3, elapsed
    assert ("空白列也計入" in text) or ("解壓縮後" in text), text[:500]
    assert _visit_count(db) == before


def test_a_zip_part_that_unpacks_too_large_is_refused_before_parsing(app, db, login_as):
    """issue 12 class 7: the zip's declared sizes are checked before openpyxl opens it."""
    client = login_as("facility_tpe")
    source = zipfile.ZipFile(io.BytesIO(_header_only(_template(client))))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as target:
        for info in source.infolist():
            content = source.read(info.filename)
            if info.filename == "xl/sharedStrings.xml" or info.filename.endswith("styles.xml"):
                content = content + b" " * (30 * 1024 * 1024)  # whitespace: 30 MB unpacked
            target.writestr(info.filename, content)
    data = out.getvalue()
    assert len(data) < 200_000
    started = time.monotonic()
    response = _upload(app, client, data)
    assert time.monotonic() - started < 2
    assert "解壓縮後" in visible_text(response.text)


def test_a_file_over_the_byte_limit_is_refused_unread(app, login_as):
    """issue 12 class 7: BATCH_MAX_BYTES is checked before parsing, with a zh_TW message."""
    client = login_as("facility_tpe")
    limit = app.config["BATCH_MAX_BYTES"]
    assert limit == 2 * 1024 * 1024
    response = _upload(app, client, b"PK" + b"\0" * limit)
    assert "檔案大於 2 MB" in visible_text(response.text)


def test_the_time_budget_refuses_a_slow_check_and_imports_nothing(app, db, login_as):
    """issue 12 class 7: reading and checking share BATCH_TIME_BUDGET seconds."""
    institution_id, practitioner_id = _setup(db, "facility_tpe")
    client = login_as("facility_tpe")
    ids = [_new_id("U") for _ in range(3)]
    rows = _rows(db, institution_id, practitioner_id, ids, ["114/04/01", "114/4/2", "2025-04-03"])
    data = _xlsx(_template(client), rows)
    before = _visit_count(db)
    app.config["BATCH_TIME_BUDGET"] = 0
    try:
        with clock.frozen(dt.datetime(2025, 4, 10, 9, 0, tzinfo=TAIPEI)):
            response = _upload(app, client, data)
    finally:
        app.config["BATCH_TIME_BUDGET"] = 20
    assert response.status_code == 200
    assert "檢查檔案超過 0 秒" in visible_text(response.text)
    assert _visit_count(db) == before


def test_a_few_blank_rows_after_the_data_are_allowed(app, db):
    """issue 12 class 7: the row limit counts blank rows but allows a few after the data."""
    header = batch.headers()
    rows = [["0401180014", "A123456789", "A123456789", "王", "M", "60/1/1", "114/4/1", "X", 14, None]]
    with app.test_request_context():
        data = _xlsx(header, rows + [[None] * 10] * 50 + rows)
        assert [r.number for r in batch.read_rows(data)] == [2, 53]


def test_data_rows_and_blank_rows_count_together_against_the_limit(app, monkeypatch):
    """issue 12 class 7: MAX_ROWS applies to every row read, with ROW_ALLOWANCE on top."""
    monkeypatch.setattr(batch, "MAX_ROWS", 10)
    monkeypatch.setattr(batch, "ROW_ALLOWANCE", 5)
    row = ["0401180014", "A123456789", "A123456789", "王", "M", "60/1/1", "114/4/1", "X", 14, None]
    with app.test_request_context():
        assert len(batch.read_rows(_xlsx(batch.headers(), [row] * 10 + [[None] * 10] * 5))) == 10
        with pytest.raises(batch.BatchError) as refused:
            batch.read_rows(_xlsx(batch.headers(), [row] * 5 + [[None] * 10] * 15 + [row]))
        assert "空白列也計入" in str(refused.value)
        with pytest.raises(batch.BatchError):
            batch.read_rows(_xlsx(batch.headers(), [row] * 11))
