"""A12: informed consent and the consent-gated cross-hospital timeline.

The demo has three persons treated at the 臺北市 demo hospital and then at the 高雄市 one
(seed/addiction/consent.py): 王大明 consented at 臺北 (lookup and lab results), 李小華 did not,
陳志強 revoked. Tests that change consents make persons of their own (`person`)."""

from __future__ import annotations

import datetime as dt
import io
import itertools

import pytest
from sqlalchemy import event, select, text

from models.addiction.case import Case, Patient
from models.addiction.consent import Consent, ConsentAccess
from models.addiction.course import Course
from models.addiction.record import LabResult, TreatmentRecord
from seed.addiction.consent import PERSONS, PSYCHOTHERAPY_NOTE, demo_national_id
from tests.conftest import post_form, visible_text
from tests.factories import _new_id

GRANTED, REFUSED, REVOKED = (demo_national_id(p) for p in PERSONS)
_serial = itertools.count(1)


def _cases(db, national_id) -> dict[str, Case]:
    """The person's cases by hospital key (tpe / khh)."""
    from seed.addiction.registry import demo_addiction_institution

    tpe = demo_addiction_institution("hospital_tpe").id
    patient = db.session.scalar(select(Patient).where(Patient.national_id == national_id))
    cases = db.session.scalars(select(Case).where(Case.patient_id == patient.id)).all()
    return {"tpe" if c.institution_id == tpe else "khh": c for c in cases}


def _timeline_url(case_id, part=True) -> str:
    """The case page's 跨院治療歷程, opened: the fragment it loads in place (or its own page)."""
    return f"/consent/timeline/{case_id}" + ("?part=1" if part else "")


def _log_count(db) -> int:
    db.session.expire_all()
    return db.session.query(ConsentAccess).count()


def _signed_scan(db, case) -> bytes:
    from domain.addiction.consent import consent_form_pdf

    return consent_form_pdf(case, signed={"boxes": {0, 1}, "names": [case.patient.name]})


@pytest.fixture
def person(app, db):
    """A fresh person with a case, a course and records at both demo hospitals, no consent."""
    from seed.addiction.consent import _case, _course, _record
    from seed.addiction.registry import demo_addiction_institution, demo_staff

    tpe, khh = demo_addiction_institution("hospital_tpe"), demo_addiction_institution("hospital_khh")
    patient = Patient(id_kind="national_id", national_id=_new_id("C"), name=f"測試者{next(_serial)}", sex="M",
                      birth_date=dt.date(1990, 1, 1))  # fmt: skip
    db.session.add(patient)
    db.session.flush()
    tpe_case, khh_case = _case(patient, tpe, dt.date(2025, 3, 3), "self"), _case(patient, khh, dt.date(2025, 10, 1), "self")
    tpe_course, khh_course = _course(tpe_case, dt.date(2025, 3, 3), "active", None), _course(khh_case, dt.date(2025, 10, 1), "active", None)
    _record(tpe_course, dt.date(2025, 3, 12), demo_staff("psy_tpe"), "psychologist", "individual_psychotherapy",
            50, {"topic": "動機式晤談", "interventions": "秘密的治療內容"})  # fmt: skip
    lab = _record(tpe_course, dt.date(2025, 3, 19), demo_staff("dr_tpe"), "physician", "lab_test", 10, {"note": "尿液"})
    db.session.add(LabResult(record=lab, substance="嗎啡", sampled_on=lab.executed_on, outcome="negative"))
    _record(khh_course, dt.date(2025, 10, 2), demo_staff("cm_khh"), "case_manager", "case_management", 30,
            {"summary": "個管"})  # fmt: skip
    db.session.commit()
    return {"tpe": tpe_case.id, "khh": khh_case.id, "patient": patient.id}


def _record_consent(app, client, case_id, db, **fields):
    case = db.session.get(Case, case_id)
    data = {"signed_on": "114/03/04", "cross_hospital": "yes", "lab_results": "y", **fields}
    if data.get("lab_results") is None:
        data.pop("lab_results")
    scan = fields.pop("scan", None)
    data.pop("scan", None)
    data["scan"] = (io.BytesIO(scan if scan is not None else _signed_scan(db, case)), "signed.pdf")
    return post_form(app, client, f"/consent/add?case={case_id}", data, content_type="multipart/form-data")


# ------------------------------------------------------------------ the form
def test_a12_consent_form_pdf_is_zh_tw_with_institution_person_boxes_and_signature_lines(app, db, login_as):
    from pypdf import PdfReader

    case = _cases(db, GRANTED)["tpe"]
    response = login_as("psy_tpe").get(f"/consent/form/{case.id}")
    assert response.status_code == 200 and response.mimetype == "application/pdf"
    text_ = PdfReader(io.BytesIO(response.data)).pages[0].extract_text()
    for expected in ("治療知情同意書", case.institution.name, case.patient.name, case.patient.national_id,
                     "跨院查詢", "檢驗結果", "簽名"):  # fmt: skip
        assert expected in text_, expected
    # Another institution's case: as if it did not exist.
    assert login_as("cm_khh").get(f"/consent/form/{case.id}").status_code == 404


# ------------------------------------------------------------------ the timeline
def test_a12_without_consent_other_institutions_rows_are_absent_and_the_page_says_why(app, db, login_as, api_as):
    khh = _cases(db, REFUSED)["khh"]
    before = _log_count(db)
    client = login_as("cm_khh")
    tpe_name = _cases(db, REFUSED)["tpe"].institution.name
    for url in (f"/caseview/show/{khh.id}", _timeline_url(khh.id), _timeline_url(khh.id, part=False)):
        page = client.get(url)
        assert page.status_code == 200, url
        assert tpe_name not in visible_text(page.text), url
    seen = visible_text(client.get(_timeline_url(khh.id)).text)
    assert "只顯示本機構" in seen and "跨院查詢同意" in seen
    client, headers = api_as("cm_khh")
    body = client.get(f"/api/v1/timeline/{khh.id}", headers=headers).json
    assert body["consent"] is None and body["reason"]
    rows = body["courses"] + body["records"] + body["lab_results"]
    assert rows and all(r["own"] and r["institution"] != tpe_name for r in rows)
    assert _log_count(db) == before  # nothing of another institution was seen


def test_a12_with_consent_the_timeline_shows_other_institutions_as_dates_institution_kind_and_lab_results(
    app, db, login_as, api_as
):
    cases = _cases(db, GRANTED)
    tpe_name = cases["tpe"].institution.name
    page = login_as("cm_khh").get(_timeline_url(cases["khh"].id))
    seen = visible_text(page.text)
    assert tpe_name in seen and "個別心理治療" in seen and "安非他命" in seen and "陰性" in seen
    assert PSYCHOTHERAPY_NOTE not in page.text and "戒斷症狀" not in page.text
    # The case page itself reads none of it: the timeline opens on demand.
    chart = login_as("cm_khh").get(f"/caseview/show/{cases['khh'].id}").text
    assert 'id="timeline-records"' not in chart and 'id="timeline-labs"' not in chart
    client, headers = api_as("cm_khh")
    body = client.get(f"/api/v1/timeline/{cases['khh'].id}", headers=headers).json
    others = [r for r in body["records"] if not r["own"]]
    assert {r["kind"] for r in others} >= {"outpatient", "individual_psychotherapy", "lab_test"}
    # The projection, nothing more: no content, author or id of another institution's row.
    assert all(set(r) == {"executed_on", "institution", "kind", "profession", "own", "id"} and r["id"] is None
               for r in others)  # fmt: skip
    labs = [r for r in body["lab_results"] if not r["own"]]
    assert {(r["substance"], r["outcome"]) for r in labs} == {("安非他命", "negative"), ("安非他命", "positive")}
    assert body["consent"]["lab_results"] is True
    assert PSYCHOTHERAPY_NOTE not in str(body)


def test_a12_the_timeline_statements_select_only_the_projection(app, db):
    """The data layer, not the template, keeps record content out: no statement the timeline
    runs reads a record's content, author, file or form."""
    from flask_login import login_user

    from domain.addiction.timeline import person_timeline
    from models.platform.user import ScopedUser

    case = _cases(db, GRANTED)["khh"]
    statements = []

    def capture(conn, cursor, statement, *args):
        statements.append(statement.lower())

    with app.test_request_context():
        from flask import g

        g.user = db.session.scalar(select(ScopedUser).where(ScopedUser.username == "cm_khh"))
        login_user(g.user)
        event.listen(db.engine, "before_cursor_execute", capture)
        try:
            timeline = person_timeline(case, "api")
        finally:
            event.remove(db.engine, "before_cursor_execute", capture)
    assert timeline.grant is not None and timeline.others
    reads = [s for s in statements if s.lstrip().startswith("select") and "treatment_record" in s]
    assert reads
    for statement in reads:
        for column in ("content", "author_id", "stored_name", "sha256", "form_id", "minutes"):
            assert f"treatment_record.{column}" not in statement, (column, statement)


@pytest.mark.parametrize("username", ["cm_khh", "psy_tpe", "bureau_tpe", "ministry"])
def test_a12_own_rows_are_those_of_the_viewers_scope_for_every_kind_of_scope(app, db, username):
    """The timeline's statements are built once with the scope as parameters (an institution,
    a county or national); "own" (a link, no log) is the viewer's scope exactly as
    Scope.institution_filter defines it, for a hospital's staff, a county bureau and the ministry."""
    from flask import g
    from flask_login import login_user

    from core.data.scope import current_scope
    from domain.addiction.timeline import person_timeline
    from models.platform.user import ScopedUser
    from models.registry.institution import Institution

    cases = _cases(db, GRANTED)
    with app.test_request_context():
        g.user = db.session.scalar(select(ScopedUser).where(ScopedUser.username == username))
        login_user(g.user)
        scope = current_scope()
        own_names = set(db.session.scalars(select(Institution.name).where(scope.institution_filter(Institution.id))))
        case = next(c for c in cases.values() if c.institution.name in own_names)
        timeline = person_timeline(case, "api")
        db.session.rollback()
    rows = [(r[3], r[5]) for r in timeline.courses] + [(r[3], r[4]) for r in timeline.records] + [
        (r[4], r[5]) for r in timeline.labs]  # fmt: skip
    assert {name for name, _own in rows} == {c.institution.name for c in cases.values()}, username
    assert all(bool(own) == (name in own_names) for name, own in rows), username
    assert timeline.others == sum(1 for _name, own in rows if not own)
    # Another institution's rows carry no id; the viewer's own rows link to their record.
    assert all((pk is None) != bool(own) for *_rest, own, pk in timeline.records), username


def test_a12_the_case_page_opens_the_timeline_on_demand_within_the_csp(app, db, login_as):
    """The case page shows the consent and a 跨院治療歷程 button, not the lookup: the button is
    a link to the timeline's own page, which a script carrying the response's CSP nonce loads
    in place (?part=1); the fragment holds no script."""
    import re

    cases = _cases(db, GRANTED)
    client = login_as("cm_khh")
    before = _log_count(db)
    chart = client.get(f"/caseview/show/{cases['khh'].id}")
    assert _log_count(db) == before
    assert f'id="open-timeline" href="{_timeline_url(cases["khh"].id, part=False)}"' in chart.text
    assert f'data-src="{_timeline_url(cases["khh"].id)}"' in chart.text
    nonce = re.search(r"'nonce-([^']+)'", chart.headers["Content-Security-Policy"]).group(1)
    scripts = re.findall(r"<script([^>]*)>", chart.text)
    assert scripts and all(f'nonce="{nonce}"' in attrs for attrs in scripts if "src=" not in attrs)
    assert "unsafe-inline" not in chart.headers["Content-Security-Policy"].split("script-src")[1].split(";")[0]
    fragment = client.get(_timeline_url(cases["khh"].id))
    assert fragment.status_code == 200 and "<script" not in fragment.text and "<html" not in fragment.text
    assert 'id="timeline-records"' in fragment.text and _log_count(db) == before + 1
    page = client.get(_timeline_url(cases["khh"].id, part=False))
    assert page.status_code == 200 and "<html" in page.text and 'id="back-to-case"' in page.text


def _hidden_rows(db, cases):
    """(model, id) of the person's rows at 臺北: cases, courses, records, lab results."""
    tpe = cases["tpe"]
    records = db.session.scalars(select(TreatmentRecord.id).where(TreatmentRecord.case_id == tpe.id)).all()
    return {
        Case: [tpe.id],
        Course: db.session.scalars(select(Course.id).where(Course.case_id == tpe.id)).all(),
        TreatmentRecord: records,
        LabResult: db.session.scalars(select(LabResult.id).where(LabResult.record_id.in_(records))).all(),
    }


@pytest.mark.parametrize("national_id", [GRANTED, REFUSED], ids=["consenting", "not-consenting"])
def test_a12_record_content_of_another_institution_is_404_by_every_path(app, db, login_as, api_as, national_id):
    """Consent or not, 高雄 reaches nothing of 臺北's rows but the timeline: every registered
    screen and API of those models (show, edit, download, PDF, course page, REST get) is 404,
    lists, exports, API lists and dropdowns leave them out (the scope matrix walks the rest)."""
    from core.web.views import ScopedModelRestApi, ScopedModelView

    cases = _cases(db, national_id)
    hidden = _hidden_rows(db, cases)
    client = login_as("cm_khh")
    api, headers = api_as("cm_khh")
    problems = []
    for view in app.appbuilder.baseviews:
        if isinstance(view, ScopedModelView) and view.datamodel.obj in hidden:
            base = view.route_base
            for pk in hidden[view.datamodel.obj]:
                for url in (f"{base}/show/{pk}", f"{base}/edit/{pk}", f"{base}/pdf/{pk}", f"{base}/download/{pk}.pdf"):
                    status = client.get(url).status_code
                    if status != 404:
                        problems.append(f"{url} -> {status}")
            listed = client.get(f"{base}/list/?psize_{type(view).__name__}=500").text
            for pk in hidden[view.datamodel.obj]:
                if f"{base}/show/{pk}\"" in listed:
                    problems.append(f"{base} lists {pk}")
        if isinstance(view, ScopedModelRestApi) and view.datamodel.obj in hidden:
            for pk in hidden[view.datamodel.obj]:
                status = api.get(f"/api/v1/{view.resource_name}/{pk}", headers=headers).status_code
                if status != 404:
                    problems.append(f"API {view.resource_name}/{pk} -> {status}")
    for pk in hidden[Course]:
        for url in (f"/course/{pk}", f"/course/{pk}/records", f"/treatmentrecord/add?course={pk}"):
            if client.get(url).status_code != 404:
                problems.append(url)
    assert client.get(f"/treatmentrecord/add?case={cases['tpe'].id}").status_code == 404
    assert api.get(f"/api/v1/timeline/{cases['tpe'].id}", headers=headers).status_code == 404
    for url in (_timeline_url(cases["tpe"].id), _timeline_url(cases["tpe"].id, part=False), "/consent/timeline/x",
                "/consent/timeline/99999999"):  # fmt: skip
        assert client.get(url).status_code == 404, url
    # An API write naming 臺北's course by id answers like a course that does not exist.
    answer = api.post("/api/v1/treatmentrecord/", headers=headers, json={"course": hidden[Course][0]})
    assert answer.status_code == 422
    assert not problems, "\n".join(problems)


# ------------------------------------------------------------------ the access log
def test_a12_one_access_log_row_per_view_of_another_institutions_timeline(app, db, login_as, api_as):
    """One row per opening of the timeline (its fragment, its page, the API), none for a view of
    the case page, which only offers to open it: the log says who looked at the person's other
    institutions, not who opened the chart."""
    cases = _cases(db, GRANTED)
    before = _log_count(db)
    browser = login_as("cm_khh")
    assert browser.get(f"/caseview/show/{cases['khh'].id}").status_code == 200
    assert _log_count(db) == before
    assert browser.get(_timeline_url(cases["khh"].id)).status_code == 200
    assert _log_count(db) == before + 1
    assert browser.get(_timeline_url(cases["khh"].id, part=False)).status_code == 200
    assert _log_count(db) == before + 2
    client, headers = api_as("cm_khh")
    body = client.get(f"/api/v1/timeline/{cases['khh'].id}", headers=headers).json
    assert _log_count(db) == before + 3
    entry = db.session.get(ConsentAccess, body["access_log"])
    consent = db.session.scalar(select(Consent).where(Consent.patient_id == cases["khh"].patient_id,
                                                      Consent.revoked_at.is_(None)))  # fmt: skip
    assert (entry.username, entry.institution_id, entry.patient_id, entry.consent_id, entry.channel) == (
        "cm_khh", cases["khh"].institution_id, cases["khh"].patient_id, consent.id, "api")
    assert entry.rows_shown == sum(1 for k in ("courses", "records", "lab_results") for r in body[k] if not r["own"])
    # The person's own institution (and its county bureau) list it, and export it.
    for username in ("psy_tpe", "bureau_tpe"):
        listed = login_as(username).get("/consentaccess/list/?psize_ConsentAccessView=500")
        assert listed.status_code == 200 and f"/consentaccess/show/{entry.id}\"" in listed.text, username
    exported = login_as("psy_tpe").get("/consentaccess/export/xlsx")
    assert exported.status_code == 200
    # The case page's 誰查詢過此歷程 lists the person's entries (linked by the person's number).
    page = login_as("psy_tpe").get(f"/caseview/show/{cases['tpe'].id}").text
    assert f"_flt_0_patient_id={entry.patient_id}" in page
    listed = login_as("psy_tpe").get(f"/consentaccess/list/?_flt_0_patient_id={entry.patient_id}").text
    assert f"/consentaccess/show/{entry.id}\"" in listed


def test_a12_who_viewed_links_by_person_number_never_by_the_full_id(app, db, login_as):
    """The case page's 誰查詢過此歷程 put the person's full ID in its URL, for viewers who see
    IDs masked too; it now names the person by row number and lists that person's rows only."""
    import re

    from core.validators import mask_personal_id

    cases = _cases(db, GRANTED)
    login_as("cm_khh").get(_timeline_url(cases["khh"].id))  # a row for this person
    patient = cases["tpe"].patient
    page = login_as("psy_tpe").get(f"/caseview/show/{cases['tpe'].id}").text
    link = re.search(r'id="consent-log" href="([^"]+)"', page).group(1).replace("&amp;", "&")
    assert patient.national_id not in link and mask_personal_id(patient.national_id) not in link
    listed = login_as("psy_tpe").get(f"{link}&psize_ConsentAccessView=500")
    assert listed.status_code == 200
    shown = {int(pk) for pk in re.findall(r'/consentaccess/show/(\d+)"', listed.text)}
    mine = set(db.session.scalars(select(ConsentAccess.id).where(ConsentAccess.patient_id == patient.id)))
    assert shown and shown <= mine
    # Anything but a row number finds nothing (or is refused as bad input), never a 500.
    for hostile in ("%", "-1", "１２", "9" * 40, "=1+1"):
        answer = login_as("psy_tpe").get("/consentaccess/list/", query_string={"_flt_0_patient_id": hostile})
        assert answer.status_code in (200, 400) and "/consentaccess/show/" not in answer.text, hostile


def test_a12_the_access_log_is_append_only(app, db, login_as, api_as):
    from sqlalchemy.exc import DatabaseError

    from core.data.audit import AuditImmutableError

    cases = _cases(db, GRANTED)
    login_as("cm_khh").get(_timeline_url(cases["khh"].id))
    entry = db.session.query(ConsentAccess).order_by(ConsentAccess.id.desc()).first()
    entry.rows_shown = 0
    with pytest.raises(AuditImmutableError):
        db.session.flush()
    db.session.rollback()
    db.session.delete(db.session.get(ConsentAccess, entry.id))
    with pytest.raises(AuditImmutableError):
        db.session.flush()
    db.session.rollback()
    for statement in ("UPDATE consent_access SET rows_shown = 0", "DELETE FROM consent_access"):
        with pytest.raises(DatabaseError):
            db.session.execute(text(statement))
        db.session.rollback()
    client = login_as("psy_tpe")
    for url in (f"/consentaccess/edit/{entry.id}", f"/consentaccess/delete/{entry.id}"):
        assert post_form(app, client, url, {}).status_code in (404, 405)
    api, headers = api_as("psy_tpe")
    assert api.delete(f"/api/v1/consentaccess/{entry.id}", headers=headers).status_code in (404, 405)
    assert api.put(f"/api/v1/consentaccess/{entry.id}", headers=headers, json={}).status_code in (404, 405)
    db.session.expire_all()
    assert db.session.get(ConsentAccess, entry.id).rows_shown == entry.rows_shown


# ------------------------------------------------------------------ recording and revoking
@pytest.mark.usefixtures("storage_backend")  # issue 20: both storage backends
def test_a12_consent_is_per_person_and_a_new_one_supersedes_the_old(app, db, login_as, api_as, person):
    client = login_as("psy_tpe")
    api, headers = api_as("cm_khh")
    assert api.get(f"/api/v1/timeline/{person['khh']}", headers=headers).json["consent"] is None
    response = _record_consent(app, client, person["tpe"], db, lab_results=None)
    assert response.status_code == 302, visible_text(response.text)
    first = db.session.scalar(select(Consent).where(Consent.patient_id == person["patient"]))
    assert first.status == "active" and first.scopes == ["timeline"] and first.scan_sha256
    body = api.get(f"/api/v1/timeline/{person['khh']}", headers=headers).json
    assert body["consent"]["id"] == first.id
    assert any(not r["own"] for r in body["records"])
    assert not any(not r["own"] for r in body["lab_results"])  # not consented to
    assert "檢驗結果" in body["reason"]
    # A second consent, now with lab results: the first is superseded and kept.
    assert _record_consent(app, client, person["tpe"], db).status_code == 302
    db.session.expire_all()
    consents = db.session.scalars(select(Consent).where(Consent.patient_id == person["patient"]).order_by(Consent.id)).all()
    assert [c.status for c in consents] == ["superseded", "active"]
    assert consents[0].superseded_by_id == consents[1].id
    body = api.get(f"/api/v1/timeline/{person['khh']}", headers=headers).json
    assert any(not r["own"] and r["substance"] == "嗎啡" for r in body["lab_results"])
    history = client.get(f"/consent/show/{consents[1].id}")
    assert history.text.count("/consent/show/") >= 2
    # The database holds at most one current consent per person.
    from sqlalchemy.exc import IntegrityError

    duplicate = Consent(**{c: getattr(consents[1], c) for c in (
        "patient_id", "institution_id", "case_id", "signed_on", "cross_hospital", "lab_results",
        "scan_name", "scan_mime", "scan_size", "scan_sha256")})  # fmt: skip
    db.session.add(duplicate)
    with pytest.raises(IntegrityError):
        db.session.flush()
    db.session.rollback()


def _second_app(app, database_url):
    from app import create_app

    keys = ("SQLALCHEMY_DATABASE_URI", "UPLOAD_FOLDER", "SECRET_KEY", "DEMO_PASSWORD", "MAIL_FOLDER",
            "RATELIMIT_STORAGE_URI", "AUTH_RATE_LIMIT", "APPLY_RATE_LIMIT", "EXPORT_ASYNC_THRESHOLD")  # fmt: skip
    return create_app({"TESTING": True, "CACHE_TYPE": "SimpleCache", **{k: app.config[k] for k in keys}})


def test_a12_revocation_is_immediate_in_another_app_instance_on_the_same_database(
    app, db, login_as, person, database_url
):
    """Two app instances, each with its own cache, on one database: a revocation made through
    one is seen by the very next timeline request of the other."""
    from seed.testing import login

    other = _second_app(app, database_url)
    reader = other.test_client()
    assert login(other, reader, "cm_khh").status_code == 302
    client = login_as("psy_tpe")
    assert _record_consent(app, client, person["tpe"], db).status_code == 302
    consent = db.session.scalar(select(Consent).where(Consent.patient_id == person["patient"]))
    page = reader.get(_timeline_url(person["khh"]))
    tpe_name = db.session.get(Case, person["tpe"]).institution.name
    assert tpe_name in visible_text(page.text)
    revoked = post_form(app, client, f"/consent/revoke/{consent.id}", {"revoked_on": "115/01/05", "reason": "個案撤回"})
    assert revoked.status_code == 302
    page = reader.get(_timeline_url(person["khh"]))
    seen = visible_text(page.text)
    i = seen.find(tpe_name)
    assert tpe_name not in seen, seen[max(0, i - 300): i + 100]
    assert "沒有跨院查詢同意" in seen
    body = reader.get(f"/api/v1/timeline/{person['khh']}").json
    assert body["consent"] is None and all(r["own"] for r in body["records"])
    # 高雄 no longer sees a consent recorded at 臺北 that no longer holds.
    assert reader.get(f"/consent/show/{consent.id}").status_code == 404
    with other.app_context():
        from core.extensions import db as other_db

        other_db.session.remove()
        other_db.engine.dispose()


# ------------------------------------------------------------------ FHIR
def test_a12_fhir_consent_is_valid_r4_with_one_permit_provision_per_scope(app, db, api_as):
    from fhir.resources.R4B.consent import Consent as FhirConsent

    cases = _cases(db, GRANTED)
    consent = db.session.scalar(select(Consent).where(Consent.patient_id == cases["tpe"].patient_id,
                                                      Consent.revoked_at.is_(None)))  # fmt: skip
    api, headers = api_as("cm_khh")
    response = api.get(f"/api/v1/consent/{consent.id}/fhir", headers=headers)
    assert response.status_code == 200
    resource = FhirConsent.model_validate(response.json)
    assert resource.status == "active" and resource.provision.type == "deny"
    permits = resource.provision.provision
    assert [p.type for p in permits] == ["permit", "permit"]
    assert {p.code[0].coding[0].code for p in permits} == {"timeline", "lab_results"}
    assert resource.sourceAttachment.hash
    # A revoked consent is inactive; it is 臺北's history, 404 to 高雄.
    revoked = db.session.scalar(select(Consent).where(
        Consent.patient_id == _cases(db, REVOKED)["tpe"].patient_id))  # fmt: skip
    assert api.get(f"/api/v1/consent/{revoked.id}/fhir", headers=headers).status_code == 404
    tpe, tpe_headers = api_as("psy_tpe")
    assert FhirConsent.model_validate(tpe.get(f"/api/v1/consent/{revoked.id}/fhir", headers=tpe_headers).json).status == "inactive"
    for forged in ("999999999", "abc", "0", "1e3"):
        assert api.get(f"/api/v1/consent/{forged}/fhir", headers=headers).status_code == 404


# ------------------------------------------------------------------ bad input
def _consents(db) -> int:
    db.session.expire_all()
    return db.session.query(Consent).count()


def test_a12_bad_input_is_refused_with_a_message_and_nothing_changes(app, db, login_as, api_as, person):
    psy, cm = login_as("psy_tpe"), login_as("cm_khh")
    before = _consents(db)
    # A consent for a person of another institution, without a case here: as if no such case.
    assert _record_consent(app, cm, person["tpe"], db).status_code == 404
    assert _record_consent(app, psy, person["khh"], db).status_code == 404
    # The unsigned blank form, a fake scan, no scan: the form comes back with the message and what was typed.
    blank = psy.get(f"/consent/form/{person['tpe']}").data
    for scan, message in ((blank, "未簽名"), (b"%PDF-1.4 not a pdf at all", "不是"), (b"", "上傳")):
        response = _record_consent(app, psy, person["tpe"], db, scan=scan, signed_on="114/03/05")
        assert response.status_code == 200
        seen = visible_text(response.text)
        assert message in seen, seen[:2000]
        assert 'value="114/03/05"' in response.text
    # Lab results without lookup, a date in the future.
    response = _record_consent(app, psy, person["tpe"], db, cross_hospital="no")
    assert "才能包含檢驗結果" in visible_text(response.text)
    response = _record_consent(app, psy, person["tpe"], db, signed_on="199/01/01")
    assert response.status_code == 200 and "未來" in visible_text(response.text)
    assert _consents(db) == before
    # Revocation by someone outside the person's institutions, a forged id, no reason.
    assert _record_consent(app, psy, person["tpe"], db).status_code == 302
    consent = db.session.scalar(select(Consent).where(Consent.patient_id == person["patient"]))
    outsider = login_as("psy_clinic")
    assert post_form(app, outsider, f"/consent/revoke/{consent.id}",
                     {"revoked_on": "115/01/05", "reason": "x"}).status_code == 404  # fmt: skip
    api, headers = api_as("psy_clinic")
    assert api.post(f"/api/v1/consent/{consent.id}/revoke", headers=headers,
                    json={"revoked_on": "2026-01-05", "reason": "x"}).status_code == 404  # fmt: skip
    for forged in ("999999999", "abc", "-1"):
        assert post_form(app, psy, f"/consent/revoke/{forged}", {"reason": "x"}).status_code == 404
        assert psy.get(f"/consent/show/{forged}").status_code == 404
        assert psy.get(f"/consent/scan/{forged}").status_code == 404
    response = post_form(app, psy, f"/consent/revoke/{consent.id}", {"revoked_on": "115/01/05", "reason": " "})
    assert response.status_code == 200 and "原因" in visible_text(response.text)
    api, headers = api_as("psy_tpe")
    answer = api.post(f"/api/v1/consent/{consent.id}/revoke", headers=headers, json={"revoked_on": "2026-01-05"})
    assert answer.status_code == 422 and answer.json["message"]
    assert api.post(f"/api/v1/consent/{consent.id}/revoke", headers=headers, data="x").status_code == 400
    db.session.expire_all()
    assert db.session.get(Consent, consent.id).revoked_at is None
    # And the one action that is allowed.
    answer = api.post(f"/api/v1/consent/{consent.id}/revoke", headers=headers,
                      json={"revoked_on": "2026-01-05", "reason": "個案撤回"})  # fmt: skip
    assert answer.status_code == 200 and answer.json["status"] == "revoked"
    again = api.post(f"/api/v1/consent/{consent.id}/revoke", headers=headers,
                     json={"revoked_on": "2026-01-05", "reason": "再一次"})  # fmt: skip
    assert again.status_code == 422


def test_a12_an_expired_consent_grants_nothing(app, db, login_as, api_as, person):
    from core import clock
    from core.dates import TAIPEI

    psy = login_as("psy_tpe")
    assert _record_consent(app, psy, person["tpe"], db, valid_until="120/12/31").status_code == 302
    api, headers = api_as("cm_khh")
    assert api.get(f"/api/v1/timeline/{person['khh']}", headers=headers).json["consent"] is not None
    with clock.frozen(dt.datetime(2032, 1, 2, 9, 0, tzinfo=TAIPEI)):
        body = api.get(f"/api/v1/timeline/{person['khh']}", headers=headers).json
        consent = db.session.scalar(select(Consent).where(Consent.patient_id == person["patient"]))
        assert consent.status == "expired"
    assert body["consent"] is None and all(r["own"] for r in body["records"])
