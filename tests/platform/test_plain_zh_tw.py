"""Plain zh_TW (issue 15): the public application and its refusals, the blank form to print,
and the admin's role, permission and user screens without FAB's identifiers."""

from __future__ import annotations

import io
import re

import openpyxl
import pytest

from core.security.roles import ROLE_LABELS
from tests.conftest import USERNAMES, csrf_token, visible_text

#: FAB's identifiers that must not reach the admin's eye.
FAB_WORDS = re.compile(
    r"can [a-z_]+ on|menu access|menu_access|[A-Za-z]+(?:ModelView|View|Api)\b|PersonalId|OpenApi|"
    r"__None|LDAP|OID|\bPublic\b|ExportJob|AuditLog|CorrectionTicket|Quitter\b|Visit\b"
)


#: ASCII words a zh_TW screen may show: the language menu, API, e-mail domains of demo users.
ALLOWED_ASCII = {"English", "API"}


def _admin_text(client, url: str) -> str:
    response = client.get(url)
    assert response.status_code == 200, url
    return visible_text(response.text)


def test_apply_page_refusals_are_zh_tw(app):
    """WTForms' own messages ("This field is required.") come out in zh_TW on the public page."""
    client = app.test_client()
    client.get("/apply/")
    response = client.post("/apply/", data={"csrf_token": csrf_token(app, client), "email": "not-an-e-mail"})
    assert response.status_code == 200
    errors = re.findall(r'class="help-block text-danger field-error">([^<]*)<', response.text)
    assert errors, "the empty application is refused field by field"
    text = " ".join(errors)
    assert "此欄位為必填" in text
    assert not re.search(r"[A-Za-z]{3,}", text), f"English in the refusals: {text}"


def test_wtforms_messages_are_zh_tw_in_fab_forms(app, login_as):
    """A FAB form's own validators (the admin's user form) answer in zh_TW as well."""
    client = login_as("admin")
    response = client.post("/users/add", data={"csrf_token": csrf_token(app, client)})
    text = visible_text(response.text)
    assert "此欄位為必填" in text
    assert "This field is required" not in text


def test_apply_page_offers_the_blank_application_form(app):
    """The public page links a printable blank form whose labels are the form's own, in zh_TW."""
    client = app.test_client()
    page = client.get("/apply/")
    assert 'href="/apply/blank-form"' in page.text
    response = client.get("/apply/blank-form")
    assert response.status_code == 200
    assert "帳號申請單" in response.headers["Content-Disposition"] or "%E5%B8%B3" in response.headers["Content-Disposition"]
    sheet = openpyxl.load_workbook(io.BytesIO(response.data)).active
    cells = [str(c) for row in sheet.iter_rows(values_only=True) for c in row if c]
    assert "帳號申請單" in cells
    for label in ("申請人姓名", "電子郵件", "申請人簽章", "業務主管簽章", "機構印信"):
        assert label in cells, label
    assert not [c for c in cells if re.search(r"[A-Za-z]{4,}", c)], "English on the blank form"
    assert not [c for c in cells if "地方檢察署" in c or "民間團體" in c], "A1: never an account"


@pytest.mark.parametrize("url", ["/roles/list/", "/roles/show/{office}", "/roles/edit/{office}", "/roles/add"])
def test_role_screens_name_resources_and_actions_in_zh_tw(app, db, login_as, url):
    """No "can read on PersonalId", no "menu access on …", no FAB class names, no role Public."""
    role_id = app.appbuilder.sm.find_role("Office").id
    text = _admin_text(login_as("admin"), url.format(office=role_id))
    found = FAB_WORDS.findall(text)
    assert not found, f"FAB identifiers on {url}: {sorted(set(found))[:20]}"
    # Any other English word is a resource or action without its zh_TW label.
    text = re.sub(r"\S+@\S+", " ", text)  # the role's users' e-mail addresses and usernames
    # ... every account's, other tests' included (they add users to the role).
    # ... and the roles other tests made (the application's own show their zh_TW labels).
    from core.security.roles import ROLE_LABELS

    made = {r.name for r in app.appbuilder.sm.get_all_roles()} - set(ROLE_LABELS)
    # ... and permissions another test's app left in the shared database (an action "probe"
    # no view of this app declares: `flask init` would drop it).
    declared = {p for v in app.appbuilder.baseviews for p in (getattr(v, "base_permissions", None) or [])}
    sm = app.appbuilder.sm
    made |= {p.name for p in sm.session.query(sm.permission_model)} - declared - {"menu_access"}
    names = sorted({u.username for u in app.appbuilder.sm.get_all_users()} | set(USERNAMES) | made,
                   key=len, reverse=True)  # fmt: skip
    text = re.sub("|".join(rf"\b{re.escape(name)}\b" for name in names), " ", text)
    english = set(re.findall(r"[A-Za-z_]{3,}", text)) - ALLOWED_ASCII
    assert not english, f"untranslated words on {url}: {sorted(english)}"


def test_a_resource_is_named_by_its_first_menu_entry(app):
    """Visit is 戒菸者就醫資料 (its list), not 批次上傳 (another screen of the same resource)."""
    from core.security.labels import action_label, resource_label

    with app.test_request_context("/"):
        assert resource_label("Visit") == "戒菸者就醫資料"
        assert resource_label("PersonalId") == "完整身分證號"
        assert action_label("menu_access") == "選單"


def test_role_list_shows_role_labels_and_hides_public(app, login_as):
    """The roles by the labels of core/security/roles.py; the unused role Public not at all."""
    text = _admin_text(login_as("admin"), "/roles/list/")
    with app.test_request_context("/"):
        labels = [str(label) for label in ROLE_LABELS.values()]
    for label in labels:
        assert label in text
    assert "Public" not in text


@pytest.mark.parametrize("url", ["/users/list/", "/users/add", "/users/edit/{user}", "/users/show/{user}"])
def test_user_screens_have_one_name_field_and_no_ldap_oid(app, db, login_as, url):
    """姓名 as one field (no 名字/姓氏), role labels, no LDAP/OID help, no __None, no Public."""
    user_id = app.appbuilder.sm.find_user(username="facility_tpe").id
    client = login_as("admin")
    response = client.get(url.format(user=user_id))
    assert response.status_code == 200
    text = visible_text(response.text)
    assert "姓名" in text
    assert "名字" not in text and "姓氏" not in text
    found = FAB_WORDS.findall(text)
    assert not found, f"FAB identifiers on {url}: {sorted(set(found))}"
    if "edit" in url or "add" in url:
        assert 'value="Public"' not in response.text and ">Public<" not in response.text


def test_editing_an_account_keeps_its_whole_name_in_one_field(app, db, login_as):
    """An account with FAB's two name fields shows its whole name in 姓名 and keeps it on save."""
    from core.extensions import db as _db

    user = app.appbuilder.sm.find_user(username="helpdesk")
    whole = " ".join(filter(None, [user.first_name, user.last_name]))
    client = login_as("admin")
    form = client.get(f"/users/edit/{user.id}").text
    assert f'value="{whole}"' in form
    _db.session.remove()


def test_user_statistics_chart_is_not_offered(login_as):
    """FAB's chart loads a script from the internet: neither in the menu nor served."""
    client = login_as("admin")
    home = client.get("/").text
    assert "userstatschartview" not in home
    assert client.get("/userstatschartview/chart/").status_code == 404
    for url in ("/permissions/list/", "/viewmenus/list/", "/permissionviews/list/"):
        assert client.get(url).status_code == 404  # raw identifiers only; roles are data


def test_batch_template_says_male_or_female(login_as):
    """The batch template asks for 男/女, not M/F."""
    response = login_as("facility_tpe").get("/visitupload/template")
    assert response.status_code == 200
    book = openpyxl.load_workbook(io.BytesIO(response.data))
    cells = [str(c) for sheet in book for row in sheet.iter_rows(values_only=True) for c in row if c]
    assert any("男／女" in c for c in cells)
    assert not any("M/F" in c for c in cells)


def test_no_rule_numbers_in_the_self_check_and_ticket_pages(db, login_as):
    """Headings and messages name no rule numbers (C6, C7 …)."""
    from sqlalchemy import select

    from models.cessation.correction import CorrectionTicket, TicketStatus

    client = login_as("facility_tpe")
    ticket = db.session.scalars(
        select(CorrectionTicket).where(CorrectionTicket.status == TicketStatus.CONVERTED.value)
    ).first()
    for url in ("/selfcheck/", "/corrections/list/", f"/corrections/show/{ticket.id}", "/feededuction/"):
        text = visible_text(client.get(url).text)
        assert not re.search(r"[（(][CA]\d{1,2}[）)]|\b[CA]\d{1,2}[：:]", text), url


def test_own_profile_form_has_one_name_field(app, db, login_as):
    """Everyone's own profile form asks for 姓名 once, filled with the whole name, and keeps it."""
    from tests.conftest import post_form

    client = login_as("bureau_khh")
    response = client.get("/userinfoeditview/form")
    assert response.status_code == 200
    text = visible_text(response.text)
    assert "姓名" in text and "名字" not in text and "姓氏" not in text
    user = app.appbuilder.sm.find_user(username="bureau_khh")
    whole = " ".join(filter(None, [user.first_name, user.last_name]))
    assert f'value="{whole}"' in response.text
    saved = post_form(app, client, "/userinfoeditview/form", {"first_name": whole})
    assert saved.status_code == 302
    db.session.expire_all()
    user = app.appbuilder.sm.find_user(username="bureau_khh")
    assert (user.first_name, user.last_name) == (whole, "")
