"""What the schemathesis run (tests/e2e/test_api_contract.py) found in the REST API, pinned
here so both databases check it on every run: answers are 4xx with JSON, never a 500."""

from __future__ import annotations

import pytest


@pytest.mark.parametrize("pk", ["null", "0.45", "-3", str(2**63), "99999999999999999999", "__label__", "abc"])
def test_a_row_url_with_a_key_that_is_no_id_is_a_json_404(api_as, pk):
    client, headers = api_as("facility_tpe")
    for method in ("get", "put", "delete"):
        response = getattr(client, method)(f"/api/v1/practitioner/{pk}", headers=headers, json={})
        assert response.status_code in (403, 404), (method, pk, response.status_code)
        assert response.is_json, (method, pk)
    assert client.get(f"/api/v1/visit/{pk}", headers=headers).status_code == 404


def test_unknown_api_url_answers_json(api_as):
    client, headers = api_as("office")
    response = client.get("/api/v1/no_such_thing/", headers=headers)
    assert response.status_code == 404 and response.is_json


def test_a_related_row_given_as_an_object_is_a_422_not_a_500(api_as):
    client, headers = api_as("facility_tpe")
    response = client.post(
        "/api/v1/service_assignment/",
        headers=headers,
        json={"institution": {"x": True}, "practitioner": 10**20, "start_date": "2025-01-01"},
    )
    assert response.status_code == 422
    assert set(response.json["message"]) == {"institution", "practitioner"}


def test_a_registered_national_id_with_other_data_is_answered_like_a_new_one(app, db, api_as):
    """Issue 12, class 3 (was: a duplicate ID answered 422, an existence oracle). An ID
    registered with other identity data is answered exactly like a new ID (201), kept apart
    as a conflict row holding what was typed; the registered person is left unchanged."""
    from models.cessation.visit import Quitter

    client, headers = api_as("facility_tpe")
    existing = db.session.query(Quitter).filter_by(identity_status="verified").first()
    name = existing.name
    response = client.post(
        "/api/v1/quitter/",
        headers=headers,
        json={"national_id": existing.national_id, "name": "重複者", "sex": "M", "birth_date": "1990-01-01"},
    )
    assert response.status_code == 201, response.text
    assert response.json["result"]["name"] == "重複者"
    db.session.expire_all()
    assert db.session.get(Quitter, existing.id).name == name
    row = db.session.get(Quitter, response.json["id"])
    assert row.id != existing.id and row.identity_status == "conflict"
    db.session.delete(row)
    db.session.commit()


@pytest.mark.parametrize("token", ["abc", "a.b.c", "eyJhbGciOiJIUzI1NiJ9.e30.x"])
def test_a_forged_token_is_401_like_a_missing_one(app, token):
    client = app.test_client()
    assert client.get("/api/v1/county/").status_code == 401
    assert client.get("/api/v1/county/", headers={"Authorization": f"Bearer {token}"}).status_code == 401


def test_api_using_roles_read_the_openapi_document_and_it_documents_403_and_integer_ids(api_as):
    for username in ("facility_tpe", "office", "bureau_khh", "ministry"):
        client, headers = api_as(username)
        assert client.get("/api/v1/_openapi", headers=headers).status_code == 200, username
    client, headers = api_as("helpdesk")
    assert client.get("/api/v1/_openapi", headers=headers).status_code == 403
    client, headers = api_as("facility_tpe")
    spec = client.get("/api/v1/_openapi", headers=headers).json
    assert "/api/v1/menu/" not in spec["paths"]
    get_list = spec["paths"]["/api/v1/visit/"]["get"]["responses"]
    assert {"401", "403"} <= set(get_list)
    ids = get_list["200"]["content"]["application/json"]["schema"]["properties"]["ids"]
    assert ids["items"]["type"] == "integer"
    assert "404" in spec["paths"]["/api/v1/visit/{pk}"]["delete"]["responses"]


def test_api_datetimes_carry_their_utc_offset(api_as):
    client, headers = api_as("facility_tpe")
    rows = client.get("/api/v1/visit/", headers=headers).json["result"]
    assert rows and all(r["entered_at"].endswith("+00:00") for r in rows if r["entered_at"])


def test_info_descriptions_are_not_the_catalog_header(api_as):
    client, headers = api_as("facility_tpe")
    info = client.get("/api/v1/visit/_info", headers=headers).json
    texts = [c["description"] for c in info["add_columns"]] + [c["label"] for c in info["add_columns"]]
    assert not any("Project-Id-Version" in t for t in texts)


def test_a_row_read_by_its_key_answers_the_id_as_an_integer(api_as):
    """GET /<pk> takes any key (a bad one is a 404, not a 405) and still answers `id` as the
    integer the spec documents."""
    client, headers = api_as("office")
    first = client.get("/api/v1/practitioner/", headers=headers).json["ids"][0]
    response = client.get(f"/api/v1/practitioner/{first}", headers=headers)
    assert response.status_code == 200 and response.json["id"] == first and isinstance(first, int)


def test_the_statistics_api_documents_401(api_as):
    client, headers = api_as("office")
    spec = client.get("/api/v1/_openapi", headers=headers).json
    assert "401" in spec["paths"]["/api/v1/reports/cessation"]["get"]["responses"]
