"""Batch upload: the template, validation of the whole file first, all-or-nothing import,
and the file handed back with an error column (C1–C4 and scope, as on the form)."""

from __future__ import annotations

import datetime as dt
import io

import pytest
from openpyxl import Workbook, load_workbook

from core import clock
from core.dates import TAIPEI
from models.cessation.visit import Quitter, Visit
from models.registry.institution import Institution
from models.registry.practitioner import Practitioner
from tests.conftest import csrf_token, visible_text
from tests.factories import _new_id, _setup


def _template(client) -> list[str]:
    response = client.get("/visitupload/template")
    assert response.status_code == 200
    sheet = load_workbook(io.BytesIO(response.data)).worksheets[0]
    return [c.value for c in sheet[1]]


def _xlsx(header, rows) -> bytes:
    workbook = Workbook()
    sheet = workbook.active
    sheet.append(header)
    for row in rows:
        sheet.append(row)
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def _upload(app, client, data: bytes):
    return client.post(
        "/visitupload/",
        data={"file": (io.BytesIO(data), "visits.xlsx"), "csrf_token": csrf_token(app, client)},
        content_type="multipart/form-data",
    )


def _rows(db, institution_id, practitioner_id, ids, dates):
    code = db.session.get(Institution, institution_id).nhi_code
    practitioner = db.session.get(Practitioner, practitioner_id).national_id
    return [[code, practitioner, qid, "游國華", "M", "65/01/02", date, "Varenicline", 14, None]
            for qid, date in zip(ids, dates, strict=True)]  # fmt: skip


def _count(db, ids):
    db.session.expire_all()
    return db.session.query(Visit).join(Quitter).filter(Quitter.national_id.in_(ids)).count()


def test_template_has_the_zh_tw_headers(login_as):
    header = _template(login_as("facility_tpe"))
    assert header[:3] == ["健保醫事機構代碼", "醫事人員身分證字號", "戒菸者身分證字號"]


@pytest.mark.usefixtures("storage_backend")  # issue 20: both storage backends
def test_one_bad_row_imports_nothing_and_the_file_comes_back_marked(app, db, login_as):
    institution_id, practitioner_id = _setup(db, "facility_tpe")
    client = login_as("facility_tpe")
    header = _template(client)
    ids = [_new_id("U") for _ in range(3)]
    rows = _rows(db, institution_id, practitioner_id, ids, ["114/04/01", "2025-04-02", "114/13/01"])
    with clock.frozen(dt.datetime(2025, 4, 10, 9, 0, tzinfo=TAIPEI)):
        response = _upload(app, client, _xlsx(header, rows))
    assert response.status_code == 200
    text = visible_text(response.text)
    assert "全部未匯入" in text and "114/13/01" in text
    assert _count(db, ids) == 0
    report = client.get(response.text.split('id="error-report" href="', 1)[1].split('"', 1)[0])
    marked = [list(r) for r in load_workbook(io.BytesIO(report.data)).worksheets[0].iter_rows(values_only=True)]
    assert marked[0][-1] == "錯誤說明"
    assert marked[1][-1] in (None, "") and marked[2][-1] in (None, "")
    assert "日期" in marked[3][-1]
    # another user cannot fetch that report
    name = response.text.split('/visitupload/report/', 1)[1].split('"', 1)[0]
    assert login_as("admin").get(f"/visitupload/report/{name}").status_code == 404


def test_a_good_file_imports_every_row_in_one_go(app, db, login_as):
    institution_id, practitioner_id = _setup(db, "facility_tpe")
    client = login_as("facility_tpe")
    ids = [_new_id("U") for _ in range(3)]
    rows = _rows(db, institution_id, practitioner_id, ids, ["114/04/01", "114/4/2", "2025-04-03"])
    with clock.frozen(dt.datetime(2025, 4, 10, 9, 0, tzinfo=TAIPEI)):
        response = _upload(app, client, _xlsx(_template(client), rows))
    assert response.status_code == 302
    assert _count(db, ids) == 3


def test_upload_applies_scope_deadline_and_the_5_day_rule_within_the_file(app, db, login_as):
    institution_id, practitioner_id = _setup(db, "facility_tpe")
    client = login_as("facility_tpe")
    same = _new_id("U")
    foreign = db.session.query(Institution).filter(Institution.id != institution_id).first().nhi_code
    rows = _rows(db, institution_id, practitioner_id, [same, same, _new_id("U"), _new_id("U")],
                 ["114/04/01", "114/04/03", "114/02/01", "114/04/04"])  # fmt: skip
    rows[3][0] = foreign
    with clock.frozen(dt.datetime(2025, 4, 10, 9, 0, tzinfo=TAIPEI)):
        response = _upload(app, client, _xlsx(_template(client), rows))
    text = visible_text(response.text)
    assert "第 2 列" in text  # row 3 is within 5 days of row 2, the same quitter
    assert "登錄期限" in text  # 114/02/01 is past its deadline on 114/04/10
    assert "不是您的機構" in text
    assert _count(db, [same]) == 0


def test_a_file_that_is_not_the_template_is_refused(app, login_as):
    client = login_as("facility_tpe")
    assert "範本不符" in visible_text(_upload(app, client, _xlsx(["a", "b"], [[1, 2]])).text)
    assert "不是 Excel" in visible_text(_upload(app, client, b"not a workbook").text)
