"""The audit trail records every insert, update and delete, and cannot itself be changed."""

from __future__ import annotations

import pytest

from core.data.audit import AuditImmutableError
from models.platform.audit import AuditLog
from models.registry.institution import ContractPeriod, Institution
from tests.conftest import institution_form, post_form
from tests.scope_oracle import user_view


def _trail(db, model, key):
    db.session.expire_all()
    return (
        db.session.query(AuditLog)
        .filter_by(model=model, row_key=str(key))
        .order_by(AuditLog.id)
        .all()
    )


def test_form_edit_is_audited_with_before_and_after(app, db, login_as):
    client = login_as("bureau_tpe")
    user = user_view(db, "bureau_tpe")
    institution = db.session.get(Institution, min(user.institution_ids))
    old_phone = institution.phone
    response = post_form(
        app,
        client,
        f"/institutionview/edit/{institution.id}",
        institution_form(institution, phone="(02)2351-0120"),
    )
    assert response.status_code == 302
    entry = _trail(db, "Institution", institution.id)[-1]
    assert entry.action == "update"
    assert entry.username == "bureau_tpe"
    assert entry.before == {"phone": old_phone, "changed_on": entry.before["changed_on"],
                            "changed_by_id": entry.before["changed_by_id"]}  # fmt: skip
    assert entry.after["phone"] == "(02)2351-0120"


def test_api_insert_and_delete_are_audited(db, api_as):
    client, headers = api_as("bureau_khh")
    user = user_view(db, "bureau_khh")
    response = client.post(
        "/api/v1/contract_period/",
        headers=headers,
        json={"institution": min(user.institution_ids), "start_date": "2025-03-01",
              "end_date": "2025-09-30"},
    )  # fmt: skip
    assert response.status_code == 201, response.text
    pk = response.json["id"]
    assert client.delete(f"/api/v1/contract_period/{pk}", headers=headers).status_code == 200
    trail = _trail(db, "ContractPeriod", pk)
    assert [e.action for e in trail] == ["insert", "delete"]
    assert trail[0].after["start_date"] == "2025-03-01"
    assert trail[1].before["end_date"] == "2025-09-30"
    assert {e.username for e in trail} == {"bureau_khh"}
    assert db.session.get(ContractPeriod, pk) is None


def test_audit_rows_cannot_be_changed_or_deleted(db):
    entry = db.session.query(AuditLog).first()
    entry.action = "forged"
    with pytest.raises(AuditImmutableError):
        db.session.commit()
    db.session.rollback()
    db.session.delete(db.session.query(AuditLog).first())
    with pytest.raises(AuditImmutableError):
        db.session.commit()
    db.session.rollback()


def test_no_route_edits_the_audit_trail_even_for_admin(app, db, login_as, api_as):
    pk = db.session.query(AuditLog.id).first()[0]
    client = login_as("admin")
    assert client.get(f"/auditlogview/show/{pk}").status_code == 200
    for url in (f"/auditlogview/edit/{pk}", f"/auditlogview/delete/{pk}", "/auditlogview/add"):
        response = post_form(app, client, url, {})
        assert response.status_code in (302, 403, 404, 405)
    api, headers = api_as("admin")
    assert api.put(f"/api/v1/audit_log/{pk}", headers=headers, json={}).status_code in (404, 405)
    assert api.delete(f"/api/v1/audit_log/{pk}", headers=headers).status_code in (404, 405)
    db.session.expire_all()
    assert db.session.get(AuditLog, pk) is not None


def test_only_the_admin_can_browse_the_trail(login_as):
    assert login_as("admin").get("/auditlogview/list/").status_code == 200
    response = login_as("office").get("/auditlogview/list/")
    assert response.status_code in (302, 403)
    assert "/show/" not in response.text
