"""The addiction side as clinicians meet it (issue 14's journeys): the record form keeps what
was typed when the kind changes, a record without a course picks the case's open course, the
course history names the staff member, a patient's ID follows the viewer (full for staff
allowed full IDs, masked for everyone else), and /course/<id>/records leads to the course page.

Fixtures of their own (two institutions, staff with licences, a case with courses at each)."""

from __future__ import annotations

import datetime as dt
import itertools
import re

import pytest

from models.addiction.case import Case, Patient
from models.addiction.course import Course
from models.addiction.record import TreatmentRecord
from models.addiction.staff import StaffLicence
from models.registry.institution import Institution
from models.registry.practitioner import Practitioner, ServiceAssignment
from models.registry.reference import County, InstitutionLevel
from tests.conftest import PASSWORD, post_form
from tests.factories import _new_id

_serial = itertools.count(1)
NO_IDS_ROLE = "UxTreatmentNoIds"


def _institution(db, county_code: str) -> Institution:
    county = db.session.query(County).filter_by(code=county_code).one()
    level = db.session.query(InstitutionLevel).order_by(InstitutionLevel.sort_order).first()
    inst = Institution(nhi_code=f"97{next(_serial):08d}", name=f"體驗測試醫院{next(_serial)}",
                       level_id=level.id, county_id=county.id)  # fmt: skip
    db.session.add(inst)
    db.session.flush()
    return inst


def _staff(db, inst, name, profession) -> Practitioner:
    person = Practitioner(national_id=_new_id("A"), name=name, profession=profession)
    db.session.add(person)
    db.session.flush()
    db.session.add(ServiceAssignment(practitioner_id=person.id, institution_id=inst.id, start_date=dt.date(2020, 1, 1)))
    db.session.add(StaffLicence(practitioner_id=person.id, profession=profession,
                                licence_number=f"U{next(_serial)}", start_date=dt.date(2020, 1, 1)))  # fmt: skip
    return person


def _case(db, inst, name) -> Case:
    patient = Patient(id_kind="national_id", national_id=_new_id("C"), name=name, sex="F",
                      birth_date=dt.date(1988, 3, 1))  # fmt: skip
    db.session.add(patient)
    db.session.flush()
    case = Case(patient_id=patient.id, institution_id=inst.id, opened_on=dt.date(2024, 1, 2),
                substance_category="alcohol", referral_source="self", eligibility="general", status="open")  # fmt: skip
    db.session.add(case)
    db.session.flush()
    return case


def _course(db, case, start, end, status="active") -> Course:
    course = Course(case_id=case.id, institution_id=case.institution_id, start_date=start, end_date=end, status=status)
    db.session.add(course)
    db.session.flush()
    return course


def _user(app, db, username, inst, practitioner, role_name):
    from core.security.passwords import demo_passwords_allowed
    from models.platform.user import ScopedUser

    sm = app.appbuilder.sm
    with demo_passwords_allowed():
        user = sm.add_user(username, "體驗", "測試", f"{username}@demo.invalid", [sm.find_role(role_name)], PASSWORD)
    user = db.session.get(ScopedUser, user.id)
    user.scope_kind, user.scope_institutions, user.practitioner_id = "facility", [inst], practitioner.id
    db.session.commit()


def _no_ids_role(app, db):
    """The treatment role's permissions without reading personal IDs in full."""
    from core.security.permissions import PERSONAL_ID
    from core.security.roles import TREATMENT

    sm = app.appbuilder.sm
    role = sm.find_role(NO_IDS_ROLE) or sm.add_role(NO_IDS_ROLE)
    role.permissions = [p for p in sm.find_role(TREATMENT).permissions if p.view_menu.name != PERSONAL_ID]
    db.session.commit()
    return role


@pytest.fixture(scope="module")
def ux(app):
    """Institution A (臺北市) with a psychologist and a nurse, a case with an old completed
    course and two open ones; institution B (高雄市) with its own case."""
    from core.extensions import db
    from core.security.roles import TREATMENT

    with app.app_context():
        a, b = _institution(db, "TPE"), _institution(db, "KHH")
        psy, nurse = _staff(db, a, "吳心理", "psychologist"), _staff(db, a, "周護理", "nurse")
        b_psy = _staff(db, b, "蔡高雄", "psychologist")
        case = _case(db, a, "鄭體驗")
        old = _course(db, case, dt.date(2023, 1, 1), dt.date(2023, 12, 31), status="completed")
        first = _course(db, case, dt.date(2024, 1, 2), dt.date(2025, 1, 1))
        second = _course(db, case, dt.date(2025, 1, 2), dt.date(2026, 1, 1))
        b_case = _case(db, b, "鄭高雄")
        b_course = _course(db, b_case, dt.date(2024, 1, 2), dt.date(2025, 1, 1))
        db.session.add(TreatmentRecord(
            course_id=first.id, case_id=case.id, institution_id=a.id, executed_on=dt.date(2024, 3, 1),
            author_id=psy.id, profession="psychologist", kind="individual_psychotherapy", minutes=50,
            content={"topic": "初談", "interventions": "動機式晤談"},
        ))  # fmt: skip
        ids = {
            "a": a.id, "psy": psy.id, "nurse": nurse.id, "case": case.id, "old": old.id, "first": first.id,
            "second": second.id, "b_case": b_case.id, "b_course": b_course.id,
            "national_id": case.patient.national_id,
        }  # fmt: skip
        db.session.commit()
        _no_ids_role(app, db)
        _user(app, db, "ux_psy", db.session.get(Institution, a.id), db.session.get(Practitioner, psy.id), TREATMENT)
        _user(app, db, "ux_noids", db.session.get(Institution, a.id), db.session.get(Practitioner, nurse.id), NO_IDS_ROLE)
        _user(app, db, "ux_psy_b", db.session.get(Institution, b.id), db.session.get(Practitioner, b_psy.id), TREATMENT)
        db.session.remove()
    yield ids
    with app.app_context():
        from models.platform.user import ScopedUser

        for name in ("ux_psy", "ux_noids", "ux_psy_b"):
            user = db.session.query(ScopedUser).filter_by(username=name).one_or_none()
            if user is not None:
                user.roles = []
        db.session.commit()
        role = app.appbuilder.sm.find_role(NO_IDS_ROLE)
        if role is not None:
            role.permissions = []
            db.session.delete(role)
            db.session.commit()
        db.session.remove()


def _records(db, course_id=None) -> int:
    db.session.expire_all()
    query = db.session.query(TreatmentRecord)
    return (query.filter_by(course_id=course_id) if course_id else query).count()


def _psychotherapy(ux, **changes) -> dict:
    data = {"course": str(ux["second"]), "kind": "individual_psychotherapy", "executed_on": "114/03/02",
            "author": str(ux["psy"]), "minutes": "50", "mode": "structured",
            "c_topic": "渴求因應", "c_interventions": "認知行為治療"}  # fmt: skip
    data.update(changes)
    return data


def _shown(html: str, name: str) -> bool:
    """Whether the record form shows the content field `name` (not rendered hidden)."""
    match = re.search(rf'<div class="kind-field" data-field="{name}"( hidden)?>', html)
    assert match, f"{name} not on the form"
    return match.group(1) is None


# ----------------------------------------------------------------- the kind picker (item 1)


def test_a5_the_record_form_holds_every_kind_and_shows_the_chosen_ones_fields(ux, login_as):
    """A5: the kind picker is part of the form: every kind's fields are there, only the
    chosen kind's shown, so changing the kind on the page reloads nothing."""
    html = login_as("ux_psy").get(f"/treatmentrecord/add?course={ux['second']}&kind=nursing_education").text
    assert 'id="pick-kind"' in html and 'form method="get"' not in html
    assert _shown(html, "c_topic") and _shown(html, "c_education")
    assert not _shown(html, "c_interventions") and not _shown(html, "c_assessment")


def test_a5_changing_the_kind_without_javascript_keeps_every_typed_field(app, ux, db, login_as):
    """A5: the no-JavaScript kind change posts the form and gets it back with everything typed
    (the fields the new kind shares, and those it hides), and saves nothing."""
    client = login_as("ux_psy")
    before = _records(db)
    data = _psychotherapy(ux, kind="nursing_education", switch="1", c_response="專注", c_plan="下週追蹤")
    html = post_form(app, client, "/treatmentrecord/add", data).text
    assert _records(db) == before
    for typed in ("114/03/02", "渴求因應", "認知行為治療", "專注", "下週追蹤", 'value="50"'):
        assert typed in html, typed
    assert _shown(html, "c_education") and not _shown(html, "c_interventions")
    assert 'value="nursing_education" selected' in html


def test_a5_fields_of_another_kind_never_block_or_enter_a_save(app, ux, db, login_as):
    """A5: what was typed under another kind (hidden) is neither validated nor stored: a
    garbled lab sample date under a psychotherapy record does not stop it."""
    client = login_as("ux_psy")
    data = _psychotherapy(ux, c_education="不屬於此類別", c_assessment="也不屬於", **{"lab-0-sampled_on": "abc"})
    response = post_form(app, client, "/treatmentrecord/add", data)
    assert response.status_code == 302, response.text
    record = db.session.get(TreatmentRecord, int(response.headers["Location"].rsplit("/", 1)[1]))
    assert record.content == {"topic": "渴求因應", "interventions": "認知行為治療"}


def test_a5_a_refused_record_comes_back_with_the_kind_and_everything_typed(app, ux, db, login_as):
    """A5: a nursing record signed by a psychologist is refused in zh_TW; the form keeps the
    kind and every field; nothing is stored."""
    client = login_as("ux_psy")
    before = _records(db)
    data = _psychotherapy(ux, kind="nursing_education", c_education="用藥衛教內容")
    html = post_form(app, client, "/treatmentrecord/add", data).text
    assert _records(db) == before
    assert "護理師" in html and "用藥衛教內容" in html and 'value="nursing_education" selected' in html


# ------------------------------------------------------- a record without a course (item 3)


def test_a5_a_record_without_a_course_starts_with_a_case_lookup_not_a_number(ux, login_as):
    """A5: /treatmentrecord/add without a course asks for the case by ID or name (no course
    number to type) and finds only the institution's own open cases."""
    client = login_as("ux_psy")
    html = client.get("/treatmentrecord/add").text
    assert 'id="record-case-lookup"' in html and 'name="course"' not in html
    found = client.get("/treatmentrecord/add", query_string={"q": "鄭"}).text
    assert f"case={ux['case']}" in found and f"case={ux['b_case']}" not in found
    assert f"case={ux['case']}" in client.get("/treatmentrecord/add", query_string={"q": ux["national_id"]}).text


def test_a5_the_case_form_offers_its_open_courses_and_defaults_to_the_one_holding_today(ux, login_as):
    """A5: ?case= offers the case's courses in progress (not the completed one), in a select."""
    html = login_as("ux_psy").get(f"/treatmentrecord/add?case={ux['case']}").text
    select = re.search(r'<select[^>]*name="course".*?</select>', html, re.S).group(0)
    assert f'value="{ux["first"]}"' in select and f'value="{ux["second"]}"' in select
    assert f'value="{ux["old"]}"' not in select


def test_a5_a_record_of_a_case_goes_to_the_open_course_holding_its_execution_date(app, ux, db, login_as):
    """A5: with the course left to the date, the record lands in the open course whose period
    holds its execution date (113/06/01 → the 2024 course)."""
    client = login_as("ux_psy")
    before = _records(db, ux["first"])
    data = _psychotherapy(ux, case=str(ux["case"]), course="", executed_on="113/06/01")
    response = post_form(app, client, "/treatmentrecord/add", data)
    assert response.status_code == 302, response.text
    assert _records(db, ux["first"]) == before + 1


def test_a5_a_date_in_no_open_course_is_refused_with_the_form_kept(app, ux, db, login_as):
    """A5: an execution date no open course holds (112/06/01: only the completed course)
    gets a zh_TW message, the form keeps what was typed, nothing is stored."""
    client = login_as("ux_psy")
    before = _records(db)
    html = post_form(app, client, "/treatmentrecord/add", _psychotherapy(
        ux, case=str(ux["case"]), course="", executed_on="112/06/01")).text  # fmt: skip
    assert _records(db) == before
    assert "療程" in html and "112/06/01" in html and "渴求因應" in html


@pytest.mark.parametrize("value", ["%", "１２", "9" * 40, "=1+1", "-1"])
def test_a5_another_institutions_case_or_a_hostile_case_is_not_found(app, ux, db, login_as, value):
    """A5: a case of another institution, or a value that is no case, answers 404 (never a
    500) by URL and by form, and stores nothing."""
    client = login_as("ux_psy")
    assert client.get(f"/treatmentrecord/add?case={ux['b_case']}").status_code == 404
    assert client.get("/treatmentrecord/add", query_string={"case": value}).status_code == 404
    before = _records(db)
    data = _psychotherapy(ux, case=str(ux["b_case"]), course=str(ux["b_course"]))
    assert post_form(app, client, "/treatmentrecord/add", data).status_code == 404
    assert _records(db) == before


@pytest.mark.parametrize("text", ["%", "_", "Ａ１２３", "x" * 5000, "=HYPERLINK(1)", "１２３"])
def test_a5_hostile_lookup_text_finds_nothing_and_never_fails(ux, login_as, text):
    """A5: lookup text with wildcards, full-width digits, formulas or 5,000 characters finds
    no case and answers 200 with the zh_TW 'nothing found'."""
    response = login_as("ux_psy").get("/treatmentrecord/add", query_string={"q": text})
    assert response.status_code == 200
    assert "pick-case" not in response.text


def test_a5_a_course_of_another_case_is_not_taken_from_the_case_form(app, ux, db, login_as):
    """A5: a course id that is not one of the case's open courses (its completed one) is not
    used: the date picks the open course, or the record is refused."""
    client = login_as("ux_psy")
    before = _records(db, ux["old"])
    data = _psychotherapy(ux, case=str(ux["case"]), course=str(ux["old"]), executed_on="113/07/01")
    post_form(app, client, "/treatmentrecord/add", data)
    assert _records(db, ux["old"]) == before


# ------------------------------------------------------------ the course history (item 2)


def test_a2_the_course_history_names_the_staff_member_and_profession(app, ux, db, login_as):
    """A2: the status history shows who changed it as 吳心理（心理師）, not the account name."""
    from domain.addiction.courses import StartCourse

    client = login_as("ux_psy")
    with app.test_request_context():
        from flask import g

        from models.platform.user import ScopedUser

        g.user = db.session.query(ScopedUser).filter_by(username="ux_psy").one()
        course = StartCourse(ux["case"], dt.date(2026, 1, 2), None).run()
    html = client.get(f"/course/{course.id}").text
    history = re.search(r'<table[^>]*id="course-history".*?</table>', html, re.S).group(0)
    assert "吳心理（心理師）" in history and "ux_psy" not in history


# ------------------------------------------------------ IDs follow the viewer (item 4)


def test_patient_ids_are_full_for_staff_allowed_full_ids(ux, db, login_as):
    """A patient shown as text (record page, record list, course form dropdown) carries the
    full ID for a viewer who holds the full-ID permission."""
    client = login_as("ux_psy")
    record = db.session.query(TreatmentRecord).filter_by(course_id=ux["first"]).first()
    assert record is not None
    full = ux["national_id"]
    assert full in client.get(f"/treatmentrecord/show/{record.id}").text
    assert full in client.get("/treatmentrecord/list/").text
    assert full in client.get("/course/add").text


def test_patient_ids_stay_masked_for_staff_without_the_permission(ux, db, login_as):
    """The same places show A12****789 to a viewer without the full-ID permission, and never
    the full ID."""
    from core.validators import mask_personal_id

    client = login_as("ux_noids")
    record = db.session.query(TreatmentRecord).filter_by(course_id=ux["first"]).first()
    full, masked = ux["national_id"], mask_personal_id(ux["national_id"])
    for url in (f"/treatmentrecord/show/{record.id}", f"/caseview/show/{ux['case']}",
                "/course/add", f"/treatmentrecord/add?case={ux['case']}"):  # fmt: skip
        html = client.get(url).text
        assert masked in html and full not in html, url


def test_patient_str_outside_a_request_is_masked(app, ux, db):
    """Outside a request (a background job, the shell) there is no viewer: the ID is masked."""
    from core.validators import mask_personal_id

    patient = db.session.get(Case, ux["case"]).patient
    assert str(patient) == f"鄭體驗（{mask_personal_id(ux['national_id'])}）"


# ------------------------------------------------------ the old records address (item 5)


def test_a2_the_old_course_records_address_leads_to_the_course_page(ux, login_as):
    """A2: /course/<id>/records, the old address of a course's records, redirects to the
    course page (its records section); another institution's course stays 404."""
    client = login_as("ux_psy")
    response = client.get(f"/course/{ux['first']}/records")
    assert response.status_code == 302
    assert response.headers["Location"].endswith(f"/course/{ux['first']}#course-records")
    assert client.get(f"/course/{ux['b_course']}/records").status_code == 404
    assert client.get("/course/%25/records").status_code == 404


def test_a_viewer_who_sees_ids_masked_finds_a_case_only_by_the_full_id(ux, login_as):
    """The lookup never recovers a masked ID digit by digit (FAB trap 11): for a viewer
    without the full-ID permission a prefix finds nothing, the full ID finds the case."""
    client = login_as("ux_noids")
    prefix = ux["national_id"][:6]
    assert f"case={ux['case']}" not in client.get("/treatmentrecord/add", query_string={"q": prefix}).text
    assert f"case={ux['case']}" in client.get("/treatmentrecord/add", query_string={"q": ux["national_id"]}).text
    assert f"case={ux['case']}" in login_as("ux_psy").get("/treatmentrecord/add", query_string={"q": prefix}).text


def test_the_record_list_names_the_author_as_a_colleague_and_the_case_by_its_opening(ux, db, login_as):
    """The record list shows the author by name (no masked ID of a colleague) and the case as
    its patient and opening date (not the viewer's own institution again)."""
    author_id = db.session.get(Practitioner, ux["psy"]).national_id
    html = login_as("ux_psy").get("/treatmentrecord/list/").text
    assert "吳心理" in html and author_id[:3] + "****" not in html
    assert "113/01/02 開案" in html and " @ " not in html
