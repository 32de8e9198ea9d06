"""Bulk import of assessments (A3, A4) through the API and a workbook, and the per-instrument
export at scale: every score the engine's (the same as a single save), all or nothing on
every kind of bad row (out of range, wrong type, missing required, hidden item, unknown
linkId, another institution's course or instrument), scope, the batch limit, the workbook
template round trip, hostile workbooks, the export's columns across versions, and the export
queued as a background job above EXPORT_ASYNC_THRESHOLD."""

from __future__ import annotations

import datetime as dt
import io
import re
import zipfile

import openpyxl
import pytest
import xlsxwriter
from flask_babel import gettext
from openpyxl import load_workbook
from sqlalchemy import func, select

from core.dates import to_roc
from domain.addiction.assessment_bulk import workbook
from domain.addiction.assessments import AssessmentInput, WriteAssessment
from domain.addiction.scoring import spec_fingerprint
from models.addiction.instrument import AssessmentResponse, Instrument, InstrumentVersion
from models.platform.audit import AuditLog
from models.platform.export_job import ExportJob
from models.registry.practitioner import Practitioner
from tests.addiction.test_assessment_views import (
    BSRS_ANSWERS,
    _author,
    _builtin,
    _custom_instrument,
    _fresh_course,
    _institution_id,
)
from tests.conftest import csrf_token

BULK = "/api/v1/assessment/bulk"


def _count(db) -> int:
    db.session.expire_all()
    return db.session.scalar(select(func.count(AssessmentResponse.id)))


def _line(db, course, instrument, answers, days=3, **extra) -> dict:
    """One response of a bulk body."""
    return {"course": course.id, "instrument": instrument.id,
            "answered_on": (course.start_date + dt.timedelta(days=days)).isoformat(),
            "author": _author(db, course.institution_id), "answers": answers} | extra  # fmt: skip


def _branching_instrument(db, institution_id: int) -> Instrument:
    """A custom instrument with a number range, a required item and a branch (q3 shows only
    when q1 = Y), for the bad-row kinds."""
    code = f"BR{institution_id}"
    existing = db.session.scalar(select(Instrument).where(Instrument.code == code))
    if existing is not None:
        return existing
    definition = {
        "items": [
            {"linkId": "q1", "type": "boolean", "text": "最近 30 天曾使用", "required": True},
            {"linkId": "q2", "type": "integer", "text": "使用天數", "min": 0, "max": 30},
            {"linkId": "q3", "type": "choice", "text": "主要途徑", "enableWhen": [
                {"question": "q1", "operator": "=", "answer": "Y"}],
             "options": [{"code": "1", "display": "口服", "weight": 1}, {"code": "2", "display": "注射", "weight": 2}]},
        ],
        "scoring": {"scores": [{"name": "total", "label": "總分", "items": ["q1", "q2"], "missing": "zero"}]},
    }  # fmt: skip
    instrument = Instrument(institution_id=institution_id, code=code, title=f"分支問卷 {institution_id}")
    db.session.add(instrument)
    db.session.flush()
    db.session.add(InstrumentVersion(instrument_id=instrument.id, number=1, status="published", definition=definition,
                                     spec=spec_fingerprint(definition), published_at=dt.datetime(2025, 1, 1)))  # fmt: skip
    db.session.commit()
    return instrument


# ------------------------------------------------------------------ the API
def test_a3_a4_bulk_api_scores_equal_single_save_scores(app, db, api_as):
    """A3/A4: a bulk batch of a built-in and a custom instrument stores every response with
    exactly the scores, bands, flags and spec fingerprint a single save computes."""
    api, headers = api_as("psy_tpe")
    course = _fresh_course(db)
    bsrs = _builtin(db, "BSRS5")
    own = _custom_instrument(db, course.institution_id)
    answer_sets = [(bsrs, BSRS_ANSWERS), (bsrs, BSRS_ANSWERS | {"b6": "3"}),
                   (own, {f"q{n}": str(1 + n % 5) for n in range(1, 6)})]  # fmt: skip
    body = [_line(db, course, i, a, days=n) for n, (i, a) in enumerate(answer_sets, start=1)]
    body[1] = {k: v for k, v in body[1].items() if k != "instrument"} | {"instrument_code": "BSRS5"}
    response = api.post(BULK, json=body, headers=headers)
    assert response.status_code == 201, response.json
    assert response.json["imported"] == 3
    # The lines' dates differ: each stored row is matched to its line by its date.
    bulk_rows = sorted((db.session.get(AssessmentResponse, pk) for pk in response.json["ids"]),
                       key=lambda r: r.answered_on)  # fmt: skip
    with app.test_request_context():
        from flask_login import login_user

        login_user(db.session.query(__import__("models.platform.user", fromlist=["ScopedUser"]).ScopedUser)
                   .filter_by(username="psy_tpe").one())  # fmt: skip
        for row, (instrument, answers) in zip(bulk_rows, answer_sets, strict=True):
            single = WriteAssessment(AssessmentInput(course.id, instrument.id, row.answered_on, row.author_id,
                                                     answers)).run()  # fmt: skip
            assert (row.result, row.total, row.band, row.spec, row.answers, row.version_id) == (
                single.result, single.total, single.band, single.spec, single.answers, single.version_id)
    assert bulk_rows[1].result["flags"], "BSRS-5 item 6 >= 2 refers whatever the total"
    # The audit trail holds one insert per response, as a single save writes.
    audit = db.session.scalars(select(AuditLog).where(AuditLog.model == "AssessmentResponse",
                                                      AuditLog.row_key.in_([str(r.id) for r in bulk_rows]))).all()  # fmt: skip
    assert sorted(int(a.row_key) for a in audit) == sorted(r.id for r in bulk_rows)
    assert all(a.action == "insert" and a.username == "psy_tpe" and a.after["total"] is not None or
               a.after["answers"] for a in audit)  # fmt: skip
    assert all(r.created_by_id is not None for r in bulk_rows)


@pytest.mark.parametrize("kind", ["out_of_range", "wrong_type", "missing_required", "hidden_item", "unknown_link",
                                  "bad_choice", "date_outside_course", "not_serving"])  # fmt: skip
def test_a4_bulk_api_one_bad_line_refuses_the_batch_naming_line_and_item(app, db, api_as, kind):
    """A4: one bad line of each kind refuses the whole batch with a 422 naming the line and
    the item (zh_TW), and nothing is stored."""
    api, headers = api_as("psy_tpe")
    course = _fresh_course(db)
    instrument = _branching_instrument(db, course.institution_id)
    good = {"q1": "Y", "q2": "4", "q3": "1"}
    bad, field = {
        "out_of_range": ({"q1": "Y", "q2": "31", "q3": "1"}, "q2"),
        "wrong_type": ({"q1": "Y", "q2": "四天", "q3": "1"}, "q2"),
        "missing_required": ({"q2": "3"}, "q1"),
        "hidden_item": ({"q1": "N", "q2": "0", "q3": "2"}, "q3"),
        "unknown_link": (good | {"q9": "1"}, "q9"),
        "bad_choice": ({"q1": "Y", "q3": "7"}, "q3"),
        "date_outside_course": (good, "answered_on"),
        "not_serving": (good, "author"),
    }[kind]
    lines = [_line(db, course, instrument, good, days=n) for n in range(1, 6)]
    lines[3] = _line(db, course, instrument, bad, days=4)
    if kind == "date_outside_course":
        lines[3]["answered_on"] = (course.start_date - dt.timedelta(days=1)).isoformat()
    if kind == "not_serving":
        lines[3]["author"] = _author(db, _institution_id(db, "cm_khh"))
    before = _count(db)
    response = api.post(BULK, json=lines, headers=headers)
    assert response.status_code == 422, response.json
    assert "1" in response.json["message"] and "5" in response.json["message"], response.json
    assert [line["line"] for line in response.json["lines"]] == [4]
    errors = response.json["lines"][0]["errors"]
    assert field in errors and errors[field], errors
    assert _count(db) == before


def test_a3_bulk_api_another_institutions_course_or_instrument_is_refused_nothing_stored(app, db, api_as):
    """Scope: a line naming another institution's course or private instrument by id is
    refused as if it did not exist, and nothing of the batch is stored."""
    api, headers = api_as("psy_tpe")
    own = _fresh_course(db)
    other_course = _fresh_course(db, "cm_khh")
    other_instrument = _custom_instrument(db, _institution_id(db, "cm_khh"))
    bsrs = _builtin(db, "BSRS5")
    before = _count(db)
    for bad in (_line(db, own, bsrs, BSRS_ANSWERS) | {"course": other_course.id},
                _line(db, own, other_instrument, {f"q{n}": "3" for n in range(1, 6)}),
                _line(db, own, bsrs, BSRS_ANSWERS) | {"instrument": None, "instrument_code": other_instrument.code}):
        response = api.post(BULK, json=[_line(db, own, bsrs, BSRS_ANSWERS), bad], headers=headers)
        assert response.status_code == 422, response.json
        errors = response.json["lines"][0]["errors"]
        assert response.json["lines"][0]["line"] == 2
        assert "範圍" in " ".join(errors.values()), errors
    assert _count(db) == before


def test_a3_bulk_api_batch_limit_and_malformed_bodies(app, db, api_as):
    """The batch limit (ASSESSMENT_BULK_MAX_ROWS) is a 413 naming it; a body that is not a
    list, an empty list and a line that is not an object are 4xx; nothing stored; no 500."""
    api, headers = api_as("psy_tpe")
    course = _fresh_course(db)
    line = _line(db, course, _builtin(db, "BSRS5"), BSRS_ANSWERS)
    before = _count(db)
    app.config["ASSESSMENT_BULK_MAX_ROWS"] = 3
    try:
        response = api.post(BULK, json=[line] * 4, headers=headers)
    finally:
        app.config["ASSESSMENT_BULK_MAX_ROWS"] = 10_000
    assert response.status_code == 413 and "3" in response.json["message"] and "4" in response.json["message"]
    assert api.post(BULK, json={"course": 1}, headers=headers).status_code == 400
    assert api.post(BULK, json=[], headers=headers).status_code == 400
    refused = api.post(BULK, json=[line, "x", 7], headers=headers)
    assert refused.status_code == 422 and [x["line"] for x in refused.json["lines"]] == [2, 3]
    hostile = [line | {"course": "1 OR 1=1"}, line | {"course": 10**30}, line | {"answers": [1, 2]},
               line | {"answered_on": {"$gt": ""}}, line | {"author": True}, line | {"version": "x"}]  # fmt: skip
    refused = api.post(BULK, json=hostile, headers=headers)
    assert refused.status_code == 422 and len(refused.json["lines"]) == len(hostile)
    assert _count(db) == before
    spec = api.get("/api/v1/_openapi", headers=headers).json
    assert "post" in spec["paths"]["/api/v1/assessment/bulk"]


def test_a3_bulk_api_is_refused_without_create_permission(app, db, api_as):
    """A bureau officer (read only) cannot import."""
    api, headers = api_as("bureau_tpe")
    course = _fresh_course(db)
    response = api.post(BULK, json=[_line(db, course, _builtin(db, "BSRS5"), BSRS_ANSWERS)], headers=headers)
    assert response.status_code in (401, 403, 404)


# ------------------------------------------------------------------ the workbook
def _template(client, instrument) -> openpyxl.Workbook:
    response = client.get(f"/assessmentupload/template/{instrument.id}")
    assert response.status_code == 200, response.status_code
    return load_workbook(io.BytesIO(response.data))


def _upload(app, client, instrument, data: bytes):
    token = csrf_token(app, client)
    return client.post("/assessmentupload/", data={"csrf_token": token, "instrument": str(instrument.id),
                                                   "file": (io.BytesIO(data), "評估.xlsx")},
                       content_type="multipart/form-data")  # fmt: skip


def _national_id(db, practitioner_id: int) -> str:
    return db.session.get(Practitioner, practitioner_id).national_id


def test_a3_a4_workbook_template_round_trip_scores_as_single_saves(app, db, login_as):
    """A3/A4: the template of an instrument, filled with labels as a nurse would (and one
    row with codes), imports every row scored by the engine; the export of the instrument
    then holds those answers under the same columns."""
    client = login_as("psy_tpe")
    course = _fresh_course(db)
    bsrs = _builtin(db, "BSRS5")
    book = _template(client, bsrs)
    sheet = book.worksheets[0]
    headers = [c.value for c in sheet[1]]
    with app.test_request_context():
        assert headers == workbook(bsrs).headers()
        assert book.sheetnames[1:] == [gettext("Instructions"), gettext("Courses in progress")]
    assert headers[5].startswith("b1 ") and len(headers) == 5 + 6
    assert str(course.id) in {str(r[0]) for r in book.worksheets[2].iter_rows(min_row=2, values_only=True)}
    labels = {o["code"]: o["display"] for o in bsrs.versions[-1].definition["scales"]["bsrs"]} \
        if "bsrs" in (bsrs.versions[-1].definition.get("scales") or {}) else None  # fmt: skip
    author = _national_id(db, _author(db, course.institution_id))
    rows = []
    for n in range(3):
        answers = dict(BSRS_ANSWERS)
        if labels and n == 0:
            answers = {k: labels.get(v, v) for k, v in answers.items()}  # by label
        rows.append([course.id, to_roc(course.start_date + dt.timedelta(days=n + 1)), author, None, f"第{n}列",
                     *[answers.get(h.split(" ")[0]) for h in headers[5:]]])  # fmt: skip
    for r in rows:
        sheet.append(r)
    buffer = io.BytesIO()
    book.save(buffer)
    before = _count(db)
    response = _upload(app, client, bsrs, buffer.getvalue())
    assert response.status_code == 302, response.text[:2000]
    assert _count(db) == before + 3
    stored = db.session.scalars(select(AssessmentResponse).where(AssessmentResponse.course_id == course.id)
                                .order_by(AssessmentResponse.id)).all()  # fmt: skip
    assert [r.total for r in stored] == [5, 5, 5] and {r.answers["b2"] for r in stored} == {"2"}
    assert all(r.spec == spec_fingerprint(bsrs.versions[-1].definition) for r in stored)
    export = client.get(f"/assessment/export/instrument/{bsrs.id}")
    exported = list(load_workbook(io.BytesIO(export.data), read_only=True).active.iter_rows(values_only=True))
    assert [h for h in exported[1][12:]] == headers[5:], "the template's item columns are the export's"


@pytest.mark.usefixtures("storage_backend")  # issue 20: both storage backends
def test_a4_workbook_one_bad_row_refuses_the_file_with_an_error_column(app, db, login_as):
    """A4: one bad row (an answer out of the scale) refuses the file; the page names the
    row and the item, the marked file has an error column, nothing is stored."""
    client = login_as("psy_tpe")
    course = _fresh_course(db)
    bsrs = _builtin(db, "BSRS5")
    book = _template(client, bsrs)
    sheet = book.worksheets[0]
    headers = [c.value for c in sheet[1]]
    author = _national_id(db, _author(db, course.institution_id))
    day = to_roc(course.start_date + dt.timedelta(days=2))
    sheet.append([course.id, day, author, None, None, *[BSRS_ANSWERS.get(h.split(" ")[0]) for h in headers[5:]]])
    sheet.append([course.id, day, author, None, None, *["9" if h.startswith("b2 ") else BSRS_ANSWERS.get(h.split(" ")[0])
                                                        for h in headers[5:]]])  # fmt: skip
    buffer = io.BytesIO()
    book.save(buffer)
    before = _count(db)
    response = _upload(app, client, bsrs, buffer.getvalue())
    assert response.status_code == 200
    assert 'id="upload-errors"' in response.text and "b2" in response.text
    assert _count(db) == before
    report = response.text.split('id="error-report" href="', 1)[1].split('"', 1)[0]
    marked = list(load_workbook(io.BytesIO(client.get(report).data)).worksheets[0].iter_rows(values_only=True))
    assert marked[0][-1].startswith("錯誤") and not marked[1][-1] and "b2" in marked[2][-1]


def test_a4_hostile_workbook_formulas_are_values_and_huge_sheets_are_refused(app, db, login_as):
    """Hostile workbooks: a formula in an answer cell is never evaluated (openpyxl writes no
    cached value, so the required item reads as unanswered); a text that looks like a formula
    comes back defused in the marked file; a sheet declaring or holding more rows than the
    limit, a cell far outside the template and a file that is not a workbook are refused
    before any row is checked; nothing stored, no 500."""
    client = login_as("psy_tpe")
    course = _fresh_course(db)
    bsrs = _builtin(db, "BSRS5")
    book = _template(client, bsrs)
    sheet = book.worksheets[0]
    headers = [c.value for c in sheet[1]]
    author = _national_id(db, _author(db, course.institution_id))
    day = to_roc(course.start_date + dt.timedelta(days=2))
    sheet.append([course.id, day, author, None, "=HYPERLINK(\"http://evil\",\"x\")",
                  *["=1+1" if h.startswith("b1 ") else BSRS_ANSWERS.get(h.split(" ")[0]) for h in headers[5:]]])  # fmt: skip
    buffer = io.BytesIO()
    book.save(buffer)
    before = _count(db)
    response = _upload(app, client, bsrs, buffer.getvalue())
    assert response.status_code == 200 and "b1" in response.text
    assert _count(db) == before
    # More rows than the limit: refused as a whole.
    app.config["ASSESSMENT_BULK_MAX_ROWS"] = 5
    try:
        big = io.BytesIO()
        wb = xlsxwriter.Workbook(big)
        ws = wb.add_worksheet()
        for col, header in enumerate(headers):
            ws.write_string(0, col, header)
        for row in range(1, 400):
            ws.write_number(row, 0, course.id)
        wb.close()
        response = _upload(app, client, bsrs, big.getvalue())
        assert response.status_code == 200 and "最多" in response.text
    finally:
        app.config["ASSESSMENT_BULK_MAX_ROWS"] = 10_000
    # One cell at XFD1048576: refused before calamine builds its range.
    far = io.BytesIO()
    wb = xlsxwriter.Workbook(far)
    ws = wb.add_worksheet()
    for col, header in enumerate(headers):
        ws.write_string(0, col, header)
    ws.write_number(1048575, 16383, 1)
    wb.close()
    response = _upload(app, client, bsrs, far.getvalue())
    assert response.status_code == 200 and ("最多" in response.text or "欄位" in response.text)
    # A sheet whose cells carry no position (measured by the slow pass) is read alike, and a
    # DOCTYPE (entity expansion) in any part refuses the file.
    def rewrite(transform) -> bytes:
        source, target = zipfile.ZipFile(io.BytesIO(buffer.getvalue())), io.BytesIO()
        with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as out:
            for part in source.infolist():
                body = source.read(part)
                out.writestr(part, transform(body) if part.filename == "xl/worksheets/sheet1.xml" else body)
        return target.getvalue()

    unpositioned = rewrite(lambda body: re.sub(rb'<c r="[A-Z]+\d+"', b"<c", body))
    response = _upload(app, client, bsrs, unpositioned)
    # Read cell by cell as they come (its empty cells gave no position): checked row by row.
    assert response.status_code == 200 and 'id="error-report"' in response.text
    entity = rewrite(lambda body: body.replace(b"<worksheet", b'<!DOCTYPE x [<!ENTITY a "aaaa">]><worksheet', 1))
    response = _upload(app, client, bsrs, entity)
    assert response.status_code == 200 and "xlsx" in response.text and 'id="upload-errors"' not in response.text
    # The time budget of reading and checking (BATCH_TIME_BUDGET) refuses the whole file.
    budget = app.config["BATCH_TIME_BUDGET"]
    app.config["BATCH_TIME_BUDGET"] = 0
    try:
        response = _upload(app, client, bsrs, buffer.getvalue())
    finally:
        app.config["BATCH_TIME_BUDGET"] = budget
    assert response.status_code == 200 and "秒" in response.text
    # Not a workbook, and a zip that would unpack too large.
    response = _upload(app, client, bsrs, b"PK\x03\x04 not really")
    assert response.status_code == 200 and "xlsx" in response.text
    bomb = io.BytesIO()
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("xl/worksheets/sheet1.xml", b"<a/>" + b" " * (200 * 1024 * 1024))
    response = _upload(app, client, bsrs, bomb.getvalue())
    assert response.status_code == 200 and "MB" in response.text
    assert _count(db) == before


def test_a3_workbook_of_another_institutions_course_is_refused(app, db, login_as):
    """Scope: a workbook row naming another institution's course imports nothing; another
    institution's private instrument has no template and no upload (404)."""
    client = login_as("psy_tpe")
    course = _fresh_course(db)
    other_course = _fresh_course(db, "cm_khh")
    other_instrument = _custom_instrument(db, _institution_id(db, "cm_khh"))
    bsrs = _builtin(db, "BSRS5")
    assert client.get(f"/assessmentupload/template/{other_instrument.id}").status_code == 404
    book = _template(client, bsrs)
    headers = [c.value for c in book.worksheets[0][1]]
    author = _national_id(db, _author(db, course.institution_id))
    day = to_roc(course.start_date + dt.timedelta(days=2))
    book.worksheets[0].append([other_course.id, day, author, None, None,
                               *[BSRS_ANSWERS.get(h.split(" ")[0]) for h in headers[5:]]])  # fmt: skip
    buffer = io.BytesIO()
    book.save(buffer)
    before = _count(db)
    response = _upload(app, client, bsrs, buffer.getvalue())
    assert response.status_code == 200 and "範圍" in response.text
    assert _upload(app, client, other_instrument, buffer.getvalue()).status_code == 404
    assert _count(db) == before


# ------------------------------------------------------------------ the export
def test_a4_export_columns_across_versions_unchanged_by_bulk_import(app, db, login_as, api_as):
    """A4: responses imported in bulk on two versions export under one column per item that
    ever existed; the v1 answer stays in its own column."""
    api, headers = api_as("psy_tpe")
    client = login_as("psy_tpe")
    course = _fresh_course(db)
    institution_id = course.institution_id
    code = f"V2{institution_id}"
    v1 = {"items": [{"linkId": "a", "type": "integer", "text": "甲"}, {"linkId": "old", "type": "integer", "text": "舊"}],
          "scoring": {"scores": [{"name": "total", "items": ["a"], "missing": "zero"}]}}  # fmt: skip
    v2 = {"items": [{"linkId": "a", "type": "integer", "text": "甲"}, {"linkId": "new", "type": "integer", "text": "新"}],
          "scoring": {"scores": [{"name": "total", "items": ["a"], "missing": "zero"}]}}  # fmt: skip
    instrument = db.session.scalar(select(Instrument).where(Instrument.code == code))
    if instrument is None:
        instrument = Instrument(institution_id=institution_id, code=code, title="兩版問卷")
        instrument.versions = [
            InstrumentVersion(number=n, status="published", definition=d, spec=spec_fingerprint(d),
                              published_at=dt.datetime(2025, 1, n)) for n, d in ((1, v1), (2, v2))]  # fmt: skip
        db.session.add(instrument)
        db.session.commit()
    body = [_line(db, course, instrument, {"a": 1, "old": 7}, version=1),
            _line(db, course, instrument, {"a": 2, "new": 8})]  # fmt: skip
    response = api.post(BULK, json=body, headers=headers)
    assert response.status_code == 201, response.json
    refused = api.post(BULK, json=[_line(db, course, instrument, {"a": 1, "old": 7})], headers=headers)
    assert refused.status_code == 422 and "old" in refused.json["lines"][0]["errors"]
    export = client.get(f"/assessment/export/instrument/{instrument.id}")
    rows = list(load_workbook(io.BytesIO(export.data), read_only=True).active.iter_rows(values_only=True))
    header = list(rows[1])
    assert header[12:] == ["a 甲", "old 舊", "new 新"]
    by_version = {r[7]: r[12:] for r in rows[2:] if r[4] == course.id}
    assert by_version[1] == (1, 7, None) and by_version[2] == (2, None, 8)


def test_a3_export_above_the_threshold_is_a_background_job_with_progress(app, db, login_as):
    """An instrument export above EXPORT_ASYNC_THRESHOLD becomes a job with a progress page;
    the file holds the requester's rows only and nobody else can fetch it."""
    client = login_as("psy_tpe")
    bsrs = _builtin(db, "BSRS5")
    app.config["EXPORT_ASYNC_THRESHOLD"] = 1
    try:
        response = client.get(f"/assessment/export/instrument/{bsrs.id}")
    finally:
        app.config["EXPORT_ASYNC_THRESHOLD"] = 1_000_000
    assert response.status_code == 302 and "/exports/" in response.headers["Location"]
    job_id = response.headers["Location"].rstrip("/").split("/")[-1]
    db.session.expire_all()
    job = db.session.get(ExportJob, job_id)
    assert job.status == "done", job.error
    data = client.get(f"/exports/{job_id}/download")
    rows = list(load_workbook(io.BytesIO(data.data), read_only=True).active.iter_rows(values_only=True))
    institution_id = _institution_id(db, "psy_tpe")
    own = db.session.scalar(select(func.count(AssessmentResponse.id)).where(
        AssessmentResponse.instrument_id == bsrs.id, AssessmentResponse.institution_id == institution_id))  # fmt: skip
    assert len(rows) - 2 == own and job.done_rows == own
    assert login_as("cm_khh").get(f"/exports/{job_id}/download").status_code == 404
