"""Accounts (A13): online application → approval → one-time link → login, in scope;
lockout on every login path; sessions that really end; the password policy everywhere."""

from __future__ import annotations

import datetime as dt
import io
import re

import pytest

from app import create_app
from core.mail import read_mails
from models.accounts.application import AccountApplication
from models.platform.audit import AuditLog
from models.platform.session import LoginThrottle, OneTimeToken, UserSession
from models.platform.user import ScopedUser
from models.registry.institution import Institution
from models.registry.reference import County
from seed.documents import blank_pdf
from tests.conftest import PASSWORD, csrf_token, login, post_form, visible_text

STRONG = "Quit-Smoking-2025#"


def _apply(app, client, **overrides):
    data = {
        "applicant_name": "張家豪",
        "email": "applicant@example.org",
        "phone": "(02)2351-0120",
        "job_title": "個案管理師",
        "requested_role": "facility",
        "nhi_code": "",
        "county": "0",
        "supervisor_name": "李主任",
        "website": "",
    }
    upload = overrides.pop("upload", (io.BytesIO(blank_pdf()), "申請表.pdf"))
    data.update(overrides)
    data["form_file"] = upload
    data["csrf_token"] = csrf_token(app, client)
    return client.post("/apply/", data=data, content_type="multipart/form-data")


def _applications(db, email):
    db.session.expire_all()
    return db.session.query(AccountApplication).filter_by(email=email).all()


def _link_from_mail(app, email):
    with app.app_context():
        mails = read_mails(email)
    assert mails, f"no mail to {email}"
    return re.search(r"https?://[^\s]+/account/set-password/[\w-]+", mails[-1][1]).group(0)


def _path(link):
    return "/" + link.split("/", 3)[3]


def _institution(db, county_code):
    return (
        db.session.query(Institution).join(County, County.id == Institution.county_id)
        .filter(County.code == county_code, Institution.nhi_code.is_not(None))  # contracted (A1)
        .order_by(Institution.id.desc()).first()
    )  # fmt: skip


def _approve(app, client, application_id):
    return client.post(
        f"/accountapplicationview/action/approve/{application_id}",
        data={"csrf_token": csrf_token(app, client)},
    )


def test_a13_facility_applicant_is_approved_by_their_bureau_and_signs_in_in_scope(app, db, login_as):
    """A13: apply online → the county's bureau approves → mailed link → password → login."""
    institution = _institution(db, "TPE")
    email = "tpe.nurse@example.org"
    response = _apply(app, app.test_client(), email=email, nhi_code=institution.nhi_code)
    assert response.status_code == 302 and response.headers["Location"].endswith("/apply/done")
    (application,) = _applications(db, email)
    assert application.status == "pending" and application.institution_id == institution.id

    # Another county's bureau can neither see nor approve it.
    khh = login_as("bureau_khh")
    assert khh.get(f"/accountapplicationview/show/{application.id}").status_code == 404
    assert _approve(app, khh, application.id).status_code == 404
    assert _applications(db, email)[0].status == "pending"

    tpe = login_as("bureau_tpe")
    assert _approve(app, tpe, application.id).status_code == 302
    (application,) = _applications(db, email)
    assert application.status == "approved"
    user = db.session.get(ScopedUser, application.user_id)
    assert [r.name for r in user.roles] == ["Facility"]
    assert user.scope_kind == "facility" and [i.id for i in user.scope_institutions] == [institution.id]
    assert user.active is False  # until the password is set

    link = _path(_link_from_mail(app, email))
    fresh = app.test_client()
    weak = post_form(app, fresh, link, {"password": "short", "confirm": "short"})
    assert weak.status_code == 200 and "密碼不符合規定" in visible_text(weak.text)
    done = post_form(app, fresh, link, {"password": STRONG, "confirm": STRONG})
    assert done.status_code == 302
    assert app.test_client().get(link).status_code == 410  # single use

    client = app.test_client()
    assert login(app, client, email, STRONG).status_code == 302
    listed = re.findall(r"/institutionview/show/(\d+)", client.get("/institutionview/list/").text)
    assert {int(pk) for pk in listed} == {institution.id}


def test_a13_bureau_applicant_is_approved_by_the_admin(app, db, login_as):
    email = "khh.officer@example.org"
    khh = db.session.query(County).filter_by(code="KHH").one()
    assert _apply(app, app.test_client(), email=email, requested_role="bureau", county=str(khh.id)).status_code == 302
    (application,) = _applications(db, email)
    assert login_as("bureau_khh").get(f"/accountapplicationview/show/{application.id}").status_code == 404
    assert _approve(app, login_as("admin"), application.id).status_code == 302
    db.session.expire_all()
    user = db.session.get(ScopedUser, _applications(db, email)[0].user_id)
    assert user.scope_kind == "county" and user.scope_county_id == khh.id
    assert [r.name for r in user.roles] == ["Bureau"]
    link = _path(_link_from_mail(app, email))
    assert post_form(app, app.test_client(), link, {"password": STRONG, "confirm": STRONG}).status_code == 302
    client = app.test_client()
    assert login(app, client, email, STRONG).status_code == 302
    assert "高雄市政府衛生局" in client.get("/").text


def test_rejection_needs_a_reason_and_mails_it(app, db, login_as):
    email = "rejected@example.org"
    _apply(app, app.test_client(), email=email, nhi_code=_institution(db, "TPE").nhi_code)
    (application,) = _applications(db, email)
    client = login_as("bureau_tpe")
    empty = post_form(app, client, f"/accountapplicationview/reject/{application.id}", {"reason": ""})
    assert empty.status_code == 200 and _applications(db, email)[0].status == "pending"
    reason = "申請表未蓋機構章，請補正後重新申請。"
    assert post_form(app, client, f"/accountapplicationview/reject/{application.id}", {"reason": reason}).status_code == 302
    assert _applications(db, email)[0].status == "rejected"
    with app.app_context():
        assert reason in read_mails(email)[-1][1]


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"nhi_code": "0000000001"}, "查無此醫事機構代碼"),
        ({"email": "not-an-email"}, "電子郵件"),
        ({"upload": (io.BytesIO(b"this is not a pdf"), "form.pdf")}, "不是 PDF"),
        ({"upload": (io.BytesIO(b"%PDF-1.4 broken"), "form.pdf")}, "不是 PDF"),
        ({"upload": (io.BytesIO(b"%PDF-" + b"0" * (6 * 1024 * 1024)), "big.pdf")}, "大於"),
        ({"requested_role": "bureau", "county": "0"}, "衛生局"),
    ],
)
def test_bad_application_input_stores_nothing(app, db, overrides, message):
    email = overrides.get("email", "bad.input@example.org")
    folder = app.config["UPLOAD_FOLDER"] + "/applications"
    import os

    before_files = set(os.listdir(folder)) if os.path.isdir(folder) else set()
    before = db.session.query(AccountApplication).count()
    nhi = db.session.query(Institution.nhi_code).first()[0]
    response = _apply(app, app.test_client(), **{"email": email, "nhi_code": nhi, **overrides})
    assert response.status_code == 200
    assert message in visible_text(response.text)
    db.session.expire_all()
    assert db.session.query(AccountApplication).count() == before
    assert (set(os.listdir(folder)) if os.path.isdir(folder) else set()) == before_files


def test_honeypot_submissions_are_thanked_and_dropped(app, db):
    before = db.session.query(AccountApplication).count()
    response = _apply(app, app.test_client(), website="http://spam.invalid",
                      nhi_code=_institution(db, "TPE").nhi_code)  # fmt: skip
    assert response.status_code == 302
    assert db.session.query(AccountApplication).count() == before


def test_the_form_confirms_the_institution_name_for_a_code(app, db):
    institution = _institution(db, "KHH")
    client = app.test_client()
    found = client.get(f"/apply/institution?code={institution.nhi_code}")
    assert found.status_code == 200 and found.json["name"] == institution.name
    assert client.get("/apply/institution?code=0000000001").status_code == 404


# ------------------------------------------------------------------ login security
def _make_user(app, db, username, password=STRONG, role="Office"):
    sm = app.appbuilder.sm
    user = sm.find_user(username=username)
    if user is None:
        user = sm.add_user(username, "測試", "帳號", f"{username}@example.org", [sm.find_role(role)], password)
    user = db.session.get(ScopedUser, user.id)
    user.scope_kind = "national"
    db.session.query(LoginThrottle).filter_by(username=username.lower()).delete()
    db.session.commit()
    return user


def _web_login(app, username, password):
    client = app.test_client()
    response = login(app, client, username, password)
    return response, client


def _lock_message(client):
    return "15 分鐘" in visible_text(client.get("/login/").text)


def test_five_failures_lock_the_account_on_web_api_and_api_key(app, db, login_as):
    user = _make_user(app, db, "lock.me")
    for _ in range(3):
        response, _ = _web_login(app, "lock.me", "wrong-password-1A!")
        assert "/login" in response.headers["Location"]
    api = app.test_client()
    for _ in range(2):  # the API login counts on the same counter
        assert api.post("/api/v1/security/login",
                        json={"username": "lock.me", "password": "nope", "provider": "db"}).status_code == 401  # fmt: skip
    response, client = _web_login(app, "lock.me", STRONG)  # right password, but locked
    assert "/login" in response.headers["Location"] and _lock_message(client)
    assert api.post("/api/v1/security/login",
                    json={"username": "lock.me", "password": STRONG, "provider": "db"}).status_code == 401  # fmt: skip
    with app.test_request_context():
        raw = app.appbuilder.sm.create_api_key(db.session.get(ScopedUser, user.id), name="k")["key"]
    db.session.remove()
    assert api.get("/api/v1/institution/", headers={"Authorization": f"Bearer {raw}"}).status_code in (401, 403)

    # The helpdesk unlocks it; everything works again.
    helpdesk = login_as("helpdesk")
    assert helpdesk.post(f"/accounts/action/unlock/{user.id}",
                         data={"csrf_token": csrf_token(app, helpdesk)}).status_code == 302  # fmt: skip
    response, _ = _web_login(app, "lock.me", STRONG)
    assert "/login" not in response.headers["Location"]
    assert api.get("/api/v1/institution/", headers={"Authorization": f"Bearer {raw}"}).status_code == 200
    actions = [e.action for e in db.session.query(AuditLog).filter_by(model="Account", row_key=str(user.id))]
    for expected in ("login_failed", "locked", "login_refused", "unlocked", "login"):
        assert expected in actions


def test_lockout_message_does_not_reveal_whether_the_username_exists(app, db):
    for username in ("ghost.user.xyz", "lock.twin"):
        if username == "lock.twin":
            _make_user(app, db, username)
        for _ in range(5):
            _web_login(app, username, "wrong-password-1A!")
        response, client = _web_login(app, username, "wrong-password-1A!")
        assert _lock_message(client), username


def test_a_lock_expires_after_15_minutes(app, db):
    _make_user(app, db, "lock.expiry")
    for _ in range(5):
        _web_login(app, "lock.expiry", "wrong-password-1A!")
    state = db.session.get(LoginThrottle, "lock.expiry")
    assert state.locked_until is not None
    state.locked_until = dt.datetime.now(dt.UTC).replace(tzinfo=None) - dt.timedelta(seconds=1)
    db.session.commit()
    response, _ = _web_login(app, "lock.expiry", STRONG)
    assert "/login" not in response.headers["Location"]


def test_a_cookie_captured_before_logout_no_longer_works(app, db):
    _make_user(app, db, "stale.cookie")
    response, client = _web_login(app, "stale.cookie", STRONG)
    captured = client.get_cookie("session").value
    assert client.get("/institutionview/list/").status_code == 200
    client.get("/logout/")
    thief = app.test_client()
    thief.set_cookie("session", captured)
    response = thief.get("/institutionview/list/")
    assert response.status_code == 302 and "/login" in response.headers["Location"]


@pytest.mark.parametrize("field, age", [("last_seen_at", dt.timedelta(minutes=31)),
                                         ("created_at", dt.timedelta(hours=8, minutes=1))])  # fmt: skip
def test_sessions_end_after_30_idle_minutes_or_8_hours(app, db, field, age):
    _make_user(app, db, "timeout.user")
    response, client = _web_login(app, "timeout.user", STRONG)
    assert client.get("/institutionview/list/").status_code == 200
    user_id = db.session.query(ScopedUser.id).filter_by(username="timeout.user").scalar()
    db.session.expire_all()
    row = db.session.query(UserSession).filter_by(user_id=user_id, ended_at=None).order_by(UserSession.created_at.desc()).first()
    setattr(row, field, getattr(row, field) - age)
    if field == "created_at":
        row.last_seen_at = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    db.session.commit()
    response = client.get("/institutionview/list/")
    assert response.status_code == 302 and "/login" in response.headers["Location"]


def test_session_cookie_flags(app, db):
    _make_user(app, db, "cookie.flags")
    response, _ = _web_login(app, "cookie.flags", STRONG)
    cookie = response.headers.get("Set-Cookie", "")
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert "Expires=" in cookie  # 8 hours, not FAB's 31 days
    secure = create_app({**app.config, "SESSION_COOKIE_SECURE": True})
    with secure.app_context():
        client = secure.test_client()
        response = login(secure, client, "cookie.flags", STRONG)
    assert "Secure" in response.headers.get("Set-Cookie", "")


# ----------------------------------------------------------------- password policy
@pytest.mark.parametrize(
    "password, ok",
    [("Short-1a", False), ("alllowercase123", False), ("Quit-Smoking-2025#", True),
     ("Policy.user-Abc123!", False), (PASSWORD, False), ("NoSymbolsButLong123", True)],
)  # fmt: skip
def test_password_policy_rules(app, password, ok):
    from core.security.passwords import policy_problems

    with app.test_request_context():
        assert (policy_problems(password, "policy.user") == []) is ok


def test_every_password_path_refuses_a_weak_password(app, db, login_as):
    from core.security.passwords import PasswordPolicyError

    user = _make_user(app, db, "policy.paths")
    before = db.session.get(ScopedUser, user.id).password
    weak = "weakpass"
    sm = app.appbuilder.sm
    with app.test_request_context():
        with pytest.raises(PasswordPolicyError):
            sm.reset_password(user.id, weak)
        with pytest.raises(PasswordPolicyError):
            sm.add_user("weak.new", "a", "b", "weak.new@example.org", [sm.find_role("Office")], weak)
    admin = login_as("admin")
    response = post_form(app, admin, f"/resetpassword/form?pk={user.id}", {"password": weak, "conf_password": weak})
    assert response.status_code == 200 and "密碼不符合規定" in visible_text(response.text)
    office = db.session.query(ScopedUser).filter_by(username="admin").one().roles[0].id
    response = post_form(app, admin, "/users/add", {
        "first_name": "弱", "last_name": "密", "username": "weak.form", "email": "weak.form@example.org",
        "active": "y", "roles": str(office), "password": "weak.form123A", "conf_password": "weak.form123A",
    })  # fmt: skip
    assert "密碼不符合規定" in visible_text(response.text)
    assert sm.find_user(username="weak.form") is None
    runner = app.test_cli_runner()
    result = runner.invoke(args=["fab", "reset-password", "--username", "policy.paths", "--password", weak])
    assert result.exit_code != 0 or "密碼不符合規定" in result.output or isinstance(result.exception, PasswordPolicyError)
    # the reset link refuses it as well
    helpdesk = login_as("helpdesk")
    helpdesk.post(f"/accounts/action/send_reset/{user.id}", data={"csrf_token": csrf_token(app, helpdesk)})
    link = _path(_link_from_mail(app, "policy.paths@example.org"))
    response = post_form(app, app.test_client(), link, {"password": weak, "confirm": weak})
    assert "密碼不符合規定" in visible_text(response.text)
    db.session.expire_all()
    assert db.session.get(ScopedUser, user.id).password == before
    # no user API exists to go around all this
    assert app.test_client().get("/api/v1/security/users/").status_code == 404


def test_reset_link_sets_a_new_password_and_is_logged(app, db, login_as):
    user = _make_user(app, db, "reset.me")
    helpdesk = login_as("helpdesk")
    helpdesk.post(f"/accounts/action/send_reset/{user.id}", data={"csrf_token": csrf_token(app, helpdesk)})
    link = _path(_link_from_mail(app, "reset.me@example.org"))
    new = "Brand-New-Pass-77"
    assert post_form(app, app.test_client(), link, {"password": new, "confirm": new}).status_code == 302
    response, _ = _web_login(app, "reset.me", new)
    assert "/login" not in response.headers["Location"]
    page = visible_text(helpdesk.get(f"/accounts/show/{user.id}").text)
    assert "已寄送重設密碼連結" in page and "已重設密碼" in page
    token = db.session.query(OneTimeToken).filter_by(user_id=user.id).order_by(OneTimeToken.id.desc()).first()
    assert token.used_at is not None


def test_role_and_scope_changes_are_audited(app, db):
    user = _make_user(app, db, "role.change")
    user = db.session.get(ScopedUser, user.id)
    user.roles = [app.appbuilder.sm.find_role("Ministry")]
    user.scope_kind = "county"
    user.scope_county = db.session.query(County).filter_by(code="TPE").one()
    db.session.commit()
    actions = {e.action for e in db.session.query(AuditLog).filter_by(model="Account", row_key=str(user.id))}
    assert {"role_change", "scope_change"} <= actions


# -------------------------------------------------------------------- the helpdesk
def test_helpdesk_finds_accounts_by_institution_and_sees_status(app, db, login_as):
    client = login_as("helpdesk")
    facility = db.session.query(ScopedUser).filter_by(username="facility_tpe").one()
    code = facility.scope_institutions[0].nhi_code
    page = client.get(f"/accounts/list/?_flt_0_scope_institutions={code}").text
    assert "facility_tpe" in page and "facility_khh" not in page
    show = visible_text(client.get(f"/accounts/show/{facility.id}").text)
    assert "啟用" in show and "特約機構" in show


def test_helpdesk_sees_no_clinical_data_anywhere(app, db, login_as, api_as):
    """Walk every menu entry and every API as the helpdesk: only accounts and the registry."""
    from core.web.views import ScopedModelRestApi
    from domain.accounts.grants import ACCOUNT
    from domain.registry.grants import COUNTY, INSTITUTION, LEVEL

    allowed = {ACCOUNT, COUNTY, INSTITUTION, LEVEL}
    client = login_as("helpdesk")
    for category in app.appbuilder.menu.get_list():
        for item in category.childs or [category]:
            view = getattr(item, "baseview", None)
            if view is None or not hasattr(view, "class_permission_name"):
                continue
            with app.test_request_context():
                url = item.get_url()
            response = client.get(url)
            if view.class_permission_name in allowed:
                assert response.status_code == 200, item.name
            else:
                # 404 for either programme's pages: the helpdesk is in neither (A1)
                assert response.status_code in (302, 403, 404), (item.name, response.status_code)
    api, headers = api_as("helpdesk")
    for view in app.appbuilder.baseviews:
        if isinstance(view, ScopedModelRestApi):
            status = api.get(f"/api/v1/{view.resource_name}/", headers=headers).status_code
            assert (status == 200) is (view.class_permission_name in allowed), view.resource_name
    # and it may not edit accounts, only unlock them and send links
    facility = db.session.query(ScopedUser).filter_by(username="facility_tpe").one()
    assert client.get(f"/accounts/edit/{facility.id}").status_code in (302, 403)
    assert client.get("/users/list/").status_code in (302, 403)


def test_rate_limits_on_apply_and_api_login(app, tmp_path):
    limited = create_app({
        **app.config, "APPLY_RATE_LIMIT": "2 per hour", "AUTH_RATE_LIMIT": "3 per minute",
        "RATELIMIT_STORAGE_URI": f"sqlitefile://{tmp_path / 'rl.db'}",
    })  # fmt: skip
    client = limited.test_client()
    with limited.app_context():
        statuses = [_apply(limited, client, email="x@example.org").status_code for _ in range(3)]
        logins = [client.post("/api/v1/security/login",
                              json={"username": "nobody", "password": "x", "provider": "db"}).status_code
                  for _ in range(4)]  # fmt: skip
    assert statuses[-1] == 429 and logins[-1] == 429


def test_the_public_application_page_is_in_zh_tw(app):
    page = visible_text(app.test_client().get("/apply/").text)
    assert "申請帳號" in page and "電子郵件" in page and "醫事機構代碼" in page


def test_rate_limit_counters_are_shared_between_worker_processes(tmp_path):
    """Two storages on one file stand for two gunicorn workers: they count together."""
    from core.security.ratelimit import SQLiteFileStorage

    uri = f"sqlitefile://{tmp_path / 'shared.db'}"
    worker_a, worker_b = SQLiteFileStorage(uri), SQLiteFileStorage(uri)
    assert worker_a.incr("login/127.0.0.1", 60) == 1
    assert worker_b.incr("login/127.0.0.1", 60) == 2
    assert worker_a.get("login/127.0.0.1") == 2
    worker_b.clear("login/127.0.0.1")
    assert worker_a.get("login/127.0.0.1") == 0


def test_demo_password_works_only_in_demo_mode(app, tmp_path):
    """Demo users are exempt from the policy only while DEMO_MODE is on."""
    strict = create_app({**app.config, "DEMO_MODE": False,
                         "RATELIMIT_STORAGE_URI": f"sqlitefile://{tmp_path / 'rl.db'}"})  # fmt: skip
    with strict.app_context():
        client = strict.test_client()
        response = login(strict, client, "ministry", PASSWORD)
        assert "/login" in response.headers["Location"]
        from core.extensions import db
        from models.platform.session import LoginThrottle

        db.session.query(LoginThrottle).filter_by(username="ministry").delete()
        db.session.commit()
    response = login(app, app.test_client(), "ministry", PASSWORD)
    assert "/login" not in response.headers["Location"]
