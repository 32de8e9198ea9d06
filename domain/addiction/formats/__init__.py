"""Standard formats in and out of the instrument engine (issue 16 item 7, rule A4): XLSForm
workbooks (xlsform.py), the REDCap data dictionary CSV (redcap.py), FHIR R4 Questionnaire and
QuestionnaireResponse (fhir.py), and the columns of an export across versions with the
classification of a version's changes (columns.py).

Every importer reads within bounds before it parses, refuses with a zh_TW message naming the
sheet (or file), row and column at fault, and hands its result to
domain.addiction.scoring.check_definition, so an imported definition is held to the same
rules as one made in the designer. All of this is pure functions over definitions and
answers: nothing here reads or writes the database.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

from flask_babel import gettext

from core.errors import UserError
from core.export.xlsx import column_letter  # noqa: F401  (the formats name cells with it)
from domain.addiction.scoring import BOOLEAN_OPTIONS

#: Bounds of an uploaded file, checked before it is parsed: a questionnaire is at most
#: scoring.MAX_ITEMS items, so a file far larger than that many rows is not one.
MAX_FILE_BYTES = 2 * 1024 * 1024
MAX_UNPACKED_BYTES = 20 * 1024 * 1024
MAX_ZIP_PARTS = 100
MAX_SHEET_ROWS = 6000
MAX_COLUMNS = 40
MAX_CELL = 4000
#: A weight, bound or range in a file is at most this large: 1e999 would overflow a score.
MAX_NUMBER = 10**9


class FormatRefused(UserError):
    """A file (or a definition to export) the format cannot carry; the message names where."""


@dataclass
class Form:
    """An imported (or to-be-exported) questionnaire: its definition and what the file says
    about it besides (title, code, version)."""

    definition: dict
    title: str = ""
    code: str = ""
    version: str = ""
    extra: dict = field(default_factory=dict)


def at_cell(sheet: str, row: int, column: str, reason: str) -> FormatRefused:
    """A refusal naming the sheet, the row and the column (header and letter) at fault."""
    return FormatRefused(
        gettext("Sheet %(sheet)s, row %(row)d, column %(column)s: %(reason)s", sheet=sheet, row=row,
                column=column, reason=reason)
    )  # fmt: skip


def at_line(file: str, row: int, column: str, reason: str) -> FormatRefused:
    """A refusal naming the file (a CSV has no sheets), the row and the column at fault."""
    return FormatRefused(
        gettext("File %(file)s, row %(row)d, column %(column)s: %(reason)s", file=file, row=row,
                column=column, reason=reason)
    )  # fmt: skip


def canonical(definition: dict) -> dict:
    """The definition as a format can carry it: a yes/no item's options dropped when they are
    the engine's implied 是/否 ones (no file format tells "implied" from "written out"), keys
    without a value dropped. Round-trip tests compare definitions in this form."""
    out = {k: v for k, v in definition.items() if v not in (None, {}, [])}
    items = []
    for item in definition.get("items", []):
        item = {k: v for k, v in item.items() if v not in (None, [], "") and not (k == "required" and v is False)}
        if item.get("type") == "boolean" and item.get("options") == BOOLEAN_OPTIONS:
            item.pop("options")
        items.append(item)
    out["items"] = items
    return out


def drop_implied_boolean(item: dict) -> dict:
    """An imported yes/no item whose options are the implied 是/否 ones keeps none of its own."""
    if item.get("type") == "boolean" and item.get("options") == BOOLEAN_OPTIONS:
        item.pop("options")
    return item


def parse_number(value) -> int | float:
    """A number from a cell (Unicode digits read as digits, 全形 too), at most MAX_NUMBER
    either way; ValueError otherwise."""
    if isinstance(value, bool):
        raise ValueError(value)
    if isinstance(value, int):
        if abs(value) > MAX_NUMBER:
            raise ValueError(value)
        return value
    if isinstance(value, float):
        if not math.isfinite(value) or abs(value) > MAX_NUMBER:
            raise ValueError(value)
        return int(value) if value == int(value) else value
    text = str(value).strip()
    if not text or len(text) > 30:
        raise ValueError(value)
    text = "".join(str(int(c)) if c.isdigit() else c for c in text).replace("．", ".").replace("－", "-")
    try:
        number = Decimal(text)
    except InvalidOperation:
        raise ValueError(value) from None
    if not number.is_finite() or abs(number) > MAX_NUMBER:
        raise ValueError(value)
    return int(number) if number == number.to_integral_value() else float(number)


def number_text(value) -> str:
    """A number as a file writes it: 2, not 2.0."""
    return str(int(value)) if float(value) == int(value) else repr(float(value))
