"""The instrument engine (量表與自訂問卷, rules A3, A4): one definition shape for built-in and
custom questionnaires, the check of a definition before it is saved, the check of a response's
answers, and its scores — computed here and only here, at every save, API write and import.

A definition is a dict kept close to FHIR R4 Questionnaire so that export is a mapping:

    {"items": [{"linkId": "q1", "type": "likert", "text": "...", "required": true,
                "scale": "freq5" | "options": [{"code": "0", "display": "完全沒有", "weight": 0}],
                "enableWhen": [{"question": "q0", "operator": "=", "answer": "Y"}],
                "enableBehavior": "all" | "any", "min": 0, "max": 30,
                "pattern": "^[0-9]{4}$", "message": "...", "help": "..."}, ...],
     "scales": {"freq5": [{"code": "0", "display": "完全沒有", "weight": 0}, ...]},
     "scoring": {"scores": [{"name": "total", "label": "總分", "method": "sum" | "mean" | "weighted",
                             "items": ["q1", ...], "reverse": ["q4"], "weights": {"q1": 2},
                             "missing": "refuse" | "prorate" | "zero", "max_missing": 1,
                             "formula": "total * 2", "bands": [{"min": 0, "max": 5, "label": "正常"}]}],
                 "flags": [{"name": "suicide", "label": "...", "item": "q6" | "score": "total",
                            "operator": ">=", "value": 2}]}}

Item types: group (a section heading; its items follow it), display (text only), likert (a
choice over a shared scale, shown as a matrix for a battery), choice, multi, boolean, integer,
decimal, date, string, text. A choice's value for scoring is its weight (a multi's: the sum
of its chosen weights; a number item's: the number). A reversed item scores max + min − weight
of its options. An item hidden by enableWhen is not answered and not missing.

Formulas (a score's `formula`) are arithmetic over numbers only, through `simpleeval` with an
allow-list of functions; the definition check refuses anything else (attributes, subscripts,
strings, unknown names or functions, `__class__` …) before a version is saved, and the
evaluator is restricted the same way at run time.
"""

from __future__ import annotations

import ast
import datetime as dt
import functools
import hashlib
import json
import math
import re
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from flask_babel import gettext
from simpleeval import DEFAULT_OPERATORS, SimpleEval

from core.errors import UserError

ITEM_TYPES = ("group", "display", "likert", "choice", "multi", "boolean", "integer", "decimal",
              "date", "string", "text")  # fmt: skip
#: Types whose answer is one or more option codes.
CHOICE_TYPES = ("likert", "choice", "multi", "boolean")
NUMBER_TYPES = ("integer", "decimal")
#: Types that carry no answer.
NO_ANSWER = ("group", "display")
OPERATORS = ("=", "!=", ">", "<", ">=", "<=", "exists")
METHODS = ("sum", "mean", "weighted")
MISSING_RULES = ("refuse", "prorate", "zero")
#: A boolean item without options of its own: 是 scores 1, 否 0.
BOOLEAN_OPTIONS = [{"code": "Y", "display": "是", "weight": 1}, {"code": "N", "display": "否", "weight": 0}]
#: What a formula may call.
FORMULA_FUNCTIONS = {"min": min, "max": max, "abs": abs, "round": round, "floor": math.floor,
                     "ceil": math.ceil}  # fmt: skip
_FORMULA_NODES = (ast.Expression, ast.BinOp, ast.UnaryOp, ast.Constant, ast.Name, ast.Load, ast.Call,
                  ast.Compare, ast.BoolOp, ast.IfExp, ast.Add, ast.Sub, ast.Mult, ast.Div, ast.FloorDiv,
                  ast.Mod, ast.Pow, ast.USub, ast.UAdd, ast.Not, ast.And, ast.Or, ast.Eq, ast.NotEq,
                  ast.Lt, ast.LtE, ast.Gt, ast.GtE)  # fmt: skip
#: Bounds that keep a hostile definition or answer from costing the server.
MAX_ITEMS = 500
MAX_OPTIONS = 100
MAX_TEXT = 4000
MAX_FORMULA = 500
#: A formula's powers: a plain number exponent up to this (9**9**9 would take the server's
#: memory), and its numbers up to this size.
MAX_EXPONENT = 10
MAX_CONSTANT = 1_000_000_000
LINK_ID = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]{0,49}$")


class DefinitionRefused(UserError):
    """A questionnaire definition the engine cannot use; the message names the item."""


class AnswersRefused(UserError):
    """A response whose answers break the version's items; `errors` maps linkId → message."""

    def __init__(self, errors: dict[str, str]):
        self.errors = errors
        super().__init__("；".join(errors.values()))

    def answer(self):
        return {"answers": self.errors}


@dataclass
class Scored:
    """A response's scores: name → number (None where refused by a missing rule), band
    labels, raised flags, and the fingerprint of the scoring spec that computed them."""

    scores: dict[str, float | None] = field(default_factory=dict)
    bands: dict[str, str] = field(default_factory=dict)
    flags: list[dict[str, str]] = field(default_factory=list)
    spec: str = ""

    def as_json(self) -> dict:
        """The stored shape (a JSON column)."""
        return {"scores": self.scores, "bands": self.bands, "flags": self.flags, "spec": self.spec}


# ------------------------------------------------------------------ the definition
def _item_name(item: dict, number: int | None = None) -> str:
    text = str(item.get("text") or item.get("linkId") or "")
    text = text if len(text) <= 30 else text[:29] + "…"
    return gettext("Item %(id)s「%(text)s」", id=item.get("linkId", number), text=text)


def options_of(definition: dict, item: dict) -> list[dict]:
    """The item's answer options (its own, its scale's, or yes/no for a boolean)."""
    if item.get("options"):
        return item["options"]
    if item.get("scale"):
        return (definition.get("scales") or {}).get(item["scale"], [])
    if item.get("type") == "boolean":
        return BOOLEAN_OPTIONS
    return []


def battery_key(definition: dict, item: dict) -> str | None:
    """What a Likert battery shares: items with the same key, one after another, are filled
    in as one matrix. A Likert item always has one (its scale, or its own options); a
    single-choice item on a shared scale (AUDIT's frequency items) too; others have none."""
    kind = item.get("type")
    if kind == "likert" or (kind == "choice" and item.get("scale")):
        options = [(o.get("code"), o.get("display")) for o in options_of(definition, item)]
        return json.dumps(options, ensure_ascii=False)
    return None


def answerable(definition: dict) -> list[dict]:
    """The items that take an answer, in order."""
    return [i for i in definition.get("items", []) if i.get("type") not in NO_ANSWER]


@dataclass
class _Compiled:
    """What the engine reads of a definition at every response, worked out once: the
    answerable items by linkId, whether any item has a condition, each choice item's option
    codes, weights by code and the sum of its lowest and highest weight (for reversing)."""

    items: dict[str, dict]
    every_link: frozenset
    conditional: bool
    codes: dict[str, list[str]]
    code_sets: dict[str, frozenset]
    weights: dict[str, dict]
    reverse_sum: dict[str, float | None]


#: id(definition) → (definition, compiled), held by identity like _FINGERPRINTS below (the
#: same caveat: a definition is never changed in place once scored; drafts are deep-copied).
#: Measured: half of score_response's time was rebuilding these per response.
_COMPILED: dict[int, tuple[dict, _Compiled]] = {}


def _compiled(definition: dict) -> _Compiled:
    memo = _COMPILED.get(id(definition))
    if memo is not None and memo[0] is definition:
        return memo[1]
    if len(_COMPILED) > 256:
        _COMPILED.clear()
    items = {i["linkId"]: i for i in answerable(definition)}
    codes, code_sets, weights, reverse_sum = {}, {}, {}, {}
    for link, item in items.items():
        options = options_of(definition, item)
        if not options:
            continue
        codes[link] = [o["code"] for o in options]
        code_sets[link] = frozenset(codes[link])
        weights[link] = {o["code"]: o.get("weight") for o in options}
        known = [o["weight"] for o in options if o.get("weight") is not None]
        reverse_sum[link] = (max(known) + min(known)) if known else None
    value = _Compiled(
        items, frozenset(i.get("linkId") for i in definition.get("items", [])),
        any(i.get("enableWhen") for i in definition.get("items", [])), codes, code_sets, weights, reverse_sum,
    )  # fmt: skip
    _COMPILED[id(definition)] = (definition, value)
    return value


#: id(definition) → (definition, fingerprint): a version's definition is hashed once, not at
#: every response (0.3 ms of a 0.4 ms score, cProfile over 9,000 demo responses). Held by
#: identity, so a definition changed in place (a draft being edited) is hashed again only
#: when it is a new dict; drafts are scored for preview only, never stored.
_FINGERPRINTS: dict[int, tuple[dict, str]] = {}


def spec_fingerprint(definition: dict) -> str:
    """A short hash of what computes the scores (items' options and weights, the scoring spec):
    stored beside every score, so a score can always be traced to the spec that made it."""
    memo = _FINGERPRINTS.get(id(definition))
    if memo is not None and memo[0] is definition:
        return memo[1]
    if len(_FINGERPRINTS) > 256:
        _FINGERPRINTS.clear()
    value = _fingerprint(definition)
    _FINGERPRINTS[id(definition)] = (definition, value)
    return value


def _fingerprint(definition: dict) -> str:
    relevant = {
        "scoring": definition.get("scoring") or {},
        "items": [(i.get("linkId"), i.get("type"), options_of(definition, i)) for i in answerable(definition)],
    }
    text = json.dumps(relevant, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def check_definition(definition: Any) -> dict:
    """Refuse a definition the engine cannot use (with a message naming the item); returns it."""
    if not isinstance(definition, dict) or not isinstance(definition.get("items"), list):
        raise DefinitionRefused(gettext("A questionnaire needs a list of items."))
    items = definition["items"]
    if not items:
        raise DefinitionRefused(gettext("A questionnaire needs at least one item."))
    if len(items) > MAX_ITEMS:
        raise DefinitionRefused(gettext("A questionnaire has at most %(n)d items.", n=MAX_ITEMS))
    scales = definition.get("scales") or {}
    if not isinstance(scales, dict):
        raise DefinitionRefused(gettext("The shared scales must be named lists of options."))
    for name, options in scales.items():
        _check_options(options, gettext("Scale %(name)s", name=name))
    seen: dict[str, dict] = {}
    for number, item in enumerate(items, start=1):
        if not isinstance(item, dict):
            raise DefinitionRefused(gettext("Item %(n)d is not an item.", n=number))
        link = item.get("linkId")
        if not isinstance(link, str) or not LINK_ID.match(link):
            raise DefinitionRefused(
                gettext("Item %(n)d needs a name of letters, digits, _ . or - starting with a letter.", n=number)
            )
        name = _item_name(item, number)
        if link in seen:
            raise DefinitionRefused(gettext("%(item)s: the name %(id)s is used twice.", item=name, id=link))
        kind = item.get("type")
        if kind not in ITEM_TYPES:
            raise DefinitionRefused(gettext("%(item)s: unknown item type %(type)s.", item=name, type=str(kind)[:30]))
        if not isinstance(item.get("text", ""), str) or len(item.get("text", "")) > MAX_TEXT:
            raise DefinitionRefused(gettext("%(item)s: the text is too long.", item=name))
        if kind in CHOICE_TYPES:
            if item.get("scale") and item["scale"] not in scales:
                raise DefinitionRefused(gettext("%(item)s: there is no scale %(scale)s.", item=name,
                                                scale=str(item["scale"])[:30]))  # fmt: skip
            options = options_of(definition, item)
            if not options:
                raise DefinitionRefused(gettext("%(item)s: a choice item needs options.", item=name))
            _check_options(options, name)
        for bound in ("min", "max"):
            if bound in item and (kind not in NUMBER_TYPES or not _is_number(item[bound])):
                raise DefinitionRefused(gettext("%(item)s: a range needs a number item and numbers.", item=name))
        if "min" in item and "max" in item and item["min"] > item["max"]:
            raise DefinitionRefused(gettext("%(item)s: the range's minimum is above its maximum.", item=name))
        if item.get("pattern") is not None:
            if kind not in ("string", "text") or not isinstance(item["pattern"], str) or len(item["pattern"]) > 200:
                raise DefinitionRefused(gettext("%(item)s: a pattern needs a text item.", item=name))
            try:
                re.compile(item["pattern"])
            except re.error:
                raise DefinitionRefused(gettext("%(item)s: the pattern is not a valid pattern.", item=name)) from None
        for condition in item.get("enableWhen") or []:
            if (not isinstance(condition, dict) or condition.get("question") not in seen
                    or condition.get("operator") not in OPERATORS):  # fmt: skip
                raise DefinitionRefused(
                    gettext("%(item)s: it may show only after an earlier item's answer.", item=name)
                )
        if item.get("enableBehavior", "all") not in ("all", "any"):
            raise DefinitionRefused(gettext("%(item)s: show when all or any conditions hold.", item=name))
        seen[link] = item
    _check_scoring(definition, seen)
    return definition


def _is_number(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _check_options(options, name: str) -> None:
    if not isinstance(options, list) or not options or len(options) > MAX_OPTIONS:
        raise DefinitionRefused(gettext("%(item)s: between 1 and %(n)d options.", item=name, n=MAX_OPTIONS))
    codes = set()
    for option in options:
        if not isinstance(option, dict) or not isinstance(option.get("code"), str) or not option["code"]:
            raise DefinitionRefused(gettext("%(item)s: every option needs a code.", item=name))
        if option["code"] in codes:
            raise DefinitionRefused(gettext("%(item)s: the option code %(code)s is used twice.", item=name,
                                            code=option["code"][:20]))  # fmt: skip
        codes.add(option["code"])
        if "weight" in option and option["weight"] is not None and not _is_number(option["weight"]):
            raise DefinitionRefused(gettext("%(item)s: an option's weight must be a number.", item=name))


def _check_scoring(definition: dict, items: dict[str, dict]) -> None:
    scoring = definition.get("scoring") or {}
    if not isinstance(scoring, dict):
        raise DefinitionRefused(gettext("The scoring must be a list of scores and flags."))
    names: set[str] = set()
    for score in scoring.get("scores") or []:
        if not isinstance(score, dict) or not isinstance(score.get("name"), str) or not LINK_ID.match(score["name"]):
            raise DefinitionRefused(gettext("Every score needs a name of letters and digits."))
        label = score.get("label") or score["name"]
        if score["name"] in names or score["name"] in items:
            raise DefinitionRefused(gettext("Score %(name)s: the name is used twice.", name=label))
        if score.get("method", "sum") not in METHODS:
            raise DefinitionRefused(gettext("Score %(name)s: the method is sum, mean or weighted.", name=label))
        if score.get("missing", "refuse") not in MISSING_RULES:
            raise DefinitionRefused(
                gettext("Score %(name)s: missing answers are refused, prorated or counted as 0.", name=label)
            )
        for link in list(score.get("items") or []) + list(score.get("reverse") or []):
            item = items.get(link)
            if item is None or (item["type"] not in CHOICE_TYPES and item["type"] not in NUMBER_TYPES):
                raise DefinitionRefused(gettext("Score %(name)s: %(id)s is not a scored item.", name=label,
                                                id=str(link)[:50]))  # fmt: skip
        for link in score.get("reverse") or []:
            if link not in (score.get("items") or []) or items[link]["type"] not in CHOICE_TYPES:
                raise DefinitionRefused(
                    gettext("Score %(name)s: only its own choice items can be reversed.", name=label)
                )
        for link, weight in (score.get("weights") or {}).items():
            if link not in (score.get("items") or []) or not _is_number(weight):
                raise DefinitionRefused(gettext("Score %(name)s: a weight needs one of its items and a number.",
                                                name=label))  # fmt: skip
        if score.get("formula") is not None:
            check_formula(score["formula"], names | set(items), label)
        elif not score.get("items"):
            raise DefinitionRefused(gettext("Score %(name)s: it needs items or a formula.", name=label))
        for band in score.get("bands") or []:
            if (not isinstance(band, dict) or not _is_number(band.get("min")) or not _is_number(band.get("max"))
                    or band["min"] > band["max"] or not isinstance(band.get("label"), str)):  # fmt: skip
                raise DefinitionRefused(gettext("Score %(name)s: a band needs a minimum, a maximum and a label.",
                                                name=label))  # fmt: skip
        names.add(score["name"])
    for flag in scoring.get("flags") or []:
        if not isinstance(flag, dict) or not isinstance(flag.get("label"), str):
            raise DefinitionRefused(gettext("Every flag needs a label."))
        target = flag.get("item") or flag.get("score")
        if (flag.get("item") and flag["item"] not in items) or (flag.get("score") and flag["score"] not in names) \
                or not target:  # fmt: skip
            raise DefinitionRefused(gettext("Flag %(label)s: it needs an item or a score.", label=flag["label"][:30]))
        if flag.get("operator") not in OPERATORS or (flag["operator"] != "exists" and not _is_number(flag.get("value"))):
            raise DefinitionRefused(gettext("Flag %(label)s: it needs a comparison with a number.",
                                            label=flag["label"][:30]))  # fmt: skip


def check_formula(formula: Any, names: set[str], label: str = "") -> None:
    """Refuse a formula that is not arithmetic over the known names and allowed functions."""
    if not isinstance(formula, str) or not formula.strip() or len(formula) > MAX_FORMULA:
        raise DefinitionRefused(gettext("Score %(name)s: the formula is empty or too long.", name=label))
    try:
        tree = ast.parse(formula, mode="eval")
    except (SyntaxError, ValueError):
        raise DefinitionRefused(gettext("Score %(name)s: the formula cannot be read.", name=label)) from None
    for node in ast.walk(tree):
        if not isinstance(node, _FORMULA_NODES):
            raise DefinitionRefused(
                gettext("Score %(name)s: a formula may use numbers, names, + - * / and %(functions)s only.",
                        name=label, functions=", ".join(FORMULA_FUNCTIONS))
            )  # fmt: skip
        if isinstance(node, ast.Constant) and not _is_number(node.value):
            raise DefinitionRefused(gettext("Score %(name)s: a formula works with numbers only.", name=label))
        if isinstance(node, ast.Constant) and abs(node.value) > MAX_CONSTANT:
            raise DefinitionRefused(gettext("Score %(name)s: a number in the formula is too large.", name=label))
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Pow) and not _small_exponent(node.right):
            raise DefinitionRefused(
                gettext("Score %(name)s: a power's exponent must be a plain number from 0 to %(n)d.",
                        name=label, n=MAX_EXPONENT))  # fmt: skip
        if isinstance(node, ast.Call):
            if not isinstance(node.func, ast.Name) or node.func.id not in FORMULA_FUNCTIONS or node.keywords:
                raise DefinitionRefused(gettext("Score %(name)s: unknown function in the formula.", name=label))
        elif isinstance(node, ast.Name) and node.id not in names and node.id not in FORMULA_FUNCTIONS:
            raise DefinitionRefused(
                gettext("Score %(name)s: the formula names %(id)s, which is not an item or an earlier score.",
                        name=label, id=node.id[:50])
            )  # fmt: skip


def _small_exponent(node) -> bool:
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
        node = node.operand
    return isinstance(node, ast.Constant) and _is_number(node.value) and abs(node.value) <= MAX_EXPONENT


def _bounded_power(base, exponent):
    """** at run time: the same bound as the definition check (a second line of defence)."""
    if abs(exponent) > MAX_EXPONENT or abs(base) > MAX_CONSTANT:
        raise ValueError("power out of bounds")
    return base**exponent


#: The evaluator's operators: simpleeval's own, with ** bounded.
FORMULA_OPERATORS = {**DEFAULT_OPERATORS, ast.Pow: _bounded_power}


@functools.lru_cache(maxsize=256)
def _parsed(formula: str):
    """A formula's syntax tree, parsed once (parsing was 0.5 of a formula score's 0.8 ms)."""
    return ast.parse(formula.strip(), mode="eval").body


def evaluate_formula(formula: str, names: dict[str, float]) -> float | None:
    """A (checked) formula's value over the named numbers; None when it has none (a name
    unanswered, a division by zero, a result that is not a finite number)."""
    evaluator = SimpleEval(names=dict(names), functions=FORMULA_FUNCTIONS, operators=FORMULA_OPERATORS)
    try:
        value = evaluator.eval(formula, previously_parsed=_parsed(formula))
    except Exception:  # noqa: BLE001 - a name left unanswered, a division by zero: no score
        return None
    return _rounded(value) if _is_number(value) else None


# ------------------------------------------------------------------ the answers
def shown(definition: dict, answers: dict) -> set[str]:
    """The linkIds shown for these answers (enableWhen evaluated in order)."""
    compiled = _compiled(definition)
    if not compiled.conditional:
        return set(compiled.every_link)
    visible: set[str] = set()
    for item in definition.get("items", []):
        if enabled(item, answers, visible):
            visible.add(item["linkId"])
    return visible


def enabled(item: dict, answers: dict, visible: set[str]) -> bool:
    """Whether an item shows, given the answers and the earlier items shown."""
    conditions = item.get("enableWhen")
    if not conditions:
        return True
    results = (
        c["question"] in visible and _compare(answers.get(c["question"]), c["operator"], c.get("answer"))
        for c in conditions
    )
    return any(results) if item.get("enableBehavior") == "any" else all(results)


def _compare(answer, operator: str, expected) -> bool:
    if operator == "exists":
        present = answer not in (None, "", [])
        return present if expected in (None, True) else not present
    if answer in (None, "", []):
        return False
    if isinstance(answer, list):  # a multi: '=' means chosen
        return (expected in answer) if operator == "=" else (expected not in answer) if operator == "!=" else False
    if operator in ("=", "!="):
        same = str(answer) == str(expected)
        return same if operator == "=" else not same
    try:
        left, right = float(answer), float(expected)
    except (TypeError, ValueError):
        return False
    return {">": left > right, "<": left < right, ">=": left >= right, "<=": left <= right}[operator]


def clean_answers(definition: dict, answers: Any) -> dict:
    """The answers checked against the version's items and normalized (codes as strings,
    numbers as numbers, dates as ISO text); AnswersRefused names every item at fault.

    Refused: an answer to an unknown or hidden item, a code that is not an option, a number
    out of range or not a number (Unicode digits are read as digits), a date that is not one,
    text past its pattern or length, and a missing answer to a required shown item."""
    if not isinstance(answers, dict):
        raise AnswersRefused({"": gettext("The answers must be given per item.")})
    items = _compiled(definition).items
    visible = shown(definition, answers)
    errors: dict[str, str] = {}
    out: dict[str, Any] = {}
    for link in answers:
        if link not in items:
            errors[str(link)[:50]] = gettext("%(id)s is not an item of this questionnaire.", id=str(link)[:50])
    for link, item in items.items():
        value = answers.get(link)
        empty = value is None or value == "" or value == []
        if link not in visible:
            if not empty:
                errors[link] = gettext("%(item)s is not shown for the earlier answers, so it takes no answer.",
                                       item=_item_name(item))  # fmt: skip
            continue
        if empty:
            if item.get("required"):
                errors[link] = gettext("%(item)s must be answered.", item=_item_name(item))
            continue
        try:
            out[link] = _clean_value(definition, item, value)
        except ValueError as refusal:
            errors[link] = gettext("%(item)s: %(reason)s", item=_item_name(item), reason=str(refusal))
    if errors:
        raise AnswersRefused(errors)
    return out


def _clean_value(definition: dict, item: dict, value):
    kind = item["type"]
    if kind in CHOICE_TYPES:
        compiled = _compiled(definition)
        codes = compiled.code_sets.get(item["linkId"], frozenset())
        if kind == "multi":
            chosen = value if isinstance(value, list) else [value]
            chosen = [str(c) for c in chosen]
            if len(chosen) > len(codes) or not set(chosen) <= codes or len(set(chosen)) != len(chosen):
                raise ValueError(gettext("choose among the listed options."))
            return [code for code in compiled.codes[item["linkId"]] if code in chosen]
        if value.__class__ is str and value in codes:
            return value
        if isinstance(value, list | dict) or str(value) not in codes:
            raise ValueError(gettext("choose one of the listed options."))
        return str(value)
    if kind in NUMBER_TYPES:
        number = _number(value, integer=kind == "integer")
        low, high = item.get("min"), item.get("max")
        if (low is not None and number < low) or (high is not None and number > high):
            raise ValueError(item.get("message") or gettext("between %(low)s and %(high)s.",
                                                            low=_text(low), high=_text(high)))  # fmt: skip
        return number
    if kind == "date":
        try:
            return dt.date.fromisoformat(str(value)[:10]).isoformat() if len(str(value)) == 10 else _bad_date()
        except ValueError:
            _bad_date()
    text = str(value)
    limit = MAX_TEXT if kind == "text" else 200
    if len(text) > limit:
        raise ValueError(gettext("at most %(n)d characters.", n=limit))
    if item.get("pattern") and not re.fullmatch(item["pattern"], text):
        raise ValueError(item.get("message") or gettext("not in the expected form."))
    return text


def _bad_date():
    raise ValueError(gettext("a date as YYYY-MM-DD."))


def _text(value) -> str:
    return "" if value is None else f"{value:g}" if isinstance(value, float) else str(value)


def _number(value, integer: bool) -> int | float:
    if isinstance(value, bool):
        raise ValueError(gettext("a number."))
    if isinstance(value, int | float):
        number = value
    else:
        text = str(value).strip()
        if len(text) > 30:
            raise ValueError(gettext("a number."))
        # Unicode digits (全形 １２, Arabic-Indic …) are digits; anything else is refused.
        text = "".join(str(int(c)) if c.isdigit() else c for c in text).replace("．", ".").replace("－", "-")
        try:
            number = Decimal(text)
        except InvalidOperation:
            raise ValueError(gettext("a number.")) from None
        if not number.is_finite():
            raise ValueError(gettext("a number."))
        number = int(number) if number == number.to_integral_value() else float(number)
    if isinstance(number, float) and not math.isfinite(number):
        raise ValueError(gettext("a number."))
    if integer:
        if number != int(number):
            raise ValueError(gettext("a whole number."))
        return int(number)
    return number


# ------------------------------------------------------------------ the scores
def item_value(definition: dict, item: dict, answer, reverse: bool = False) -> float | None:
    """The number an answer contributes to a score (None when unanswered or unweighted)."""
    if answer is None or answer == [] or answer == "":
        return None
    if item["type"] in NUMBER_TYPES:
        return float(answer)
    compiled = _compiled(definition)
    weights = compiled.weights.get(item["linkId"], {})
    if answer.__class__ is str:  # one choice: the common case, without a list
        weight = weights.get(answer)
        if weight is None:
            return None
        value = float(weight)
    else:
        values = [weights.get(code) for code in (answer if isinstance(answer, list) else [answer])]
        if any(v is None for v in values):
            return None
        value = float(sum(values))
    if reverse:
        value = compiled.reverse_sum[item["linkId"]] - value
    return value


def score(definition: dict, answers: dict) -> Scored:
    """Every score, band and flag of the version for (clean) answers; AnswersRefused names
    the missing items where a score's rule refuses missing answers."""
    items = _compiled(definition).items
    visible = shown(definition, answers)
    scoring = definition.get("scoring") or {}
    result = Scored(spec=spec_fingerprint(definition))
    specs = scoring.get("scores") or []
    if any(spec.get("formula") is not None for spec in specs):
        needed = set(items)  # a formula may name any item
    else:
        needed = {flag["item"] for flag in scoring.get("flags") or [] if flag.get("item")}
    names: dict[str, float] = {link: v for link in needed
                               if (v := item_value(definition, items[link], answers.get(link))) is not None}  # fmt: skip
    refused: dict[str, str] = {}
    for spec in specs:
        value = _one_score(definition, spec, items, visible, answers, names, refused)
        result.scores[spec["name"]] = value
        if value is not None:
            names[spec["name"]] = value
            for band in spec.get("bands") or []:
                if band["min"] <= value <= band["max"]:
                    result.bands[spec["name"]] = band["label"]
                    break
    if refused:
        raise AnswersRefused(refused)
    for flag in scoring.get("flags") or []:
        if flag["operator"] == "exists":
            raised = _compare(answers.get(flag.get("item")), "exists", None)
        else:
            value = names.get(flag["item"]) if flag.get("item") else result.scores.get(flag.get("score"))
            raised = value is not None and _compare(value, flag["operator"], flag.get("value"))
        if raised:
            result.flags.append({"name": flag.get("name", ""), "label": flag["label"]})
    return result


def _one_score(definition, spec, items, visible, answers, names, refused) -> float | None:
    label = spec.get("label") or spec["name"]
    if spec.get("formula") is not None:
        return evaluate_formula(spec["formula"], names)
    links = [link for link in spec.get("items") or [] if link in visible]
    reverse = set(spec.get("reverse") or [])
    weights = spec.get("weights") or {}
    values, missing = [], []
    for link in links:
        value = item_value(definition, items[link], answers.get(link), reverse=link in reverse)
        if value is None:
            missing.append(link)
            continue
        values.append(value * (weights.get(link, 1) if spec.get("method") == "weighted" else 1))
    rule = spec.get("missing", "refuse")
    if missing:
        allowed = spec.get("max_missing")
        if rule == "refuse" or (allowed is not None and len(missing) > allowed):
            names_missing = "、".join(_item_name(items[m]) for m in missing[:5])
            refused[spec["name"]] = gettext("%(score)s needs an answer to %(items)s.", score=label,
                                            items=names_missing)  # fmt: skip
            return None
        if rule == "zero":
            values += [0.0] * len(missing)
    if not values:
        return None
    if spec.get("method") == "mean":
        return _rounded(sum(values) / len(values))
    total = sum(values)
    if missing and rule == "prorate":
        total = total * len(links) / len(values)
    return _rounded(total)


def _rounded(value) -> float:
    """Scores to 2 decimals, whole numbers as whole (floating sums of weights stay exact)."""
    value = round(float(value), 2)
    return int(value) if value == int(value) else value


def score_response(definition: dict, answers: Any) -> tuple[dict, Scored]:
    """The one entry point for every write: clean the answers, then score them."""
    clean = clean_answers(definition, answers)
    return clean, score(definition, clean)
