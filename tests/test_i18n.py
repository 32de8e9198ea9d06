"""zh_TW everywhere: pages render with no Simplified Chinese, no mainland vocabulary, and no
English string left untranslated (FAB's own included); English stays one click away."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import opencc
import pytest
from babel.messages.pofile import read_po

from core.views import ScopedModelView
from tests.conftest import visible_text

ROOT = Path(__file__).resolve().parent.parent
PO = ROOT / "babel" / "translations" / "zh_Hant_TW" / "LC_MESSAGES" / "messages.po"
FORBIDDEN = ("搜索", "后退", "注销", "注銷", "用户", "用戶", "数据", "數據", "默认", "默認",
             "视图", "視圖", "菜单", "菜單", "登录")  # fmt: skip
_converter = opencc.OpenCC("s2tw")


def _catalog():
    with PO.open("rb") as handle:
        return read_po(handle)


def _english_msgids() -> list[str]:
    """msgids a page must never show as is: multi-letter English phrases."""
    ids = []
    for message in _catalog():
        msgid = message.id if isinstance(message.id, str) else message.id[0]
        if not msgid or msgid in ("English",) or "%" in msgid or "{" in msgid:
            continue
        if re.fullmatch(r"[A-Za-z][A-Za-z .,'!?:/-]{3,}", msgid) and " " in msgid.strip():
            ids.append(msgid.strip())
    return ids


#: Traditional characters s2tw still rewrites: 台 (as 臺), and the surnames 余 and 游.
_S2TW_FALSE_POSITIVES = {"台": "臺", "余": "餘", "游": "遊"}


def simplified_fragments(text: str) -> list[str]:
    """Runs of text that OpenCC s2tw would change (i.e. Simplified characters); 台 aside."""
    normal = text.replace("台", "臺")
    for char in _S2TW_FALSE_POSITIVES:
        if char != "台":
            normal = normal.replace(char, "姓")
    converted = _converter.convert(normal)
    return [
        normal[max(0, i - 4) : i + 4]
        for i, (a, b) in enumerate(zip(normal, converted, strict=False))
        if a != b
    ]


def _pages(app, db):
    from models.institution import Institution

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


def _problems(html: str) -> list[str]:
    text = visible_text(html)
    problems = [f"Simplified: {frag!r}" for frag in simplified_fragments(text)]
    problems += [f"mainland term {t}" for t in FORBIDDEN if t in text]
    problems += [f"untranslated: {m!r}" for m in _english_msgids() if m in text]
    return problems


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
        header = next(load_workbook(io.BytesIO(response.data), read_only=True).active.iter_rows(values_only=True))
        raw = [h for h, col in zip(header, view.export_column_names(), strict=True) if h == col]
        assert raw == [], f"{type(view).__name__}: untranslated headers {raw}"
        assert _problems(" ".join(str(h) for h in header)) == []
