"""A5: treatment records by profession, the institutions' own PDF record forms, lab results.

Fixtures of their own (two institutions, staff with licences and assignments, a patient with
a case and a course at each): no other part's demo users are needed."""

from __future__ import annotations

import datetime as dt
import io
import itertools

import pytest

from models.addiction.case import Case, Patient
from models.addiction.course import Course
from models.addiction.record import LabResult, RecordForm, TreatmentRecord
from models.addiction.staff import StaffLicence
from models.platform.audit import AuditLog
from models.registry.institution import Institution
from models.registry.practitioner import Practitioner, ServiceAssignment
from models.registry.reference import County, InstitutionLevel
from tests.conftest import PASSWORD, post_form
from tests.factories import _new_id
from tests.platform.test_files import _pdf_with

_serial = itertools.count(1)
START = dt.date(2025, 1, 10)


def _institution(db, county_code: str) -> Institution:
    county = db.session.query(County).filter_by(code=county_code).one()
    level = db.session.query(InstitutionLevel).order_by(InstitutionLevel.sort_order).first()
    inst = Institution(nhi_code=f"98{next(_serial):08d}", name=f"測試戒治醫院{next(_serial)}",
                       level_id=level.id, county_id=county.id)  # fmt: skip
    db.session.add(inst)
    db.session.flush()
    return inst


def _staff(db, inst, name, profession, start=dt.date(2020, 1, 1), end=None) -> Practitioner:
    person = Practitioner(national_id=_new_id("A"), name=name, profession="psychologist")
    db.session.add(person)
    db.session.flush()
    db.session.add(ServiceAssignment(practitioner_id=person.id, institution_id=inst.id, start_date=dt.date(2020, 1, 1)))
    db.session.add(StaffLicence(practitioner_id=person.id, profession=profession,
                                licence_number=f"L{next(_serial)}", start_date=start, end_date=end))  # fmt: skip
    return person


def _course(db, inst) -> Course:
    patient = Patient(id_kind="national_id", national_id=_new_id("B"), name="林小明", sex="M",
                      birth_date=dt.date(1990, 5, 1))  # fmt: skip
    db.session.add(patient)
    db.session.flush()
    case = Case(patient_id=patient.id, institution_id=inst.id, opened_on=START, substance_category="drug",
                referral_source="self", eligibility="general", status="open")  # fmt: skip
    db.session.add(case)
    db.session.flush()
    course = Course(case_id=case.id, institution_id=inst.id, start_date=START, end_date=dt.date(2026, 1, 9), status="active")
    db.session.add(course)
    db.session.flush()
    return course


def _user(app, db, username, inst, practitioner):
    from core.security.passwords import demo_passwords_allowed
    from core.security.roles import TREATMENT
    from models.platform.user import ScopedUser

    sm = app.appbuilder.sm
    with demo_passwords_allowed():
        user = sm.add_user(username, "測試", "人員", f"{username}@demo.invalid", [sm.find_role(TREATMENT)], PASSWORD)
    user = db.session.get(ScopedUser, user.id)
    user.scope_kind, user.scope_institutions, user.practitioner_id = "facility", [inst], practitioner.id
    db.session.commit()


@pytest.fixture(scope="module")
def world(app):
    """Institution A (臺北市) and B (高雄市), staff of each profession at A, a course at each."""
    from core.extensions import db

    with app.app_context():
        a, b = _institution(db, "TPE"), _institution(db, "KHH")
        ids = {
            "a": a.id, "b": b.id,
            "psychologist": _staff(db, a, "王心理", "psychologist").id,
            "nurse": _staff(db, a, "陳護理", "nurse").id,
            "expired": _staff(db, a, "李過期", "psychologist", end=dt.date(2024, 12, 31)).id,
            "b_psychologist": _staff(db, b, "張高雄", "psychologist").id,
            "course": _course(db, a).id, "b_course": _course(db, b).id,
        }  # fmt: skip
        db.session.commit()
        _user(app, db, "rec_psy_a", db.session.get(Institution, a.id), db.session.get(Practitioner, ids["psychologist"]))
        _user(app, db, "rec_psy_b", db.session.get(Institution, b.id), db.session.get(Practitioner, ids["b_psychologist"]))
        db.session.remove()
    return ids


def _body(world, **changes):
    body = {
        "course": world["course"], "executed_on": "2025-03-01", "author": world["psychologist"],
        "kind": "individual_psychotherapy", "minutes": 50,
        "content": {"topic": "渴求因應", "interventions": "認知行為治療", "response": "配合", "plan": "下週追蹤"},
    }  # fmt: skip
    body.update(changes)
    return body


def _count(db, model=TreatmentRecord):
    db.session.expire_all()
    return db.session.query(model).count()


def test_a5_a_psychologist_records_psychotherapy_by_api(world, db, api_as):
    """A5: a psychologist serving at the course's institution with a valid licence signs a
    psychotherapy record; institution and case come from the course."""
    client, headers = api_as("rec_psy_a")
    response = client.post("/api/v1/treatmentrecord/", json=_body(world, institution=world["b"]), headers=headers)
    assert response.status_code == 201, response.text
    record = db.session.get(TreatmentRecord, response.json["id"])
    course = db.session.get(Course, world["course"])
    assert (record.institution_id, record.case_id, record.profession) == (world["a"], course.case_id, "psychologist")


@pytest.mark.parametrize(
    "changes, words",
    [
        ({"author": "nurse"}, "陳護理"),  # A5: a nurse cannot sign a psychotherapy record
        ({"author": "expired"}, "李過期"),  # A5: an expired licence is refused
        ({"executed_on": "2026-02-01"}, "115/02/01"),  # A5: a record outside its course
        ({"executed_on": "2025-01-09"}, "114/01/09"),
        ({"minutes": 0}, "1440"),
        ({"minutes": 1441}, "1440"),
        ({"author": "b_psychologist"}, None),  # not serving at the course's institution
        ({"content": {"topic": "x"}}, None),  # a required field of the form missing
        ({"kind": ["individual_psychotherapy"]}, None),  # hostile JSON: a 422, never a 500
        ({"content": ["x"]}, None),
        ({"kind": "lab_test", "author": "nurse", "content": {"results": [{"outcome": ["x"], "substance": "x",
                                                                          "sampled_on": "2025-03-01"}]}}, None),
    ],
)
def test_a5_records_the_rules_refuse_store_nothing(world, db, api_as, changes, words):
    """A5: wrong profession, expired licence, outside the course, bad minutes, a stranger as
    author, an incomplete form: a zh_TW 422 and nothing stored."""
    client, headers = api_as("rec_psy_a")
    changes = {k: world[v] if k == "author" else v for k, v in changes.items()}
    before = _count(db)
    response = client.post("/api/v1/treatmentrecord/", json=_body(world, **changes), headers=headers)
    assert response.status_code == 422, response.text
    if words:
        assert words in response.json["message"]
    assert _count(db) == before


def test_a5_a_nurse_is_refused_a_psychotherapy_record_by_form(app, world, db, login_as):
    """A5 (form): the nurse as author of a psychotherapy record is refused with a message that
    keeps the form, and nothing is stored."""
    client = login_as("rec_psy_a")
    before = _count(db)
    data = {"course": world["course"], "kind": "individual_psychotherapy", "executed_on": "114/03/02",
            "author": world["nurse"], "minutes": "50", "mode": "structured", "c_topic": "戒斷症狀",
            "c_interventions": "動機式晤談"}  # fmt: skip
    response = post_form(app, client, "/treatmentrecord/add", data)
    assert response.status_code == 200
    assert "陳護理" in response.text and "動機式晤談" in response.text  # the message, and what was typed
    assert _count(db) == before


def test_a5_a_record_for_another_institutions_course_is_refused_everywhere(app, world, db, login_as, api_as):
    """A5: another institution's course by URL (404), by form and by API: refused, nothing stored."""
    client = login_as("rec_psy_a")
    before = _count(db)
    assert client.get(f"/treatmentrecord/add?course={world['b_course']}&kind=social_work").status_code == 404
    assert client.get(f"/course/{world['b_course']}/records").status_code == 404
    data = {"course": world["b_course"], "kind": "individual_psychotherapy", "executed_on": "114/03/02",
            "author": world["psychologist"], "minutes": "50", "c_topic": "t", "c_interventions": "i"}  # fmt: skip
    response = post_form(app, client, "/treatmentrecord/add", data)
    assert response.status_code == 200 and "權限範圍" in response.text
    api, headers = api_as("rec_psy_a")
    hidden = api.post("/api/v1/treatmentrecord/", json=_body(world, course=world["b_course"]), headers=headers)
    missing = api.post("/api/v1/treatmentrecord/", json=_body(world, course=2**31 - 1), headers=headers)
    assert hidden.status_code == missing.status_code == 422 and hidden.json == missing.json
    assert _count(db) == before


def _register_form(app, client, world, pdf: bytes, kind="individual_psychotherapy", title="個別心理治療紀錄表"):
    data = {"institution": str(world["a"]), "kind": kind, "title": title, "pdf": (io.BytesIO(pdf), "blank.pdf")}
    return post_form(app, client, "/recordform/add", data, content_type="multipart/form-data")


def test_a5_blank_forms_are_versioned_and_the_ministry_lists_them(app, world, db, login_as):
    """A5 (seed Q15): a second upload for a kind is version 2, version 1 kept; the Ministry's
    role lists every institution's blank forms and downloads them."""
    from core.security.roles import ADDICTION_MINISTRY
    from models.platform.user import ScopedUser

    client = login_as("rec_psy_a")
    for _ in range(2):
        assert _register_form(app, client, world, _pdf_with(2)).status_code == 302
    forms = db.session.query(RecordForm).filter_by(institution_id=world["a"], kind="individual_psychotherapy")
    assert sorted(f.version for f in forms) == [1, 2]
    newest = max(forms, key=lambda f: f.version)
    assert newest.pages == 2 and len(newest.sha256) == 64
    # The Ministry: a national account holding the addiction ministry role.
    sm = app.appbuilder.sm
    from core.security.passwords import demo_passwords_allowed

    if sm.find_user(username="rec_ministry") is None:
        with demo_passwords_allowed():
            user = sm.add_user("rec_ministry", "衛福部", "測試", "rec_ministry@demo.invalid",
                               [sm.find_role(ADDICTION_MINISTRY)], PASSWORD)  # fmt: skip
        db.session.get(ScopedUser, user.id).scope_kind = "national"
        db.session.commit()
    ministry = login_as("rec_ministry")
    listing = ministry.get("/recordform/list/?psize_RecordFormView=500")
    assert listing.status_code == 200 and f"/recordform/show/{newest.id}" in listing.text
    download = ministry.get(f"/recordform/pdf/{newest.id}")
    assert download.status_code == 200 and download.data.startswith(b"%PDF-")
    assert ministry.get("/treatmentrecord/list/").status_code in (302, 403)  # no patient data
    assert ministry.get("/recordform/export/xlsx").status_code == 200


def _refusal(app, data: bytes, filename: str) -> str:
    """The message the domain gives for a refused PDF, as the page shows it (HTML-escaped)."""
    import html

    from domain.addiction.records import FORM_FILES, RecordError, check_pdf

    with app.test_request_context(), pytest.raises(RecordError) as refused:
        check_pdf(FORM_FILES, filename, data)
    return html.escape(str(refused.value))


@pytest.mark.usefixtures("storage_backend")  # issue 20: both storage backends
@pytest.mark.parametrize("pdf", ["fake", "encrypted", "js", "pages", "big"])
def test_a5_bad_pdfs_are_refused(app, world, db, login_as, monkeypatch, pdf):
    """A5: a fake, encrypted, scripted, too long or too large PDF is refused with its reason,
    for a blank form and for a filled-in record alike; nothing is stored."""
    monkeypatch.setitem(app.config, "RECORD_PDF_MAX_PAGES", 3)
    monkeypatch.setitem(app.config, "RECORD_PDF_MAX_BYTES", 1024 * 1024)
    data = {
        "fake": lambda: b"MZ\x90\x00 not a pdf at all", "encrypted": lambda: _pdf_with(1, password="x"),
        "js": lambda: _pdf_with(1, javascript="app.alert(1)"),
        "pages": lambda: _pdf_with(4), "big": lambda: _pdf_with(1) + b"%" * (1024 * 1024),
    }[pdf]()  # fmt: skip
    reasons = {_refusal(app, d, "x.pdf") for d in (b"MZ", _pdf_with(1, password="x"), _pdf_with(4))}
    assert len(reasons) == 3  # each refusal says why
    client = login_as("rec_psy_a")
    forms_before = _count(db, RecordForm)
    response = _register_form(app, client, world, data, kind="family_therapy")
    assert response.status_code == 200 and _refusal(app, data, "blank.pdf") in response.text
    assert _count(db, RecordForm) == forms_before
    # The same file as a filled-in record on a valid blank form.
    assert _register_form(app, client, world, _pdf_with(1), kind="social_work").status_code == 302
    form_id = db.session.query(RecordForm.id).filter_by(institution_id=world["a"], kind="social_work") \
        .order_by(RecordForm.version.desc()).first()[0]  # fmt: skip
    before = _count(db)
    social_worker = _staff(db, db.session.get(Institution, world["a"]), "吳社工", "social_worker")
    db.session.commit()
    fields = {"course": world["course"], "kind": "social_work", "executed_on": "114/03/03",
              "author": str(social_worker.id), "minutes": "30", "mode": "pdf", "form_version": str(form_id),
              "pdf": (io.BytesIO(data), "filled.pdf")}  # fmt: skip
    response = post_form(app, client, "/treatmentrecord/add", fields, content_type="multipart/form-data")
    assert response.status_code == 200 and _refusal(app, data, "filled.pdf") in response.text
    assert _count(db) == before


def _pdf_record(app, world, db, client) -> TreatmentRecord:
    assert _register_form(app, client, world, _pdf_with(1)).status_code == 302
    form_id = db.session.query(RecordForm.id).filter_by(institution_id=world["a"], kind="individual_psychotherapy") \
        .order_by(RecordForm.version.desc()).first()[0]  # fmt: skip
    pdf = _pdf_with(2)
    fields = {"course": world["course"], "kind": "individual_psychotherapy", "executed_on": "114/04/01",
              "author": str(world["psychologist"]), "minutes": "60", "mode": "pdf", "form_version": str(form_id),
              "pdf": (io.BytesIO(pdf), "filled.pdf")}  # fmt: skip
    response = post_form(app, client, "/treatmentrecord/add", fields, content_type="multipart/form-data")
    from tests.conftest import visible_text

    assert response.status_code == 302, visible_text(response.text)[-800:]
    record = db.session.get(TreatmentRecord, int(response.headers["Location"].rstrip("/").rsplit("/", 1)[-1]))
    import hashlib

    assert record.sha256 == hashlib.sha256(pdf).hexdigest() and record.form_id == form_id
    return record


@pytest.mark.usefixtures("storage_backend")  # issue 20: both storage backends
def test_a5_a_pdf_record_keeps_its_sha256_and_is_served_only_in_scope(app, world, db, login_as):
    """A5: the uploaded record's SHA-256 is stored; its own institution downloads it and sees
    it on the course page; another institution's staff get 404 for the PDF and the record."""
    client = login_as("rec_psy_a")
    record = _pdf_record(app, world, db, client)
    download = client.get(f"/treatmentrecord/pdf/{record.id}")
    assert download.status_code == 200 and download.data.startswith(b"%PDF-")
    page = client.get(f"/course/{world['course']}")
    assert page.status_code == 200 and f"/treatmentrecord/show/{record.id}" in page.text
    other = login_as("rec_psy_b")
    assert other.get(f"/treatmentrecord/pdf/{record.id}").status_code == 404
    assert other.get(f"/treatmentrecord/show/{record.id}").status_code == 404
    assert other.get(f"/recordform/pdf/{record.form_id}").status_code == 404


def test_a5_the_course_page_lists_records_in_date_order(world, db, api_as, login_as):
    """A5/A2: the course's records, oldest first, whatever order they were entered in."""
    client, headers = api_as("rec_psy_a")
    for day in ("2025-06-03", "2025-05-02"):
        assert client.post("/api/v1/treatmentrecord/", json=_body(world, executed_on=day), headers=headers).status_code == 201
    html = login_as("rec_psy_a").get(f"/course/{world['course']}").text
    assert html.index("114/05/02") < html.index("114/06/03")


def test_a5_lab_results_are_structured_rows(world, db, api_as):
    """A5: a lab test carries LabResult rows (substance, sample date, outcome); none is refused."""
    client, headers = api_as("rec_psy_a")
    nurse_body = _body(world, kind="lab_test", author=world["nurse"], minutes=10, content={
        "note": "尿液毒物檢驗",
        "results": [{"substance": "安非他命", "sampled_on": "114/03/05", "outcome": "negative"},
                    {"substance": "嗎啡", "sampled_on": "2025-03-05", "outcome": "positive", "value": "320 ng/mL"}],
    })  # fmt: skip
    response = client.post("/api/v1/treatmentrecord/", json=nurse_body, headers=headers)
    assert response.status_code == 201, response.text
    rows = db.session.query(LabResult).filter_by(record_id=response.json["id"]).order_by(LabResult.id).all()
    assert [(r.substance, r.outcome) for r in rows] == [("安非他命", "negative"), ("嗎啡", "positive")]
    listed = client.get("/api/v1/labresult/", headers=headers).json["ids"]
    assert {r.id for r in rows} <= set(listed)
    before = _count(db)
    empty = client.post("/api/v1/treatmentrecord/", headers=headers,
                        json=_body(world, kind="lab_test", author=world["nurse"], content={"results": []}))  # fmt: skip
    assert empty.status_code == 422 and _count(db) == before


def test_a5_a_correction_is_kept_in_the_audit_trail(app, world, db, api_as, login_as):
    """A5: the institution corrects its record (form and API); the audit trail holds the change."""
    client, headers = api_as("rec_psy_a")
    pk = client.post("/api/v1/treatmentrecord/", json=_body(world), headers=headers).json["id"]
    response = client.put(f"/api/v1/treatmentrecord/{pk}", json={"minutes": 45}, headers=headers)
    assert response.status_code == 200, response.text
    web = login_as("rec_psy_a")
    data = {"course": world["course"], "kind": "individual_psychotherapy", "executed_on": "114/03/01",
            "author": str(world["psychologist"]), "minutes": "45", "mode": "structured",
            "c_topic": "更正後主題", "c_interventions": "認知行為治療"}  # fmt: skip
    assert post_form(app, web, f"/treatmentrecord/edit/{pk}", data).status_code == 302
    db.session.expire_all()
    assert db.session.get(TreatmentRecord, pk).content["topic"] == "更正後主題"
    updates = db.session.query(AuditLog).filter_by(model="TreatmentRecord", row_key=str(pk), action="update") \
        .order_by(AuditLog.id).all()  # fmt: skip
    assert updates[0].before["minutes"] == 50 and updates[0].after["minutes"] == 45
    assert updates[-1].after["content"]["topic"] == "更正後主題" and updates[-1].username == "rec_psy_a"
    # Another institution cannot correct it: 404, unchanged.
    other, other_headers = api_as("rec_psy_b")
    assert other.put(f"/api/v1/treatmentrecord/{pk}", json={"minutes": 5}, headers=other_headers).status_code == 404
    db.session.expire_all()
    assert db.session.get(TreatmentRecord, pk).minutes == 45


def test_a5_the_record_list_filters_by_month_and_exports(world, db, api_as, login_as):
    """A5: the record list by institution and month (ROC 114/03), and its Excel export."""
    client, headers = api_as("rec_psy_a")
    pk = client.post("/api/v1/treatmentrecord/", json=_body(world, executed_on="2025-07-15"), headers=headers).json["id"]
    web = login_as("rec_psy_a")
    july = web.get("/treatmentrecord/list/?_flt_0_executed_on=114/07").text
    march = web.get("/treatmentrecord/list/?_flt_0_executed_on=114/03").text
    assert f"/treatmentrecord/show/{pk}" in july and f"/treatmentrecord/show/{pk}" not in march
    assert web.get("/treatmentrecord/list/?_flt_0_executed_on=114/13").status_code == 200
    export = web.get("/treatmentrecord/export/xlsx")
    assert export.status_code == 200 and export.data[:2] == b"PK"


def test_a5_signers_table_names_a_profession_for_every_kind():
    """A5: every kind of treatment has its signing professions and its built-in form."""
    from domain.addiction.records import CONTENT_FIELDS, SIGNERS
    from models.addiction.record import TreatmentKind

    assert set(SIGNERS) == set(TreatmentKind) == set(CONTENT_FIELDS)
    assert "nurse" not in SIGNERS[TreatmentKind.INDIVIDUAL_PSYCHOTHERAPY]


def _statements(client, db, url) -> int:
    """SQL statements of one GET of `url` (after a warm-up GET), nothing answered from the
    test's own identity map."""
    from sqlalchemy import event

    assert client.get(url).status_code == 200
    db.session.expunge_all()
    seen = []

    def count(*args):
        seen.append(args[2])

    event.listen(db.engine, "before_cursor_execute", count)
    try:
        assert client.get(url).status_code == 200
    finally:
        event.remove(db.engine, "before_cursor_execute", count)
    return len(seen)


def test_record_list_and_course_page_read_their_rows_with_the_page(world, db, api_as, login_as):
    """Issue 14 speed: the record list (filtered by institution and month) and the course page
    read each row's case, patient and author with the page, never once per row: three more
    records of three more cases add no statement, and each page stays within 8."""
    api, headers = api_as("rec_psy_a")
    client = login_as("rec_psy_a")
    code = db.session.get(Institution, world["a"]).nhi_code
    list_url = f"/treatmentrecord/list/?_flt_0_institution={code}&_flt_0_executed_on=114/04"
    course_url = f"/course/show/{world['course']}"

    def add(course, day):
        body = _body(world, course=course, executed_on=day)
        assert api.post("/api/v1/treatmentrecord/", json=body, headers=headers).status_code == 201

    add(world["course"], "2025-04-01")
    before = _statements(client, db, list_url), _statements(client, db, course_url)
    for day in ("2025-04-02", "2025-04-03", "2025-04-04"):
        other = _course(db, db.session.get(Institution, world["a"])).id
        db.session.commit()
        add(other, day)
        add(world["course"], day)
    after = _statements(client, db, list_url), _statements(client, db, course_url)
    assert after == before and max(after) <= 8
    page = client.get(list_url).text
    assert page.count("/treatmentrecord/show/") >= 7 and "林小明" in page


def test_the_course_page_shows_lab_results_and_pdf_records(world, db, api_as, login_as):
    """A5: the course page's rows show a lab test's results (substance and outcome, in order)
    and each record links to its own page."""
    from flask_babel import force_locale

    from models.addiction.record import LabOutcome

    api, headers = api_as("rec_psy_a")
    body = _body(world, kind="lab_test", author=world["nurse"], minutes=10, executed_on="2025-05-20", content={
        "note": "尿液毒物檢驗",
        "results": [{"substance": "安非他命", "sampled_on": "114/05/20", "outcome": "negative"},
                    {"substance": "嗎啡<b>", "sampled_on": "2025-05-20", "outcome": "positive"}],
    })  # fmt: skip
    response = api.post("/api/v1/treatmentrecord/", json=body, headers=headers)
    assert response.status_code == 201, response.text
    html = login_as("rec_psy_a").get(f"/course/show/{world['course']}").text
    with force_locale("zh_TW"):
        negative, positive = LabOutcome.label_of("negative"), LabOutcome.label_of("positive")
    assert f"安非他命 {negative}；嗎啡&lt;b&gt; {positive}；" in html
    assert f'href="/treatmentrecord/show/{response.json["id"]}"' in html and "陳護理" in html
