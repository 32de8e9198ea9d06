"""A1: the addiction programme's institutions (registry codes for non-hospital ones, the
designations and who may make them), its roles and demo users, account applications for
them, and the organisations that never get an account."""

from __future__ import annotations

import datetime as dt
import io
import re

import pytest
from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError

from core.data.scope import Scope, ScopeKind
from domain.addiction.designations import DesignationError, check_designation
from models.accounts.application import AccountApplication
from models.addiction.designation import Designation
from models.addiction.staff import StaffLicence
from models.platform.user import ScopedUser
from models.registry.institution import Institution, InstitutionKind
from models.registry.practitioner import Practitioner
from models.registry.reference import County
from seed.addiction.registry import DEMO_STAFF, demo_addiction_institution
from seed.documents import blank_pdf
from tests.conftest import csrf_token, post_form, visible_text


def _t(app, msgid, **values) -> str:
    """A message as the application shows it (zh_TW once babel/pending is applied)."""
    from flask_babel import gettext

    with app.test_request_context():
        return gettext(msgid, **values)


def _designations(db):
    db.session.expire_all()
    return db.session.query(Designation).count()


def _county(db, code):
    return db.session.scalar(select(County).where(County.code == code))


def _medical(db, county_code, not_designated=True):
    """A medical institution of a county (not one of the demo's designated ones)."""
    query = (
        select(Institution).join(County, County.id == Institution.county_id)
        .where(County.code == county_code, Institution.kind == "medical")
        .order_by(Institution.id)
    )  # fmt: skip
    if not_designated:
        query = query.where(~Institution.id.in_(select(Designation.institution_id)))
    return db.session.scalars(query).first()


# ------------------------------------------------------------------ registry codes
def test_a1_non_hospital_institution_gets_a_registry_code_never_a_fake_nhi_code(app, db, login_as):
    """A1: 心理治療所 / 社工師事務所 may have no NHI code; the system gives them 'R' + 9 digits."""
    for key in ("clinic_tpe", "office_tpe"):
        institution = demo_addiction_institution(key)
        assert institution.nhi_code is None and institution.level_id is None
        assert re.fullmatch(r"R\d{9}", institution.registry_code)
        assert institution.kind != InstitutionKind.MEDICAL.value
    admin = login_as("admin")
    tpe = _county(db, "TPE")
    before = db.session.query(Institution).count()
    form = {"kind": "social_work_office", "nhi_code": "", "name": "測試社工師事務所",
            "county": str(tpe.id), "level": "__None", "address": "", "phone": ""}  # fmt: skip
    response = post_form(app, admin, "/institutionview/add", form)
    assert response.status_code == 302, visible_text(response.text)[:300]
    db.session.expire_all()
    created = db.session.scalar(select(Institution).where(Institution.name == "測試社工師事務所"))
    codes = sorted(db.session.scalars(select(Institution.registry_code).where(
        Institution.registry_code.is_not(None))))  # fmt: skip
    assert created.nhi_code is None and created.registry_code == codes[-1]
    assert len(set(codes)) == len(codes) and not created.registry_code.isdigit()
    # A medical institution keeps needing its NHI code (the cessation programme's paths).
    response = post_form(app, admin, "/institutionview/add", {**form, "kind": "medical", "name": "無代碼醫院"})
    assert _t(app, "A medical institution must have its NHI institution code.") in visible_text(response.text)
    # ... and its level.
    response = post_form(app, admin, "/institutionview/add",
                         {**form, "kind": "medical", "name": "無層級醫院", "nhi_code": "0999999999"},
                         follow_redirects=True)  # fmt: skip
    assert _t(app, "A medical institution must have its level.") in visible_text(response.text)
    db.session.expire_all()
    assert db.session.query(Institution).count() == before + 1
    # The database refuses an institution with neither code, whatever the path.
    with pytest.raises(IntegrityError):
        db.session.execute(insert(Institution).values(
            kind="psychotherapy_clinic", name="x", county_id=tpe.id,
            created_on=dt.datetime(2025, 1, 1), changed_on=dt.datetime(2025, 1, 1)))  # fmt: skip
    db.session.rollback()
    db.session.delete(created)
    db.session.commit()


def test_a1_cessation_visit_form_offers_medical_institutions_only(app, db, login_as):
    """A1: a 心理治療所 / 社工師事務所 belongs to the addiction programme only: the visit form's
    institution dropdown (as the national admin, who sees every institution) never offers one."""
    others = [demo_addiction_institution(key).name for key in ("clinic_tpe", "office_tpe")]
    medical = _medical(db, "TPE", not_designated=False).name
    response = login_as("admin").get("/visitview/add")
    assert response.status_code == 200
    field = re.search(r'(?s)<select[^>]*id="institution".*?</select>', response.text).group(0)
    options = re.findall(r"(?s)<option[^>]*>(.*?)</option>", field)
    assert any(medical in o for o in options)
    assert not [o for o in options for name in others if name in o]


# ------------------------------------------------------------------ designations
def test_a1_bureau_cannot_designate_outside_its_county_or_a_non_alcohol_kind(app, db, login_as, api_as):
    """A1: a county bureau designates only alcohol-treatment institutions, only in its county;
    refused with a zh_TW message, and nothing is stored (form and API)."""
    tpe_hospital, khh_hospital = _medical(db, "TPE"), _medical(db, "KHH")
    before = _designations(db)
    bureau = login_as("bureau_tpe")
    form = {"institution": str(tpe_hospital.id), "kind": "drug_treatment", "document_number": "",
            "start_date": "114/01/01", "end_date": ""}  # fmt: skip
    response = post_form(app, bureau, "/designationview/add", form)
    only_alcohol = _t(app, "A county bureau designates only alcohol-addiction treatment service institutions.")
    assert only_alcohol in visible_text(response.text)
    assert _designations(db) == before
    client, headers = api_as("bureau_tpe")
    body = {"institution": tpe_hospital.id, "kind": "drug_treatment", "start_date": "2025-01-01"}
    response = client.post("/api/v1/designation/", json=body, headers=headers)
    assert response.status_code == 422 and response.json["message"] == only_alcohol
    # Another county's institution: out of scope, answered as if it did not exist (trap 10).
    response = client.post("/api/v1/designation/", json={**body, "kind": "alcohol_treatment",
                           "institution": khh_hospital.id}, headers=headers)  # fmt: skip
    assert response.status_code in (404, 422) and _designations(db) == before
    # The rule itself, for a county scope that could name the institution.
    with app.test_request_context():
        item = Designation(institution=khh_hospital, kind="alcohol_treatment", start_date=dt.date(2025, 1, 1))
        scope = Scope(kind=ScopeKind.COUNTY, county_ids=frozenset({tpe_hospital.county_id}))
        with pytest.raises(DesignationError) as refused:
            check_designation(item, scope)
        assert str(refused.value) == _t(app, "A county bureau designates only institutions of its own county.")
    db.session.rollback()
    # Its own county's alcohol-treatment designation is the bureau's to make, for its county.
    response = client.post("/api/v1/designation/", json={**body, "kind": "alcohol_treatment"}, headers=headers)
    assert response.status_code == 201, response.json
    made = db.session.get(Designation, response.json["id"])
    assert made.county_id == tpe_hospital.county_id
    # ... and a psychotherapy-clinic designation needs a psychotherapy clinic.
    ministry, m_headers = api_as("ministry")
    response = ministry.post("/api/v1/designation/", json={**body, "kind": "psychotherapy_clinic"}, headers=m_headers)
    assert response.status_code == 422
    response = ministry.post("/api/v1/designation/", json=body, headers=m_headers)
    assert response.status_code == 201 and db.session.get(Designation, response.json["id"]).county_id is None
    for pk in (made.id, response.json["id"]):
        db.session.delete(db.session.get(Designation, pk))
    db.session.commit()


def test_a1_institution_page_lists_programmes_to_those_who_may_read_them(app, db, login_as):
    """A1: an institution's page lists its cessation contract periods and its addiction
    designations, each only to a viewer who may read them."""
    hospital = demo_addiction_institution("hospital_tpe")
    url = f"/institutionview/show/{hospital.id}"
    ministry = login_as("ministry").get(url).text.lower()
    assert "designationview" in ministry and "contractperiodview" in ministry
    office = login_as("office").get(url)
    assert office.status_code == 200
    assert "designationview" not in office.text.lower()
    treatment = login_as("dr_tpe").get(url)
    assert treatment.status_code == 200 and "designationview" in treatment.text.lower()
    assert "contractperiodview" not in treatment.text.lower()


# ------------------------------------------------------------------ roles and demo users
def test_a1_demo_staff_are_linked_to_a_licensed_staff_profile(app, db):
    """A1/A14: each addiction demo user is linked to a practitioner with a licence of their
    profession valid today, at their institution; the bureaus and the Ministry run both programmes."""
    today = dt.date.today()
    for username, (key, _, _, profession, _) in DEMO_STAFF.items():
        user = db.session.query(ScopedUser).filter_by(username=username).one()
        assert [r.name for r in user.roles] == ["Treatment"]
        assert [i.id for i in user.scope_institutions] == [demo_addiction_institution(key).id]
        licences = db.session.scalars(select(StaffLicence).where(
            StaffLicence.practitioner_id == user.practitioner_id,
            StaffLicence.profession == profession.value)).all()  # fmt: skip
        assert any(lic.covers(today) for lic in licences), username
    for username, role in (("bureau_tpe", "AddictionBureau"), ("bureau_khh", "AddictionBureau"),
                           ("ministry", "AddictionMinistry")):  # fmt: skip
        user = db.session.query(ScopedUser).filter_by(username=username).one()
        assert role in {r.name for r in user.roles}
    assert demo_addiction_institution("hospital_khh").county.code == "KHH"


# ------------------------------------------------------------------ applications
def _apply(app, client, **overrides):
    data = {
        "applicant_name": "周心怡", "email": "staff.applicant@example.org", "phone": "(02)2351-0120",
        "job_title": "心理師", "organisation_type": "psychotherapy_clinic",
        "requested_role": "treatment", "nhi_code": "", "county": "0", "national_id": "",
        "supervisor_name": "李主任", "website": "",
    }  # fmt: skip
    data.update(overrides)
    data["form_file"] = (io.BytesIO(blank_pdf()), "申請表.pdf")
    data["csrf_token"] = csrf_token(app, client)
    return client.post("/apply/", data=data, content_type="multipart/form-data")


def _applications(db, email):
    db.session.expire_all()
    return db.session.query(AccountApplication).filter_by(email=email).all()


@pytest.mark.parametrize("organisation", ["prosecutors_office", "ngo"])
def test_a1_prosecutors_offices_and_ngos_are_refused_an_account(app, db, login_as, organisation):
    """A1: prosecutors' offices and NGOs get no account: the application form and the admin's
    user form refuse them with a message, and nothing is stored."""
    email = f"{organisation}@example.org"
    response = _apply(app, app.test_client(), organisation_type=organisation, email=email,
                      requested_role="facility", nhi_code=_medical(db, "TPE").nhi_code)  # fmt: skip
    refusal = _t(app, "Prosecutors' offices and NGOs cannot have an account of this system.")
    assert response.status_code == 200 and refusal in visible_text(response.text)
    assert _applications(db, email) == []
    admin = login_as("admin")
    role = db.session.query(ScopedUser).filter_by(username="office").one().roles[0].id
    response = post_form(app, admin, "/users/add", {
        "first_name": "檢", "last_name": "察", "username": f"{organisation}.user", "email": email,
        "active": "y", "roles": str(role), "password": "Strong-Pass-2025#x",
        "conf_password": "Strong-Pass-2025#x", "organisation_type": organisation, "scope_kind": "",
    })  # fmt: skip
    assert refusal in visible_text(response.text)
    assert app.appbuilder.sm.find_user(username=f"{organisation}.user") is None


def test_a1_application_offers_the_addiction_roles_and_approval_links_a_staff_profile(app, db, login_as):
    """A1/A13: the application offers treatment staff (with professions), the county bureau /
    毒防局 and the Ministry's addiction roles; approving a treatment-staff application opens an
    account at the institution, linked to the practitioner of the applicant's national ID."""
    page = app.test_client().get("/apply/").text
    for value in ("treatment", "addiction_bureau", "addiction_ministry"):
        assert f'value="{value}"' in page
    clinic = demo_addiction_institution("clinic_tpe")
    # An institution outside the addiction programme, or a missing profession, is refused.
    response = _apply(app, app.test_client(), nhi_code=_medical(db, "KHH").nhi_code,
                      national_id="A123456789", professions=["psychologist"])  # fmt: skip
    assert _t(app, "No institution of the addiction programme has this NHI or registry code.") in visible_text(response.text)
    response = _apply(app, app.test_client(), nhi_code=clinic.registry_code, national_id="A123456789")
    assert _t(app, "Addiction treatment staff must choose their profession(s).") in visible_text(response.text)
    response = _apply(app, app.test_client(), nhi_code=clinic.registry_code, national_id="A123456788",
                      professions=["psychologist"])  # fmt: skip
    assert _t(app, "Invalid national ID or resident certificate number: check the letters and the check digit.") in visible_text(response.text)
    assert _applications(db, "staff.applicant@example.org") == []
    response = _apply(app, app.test_client(), nhi_code=clinic.registry_code.lower(),
                      national_id="a123456789", professions=["psychologist", "case_manager"])  # fmt: skip
    assert response.status_code == 302, visible_text(response.text)[:400]
    (application,) = _applications(db, "staff.applicant@example.org")
    assert application.institution_id == clinic.id and application.national_id == "A123456789"
    admin = login_as("admin")
    response = admin.post(f"/accountapplicationview/action/approve/{application.id}",
                          data={"csrf_token": csrf_token(app, admin)})  # fmt: skip
    assert response.status_code == 302
    db.session.expire_all()
    user = db.session.query(ScopedUser).filter_by(username="staff.applicant@example.org").one()
    assert [r.name for r in user.roles] == ["Treatment"]
    assert [i.id for i in user.scope_institutions] == [clinic.id]
    profile = db.session.get(Practitioner, user.practitioner_id)
    assert profile.national_id == "A123456789" and profile.name == "周心怡"
    # A second account of the same person (same ID and name) finds the same profile.
    response = _apply(app, app.test_client(), email="staff.second@example.org",
                      nhi_code=clinic.registry_code, national_id="A123456789",
                      professions=["psychologist"])  # fmt: skip
    (second,) = _applications(db, "staff.second@example.org")
    admin.post(f"/accountapplicationview/action/approve/{second.id}", data={"csrf_token": csrf_token(app, admin)})
    db.session.expire_all()
    other = db.session.query(ScopedUser).filter_by(username="staff.second@example.org").one()
    assert other.practitioner_id == profile.id
    assert db.session.query(Practitioner).filter_by(national_id="A123456789").count() == 1


# ------------------------------------------------------------------ the migration
def test_a1_migration_goes_down_with_non_hospital_institutions_and_up_again(tmp_path):
    """A1's migration: the CHECKs hold after upgrade (a medical institution needs its NHI
    code); downgrading removes the institutions without one and what names them, and goes up again."""
    from flask_migrate import downgrade, upgrade
    from sqlalchemy import text

    from app import create_app
    from core.extensions import db

    scratch = create_app({"SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'a1.db'}",
                          "CACHE_TYPE": "SimpleCache", "UPLOAD_FOLDER": str(tmp_path / "up")})  # fmt: skip
    with scratch.app_context():
        upgrade()
        run = db.session.execute
        run(text("INSERT INTO county (id, code, name, bureau_name, sort_order) VALUES (1, 'TPE', '臺北市', '臺北市政府衛生局', 1)"))
        now = "'2025-01-01 00:00:00'"
        run(text(f"INSERT INTO institution (id, kind, registry_code, name, county_id, created_on, changed_on) "
                 f"VALUES (1, 'psychotherapy_clinic', 'R000000001', '心晴心理治療所', 1, {now}, {now})"))
        run(text(f"INSERT INTO designation (institution_id, kind, start_date, created_on, changed_on) "
                 f"VALUES (1, 'psychotherapy_clinic', '2025-01-01', {now}, {now})"))
        db.session.commit()
        with pytest.raises(IntegrityError):
            run(text(f"INSERT INTO institution (kind, registry_code, name, county_id, created_on, changed_on) "
                     f"VALUES ('medical', 'R000000002', '無代碼醫院', 1, {now}, {now})"))
        db.session.rollback()
        downgrade(revision="366faee71a20")
        assert run(text("SELECT count(*) FROM institution")).scalar() == 0
        assert run(text("SELECT count(*) FROM designation")).scalar() == 0
        db.session.commit()
        upgrade()
        db.session.remove()
        db.engine.dispose()
