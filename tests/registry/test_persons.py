"""Persons shared across institutions (issue 12, classes 1, 3 and 4; C4's message).

A person is national, scope is per institution: an institution sees a person because it
serves them (models/registry/person.py PersonLink), found by national ID *and* identity data
(domain/registry/persons.py), never because it knows an internal id; no answer says whether an ID is
registered outside the caller's scope; identity data belong to the office.
"""

from __future__ import annotations

import datetime as dt
import io

from openpyxl import load_workbook

from core import clock
from models.cessation.visit import Quitter, Visit
from models.registry.institution import Institution
from models.registry.person import PersonLink
from models.registry.practitioner import Practitioner, ServiceAssignment
from tests.conftest import csrf_token, post_form, visible_text
from tests.factories import _form, _new_id, _setup
from tests.scope_oracle import expected_split, user_view


def _at(*args):
    return clock.frozen(dt.datetime(*args, tzinfo=dt.UTC))


def _khh_only_quitter(db):
    """A quitter facility_tpe cannot see: linked only to 高雄市 institutions."""
    user = user_view(db, "facility_tpe")
    _, hidden = expected_split(db, Quitter, user)
    return db.session.get(Quitter, min(hidden))


def _links(db, kind, person_id) -> set[int]:
    return {
        row.institution_id
        for row in db.session.query(PersonLink).filter_by(person_kind=kind, person_id=person_id)
    }


def test_class1_a_visit_posted_with_a_foreign_quitter_id_grants_no_sight(app, db, api_as):
    """Class 1: POST /api/v1/visit/ naming another institution's quitter by id is refused
    exactly like an id that does not exist, and the quitter stays invisible (404), unchanged."""
    institution_id, practitioner_id = _setup(db, "facility_tpe")
    foreign = _khh_only_quitter(db)
    name, national_id = foreign.name, foreign.national_id
    missing = db.session.query(Quitter.id).order_by(Quitter.id.desc()).first()[0] + 10_000
    client, headers = api_as("facility_tpe")
    body = {"institution": institution_id, "practitioner": practitioner_id,
            "visit_date": "2025-03-10", "medication_days": 7}  # fmt: skip
    visits_before = db.session.query(Visit).count()
    with _at(2025, 3, 12, 9, 0):
        hidden = client.post("/api/v1/visit/", headers=headers, json={**body, "quitter": foreign.id})
        absent = client.post("/api/v1/visit/", headers=headers, json={**body, "quitter": missing})
    assert hidden.status_code == absent.status_code == 422
    assert hidden.json == absent.json  # word for word: nothing tells the two apart
    assert client.get(f"/api/v1/quitter/{foreign.id}", headers=headers).status_code == 404
    rename = client.put(f"/api/v1/quitter/{foreign.id}", headers=headers, json={"name": "改名者"})
    assert rename.status_code in (403, 404)
    db.session.expire_all()
    assert db.session.query(Visit).count() == visits_before
    again = db.session.get(Quitter, foreign.id)
    assert (again.name, again.national_id) == (name, national_id)
    assert min(user_view(db, "facility_tpe").institution_ids) not in _links(db, "quitter", foreign.id)


def test_class1_a_form_write_cannot_point_at_a_hidden_practitioner(app, db, login_as):
    """Class 1 on the form path: a hidden practitioner's id is not a valid choice, like a
    non-existent one, and nothing is written."""
    institution_id, _ = _setup(db, "facility_tpe")
    user = user_view(db, "facility_tpe")
    _, hidden = expected_split(db, Practitioner, user)
    client = login_as("facility_tpe")
    before = db.session.query(Visit).count()
    with _at(2025, 3, 12, 9, 0):
        response = post_form(app, client, "/visitview/add",
                             _form(institution_id, min(hidden), _new_id("P"), "114/03/10"))  # fmt: skip
    assert response.status_code == 200  # the form again, with the field's message
    assert db.session.query(Visit).count() == before


def test_class3_registering_an_id_answers_alike_whether_or_not_it_exists(app, db, api_as):
    """Class 3: POST /api/v1/quitter/ answers 201 and the same keys for a new ID, for a
    registered ID with other identity data, and for a registered ID with matching data; the
    caller then sees only what it typed (or, on a match, what it already knew)."""
    client, headers = api_as("facility_tpe")
    foreign = _khh_only_quitter(db)
    stored = (foreign.name, foreign.sex, foreign.birth_date)
    new_id = _new_id("N")
    answers = {
        "new": client.post("/api/v1/quitter/", headers=headers, json={
            "national_id": new_id, "name": "新登記", "sex": "F", "birth_date": "1990-02-02"}),
        "other data": client.post("/api/v1/quitter/", headers=headers, json={
            "national_id": foreign.national_id, "name": "猜名字", "sex": "F", "birth_date": "1990-02-02"}),
        "matching": client.post("/api/v1/quitter/", headers=headers, json={
            "national_id": foreign.national_id, "name": foreign.name, "sex": foreign.sex,
            "birth_date": foreign.birth_date.isoformat()}),
    }  # fmt: skip
    assert {k: r.status_code for k, r in answers.items()} == dict.fromkeys(answers, 201)
    assert len({tuple(sorted(r.json)) for r in answers.values()}) == 1
    assert len({tuple(sorted(r.json["result"])) for r in answers.values()}) == 1
    guessed = client.get(f"/api/v1/quitter/{answers['other data'].json['id']}", headers=headers)
    assert guessed.status_code == 200 and guessed.json["result"]["name"] == "猜名字"
    assert answers["other data"].json["id"] != foreign.id
    assert answers["matching"].json["id"] == foreign.id  # knew ID, name, sex and birth date
    db.session.expire_all()
    assert (foreign.name, foreign.sex, foreign.birth_date) == stored
    conflict = db.session.get(Quitter, answers["other data"].json["id"])
    assert conflict.identity_status == "conflict"
    # The office sees both rows of the ID, the conflict marked, to reconcile them.
    for key in ("new", "other data"):
        db.session.delete(db.session.get(Quitter, answers[key].json["id"]))
    db.session.query(PersonLink).filter_by(
        person_kind="quitter", person_id=foreign.id,
        institution_id=min(user_view(db, "facility_tpe").institution_ids),
    ).delete()  # fmt: skip
    db.session.commit()


def _registered_in_khh(app, db, login_as, letter, khh_date):
    """A new ID whose first visit 高雄市's facility enters (under the name 吳宗翰); returns
    (national ID, facility_tpe's institution and practitioner, facility_tpe's client)."""
    institution_id, practitioner_id = _setup(db, "facility_tpe")
    khh_inst, khh_prac = _setup(db, "facility_khh")
    national_id = _new_id(letter)
    khh = login_as("facility_khh")
    assert post_form(app, khh, "/visitview/add",
                     _form(khh_inst, khh_prac, national_id, khh_date)).status_code == 302  # fmt: skip
    return national_id, institution_id, practitioner_id, login_as("facility_tpe")


def test_class3_visit_form_with_a_registered_id_and_another_name_says_nothing(app, db, login_as):
    """Class 3: the visit form no longer answers "the name does not match the registered
    one"; the visit is saved against the institution's own row and C4 still spans the ID."""
    with _at(2025, 4, 20, 9, 0):
        national_id, institution_id, practitioner_id, tpe = _registered_in_khh(
            app, db, login_as, "M", "114/04/01")
        saved = post_form(app, tpe, "/visitview/add", _form(
            institution_id, practitioner_id, national_id, "114/04/10", quitter_name="王大明"))
        assert saved.status_code == 302, visible_text(saved.text)[-300:]
        close = post_form(app, tpe, "/visitview/add", _form(
            institution_id, practitioner_id, national_id, "114/04/03", quitter_name="王大明"))
    text = visible_text(close.text)
    # C4 spans both rows of the ID, and names no date or institution of 高雄市's visit.
    assert "其他機構" in text and "114/04/01" not in text
    rows = db.session.query(Quitter).filter_by(national_id=national_id).order_by(Quitter.id).all()
    assert [(r.name, r.identity_status) for r in rows] == [("吳宗翰", "verified"), ("王大明", "conflict")]
    tpe_visit = db.session.query(Visit).filter_by(institution_id=institution_id, quitter_id=rows[1].id).one()
    assert tpe_visit.visit_date == dt.date(2025, 4, 10)
    page = tpe.get(f"/quitterview/show/{rows[1].id}")
    assert "王大明" in page.text and "吳宗翰" not in page.text
    assert tpe.get(f"/quitterview/show/{rows[0].id}").status_code == 404


def test_class3_batch_practitioner_messages_tell_nothing_of_other_institutions(app, db, login_as):
    """Class 3: a batch row naming a practitioner who serves only elsewhere gets the same
    message as one naming an ID nobody holds."""
    from tests.cessation.test_batch_upload import _template, _upload, _xlsx

    institution_id, _ = _setup(db, "facility_tpe")
    code = db.session.get(Institution, institution_id).nhi_code
    user = user_view(db, "facility_tpe")
    _, hidden = expected_split(db, Practitioner, user)
    elsewhere = db.session.get(Practitioner, min(hidden)).national_id
    rows = [[code, practitioner, _new_id("B"), "陳小華", "F", "69/01/01", "114/03/03",
             "Varenicline", 7, None] for practitioner in (elsewhere, _new_id("Z"))]  # fmt: skip
    client = login_as("facility_tpe")
    with _at(2025, 3, 5, 9, 0):
        response = _upload(app, client, _xlsx(_template(client), rows))
    report = client.get(response.text.split('id="error-report" href="', 1)[1].split('"', 1)[0])
    marked = list(load_workbook(io.BytesIO(report.data)).worksheets[0].iter_rows(values_only=True))
    messages = [row[-1] for row in marked[1:]]
    assert len(messages) == 2 and messages[0] == messages[1] and messages[0]


def test_class4_identity_data_are_the_offices_to_change(app, db, login_as, api_as):
    """Class 4: a facility can no longer rewrite a shared person's identity data (form and
    API); the office, which owns them, can."""
    user = user_view(db, "facility_tpe")
    visible, _ = expected_split(db, Practitioner, user)
    practitioner = db.session.get(Practitioner, min(visible))
    name = practitioner.name
    client = login_as("facility_tpe")
    token = csrf_token(app, client)
    client.post(f"/practitionerview/edit/{practitioner.id}", data={
        "csrf_token": token, "national_id": practitioner.national_id, "name": "改名",
        "profession": practitioner.profession})  # fmt: skip
    api, headers = api_as("facility_tpe")
    put = api.put(f"/api/v1/practitioner/{practitioner.id}", headers=headers, json={"name": "改名"})
    assert put.status_code in (401, 403)
    db.session.expire_all()
    assert db.session.get(Practitioner, practitioner.id).name == name
    office = login_as("office")
    office.post(f"/practitionerview/edit/{practitioner.id}", data={
        "csrf_token": csrf_token(app, office), "national_id": practitioner.national_id,
        "name": name + "（更正）", "profession": practitioner.profession,
        "licence_number": practitioner.licence_number or ""})  # fmt: skip
    db.session.expire_all()
    changed = db.session.get(Practitioner, practitioner.id)
    assert changed.name == name + "（更正）"
    changed.name = name
    db.session.commit()


def test_practitioner_of_another_institution_is_linked_by_id_and_name(app, db, login_as):
    """Adding a practitioner who already serves elsewhere, with the same name, adds an
    assignment to the one national row (no duplicate, no 'already exists' answer)."""
    user = user_view(db, "facility_tpe")
    _, hidden = expected_split(db, Practitioner, user)
    other = db.session.get(Practitioner, min(hidden))
    institution_id = min(user.institution_ids)
    client = login_as("facility_tpe")
    before = db.session.query(Practitioner).count()
    response = post_form(app, client, "/practitionerview/add", {
        "national_id": other.national_id, "name": other.name, "profession": other.profession,
        "licence_number": "", "institution": str(institution_id), "start_date": "114/01/02"})  # fmt: skip
    assert response.status_code == 302, visible_text(response.text)[-300:]
    db.session.expire_all()
    assert db.session.query(Practitioner).count() == before
    assignment = db.session.query(ServiceAssignment).filter_by(
        practitioner_id=other.id, institution_id=institution_id).one()  # fmt: skip
    assert institution_id in _links(db, "practitioner", other.id)
    assert client.get(f"/practitionerview/show/{other.id}").status_code == 200
    db.session.delete(assignment)
    db.session.query(PersonLink).filter_by(
        person_kind="practitioner", person_id=other.id, institution_id=institution_id).delete()  # fmt: skip
    db.session.commit()


def test_class1_deleting_the_visit_leaves_the_trace(app, db, login_as):
    """Class 1: deleting a visit does not erase that the institution served the person (the
    link stays, so does the audit trail)."""
    institution_id, practitioner_id = _setup(db, "facility_tpe")
    national_id = _new_id("D")
    client = login_as("facility_tpe")
    with _at(2025, 5, 2, 9, 0):
        assert post_form(app, client, "/visitview/add",
                         _form(institution_id, practitioner_id, national_id, "114/05/01")).status_code == 302  # fmt: skip
        quitter = db.session.query(Quitter).filter_by(national_id=national_id).one()
        visit = db.session.query(Visit).filter_by(quitter_id=quitter.id).one()
        response = client.post(f"/visitview/delete/{visit.id}", data={"csrf_token": csrf_token(app, client)})
        assert response.status_code == 302
    db.session.expire_all()
    assert db.session.query(Visit).filter_by(quitter_id=quitter.id).count() == 0
    assert institution_id in _links(db, "quitter", quitter.id)


def test_office_reconciles_a_conflict_row_by_merging_it(app, db, login_as, api_as):
    """Identity conflicts (issue 12): the office lists registrations whose identity data differ
    from the national record, and merges one: its visits move to the national record, the
    facility keeps seeing the person (its link moves too), the conflict row is gone. Nobody
    else can open the list."""
    with _at(2025, 6, 20, 9, 0):
        national_id, institution_id, practitioner_id, tpe = _registered_in_khh(
            app, db, login_as, "G", "114/06/01")
        assert post_form(app, tpe, "/visitview/add", _form(
            institution_id, practitioner_id, national_id, "114/06/10", quitter_name="吳宗瀚")).status_code == 302
    verified, conflict = db.session.query(Quitter).filter_by(national_id=national_id).order_by(Quitter.id).all()
    for username in ("facility_tpe", "bureau_tpe", "helpdesk", "ministry"):
        assert login_as(username).get(f"/quitteridentityview/show/{conflict.id}").status_code in (302, 403, 404)
    office = login_as("office")
    listed = office.get("/quitteridentityview/list/?psize_QuitterIdentityView=500")
    assert listed.status_code == 200 and f"/quitteridentityview/show/{conflict.id}" in listed.text
    assert f"/quitteridentityview/show/{verified.id}" not in listed.text
    assert "吳宗翰" in office.get(f"/quitteridentityview/show/{conflict.id}").text  # the national record beside it
    response = office.post(f"/quitteridentityview/action/merge/{conflict.id}",
                           data={"csrf_token": csrf_token(app, office)})  # fmt: skip
    assert response.status_code == 302
    page = visible_text(office.get(response.headers["Location"]).text)
    assert "已併入全國資料" in page
    db.session.expire_all()
    assert db.session.get(Quitter, conflict.id) is None
    assert db.session.query(Visit).filter_by(quitter_id=verified.id).count() == 2
    assert institution_id in _links(db, "quitter", verified.id)
    assert tpe.get(f"/quitterview/show/{verified.id}").status_code == 200


def test_practitioner_registered_with_another_name_is_kept_apart_then_merged(app, db, login_as):
    """Class 3 for practitioners: adding an ID that serves elsewhere under another name saves
    a row of its own (no "already exists" answer); the office merges it, and the assignment
    moves to the national record."""
    user = user_view(db, "facility_tpe")
    _, hidden = expected_split(db, Practitioner, user)
    other = db.session.get(Practitioner, max(hidden))
    institution_id = min(user.institution_ids)
    client = login_as("facility_tpe")
    response = post_form(app, client, "/practitionerview/add", {
        "national_id": other.national_id, "name": "別的名字", "profession": "nurse",
        "licence_number": "", "institution": str(institution_id), "start_date": "114/01/02"})  # fmt: skip
    assert response.status_code == 302, visible_text(response.text)[-300:]
    conflict = db.session.query(Practitioner).filter_by(
        national_id=other.national_id, identity_status="conflict").one()  # fmt: skip
    assert client.get(f"/practitionerview/show/{conflict.id}").status_code == 200
    assert client.get(f"/practitionerview/show/{other.id}").status_code == 404
    office = login_as("office")
    assert other.name in office.get(f"/practitioneridentityview/show/{conflict.id}").text
    office.post(f"/practitioneridentityview/action/merge/{conflict.id}",
                data={"csrf_token": csrf_token(app, office)})  # fmt: skip
    db.session.expire_all()
    assert db.session.get(Practitioner, conflict.id) is None
    moved = db.session.query(ServiceAssignment).filter_by(
        practitioner_id=other.id, institution_id=institution_id).one()  # fmt: skip
    db.session.delete(moved)
    db.session.query(PersonLink).filter_by(
        person_kind="practitioner", person_id=other.id, institution_id=institution_id).delete()  # fmt: skip
    db.session.commit()
