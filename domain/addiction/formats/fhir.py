"""FHIR R4 out (issue 16 item 7, A4): every version as a Questionnaire, every response as a
QuestionnaireResponse with its answers and the scores the engine computed, each checked with
the `fhir.resources` R4B models before it is handed out (R4B's Questionnaire and
QuestionnaireResponse are R4's, with R4B's fixes).

Mapping (the definition is kept close to FHIR, so this is a mapping, not a translation):
- a group holds the items after it, up to the next group (FHIR nests, ours are headings);
- likert / choice / boolean → `choice` with answerOption valueCoding (system: the
  questionnaire's url + `#` + the scale or item), multi → `choice` with repeats; a weight is the
  itemWeight extension on its answerOption; display, integer, decimal, date, string, text → the
  same type names; min / max → the minValue / maxValue extensions, a pattern → regex, a check's
  message → the SDC validationMessage extension, a help text → a child display item with
  itemControl `help`;
- enableWhen maps one to one (answerCoding for a choice item, answerInteger / answerDecimal /
  answerString otherwise, answerBoolean for exists), enableBehavior when there is more than one;
- scores: a trailing read-only group `:scores` with a decimal item `score:<name>` per score, a
  string `band:<name>` where the score has bands, a boolean `flag:<n>` per flag (a colon is
  no character of our names, so they never collide with an item). A plain sum also carries the
  SDC calculatedExpression in FHIRPath; the engine's own spec stays the source of the numbers,
  which the QuestionnaireResponse carries as answers.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from flask_babel import gettext

from domain.addiction.formats import FormatRefused
from domain.addiction.scoring import (
    CHOICE_TYPES,
    Scored,
    check_definition,
    options_of,
)

ITEM_WEIGHT = "http://hl7.org/fhir/StructureDefinition/itemWeight"
MIN_VALUE = "http://hl7.org/fhir/StructureDefinition/minValue"
MAX_VALUE = "http://hl7.org/fhir/StructureDefinition/maxValue"
REGEX = "http://hl7.org/fhir/StructureDefinition/regex"
ITEM_CONTROL = "http://hl7.org/fhir/StructureDefinition/questionnaire-itemControl"
ITEM_CONTROL_SYSTEM = "http://hl7.org/fhir/questionnaire-item-control"
CALCULATED = "http://hl7.org/fhir/uv/sdc/StructureDefinition/sdc-questionnaire-calculatedExpression"
VALIDATION_MESSAGE = "http://hl7.org/fhir/uv/sdc/StructureDefinition/sdc-questionnaire-validationMessage"
BASE_URL = "urn:backoffice:instrument"
SCORES_GROUP = ":scores"


def _decimal(value) -> int | float:
    """A number as FHIR writes it: 2, not 2.0."""
    return int(value) if float(value) == int(value) else float(value)


def _system(url: str, definition: dict, item: dict) -> str:
    """The coding system of an item's options: the questionnaire's url + # + scale or item."""
    return f"{url}#{item.get('scale') if item.get('scale') and not item.get('options') else item['linkId']}"


def _answer_options(definition: dict, item: dict, url: str) -> list[dict]:
    """An item's options as answerOption, weights as itemWeight."""
    out = []
    for option in options_of(definition, item):
        entry: dict[str, Any] = {"valueCoding": {"system": _system(url, definition, item), "code": option["code"],
                                                 "display": option.get("display") or option["code"]}}  # fmt: skip
        if option.get("weight") is not None:
            entry["extension"] = [{"url": ITEM_WEIGHT, "valueDecimal": _decimal(option["weight"])}]
        out.append(entry)
    return out


def _enable_when(definition: dict, item: dict, url: str) -> list[dict]:
    """An item's enableWhen in FHIR's form, typed by the item it looks at."""
    items = {i["linkId"]: i for i in definition["items"]}
    out = []
    for c in item.get("enableWhen") or []:
        source = items[c["question"]]
        entry: dict[str, Any] = {"question": c["question"], "operator": c["operator"]}
        answer = c.get("answer")
        if c["operator"] == "exists":
            entry["answerBoolean"] = answer is not False
        elif source["type"] in CHOICE_TYPES:
            entry["answerCoding"] = {"system": _system(url, definition, source), "code": str(answer)}
        elif isinstance(answer, bool) or not isinstance(answer, int | float):
            entry["answerString"] = str(answer)
        elif source["type"] == "integer" and float(answer) == int(answer):
            entry["answerInteger"] = int(answer)
        else:
            entry["answerDecimal"] = answer
        out.append(entry)
    return out


def _question(definition: dict, item: dict, url: str) -> dict:
    """One answerable or display item as a Questionnaire item."""
    kind = item["type"]
    out: dict[str, Any] = {"linkId": item["linkId"], "type": "choice" if kind in CHOICE_TYPES else kind}
    if item.get("text"):
        out["text"] = item["text"]
    if kind in CHOICE_TYPES:
        out["answerOption"] = _answer_options(definition, item, url)
        if kind == "multi":
            out["repeats"] = True
        if kind == "likert":
            # A battery over one scale: rendered as radio buttons in a matrix by SDC renderers.
            out["extension"] = [{"url": ITEM_CONTROL, "valueCodeableConcept": {"coding": [
                {"system": ITEM_CONTROL_SYSTEM, "code": "radio-button"}]}}]  # fmt: skip
    extensions = out.setdefault("extension", [])
    value_key = "valueInteger" if kind == "integer" else "valueDecimal"
    if item.get("min") is not None:
        extensions.append({"url": MIN_VALUE, value_key: _decimal(item["min"])})
    if item.get("max") is not None:
        extensions.append({"url": MAX_VALUE, value_key: _decimal(item["max"])})
    if item.get("pattern"):
        extensions.append({"url": REGEX, "valueString": item["pattern"]})
    if item.get("message"):
        extensions.append({"url": VALIDATION_MESSAGE, "valueString": item["message"]})
    if not extensions:
        out.pop("extension")
    if item.get("required"):
        out["required"] = True
    if item.get("enableWhen"):
        out["enableWhen"] = _enable_when(definition, item, url)
        if len(out["enableWhen"]) > 1:
            out["enableBehavior"] = item.get("enableBehavior", "all")
    if item.get("help"):
        out["item"] = [{"linkId": f"{item['linkId']}:help", "type": "display", "text": item["help"],
                        "extension": [{"url": ITEM_CONTROL, "valueCodeableConcept": {"coding": [
                            {"system": ITEM_CONTROL_SYSTEM, "code": "help"}]}}]}]  # fmt: skip
    return out


def _fhirpath_sum(spec: dict) -> str | None:
    """The SDC expression of a plain sum of weights (no reverse, no item weights)."""
    if spec.get("formula") is not None or spec.get("reverse") or spec.get("method", "sum") != "sum":
        return None
    links = " | ".join(f"'{link}'" for link in spec["items"])
    return f"%resource.repeat(item).where(linkId in ({links})).answer.value.weight().sum()"


def _flag_id(index: int, flag: dict) -> str:
    """The linkId of a flag's item."""
    return f"flag:{flag.get('name') or index}"


def _score_items(definition: dict) -> list[dict]:
    """The read-only items that carry scores, bands and flags."""
    scoring = definition.get("scoring") or {}
    out = []
    for spec in scoring.get("scores") or []:
        entry: dict[str, Any] = {"linkId": f"score:{spec['name']}", "type": "decimal",
                                 "text": spec.get("label") or spec["name"], "readOnly": True}  # fmt: skip
        expression = _fhirpath_sum(spec)
        if expression:
            entry["extension"] = [{"url": CALCULATED, "valueExpression": {"language": "text/fhirpath",
                                                                          "expression": expression}}]  # fmt: skip
        out.append(entry)
        if spec.get("bands"):
            bands = "、".join(f"{b['min']:g}–{b['max']:g} {b['label']}" for b in spec["bands"])
            out.append({"linkId": f"band:{spec['name']}", "type": "string", "readOnly": True,
                        "text": f"{spec.get('label') or spec['name']}（{bands}）"})  # fmt: skip
    for index, flag in enumerate(scoring.get("flags") or [], start=1):
        out.append({"linkId": _flag_id(index, flag), "type": "boolean", "text": flag["label"], "readOnly": True})
    return out


def _nest(items: list[dict], build) -> list[dict]:
    """Our flat items as FHIR's tree: each group holds the items up to the next group."""
    out: list[dict] = []
    group: dict | None = None
    for item in items:
        node = build(item)
        if node is None:
            continue
        if item["type"] == "group":
            group = node
            out.append(group)
        elif group is not None:
            group.setdefault("item", []).append(node)
        else:
            out.append(node)
    return out


def questionnaire(definition: dict, code: str, version: str = "1", title: str = "", status: str = "active",
                  url: str | None = None) -> dict:  # fmt: skip
    """The definition as a FHIR R4 Questionnaire (a JSON-ready dict), validated."""
    check_definition(definition)
    url = url or f"{BASE_URL}:{code}"
    resource: dict[str, Any] = {"resourceType": "Questionnaire", "url": url, "version": str(version),
                                "status": status, "subjectType": ["Patient"]}  # fmt: skip
    name = "".join(c for c in code.title() if c.isalnum())
    if name and name[0].isalpha():
        resource["name"] = name
    if title:
        resource["title"] = title

    def build(item):
        """One of our items as a FHIR node (None to leave it out)."""
        if item["type"] == "group":
            node = {"linkId": item["linkId"], "type": "group"}
            if item.get("text"):
                node["text"] = item["text"]
            return node
        return _question(definition, item, url)

    resource["item"] = _nest(definition["items"], build)
    _fill_empty_groups(resource["item"])
    scores = _score_items(definition)
    if scores:
        resource["item"].append({"linkId": SCORES_GROUP, "type": "group", "text": gettext("Scores"),
                                 "readOnly": True, "item": scores})  # fmt: skip
    return validated(resource)


def _fill_empty_groups(items: list[dict]) -> None:
    # FHIR: a group must hold items (que-1); a heading with nothing after it becomes display text.
    """Turn a heading with no items into display text (FHIR que-1)."""
    for node in items:
        if node["type"] == "group" and not node.get("item"):
            node["type"] = "display"
            node.setdefault("text", node["linkId"])


def _answer_value(definition: dict, item: dict, value, url: str) -> list[dict]:
    """A clean answer as QuestionnaireResponse answers."""
    kind = item["type"]
    if kind in CHOICE_TYPES:
        displays = {o["code"]: o.get("display") or o["code"] for o in options_of(definition, item)}
        codes = value if isinstance(value, list) else [value]
        return [{"valueCoding": {"system": _system(url, definition, item), "code": code,
                                 "display": displays.get(code, code)}} for code in codes]  # fmt: skip
    if kind == "integer":
        return [{"valueInteger": int(value)}]
    if kind == "decimal":
        return [{"valueDecimal": value}]
    if kind == "date":
        return [{"valueDate": str(value)}]
    return [{"valueString": str(value)}]


def questionnaire_response(definition: dict, answers: dict, scored: Scored | None, code: str,
                           version: str = "1", authored: dt.datetime | None = None, subject: str | None = None,
                           identifier: str | None = None, url: str | None = None) -> dict:  # fmt: skip
    """A (clean) response as a FHIR R4 QuestionnaireResponse with its scores, validated."""
    url = url or f"{BASE_URL}:{code}"
    resource: dict[str, Any] = {"resourceType": "QuestionnaireResponse", "status": "completed",
                                "questionnaire": f"{url}|{version}"}  # fmt: skip
    if identifier:
        resource["identifier"] = {"system": f"{url}/response", "value": str(identifier)}
    if subject:
        resource["subject"] = {"reference": subject}
    if authored is not None:
        resource["authored"] = authored.isoformat()

    def build(item):
        """One of our items as a FHIR node (None to leave it out)."""
        if item["type"] == "group":
            node = {"linkId": item["linkId"]}
            if item.get("text"):
                node["text"] = item["text"]
            return node
        value = answers.get(item["linkId"])
        if item["type"] == "display" or value in (None, "", []):
            return None
        node = {"linkId": item["linkId"], "answer": _answer_value(definition, item, value, url)}
        if item.get("text"):
            node["text"] = item["text"]
        return node

    # A group none of whose items were answered is left out, as FHIR asks (qrs-1).
    resource["item"] = [n for n in _nest(definition["items"], build) if "answer" in n or n.get("item")]
    if scored is not None:
        scores = []
        for spec in (definition.get("scoring") or {}).get("scores") or []:
            value = scored.scores.get(spec["name"])
            if value is not None:
                scores.append({"linkId": f"score:{spec['name']}", "answer": [{"valueDecimal": value}]})
            if spec["name"] in scored.bands:
                scores.append({"linkId": f"band:{spec['name']}", "answer": [{"valueString": scored.bands[spec["name"]]}]})
        raised = {f["name"] for f in scored.flags} | {f["label"] for f in scored.flags}
        for index, flag in enumerate((definition.get("scoring") or {}).get("flags") or [], start=1):
            hit = (flag.get("name") or flag["label"]) in raised
            scores.append({"linkId": _flag_id(index, flag), "answer": [{"valueBoolean": hit}]})
        if scores:
            resource["item"].append({"linkId": SCORES_GROUP, "item": scores})
    return validated(resource)


def validated(resource: dict) -> dict:
    """The resource as fhir.resources' R4B model reads it back; FormatRefused if it does not."""
    # Imported here: pydantic models of all of FHIR cost about a second to import, paid only
    # by the request that exports.
    from fhir.resources.R4B import get_fhir_model_class
    from pydantic import ValidationError

    model = get_fhir_model_class(resource["resourceType"])
    try:
        model.model_validate(resource)
    except ValidationError as error:
        raise FormatRefused(gettext("The FHIR export is not valid: %(error)s", error=str(error)[:300])) from None
    return resource
