"""Adding a practitioner who already serves at another institution (issue 15, item 5).

By national ID *and* name, both as the registry holds them; a match gives an assignment at
one of the user's own institutions; a mismatch or an unknown ID is refused alike in zh_TW
with the form kept; nothing of the other institution shows; scope holds by form and REST.
"""

from __future__ import annotations

import datetime as dt
import re

import pytest

from models.registry.institution import Institution
from models.registry.practitioner import Practitioner, Profession, ServiceAssignment
from tests.conftest import post_form, visible_text
from tests.factories import _new_id
from tests.scope_oracle import user_view

NO_MATCH = "查無身分證號與姓名皆相符"


def _elsewhere(db, name="跨院醫師"):
    """A practitioner registered at and serving only at a 高雄市 institution of facility_khh."""
    khh = db.session.get(Institution, min(user_view(db, "facility_khh").institution_ids))
    person = Practitioner(national_id=_new_id("P"), name=name, profession=Profession.PHYSICIAN.value,
                          identity_status="verified")  # fmt: skip
    person.assignments.append(ServiceAssignment(institution=khh, start_date=dt.date(2019, 1, 1)))
    db.session.add(person)
    db.session.commit()
    return person, khh


def _tpe(db):
    return min(user_view(db, "facility_tpe").institution_ids)


def _assignments(db, person_id, institution_id):
    db.session.expire_all()
    return db.session.query(ServiceAssignment).filter_by(
        practitioner_id=person_id, institution_id=institution_id).all()  # fmt: skip


def _form(person, institution_id, **changes):
    form = {"national_id": person.national_id, "name": person.name,
            "institution": str(institution_id), "start_date": "114/03/01", "end_date": ""}  # fmt: skip
    form.update(changes)
    return form


def test_join_form_offers_only_the_users_own_institutions(app, db, login_as):
    """The form's institution dropdown lists facility_tpe's institutions, never 高雄市's."""
    person, khh = _elsewhere(db)
    page = login_as("facility_tpe").get("/practitionerview/join")
    assert page.status_code == 200
    own = db.session.get(Institution, _tpe(db))
    assert own.name in page.text and khh.name not in page.text
    assert "身分證字號" in visible_text(page.text)


def test_list_offers_the_join_button_to_a_facility_only(app, login_as):
    """The practitioner list links to the join form for a role that may add practitioners."""
    assert 'id="join-practitioner"' in login_as("facility_tpe").get("/practitionerview/list/").text
    assert 'id="join-practitioner"' not in login_as("bureau_tpe").get("/practitionerview/list/").text


def test_matching_id_and_name_adds_an_assignment_and_shows_nothing_of_the_other_institution(
    app, db, login_as
):
    """ID + name match: an assignment at the user's own institution; the practitioner's page
    then shows it and nothing of the 高雄市 institution or its assignment."""
    person, khh = _elsewhere(db)
    client = login_as("facility_tpe")
    assert client.get(f"/practitionerview/show/{person.id}").status_code in (302, 404)
    # Typed with spaces and in lower case: the same ID and name.
    response = post_form(app, client, "/practitionerview/join",
                         _form(person, _tpe(db), national_id=f" {person.national_id.lower()} ",
                               name=f" {person.name} "))  # fmt: skip
    assert response.status_code == 302, visible_text(response.text)[-300:]
    assert f"/practitionerview/show/{person.id}" in response.headers["Location"]
    [assignment] = _assignments(db, person.id, _tpe(db))
    assert assignment.start_date == dt.date(2025, 3, 1) and assignment.end_date is None
    page = client.get(f"/practitionerview/show/{person.id}", follow_redirects=True)
    assert page.status_code == 200
    text = visible_text(page.text)
    assert person.name in text and "114/03/01" in text
    assert khh.name not in page.text and khh.nhi_code not in page.text
    assert "108/01/01" not in text  # the 高雄市 assignment's start date


def test_a_name_mismatch_and_an_unknown_id_are_refused_alike_keeping_the_form(app, db, login_as):
    """No 'exists elsewhere' oracle: the wrong name of a known ID and an ID nobody holds get
    the same zh_TW message, the typed values stay on the form, nothing is written."""
    person, _ = _elsewhere(db)
    client = login_as("facility_tpe")
    before = db.session.query(ServiceAssignment).count()
    wrong = post_form(app, client, "/practitionerview/join", _form(person, _tpe(db), name="別的名字"))
    unknown = post_form(app, client, "/practitionerview/join",
                        _form(person, _tpe(db), national_id=_new_id("P"), name="別的名字"))  # fmt: skip
    assert wrong.status_code == unknown.status_code == 200
    messages = [re.search(rf"{NO_MATCH}[^<]*", r.text).group(0) for r in (wrong, unknown)]
    assert messages[0] == messages[1]
    assert f'value="{person.national_id}"' in wrong.text and 'value="別的名字"' in wrong.text
    assert 'value="114/03/01"' in wrong.text
    db.session.expire_all()
    assert db.session.query(ServiceAssignment).count() == before


def test_scope_a_facility_cannot_add_to_another_institution_by_form_or_rest(app, db, login_as, api_as):
    """facility_tpe naming the 高雄市 institution: refused by form and by REST, nothing written."""
    person, khh = _elsewhere(db)
    client = login_as("facility_tpe")
    response = post_form(app, client, "/practitionerview/join", _form(person, khh.id))
    assert response.status_code == 200 and not _assignments(db, person.id, khh.id)[1:]
    assert "請選擇您所屬的機構" in visible_text(response.text) and khh.name not in response.text
    api, headers = api_as("facility_tpe")
    body = {"national_id": person.national_id, "name": person.name, "institution": khh.id,
            "start_date": "2025-03-01"}  # fmt: skip
    answer = api.post("/api/v1/practitioner/join", headers=headers, json=body)
    assert answer.status_code == 403
    assert "資料權限" in answer.json["message"]
    assert len(_assignments(db, person.id, khh.id)) == 1  # only the original one
    assert not _assignments(db, person.id, _tpe(db))


def test_rest_join_matches_by_id_and_name_and_refuses_a_mismatch_like_an_unknown_id(
    app, db, api_as
):
    """POST /api/v1/practitioner/join: 201 and the practitioner now readable; a wrong name
    and an unknown ID answer the same 422; a second join of the same period 409."""
    person, khh = _elsewhere(db)
    api, headers = api_as("facility_tpe")
    body = {"national_id": person.national_id, "name": person.name, "institution": _tpe(db),
            "start_date": "2025-03-01"}  # fmt: skip
    wrong = api.post("/api/v1/practitioner/join", headers=headers, json={**body, "name": "別的名字"})
    unknown = api.post("/api/v1/practitioner/join", headers=headers,
                       json={**body, "national_id": _new_id("P")})  # fmt: skip
    assert wrong.status_code == unknown.status_code == 422 and wrong.json == unknown.json
    assert NO_MATCH in wrong.json["message"]
    done = api.post("/api/v1/practitioner/join", headers=headers, json=body)
    assert done.status_code == 201, done.json
    shown = api.get(f"/api/v1/practitioner/{person.id}", headers=headers)
    assert shown.status_code == 200 and khh.name not in shown.text
    again = api.post("/api/v1/practitioner/join", headers=headers, json={**body, "start_date": "2025-06-01"})
    assert again.status_code == 409 and "114/03/01" in again.json["message"]
    assert khh.name not in again.json["message"]


def test_a_role_without_add_may_not_join(app, db, login_as, api_as):
    """The bureau reads practitioners but adds none: the form and the API refuse it."""
    person, _ = _elsewhere(db)
    response = login_as("bureau_tpe").get("/practitionerview/join")
    assert response.status_code in (302, 403)
    api, headers = api_as("bureau_tpe")
    answer = api.post("/api/v1/practitioner/join", headers=headers,
                      json={"national_id": person.national_id, "name": person.name,
                            "institution": _tpe(db), "start_date": "2025-03-01"})  # fmt: skip
    assert answer.status_code in (401, 403)


@pytest.mark.parametrize("value", ["Ａ１２３４５６７８９", "=1+1", "%", "x" * 5000, "' OR 1=1 --", ""])
def test_hostile_input_is_refused_in_zh_tw_and_changes_nothing(app, db, login_as, api_as, value):
    """Unicode digits, formulas, %, huge or empty input in any field: a zh_TW answer, no 500."""
    person, _ = _elsewhere(db)
    before = db.session.query(ServiceAssignment).count()
    client = login_as("facility_tpe")
    api, headers = api_as("facility_tpe")
    for field in ("national_id", "name", "start_date", "end_date", "institution"):
        response = post_form(app, client, "/practitionerview/join", _form(person, _tpe(db), **{field: value}))
        # No end date is an open assignment: the one join here that may succeed.
        open_ended = field == "end_date" and value == ""
        assert response.status_code == (302 if open_ended else 200), (field, response.status_code)
        body = {"national_id": person.national_id, "name": person.name, "institution": _tpe(db),
                "start_date": "2025-03-01", field: value}  # fmt: skip
        answer = api.post("/api/v1/practitioner/join", headers=headers, json=body)
        if open_ended:  # already joined by the form just before
            assert answer.status_code == 409, answer.json
            continue
        assert answer.status_code in (400, 403, 422), (field, answer.status_code, answer.json)
        assert re.search(r"[\u4e00-\u9fff]", str(answer.json["message"])), answer.json
    db.session.expire_all()
    assert db.session.query(ServiceAssignment).count() - before <= 1
    api.post("/api/v1/practitioner/join", headers=headers, json="not an object")
