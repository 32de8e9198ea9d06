"""The scope matrix: every role × every registered view and API (A1: each user's functions
follow their role, and their rows follow their scope).

Out-of-scope rows are absent from lists, exports, API lists, form dropdowns and search
dropdowns, and answer 404 on show, edit, delete, action, download and API get/put/delete.
Views are discovered from the running AppBuilder, so a view added later is covered without
touching this file (its model needs an oracle in tests/scope_oracle.py).
"""

from __future__ import annotations

import io
import re

import prison
import pytest
from openpyxl import load_workbook

from core.security.permissions import self_service_permissions
from core.security.roles import ADMIN
from core.web.views import ScopedModelRestApi, ScopedModelView, ScopedReportView
from tests.conftest import USERNAMES, csrf_token
from tests.scope_oracle import expected_split, user_view

BIG_PAGE = 500


def registered(app, cls):
    return [v for v in app.appbuilder.baseviews if isinstance(v, cls)]


def can(app, username, permission, resource) -> bool:
    from models.platform.user import ScopedUser

    sm = app.appbuilder.sm
    user = sm.session.query(ScopedUser).filter_by(username=username).one()
    return (f"can_{permission}", resource) in sm.permissions_for_roles(sm._role_ids(user))


def show_ids(view, html: str) -> set[int]:
    return {int(pk) for pk in re.findall(rf"{re.escape(view.route_base)}/show/(\d+)", html)}


def select_options(html: str, field: str) -> set[str]:
    match = re.search(rf'<select[^>]*\bname="{field}"[^>]*>(.*?)</select>', html, re.S)
    if not match:
        return set()
    return {v for v in re.findall(r'<option[^>]*value="([^"]*)"', match.group(1)) if v not in ("", "__None")}


def relation_fields(view, columns):
    dm = view.datamodel
    return [
        c for c in columns or []
        if c in dm.list_properties and (dm.is_relation_many_to_one(c) or dm.is_relation_many_to_many(c))
    ]  # fmt: skip


@pytest.mark.parametrize("username", USERNAMES)
def test_scope_matrix_views(app, db, login_as, username):
    """Lists, exports, dropdowns and every by-key endpoint of every ModelView, per role."""
    client = login_as(username)
    user = user_view(db, username)
    problems: list[str] = []
    views = registered(app, ScopedModelView)
    assert views, "no scoped views registered"
    for view in views:
        model = view.datamodel.obj
        visible, hidden = expected_split(db, model, user)
        if view._base_filters and view._base_filters.filters:
            # A view that lists a subset by design (e.g. identity conflicts) lists the
            # visible rows of that subset: its own filters, applied without scope.
            visible &= {row.id for row in view._base_filters.apply_all(db.session.query(model))}
        base = view.route_base
        name = type(view).__name__
        if not can(app, username, "read", view.class_permission_name):
            response = client.get(f"{base}/list/")
            if response.status_code == 200:
                problems.append(f"{name}: list open without read permission")
            continue
        # list (one big page) shows exactly the visible rows
        response = client.get(f"{base}/list/?psize_{name}={BIG_PAGE}")
        assert response.status_code == 200, f"{name} list: {response.status_code}"
        listed = show_ids(view, response.text)
        if listed - visible:
            problems.append(f"{name}: list shows out-of-scope rows {sorted(listed - visible)[:5]}")
        if len(visible) <= BIG_PAGE and listed != visible:
            problems.append(f"{name}: list misses in-scope rows {sorted(visible - listed)[:5]}")
        # search-form dropdowns: only rows the user may see
        for field in relation_fields(view, view.search_columns):
            related = view.datamodel.get_related_model(field)
            rel_visible, _ = expected_split(db, related, user)
            options = {int(v) for v in select_options(response.text, field) if v.isdigit()}
            if options - rel_visible:
                problems.append(f"{name}: search dropdown {field} leaks {sorted(options - rel_visible)[:5]}")
        # export: same rows as the list, never more
        if can(app, username, "export", view.class_permission_name):
            response = client.get(f"{base}/export/xlsx")
            assert response.status_code == 200, f"{name} export: {response.status_code}"
            sheet = load_workbook(io.BytesIO(response.data), read_only=True).active
            exported = sheet.max_row - 1
            if exported != len(visible):
                problems.append(f"{name}: export has {exported} rows, scope has {len(visible)}")
        # add form: related choices, including the ?_flt_ pre-fill of a hidden row
        if can(app, username, "create", view.class_permission_name):
            for field in relation_fields(view, view.add_columns):
                related = view.datamodel.get_related_model(field)
                rel_visible, rel_hidden = expected_split(db, related, user)
                url = f"{base}/add"
                if rel_hidden:
                    url += f"?_flt_0_{field}={min(rel_hidden)}"
                html = client.get(url).text
                options = {int(v) for v in select_options(html, field) if v.isdigit()}
                if options - rel_visible:
                    problems.append(f"{name}: add dropdown {field} leaks {sorted(options - rel_visible)[:5]}")
        # every by-key endpoint answers 404 for a hidden row, and changes nothing
        if hidden:
            pk = min(hidden)
            token = csrf_token(app, client)
            checks = {
                "show": client.get(f"{base}/show/{pk}"),
                "edit GET": client.get(f"{base}/edit/{pk}"),
                "edit POST": client.post(f"{base}/edit/{pk}", data={"csrf_token": token}),
                "delete POST": client.post(f"{base}/delete/{pk}", data={"csrf_token": token}),
                "download": client.get(f"{base}/download/{pk}.pdf"),
            }
            for action_name in list(view.actions) or ["no_such_action"]:
                checks[f"action {action_name}"] = client.post(
                    f"{base}/action/{action_name}/{pk}", data={"csrf_token": token}
                )
                checks[f"action_post {action_name}"] = client.post(
                    f"{base}/action_post",
                    data={"action": action_name, "rowid": [str(pk)], "csrf_token": token},
                )
            for label, response in checks.items():
                allowed = {404}
                if label.startswith(("edit", "delete")) and not can(
                    app, username, label.split()[0], view.class_permission_name
                ):
                    allowed = {302, 403, 404}  # no permission: refused before the lookup
                if response.status_code not in allowed:
                    problems.append(f"{name}: {label} of hidden row {pk} -> {response.status_code}")
            db.session.expire_all()
            still_there = db.session.get(model, pk)
            if still_there is None:
                problems.append(f"{name}: hidden row {pk} was deleted by {username}")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("username", USERNAMES)
def test_scope_matrix_apis(app, db, api_as, username):
    """REST list/get/put/delete and the _info dropdown choices of every API, per role."""
    client, headers = api_as(username)
    user = user_view(db, username)
    problems: list[str] = []
    apis = registered(app, ScopedModelRestApi)
    assert apis, "no scoped APIs registered"
    for api in apis:
        model = api.datamodel.obj
        visible, hidden = expected_split(db, model, user)
        base = f"/api/v1/{api.resource_name}"
        name = type(api).__name__
        if not can(app, username, "read", api.class_permission_name):
            response = client.get(f"{base}/", headers=headers)
            if response.status_code not in (401, 403):
                problems.append(f"{name}: list without permission -> {response.status_code}")
            continue
        seen: set[int] = set()
        page = 0
        while True:
            query = prison.dumps({"page": page, "page_size": 100})
            response = client.get(f"{base}/?q={query}", headers=headers)
            assert response.status_code == 200, f"{name}: {response.status_code} {response.text}"
            ids = set(response.json["ids"])
            seen |= ids
            if len(ids) < 100:
                break
            page += 1
        if seen != visible:
            problems.append(
                f"{name}: API list extra {sorted(seen - visible)[:5]} missing {sorted(visible - seen)[:5]}"
            )
        if response.json.get("count") is not None and response.json["count"] != len(visible):
            problems.append(f"{name}: API count {response.json['count']} != {len(visible)}")
        info = client.get(f"{base}/_info?q={prison.dumps({'keys': ['add_columns', 'edit_columns']})}", headers=headers)
        if info.status_code == 200:
            for column in info.json.get("add_columns", []) + info.json.get("edit_columns", []):
                values = column.get("values") or []
                if not values or column["name"] not in api.datamodel.list_properties:
                    continue
                related = api.datamodel.get_related_model(column["name"])
                rel_visible, _ = expected_split(db, related, user)
                ids = {v["id"] for v in values}
                if ids - rel_visible:
                    problems.append(f"{name}: _info choices for {column['name']} leak {sorted(ids - rel_visible)[:5]}")
        if hidden:
            pk = min(hidden)
            for method in ("get", "put", "delete"):
                kwargs = {"json": {}} if method == "put" else {}
                response = getattr(client, method)(f"{base}/{pk}", headers=headers, **kwargs)
                if response.status_code not in (404,) and not (
                    method != "get" and response.status_code in (401, 403, 405)
                ):
                    problems.append(f"{name}: {method.upper()} hidden {pk} -> {response.status_code}")
            db.session.expire_all()
            if db.session.get(model, pk) is None:
                problems.append(f"{name}: hidden row {pk} deleted through the API by {username}")
    assert not problems, "\n".join(problems)


def test_views_outside_the_scoped_base_are_admin_only(app, db):
    """FAB's own views (users, roles, permissions) are not scoped: only Admin may use them."""
    from flask_appbuilder.security.sqla.models import Role

    scoped = {
        v.class_permission_name
        for v in app.appbuilder.baseviews
        if isinstance(v, ScopedModelView | ScopedModelRestApi | ScopedReportView)
    } | {"PersonalId"}
    self_service = self_service_permissions(app.appbuilder)
    # The OpenAPI document describes the endpoints and holds no row: API users may read it.
    self_service |= {("can_get", "OpenApi")}
    menus = {item.name for cat in app.appbuilder.menu.get_list() for item in [cat, *cat.childs]}
    for role in db.session.query(Role).all():
        if role.name == ADMIN:
            continue
        for pv in role.permissions:
            pair = (pv.permission.name, pv.view_menu.name)
            ok = pair in self_service or pv.view_menu.name in scoped or (
                pv.permission.name == "menu_access" and pv.view_menu.name in menus
            )
            assert ok, f"role {role.name} holds {pair} on an unscoped view"


@pytest.mark.parametrize("username", ["facility_tpe", "bureau_khh"])
def test_get_to_a_delete_url_deletes_nothing(app, db, login_as, username):
    """With CSRFProtect registered before AppBuilder, GET /delete/<pk> is refused (trap 3)."""
    from models.registry.practitioner import ServiceAssignment

    client = login_as(username)
    user = user_view(db, username)
    visible, _ = expected_split(db, ServiceAssignment, user)
    pk = min(visible)
    response = client.get(f"/serviceassignmentview/delete/{pk}")
    assert response.status_code in (302, 400, 403)
    db.session.expire_all()
    assert db.session.get(ServiceAssignment, pk) is not None


@pytest.mark.parametrize("username", USERNAMES)
def test_scope_matrix_reference_by_id_writes(app, db, api_as, username):
    """Issue 12 class 1, FAB trap 10: every API write (POST, and PUT on a row in scope) that
    names a related row by id answers a row the writer cannot read exactly like one that
    does not exist, and writes nothing. APIs and relations are discovered, not listed."""
    client, headers = api_as(username)
    user = user_view(db, username)
    problems: list[str] = []
    for api in registered(app, ScopedModelRestApi):
        model = api.datamodel.obj
        base = f"/api/v1/{api.resource_name}"
        visible_rows, _ = expected_split(db, model, user)
        writes = []
        if can(app, username, "create", api.class_permission_name):
            writes += [("post", base + "/", c) for c in relation_fields(api, api.add_columns)]
        if visible_rows and can(app, username, "edit", api.class_permission_name):
            target = f"{base}/{min(visible_rows)}"
            writes += [("put", target, c) for c in relation_fields(api, api.edit_columns)]
        for method, url, column in writes:
            related = api.datamodel.get_related_model(column)
            _, hidden = expected_split(db, related, user)
            if not hidden:
                continue
            missing = (db.session.query(related.id).order_by(related.id.desc()).first()[0]) + 10_000
            before = db.session.query(model).count()
            answers = [
                getattr(client, method)(url, headers=headers, json={column: pk})
                for pk in (min(hidden), missing)
            ]
            db.session.expire_all()
            if db.session.query(model).count() != before:
                problems.append(f"{api.resource_name}: {method} {column} wrote a row")
            statuses = [a.status_code for a in answers]
            if statuses[0] >= 500 or statuses[0] in (200, 201):
                problems.append(f"{api.resource_name}: {method} {column}=hidden -> {statuses[0]}")
            if statuses[0] != statuses[1] or answers[0].get_json() != answers[1].get_json():
                problems.append(
                    f"{api.resource_name}: {method} {column}: hidden {statuses[0]} "
                    f"{answers[0].get_json()} != missing {statuses[1]} {answers[1].get_json()}"
                )
    assert not problems, "\n".join(problems)
