"""Visit entry that fits the work (issue 15, item 2): the quitter lookup (scoped: C1's "the
institution enters its own"), the pre-fill contract, 儲存並新增下一筆, refusals that keep what was
typed, the lock state before anyone types (C2/C3, 已更正 after a C5 conversion), 申請更正 from a
locked record, and the medication code list."""

from __future__ import annotations

import datetime as dt
import io
import re

import pytest
from sqlalchemy import select

from models.cessation.visit import Medication, Quitter, Visit, medication_code
from models.registry.institution import Institution
from tests.conftest import post_form, visible_text
from tests.factories import _at, _form, _new_id, _setup, _visits


def _enter(app, client, institution_id, practitioner_id, national_id, visit_date, **extra):
    """Enter one visit through the form; the response of the POST."""
    return post_form(app, client, "/visitview/add", _form(institution_id, practitioner_id, national_id, visit_date, **extra))


def _khh_quitter(app, db, login_as):
    """A quitter entered by facility_khh only (another institution's, to facility_tpe)."""
    institution_id, practitioner_id = _setup(db, "facility_khh")
    national_id = _new_id("E")
    with _at(2025, 6, 3, 9, 0):
        response = _enter(app, login_as("facility_khh"), institution_id, practitioner_id, national_id, "114/06/02",
                          quitter_name="高雄甲")  # fmt: skip
    assert response.status_code == 302
    return national_id


# ------------------------------------------------------------------ lookup
def test_c1_lookup_by_id_fills_the_known_data_of_an_own_quitter(app, db, login_as):
    institution_id, practitioner_id = _setup(db, "facility_tpe")
    client = login_as("facility_tpe")
    national_id = _new_id()
    with _at(2025, 6, 3, 9, 0):
        _enter(app, client, institution_id, practitioner_id, national_id, "114/06/02", quitter_name="林查詢")
    answer = client.get(f"/visitview/quitter_lookup?q={national_id.lower()}")
    assert answer.status_code == 200
    (row,) = answer.json["results"]
    assert row == {"national_id": national_id, "fill_id": True, "name": "林查詢", "sex": "M",
                   "sex_label": "男", "birth_date": "60/05/01"}  # fmt: skip
    by_name = client.get("/visitview/quitter_lookup?q=查詢").json["results"]
    assert [r["national_id"] for r in by_name] == [national_id]


def test_c1_lookup_never_finds_another_institutions_quitter(app, db, login_as):
    """By ID or by name, facility_tpe learns nothing of facility_khh's quitter."""
    national_id = _khh_quitter(app, db, login_as)
    client = login_as("facility_tpe")
    by_id = client.get(f"/visitview/quitter_lookup?q={national_id}")
    by_name = client.get("/visitview/quitter_lookup?q=高雄甲")
    for answer in (by_id, by_name):
        assert answer.status_code == 200 and answer.json["results"] == []
        assert "高雄甲" not in answer.text and "查無本機構符合的戒菸者" in answer.json["message"]
    # Nor through the pre-fill of the form.
    page = client.get(f"/visitview/add?national_id={national_id}")
    assert page.status_code == 200 and "高雄甲" not in page.text and national_id not in page.text
    # facility_khh itself finds it.
    assert login_as("facility_khh").get(f"/visitview/quitter_lookup?q={national_id}").json["results"]


@pytest.mark.parametrize("q", ["A123456788", "A12345678", "Ａ１２３４５６７８９０", "Q1" + "9" * 60, "%", "_", "=1+1",
                               "A١٢٣٤٥٦٧٨٩", "", "   "])  # fmt: skip
def test_lookup_answers_hostile_input_in_zh_tw_never_a_500(login_as, q):
    answer = login_as("facility_tpe").get("/visitview/quitter_lookup", query_string={"q": q})
    assert answer.status_code == 200
    assert answer.is_json and re.search(r"[\u4e00-\u9fff]", answer.json["message"] or "查") is not None
    # % and _ are matched as typed, not as LIKE wildcards: no quitter's name holds them.
    assert answer.json["results"] == []


def test_lookup_malformed_id_is_answered_in_zh_tw(login_as):
    answer = login_as("facility_tpe").get("/visitview/quitter_lookup?q=A123456788")
    assert answer.status_code == 200 and answer.json["error"] is True and "檢查碼" in answer.json["message"]
    assert answer.json["results"] == []


def test_lookup_is_only_for_who_enters_visits(login_as):
    """The office reads visits but does not enter them: no lookup either."""
    assert login_as("office").get("/visitview/quitter_lookup?q=F123456784").status_code in (302, 403)


def test_c1_known_quitter_needs_only_id_and_name(app, db, login_as):
    institution_id, practitioner_id = _setup(db, "facility_tpe")
    client = login_as("facility_tpe")
    national_id = _new_id()
    with _at(2025, 6, 12, 9, 0):
        _enter(app, client, institution_id, practitioner_id, national_id, "114/06/02")
        second = _enter(app, client, institution_id, practitioner_id, national_id, "114/06/10",
                        quitter_sex="", quitter_birth_date="")  # fmt: skip
    assert second.status_code == 302, visible_text(second.text)[-300:]
    visits = _visits(db, national_id)
    assert len(visits) == 2 and visits[0].quitter_id == visits[1].quitter_id
    assert db.session.scalars(select(Quitter).where(Quitter.national_id == national_id)).all()[0].birth_date == dt.date(1971, 5, 1)


def test_c1_another_institutions_quitter_is_not_known_by_id_and_name(app, db, login_as):
    """ID and name of facility_khh's quitter without sex and birth date: asked for them, as
    for a new quitter (nothing tells facility_tpe the ID is registered elsewhere)."""
    national_id = _khh_quitter(app, db, login_as)
    institution_id, practitioner_id = _setup(db, "facility_tpe")
    with _at(2025, 6, 20, 9, 0):
        response = _enter(app, login_as("facility_tpe"), institution_id, practitioner_id, national_id, "114/06/19",
                          quitter_name="高雄甲", quitter_sex="", quitter_birth_date="")  # fmt: skip
    assert response.status_code == 200 and "請填寫性別" in visible_text(response.text)
    assert [v.institution_id for v in _visits(db, national_id)] != [institution_id] * 2


# ------------------------------------------------------------------ pre-fill
def test_prefill_contract_national_id_and_visit_date(app, db, login_as):
    institution_id, practitioner_id = _setup(db, "facility_tpe")
    client = login_as("facility_tpe")
    national_id = _new_id()
    with _at(2025, 6, 3, 9, 0):
        _enter(app, client, institution_id, practitioner_id, national_id, "114/06/02", quitter_name="補登甲")
        page = client.get(f"/visitview/add?national_id={national_id}&visit_date=2025-05-28")
    assert page.status_code == 200
    assert f'value="{national_id}"' in page.text and 'value="補登甲"' in page.text
    assert 'value="114/05/28"' in page.text and 'value="60/05/01"' in page.text


@pytest.mark.parametrize("args", [
    "national_id=A123456788&visit_date=2025-13-01", "national_id=%25&visit_date=114/05/01",
    "national_id=" + "Q" * 5000 + "&visit_date=9999-12-31", "visit_date=2999-01-01",
    "institution=99999999999999999999&practitioner=-1&_flt_0_quitter=１２", "institution=abc&_flt_0_quitter=0",
])  # fmt: skip
def test_prefill_ignores_bad_values_never_a_500(login_as, args):
    page = login_as("facility_tpe").get(f"/visitview/add?{args}")
    assert page.status_code == 200 and 'id="quitter_national_id"' in page.text


def test_plus_on_a_quitters_visit_tab_opens_the_form_prefilled(app, db, login_as):
    institution_id, practitioner_id = _setup(db, "facility_tpe")
    client = login_as("facility_tpe")
    national_id = _new_id()
    with _at(2025, 6, 3, 9, 0):
        _enter(app, client, institution_id, practitioner_id, national_id, "114/06/02", quitter_name="加號甲")
    quitter = db.session.scalars(select(Quitter).where(Quitter.national_id == national_id)).one()
    show = client.get(f"/quitterview/show/{quitter.id}")
    add_links = [h.replace("&amp;", "&") for h in re.findall(r'href="([^"]*/visitview/add[^"]*)"', show.text)]
    assert add_links, "the quitter's visit tab offers ＋"
    page = client.get(add_links[0])
    assert f'value="{national_id}"' in page.text and 'value="加號甲"' in page.text


# ------------------------------------------------------------- save and next
def test_save_and_next_opens_a_fresh_form_for_the_same_institution(app, db, login_as):
    institution_id, practitioner_id = _setup(db, "facility_tpe")
    client = login_as("facility_tpe")
    national_id = _new_id()
    with _at(2025, 6, 3, 9, 0):
        saved = _enter(app, client, institution_id, practitioner_id, national_id, "114/06/02", save_and_next="1")
        assert saved.status_code == 302 and "/visitview/add" in saved.location
        assert f"institution={institution_id}" in saved.location
        fresh = client.get(saved.location)
    assert len(_visits(db, national_id)) == 1
    text = visible_text(fresh.text)
    assert "已儲存" in text and "114/06/02" in text and "吳宗翰" in text
    assert f'value="{national_id}"' not in fresh.text  # a fresh form, not the last quitter
    assert re.search(rf'<option selected value="{institution_id}"|<option value="{institution_id}" selected', fresh.text)


# ---------------------------------------------------------- refusals stay
def test_c4_name_mismatch_and_every_refusal_keep_what_was_typed(app, db, login_as):
    """A refusal raised while saving (here C4 on a quitter typed with another name, which the
    person registry files apart) shows the form again with every field as typed."""
    institution_id, practitioner_id = _setup(db, "facility_tpe")
    client = login_as("facility_tpe")
    national_id = _new_id()
    with _at(2025, 6, 3, 9, 0):
        _enter(app, client, institution_id, practitioner_id, national_id, "114/06/02")
        refused = _enter(app, client, institution_id, practitioner_id, national_id, "114/06/03",
                         quitter_name="吳宗瀚", medication_name="Nicotine gum", medication_days="21")  # fmt: skip
    assert refused.status_code == 200
    assert "不符 5 日規定" in visible_text(refused.text)
    for typed in (f'value="{national_id}"', 'value="吳宗瀚"', 'value="114/06/03"', 'value="21"', 'value="60/05/01"'):
        assert typed in refused.text, typed
    assert re.search(r'<option selected value="Nicotine gum"|<option value="Nicotine gum" selected', refused.text)
    assert len(_visits(db, national_id)) == 1


def test_c4_refusal_at_save_time_keeps_what_was_typed(app, db, login_as, monkeypatch):
    """A visit of the same quitter entered by someone else between the form's check and the
    save (here: the form's check skipped) is refused by the save's own C4 check under the
    quitter lock; FAB's add then redirected and threw the form away. It stays, as typed."""
    from views.cessation.visits import VisitRules

    institution_id, practitioner_id = _setup(db, "facility_tpe")
    client = login_as("facility_tpe")
    national_id = _new_id()
    with _at(2025, 6, 3, 9, 0):
        _enter(app, client, institution_id, practitioner_id, national_id, "114/06/02")
        monkeypatch.setattr(VisitRules, "__call__", lambda self, form, field: None)
        refused = _enter(app, client, institution_id, practitioner_id, national_id, "114/06/03",
                         quitter_name="吳宗瀚", medication_days="21")  # fmt: skip
    assert refused.status_code == 200 and "不符 5 日規定" in visible_text(refused.text)
    for typed in (f'value="{national_id}"', 'value="吳宗瀚"', 'value="114/06/03"', 'value="21"'):
        assert typed in refused.text, typed
    assert len(_visits(db, national_id)) == 1


def test_c4_refusal_at_save_time_on_the_edit_form_keeps_what_was_typed(app, db, login_as, monkeypatch):
    """The edit form too: a C4 refusal raised while saving (the form's own check skipped, as
    when another entry lands in between) shows the edit form again with what was typed, and
    the record is unchanged."""
    from views.cessation.visits import VisitRules

    institution_id, practitioner_id = _setup(db, "facility_tpe")
    client = login_as("facility_tpe")
    national_id = _new_id()
    with _at(2025, 6, 12, 9, 0):
        _enter(app, client, institution_id, practitioner_id, national_id, "114/06/02")
        _enter(app, client, institution_id, practitioner_id, national_id, "114/06/10")
        first, second = _visits(db, national_id)
        monkeypatch.setattr(VisitRules, "__call__", lambda self, form, field: None)
        refused = post_form(app, client, f"/visitview/edit/{second.id}", {
            "practitioner": str(practitioner_id), "visit_date": "114/06/04", "medication_name": "Varenicline",
            "medication_days": "28", "education_minutes": "",
        })  # fmt: skip
    assert refused.status_code == 200 and "不符 5 日規定" in visible_text(refused.text)
    for typed in ('value="114/06/04"', 'value="28"'):
        assert typed in refused.text, typed
    db.session.expire_all()
    assert [v.visit_date for v in _visits(db, national_id)] == [dt.date(2025, 6, 2), dt.date(2025, 6, 10)]


def test_name_mismatch_outside_the_window_is_saved_apart_not_thrown_away(app, db, login_as):
    institution_id, practitioner_id = _setup(db, "facility_tpe")
    client = login_as("facility_tpe")
    national_id = _new_id()
    with _at(2025, 6, 20, 9, 0):
        _enter(app, client, institution_id, practitioner_id, national_id, "114/06/02")
        other = _enter(app, client, institution_id, practitioner_id, national_id, "114/06/19", quitter_name="吳宗瀚")
    assert other.status_code == 302
    assert len(_visits(db, national_id)) == 2


# ------------------------------------------------------------- lock state
def test_c2_c3_lock_status_on_every_row_and_edit_only_while_open(app, db, login_as):
    institution_id, practitioner_id = _setup(db, "facility_tpe")
    client = login_as("facility_tpe")
    national_id = _new_id()
    with _at(2025, 6, 3, 9, 0):
        _enter(app, client, institution_id, practitioner_id, national_id, "114/05/02")
        _enter(app, client, institution_id, practitioner_id, national_id, "114/06/02")
    old, new = _visits(db, national_id)
    with _at(2025, 6, 25, 9, 0):  # May's deadline (114/06/20) has passed, June's has not
        page = client.get(f"/visitview/list/?_flt_0_quitter={national_id}")
        edit_old = client.get(f"/visitview/edit/{old.id}")
        edit_new = client.get(f"/visitview/edit/{new.id}")
        refused = post_form(app, client, f"/visitview/edit/{old.id}", {
            "practitioner": str(practitioner_id), "visit_date": "114/05/02", "medication_name": "Varenicline",
            "medication_days": "28", "education_minutes": ""})  # fmt: skip
        post_form(app, client, f"/visitview/delete/{old.id}", {})
    rows = re.findall(r"<tr>.*?</tr>", page.text, re.S)
    row_old = next(r for r in rows if f"/visitview/show/{old.id}" in r)
    row_new = next(r for r in rows if f"/visitview/show/{new.id}" in r)
    assert "已鎖定" in row_old and f"/visitview/edit/{old.id}" not in row_old and "fa-trash" not in row_old
    assert "開放修改至114/07/20" in row_new and f"/visitview/edit/{new.id}" in row_new and "fa-trash" in row_new
    assert "已鎖定" in visible_text(edit_old.text) and 'id="quitter_national_id"' not in edit_old.text
    assert 'name="medication_days"' not in edit_old.text  # no form the server would refuse
    assert "開放修改至114/07/20" in visible_text(edit_new.text) and 'name="medication_days"' in edit_new.text
    assert refused.status_code == 200 and "已鎖定" in visible_text(refused.text)
    db.session.expire_all()
    assert db.session.get(Visit, old.id).medication_days == 14  # the server still refuses (C3)


def test_c3_locked_record_offers_request_correction_prefilled_ticket(app, db, login_as):
    institution_id, practitioner_id = _setup(db, "facility_tpe")
    client = login_as("facility_tpe")
    national_id = _new_id()
    with _at(2025, 6, 3, 9, 0):
        _enter(app, client, institution_id, practitioner_id, national_id, "114/05/02")
    (visit,) = _visits(db, national_id)
    with _at(2025, 6, 25, 9, 0):
        show = client.get(f"/visitview/show/{visit.id}")
        link = re.search(r'id="visit-request-correction"\s+href="([^"]+)"', show.text)
        assert link and "已鎖定" in visible_text(show.text)
        ticket_form = client.get(link.group(1).replace("&amp;", "&"))
    assert ticket_form.status_code == 200
    assert f'value="{national_id}"' in ticket_form.text and 'value="114/05/02"' in ticket_form.text
    nhi = db.session.get(Institution, institution_id)
    assert re.search(rf'<option selected value="{nhi.id}"|<option value="{nhi.id}" selected', ticket_form.text)


def test_c5_converted_record_shows_corrected(db, login_as):
    """A record a ticket's conversion re-dated shows 已更正 and no edit (the demo's swap case)."""
    visit = db.session.scalars(select(Visit).where(Visit.corrected_by_ticket_id.is_not(None))).first()
    assert visit is not None, "the demo has a converted record"
    show = login_as("office").get(f"/visitview/show/{visit.id}")
    assert "已更正" in visible_text(show.text) and visit.corrected_by_ticket.number in show.text


def test_c2_open_record_shows_no_correction_request(app, db, login_as):
    institution_id, practitioner_id = _setup(db, "facility_tpe")
    client = login_as("facility_tpe")
    national_id = _new_id()
    with _at(2025, 6, 3, 9, 0):
        _enter(app, client, institution_id, practitioner_id, national_id, "114/06/02")
        (visit,) = _visits(db, national_id)
        show = client.get(f"/visitview/show/{visit.id}")
    assert "開放修改至114/07/20" in visible_text(show.text) and "visit-request-correction" not in show.text


# ------------------------------------------------------------- medication
def test_medication_is_chosen_from_the_zh_tw_list_and_stored_as_its_code(app, db, login_as):
    institution_id, practitioner_id = _setup(db, "facility_tpe")
    client = login_as("facility_tpe")
    with _at(2025, 6, 3, 9, 0):
        page = client.get("/visitview/add")
        national_id = _new_id()
        _enter(app, client, institution_id, practitioner_id, national_id, "114/06/02", medication_name="Nicotine patch")
        bad_id = _new_id()
        refused = _enter(app, client, institution_id, practitioner_id, bad_id, "114/06/02", medication_name="Aspirin")
    assert "戒必適 (Varenicline)" in page.text and "尼古丁貼片" in page.text
    (visit,) = _visits(db, national_id)
    assert visit.medication_name == "Nicotine patch" and "尼古丁貼片" in visit.services_text
    assert refused.status_code == 200 and _visits(db, bad_id) == []


def test_medication_days_need_a_medicine(app, db, login_as):
    institution_id, practitioner_id = _setup(db, "facility_tpe")
    national_id = _new_id()
    with _at(2025, 6, 3, 9, 0):
        refused = _enter(app, login_as("facility_tpe"), institution_id, practitioner_id, national_id, "114/06/02",
                         medication_name="")  # fmt: skip
    assert refused.status_code == 200 and "請選擇藥品" in visible_text(refused.text)


@pytest.mark.parametrize("typed, code", [
    ("尼古丁貼片", "Nicotine patch"), ("尼古丁貼片 (Nicotine patch)", "Nicotine patch"),
    ("nicotine PATCH", "Nicotine patch"), ("戒必適", "Varenicline"), ("  ｖａｒｅｎｉｃｌｉｎｅ ", "Varenicline"),
    ("Aspirin", "Aspirin"), ("", None),
])  # fmt: skip
def test_medication_code_reads_label_or_code(app, typed, code):
    with app.test_request_context():
        assert medication_code(typed) == code


def test_batch_upload_accepts_the_zh_tw_label_or_the_code(app, db, login_as):
    from openpyxl import Workbook, load_workbook

    from models.registry.practitioner import Practitioner
    from tests.conftest import csrf_token

    institution_id, practitioner_id = _setup(db, "facility_tpe")
    nhi = db.session.get(Institution, institution_id).nhi_code
    practitioner = db.session.get(Practitioner, practitioner_id).national_id
    client = login_as("facility_tpe")
    header = [c.value for c in load_workbook(io.BytesIO(client.get("/visitupload/template").data)).worksheets[0][1]]
    ids = [_new_id(), _new_id()]
    book = Workbook()
    sheet = book.active
    sheet.append(header)
    for national_id, medication in zip(ids, ["尼古丁口嚼錠", "Varenicline"], strict=True):
        sheet.append([nhi, practitioner, national_id, "批次甲", "男", "60/05/01", "114/06/02", medication, 14, None])
    buffer = io.BytesIO()
    book.save(buffer)
    with _at(2025, 6, 3, 9, 0):
        response = client.post(
            "/visitupload/", content_type="multipart/form-data",
            data={"file": (io.BytesIO(buffer.getvalue()), "visits.xlsx"), "csrf_token": csrf_token(app, client)},
        )  # fmt: skip
    assert response.status_code == 302, visible_text(response.text)[-400:]
    stored = [v.medication_name for national_id in ids for v in _visits(db, national_id)]
    assert stored == [Medication.NICOTINE_GUM.value, Medication.VARENICLINE.value]


@pytest.mark.parametrize("given, stored, day", [("戒必適", "Varenicline", 1), ("Nicotine gum", "Nicotine gum", 10),
                                               ("Aspirin", None, 20)])  # fmt: skip
def test_visit_api_takes_the_medication_code_or_label_and_refuses_others(db, api_as, given, stored, day):
    """The REST API meets the same code list as the form and the batch (one rule, every path)."""
    from core import clock
    from core.dates import TAIPEI

    institution_id, practitioner_id = _setup(db, "facility_tpe")
    quitter_id = db.session.scalar(select(Visit.quitter_id).where(Visit.institution_id == institution_id).limit(1))
    client, headers = api_as("facility_tpe")
    body = {"institution": institution_id, "practitioner": practitioner_id, "quitter": quitter_id,
            "visit_date": f"2020-03-{day:02d}", "medication_name": given, "medication_days": 14}  # fmt: skip
    with clock.frozen(dt.datetime(2020, 3, day + 1, 9, 0, tzinfo=TAIPEI)):
        response = client.post("/api/v1/visit/", headers=headers, json=body)
    if stored is None:
        assert response.status_code == 422 and "medication_name" in response.json["message"], response.text
    else:
        assert response.status_code == 201, response.text
        assert db.session.get(Visit, response.json["id"]).medication_name == stored


def test_c3_bureau_reads_a_locked_record_without_a_correction_button(app, db, login_as):
    """Only who may file a ticket is offered 申請更正 (the bureau reads its county's tickets)."""
    institution_id, practitioner_id = _setup(db, "facility_tpe")
    national_id = _new_id()
    with _at(2025, 6, 3, 9, 0):
        _enter(app, login_as("facility_tpe"), institution_id, practitioner_id, national_id, "114/05/02")
    (visit,) = _visits(db, national_id)
    with _at(2025, 6, 25, 9, 0):
        show = login_as("bureau_tpe").get(f"/visitview/show/{visit.id}")
    assert show.status_code == 200 and "已鎖定" in visible_text(show.text)
    assert "visit-request-correction" not in show.text
