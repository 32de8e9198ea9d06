"""The admin reads roles and account changes in zh_TW (issue 15, item 4): the role edit form
names the role by its label and keeps its stored name; the audit log shows an account's
roles and scope kind by their labels, not 'Bureau' or 'county'."""

from __future__ import annotations

import re

from core.security.roles import ADDICTION_BUREAU, BUREAU, ROLE_LABELS
from models.platform.audit import AuditLog
from models.platform.user import ScopedUser
from models.registry.reference import County
from tests.conftest import post_form, visible_text


def _role(app, name):
    return app.appbuilder.sm.find_role(name)


def test_role_edit_form_shows_the_zh_tw_label_and_the_stored_name_read_only(app, db, login_as):
    """/roles/edit/ of AddictionBureau: its label is on the page, the name field is read-only."""
    role = _role(app, ADDICTION_BUREAU)
    page = login_as("admin").get(f"/roles/edit/{role.id}")
    assert page.status_code == 200
    with app.test_request_context("/", headers={"Accept-Language": "zh-TW"}):
        label = str(ROLE_LABELS[ADDICTION_BUREAU])
    assert label in visible_text(page.text)
    field = re.search(r'<input[^>]*\bname="name"[^>]*>', page.text).group(0)
    assert "readonly" in field and 'value="AddictionBureau"' in field


def test_renaming_a_built_in_role_is_refused_and_its_name_kept(app, db, login_as):
    """A posted rename of Bureau (the permission sync knows it by that name) is refused in zh_TW."""
    role = _role(app, BUREAU)
    permissions = [str(pv.id) for pv in role.permissions]
    client = login_as("admin")
    response = post_form(app, client, f"/roles/edit/{role.id}",
                         {"name": "Renamed", "permissions": permissions}, follow_redirects=True)  # fmt: skip
    assert response.status_code == 200
    assert "不可變更" in visible_text(response.text)
    db.session.expire_all()
    assert _role(app, BUREAU) is not None and _role(app, "Renamed") is None
    assert len(_role(app, BUREAU).permissions) == len(permissions)


def test_audit_log_shows_account_roles_and_scope_kind_by_label(app, db, login_as):
    """A role and scope change reads 衛生局 and 縣市 on the audit pages, never Bureau or county."""
    sm = app.appbuilder.sm
    user = sm.find_user(username="audit.labels")
    if user is None:
        user = sm.add_user("audit.labels", "標籤測試", "", "audit.labels@example.org",
                           [sm.find_role("Office")], "Strong-Pass-2024!x")  # fmt: skip
    user = db.session.get(ScopedUser, user.id)
    user.scope_kind = "national"
    db.session.commit()
    user.roles = [sm.find_role(BUREAU)]
    user.scope_kind = "county"
    user.scope_county = db.session.query(County).filter_by(code="TPE").one()
    db.session.commit()
    entries = {e.action: e for e in db.session.query(AuditLog).filter_by(model="Account", row_key=str(user.id))}
    admin = login_as("admin")
    roles = visible_text(admin.get(f"/auditlogview/show/{entries['role_change'].id}").text)
    scope = visible_text(admin.get(f"/auditlogview/show/{entries['scope_change'].id}").text)
    assert "衛生局" in roles and "戒菸管理窗口" in roles
    assert not re.search(r"\b(Bureau|Office)\b", roles)
    assert "縣市" in scope and "全國" in scope and "臺北市" in scope
    assert not re.search(r"\b(county|national|TPE)\b", scope)
    listing = visible_text(admin.get(f"/auditlogview/list/?_flt_0_row_key={user.id}&_flt_1_model=Account").text)
    assert not re.search(r"\b(county|national|Bureau)\b", listing)
