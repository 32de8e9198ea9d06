"""issue 12 class 2: a personal ID a role sees masked (A12****789) cannot be recovered
through a filter, a search, an order or an export order (FAB trap 11).

Self-discovering: the personal-ID fields are read from every registered view's and API's
`personal_id_columns` (a dotted "quitter.national_id" names the related model's field), and
every search column that reaches such a field — the column itself, or a relation searched by
a text filter over the related row — is probed with every operator it offers (the HTML
`_flt_<n>_` indexes and the API's `opr`), as every demo user who sees IDs masked. A new view
or API that declares `personal_id_columns` is covered without editing this file.
"""

from __future__ import annotations

import io
import json
import re

import prison
import pytest
from flask_appbuilder.models.filters import FilterRelation
from openpyxl import load_workbook
from sqlalchemy import inspect

from core.security.permissions import FULL_ID_PERMISSION
from core.web.views import ScopedModelRestApi, ScopedModelView
from domain.roles import ROLE_GRANTS
from tests.conftest import USERNAMES, visible_text
from tests.platform.test_scope_matrix import can, registered, show_ids
from tests.scope_oracle import expected_split, user_view

#: FAB's operators that exclude what they match (their answer to a partial value is "all").
NEGATIVE = {"nsw", "new", "nct", "neq", "not_in"}
#: FAB reads `_flt_(\d)_`: one digit, so at most ten operators per column.
MAX_HTML_INDEX = 10


def sees_full_ids(app, username) -> bool:
    perm, resource = FULL_ID_PERMISSION
    return can(app, username, perm.removeprefix("can_"), resource)


def masked_users(app) -> list[str]:
    return [u for u in USERNAMES if not sees_full_ids(app, u)]


def resolve(model, path):
    """(model, column) a column path names, by the mapper (not the app's own registry)."""
    *relations, column = path.split(".")
    for name in relations:
        model = inspect(model).relationships[name].mapper.class_
    return model, column


def personal_id_fields(app) -> set:
    fields = set()
    for view in registered(app, ScopedModelView) + registered(app, ScopedModelRestApi):
        for path in view.personal_id_columns:
            fields.add(resolve(view.datamodel.obj, path))
    return fields


def id_search_paths(view, fields):
    """(search column, filters offered, how to read a row's ID) for every search column of
    `view` that reaches a personal-ID field: the column itself, or a relation to a model
    holding one, searched by a text filter (FAB's own relation filters match by key)."""
    model = view.datamodel.obj
    offered = view._filters.get_search_filters()
    for col in view.search_columns or []:
        filters = offered.get(col) or []
        rel = inspect(model).relationships.get(col)
        if rel is None:
            if resolve(model, col) in fields:
                yield col, filters, col
            continue
        for target, field in fields:
            if rel.mapper.class_ is target:
                text_filters = [f for f in filters if not isinstance(f, FilterRelation)]
                if text_filters:
                    yield col, text_filters, f"{col}.{field}"


def read_path(row, path):
    for part in path.split("."):
        row = getattr(row, part, None)
    return row


def a_visible_row(db, view, user, path):
    """A row the user can see on `view` whose ID (at `path`) is a 10-character personal ID."""
    model = view.datamodel.obj
    visible, _ = expected_split(db, model, user)
    if view._base_filters and view._base_filters.filters:
        # A view that lists a subset by design (identity conflicts) shows only that subset.
        visible &= {row.id for row in view._base_filters.apply_all(db.session.query(model))}
    for pk in sorted(visible):
        value = read_path(db.session.get(model, pk), path)
        if isinstance(value, str) and len(value) == 10:
            return pk, value
    return None, None


def _other(char: str) -> str:
    if char.isdigit():
        return str((int(char) + 5) % 10)
    return "Q" if char.upper() != "Q" else "J"


def probes(value: str):
    """(correct partial, wrong partial) pairs: prefixes of 1..9 characters, and the tails
    that reach into the masked digits (ends-with / contains)."""
    for k in range(1, 10):
        yield value[:k], value[: k - 1] + _other(value[k - 1])
    for k in (4, 7):
        yield value[-k:], _other(value[-k]) + value[-k + 1 :]


def record_count(html: str) -> int:
    match = re.search(r"資料筆數\s*:?\s*([\d,]+)", visible_text(html))
    return int(match.group(1).replace(",", "")) if match else 0


class HtmlList:
    def __init__(self, client, view):
        self.client, self.view = client, view
        self.base, self.name = view.route_base, type(view).__name__

    def operators(self, col, filters):
        """(label, how to ask) for each operator: the `_flt_<n>_` index of `_all_filters`."""
        everything = self.view._filters._all_filters.get(col) or []
        for n, flt in enumerate(everything[:MAX_HTML_INDEX]):
            if any(type(flt) is type(f) for f in filters):
                yield f"_flt_{n}_ ({flt.arg_name})", flt.arg_name, n

    def answer(self, col, how, value, size=25):
        response = self.client.get(
            f"{self.base}/list/", query_string={f"_flt_{how}_{col}": value, f"psize_{self.name}": size}
        )
        assert response.status_code < 500, f"{self.name} {col} {how} {value}: {response.status_code}"
        return response.status_code, record_count(response.text), show_ids(self.view, response.text)


class ApiList:
    def __init__(self, client, headers, api):
        self.client, self.headers, self.api = client, headers, api
        self.base, self.name = f"/api/v1/{api.resource_name}/", type(api).__name__

    def operators(self, col, filters):
        for flt in filters:
            yield f"opr:{flt.arg_name}", flt.arg_name, flt.arg_name

    def answer(self, col, how, value, size=25):
        q = {"filters": [{"col": col, "opr": how, "value": value}], "page_size": size}
        response = self.client.get(self.base, query_string={"q": prison.dumps(q)}, headers=self.headers)
        assert response.status_code < 500, f"{self.name} {col} {how} {value}: {response.status_code}"
        body = response.json or {}
        return response.status_code, body.get("count"), set(body.get("ids") or [])


def _lists(app, login_as, api_as, username):
    client = login_as(username)
    api_client, headers = api_as(username)
    for view in registered(app, ScopedModelView):
        if can(app, username, "read", view.class_permission_name):
            yield view, HtmlList(client, view)
    for api in registered(app, ScopedModelRestApi):
        if can(app, username, "read", api.class_permission_name):
            yield api, ApiList(api_client, headers, api)


def test_masked_users_exist(app, db):
    """The probes below run as the demo users who see IDs masked: bureaus and the ministry."""
    assert {"bureau_tpe", "bureau_khh", "ministry"} <= set(masked_users(app))


@pytest.mark.parametrize("username", ["bureau_tpe", "bureau_khh", "ministry"])
def test_no_prefix_recovery_through_filters(app, db, login_as, api_as, username):
    """issue 12 class 2: every filter that reaches a masked personal ID answers a correct
    partial value exactly as a wrong one (nothing, for operators that include), on every
    view and API and every operator; the exact full ID still finds the row."""
    assert not sees_full_ids(app, username)
    user = user_view(db, username, frozen=True)  # reads only
    fields = personal_id_fields(app)
    assert fields, "no view declares personal_id_columns"
    problems, probed = [], 0
    for view, lister in _lists(app, login_as, api_as, username):
        for col, filters, path in id_search_paths(view, fields):
            pk, national_id = a_visible_row(db, view, user, path)
            if pk is None:
                continue
            for label, arg, how in lister.operators(col, filters):
                where = f"{lister.name} {col} {label}"
                full = lister.answer(col, how, national_id.lower(), size=500)
                if arg not in NEGATIVE and not (pk in full[2] or full[1] > 500):
                    problems.append(f"{where}: the exact full ID does not find row {pk}")
                for correct, wrong in probes(national_id):
                    probed += 1
                    right, other = lister.answer(col, how, correct), lister.answer(col, how, wrong)
                    if right != other:
                        problems.append(
                            f"{where}: {correct!r} answers {right[:2]}, {wrong!r} answers {other[:2]}"
                        )
                        break
                    if arg not in NEGATIVE and right[1]:
                        problems.append(f"{where}: partial {correct!r} matches {right[1]} rows")
                        break
    assert probed, f"nothing probed for {username}"
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("username", ["bureau_tpe", "ministry"])
def test_starts_with_answers_alike_for_correct_and_wrong_prefix(app, db, login_as, api_as, username):
    """issue 12 class 2 (scope matrix): `national_id sw <correct prefix>` and `sw <wrong
    prefix>` give the same answer on every list and API with a masked national-ID column."""
    user = user_view(db, username, frozen=True)  # reads only
    fields = personal_id_fields(app)
    problems, checked = [], 0
    for view, lister in _lists(app, login_as, api_as, username):
        for col, filters, path in id_search_paths(view, fields):
            starts = [(label, how) for label, arg, how in lister.operators(col, filters) if arg == "sw"]
            pk, national_id = a_visible_row(db, view, user, path)
            if not starts or pk is None:
                continue
            label, how = starts[0]
            for k in (2, 5, 8):
                checked += 1
                right = lister.answer(col, how, national_id[:k])
                wrong = lister.answer(col, how, national_id[: k - 1] + _other(national_id[k - 1]))
                if right != wrong:
                    problems.append(f"{lister.name} {col} {label} {k}: {right[:2]} vs {wrong[:2]}")
    assert checked
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("username", ["office", "facility_tpe"])
def test_full_id_roles_keep_prefix_search(app, db, login_as, api_as, username):
    """Roles that see IDs in full still find a person by the first digits of the ID."""
    assert sees_full_ids(app, username)
    user = user_view(db, username, frozen=True)  # reads only
    fields = personal_id_fields(app)
    checked = 0
    for view, lister in _lists(app, login_as, api_as, username):
        for col, filters, path in id_search_paths(view, fields):
            pk, national_id = a_visible_row(db, view, user, path)
            if pk is None:
                continue
            ops = [(arg != "sw", how) for _label, arg, how in lister.operators(col, filters)
                   if arg not in NEGATIVE]  # fmt: skip
            ops = [how for _rank, how in sorted(ops, key=lambda o: o[0])]
            status, count, ids = lister.answer(col, ops[0], national_id[:6], size=500)
            assert status == 200 and pk in ids, f"{lister.name} {col}: prefix search lost ({count})"
            checked += 1
    assert checked


def _search_form_operators(html: str, col: str) -> list[str] | None:
    match = re.search(r"new AdminFilters\((.*?)\);", html, re.S)
    assert match, "no search form"
    # The third and fourth arguments: form fields, then the operators per column.
    args = match.group(1)
    for blob in re.findall(r"(\{.*?\})\s*,", args, re.S):
        try:
            data = json.loads(blob)
        except ValueError:
            continue
        if isinstance(data.get(col), list):
            return data[col]
    return None


@pytest.mark.parametrize("username", ["bureau_khh", "ministry", "office"])
def test_search_form_offers_masked_columns_only_as_equal(app, db, login_as, api_as, username):
    """The search form (HTML) and `_info` (API) offer a masked column "equal to" only; a role
    that sees IDs in full is offered every operator."""
    masked = not sees_full_ids(app, username)
    fields = personal_id_fields(app)
    checked = 0
    for view, lister in _lists(app, login_as, api_as, username):
        for col, filters, _path in id_search_paths(view, fields):
            if isinstance(filters[0], FilterRelation) or not any(
                resolve(view.datamodel.obj, col) == f for f in fields
            ):
                continue  # a related text filter: one operator, matched exactly when masked
            if isinstance(lister, HtmlList):
                html = lister.client.get(f"{lister.base}/list/").text
                offered = _search_form_operators(html, col)
            else:
                q = prison.dumps({"keys": ["filters"]})
                info = lister.client.get(f"{lister.base}_info?q={q}", headers=lister.headers)
                offered = [f["operator"] for f in info.json["filters"][col]]
                assert not masked or offered == ["eq"], f"{lister.name}: {offered}"
            assert offered is not None, f"{lister.name}: {col} not in the search form"
            if masked:
                assert len(offered) == 1, f"{lister.name} {col} offers {offered} to {username}"
            else:
                assert len(offered) == len(filters) > 1, f"{lister.name} {col}: {offered}"
            checked += 1
    assert checked


def _default_and_ordered(lister, path, direction):
    if isinstance(lister, HtmlList):
        base = f"{lister.base}/list/?psize_{lister.name}=100"
        default = lister.client.get(base)
        ordered = lister.client.get(f"{base}&_oc_{lister.name}={path}&_od_{lister.name}={direction}")
        assert ordered.status_code < 500, f"{lister.name} _oc_ {path}: {ordered.status_code}"
        ids = lambda r: re.findall(rf"{re.escape(lister.base)}/show/(\d+)", r.text)  # noqa: E731
        return ordered.status_code, ids(default), ids(ordered)
    q = {"page_size": 100}
    default = lister.client.get(lister.base, query_string={"q": prison.dumps(q)}, headers=lister.headers)
    q.update(order_column=path, order_direction=direction)
    ordered = lister.client.get(lister.base, query_string={"q": prison.dumps(q)}, headers=lister.headers)
    assert ordered.status_code < 500, f"{lister.name} order_column {path}: {ordered.status_code}"
    return ordered.status_code, default.json["ids"], (ordered.json or {}).get("ids")


@pytest.mark.parametrize("username", ["bureau_tpe", "ministry"])
def test_ordering_by_a_masked_column_reveals_no_order(app, db, login_as, api_as, username):
    """issue 12 class 2: `_oc_<View>=<masked column>` (lists, their exports) and the API's
    order_column leave the default order (or are refused with 400)."""
    problems, checked = [], 0
    for view, lister in _lists(app, login_as, api_as, username):
        for path in view.personal_id_columns:
            for direction in ("asc", "desc"):
                status, default, ordered = _default_and_ordered(lister, path, direction)
                checked += 1
                if status != 400 and ordered != default:
                    problems.append(f"{lister.name} ordered by {path} {direction}")
            if isinstance(lister, HtmlList) and can(app, username, "export", view.class_permission_name):
                base = f"{lister.base}/export/xlsx"
                default = lister.client.get(base)
                ordered = lister.client.get(f"{base}?_oc_{lister.name}={path}&_od_{lister.name}=desc")
                if ordered.status_code == 400:
                    continue  # refused (not one of the view's sort columns): no order shown
                assert ordered.status_code == 200, f"{lister.name} export: {ordered.status_code}"
                rows = [
                    list(load_workbook(io.BytesIO(r.data), read_only=True).active.iter_rows(values_only=True))
                    for r in (default, ordered)
                ]
                if rows[0] != rows[1]:
                    problems.append(f"{lister.name} export ordered by {path}")
    assert checked
    assert not problems, "\n".join(problems)


def test_api_refuses_to_order_by_a_masked_column_even_when_offered(app, db, api_as, monkeypatch):
    """issue 12 class 2: an API that offers ordering by a personal-ID column (none does
    today) refuses it, with a zh_TW message, to a role that sees the column masked, and
    still orders by it for a role that sees it in full."""
    fields = personal_id_fields(app)
    checked = 0
    for api in registered(app, ScopedModelRestApi):
        for path in api.personal_id_columns:
            if "." in path or resolve(api.datamodel.obj, path) not in fields:
                continue
            if not all("read" in ROLE_GRANTS[role].get(api.class_permission_name, ())
                       for role in ("Bureau", "Office")):
                continue  # another programme's API: neither user may read it at all (A1)
            monkeypatch.setattr(api, "order_columns", [*api.order_columns, path])
            q = prison.dumps({"order_column": path, "order_direction": "asc", "page_size": 100})
            client, headers = api_as("bureau_tpe")
            refused = client.get(f"/api/v1/{api.resource_name}/?q={q}", headers=headers)
            assert refused.status_code == 400, refused.text
            assert "遮蔽" in refused.json["message"], refused.json
            client, headers = api_as("office")
            ordered = client.get(f"/api/v1/{api.resource_name}/?q={q}", headers=headers)
            assert ordered.status_code == 200, ordered.text
            values = [row[path] for row in ordered.json["result"]]
            assert values == sorted(values) and len(values) > 1
            checked += 1
    assert checked


def test_a_full_id_users_cached_count_is_not_served_to_a_masked_user(app, db, login_as):
    """issue 12 class 2: the office (full IDs) and the ministry (masked) share a national
    scope; the office's count for a national-ID prefix must not be served, from the count
    cache, to the ministry asking the same filter (it would tell how many IDs start so)."""
    from models.cessation.visit import Quitter

    national_id = db.session.query(Quitter.national_id).order_by(Quitter.id).limit(1).scalar()
    url = f"/quitterview/list/?_flt_0_national_id={national_id[:4]}"
    assert record_count(login_as("office").get(url).text) > 0
    assert record_count(login_as("ministry").get(url).text) == 0
    assert record_count(login_as("office").get(url).text) > 0


def test_no_sort_link_on_a_masked_column(app, db, login_as, monkeypatch):
    """issue 12 class 2: a list that offers sorting by a personal-ID column (none does today)
    shows no sort link on it to a role that sees it masked, and ignores the order asked."""
    checked = 0
    for view in registered(app, ScopedModelView):
        for path in view.personal_id_columns:
            if path not in view.list_columns:
                continue
            monkeypatch.setattr(view, "order_columns", [*view.order_columns, path])
            name = type(view).__name__
            link = f"_oc_{name}={path}"
            page = login_as("office").get(f"{view.route_base}/list/").text
            if not record_count(page):
                continue  # an empty list has no header to sort by
            assert link in page
            assert link not in login_as("ministry").get(f"{view.route_base}/list/").text
            checked += 1
    assert checked


def test_masked_id_rule_holds_on_the_api_before_anyone_reads_the_openapi_document(app, db):
    """issue 12 class 2 (found again): the APIs put their filters under the personal-ID rule
    when the OpenAPI document was built, so in a fresh process a masked viewer found
    quitters by an ID prefix through the API (`national_id sw A` answered 258 rows) until
    someone had asked for /api/v1/_openapi. A fresh app over the same database, no document
    built: every API with personal-ID columns refuses the prefix from its first request."""
    from app import create_app
    from core.data.filters import PersonalIdFilters
    from tests.conftest import PASSWORD

    fresh = create_app({**app.config})
    apis = [a for a in registered(fresh, ScopedModelRestApi) if a.personal_id_columns]
    assert apis, "no API declares personal_id_columns"
    assert all(type(api._filters) is PersonalIdFilters for api in apis), [
        type(api).__name__ for api in apis if type(api._filters) is not PersonalIdFilters
    ]
    client = fresh.test_client()
    login = client.post(
        "/api/v1/security/login",
        json={"username": "ministry", "password": PASSWORD, "provider": "db"},
    )
    assert login.status_code == 200, login.text
    headers = {"Authorization": f"Bearer {login.json['access_token']}"}
    probed = 0
    for api in apis:
        for column in api.personal_id_columns:
            if "." in column or column not in api.search_columns:
                continue
            query = prison.dumps({"filters": [{"col": column, "opr": "sw", "value": "A"}]})
            answer = client.get(f"/api/v1/{api.resource_name}/?q={query}", headers=headers)
            if answer.status_code == 200:  # 404: the other programme's API (A1)
                probed += 1
                assert answer.json["count"] == 0, f"{api.resource_name}: {answer.json['count']} rows"
    assert probed
