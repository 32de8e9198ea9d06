"""Cases (issue 14 item 3) and courses (A2): rules, and out-of-scope writes refused."""

from __future__ import annotations

import datetime as dt

import pytest

from core.security.roles import TREATMENT
from models.addiction.case import Case, Patient
from models.addiction.course import Course, CourseTransition
from models.platform.user import ScopedUser, ScopeKind
from models.registry.institution import Institution
from tests.conftest import PASSWORD, post_form
from tests.factories import _new_id


@pytest.fixture(scope="module")
def treatment_users(app):
    """Two treatment users, each at an institution of their own."""
    from core.extensions import db
    from core.security.passwords import demo_passwords_allowed

    with app.app_context():
        sm = app.appbuilder.sm
        role = sm.find_role(TREATMENT)
        first, second = db.session.query(Institution).order_by(Institution.id).limit(2).all()
        names = {}
        for username, institution in (("treat_a", first), ("treat_b", second)):
            if sm.find_user(username=username) is None:
                with demo_passwords_allowed():
                    sm.add_user(username, "測試", "治療", f"{username}@demo.invalid", [role], PASSWORD)
            user = db.session.query(ScopedUser).filter_by(username=username).one()
            user.scope_kind, user.scope_institutions = ScopeKind.FACILITY, [institution]
            names[username] = institution.id
        db.session.commit()
        return names


def _case_form(institution_id, national_id, **extra):
    data = {
        "institution": str(institution_id), "patient_id_kind": "national_id",
        "patient_national_id": national_id, "patient_name": "陳建宏", "patient_sex": "M",
        "patient_birth_date": "70/03/15", "opened_on": "113/02/01",
        "substance_category": "drug", "substances": "甲基安非他命",
        "referral_source": "deferred_prosecution", "eligibility": "general", "note": "",
    }  # fmt: skip
    data.update(extra)
    return data


def _cases(db, national_id):
    db.session.expire_all()
    return db.session.query(Case).join(Patient).filter(Patient.national_id == national_id).all()


def _open(app, login_as, db, username, institution_id, national_id=None, **extra):
    national_id = national_id or _new_id("P")
    client = login_as(username)
    response = post_form(app, client, "/caseview/add", _case_form(institution_id, national_id, **extra))
    return client, response, national_id


def test_case_opened_with_patient_in_one_step(app, db, login_as, treatment_users):
    """The case form registers the patient and opens the case; the chart shows both."""
    inst = treatment_users["treat_a"]
    client, response, national_id = _open(app, login_as, db, "treat_a", inst)
    assert response.status_code == 302, response.text
    (case,) = _cases(db, national_id)
    assert case.institution_id == inst and case.status == "open"
    page = client.get(f"/caseview/show/{case.id}")
    assert page.status_code == 200 and "陳建宏" in page.text and "甲基安非他命" in page.text


@pytest.mark.parametrize("bad", ["A123456788", "Z999", "A1234567890"])
def test_case_checksum_ids_refused(app, db, login_as, treatment_users, bad):
    """A national ID with a wrong check digit or form is refused; the form keeps what was typed."""
    _client, response, _ = _open(app, login_as, db, "treat_a", treatment_users["treat_a"], bad)
    assert response.status_code == 200 and "檢查碼" in response.text and "甲基安非他命" in response.text
    assert _cases(db, bad) == []


def test_case_passport_for_foreigners(app, db, login_as, treatment_users):
    """A passport number (5–20 letters/digits) registers a foreigner; a malformed one is refused."""
    inst = treatment_users["treat_a"]
    _c, response, _ = _open(app, login_as, db, "treat_a", inst, "X1234567", patient_id_kind="passport")
    assert response.status_code == 302
    assert _cases(db, "X1234567")[0].patient.id_kind == "passport"
    _c, response, _ = _open(app, login_as, db, "treat_a", inst, "AB-1", patient_id_kind="passport")
    assert response.status_code == 200 and _cases(db, "AB-1") == []


def test_case_identity_mismatch_refused_keeping_the_form(app, db, login_as, treatment_users):
    """A name or birth date that differs from the record of the ID is refused, no row kept."""
    inst = treatment_users["treat_a"]
    _c, _r, national_id = _open(app, login_as, db, "treat_a", inst)
    _c, response, _ = _open(app, login_as, db, "treat_b", treatment_users["treat_b"], national_id,
                            patient_name="陳建弘")  # fmt: skip
    assert response.status_code == 200 and "陳建弘" in response.text
    assert db.session.query(Patient).filter_by(national_id=national_id).count() == 1
    assert len(_cases(db, national_id)) == 1


def test_case_second_institution_is_second_case_not_second_patient(app, db, login_as, treatment_users):
    """The same person at a second institution: one patient, two cases, each seen only at home."""
    _c, _r, national_id = _open(app, login_as, db, "treat_a", treatment_users["treat_a"])
    client_b, response, _ = _open(app, login_as, db, "treat_b", treatment_users["treat_b"], national_id)
    assert response.status_code == 302
    cases = _cases(db, national_id)
    assert len(cases) == 2 and len({c.patient_id for c in cases}) == 1
    other = next(c for c in cases if c.institution_id == treatment_users["treat_a"])
    assert client_b.get(f"/caseview/show/{other.id}").status_code == 404


def test_case_out_of_scope_by_form_url_and_api_refused(app, db, login_as, api_as, treatment_users):
    """Another institution's case: form (foreign institution) refused, URL 404, API 404/422."""
    national_id = _new_id("P")
    _c, response, _ = _open(app, login_as, db, "treat_a", treatment_users["treat_b"], national_id)
    assert response.status_code == 200 and _cases(db, national_id) == []
    client, headers = api_as("treat_a")
    body = {"institution": treatment_users["treat_b"], "opened_on": "2024-02-01",
            "substance_category": "alcohol", "referral_source": "self", "eligibility": "general",
            "patient": {"id_kind": "national_id", "national_id": national_id, "name": "林美玲",
                        "sex": "F", "birth_date": "1980-01-02"}}  # fmt: skip
    response = client.post("/api/v1/case/", json=body, headers=headers)
    assert response.status_code in (404, 422) and _cases(db, national_id) == []
    _c, _r, other_id = _open(app, login_as, db, "treat_b", treatment_users["treat_b"])
    case = _cases(db, other_id)[0]
    assert client.get(f"/api/v1/case/{case.id}", headers=headers).status_code == 404
    response = client.post("/api/v1/course/", json={"case": case.id, "start_date": "2024-03-01"}, headers=headers)
    assert response.status_code == 404
    assert db.session.query(Course).filter_by(case_id=case.id).count() == 0
    body["institution"] = treatment_users["treat_a"]
    response = client.post("/api/v1/case/", json=body, headers=headers)
    assert response.status_code == 201, response.text


def _case(app, db, login_as, treatment_users):
    _c, _r, national_id = _open(app, login_as, db, "treat_a", treatment_users["treat_a"])
    return _cases(db, national_id)[0]


def _start(app, client, case_id, start, end=""):
    return post_form(app, client, "/course/add", {"case": str(case_id), "start_date": start, "course_end": end})


def test_a2_default_end_is_one_year_after_start_incl_leap_day(app, db, login_as, treatment_users):
    """A2: no end date given → start + 1 year; 2024-02-29 → 2025-02-28."""
    from domain.addiction.courses import default_end

    assert default_end(dt.date(2024, 2, 29)) == dt.date(2025, 2, 28)
    case = _case(app, db, login_as, treatment_users)
    client = login_as("treat_a")
    response = _start(app, client, case.id, "113/02/29")
    assert response.status_code == 302, response.text
    db.session.expire_all()
    (course,) = db.session.query(Course).filter_by(case_id=case.id).all()
    assert (course.start_date, course.end_date) == (dt.date(2024, 2, 29), dt.date(2025, 2, 28))
    assert course.institution_id == case.institution_id
    assert client.get(f"/course/{course.id}").status_code == 200
    assert f"/course/{course.id}" in client.get(f"/caseview/show/{case.id}").text


def test_a2_end_before_start_refused(app, db, login_as, treatment_users):
    """A2: an end before the start is refused with the form kept; nothing is stored."""
    case = _case(app, db, login_as, treatment_users)
    response = _start(app, login_as("treat_a"), case.id, "113/05/01", "113/04/01")
    assert response.status_code == 200 and "結束" in response.text or "迄" in response.text
    assert db.session.query(Course).filter_by(case_id=case.id).count() == 0


def test_a2_overlapping_course_refused_naming_the_other(app, db, login_as, treatment_users):
    """A2: a course overlapping another of the same case is refused, naming its dates."""
    case = _case(app, db, login_as, treatment_users)
    client = login_as("treat_a")
    assert _start(app, client, case.id, "113/01/10", "113/06/30").status_code == 302
    response = _start(app, client, case.id, "113/06/01")
    assert response.status_code == 200 and "113/01/10" in response.text and "113/06/30" in response.text
    assert _start(app, client, case.id, "113/07/01", "113/08/01").status_code == 302
    db.session.expire_all()
    assert db.session.query(Course).filter_by(case_id=case.id).count() == 2


def test_a2_status_history(app, db, login_as, treatment_users):
    """A2: 進行中 → 中斷 (reason required, kept) with a history row per step; then no more steps."""
    case = _case(app, db, login_as, treatment_users)
    client = login_as("treat_a")
    _start(app, client, case.id, "113/03/01")
    db.session.expire_all()
    course = db.session.query(Course).filter_by(case_id=case.id).one()
    post_form(app, client, f"/course/interrupt/{course.id}", {"reason": ""})
    db.session.expire_all()
    assert db.session.get(Course, course.id).status == "active"
    post_form(app, client, f"/course/interrupt/{course.id}", {"reason": "失聯"})
    post_form(app, client, f"/course/complete/{course.id}", {})
    db.session.expire_all()
    course = db.session.get(Course, course.id)
    assert course.status == "interrupted" and course.interrupt_reason == "失聯"
    steps = db.session.query(CourseTransition).filter_by(course_id=course.id).order_by(CourseTransition.id).all()
    assert [(s.from_status, s.to_status) for s in steps] == [(None, "active"), ("active", "interrupted")]
    assert steps[1].note == "失聯"


def _edit_form(case, **changes):
    data = {
        "substance_category": case.substance_category, "substances": case.substances or "",
        "referral_source": case.referral_source, "eligibility": case.eligibility,
        "status": case.status, "closed_on": "", "close_reason": "", "referred_to_code": "", "note": "",
    }  # fmt: skip
    data.update(changes)
    return data


def test_case_closed_with_reason_or_referred_never_reopened(app, db, login_as, treatment_users):
    """開案 → 結案 needs date and reason (refused keeping the form); a closed case stays closed;
    轉介 names another institution by its code, never its own."""
    client = login_as("treat_a")
    case = _case(app, db, login_as, treatment_users)
    url = f"/caseview/edit/{case.id}"
    response = post_form(app, client, url, _edit_form(case, status="closed", closed_on="113/06/01"))
    # The message (babel/pending/cases.tsv) flashed above the form, which keeps the date typed.
    assert response.status_code == 200 and "alert-danger" in response.text and "113/06/01" in response.text
    db.session.expire_all()
    assert db.session.get(Case, case.id).status == "open"
    own = db.session.get(Institution, case.institution_id).nhi_code
    response = post_form(app, client, url, _edit_form(case, status="referred", referred_to_code=own))
    assert response.status_code == 200
    response = post_form(app, client, url, _edit_form(case, status="closed", closed_on="113/06/01",
                                                      close_reason="完成治療"))  # fmt: skip
    assert response.status_code == 302
    db.session.expire_all()
    case = db.session.get(Case, case.id)
    assert (case.status, case.closed_on, case.close_reason) == ("closed", dt.date(2024, 6, 1), "完成治療")
    response = post_form(app, client, url, _edit_form(case, status="open"))
    db.session.expire_all()
    assert db.session.get(Case, case.id).status == "closed"
    other = _case(app, db, login_as, treatment_users)
    target = db.session.get(Institution, treatment_users["treat_b"]).nhi_code
    response = post_form(app, client, f"/caseview/edit/{other.id}",
                         _edit_form(other, status="referred", referred_to_code=target))  # fmt: skip
    assert response.status_code == 302
    db.session.expire_all()
    assert db.session.get(Case, other.id).referred_to_id == treatment_users["treat_b"]


def test_case_quick_search_by_id_or_name_and_export(app, db, login_as, treatment_users):
    """The case list finds a case by full ID or by name; its Excel export answers."""
    client = login_as("treat_a")
    _c, _r, national_id = _open(app, login_as, db, "treat_a", treatment_users["treat_a"],
                                patient_name="鄭淑芬")  # fmt: skip
    case = _cases(db, national_id)[0]
    for text in (national_id, "鄭淑芬"):
        page = client.get("/caseview/list/", query_string={"_flt_0_patient": text})
        assert f"/caseview/show/{case.id}" in page.text
    page = client.get("/caseview/list/", query_string={"_flt_0_patient": "查無此人"})
    assert f"/caseview/show/{case.id}" not in page.text
    response = client.get("/caseview/export/xlsx")
    assert response.status_code == 200 and response.data[:2] == b"PK"


def test_case_list_filters_status_and_substance_by_their_labels(app, db, login_as, treatment_users):
    """A2: 個案狀態 and 物質類別 are picked from their zh_TW labels (no codes to type), and the
    picked value filters the list."""
    import re as _re

    client = login_as("treat_a")
    _c, _r, national_id = _open(app, login_as, db, "treat_a", treatment_users["treat_a"])
    case = _cases(db, national_id)[0]
    import json as _json

    page = client.get("/caseview/list/").text
    for field, enum in (("status", "CaseStatus"), ("substance_category", "SubstanceCategory")):
        # FAB's search form carries each filter's widget as a JSON string for its script.
        widget = _re.search(rf'"{field}": ("\\u003cselect(?:[^"\\]|\\.)*")', page)
        assert widget, f"{field}: no dropdown of {enum}"
        labels = _re.findall(r"(?s)<option[^>]*>(.*?)</option>", _json.loads(widget.group(1)))
        assert labels and not [label for label in labels if _re.fullmatch(r"[a-z_]+", label.strip())]
    other = "alcohol" if case.substance_category != "alcohol" else "drug"
    shown = client.get("/caseview/list/", query_string={"_flt_0_substance_category": case.substance_category,
                                                         "_flt_0_patient": national_id}).text  # fmt: skip
    hidden = client.get("/caseview/list/", query_string={"_flt_0_substance_category": other,
                                                          "_flt_0_patient": national_id}).text  # fmt: skip
    assert f"/caseview/show/{case.id}" in shown and f"/caseview/show/{case.id}" not in hidden


@pytest.mark.parametrize("username", ["bureau_tpe", "ministry", "facility_tpe", "helpdesk"])
def test_case_no_other_role_sees_cases(app, login_as, treatment_users, username):
    """No role but the treatment institutions' sees a case, a course or a patient in this issue."""
    client = login_as(username)
    for url in ("/caseview/list/", "/course/list/", "/patientview/list/"):
        response = client.get(url)
        assert response.status_code != 200 or "/caseview/show/" not in response.text


@pytest.mark.parametrize("body", [
    {"case": "abc", "start_date": "2024-01-01"},
    {"case": True, "start_date": "2024-01-01"},
    {"case": 1, "start_date": "not a date"},
    {"case": 1, "start_date": "2024-01-01", "end_date": "2023-01-01"},
    ["not", "an", "object"],
])  # fmt: skip
def test_course_api_hostile_input_answers_4xx(app, db, api_as, treatment_users, body):
    """Malformed course bodies are a 4xx with a message, never a 500; nothing is stored."""
    client, headers = api_as("treat_a")
    before = db.session.query(Course).count()
    response = client.post("/api/v1/course/", json=body, headers=headers)
    assert 400 <= response.status_code < 500, response.text
    assert db.session.query(Course).count() == before


def test_patient_api_registers_and_refuses_mismatch(app, db, api_as, treatment_users):
    """POST /api/v1/patient/: a new ID registers; the same ID with another name is a 422."""
    client, headers = api_as("treat_a")
    national_id = _new_id("P")
    body = {"id_kind": "national_id", "national_id": national_id, "name": "黃志明", "sex": "M",
            "birth_date": "1975-07-07"}  # fmt: skip
    assert client.post("/api/v1/patient/", json=body, headers=headers).status_code == 201
    response = client.post("/api/v1/patient/", json={**body, "name": "黃志銘"}, headers=headers)
    assert response.status_code == 422
    assert db.session.query(Patient).filter_by(national_id=national_id).count() == 1
    response = client.post("/api/v1/patient/", json={**body, "national_id": "A123456788"}, headers=headers)
    assert response.status_code == 422


def test_a2_changed_dates_keep_the_rules(app, db, login_as, treatment_users):
    """A2 on edit: new dates may not overlap another course (the course itself left out)."""
    case = _case(app, db, login_as, treatment_users)
    client = login_as("treat_a")
    _start(app, client, case.id, "113/01/01", "113/03/31")
    _start(app, client, case.id, "113/05/01", "113/06/30")
    db.session.expire_all()
    first, second = db.session.query(Course).filter_by(case_id=case.id).order_by(Course.start_date).all()
    url = f"/course/edit/{second.id}"
    response = post_form(app, client, url, {"start_date": "113/03/01", "course_end": "113/06/30"})
    assert response.status_code == 200 and "113/01/01" in response.text
    response = post_form(app, client, url, {"start_date": "113/04/15", "course_end": ""})
    assert response.status_code == 302
    db.session.expire_all()
    second = db.session.get(Course, second.id)
    assert (second.start_date, second.end_date) == (dt.date(2024, 4, 15), dt.date(2025, 4, 15))


def test_course_for_another_institutions_case_by_form_refused(app, db, login_as, treatment_users):
    """A course form naming another institution's case (a forged pre-fill) stores nothing."""
    _c, _r, national_id = _open(app, login_as, db, "treat_b", treatment_users["treat_b"])
    case = _cases(db, national_id)[0]
    client = login_as("treat_a")
    response = post_form(app, client, f"/course/add?_flt_0_case={case.id}",
                         {"start_date": "113/01/01", "course_end": ""})  # fmt: skip
    assert response.status_code in (200, 404)
    assert db.session.query(Course).filter_by(case_id=case.id).count() == 0
    assert client.get(f"/course/{1_000_000}").status_code == 404


@pytest.mark.parametrize("username", ["treat_a", "treat_b"])
def test_case_scope_matrix_for_treatment_users(app, db, login_as, api_as, treatment_users, username):
    """The scope matrix (every view and API) for treatment users, with cases and courses at
    both institutions: each sees only its own (tests/scope_oracle.py)."""
    from tests.platform import test_scope_matrix as matrix

    for owner in ("treat_a", "treat_b"):
        _c, _r, national_id = _open(app, login_as, db, owner, treatment_users[owner])
        _start(app, login_as(owner), _cases(db, national_id)[0].id, "112/01/01", "112/02/01")
    assert db.session.query(Course).filter(Course.institution_id.in_(treatment_users.values())).count() >= 2
    matrix.test_scope_matrix_views(app, db, login_as, username)
    matrix.test_scope_matrix_apis(app, db, api_as, username)


def test_case_apis_in_the_openapi_document(api_as, treatment_users):
    """Patient, Case and Course APIs are documented (OpenAPI) for a treatment user."""
    client, headers = api_as("treat_a")
    response = client.get("/api/v1/_openapi", headers=headers)
    assert response.status_code == 200
    for path in ("/api/v1/patient/", "/api/v1/case/", "/api/v1/course/"):
        assert {"get", "post"} <= set(response.json["paths"][path]), path
