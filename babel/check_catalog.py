#!/usr/bin/env python
"""Quality gate for the zh_Hant_TW (Taiwan) message catalog.

Usage (from the repository root)::

    .venv/bin/python babel/check_catalog.py [path/to/messages.po]

Exits 0 when the catalog is clean, 1 (listing every problem) otherwise.
Checks:

* header: ``Language: zh_Hant_TW`` and ``Plural-Forms: nplurals=1; plural=0;``
  and the header itself is not fuzzy;
* no entry with an empty msgstr (every plural form must be filled);
* no fuzzy entry;
* placeholders identical between msgid (and msgid_plural) and msgstr:
  printf style (``%(name)s``, ``%s``, ``%d``, ``%%``) for python-format
  entries, ``{name}`` braces, and HTML tags/entities;
* no Simplified Chinese: the msgstr must be unchanged by OpenCC ``s2tw``
  (the 台/臺 difference is ignored);
* none of the forbidden mainland terms (``FORBIDDEN_TERMS``);
* no msgstr that is a verbatim copy of an English msgid;
* every msgid of ``babel/messages.pot`` (when present) is in the catalog,
  i.e. ``babel/extract.sh`` was run after the last source change.

The functions are importable so a pytest test can reuse them:
``problems(read_catalog(path))`` returns the list of problem strings.
"""

from __future__ import annotations

import os
import re
import sys
from collections import Counter

from babel.messages.catalog import Catalog, Message
from babel.messages.pofile import read_po

DEFAULT_PO = os.path.join(
    os.path.dirname(os.path.abspath(__file__)),
    "translations",
    "zh_Hant_TW",
    "LC_MESSAGES",
    "messages.po",
)

DEFAULT_POT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "messages.pot")

EXPECTED_LANGUAGE = "zh_Hant_TW"
EXPECTED_PLURAL_FORMS = "nplurals=1; plural=0;"

# Mainland / Simplified terms that must never appear in a Taiwan catalog.
FORBIDDEN_TERMS = (
    "搜索",
    "后退",
    "注销",
    "用户",
    "数据",
    "默认",
    "信息",
    "视图",
    "菜单",
    "用戶",
    "數據",
    "默認",
    "視圖",
    "菜單",
    "注銷",
    "後退",
)

# printf-style conversion specifiers, as used by Python's % operator.
PRINTF_RE = re.compile(
    r"%(?:\([^)]*\))?[#0 +-]*(?:\*|\d+)?(?:\.(?:\*|\d+))?[hlL]?[diouxXeEfFgGcrsa%]"
)
# str.format / Jinja-ish {placeholder}; "{{" and "}}" are escapes, not fields.
BRACE_RE = re.compile(r"(?<!\{)\{[^{}\s]*\}(?!\})")
# HTML tags and character entities must survive translation untouched.
HTML_RE = re.compile(r"</?[A-Za-z][^<>]*>|&(?:#\d+|#x[0-9A-Fa-f]+|[A-Za-z]+);")
# Only an English-looking msgstr can be a forgotten copy of its msgid.
LATIN_WORD_RE = re.compile(r"[A-Za-z]{2,}")

_opencc_converter = None


def _s2tw(text: str) -> str:
    global _opencc_converter
    if _opencc_converter is None:
        import opencc

        _opencc_converter = opencc.OpenCC("s2tw")
    return _opencc_converter.convert(text)


def read_catalog(path: str = DEFAULT_PO) -> Catalog:
    with open(path, "rb") as f:
        return read_po(f)


def _as_tuple(value) -> tuple:
    if isinstance(value, (list, tuple)):
        return tuple(value)
    return (value,)


def _placeholders(text: str, python_format: bool) -> Counter:
    found: list[str] = []
    if python_format:
        found += PRINTF_RE.findall(text)
    found += BRACE_RE.findall(text)
    found += HTML_RE.findall(text)
    return Counter(found)


def _describe(message: Message) -> str:
    msgid = message.id[0] if isinstance(message.id, (list, tuple)) else message.id
    where = ""
    if message.locations:
        filename, lineno = message.locations[0]
        where = f" ({filename}:{lineno})" if lineno else f" ({filename})"
    return f"msgid {msgid!r}{where}"


def _simplified(text: str) -> list[str]:
    """Characters of ``text`` that OpenCC s2tw would rewrite (台/臺 ignored)."""
    normalized = text.replace("臺", "台")
    converted = _s2tw(normalized).replace("臺", "台")
    if converted == normalized:
        return []
    if len(converted) == len(normalized):
        return sorted({f"{a}→{b}" for a, b in zip(normalized, converted, strict=True) if a != b})
    return [f"{normalized!r}→{converted!r}"]


def _squash(plural_forms: str) -> str:
    return plural_forms.replace(" ", "").rstrip(";")


def header_problems(catalog: Catalog) -> list[str]:
    problems = []
    language = str(catalog.locale) if catalog.locale else None
    if language != EXPECTED_LANGUAGE:
        problems.append(f"header: Language is {language!r}, expected {EXPECTED_LANGUAGE!r}")
    headers = dict(catalog.mime_headers)
    plural_forms = (headers.get("Plural-Forms") or "").strip()
    if _squash(plural_forms) != _squash(EXPECTED_PLURAL_FORMS):
        problems.append(
            f"header: Plural-Forms is {plural_forms!r}, expected {EXPECTED_PLURAL_FORMS!r}"
        )
    if catalog.fuzzy:
        problems.append("header: the catalog header is marked fuzzy")
    return problems


def message_problems(message: Message) -> list[str]:
    problems: list[str] = []
    what = _describe(message)
    ids = _as_tuple(message.id)
    strings = _as_tuple(message.string)
    python_format = "python-format" in message.flags

    if message.fuzzy:
        problems.append(f"{what}: fuzzy entry")

    if message.pluralizable and len(strings) < 1:
        problems.append(f"{what}: no plural msgstr")
    for index, string in enumerate(strings):
        label = f"msgstr[{index}]" if message.pluralizable else "msgstr"
        if not string or not string.strip():
            problems.append(f"{what}: empty {label}")
            continue

        # Singular-only entries compare against msgid; plural forms against
        # msgid_plural (zh has a single form used for every n), while
        # accepting the msgid's placeholders too (some msgids drop %(num)d).
        expected = _placeholders(ids[-1], python_format)
        got = _placeholders(string, python_format)
        if got != expected and not (
            message.pluralizable and got == _placeholders(ids[0], python_format)
        ):
            missing = expected - got
            extra = got - expected
            detail = []
            if missing:
                detail.append(f"missing {sorted(missing.elements())}")
            if extra:
                detail.append(f"unexpected {sorted(extra.elements())}")
            problems.append(f"{what}: placeholder mismatch in {label}: " + ", ".join(detail))

        changed = _simplified(string)
        if changed:
            problems.append(
                f"{what}: {label} has non-Taiwan-standard characters "
                f"(OpenCC s2tw): {', '.join(changed)}"
            )

        for term in FORBIDDEN_TERMS:
            if term in string:
                problems.append(f"{what}: {label} uses forbidden mainland term {term!r}")

        if string in ids and LATIN_WORD_RE.search(string):
            problems.append(f"{what}: {label} is an untranslated copy of the msgid")
    return problems


def problems(catalog: Catalog) -> list[str]:
    found = header_problems(catalog)
    for message in catalog:
        if not message.id:  # the header entry
            continue
        found.extend(message_problems(message))
    # Obsolete entries (#~) are harmless for gettext but mean the catalog
    # was not updated with --ignore-obsolete: report them as well.
    for message in catalog.obsolete.values():
        found.append(f"{_describe(message)}: obsolete entry left in the catalog")
    return found


def pot_problems(catalog: Catalog, pot_path: str = DEFAULT_POT) -> list[str]:
    """msgids extracted into messages.pot that the catalog lacks."""
    if not os.path.exists(pot_path):
        return []
    with open(pot_path, "rb") as f:
        template = read_po(f)
    return [
        f"{_describe(message)}: in messages.pot but missing from the catalog (run babel/extract.sh)"
        for message in template
        if message.id and message.id not in catalog
    ]


def main(argv: list[str]) -> int:
    path = argv[1] if len(argv) > 1 else DEFAULT_PO
    catalog = read_catalog(path)
    found = problems(catalog)
    if path == DEFAULT_PO:
        found += pot_problems(catalog)
    total = sum(1 for m in catalog if m.id)
    if found:
        print(f"{path}: {len(found)} problem(s) in {total} messages:")
        for line in found:
            print(f"  - {line}")
        return 1
    print(f"{path}: OK ({total} messages)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
