"""An account's scope names its institutions by the code they are known by (A1: a
psychotherapy clinic has a registry code and no NHI code), never "None"."""

from __future__ import annotations

from tests.conftest import visible_text


def test_a1_account_list_names_an_institution_without_nhi_code_by_its_registry_code(db, login_as):
    from models.platform.user import ScopedUser

    user = db.session.query(ScopedUser).filter_by(username="psy_clinic").one()
    institution = user.scope_institutions[0]
    assert institution.nhi_code is None and institution.registry_code
    text = visible_text(login_as("helpdesk").get("/accounts/list/?psize_AccountLookupView=100").text)
    assert f"{institution.registry_code} {institution.name}" in text
    assert "None" not in text
