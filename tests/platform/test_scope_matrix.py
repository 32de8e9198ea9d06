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
    user = user_view(db, username, frozen=True)  # asserts it changes nothing
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
        every = "".join(f"&{key}={value}" for key, value in view.list_all_args.items())
        response = client.get(f"{base}/list/?psize_{name}={BIG_PAGE}{every}")
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
            exported = sheet.max_row - 2  # below the title row and the headers
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
    user = user_view(db, username, frozen=True)  # asserts it changes nothing
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
            if response.status_code not in (401, 403, 404):  # 404: the other programme's (A1)
                problems.append(f"{name}: list without permission -> {response.status_code}")
            continue
        # Like the list page (BIG_PAGE): every row up to five pages of 100, and then the last
        # page, with the count proving that nothing beyond them is extra or missing.
        seen: set[int] = set()
        pages = [0, 1, 2, 3, 4]
        count = None
        while pages:
            page = pages.pop(0)
            query = prison.dumps({"page": page, "page_size": 100})
            response = client.get(f"{base}/?q={query}", headers=headers)
            assert response.status_code == 200, f"{name}: {response.status_code} {response.text}"
            ids = set(response.json["ids"])
            seen |= ids
            count = response.json.get("count", count)
            if len(ids) < 100:
                break
            if count is None:
                pages = [page + 1]  # no count to vouch for the rest: read them all
            elif not pages and page < 5 and count > (page + 1) * 100:
                pages = [(count - 1) // 100]  # the last page, once
        complete = count is None or count <= 5 * 100  # then every page was read
        if seen - visible or (complete and seen != visible):
            problems.append(
                f"{name}: API list extra {sorted(seen - visible)[:5]} missing {sorted(visible - seen)[:5]}"
            )
        if count is not None and count != len(visible):
            problems.append(f"{name}: API count {count} != {len(visible)}")
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
    user = user_view(db, username, frozen=True)  # asserts it changes nothing
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


# ------------------------------------------------------------ programme separation (A1)
def _resources_of(module) -> set[str]:
    """The resources a programme's grants module names: its own constants and its grants,
    less what it borrows (registry resources, the framework's permissions and actions)."""
    import core.security.permissions as permissions
    from domain.registry import grants as registry

    def constants(mod):
        return {v for k, v in vars(mod).items() if k.isupper() and isinstance(v, str)}

    shared = constants(registry) | constants(permissions)
    granted = {resource for table in module.GRANTS.values() for resource in table}
    return (constants(module) | granted) - shared


def programmes() -> dict[str, set[str]]:
    """Programme -> its resources, read from domain/cessation and domain/addiction grants."""
    from domain.addiction import grants as addiction
    from domain.cessation import grants as cessation

    return {"cessation": _resources_of(cessation), "addiction": _resources_of(addiction)}


def programmes_of_roles(role_names) -> set[str]:
    """The programmes a user's roles belong to (a role granted a programme's resources)."""
    from domain.addiction import grants as addiction
    from domain.cessation import grants as cessation

    tables = {"cessation": cessation.GRANTS, "addiction": addiction.GRANTS}
    return {programme for programme, table in tables.items() if set(role_names) & set(table)}


def _one_programme_users(app) -> list[tuple[str, str]]:
    """(username, the programme they must not reach) for each demo user of one programme only,
    or of neither (the helpdesk reaches no programme): found from their roles, not listed."""
    from models.platform.user import ScopedUser

    with app.app_context():
        users = app.appbuilder.sm.session.query(ScopedUser).filter(
            ScopedUser.username.in_(USERNAMES)
        )
        pairs = []
        for user in users.order_by(ScopedUser.username):
            names = {r.name for r in user.roles}
            if ADMIN in names:
                continue
            held = programmes_of_roles(names)
            pairs += [(user.username, other) for other in ("cessation", "addiction") if other not in held]
        return pairs


def test_programme_resources_cover_every_registered_view(app):
    """A1: every registered view and API is classified: one programme's, or shared (registry,
    accounts, platform); no resource belongs to both programmes, and each programme has views."""
    split = programmes()
    assert not split["cessation"] & split["addiction"]
    names = {v.class_permission_name for v in app.appbuilder.baseviews
             if isinstance(v, ScopedModelView | ScopedModelRestApi | ScopedReportView)}  # fmt: skip
    assert names & split["cessation"] and names & split["addiction"]
    # The separation test below walks exactly these: a user of one programme found by roles.
    pairs = _one_programme_users(app)
    assert {other for _, other in pairs} == {"cessation", "addiction"}


def _other_programme_urls(app, resources: set[str], sample_pk: int):
    """Every GET URL of every registered view or API of those resources (list, show, edit,
    export, download, API list and get …), discovered from the URL map."""
    endpoints = {
        type(v).__name__: v for v in app.appbuilder.baseviews
        if getattr(v, "class_permission_name", None) in resources
    }  # fmt: skip
    for rule in app.url_map.iter_rules():
        view_name = rule.endpoint.split(".")[0]
        if view_name not in endpoints or "GET" not in (rule.methods or ()):
            continue
        values = {}
        for arg in rule.arguments:
            converter = rule._converters[arg]
            values[arg] = sample_pk if type(converter).__name__ == "IntegerConverter" else str(sample_pk)
        try:
            with app.test_request_context():
                from flask import url_for

                url = url_for(rule.endpoint, **values)
        except Exception:  # an argument that takes no sample (a file name …): its own form
            url = rule.rule
            for arg in rule.arguments:
                url = re.sub(rf"<(?:[^:<>]+:)?{arg}>", str(sample_pk), url)
        yield endpoints[view_name], url


def _menu_targets(html: str) -> set[str]:
    return set(re.findall(r'href="(/[^"?#]*)', html))


def test_a1_programme_separation(app, db, login_as, api_as):
    """A1, both directions: a user whose roles are of one programme only (a cessation facility
    or office; an addiction treatment institution), or of neither (the helpdesk), reaches
    nothing of the other programme — no menu entry, and every screen and API URL of it (list,
    show, edit, export, download, API list and get) answers 404 as if it did not exist, for
    rows that exist. Users and programmes are found from roles and grants."""
    pairs = _one_programme_users(app)
    # Both directions are exercised: a cessation-only user and an addiction-only one exist.
    assert {other for _, other in pairs} == {"cessation", "addiction"}, pairs
    for username, other in pairs:  # users holding both programmes' roles have no "other"
        _assert_unreachable(app, db, login_as, api_as, username, other)


def _assert_unreachable(app, db, login_as, api_as, username, other):
    resources = programmes()[other]
    client = login_as(username)
    api_client, headers = api_as(username)
    problems = []
    # Menus: no entry of the other programme's screens, nor their category.
    home = client.get("/")
    targets = _menu_targets(home.text)
    # The menus proper (the brand, before them, names the whole system).
    navbar = re.split(r'class="[^"]*navbar-collapse', home.text, maxsplit=1)[-1].split("</header>", 1)[0]
    for view in registered(app, ScopedModelView) + registered(app, ScopedReportView):
        if view.class_permission_name in resources:
            leaked = {t for t in targets if t.startswith(view.route_base + "/")}
            if leaked:
                problems.append(f"menu shows {type(view).__name__}: {sorted(leaked)[:2]}")
    for category in app.appbuilder.menu.get_list():
        children = [c for c in category.childs if c.name != "-"]
        owned = [
            c for c in children
            if any(type(v).__name__ == getattr(c, "baseview", None).__class__.__name__
                   or (c.href and v.route_base and str(c.href).startswith(v.route_base))
                   for v in app.appbuilder.baseviews
                   if getattr(v, "class_permission_name", None) in resources)
        ]  # fmt: skip
        if children and len(owned) == len(children) and str(category.label) in navbar:
            problems.append(f"menu shows the category {category.label}")
    # Every URL, with a row that exists (so a 404 is a refusal, not a miss).
    checked = 0
    for view, url in _other_programme_urls(app, resources, _existing_pk(db, app, resources)):
        api = url.startswith("/api/")
        response = api_client.get(url, headers=headers) if api else client.get(url)
        checked += 1
        status = response.status_code
        # 404, as a row outside the scope: a 403 would tell the page is there (A1). 405 is
        # a POST-only URL, refused before anyone is asked.
        if status not in (404, 405):
            problems.append(f"{type(view).__name__} {url} -> {status}")
    assert checked, f"no URL of the {other} programme found"
    assert not problems, "\n".join(problems)


def _existing_pk(db, app, resources) -> int:
    """The smallest id of a row of the other programme's first view's model that has rows."""
    for view in registered(app, ScopedModelView):
        if view.class_permission_name in resources:
            row = db.session.query(view.datamodel.obj.id).order_by(view.datamodel.obj.id).first()
            if row:
                return row[0]
    return 1
