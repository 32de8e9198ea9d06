"""FAB's /action/<name>/<pk> and /action_post fetch rows without filters (trap 1): ours go
through the scoped datamodel, so an out-of-scope row answers 404 and the action never runs."""

from __future__ import annotations

import pytest
from flask_appbuilder.actions import action

from app import create_app
from core.data.datamodel import ScopedInterface
from core.web.views import ScopedModelView
from models.registry.institution import Institution
from tests.conftest import PASSWORD, csrf_token
from tests.scope_oracle import expected_split, user_view

CALLS: list = []


class ActionProbeView(ScopedModelView):
    """A view with one single-row and multi-row action that records what it was given."""

    datamodel = ScopedInterface(Institution)
    class_permission_name = "Institution"
    route_base = "/actionprobe"
    list_columns = ["nhi_code", "name"]

    @action("probe", "probe", confirmation=None, multiple=True, single=True)
    def probe(self, items):
        CALLS.append(items if isinstance(items, list) else [items])
        return "ran"


@pytest.fixture(scope="module")
def probe_app(app, database_url, tmp_path_factory):
    """A second app on the same database, with the probe view registered before any request."""
    probe = create_app(
        {
            "TESTING": True,
            "SQLALCHEMY_DATABASE_URI": database_url,
            "CACHE_TYPE": "SimpleCache",
            "SECRET_KEY": app.config["SECRET_KEY"],
            "UPLOAD_FOLDER": str(tmp_path_factory.mktemp("probe")),
        }
    )
    with probe.app_context():
        probe.appbuilder.add_view_no_menu(ActionProbeView)
        from core.security.permissions import sync_roles
        from domain.roles import ROLE_GRANTS

        sync_roles(probe.appbuilder, ROLE_GRANTS)  # the action permission "probe" goes to Admin only
        sm = probe.appbuilder.sm
        pv = sm.find_permission_view_menu("probe", "Institution")
        for role_name in ("Bureau", "Facility"):
            sm.add_permission_role(sm.find_role(role_name), pv)
    yield probe
    with probe.app_context():
        from core.extensions import db
        from core.security.permissions import sync_roles
        from domain.roles import ROLE_GRANTS

        sync_roles(probe.appbuilder, ROLE_GRANTS)
        db.session.remove()


def _client(probe_app, username):
    client = probe_app.test_client()
    client.get("/login/")
    response = client.post(
        "/login/",
        data={"username": username, "password": PASSWORD, "csrf_token": csrf_token(probe_app, client)},
    )
    assert response.status_code == 302
    return client


@pytest.mark.parametrize("username", ["facility_tpe", "bureau_khh"])
def test_actions_on_out_of_scope_rows_answer_404_and_do_not_run(probe_app, db, username):
    client = _client(probe_app, username)
    visible, hidden = expected_split(db, Institution, user_view(db, username))
    token = csrf_token(probe_app, client)
    CALLS.clear()
    assert client.post(f"/actionprobe/action/probe/{min(hidden)}", data={"csrf_token": token}).status_code == 404
    response = client.post(
        "/actionprobe/action_post",
        data={"action": "probe", "rowid": [str(min(visible)), str(min(hidden))], "csrf_token": token},
    )
    assert response.status_code == 404
    assert CALLS == []
    # ...while the same action on the user's own row runs.
    assert client.post(f"/actionprobe/action/probe/{min(visible)}", data={"csrf_token": token}).data == b"ran"
    assert [item.id for item in CALLS[0]] == [min(visible)]
