"""A6: HIS orders by Web API and by upload, idempotent on (institution, HIS order id, line);
order sets as single orders; receipts; bad batches refused whole; code mappings with
effective dates and the unmapped-codes work queue."""

from __future__ import annotations

import datetime as dt
import io
import threading

import pytest
from openpyxl import Workbook

from models.addiction.his import HisOrder, OrderCodeMapping
from models.addiction.record import TreatmentRecord
from tests.addiction import claims_world as w
from tests.conftest import csrf_token

D = dt.date(w.YEAR, 3, 2)


@pytest.fixture(scope="module")
def world(app):
    from core.extensions import db

    with app.app_context():
        yield w.build(app, db)
        db.session.remove()


def _stored(db, inst_id, his_order_id):
    db.session.expire_all()
    return db.session.query(HisOrder).filter_by(institution_id=inst_id, his_order_id=his_order_id).order_by(HisOrder.line).all()


def test_a6_an_order_set_arrives_as_its_single_orders(app, db, world):
    person = w.patient(db)
    w.case(db, world.a, person)
    db.session.commit()
    body = {"orders": [{"his_order_id": "SET-1", "person_id": person.national_id, "order_date": D.isoformat(),
                        "executed_on": D.isoformat(), "order_set_code": "SET-PSY",
                        "members": [{"line": 1, "order_code": "PSY01"}, {"line": 2, "order_code": "OPD01", "quantity": 2}]}]}
    response = w.post(app, world.key_a, body)
    assert response.status_code == 200, response.text
    assert response.json["accepted"] == 2 and response.json["rejected"] == 0
    rows = _stored(db, world.a, "SET-1")
    assert [(r.line, r.order_code, r.order_set_code, r.quantity) for r in rows] == [
        (1, "PSY01", "SET-PSY", 1), (2, "OPD01", "SET-PSY", 2)]


def test_a6_orders_never_create_a_treatment_record(app, db, world):
    person = w.patient(db)
    case = w.case(db, world.a, person)
    db.session.commit()
    before = db.session.query(TreatmentRecord).filter_by(case_id=case.id).count()
    assert w.post(app, world.key_a, {"orders": [w.order("NR-1", 1, person, "PSY01", D)]}).status_code == 200
    assert db.session.query(TreatmentRecord).filter_by(case_id=case.id).count() == before == 0


def test_a6_the_same_batch_twice_stores_each_order_once(app, db, world):
    person = w.patient(db)
    w.case(db, world.a, person)
    db.session.commit()
    body = {"orders": [w.order("TW-1", n, person, "PSY01", D) for n in range(1, 6)]}
    first = w.post(app, world.key_a, body).json
    second = w.post(app, world.key_a, body).json
    assert (first["accepted"], first["duplicate"]) == (5, 0)
    assert (second["accepted"], second["duplicate"]) == (0, 5)
    assert len(_stored(db, world.a, "TW-1")) == 5


def test_a6_the_same_batch_posted_concurrently_stores_each_order_once(app, db, world):
    """Two workers post the same batch at the same moment: the unique constraint and
    INSERT … ON CONFLICT DO NOTHING store each order once, and the two receipts together
    accept each line exactly once."""
    person = w.patient(db)
    w.case(db, world.a, person)
    db.session.commit()
    body = {"orders": [w.order("CC-1", n, person, "PSY01", D) for n in range(1, 201)]}
    results, barrier = [], threading.Barrier(2)

    def worker():
        with app.app_context():
            barrier.wait()
            response = w.post(app, world.key_a, body)
            results.append((response.status_code, response.json))

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert [status for status, _ in results] == [200, 200], results
    assert sum(r["accepted"] for _, r in results) == 200
    assert sum(r["duplicate"] for _, r in results) == 200
    assert len(_stored(db, world.a, "CC-1")) == 200


def test_a6_receipt_rejects_a_person_without_a_case_here_and_a_closed_case(app, db, world):
    stranger, closed, elsewhere = w.patient(db), w.patient(db), w.patient(db)
    w.case(db, world.a, closed, closed=dt.date(w.YEAR, 1, 31))
    w.case(db, world.b, elsewhere)  # a case at B only: A learns nothing of it
    db.session.commit()
    body = {"orders": [w.order("RJ-1", 1, stranger, "PSY01", D), w.order("RJ-1", 2, closed, "PSY01", D),
                       w.order("RJ-1", 3, elsewhere, "PSY01", D),
                       w.order("RJ-1", 4, closed, "PSY01", dt.date(w.YEAR, 1, 10))]}
    receipt = w.post(app, world.key_a, body).json
    assert receipt["accepted"] == 1
    reasons = {r["line"]: r["reason"] for r in receipt["rejections"]}
    assert reasons == {1: "no_case", 2: "case_not_open", 3: "no_case"}
    assert "個案" in receipt["rejections"][0]["message"]
    assert [r.line for r in _stored(db, world.a, "RJ-1")] == [4]


@pytest.mark.parametrize("bad", [
    {"executed_on": "114/2/30"},
    {"order_date": "2031-02-30"},
    {"line": "one"},
    {"quantity": 0},
    {"person_id": {"id": 1}},
    {"order_code": "X" * 31},
])
def test_a6_a_malformed_line_refuses_the_whole_batch_naming_the_line(app, db, world, bad):
    person = w.patient(db)
    w.case(db, world.a, person)
    db.session.commit()
    good = w.order("BAD-1", 1, person, "PSY01", D)
    broken = {**w.order("BAD-1", 2, person, "PSY01", D), **bad}
    response = w.post(app, world.key_a, {"orders": [good, broken]})
    assert response.status_code == 422, response.text
    lines = response.json["message"]["lines"]
    assert lines[0]["index"] == 1 and lines[0]["field"] == next(iter(bad))
    assert "沒有儲存" in response.json["message"]["batch"] or "未儲存" in response.json["message"]["batch"]
    assert _stored(db, world.a, "BAD-1") == []


def test_a6_roc_date_that_is_not_on_the_calendar_is_named(app, db, world):
    person = w.patient(db)
    w.case(db, world.a, person)
    db.session.commit()
    response = w.post(app, world.key_a, {"orders": [{**w.order("ROC-1", 1, person, "PSY01", D),
                                                      "executed_on": "114/2/30"}]})
    assert response.status_code == 422
    assert "114/2/30" in response.json["message"]["lines"][0]["error"]


@pytest.mark.parametrize("payload,status", [
    (b"not json", 400), (b"[1, 2]", 400), (b'{"orders": "x"}', 422), (b'{"orders": []}', 400),
])
def test_a6_a_batch_that_is_not_a_batch_is_a_4xx(app, world, payload, status):
    response = app.test_client().post("/api/v1/his/orders", data=payload, content_type="application/json",
                                      headers={"Authorization": f"Bearer {world.key_a}"})
    assert response.status_code == status, response.text
    assert response.json["message"]


def test_a6_ten_megabytes_of_lines_is_refused_unread(app, db, world):
    person = w.patient(db)
    line = w.order("BIG-1", 1, person, "PSY01", D)
    body = {"orders": [line] * 90_000}
    response = w.post(app, world.key_a, body)
    assert response.status_code == 413
    assert _stored(db, world.a, "BIG-1") == []


def test_a6_more_lines_than_a_batch_may_have_is_refused(app, db, world):
    person = w.patient(db)
    w.case(db, world.a, person)
    db.session.commit()
    before = app.config.get("HIS_BATCH_MAX_LINES")
    app.config["HIS_BATCH_MAX_LINES"] = 10
    try:
        response = w.post(app, world.key_a, {"orders": [w.order("MAX-1", n, person, "PSY01", D) for n in range(11)]})
    finally:
        app.config["HIS_BATCH_MAX_LINES"] = before
    assert response.status_code == 413 and _stored(db, world.a, "MAX-1") == []


def test_a6_an_institution_posting_for_another_is_answered_as_if_it_did_not_exist(app, db, world):
    person = w.patient(db)
    w.case(db, world.b, person)
    db.session.commit()
    other = db.session.get(__import__("models.registry.institution", fromlist=["Institution"]).Institution, world.b)
    body = {"orders": [w.order("FOR-B", 1, person, "PSY01", D)]}
    foreign = w.post(app, world.key_a, body, institution=other.nhi_code)
    missing = w.post(app, world.key_a, body, institution="9999999999")
    assert foreign.status_code == missing.status_code == 422
    assert foreign.json == missing.json
    assert _stored(db, world.b, "FOR-B") == []
    # Its own system account posts it.
    assert w.post(app, world.key_b, body).json["accepted"] == 1


def test_a6_the_system_account_reads_nothing_but_its_orders(app, world):
    client = app.test_client()
    headers = {"Authorization": f"Bearer {world.key_a}"}
    assert client.get("/api/v1/case/", headers=headers).status_code in (401, 403, 404)
    listed = client.get("/api/v1/his_order/?q=(page_size:100)", headers=headers)
    assert listed.status_code == 200
    assert {r["institution_id"] for r in listed.json["result"]} <= {world.a}


def test_a6_the_post_is_in_the_openapi_document(app, api_as):
    client, headers = api_as("dr_tpe")
    spec = client.get("/api/v1/_openapi", headers=headers).json
    assert "post" in spec["paths"]["/api/v1/his/orders"]


def _xlsx(rows) -> bytes:
    from domain.addiction.his import COLUMNS

    book = Workbook()
    sheet = book.active
    with __import__("flask").current_app.test_request_context():
        sheet.append([str(c.label) for c in COLUMNS])
    for row in rows:
        sheet.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def _upload(app, login_as, username, data, name):
    client = login_as(username)
    token = csrf_token(app, client)
    return client.post("/hisupload/", data={"csrf_token": token, "file": (io.BytesIO(data), name)},
                       content_type="multipart/form-data", follow_redirects=False)


def test_a6_upload_csv_and_xlsx_all_or_nothing_with_the_error_column(app, db, world, login_as):
    from domain.addiction.his import COLUMNS

    person = w.patient(db)
    w.case(db, world.a, person)
    db.session.commit()
    code = db.session.get(__import__("models.registry.institution", fromlist=["Institution"]).Institution, world.a).nhi_code
    with app.test_request_context():
        header = ",".join(str(c.label) for c in COLUMNS)
    good = f"{code},UP-1,1,{person.national_id},PSY01,{w.YEAR - 1911}/03/01,{w.YEAR - 1911}/03/02,1,"
    bad = f"{code},UP-1,2,{person.national_id},PSY01,{w.YEAR - 1911}/02/30,{w.YEAR - 1911}/03/02,1,"
    response = _upload(app, login_as, world.staff_a, f"{header}\n{good}\n{bad}\n".encode(), "orders.csv")
    assert response.status_code == 200
    assert "114/2/30".replace("114", str(w.YEAR - 1911)) in response.text or "不是" in response.text
    assert 'id="error-report"' in response.text
    assert _stored(db, world.a, "UP-1") == []
    response = _upload(app, login_as, world.staff_a, f"{header}\n{good}\n".encode("utf-8-sig"), "orders.csv")
    assert response.status_code == 302
    assert len(_stored(db, world.a, "UP-1")) == 1
    rows = [[code, "UP-2", n, person.national_id, "PSY01", f"{w.YEAR - 1911}/03/01", f"{w.YEAR - 1911}/03/02", 1, None]
            for n in (1, 2)]  # fmt: skip
    response = _upload(app, login_as, world.staff_a, _xlsx(rows), "orders.xlsx")
    assert response.status_code == 302, response.text
    assert len(_stored(db, world.a, "UP-2")) == 2


class _Statements:
    """SQL statements sent while the block runs (their text), on every connection."""

    def __init__(self, db):
        self.engine, self.sent = db.engine, []

    def _listen(self, conn, cursor, statement, *args):
        self.sent.append(statement)

    def __enter__(self):
        from sqlalchemy import event

        event.listen(self.engine, "before_cursor_execute", self._listen)
        return self

    def __exit__(self, *exc):
        from sqlalchemy import event

        event.remove(self.engine, "before_cursor_execute", self._listen)

    def count(self, word: str) -> int:
        return sum(1 for text in self.sent if word.lower() in text.lower())


def test_a6_a_reposted_batch_is_answered_by_one_query_per_batch_and_inserts_nothing(app, db, world):
    """Re-posting unchanged lines: the stored keys of the whole batch are read in one query
    (per 900 HIS order ids), and no INSERT is sent at all."""
    people = [w.patient(db) for _ in range(3)]
    for person in people:
        w.case(db, world.a, person)
    db.session.commit()
    body = {"orders": [w.order(f"RP-{n}", k, people[n % 3], "PSY01", D) for n in range(40) for k in (1, 2)]}
    assert w.post(app, world.key_a, body).json["accepted"] == 80
    with _Statements(db) as sql:
        again = w.post(app, world.key_a, body).json
    assert (again["accepted"], again["duplicate"]) == (0, 80)
    assert sql.count("INSERT INTO his_order") == 0
    assert sql.count("FROM his_order") == 1


def test_a6_the_api_keys_slow_hash_runs_once_per_key_and_a_revoked_key_is_refused(app, db, world, monkeypatch):
    """The API key's scrypt hash (n=2**15) is verified once per key and process, not on every
    request; the key row is still read each time, so a revoked key is refused at once."""
    import werkzeug.security

    from models.platform.user import ScopedUser

    calls = []
    real = werkzeug.security.check_password_hash
    monkeypatch.setattr(werkzeug.security, "check_password_hash", lambda h, p: calls.append(h) or real(h, p))
    person = w.patient(db)
    w.case(db, world.a, person)
    db.session.commit()
    with app.test_request_context():
        row = db.session.query(ScopedUser).filter_by(username="his_a").one()
        made = app.appbuilder.sm.create_api_key(row, name="once")
    for n in range(3):
        response = w.post(app, made["key"], {"orders": [w.order("KEY-1", n, person, "PSY01", D)]})
        assert response.status_code == 200, response.text
    assert len(calls) == 1
    assert w.post(app, made["key"][:-1] + "x", {"orders": [w.order("KEY-1", 9, person, "PSY01", D)]}).status_code == 401
    with app.test_request_context():
        app.appbuilder.sm.revoke_api_key(made["uuid"])
    assert w.post(app, made["key"], {"orders": [w.order("KEY-1", 8, person, "PSY01", D)]}).status_code == 401
    assert [r.line for r in _stored(db, world.a, "KEY-1")] == [0, 1, 2]


def test_a6_the_upload_reads_the_cases_once_for_the_file_not_once_per_row(app, db, world, login_as):
    """A file of 60 rows sends as many queries as a file of 6 (the persons' cases are read
    once for the whole file)."""
    people = [w.patient(db) for _ in range(6)]
    for person in people:
        w.case(db, world.a, person)
    db.session.commit()
    code = db.session.get(__import__("models.registry.institution", fromlist=["Institution"]).Institution, world.a).nhi_code

    def rows(tag, n):
        return [[code, f"{tag}-{k}", 1, people[k % 6].national_id, "PSY01", f"{w.YEAR - 1911}/03/01",
                 f"{w.YEAR - 1911}/03/02", 1, None] for k in range(n)]  # fmt: skip

    # Sign in and warm the per-process caches first, so both measured uploads start alike.
    assert _upload(app, login_as, world.staff_a, _xlsx(rows("UP", 2)), "orders.xlsx").status_code == 302
    counts = []
    for tag, n in (("UQ", 6), ("UR", 60)):
        with _Statements(db) as sql:
            response = _upload(app, login_as, world.staff_a, _xlsx(rows(tag, n)), "orders.xlsx")
        assert response.status_code == 302, response.text
        counts.append(len(sql.sent))
    assert counts[1] == counts[0]
    assert len(_stored(db, world.a, "UR-59")) == 1


# ------------------------------------------------------------------ mappings (A6, Q9)
def _map(app, login_as, username, inst, order_code, item_code, start, end=""):
    client = login_as(username)
    return client.post("/ordercodemapping/add", data={
        "csrf_token": csrf_token(app, client), "institution": str(inst), "order_code": order_code,
        "item_code": item_code, "start_date": start, "end_date": end,
    })  # fmt: skip


def test_a6_an_overlapping_mapping_is_refused_with_a_message_keeping_what_was_typed(app, db, world, login_as):
    first = _map(app, login_as, world.staff_a, world.a, "OVL01", "PSY", f"{w.YEAR - 1911}/01/01", f"{w.YEAR - 1911}/06/30")
    assert first.status_code == 302
    second = _map(app, login_as, world.staff_a, world.a, "OVL01", "OPD", f"{w.YEAR - 1911}/06/01")
    assert second.status_code == 200
    assert "重疊" in second.text and 'value="OVL01"' in second.text
    assert db.session.query(OrderCodeMapping).filter_by(institution_id=world.a, order_code="OVL01").count() == 1
    third = _map(app, login_as, world.staff_a, world.a, "OVL01", "OPD", f"{w.YEAR - 1911}/07/01")
    assert third.status_code == 302


def test_a6_mapping_an_unknown_item_or_for_another_institution_is_refused(app, db, world, login_as):
    assert "NOPE" in _map(app, login_as, world.staff_a, world.a, "UNK01", "NOPE", "120/01/01").text
    response = _map(app, login_as, world.staff_a, world.b, "UNK02", "PSY", "120/01/01")
    assert response.status_code == 200
    assert db.session.query(OrderCodeMapping).filter_by(order_code="UNK02").count() == 0


def test_a6_unmapped_codes_wait_in_the_work_queue_and_mapping_one_re_evaluates_them(app, db, world, login_as):
    from core.data.scope import Scope
    from domain.addiction.claimable import case_year
    from domain.addiction.mapping import unmapped_codes

    person = w.patient(db)
    case = w.case(db, world.a, person)
    w.record(db, case, D)
    db.session.commit()
    w.post(app, world.key_a, {"orders": [w.order("UM-1", 1, person, "NEW99", D), w.order("UM-1", 2, person, "NEW99", D)]})
    scope = Scope(kind="facility", institution_ids=frozenset([world.a]))
    waiting = {r.order_code: r for r in unmapped_codes(scope)}
    assert waiting["NEW99"].orders == 2 and waiting["NEW99"].first == waiting["NEW99"].last == D
    page = login_as(world.staff_a).get("/unmappedcodes/")
    assert "NEW99" in page.text
    assert "待對照" in login_as(world.staff_a).get("/").text  # the home page's work queue
    form = login_as(world.staff_a).get(f"/ordercodemapping/add?order_code=NEW99&_flt_0_institution={world.a}")
    assert 'value="NEW99"' in form.text
    lines, _ = case_year(case, w.YEAR)
    assert [line.reason for line in lines] == ["unmapped", "unmapped"]
    assert _map(app, login_as, world.staff_a, world.a, "NEW99", "PSY", f"{w.YEAR - 1911}/01/01").status_code == 302
    assert "NEW99" not in {r.order_code for r in unmapped_codes(scope)}
    lines, _ = case_year(case, w.YEAR)
    assert [(line.item_code, line.amount) for line in lines] == [("PSY", 1500)]


def test_a6_a_mapping_changed_mid_year_applies_by_execution_date(app, db, world):
    from domain.addiction.claimable import case_year

    person = w.patient(db)
    case = w.case(db, world.a, person)
    early, late = dt.date(w.YEAR, 3, 1), dt.date(w.YEAR, 9, 1)
    for day in (early, late):
        w.record(db, case, day)
        w.record(db, case, day, kind="group_psychotherapy")
    db.session.add(OrderCodeMapping(institution_id=world.a, order_code="MID01", item_code="PSY",
                                    start_date=dt.date(w.YEAR, 1, 1), end_date=dt.date(w.YEAR, 6, 30)))  # fmt: skip
    db.session.add(OrderCodeMapping(institution_id=world.a, order_code="MID01", item_code="GRP",
                                    start_date=dt.date(w.YEAR, 7, 1)))  # fmt: skip
    db.session.commit()
    w.post(app, world.key_a, {"orders": [w.order("MID-1", 1, person, "MID01", early),
                                         w.order("MID-1", 2, person, "MID01", late)]})
    lines, _ = case_year(case, w.YEAR)
    assert [(line.executed_on, line.item_code) for line in lines] == [(early, "PSY"), (late, "GRP")]
    # GRP is only in 臺北市's local scheme: paid there (A10).
    assert [line.scheme_code for line in lines] == ["T-DRUG", "T-TPE"]
