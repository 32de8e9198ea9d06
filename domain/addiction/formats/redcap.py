"""The REDCap data dictionary CSV in and out (issue 16 item 7, A4).

Field types map as: display → descriptive, likert → radio in a matrix group named after its
scale (a REDCap matrix is a battery over shared choices), choice → radio (dropdown read too),
multi → checkbox, boolean → radio `Y, 是 | N, 否` (REDCap's yesno / truefalse read as 1 / 0),
integer / decimal / date → text validated integer / number / date_ymd, string → text, text →
notes. A group is the Section Header of the field after it. Branching is REDCap's logic:
`[q] = 'Y'`, `[q(code)] = '1'` for a checkbox, `[q] >= 2`, `[q] <> ''`, joined by all-and or
all-or. Scores are calc fields placed after the items.

Choices strings (`1, 非常不同意 | 2, 不同意`) are split at the pipes and each choice at its first
comma, so a label may hold commas; an empty piece (a stray or doubled pipe) is skipped; a
piece without `code,` — and a repeated or malformed code — is refused naming the row and column.

REDCap has no weights and no declarative scoring, so the engine's own facts travel in the
Field Annotation, as action tags REDCap shows and keeps but does not act on, each tag's value
being JSON:
- weights: a choice's weight is its code when every code is a number (REDCap's own
  convention: a calc field adds the codes); otherwise, or when the weights differ from the
  codes, `@Q-WEIGHTS={"Y": 0, "N": 1}` (`{}`: no weights).
- `@Q-SCALE="freq"` on a choice item over a shared scale; `@Q-BOOLEAN` on a yes/no item;
  `@Q-PATTERN="^…$"` and `@Q-MESSAGE="…"` for a text pattern and a check's message;
  `@Q-SECTION="sec_use"` the name of the group whose heading is the Section Header;
  `@Q-GROUP` a descriptive field that stands for a heading with no field after it.
- a score's calc field carries its whole spec, `@Q-SCORE={"method": "sum", …}`, and a
  calculation REDCap can show (nested if() over the weights, so REDCap's screen agrees);
  `@Q-FLAG={…}` (any number) on the field a flag watches.
A calc field without @Q-SCORE is read as REDCap wrote it: `sum([a],[b])` is a sum over those
items with unanswered ones counted 0 (what REDCap's sum does), anything else a formula with
[x] read as x, held to the engine's formula check.
"""

from __future__ import annotations

import csv
import io
import json
import re
from typing import Any

from flask_babel import gettext

from domain.addiction.formats import (
    MAX_CELL,
    MAX_FILE_BYTES,
    MAX_NUMBER,
    MAX_SHEET_ROWS,
    Form,
    FormatRefused,
    at_line,
    column_letter,
    drop_implied_boolean,
    number_text,
    parse_number,
)
from domain.addiction.scoring import (
    BOOLEAN_OPTIONS,
    LINK_ID,
    NUMBER_TYPES,
    DefinitionRefused,
    check_definition,
    check_formula,
    options_of,
)

HEADERS = ["Variable / Field Name", "Form Name", "Section Header", "Field Type", "Field Label",
           "Choices, Calculations, OR Slider Labels", "Field Note", "Text Validation Type OR Show Slider Number",
           "Text Validation Min", "Text Validation Max", "Identifier?", "Branching Logic (Show field only if...)",
           "Required Field?", "Custom Alignment", "Question Number (surveys only)", "Matrix Group Name",
           "Matrix Ranking?", "Field Annotation"]  # fmt: skip
KEYS = ["field", "form", "section", "type", "label", "choices", "note", "validation", "min", "max", "identifier",
        "branching", "required", "alignment", "number", "matrix", "ranking", "annotation"]  # fmt: skip
#: REDCap's rule for a variable name, and for a choice code.
FIELD_NAME = re.compile(r"^[a-z][a-z0-9_]{0,99}$")
CODE = re.compile(r"^-?[A-Za-z0-9_.]{1,50}$")
TAGS = ("SECTION", "SCALE", "WEIGHTS", "PATTERN", "MESSAGE", "SCORE", "FLAG", "BOOLEAN", "GROUP")
VALIDATION = {"integer": "integer", "int": "integer", "number": "decimal", "float": "decimal",
              "date_ymd": "date", "date_mdy": "date", "date_dmy": "date", "date": "date"}  # fmt: skip


def _normal(header: str) -> str:
    """A header compared without case and extra spaces."""
    return re.sub(r"\s+", " ", str(header)).strip().lower()


_BY_HEADER = {_normal(h): k for h, k in zip(HEADERS, KEYS, strict=True)}
_BY_HEADER["branching logic"] = "branching"
_BY_HEADER["variable"] = "field"


# ------------------------------------------------------------------ export
def _default_weight(code: str):
    """REDCap's own convention: a numeric code is its weight."""
    try:
        return parse_number(code) if re.fullmatch(r"-?\d+(\.\d+)?", code) else None
    except ValueError:
        return None


def _choices_text(options: list[dict]) -> str:
    """Options as a REDCap choices string."""
    return " | ".join(f"{o['code']}, {o.get('display', '')}" for o in options)


def _tag(name: str, value=None) -> str:
    """One of our action tags, its value as JSON."""
    return f"@Q-{name}" if value is None else f"@Q-{name}={json.dumps(value, ensure_ascii=False)}"


def _weights_tag(options: list[dict]) -> str | None:
    """@Q-WEIGHTS where the codes alone would not give the weights, else None."""
    if all(o.get("weight") == _default_weight(o["code"]) for o in options):
        return None
    return _tag("WEIGHTS", {o["code"]: o["weight"] for o in options if o.get("weight") is not None})


def _branching(definition: dict, item: dict) -> str:
    """An item's enableWhen as REDCap branching logic."""
    kinds = {i["linkId"]: i.get("type") for i in definition["items"]}
    parts = []
    for c in item.get("enableWhen") or []:
        q, op, answer = c["question"], c["operator"], c.get("answer")
        if op == "exists":
            parts.append(f"[{q}] {'=' if answer is False else '<>'} ''")
        elif kinds.get(q) == "multi" and op in ("=", "!="):
            parts.append(f"[{q}({answer})] = '{'1' if op == '=' else '0'}'")
        elif isinstance(answer, int | float) and not isinstance(answer, bool):
            parts.append(f"[{q}] {'<>' if op == '!=' else op} {number_text(answer)}")
        else:
            parts.append(f"[{q}] {'<>' if op == '!=' else op} '{answer}'")
    return (" or " if item.get("enableBehavior") == "any" else " and ").join(parts)


def _value_expression(definition: dict, item: dict, reverse: bool) -> str:
    """The weight an answer scores, as REDCap logic (if() over the codes)."""
    if item["type"] in NUMBER_TYPES:
        return f"[{item['linkId']}]"
    options = [o for o in options_of(definition, item) if o.get("weight") is not None]
    known = [o["weight"] for o in options]
    top = (max(known) + min(known)) if reverse and known else None

    def weight(o):
        """The option's weight, reversed where the score reverses the item."""
        return number_text(top - o["weight"] if top is not None else o["weight"])

    if item["type"] == "multi":
        return "(" + " + ".join(f"if([{item['linkId']}({o['code']})] = '1', {weight(o)}, 0)" for o in options) + ")"
    expression = "''"
    for o in reversed(options):
        expression = f"if([{item['linkId']}] = '{o['code']}', {weight(o)}, {expression})"
    return expression


def _calculation(definition: dict, spec: dict) -> str:
    """A score as a REDCap calculation that agrees with the engine's."""
    if spec.get("formula") is not None:
        return re.sub(r"(?<![\w.\[])([A-Za-z_]\w*)\b(?!\s*\()", lambda m: f"[{m.group(1)}]", spec["formula"])
    items = {i["linkId"]: i for i in definition["items"]}
    reverse = set(spec.get("reverse") or [])
    weights = spec.get("weights") or {}
    terms = []
    for link in spec.get("items") or []:
        term = _value_expression(definition, items[link], link in reverse)
        if spec.get("method") == "weighted" and link in weights:
            term = f"({term}) * {number_text(weights[link])}"
        terms.append(term)
    return f"{'mean' if spec.get('method') == 'mean' else 'sum'}({', '.join(terms)})"


def export_redcap(definition: dict, form_name: str = "instrument") -> str:
    """The definition as a REDCap data dictionary (CSV text); FormatRefused names an item
    REDCap cannot carry (a name that is not lowercase letters, digits and _, a choice code
    with a comma or space, a label with a pipe)."""
    check_definition(definition)
    form = re.sub(r"[^a-z0-9_]", "_", form_name.lower()).strip("_") or "instrument"
    if not form[0].isalpha():
        form = "f_" + form
    rows: list[dict] = []
    flags: dict[str, list[dict]] = {}
    for flag in (definition.get("scoring") or {}).get("flags") or []:
        flags.setdefault(flag.get("item") or flag.get("score"), []).append(flag)
    pending_group: dict | None = None
    items = definition["items"]
    for index, item in enumerate(items):
        link, kind = item["linkId"], item["type"]
        if not FIELD_NAME.match(link):
            raise FormatRefused(gettext("Item %(id)s: a REDCap variable name is lowercase letters, digits and _, "
                                        "starting with a letter.", id=link))  # fmt: skip
        if kind == "group":
            following = items[index + 1] if index + 1 < len(items) else None
            if following is not None and following["type"] != "group":
                pending_group = item
                continue
        row: dict[str, str] = {"field": link, "form": form, "label": item.get("text", ""),
                               "note": item.get("help", ""), "required": "y" if item.get("required") else "",
                               "branching": _branching(definition, item)}  # fmt: skip
        tags = []
        if pending_group is not None:
            row["section"] = pending_group.get("text", "")
            tags.append(_tag("SECTION", pending_group["linkId"]))
            pending_group = None
        if kind == "group":
            row["type"] = "descriptive"
            tags.append(_tag("GROUP"))
        elif kind == "display":
            row["type"] = "descriptive"
        elif kind in ("likert", "choice", "boolean", "multi"):
            options = options_of(definition, item)
            for option in options:
                # REDCap splits choices at | and a choice at its first comma.
                if not CODE.match(option["code"]) or "|" in (option.get("display") or ""):
                    raise FormatRefused(gettext(
                        "Item %(id)s: REDCap choice codes are letters, digits, _ and ., and labels have no |.",
                        id=link))  # fmt: skip
            row["type"] = "checkbox" if kind == "multi" else "radio"
            row["choices"] = _choices_text(options)
            if kind == "likert":
                row["matrix"] = item.get("scale") or link
            if item.get("scale") and kind != "likert" and not item.get("options"):
                tags.append(_tag("SCALE", item["scale"]))
            if kind == "boolean":
                tags.append(_tag("BOOLEAN"))
            weights = _weights_tag(options)
            if weights:
                tags.append(weights)
        elif kind in NUMBER_TYPES:
            row["type"], row["validation"] = "text", "integer" if kind == "integer" else "number"
            row["min"] = number_text(item["min"]) if item.get("min") is not None else ""
            row["max"] = number_text(item["max"]) if item.get("max") is not None else ""
        elif kind == "date":
            row["type"], row["validation"] = "text", "date_ymd"
        else:
            row["type"] = "notes" if kind == "text" else "text"
        if item.get("pattern"):
            tags.append(_tag("PATTERN", item["pattern"]))
        if item.get("message"):
            tags.append(_tag("MESSAGE", item["message"]))
        tags += [_tag("FLAG", f) for f in flags.get(link, [])]
        row["annotation"] = " ".join(tags)
        rows.append(row)
    for spec in (definition.get("scoring") or {}).get("scores") or []:
        if not FIELD_NAME.match(spec["name"]):
            raise FormatRefused(gettext("Item %(id)s: a REDCap variable name is lowercase letters, digits and _, "
                                        "starting with a letter.", id=spec["name"]))  # fmt: skip
        rest = {k: v for k, v in spec.items() if k not in ("name", "label")}
        tags = [_tag("SCORE", rest)] + [_tag("FLAG", f) for f in flags.get(spec["name"], [])]
        rows.append({"field": spec["name"], "form": form, "type": "calc", "label": spec.get("label", spec["name"]),
                     "choices": _calculation(definition, spec), "annotation": " ".join(tags)})  # fmt: skip
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(HEADERS)
    for row in rows:
        writer.writerow([row.get(k, "") for k in KEYS])
    return out.getvalue()


# ------------------------------------------------------------------ import
class _Row:
    """One record of the file: its row number (the header is row 1) and cells by key."""

    def __init__(self, number: int, cells: dict[str, str], columns: dict[str, int]):
        """Keep the record's row number, cells and column positions."""
        self.number, self.cells, self.columns = number, cells, columns

    def get(self, key: str) -> str:
        """A cell's text, stripped."""
        return self.cells.get(key, "").strip()

    def refuse(self, key: str, reason: str) -> FormatRefused:
        """A refusal at this row and the column of `key`."""
        index = self.columns.get(key, 0)
        return at_line(gettext("REDCap data dictionary"), self.number, f"{HEADERS[KEYS.index(key)]}（{column_letter(index)}）", reason)


def _records(data) -> list[_Row]:
    """The file's records, bounded and checked cell by cell."""
    if isinstance(data, str):
        data = data.encode("utf-8")
    if not isinstance(data, bytes | bytearray):
        raise FormatRefused(gettext("The file is not a REDCap data dictionary (.csv)."))
    if len(data) > MAX_FILE_BYTES:
        raise FormatRefused(gettext("The file is larger than %(mb)s MB.", mb=str(MAX_FILE_BYTES // (1024 * 1024))))
    try:
        text = bytes(data).decode("utf-8-sig")
    except UnicodeDecodeError:
        raise FormatRefused(gettext("The file is not UTF-8 text: save it from REDCap or Excel as CSV UTF-8.")) from None
    if "\x00" in text:
        raise FormatRefused(gettext("The file is not a REDCap data dictionary (.csv)."))
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader, None)
        if not header:
            raise FormatRefused(gettext("The file is empty."))
        columns: dict[str, int] = {}
        for index, name in enumerate(header):
            key = _BY_HEADER.get(_normal(name)) or (
                "branching" if _normal(name).startswith("branching logic") else None)
            if key is None and _normal(name):
                raise at_line(gettext("REDCap data dictionary"), 1, f"{str(name)[:40]}（{column_letter(index)}）",
                              gettext("this column is not one of REDCap's data dictionary."))  # fmt: skip
            if key is not None:
                columns[key] = index
        for key in ("field", "form", "type", "label"):
            if key not in columns:
                raise at_line(gettext("REDCap data dictionary"), 1, HEADERS[KEYS.index(key)], gettext("the file needs this column."))
        rows = []
        for number, record in enumerate(reader, start=2):
            if number > MAX_SHEET_ROWS + 1:
                raise FormatRefused(gettext("The file has more than %(n)d rows, so it was not read.", n=MAX_SHEET_ROWS))
            if not any(c.strip() for c in record):
                continue
            cells = {}
            for key, index in columns.items():
                value = record[index] if index < len(record) else ""
                cells[key] = value
            row = _Row(number, cells, columns)
            for key, value in cells.items():
                if len(value) > MAX_CELL:
                    raise row.refuse(key, gettext("at most %(n)d characters.", n=MAX_CELL))
                if value.lstrip().startswith("="):
                    raise row.refuse(key, gettext("a formula is not accepted; type the value itself."))
            rows.append(row)
    except csv.Error:
        raise FormatRefused(gettext("The file is not a REDCap data dictionary (.csv).")) from None
    if not rows:
        raise FormatRefused(gettext("The file has no fields."))
    return rows


def parse_choices(text: str, row: _Row | None = None, key: str = "choices") -> list[dict]:
    """`1, 非常不同意 | 2, 不同意` → options; a label keeps its commas, an empty piece (a stray
    pipe) is skipped; a piece without a code, a bad or repeated code is refused."""
    def refuse(reason):
        """A refusal at this row and the column of `key`."""
        if row is None:
            return FormatRefused(reason)
        return row.refuse(key, reason)

    options: list[dict] = []
    for number, piece in enumerate(text.replace("\r", "").replace("\n", "|").split("|"), start=1):
        piece = piece.strip()
        if not piece:
            continue
        code, comma, label = piece.partition(",")
        code = code.strip()
        if not comma or not CODE.match(code):
            raise refuse(gettext("choice %(n)d「%(text)s」is not written code, label (e.g. 1, 非常不同意).", n=number,
                                 text=piece[:30]))  # fmt: skip
        if any(o["code"] == code for o in options):
            raise refuse(gettext("the code %(code)s is used twice.", code=code))
        options.append({"code": code, "display": label.strip()})
    if not options:
        raise refuse(gettext("a choice field needs its choices (e.g. 1, 非常不同意 | 2, 不同意)."))
    return options


def _tags(row: _Row) -> dict[str, list]:
    """Our action tags in the Field Annotation; REDCap's own tags are left alone."""
    text = row.get("annotation")
    found: dict[str, list] = {}
    decoder = json.JSONDecoder()
    position = 0
    while True:
        match = re.compile(r"@Q-([A-Z]+)(=?)").search(text, position)
        if not match:
            return found
        name = match.group(1)
        if name not in TAGS:
            raise row.refuse("annotation", gettext("unknown tag @Q-%(name)s.", name=name[:20]))
        position = match.end()
        value: Any = True
        if match.group(2):
            try:
                value, position = decoder.raw_decode(text, position)
            except (ValueError, RecursionError):
                raise row.refuse("annotation", gettext("the value of @Q-%(name)s is not valid JSON.", name=name)) \
                    from None  # fmt: skip
        found.setdefault(name, []).append(value)


def _weights(row: _Row, options: list[dict], tags: dict) -> list[dict]:
    """Options weighted by @Q-WEIGHTS, or by their numeric codes."""
    if "WEIGHTS" in tags:
        weights = tags["WEIGHTS"][0]
        if not isinstance(weights, dict) or set(weights) - {o["code"] for o in options}:
            raise row.refuse("annotation", gettext("@Q-WEIGHTS gives a weight per choice code."))
        for option in options:
            if option["code"] in weights:
                try:
                    option["weight"] = parse_number(weights[option["code"]])
                except ValueError:
                    raise row.refuse("annotation", gettext("a weight must be a number.")) from None
        return options
    for option in options:
        weight = _default_weight(option["code"])
        if weight is not None:
            option["weight"] = weight
    return options


# What a score's or flag's JSON may hold, key → the test of its value: the engine's
# definition check expects these shapes, so a file's JSON is held to them first.
def _strings(value) -> bool:
    """A list of text values."""
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


def _number(value) -> bool:
    """A finite number within the bound (not a bool)."""
    return isinstance(value, int | float) and not isinstance(value, bool) and abs(value) <= MAX_NUMBER


SCORE_SHAPE = {
    "name": lambda v: isinstance(v, str), "label": lambda v: isinstance(v, str),
    "method": lambda v: isinstance(v, str), "missing": lambda v: isinstance(v, str), "items": _strings,
    "reverse": _strings, "formula": lambda v: isinstance(v, str), "max_missing": _number,
    "weights": lambda v: isinstance(v, dict) and all(isinstance(k, str) and _number(w) for k, w in v.items()),
    "bands": lambda v: isinstance(v, list) and all(
        isinstance(b, dict) and set(b) <= {"min", "max", "label"} and _number(b.get("min"))
        and _number(b.get("max")) and isinstance(b.get("label"), str) for b in v),
}  # fmt: skip
FLAG_SHAPE = {
    "name": lambda v: isinstance(v, str), "label": lambda v: isinstance(v, str),
    "item": lambda v: isinstance(v, str), "score": lambda v: isinstance(v, str),
    "operator": lambda v: isinstance(v, str), "value": lambda v: v is None or _number(v),
}  # fmt: skip


def _shaped(value, shape: dict) -> bool:
    """A JSON object whose every key is known and every value of the expected shape."""
    return isinstance(value, dict) and all(k in shape and shape[k](v) for k, v in value.items())


def _string_tag(row: _Row, tags: dict, name: str) -> str | None:
    """The text value of one of our tags, or None."""
    if name not in tags:
        return None
    value = tags[name][0]
    if not isinstance(value, str):
        raise row.refuse("annotation", gettext("the value of @Q-%(name)s must be text.", name=name))
    return value


def import_redcap(data) -> Form:
    """A questionnaire from a REDCap data dictionary; FormatRefused names the row and column."""
    rows = _records(data)
    items: list[dict] = []
    scales: dict[str, list] = {}
    scores: list[dict] = []
    flags: list[tuple[_Row, dict]] = []
    seen: dict[str, int] = {}
    form_names = {r.get("form") for r in rows}
    branching: list[tuple[_Row, dict]] = []
    for row in rows:
        link = row.get("field")
        if not LINK_ID.match(link):
            raise row.refuse("field", gettext("a name of letters, digits, _ . or - starting with a letter, at most 50."))
        if link in seen:
            raise row.refuse("field", gettext("the name %(id)s is already used in row %(row)d.", id=link,
                                              row=seen[link]))  # fmt: skip
        seen[link] = row.number
        tags = _tags(row)
        flags += [(row, f) for f in tags.get("FLAG", [])]
        kind = row.get("type").lower()
        if row.get("section"):
            group = _string_tag(row, tags, "SECTION") or f"sec_{link}"[:50]
            if group in seen:
                raise row.refuse("annotation", gettext("the name %(id)s is already used in row %(row)d.", id=group,
                                                       row=seen[group]))  # fmt: skip
            seen[group] = row.number
            items.append({"linkId": group, "type": "group", "text": row.get("section")})
        if kind == "calc":
            scores.append(_score(row, tags, link))
            continue
        item = _item(row, tags, link, kind, scales)
        if row.get("branching"):
            branching.append((row, item))
        items.append(item)
    known = {i["linkId"]: i for i in items}
    order = list(known)
    for row, item in branching:
        _branching_into(row, item, known, order)
    definition: dict[str, Any] = {"items": items}
    if scales:
        definition["scales"] = scales
    scoring: dict[str, Any] = {}
    if scores:
        scoring["scores"] = scores
    if flags:
        for row, flag in flags:
            if not _shaped(flag, FLAG_SHAPE):
                raise row.refuse("annotation", gettext("@Q-FLAG describes one flag."))
        scoring["flags"] = [f for _r, f in flags]
    if scoring:
        definition["scoring"] = scoring
    check_definition(definition)
    return Form(definition=definition, code=next(iter(form_names)) if len(form_names) == 1 else "")


def _item(row: _Row, tags: dict, link: str, kind: str, scales: dict) -> dict:
    """One field as an item of the engine."""
    item: dict[str, Any] = {"linkId": link}
    label = row.get("label")
    if label:
        item["text"] = label
    if row.get("note"):
        item["help"] = row.get("note")
    if kind == "descriptive":
        item["type"] = "group" if "GROUP" in tags else "display"
    elif kind in ("radio", "dropdown", "checkbox"):
        options = _weights(row, parse_choices(row.get("choices"), row), tags)
        if kind == "checkbox":
            item["type"] = "multi"
        elif "BOOLEAN" in tags:
            item["type"] = "boolean"
        elif row.get("matrix"):
            item["type"] = "likert"
        else:
            item["type"] = "choice"
        # A matrix named after its only field is that field's own choices (export writes so).
        matrix = row.get("matrix") if row.get("matrix") != link else ""
        scale = matrix if item["type"] == "likert" else _string_tag(row, tags, "SCALE")
        if scale:
            if not LINK_ID.match(scale):
                raise row.refuse("matrix", gettext("a name of letters, digits, _ . or - starting with a letter, at most 50."))
            if scales.setdefault(scale, options) != options:
                raise row.refuse("choices", gettext("the choices differ from those of the other fields of %(scale)s.",
                                                    scale=scale))  # fmt: skip
            item["scale"] = scale
        else:
            item["options"] = options
    elif kind in ("yesno", "truefalse"):
        item["type"] = "boolean"
        labels = ("是", "否") if kind == "yesno" else ("對", "錯")
        item["options"] = [{"code": "1", "display": labels[0], "weight": 1},
                           {"code": "0", "display": labels[1], "weight": 0}]  # fmt: skip
    elif kind == "text":
        validation = row.get("validation").lower()
        if validation and validation not in VALIDATION and not validation.startswith("number_"):
            raise row.refuse("validation", gettext("validation %(v)s is not supported (integer, number, date_ymd).",
                                                   v=validation[:30]))  # fmt: skip
        item["type"] = VALIDATION.get(validation, "decimal" if validation else "string")
        for key in ("min", "max"):
            if row.get(key):
                if item["type"] not in NUMBER_TYPES:
                    raise row.refuse(key, gettext("a range needs an integer or decimal item."))
                try:
                    item[key] = parse_number(row.get(key))
                except ValueError:
                    raise row.refuse(key, gettext("a number.")) from None
    elif kind == "notes":
        item["type"] = "text"
    else:
        raise row.refuse("type", gettext("unknown item type %(type)s.", type=kind[:30] or "—"))
    required = row.get("required").lower()
    if required in ("y", "yes", "1"):
        if item["type"] in ("group", "display"):
            raise row.refuse("required", gettext("a heading or note takes no answer."))
        item["required"] = True
    elif required not in ("", "n", "no", "0"):
        raise row.refuse("required", gettext("Required Field? is y or empty."))
    for name, key in (("PATTERN", "pattern"), ("MESSAGE", "message")):
        value = _string_tag(row, tags, name)
        if value is not None:
            item[key] = value
    if item["type"] in ("group", "display") and row.get("branching"):
        raise row.refuse("branching", gettext("branching on a heading is not supported; put it on its items."))
    return drop_implied_boolean(item)


def _score(row: _Row, tags: dict, name: str) -> dict:
    """A calc field as a score: its @Q-SCORE, a plain sum, or a checked formula."""
    label = row.get("label") or name
    if "SCORE" in tags:
        spec = tags["SCORE"][0]
        if not isinstance(spec, dict):
            raise row.refuse("annotation", gettext("@Q-SCORE describes one score."))
        spec = {"name": name, "label": label, **{k: v for k, v in spec.items() if k not in ("name", "label")}}
        if not _shaped(spec, SCORE_SHAPE):
            raise row.refuse("annotation", gettext("@Q-SCORE describes one score."))
        return spec
    calculation = row.get("choices")
    if not calculation:
        raise row.refuse("choices", gettext("a calc field needs its calculation."))
    plain_sum = re.fullmatch(r"\s*sum\(\s*((?:\[[A-Za-z][\w.-]*\]\s*,?\s*)+)\)\s*", calculation)
    if plain_sum:
        links = re.findall(r"\[([A-Za-z][\w.-]*)\]", plain_sum.group(1))
        return {"name": name, "label": label, "method": "sum", "items": links, "missing": "zero"}
    formula = re.sub(r"\[([A-Za-z][A-Za-z0-9_]*)\]", r"\1", calculation)
    if "[" in formula:
        raise row.refuse("choices", gettext("a reference is written %(form)s.", form="[name]"))
    try:
        names = set(re.findall(r"[A-Za-z_]\w*", formula))
        check_formula(formula, names - {"min", "max", "abs", "round", "floor", "ceil"}, label)
    except DefinitionRefused as refusal:
        raise row.refuse("choices", str(refusal)) from None
    return {"name": name, "label": label, "formula": formula}


_QUOTED = r"'[^']*'|\"[^\"]*\""
_LOGIC = re.compile(rf"\[([A-Za-z][\w.-]*)(?:\(([A-Za-z0-9_.-]+)\))?\]\s*(>=|<=|<>|!=|=|>|<)\s*({_QUOTED}|-?\d+(?:\.\d+)?)")


def _branching_into(row: _Row, item: dict, known: dict, order: list) -> None:
    """REDCap branching logic read into the item's enableWhen."""
    refuse = row.refuse("branching", gettext(
        "branching is %(forms)s, joined by all and or all or, on earlier items.",
        forms="[item] = 'code', [item(code)] = '1', [item] >= n, [item] <> ''"))  # fmt: skip
    rest, conditions, joiners = row.get("branching"), [], set()
    while True:
        match = _LOGIC.match(rest)
        if not match:
            raise refuse
        question, code, op, answer = match.groups()
        op = "!=" if op == "<>" else op
        if question not in known or order.index(question) >= order.index(item["linkId"]):
            raise refuse
        quoted = answer[0] in "'\""
        value = answer[1:-1] if quoted else parse_number(answer)
        if code is not None:
            if op not in ("=", "!=") or str(value) not in ("0", "1"):
                raise refuse
            chosen = (str(value) == "1") == (op == "=")
            condition = {"question": question, "operator": "=" if chosen else "!=", "answer": code}
        elif value == "" and op in ("=", "!="):
            condition = {"question": question, "operator": "exists"}
            if op == "=":
                condition["answer"] = False
        else:
            if op not in ("=", "!=") and quoted:
                try:
                    value = parse_number(value)
                except ValueError:
                    raise refuse from None
            condition = {"question": question, "operator": op, "answer": value}
        conditions.append(condition)
        rest = rest[match.end():].strip()
        if not rest:
            break
        joiner = re.match(r"^(and|or)\s+", rest, re.IGNORECASE)
        if not joiner:
            raise refuse
        joiners.add(joiner.group(1).lower())
        rest = rest[joiner.end():]
    if len(joiners) > 1:
        raise refuse
    item["enableWhen"] = conditions
    if joiners == {"or"}:
        item["enableBehavior"] = "any"


__all__ = ["export_redcap", "import_redcap", "parse_choices", "BOOLEAN_OPTIONS"]
