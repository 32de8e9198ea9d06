"""XLSForm workbooks in and out (issue 16 item 7, A4): the ODK/KoboToolbox form format, so an
institution can bring a questionnaire it already has, or take ours to another system.

Sheets written and read:
- `survey`: type, name, label, hint, required, relevant, constraint, constraint_message,
  appearance, and `item_type` — the engine's type where XLSForm's cannot say it (likert,
  boolean; ODK ignores a column it does not know). Item types map as: group → begin_group /
  end_group (our groups are headings: the end is written before the next group), display →
  note, likert → select_one (appearance likert), choice / boolean → select_one, multi →
  select_multiple, integer / decimal / date → the same, string → text, text → text
  (appearance multiline). A range is the constraint `. >= 0 and . <= 30`, a pattern
  `regex(., '…')`; branching is `relevant` (`${q} = 'Y'`, `selected(${q}, 'x')`, `${q} >= 2`,
  `string-length(${q}) > 0`, joined by all-`and` or all-`or`).
- `choices`: list_name, name, label, and `score` — an option's weight. A list named after the
  one item that uses it is that item's own options; any other list is a shared scale.
- `settings`: form_title, form_id, version.
- `scoring` (our sheet; ODK ignores it): the scoring spec, one row per score, band or flag —
  kind, name, label, method, items, reverse, weights (`q1=2 q2=1`), missing, max_missing,
  calculation (`${total} * 2`), score (a band's or flag's score), item (a flag's item),
  operator, value, min, max. On import, `calculate` rows of the survey sheet become formula
  scores too, after the scoring sheet's.

pyxform is not used: its pins (openpyxl 3.1.5, lark 1.3.1, xlrd, defusedxml) would install,
but it converts XLSForm to XForm XML, not to our definition, its refusals are English and name
no cell, and it reads a sheet whole before any bound is checked; the mapping here is small and
every cell it reads is checked.

An import is bounded before it is parsed (file size, zip parts and unpacked size, declared
sheet size, rows and columns read), refuses any cell that is a formula or starts with `=`,
and every refusal names the sheet, row and column.
"""

from __future__ import annotations

import ast
import io
import re
import zipfile
from typing import Any

import xlsxwriter
from flask_babel import gettext
from openpyxl import load_workbook

from domain.addiction.formats import (
    MAX_CELL,
    MAX_COLUMNS,
    MAX_FILE_BYTES,
    MAX_SHEET_ROWS,
    MAX_UNPACKED_BYTES,
    MAX_ZIP_PARTS,
    Form,
    FormatRefused,
    at_cell,
    column_letter,
    drop_implied_boolean,
    number_text,
    parse_number,
)
from domain.addiction.scoring import (
    CHOICE_TYPES,
    LINK_ID,
    DefinitionRefused,
    check_definition,
    check_formula,
    options_of,
)

SURVEY_COLUMNS = ["type", "name", "label", "hint", "required", "relevant", "constraint", "constraint_message",
                  "appearance", "item_type"]  # fmt: skip
CHOICE_COLUMNS = ["list_name", "name", "label", "score"]
SETTINGS_COLUMNS = ["form_title", "form_id", "version"]
SCORING_COLUMNS = ["kind", "name", "label", "method", "items", "reverse", "weights", "missing", "max_missing",
                   "calculation", "score", "item", "operator", "value", "min", "max"]  # fmt: skip
#: XLSForm's metadata questions: collected by a device, no answer of the person; skipped.
METADATA_TYPES = {"start", "end", "today", "deviceid", "username", "simserial", "subscriberid", "phonenumber",
                  "audit", "email", "start-geopoint", "background-audio"}  # fmt: skip
_TRUE = {"yes", "true", "true()", "1", "y", "是"}
_FALSE = {"no", "false", "false()", "0", "n", "否", ""}


# ------------------------------------------------------------------ export
def _scale_lists(definition: dict) -> dict[str, str]:
    """The list name of every shared scale: its own name, unless an item is called that."""
    links = {i.get("linkId") for i in definition.get("items", [])}
    names: dict[str, str] = {}
    for scale in definition.get("scales") or {}:
        name = scale
        while name in links or name in names.values():
            name += "_scale"
        names[scale] = name
    return names


def _relevant(definition: dict, item: dict) -> str:
    """An item's enableWhen as an XLSForm relevant expression."""
    kinds = {i["linkId"]: i.get("type") for i in definition.get("items", [])}
    parts = []
    for c in item.get("enableWhen") or []:
        ref, op, answer = "${" + c["question"] + "}", c["operator"], c.get("answer")
        if op == "exists":
            parts.append(f"string-length({ref}) {'= 0' if answer is False else '> 0'}")
        elif kinds.get(c["question"]) == "multi" and op in ("=", "!="):
            test = f"selected({ref}, {_quote(str(answer))})"
            parts.append(test if op == "=" else f"not({test})")
        elif isinstance(answer, int | float) and not isinstance(answer, bool):
            parts.append(f"{ref} {op} {number_text(answer)}")
        else:
            parts.append(f"{ref} {op} {_quote(str(answer))}")
    joiner = " or " if item.get("enableBehavior") == "any" else " and "
    return joiner.join(parts)


def _quote(text: str) -> str:
    """A string literal for an XLSForm expression, in the quotes it does not contain."""
    return f'"{text}"' if "'" in text else f"'{text}'"


def _constraint(item: dict) -> str:
    """An item's range and pattern as an XLSForm constraint."""
    parts = []
    if item.get("min") is not None:
        parts.append(f". >= {number_text(item['min'])}")
    if item.get("max") is not None:
        parts.append(f". <= {number_text(item['max'])}")
    if item.get("pattern"):
        parts.append(f"regex(., {_quote(item['pattern'])})")
    return " and ".join(parts)


def _xls_formula(formula: str) -> str:
    """A score's formula with its names as XLSForm references: total * 2 → ${total} * 2."""
    names = {n.id for n in ast.walk(ast.parse(formula, mode="eval")) if isinstance(n, ast.Name)}
    return re.sub(r"(?<![\w.$])([A-Za-z_]\w*)\b(?!\s*\()",
                  lambda m: "${" + m.group(1) + "}" if m.group(1) in names else m.group(1), formula)  # fmt: skip


def export_xlsform(definition: dict, title: str = "", code: str = "", version: str = "") -> bytes:
    """The definition as an XLSForm workbook (.xlsx bytes)."""
    check_definition(definition)
    scale_names = _scale_lists(definition)
    survey: list[list] = []
    choices: list[list] = []
    in_group = False
    for item in definition["items"]:
        kind = item["type"]
        row = {"name": item["linkId"], "label": item.get("text", ""), "hint": item.get("help", ""),
               "required": "yes" if item.get("required") else "", "relevant": _relevant(definition, item),
               "constraint": _constraint(item), "constraint_message": item.get("message", "")}  # fmt: skip
        if kind == "group":
            if in_group:
                survey.append(["end_group"] + [""] * (len(SURVEY_COLUMNS) - 1))
            row["type"], in_group = "begin_group", True
        elif kind == "display":
            row["type"] = "note"
        elif kind in CHOICE_TYPES:
            if item.get("options") or not item.get("scale"):
                list_name = item["linkId"]
                for option in options_of(definition, item):
                    choices.append([list_name, option["code"], option.get("display", ""), option.get("weight")])
            else:
                list_name = scale_names[item["scale"]]
            row["type"] = f"{'select_multiple' if kind == 'multi' else 'select_one'} {list_name}"
            if kind in ("likert", "boolean"):
                row["item_type"] = kind
            if kind == "likert":
                row["appearance"] = "likert"
        elif kind in ("string", "text"):
            row["type"] = "text"
            if kind == "text":
                row["appearance"] = "multiline"
        else:
            row["type"] = kind
        survey.append([row.get(c, "") for c in SURVEY_COLUMNS])
    if in_group:
        survey.append(["end_group"] + [""] * (len(SURVEY_COLUMNS) - 1))
    for scale, options in (definition.get("scales") or {}).items():
        for option in options:
            choices.append([scale_names[scale], option["code"], option.get("display", ""), option.get("weight")])
    buffer = io.BytesIO()
    # Text stays text: a label that looks like a formula or a number is written as a string.
    workbook = xlsxwriter.Workbook(buffer, {"in_memory": True, "strings_to_formulas": False,
                                            "strings_to_numbers": False, "strings_to_urls": False})  # fmt: skip
    for name, header, rows in (("survey", SURVEY_COLUMNS, survey), ("choices", CHOICE_COLUMNS, choices),
                               ("settings", SETTINGS_COLUMNS, [[title, code, version]]),
                               ("scoring", SCORING_COLUMNS, _scoring_rows(definition))):  # fmt: skip
        sheet = workbook.add_worksheet(name)
        sheet.write_row(0, 0, header)
        for number, row in enumerate(rows, start=1):
            for column, value in enumerate(row):
                if value is not None and value != "":
                    sheet.write(number, column, value)
    workbook.close()
    return buffer.getvalue()


def _scoring_rows(definition: dict) -> list[list]:
    """The scoring sheet's rows: each score, its bands after it, then the flags."""
    rows = []
    scoring = definition.get("scoring") or {}
    for spec in scoring.get("scores") or []:
        row = {"kind": "score", "name": spec["name"], "label": spec.get("label", ""),
               "method": spec.get("method", ""), "items": " ".join(spec.get("items") or []),
               "reverse": " ".join(spec.get("reverse") or []),
               "weights": " ".join(f"{k}={number_text(v)}" for k, v in (spec.get("weights") or {}).items()),
               "missing": spec.get("missing", ""), "max_missing": spec.get("max_missing"),
               "calculation": _xls_formula(spec["formula"]) if spec.get("formula") is not None else ""}  # fmt: skip
        rows.append([row.get(c) for c in SCORING_COLUMNS])
        for band in spec.get("bands") or []:
            band_row = {"kind": "band", "score": spec["name"], "label": band["label"], "min": band["min"],
                        "max": band["max"]}  # fmt: skip
            rows.append([band_row.get(c) for c in SCORING_COLUMNS])
    for flag in scoring.get("flags") or []:
        row = {"kind": "flag", "name": flag.get("name", ""), "label": flag["label"], "item": flag.get("item"),
               "score": flag.get("score"), "operator": flag["operator"], "value": flag.get("value")}  # fmt: skip
        rows.append([row.get(c) for c in SCORING_COLUMNS])
    return rows


# ------------------------------------------------------------------ import: reading within bounds
class _Sheet:
    """One sheet read: its name, header (lowercase) and rows as (row number, {header: value})."""

    def __init__(self, name: str, header: list[str], rows: list[tuple[int, dict]]):
        """Keep the sheet's name, lowercase header and non-empty rows."""
        self.name, self.header, self.rows = name, header, rows

    def where(self, row: int, column: str, reason: str) -> FormatRefused:
        """A refusal at one cell of this sheet."""
        index = self.header.index(column) if column in self.header else len(self.header)
        return at_cell(self.name, row, f"{column}（{column_letter(index)}）", reason)


def _not_xlsx() -> FormatRefused:
    """The refusal of a file that is not an .xlsx workbook."""
    return FormatRefused(gettext("The file is not an Excel (.xlsx) workbook."))


def _check_archive(data: bytes) -> None:
    """Refuse before parsing: too many bytes, or a zip that would unpack too large."""
    if not isinstance(data, bytes | bytearray):
        raise _not_xlsx()
    if len(data) > MAX_FILE_BYTES:
        raise FormatRefused(gettext("The file is larger than %(mb)s MB.", mb=str(MAX_FILE_BYTES // (1024 * 1024))))
    try:
        parts = zipfile.ZipFile(io.BytesIO(data)).infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, OSError, EOFError):
        raise _not_xlsx() from None
    # zipfile never inflates a part beyond its declared size, so the declared sizes bound the work.
    if len(parts) > MAX_ZIP_PARTS or sum(p.file_size for p in parts) > MAX_UNPACKED_BYTES:
        raise FormatRefused(gettext("The workbook is far larger than a questionnaire needs, so it was not read."))


def _too_large(name: str) -> FormatRefused:
    """The refusal of a sheet past the row or column bound."""
    return FormatRefused(gettext("Sheet %(sheet)s has more than %(n)d rows or %(m)d columns, so it was not read.",
                                 sheet=name, n=MAX_SHEET_ROWS, m=MAX_COLUMNS))  # fmt: skip


def _read(data: bytes) -> dict[str, _Sheet]:
    """The four sheets of a workbook, every cell checked, within the bounds."""
    _check_archive(data)
    try:
        # data_only=False: a formula cell reads as its formula text, refused below.
        workbook = load_workbook(io.BytesIO(data), read_only=True, data_only=False)
    except Exception:  # noqa: BLE001 - any failure to open means "not an .xlsx we accept"
        raise _not_xlsx() from None
    sheets: dict[str, _Sheet] = {}
    try:
        for sheet in workbook.worksheets:
            name = str(sheet.title).strip().lower()
            if name not in ("survey", "choices", "settings", "scoring"):
                continue
            declared_rows, declared_cols = sheet.max_row, sheet.max_column
            if (isinstance(declared_rows, int) and declared_rows > MAX_SHEET_ROWS + 1) or (
                    isinstance(declared_cols, int) and declared_cols > MAX_COLUMNS):  # fmt: skip
                raise _too_large(sheet.title)
            rows = sheet.iter_rows(min_row=1, max_row=MAX_SHEET_ROWS + 2, max_col=MAX_COLUMNS + 1, values_only=True)
            header_raw = list(next(rows, []) or [])
            while header_raw and header_raw[-1] in (None, ""):
                header_raw.pop()  # the read pads every row to max_col
            if len(header_raw) > MAX_COLUMNS:
                raise _too_large(sheet.title)
            header = [str(h).strip().lower() if h is not None else "" for h in header_raw]
            read = _Sheet(sheet.title, header, [])
            for index, h in enumerate(header_raw):
                _check_cell(read, 1, header[index] or column_letter(index), h)
            for number, raw in enumerate(rows, start=2):
                if number > MAX_SHEET_ROWS + 1:
                    raise _too_large(sheet.title)
                cells = {}
                for index, value in enumerate(raw or ()):
                    if index >= len(header):
                        if value not in (None, ""):
                            raise at_cell(sheet.title, number, column_letter(index),
                                          gettext("a value in a column without a header."))  # fmt: skip
                        continue
                    _check_cell(read, number, header[index], value)
                    if value is not None and str(value).strip() != "":
                        cells[header[index]] = value.strip() if isinstance(value, str) else value
                if cells:
                    read.rows.append((number, cells))
            sheets[name] = read
    except FormatRefused:
        raise
    except Exception:  # noqa: BLE001 - a part that is not the XML it claims to be
        raise _not_xlsx() from None
    finally:
        workbook.close()
    return sheets


def _check_cell(sheet: _Sheet, row: int, column: str, value) -> None:
    """Refuse a formula (or text starting with =) and an over-long cell."""
    if isinstance(value, str):
        if value.lstrip().startswith("="):
            raise sheet.where(row, column, gettext("a formula is not accepted; type the value itself."))
        if len(value) > MAX_CELL:
            raise sheet.where(row, column, gettext("at most %(n)d characters.", n=MAX_CELL))


# ------------------------------------------------------------------ import: the sheets
def _text(cells: dict, key: str) -> str:
    """A cell as stripped text (2.0 read as 2)."""
    value = cells.get(key)
    if value is None:
        return ""
    if isinstance(value, float) and value == int(value):
        value = int(value)
    return str(value).strip()


def _localized(sheet: _Sheet, cells: dict, key: str) -> str:
    """label, or the first label::language column when there is no plain one."""
    if key in sheet.header:
        return _text(cells, key)
    for column in sheet.header:
        if column.startswith(key + "::"):
            return _text(cells, column)
    return ""


def _known_columns(sheet: _Sheet, known: list[str], localized: tuple = ()) -> None:
    """A filled cell in a column this import does not understand is refused, not dropped."""
    for number, cells in sheet.rows:
        for column in cells:
            if column in known or any(column.startswith(k + "::") for k in localized):
                continue
            raise sheet.where(number, column, gettext("this column is not supported; leave it empty or delete it."))


def import_xlsform(data: bytes) -> Form:
    """A questionnaire from an XLSForm workbook; FormatRefused names the sheet, row and column."""
    sheets = _read(data)
    survey = sheets.get("survey")
    if survey is None:
        raise FormatRefused(gettext("The workbook has no survey sheet."))
    for column in ("type", "name"):
        if column not in survey.header:
            raise at_cell(survey.name, 1, column, gettext("the sheet needs this column."))
    _known_columns(survey, SURVEY_COLUMNS + ["calculation"], ("label", "hint", "constraint_message"))
    lists = _choice_lists(sheets.get("choices"))
    uses: dict[str, list[str]] = {}
    for _number, cells in survey.rows:
        kind = _text(cells, "type").split()
        if len(kind) == 2 and kind[0] in ("select_one", "select_multiple"):
            uses.setdefault(kind[1], []).append(_text(cells, "name"))
    items: list[dict] = []
    scales: dict[str, list] = {}
    calculations: list[tuple[int, dict]] = []
    rows_of: dict[str, int] = {}
    for number, cells in survey.rows:
        kind_text = re.sub(r"\s+", " ", _text(cells, "type")).lower()
        if not kind_text:
            raise survey.where(number, "type", gettext("every row needs a type."))
        parts = kind_text.split(" ")
        base = parts[0].replace("begin group", "begin_group")
        if base in ("end_group", "end") and (len(parts) == 1 or parts[1] == "group"):
            continue
        if base in METADATA_TYPES and len(parts) == 1:
            continue
        link = _text(cells, "name")
        if not LINK_ID.match(link):
            raise survey.where(number, "name",
                               gettext("a name of letters, digits, _ . or - starting with a letter, at most 50."))
        if link in rows_of:
            raise survey.where(number, "name", gettext("the name %(id)s is already used in row %(row)d.", id=link,
                                                       row=rows_of[link]))  # fmt: skip
        rows_of[link] = number
        if base == "calculate":
            calculations.append((number, cells))
            continue
        if cells.get("calculation") is not None:
            raise survey.where(number, "calculation", gettext("only a calculate row has a calculation."))
        item = _survey_item(survey, number, cells, parts, link, lists, uses, scales)
        items.append(item)
    known = {i["linkId"]: i for i in items}
    for number, cells in survey.rows:
        link = _text(cells, "name")
        if link in known and _text(cells, "relevant"):
            _relevant_into(survey, number, _text(cells, "relevant"), known[link], known)
    definition: dict[str, Any] = {"items": items}
    if scales:
        definition["scales"] = scales
    scoring = _scoring(sheets.get("scoring"), survey, calculations, set(known))
    if scoring:
        definition["scoring"] = scoring
    settings = sheets.get("settings")
    title = code = version = ""
    if settings is not None and settings.rows:
        cells = settings.rows[0][1]
        title = _localized(settings, cells, "form_title")
        code, version = _text(cells, "form_id"), _text(cells, "version")
    check_definition(definition)
    return Form(definition=definition, title=title, code=code, version=version)


def _choice_lists(sheet: _Sheet | None) -> dict[str, list[dict]]:
    """The choices sheet as lists of options by list name."""
    lists: dict[str, list[dict]] = {}
    if sheet is None:
        return lists
    for column in ("list_name", "name"):
        if column not in sheet.header:
            raise at_cell(sheet.name, 1, column, gettext("the sheet needs this column."))
    _known_columns(sheet, CHOICE_COLUMNS, ("label",))
    for number, cells in sheet.rows:
        list_name, code = _text(cells, "list_name"), _text(cells, "name")
        if not list_name:
            raise sheet.where(number, "list_name", gettext("every choice needs its list's name."))
        if not code:
            raise sheet.where(number, "name", gettext("every choice needs a code."))
        options = lists.setdefault(list_name, [])
        if any(o["code"] == code for o in options):
            raise sheet.where(number, "name", gettext("the code %(code)s is used twice in list %(list)s.",
                                                      code=code[:20], list=list_name[:30]))  # fmt: skip
        option: dict[str, Any] = {"code": code, "display": _localized(sheet, cells, "label")}
        if cells.get("score") is not None:
            try:
                option["weight"] = parse_number(cells["score"])
            except ValueError:
                raise sheet.where(number, "score", gettext("a score must be a number.")) from None
        options.append(option)
    return lists


def _survey_item(survey, number, cells, parts, link, lists, uses, scales) -> dict:
    """One survey row as an item of the engine."""
    base = parts[0].replace("begin group", "begin_group")
    appearance = _text(cells, "appearance").lower()
    engine = _text(cells, "item_type").lower()
    item: dict[str, Any] = {"linkId": link}
    if base in ("begin_group",):
        item["type"] = "group"
    elif base == "note":
        item["type"] = "display"
    elif base in ("select_one", "select_multiple"):
        if len(parts) != 2:
            raise survey.where(number, "type", gettext("%(type)s needs the name of a choice list.", type=base))
        list_name = parts[1]
        if list_name not in lists:
            raise survey.where(number, "type", gettext("there is no list %(list)s in the choices sheet.",
                                                       list=list_name[:30]))  # fmt: skip
        if base == "select_multiple":
            item["type"] = "multi"
        elif engine in ("likert", "boolean"):
            item["type"] = engine
        else:
            item["type"] = "likert" if "likert" in appearance.split() else "choice"
        if list_name == link and uses.get(list_name) == [link]:
            item["options"] = [dict(o) for o in lists[list_name]]
        else:
            scales.setdefault(list_name, [dict(o) for o in lists[list_name]])
            item["scale"] = list_name
    elif base in ("integer", "decimal", "date"):
        item["type"] = base
    elif base in ("text", "string"):
        item["type"] = "text" if "multiline" in appearance.split() else "string"
    elif base in ("begin_repeat", "begin repeat"):
        raise survey.where(number, "type", gettext("repeated groups are not supported."))
    else:
        raise survey.where(number, "type", gettext("unknown item type %(type)s.", type=" ".join(parts)[:40]))
    if engine and engine not in ("likert", "boolean"):
        raise survey.where(number, "item_type", gettext("item_type is likert, boolean or empty."))
    if engine and base != "select_one":
        raise survey.where(number, "item_type", gettext("likert and boolean are select_one items."))
    text = _localized(survey, cells, "label")
    if text:
        item["text"] = text
    help_text = _localized(survey, cells, "hint")
    if help_text:
        item["help"] = help_text
    required = _text(cells, "required").lower()
    if required in _TRUE:
        item["required"] = True
    elif required not in _FALSE:
        raise survey.where(number, "required", gettext("required is yes or empty."))
    if item["type"] in ("group", "display") and item.get("required"):
        raise survey.where(number, "required", gettext("a heading or note takes no answer."))
    if item["type"] == "group" and _text(cells, "relevant"):
        raise survey.where(number, "relevant", gettext("branching on a group is not supported; put it on its items."))
    constraint = _text(cells, "constraint")
    if constraint:
        _constraint_into(survey, number, constraint, item)
    message = _localized(survey, cells, "constraint_message")
    if message:
        item["message"] = message
    return drop_implied_boolean(item)


_NUMBER = r"-?\d+(?:\.\d+)?"
_STRING = r"'[^']*'|\"[^\"]*\""


def _constraint_into(survey, number, constraint: str, item: dict) -> None:
    """An XLSForm constraint read into the item's min, max and pattern."""
    rest = constraint.strip()
    while rest:
        bound = re.match(rf"^\.\s*(>=|<=)\s*({_NUMBER})\s*(?:and\s+|$)", rest)
        pattern = re.match(rf"^regex\(\s*\.\s*,\s*({_STRING})\s*\)\s*$", rest)
        if bound:
            item["min" if bound.group(1) == ">=" else "max"] = parse_number(bound.group(2))
            rest = rest[bound.end():]
        elif pattern:
            item["pattern"] = pattern.group(1)[1:-1]
            rest = ""
        else:
            raise survey.where(number, "constraint",
                               gettext("a constraint is %(forms)s, joined by and.", forms=". >= n, . <= n, regex(., '…')"))
    if ("min" in item or "max" in item) and item["type"] not in ("integer", "decimal"):
        raise survey.where(number, "constraint", gettext("a range needs an integer or decimal item."))
    if "pattern" in item and item["type"] not in ("string", "text"):
        raise survey.where(number, "constraint", gettext("a pattern needs a text item."))


_REF = r"\$\{([A-Za-z][A-Za-z0-9_.-]{0,49})\}"
_CONDITIONS = [
    (rf"not\(\s*selected\(\s*{_REF}\s*,\s*({_STRING})\s*\)\s*\)", "!="),
    (rf"selected\(\s*{_REF}\s*,\s*({_STRING})\s*\)", "="),
    (rf"string-length\(\s*{_REF}\s*\)\s*(>\s*0|=\s*0)", "exists"),
    (rf"{_REF}\s*(>=|<=|!=|=|>|<)\s*({_STRING}|{_NUMBER})", None),
]


def _relevant_into(survey, number, relevant: str, item: dict, known: dict) -> None:
    """relevant → enableWhen; only the forms the export writes, on earlier items."""
    rest, conditions, joiners = relevant.strip(), [], set()
    refuse = survey.where(number, "relevant", gettext(
        "branching is %(forms)s, joined by all and or all or, on earlier items.",
        forms="${item} = 'code', selected(${item}, 'code'), ${item} >= n, string-length(${item}) > 0"))  # fmt: skip
    while True:
        match, operator = next(((m, op) for pattern, op in _CONDITIONS if (m := re.match(pattern, rest))),
                               (None, None))  # fmt: skip
        if match is None:
            raise refuse
        question = match.group(1)
        if operator == "exists":
            condition = {"question": question, "operator": "exists"}
            if match.group(2).replace(" ", "") == "=0":
                condition["answer"] = False
        elif operator is not None:
            condition = {"question": question, "operator": operator, "answer": match.group(2)[1:-1]}
        else:
            op, answer = match.group(2), match.group(3)
            value = answer[1:-1] if answer[0] in "'\"" else parse_number(answer)
            if value == "" and op in ("!=", "="):
                condition = {"question": question, "operator": "exists"}
                if op == "=":
                    condition["answer"] = False
            else:
                condition = {"question": question, "operator": op, "answer": value}
        if question not in known or list(known).index(question) >= list(known).index(item["linkId"]):
            raise refuse
        conditions.append(condition)
        rest = rest[match.end():].strip()
        if not rest:
            break
        joiner = re.match(r"^(and|or)\s+", rest)
        if not joiner:
            raise refuse
        joiners.add(joiner.group(1))
        rest = rest[joiner.end():]
    if len(joiners) > 1:
        raise refuse
    item["enableWhen"] = conditions
    if joiners == {"or"}:
        item["enableBehavior"] = "any"


def _formula(sheet: _Sheet, number: int, column: str, text: str, names: set[str], label: str) -> str:
    """An XLSForm calculation as a score formula (${x} → x), checked before it is kept."""
    formula = re.sub(_REF, lambda m: m.group(1), text)
    if "$" in formula or "{" in formula:
        raise sheet.where(number, column, gettext("a reference is written %(form)s.", form="${name}"))
    try:
        check_formula(formula, names, label)
    except DefinitionRefused as refusal:
        raise sheet.where(number, column, str(refusal)) from None
    return formula


def _scoring(sheet: _Sheet | None, survey: _Sheet, calculations, items: set[str]) -> dict:
    """The scoring sheet and the survey's calculate rows as the scoring spec."""
    scores: list[dict] = []
    flags: list[dict] = []
    by_name: dict[str, dict] = {}
    rows = sheet.rows if sheet is not None else []
    if sheet is not None:
        _known_columns(sheet, SCORING_COLUMNS, ("label",))
    names = set(items) | {_text(c, "name") for _n, c in rows if _text(c, "kind") == "score"} | {
        _text(c, "name") for _n, c in calculations}
    for number, cells in rows:
        kind = _text(cells, "kind").lower()
        if kind == "score":
            spec: dict[str, Any] = {"name": _text(cells, "name")}
            if not LINK_ID.match(spec["name"]) or spec["name"] in by_name or spec["name"] in items:
                raise sheet.where(number, "name", gettext("a score needs a name of its own, of letters and digits."))
            for key in ("label", "method", "missing"):
                if _text(cells, key):
                    spec[key] = _localized(sheet, cells, key) if key == "label" else _text(cells, key)
            for key in ("items", "reverse"):
                if _text(cells, key):
                    spec[key] = _text(cells, key).replace(",", " ").split()
                    for link in spec[key]:
                        if link not in items:
                            raise sheet.where(number, key, gettext("there is no item %(id)s.", id=link[:50]))
            if _text(cells, "weights"):
                spec["weights"] = {}
                for pair in _text(cells, "weights").replace(",", " ").split():
                    link, _, weight = pair.partition("=")
                    try:
                        spec["weights"][link] = parse_number(weight)
                    except ValueError:
                        raise sheet.where(number, "weights", gettext("weights are written %(form)s.", form="item=number")) from None
            if cells.get("max_missing") is not None:
                spec["max_missing"] = _cell_number(sheet, number, cells, "max_missing")
            if _text(cells, "calculation"):
                spec["formula"] = _formula(sheet, number, "calculation", _text(cells, "calculation"), names,
                                           spec.get("label", spec["name"]))  # fmt: skip
            scores.append(spec)
            by_name[spec["name"]] = spec
        elif kind == "band":
            owner = by_name.get(_text(cells, "score"))
            if owner is None:
                raise sheet.where(number, "score", gettext("a band follows the row of its score."))
            owner.setdefault("bands", []).append({"min": _cell_number(sheet, number, cells, "min"),
                                                  "max": _cell_number(sheet, number, cells, "max"),
                                                  "label": _localized(sheet, cells, "label")})  # fmt: skip
        elif kind == "flag":
            flag: dict[str, Any] = {"name": _text(cells, "name"), "label": _localized(sheet, cells, "label"),
                                    "operator": _text(cells, "operator")}  # fmt: skip
            if not flag["name"]:
                flag.pop("name")
            for key in ("item", "score"):
                if _text(cells, key):
                    flag[key] = _text(cells, key)
            if cells.get("value") is not None:
                flag["value"] = _cell_number(sheet, number, cells, "value")
            flags.append(flag)
        else:
            raise sheet.where(number, "kind", gettext("kind is score, band or flag."))
    for number, cells in calculations:
        name = _text(cells, "name")
        label = _localized(survey, cells, "label") or name
        if not _text(cells, "calculation"):
            raise survey.where(number, "calculation", gettext("a calculate row needs a calculation."))
        scores.append({"name": name, "label": label,
                       "formula": _formula(survey, number, "calculation", _text(cells, "calculation"), names, label)})
    scoring: dict[str, Any] = {}
    if scores:
        scoring["scores"] = scores
    if flags:
        scoring["flags"] = flags
    return scoring


def _cell_number(sheet: _Sheet, number: int, cells: dict, key: str):
    """A cell read as a number, or a refusal naming it."""
    try:
        return parse_number(cells.get(key))
    except ValueError:
        raise sheet.where(number, key, gettext("a number.")) from None
