"""Visit entry under the bulletin's rules, with the clock moved around the deadlines:
C1 (who may enter, by when), C2 (self-correction until the deadline), C3 (locked after),
C4 (5-day rule, across institutions and under concurrent entry)."""

from __future__ import annotations

import datetime as dt
import threading

import pytest

from core.dates import TAIPEI
from models.cessation.visit import Quitter, Timeliness, Visit, entry_deadline, timeliness
from models.registry.institution import ContractPeriod, Institution
from models.registry.practitioner import ServiceAssignment
from tests.conftest import post_form, visible_text
from tests.factories import _at, _form, _new_id, _setup, _visits


def test_c1_deadline_is_the_20th_of_the_next_month_taipei_time():
    assert entry_deadline(dt.date(2025, 3, 15)) == dt.datetime(2025, 4, 20, 23, 59, 59, tzinfo=TAIPEI)
    assert entry_deadline(dt.date(2024, 12, 31)) == dt.datetime(2025, 1, 20, 23, 59, 59, tzinfo=TAIPEI)
    assert entry_deadline(dt.date(2025, 1, 31)) == dt.datetime(2025, 2, 20, 23, 59, 59, tzinfo=TAIPEI)


def test_c1_timeliness_within_24_hours_late_or_after_the_deadline():
    visit = dt.date(2025, 3, 15)
    utc = dt.UTC
    assert timeliness(visit, dt.datetime(2025, 3, 16, 15, 59, tzinfo=utc)) is Timeliness.WITHIN_24H
    assert timeliness(visit, dt.datetime(2025, 3, 16, 16, 0, 1, tzinfo=utc)) is Timeliness.BEFORE_DEADLINE
    assert timeliness(visit, dt.datetime(2025, 4, 20, 15, 59, 59, tzinfo=utc)) is Timeliness.BEFORE_DEADLINE
    assert timeliness(visit, dt.datetime(2025, 4, 20, 16, 0, 0, tzinfo=utc)) is Timeliness.AFTER_DEADLINE


@pytest.mark.parametrize(
    "visit_date, moment, accepted",
    [
        ("114/03/15", (2025, 4, 20, 23, 59, 59), True),
        ("114/03/16", (2025, 4, 21, 0, 0, 0), False),
        ("113/12/31", (2025, 1, 20, 23, 59, 59), True),  # December → January
        ("113/12/30", (2025, 1, 21, 0, 0, 0), False),
    ],
)
def test_c1_c3_entry_around_the_deadline(app, db, login_as, visit_date, moment, accepted):
    institution_id, practitioner_id = _setup(db, "facility_tpe")
    national_id = _new_id()
    client = login_as("facility_tpe")
    with _at(*moment):
        response = post_form(app, client, "/visitview/add", _form(institution_id, practitioner_id, national_id, visit_date))
    visits = _visits(db, national_id)
    if accepted:
        assert response.status_code == 302, visible_text(response.text)[-400:]
        assert len(visits) == 1 and visits[0].entered_by_id is not None
    else:
        assert response.status_code == 200 and visits == []
        text = visible_text(response.text)
        assert "登錄期限" in text and "附錄九" in text


def test_c1_practitioner_must_be_assigned_and_institution_contracted(app, db, login_as):
    institution_id, practitioner_id = _setup(db, "facility_tpe")
    client = login_as("facility_tpe")
    assignment = db.session.query(ServiceAssignment).filter_by(
        practitioner_id=practitioner_id, institution_id=institution_id).first()  # fmt: skip
    assignment.start_date = dt.date(2025, 3, 1)
    db.session.commit()
    national_id = _new_id()
    with _at(2025, 3, 2, 10, 0):
        response = post_form(app, client, "/visitview/add", _form(institution_id, practitioner_id, national_id, "114/02/28"))
    assert "未登記於本機構服務" in visible_text(response.text) and _visits(db, national_id) == []
    assignment.start_date = dt.date(2020, 1, 1)
    contract = db.session.query(ContractPeriod).filter_by(institution_id=institution_id).first()
    contract.start_date = dt.date(2025, 3, 1)
    db.session.commit()
    with _at(2025, 3, 2, 10, 0):
        response = post_form(app, client, "/visitview/add", _form(institution_id, practitioner_id, national_id, "114/02/28"))
    assert "未具特約資格" in visible_text(response.text) and _visits(db, national_id) == []
    contract.start_date = dt.date(2010, 1, 1)
    db.session.commit()


def test_a_visit_needs_a_service_and_cannot_be_in_the_future(app, db, login_as):
    institution_id, practitioner_id = _setup(db, "facility_tpe")
    client = login_as("facility_tpe")
    national_id = _new_id()
    with _at(2025, 5, 10, 9, 0):
        none = post_form(app, client, "/visitview/add", _form(
            institution_id, practitioner_id, national_id, "114/05/09", medication_name="", medication_days=""))  # fmt: skip
        future = post_form(app, client, "/visitview/add", _form(institution_id, practitioner_id, national_id, "114/05/11"))
    assert "至少有用藥或衛教" in visible_text(none.text)
    assert "不可晚於今日" in visible_text(future.text)
    assert _visits(db, national_id) == []


def test_c2_the_institution_corrects_and_deletes_its_own_visits_until_the_deadline(app, db, login_as):
    institution_id, practitioner_id = _setup(db, "facility_tpe")
    client = login_as("facility_tpe")
    national_id = _new_id()
    with _at(2025, 6, 3, 9, 0):
        post_form(app, client, "/visitview/add", _form(institution_id, practitioner_id, national_id, "114/06/02"))
        (visit,) = _visits(db, national_id)
        response = post_form(app, client, f"/visitview/edit/{visit.id}", {
            "practitioner": str(practitioner_id), "visit_date": "114/06/01", "medication_name": "Nicotine patch",
            "medication_days": "28", "education_minutes": "30"})  # fmt: skip
        assert response.status_code == 302
        (visit,) = _visits(db, national_id)
        assert visit.visit_date == dt.date(2025, 6, 1) and visit.education_minutes == 30
    with _at(2025, 7, 20, 23, 59, 0):
        post_form(app, client, f"/visitview/delete/{visit.id}", {})
    assert _visits(db, national_id) == []


def test_c3_after_the_deadline_no_one_edits_or_deletes_the_record(app, db, login_as):
    institution_id, practitioner_id = _setup(db, "facility_tpe")
    client = login_as("facility_tpe")
    national_id = _new_id()
    with _at(2025, 6, 3, 9, 0):
        post_form(app, client, "/visitview/add", _form(institution_id, practitioner_id, national_id, "114/06/02"))
    (visit,) = _visits(db, national_id)
    with _at(2025, 7, 21, 0, 0, 0):
        edit = post_form(app, client, f"/visitview/edit/{visit.id}", {
            "practitioner": str(practitioner_id), "visit_date": "114/06/02", "medication_name": "X",
            "medication_days": "7", "education_minutes": ""}, follow_redirects=True)  # fmt: skip
        post_form(app, client, f"/visitview/delete/{visit.id}", {})
        admin = login_as("admin")
        post_form(app, admin, f"/visitview/delete/{visit.id}", {})
    (after,) = _visits(db, national_id)
    assert after.medication_days == 14 and after.visit_date == dt.date(2025, 6, 2)
    assert "附錄九" in visible_text(edit.text)


def test_c4_five_day_rule_names_the_conflicting_visit(app, db, login_as):
    institution_id, practitioner_id = _setup(db, "facility_tpe")
    client = login_as("facility_tpe")
    national_id = _new_id()
    with _at(2025, 4, 10, 9, 0):
        assert post_form(app, client, "/visitview/add", _form(institution_id, practitioner_id, national_id, "114/04/01")).status_code == 302
        refused = post_form(app, client, "/visitview/add", _form(institution_id, practitioner_id, national_id, "114/04/05"))
        assert "114/04/01" in visible_text(refused.text) and "5 日" in visible_text(refused.text)
        institution = db.session.get(Institution, institution_id)
        assert institution.name in visible_text(refused.text)  # its own institution: named
        assert post_form(app, client, "/visitview/add", _form(institution_id, practitioner_id, national_id, "114/04/06")).status_code == 302
    assert [v.visit_date for v in _visits(db, national_id)] == [dt.date(2025, 4, 1), dt.date(2025, 4, 6)]


def test_c4_across_institutions_the_other_one_is_not_named(app, db, login_as):
    """C4 across institutions (issue 12, class 1): the refusal says the quitter was seen at
    another institution within 5 days, and names neither that institution nor its date, so
    repeated tries cannot map a stranger's visit calendar."""
    tpe_inst, tpe_prac = _setup(db, "facility_tpe")
    khh_inst, khh_prac = _setup(db, "facility_khh")
    national_id = _new_id()
    with _at(2025, 4, 10, 9, 0):
        khh = login_as("facility_khh")
        assert post_form(app, khh, "/visitview/add", _form(khh_inst, khh_prac, national_id, "114/04/03")).status_code == 302
        tpe = login_as("facility_tpe")
        refused = post_form(app, tpe, "/visitview/add", _form(tpe_inst, tpe_prac, national_id, "114/04/06"))
    text = visible_text(refused.text)
    assert "其他機構" in text and "5 日" in text
    assert "114/04/03" not in text and "04/03" not in text
    assert db.session.get(Institution, khh_inst).name not in text
    assert len(_visits(db, national_id)) == 1


def _api_quitter(db, client, headers, national_id, name, sex, birth_date):
    """Register a quitter the way an integrator does: POST /api/v1/quitter/ (links it)."""
    response = client.post("/api/v1/quitter/", headers=headers, json={
        "national_id": national_id, "name": name, "sex": sex, "birth_date": birth_date})  # fmt: skip
    assert response.status_code == 201, response.text
    return db.session.get(Quitter, response.json["id"])


def test_c4_holds_under_concurrent_entry(app, db, api_as):
    """Two API requests at once for the same quitter: exactly one gets through."""
    institution_id, practitioner_id = _setup(db, "facility_tpe")
    client, headers = api_as("facility_tpe")
    quitter = _api_quitter(db, client, headers, _new_id(), "蔡淑芬", "F", "1970-01-01")
    barrier = threading.Barrier(2)
    results = []

    def enter(day):
        with app.app_context():
            barrier.wait()
            response = app.test_client().post("/api/v1/visit/", headers=headers, json={
                "institution": institution_id, "practitioner": practitioner_id, "quitter": quitter.id,
                "visit_date": f"2025-04-0{day}", "medication_name": "Varenicline", "medication_days": 7})  # fmt: skip
            results.append(response.status_code)

    with _at(2025, 4, 10, 9, 0):
        threads = [threading.Thread(target=enter, args=(day,)) for day in (1, 3)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert sorted(results) == [201, 422], results
    db.session.expire_all()
    assert db.session.query(Visit).filter_by(quitter_id=quitter.id).count() == 1


def test_api_applies_the_same_rules(app, db, api_as):
    institution_id, practitioner_id = _setup(db, "facility_tpe")
    client, headers = api_as("facility_tpe")
    quitter = _api_quitter(db, client, headers, _new_id(), "謝家豪", "M", "1980-01-01")
    body = {"institution": institution_id, "practitioner": practitioner_id, "quitter": quitter.id,
            "visit_date": "2025-02-10", "education_minutes": 20}  # fmt: skip
    with _at(2025, 3, 21, 0, 0, 1):
        late = client.post("/api/v1/visit/", headers=headers, json=body)
    assert late.status_code == 422 and "附錄九" in str(late.json)
    with _at(2025, 3, 20, 12, 0):
        ok = client.post("/api/v1/visit/", headers=headers, json=body)
    assert ok.status_code == 201, ok.text
    foreign = min(i.id for i in db.session.query(Institution) if i.id != institution_id)
    with _at(2025, 3, 20, 12, 0):
        other = client.post("/api/v1/visit/", headers=headers, json={**body, "institution": foreign,
                                                                      "visit_date": "2025-03-01"})  # fmt: skip
    assert other.status_code in (403, 422)
