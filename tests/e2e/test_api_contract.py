"""API contract: schemathesis fuzzes every operation of the app's own OpenAPI document
(/api/v1/_openapi), signed in as a facility user and as the office. No 5xx, every response
matches the spec (status, content type, body schema), authentication is enforced (no token
and a forged token are refused), and a token never receives a row outside its scope
(checked against the independent oracle in tests/scope_oracle.py).

Bounded: MAX_EXAMPLES per operation, deterministic generation, no coverage/stateful phase,
so the run fits `make test-e2e`. It runs in its own pytest process (the main suite does not
collect tests/e2e), over its own freshly seeded database, because it writes and deletes rows.
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from tests.conftest import PASSWORD
from tests.scope_oracle import expected_split, user_view

MAX_EXAMPLES = 12
CONFIG = schemathesis.Config.from_dict(
    {
        "generation": {"deterministic": True, "max-examples": MAX_EXAMPLES},
        "phases": {"coverage": {"enabled": False}, "stateful": {"enabled": False}},
    }
)
#: A schema-valid body may still break a rule the spec cannot express (a national ID's check
#: digit, C1–C4 on visits, an id that names no row): the API answers 422 with a zh_TW message,
#: as it must, so "schema-valid data is accepted" cannot hold here.
NOT_EXPRESSIBLE = [schemathesis.checks.positive_data_acceptance]


@pytest.fixture(scope="session")
def api_schema(app):
    """The spec as an API user reads it (every API-using role may read /api/v1/_openapi)."""
    client = app.test_client()
    token = client.post(
        "/api/v1/security/login",
        json={"username": "facility_tpe", "password": PASSWORD, "provider": "db"},
    ).json["access_token"]
    return schemathesis.openapi.from_wsgi(
        "/api/v1/_openapi", app, config=CONFIG, headers={"Authorization": f"Bearer {token}"}
    )


def bearer_auth(username: str):
    """A schemathesis auth provider: a JWT for `username` from /api/v1/security/login."""

    class BearerAuth:
        def get(self, case, context):
            response = context.app.test_client().post(
                "/api/v1/security/login",
                json={"username": username, "password": PASSWORD, "provider": "db"},
            )
            assert response.status_code == 200, response.text
            return response.json["access_token"]

        def set(self, case, data, context):
            case.headers = {**(case.headers or {}), "Authorization": f"Bearer {data}"}

    BearerAuth.__name__ = f"BearerAuth_{username}"
    return BearerAuth


def _lazy_schema(username: str):
    # A refresh needs a refresh token, not an access token; the spec's own URL is no operation.
    lazy = schemathesis.pytest.from_fixture("api_schema").exclude(
        path_regex=r"/security/refresh|/_openapi"
    )
    lazy.auth()(bearer_auth(username))
    return lazy


facility_schema = _lazy_schema("facility_tpe")
office_schema = _lazy_schema("office")


class ScopeOracle:
    """Which ids of a model each user may see, recomputed when a new id turns up."""

    def __init__(self, app):
        from core.web.views import ScopedModelRestApi

        self.app = app
        self.models = {
            api.resource_name: api.datamodel.obj
            for api in app.appbuilder.baseviews
            if isinstance(api, ScopedModelRestApi)
        }
        self._visible: dict[tuple[str, str], set[int]] = {}

    def visible(self, username: str, resource: str, row_id: int) -> bool:
        key = (username, resource)
        if key not in self._visible or row_id not in self._visible[key]:
            from core.extensions import db

            # Only for the query: an app context held open would be reused by the requests,
            # and its `g` (the previous request's user) with it.
            with self.app.app_context():
                user = user_view(db, username)
                self._visible[key] = expected_split(db, self.models[resource], user)[0]
                db.session.remove()
        return row_id in self._visible[key]


@pytest.fixture(scope="session")
def oracle(app):
    return ScopeOracle(app)


def returned_ids(response) -> list[int]:
    """The row ids a list or show response hands out."""
    if response.status_code != 200:
        return []
    try:
        body = response.json()
    except ValueError:
        return []
    if not isinstance(body, dict):
        return []
    if isinstance(body.get("ids"), list):
        return [i for i in body["ids"] if isinstance(i, int)]
    if isinstance(body.get("id"), int) and "result" in body:
        return [body["id"]]
    return []


def check_case(case, username: str, oracle: ScopeOracle) -> None:
    response = case.call_and_validate(excluded_checks=NOT_EXPRESSIBLE)
    parts = case.operation.path.strip("/").split("/")
    resource = parts[2] if len(parts) > 2 and parts[0] == "api" else None
    if resource in oracle.models:
        leaked = [i for i in returned_ids(response) if not oracle.visible(username, resource, i)]
        assert leaked == [], f"{username} received {resource} rows out of scope: {leaked}"


SETTINGS = settings(deadline=None, suppress_health_check=list(HealthCheck), max_examples=MAX_EXAMPLES)


@facility_schema.parametrize()
@SETTINGS
def test_api_contract_as_a_facility_user(case, oracle):
    """facility_tpe: conforms to the spec and never receives another institution's row."""
    check_case(case, "facility_tpe", oracle)


@office_schema.parametrize()
@SETTINGS
def test_api_contract_as_the_office(case, oracle):
    """office (national, read-only): conforms to the spec; writes are refused with 403."""
    check_case(case, "office", oracle)
