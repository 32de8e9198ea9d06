"""zh_TW everywhere: pages render with no Simplified Chinese, no mainland vocabulary, and no
English string left untranslated (FAB's own included); English stays one click away."""

from __future__ import annotations

import importlib.util

import pytest

from core.web.views import ScopedModelView
from tests.conftest import visible_text
from tests.i18n_check import PO, ROOT, _catalog, simplified_fragments
from tests.i18n_check import page_problems as _problems


def _pages(app, db):
    from models.registry.institution import Institution

    views = [v for v in app.appbuilder.baseviews if isinstance(v, ScopedModelView)]
    pages = ["/", "/users/list/", "/roles/list/", "/users/userinfo/", "/users/add"]
    for view in views:
        pages.append(f"{view.route_base}/list/")
        if "can_create" in view.base_permissions:
            pages.append(f"{view.route_base}/add")
        first = db.session.query(view.datamodel.obj).first()
        if first is not None:
            pages.append(f"{view.route_base}/show/{first.id}")
    first = db.session.query(Institution).first()
    pages.append(f"/institutionview/edit/{first.id}")
    return pages


def test_login_and_public_pages_are_traditional_chinese(app):
    client = app.test_client()
    response = client.get("/login/")
    assert response.status_code == 200
    text = visible_text(response.text)
    assert "帳號" in text and "密碼" in text and "登入" in text and "線上申請" in text
    assert _problems(response.text) == []
    for url in ("/", "/apply/", "/apply/done", "/account/set-password/not-a-token"):
        assert _problems(client.get(url).text) == [], url


@pytest.mark.parametrize("username", ["admin", "facility_tpe"])
def test_main_pages_have_no_simplified_or_untranslated_strings(app, db, login_as, username):
    client = login_as(username)
    found = {}
    for url in _pages(app, db):
        response = client.get(url)
        if response.status_code != 200:
            continue  # a page this role may not open
        problems = _problems(response.text)
        if problems:
            found[url] = problems[:5]
    assert found == {}


def test_validation_messages_are_traditional_chinese(app, db, login_as):
    from tests.conftest import post_form

    client = login_as("admin")
    response = post_form(app, client, "/institutionview/add", {"nhi_code": "", "name": ""})
    assert "此欄位為必填" in visible_text(response.text) or "必填" in visible_text(response.text)
    assert _problems(response.text) == []


def test_english_is_available_from_the_language_menu(app, login_as):
    client = login_as("office")
    client.get("/lang/en")
    english = client.get("/institutionview/list/").text
    assert "Contracted institutions" in english
    client.get("/lang/zh_TW")
    assert "特約機構" in client.get("/institutionview/list/").text


def test_catalog_is_complete_and_clean():
    spec = importlib.util.spec_from_file_location("check_catalog", ROOT / "babel" / "check_catalog.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.problems(module.read_catalog(str(PO))) == []


def test_the_checker_itself_catches_simplified_text():
    assert simplified_fragments("搜索用户数据")
    assert simplified_fragments("搜尋使用者資料台北") == []


def test_every_string_of_our_code_is_in_the_catalog_and_translated():
    """Catches a new English string that nobody extracted: run `make babel` and translate it."""
    from babel.messages.extract import extract_from_dir

    keywords = {"_": None, "_l": None, "gettext": None, "lazy_gettext": None, "ngettext": (1, 2)}
    method_map = [("**.py", "python"), ("**.html", "jinja2")]
    catalog = _catalog()
    missing = set()
    for folder in ("core", "models", "views", "seed", "templates"):
        for _filename, _lineno, message, _comments, _context in extract_from_dir(
            str(ROOT / folder), method_map, keywords=keywords,
            options_map={"**.html": {"extensions": "jinja2.ext.do"}},
        ):  # fmt: skip
            msgid = message if isinstance(message, str) else message[0]
            entry = catalog.get(msgid)
            text = entry.string if entry is not None else None
            if not (text if isinstance(text, str) else (text or [""])[0]):
                missing.add(msgid)
    assert sorted(missing) == []


def test_every_export_header_is_translated(app, db, login_as):
    import io

    from openpyxl import load_workbook

    client = login_as("admin")
    for view in [v for v in app.appbuilder.baseviews if isinstance(v, ScopedModelView)]:
        response = client.get(f"{view.route_base}/export/xlsx")
        if response.status_code != 200:
            continue
        rows = load_workbook(io.BytesIO(response.data), read_only=True).active.iter_rows(values_only=True)
        next(rows)  # the title row
        header = next(rows)
        raw = [h for h, col in zip(header, view.export_column_names(), strict=True) if h == col]
        assert raw == [], f"{type(view).__name__}: untranslated headers {raw}"
        assert _problems(" ".join(str(h) for h in header)) == []
