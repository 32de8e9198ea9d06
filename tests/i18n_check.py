"""The zh_TW checks shared by tests/platform/test_i18n.py and the browser journeys (tests/e2e):
no Simplified Chinese (OpenCC s2tw), no mainland vocabulary, no English msgid of our catalog
(which includes Flask-AppBuilder's strings) left untranslated on a page."""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

import opencc
from babel.messages.pofile import read_po

from tests.conftest import visible_text

ROOT = Path(__file__).resolve().parent.parent
PO = ROOT / "babel" / "translations" / "zh_Hant_TW" / "LC_MESSAGES" / "messages.po"
FORBIDDEN = ("搜索", "后退", "注销", "注銷", "用户", "用戶", "数据", "數據", "默认", "默認",
             "视图", "視圖", "菜单", "菜單", "登录")  # fmt: skip
_converter = opencc.OpenCC("s2tw")


def _catalog():
    with PO.open("rb") as handle:
        return read_po(handle)


@cache
def _english_msgids() -> tuple[str, ...]:
    """msgids a page must never show as is: multi-letter English phrases."""
    ids = []
    for message in _catalog():
        msgid = message.id if isinstance(message.id, str) else message.id[0]
        if not msgid or msgid in ("English",) or "%" in msgid or "{" in msgid:
            continue
        if re.fullmatch(r"[A-Za-z][A-Za-z .,'!?:/-]{3,}", msgid) and " " in msgid.strip():
            ids.append(msgid.strip())
    return tuple(ids)


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


def page_problems(html: str) -> list[str]:
    """What is wrong with a page's visible text (empty when it is clean zh_TW)."""
    text = visible_text(html)
    problems = [f"Simplified: {frag!r}" for frag in simplified_fragments(text)]
    problems += [f"mainland term {t}" for t in FORBIDDEN if t in text]
    problems += [f"untranslated: {m!r}" for m in _english_msgids() if m in text]
    return problems
