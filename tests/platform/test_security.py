"""Security wiring: the manager must load, API keys and JWTs carry the same scope as the
web session, and permission checks are answered from a cache, not a query per check."""

from __future__ import annotations

import pytest

from app import create_app
from tests.scope_oracle import expected_split, user_view


def test_app_refuses_to_start_without_its_security_manager(database_url):
    """A typo in FAB_SECURITY_MANAGER_CLASS must not fall back to FAB's unscoped manager."""
    with pytest.raises((RuntimeError, ImportError, AttributeError)):
        create_app(
            {
                "SQLALCHEMY_DATABASE_URI": database_url,
                "FAB_SECURITY_MANAGER_CLASS": "core.security.manager.NoSuchManager",
                "CACHE_TYPE": "SimpleCache",
            }
        )


def test_api_key_user_gets_the_same_scope_as_the_web_user(app, db):
    """FAB loads API-key users as its base User class (trap 2): scope must still apply."""
    from models.platform.user import ScopedUser
    from models.registry.institution import Institution

    sm = app.appbuilder.sm
    with app.test_request_context():
        user = db.session.query(ScopedUser).filter_by(username="bureau_khh").one()
        raw_key = sm.create_api_key(user, name="test key")["key"]
    db.session.remove()
    client = app.test_client()
    headers = {"Authorization": f"Bearer {raw_key}"}
    response = client.get("/api/v1/institution/?q=(page_size:100)", headers=headers)
    assert response.status_code == 200, response.text
    visible, hidden = expected_split(db, Institution, user_view(db, "bureau_khh"))
    assert set(response.json["ids"]) == visible
    assert client.get(f"/api/v1/institution/{min(hidden)}", headers=headers).status_code == 404


def test_jwt_user_gets_the_same_scope_as_the_web_user(db, api_as, login_as):
    from models.registry.institution import Institution

    client, headers = api_as("facility_tpe")
    api_ids = set(client.get("/api/v1/institution/", headers=headers).json["ids"])
    visible, _ = expected_split(db, Institution, user_view(db, "facility_tpe"))
    assert api_ids == visible


def test_a_user_without_scope_sees_nothing(app, db, login_as):
    """Deny by default: a role with read permission but no scope lists no rows."""
    from models.platform.user import ScopedUser

    sm = app.appbuilder.sm
    from core.security.passwords import demo_passwords_allowed

    if sm.find_user(username="noscope") is None:
        with demo_passwords_allowed():
            sm.add_user("noscope", "無範圍", "測試", "noscope@demo.invalid",
                        [sm.find_role("Office")], "Demo-Pass-2024!")  # fmt: skip
    user = db.session.query(ScopedUser).filter_by(username="noscope").one()
    user.scope_kind = None
    db.session.commit()
    client = login_as("noscope")
    for url in ("/institutionview/list/", "/practitionerview/list/", "/countyview/list/"):
        response = client.get(url)
        assert response.status_code == 200
        assert "/show/" not in response.text, url


def test_permission_checks_are_cached_per_role_set(app, db, login_as):
    """Rendering a page with a full menu must not run one EXISTS query per menu item."""
    from sqlalchemy import event

    client = login_as("office")
    client.get("/institutionview/list/")  # warm the cache
    statements = []

    def count(conn, cursor, statement, *args):
        statements.append(statement)

    event.listen(db.engine, "before_cursor_execute", count)
    try:
        assert client.get("/institutionview/list/").status_code == 200
    finally:
        event.remove(db.engine, "before_cursor_execute", count)
    permission_queries = [s for s in statements if "ab_permission_view" in s]
    assert permission_queries == []
    assert len(statements) <= 8, statements


def test_no_list_page_renders_a_dropdown_of_a_large_table(app, db, login_as):
    """Search dropdowns for institutions, practitioners or quitters would load every row
    for national users (FAB trap 8): those relations are searched by text instead."""
    import re

    from core.web.views import ScopedModelView

    client = login_as("admin")
    for view in [v for v in app.appbuilder.baseviews if isinstance(v, ScopedModelView)]:
        html = client.get(f"{view.route_base}/list/").text
        for select in re.findall(r"<select[^>]*>(.*?)</select>", html, re.S):
            assert select.count("<option") <= 100, type(view).__name__


def test_a_changed_scope_and_an_ended_session_take_effect_at_the_next_request(app, db, login_as):
    """The user, their session row and their scope's institutions are read in one statement
    per request (manager.get_user_by_id): a scope changed between two requests, and a session
    ended on the server, count from the very next request."""
    import datetime as dt

    from sqlalchemy import update

    from models.platform.session import UserSession
    from models.platform.user import ScopedUser
    from models.registry.institution import Institution

    client = login_as("facility_tpe")
    url = "/api/v1/institution/?q=(page_size:100)"
    visible, _ = expected_split(db, Institution, user_view(db, "facility_tpe"))
    assert set(client.get(url).json["ids"]) == visible

    user = db.session.query(ScopedUser).filter_by(username="facility_tpe").one()
    before = list(user.scope_institutions)
    other = db.session.query(Institution).filter(Institution.id.not_in(visible)).order_by(Institution.id).first()
    user.scope_institutions = [other]
    db.session.commit()
    try:
        assert set(client.get(url).json["ids"]) == {other.id}
    finally:
        user = db.session.query(ScopedUser).filter_by(username="facility_tpe").one()
        user.scope_institutions = before
        db.session.commit()
    assert set(client.get(url).json["ids"]) == visible

    db.session.execute(
        update(UserSession).where(UserSession.user_id == user.id, UserSession.ended_at.is_(None))
        .values(ended_at=dt.datetime(2020, 1, 1))
    )  # fmt: skip
    db.session.commit()
    assert client.get(url).status_code == 401
