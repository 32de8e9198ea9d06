"""自訂問卷設計 (A4): an institution's staff design their own questionnaires — items in order,
a shared Likert scale, scoring, a read-only preview, publishing with the classified change
list — and bring or take them as XLSForm; the ministry shares one nationally, bureaus read
their county's shared ones. Forms in, domain/addiction/instruments.py commands called."""

from __future__ import annotations

import re

from flask import abort, flash, redirect, request, url_for
from flask_appbuilder import expose
from flask_appbuilder.security.decorators import has_access
from flask_babel import gettext
from flask_babel import lazy_gettext as _l
from sqlalchemy import select
from werkzeug.wrappers import Response

from core.data.datamodel import ScopedInterface
from core.data.scope import current_scope
from core.dates import to_roc
from core.errors import UserError
from core.extensions import db
from core.web.views import CAN_CREATE, CAN_EDIT, CAN_READ, ScopedReportView, flash_refusal
from domain.addiction.formats import FormatRefused
from domain.addiction.formats.xlsform import export_xlsform, import_xlsform
from domain.addiction.grants import QUESTIONNAIRE_DESIGN
from domain.addiction.instruments import (
    AGREE5,
    AGREE5_OPTIONS,
    CreateInstrument,
    DesignRefused,
    PublishDraft,
    SaveDraft,
    ShareInstrument,
    draft_of,
    formula_like,
    instrument_in_scope,
    last_published,
    owner_choices,
    owns,
    pending_changes,
    working_definition,
)
from domain.addiction.scoring import (
    CHOICE_TYPES,
    FORMULA_FUNCTIONS,
    ITEM_TYPES,
    METHODS,
    MISSING_RULES,
    NO_ANSWER,
    NUMBER_TYPES,
    AnswersRefused,
    answerable,
    check_definition,
    options_of,
    score_response,
)
from models.addiction.instrument import Instrument, InstrumentSharing, VersionStatus
from models.registry.institution import Institution
from views.addiction.assessments import answers_from_form, form_blocks

TYPE_LABELS = {
    "group": _l("Section heading"), "display": _l("Explanatory text"), "likert": _l("Likert item (shared scale)"),
    "choice": _l("Single choice"), "multi": _l("Multiple choice"), "boolean": _l("Yes / no"),
    "integer": _l("Whole number"), "decimal": _l("Decimal number"), "date": _l("Date"),
    "string": _l("Short text"), "text": _l("Long text"),
}  # fmt: skip
METHOD_LABELS = {"sum": _l("Sum"), "mean": _l("Mean"), "weighted": _l("Weighted sum")}
MISSING_LABELS = {"refuse": _l("Refuse to score"), "prorate": _l("Prorate"), "zero": _l("Count as 0")}
OPERATORS = ("=", "!=", ">", "<", ">=", "<=")
#: Numbers typed in the designer: ASCII digits only, so what is shown is what is stored.
NUMBER = re.compile(r"^-?[0-9]{1,9}(\.[0-9]{1,6})?$")
BAND = re.compile(r"^(-?[0-9]{1,9}(?:\.[0-9]{1,6})?)\s*[-–~]\s*(-?[0-9]{1,9}(?:\.[0-9]{1,6})?)\s+(\S.*)$")
FLAG = re.compile(r"^([A-Za-z][A-Za-z0-9_.-]{0,49})\s*(>=|<=|!=|=|>|<)\s*(-?[0-9]{1,9}(?:\.[0-9]{1,6})?)\s+(\S.*)$")
MAX_FIELD = 20_000
PERMISSIONS = {"list": CAN_READ, "show": CAN_READ, "preview": CAN_READ, "xlsform": CAN_READ,
               "create": CAN_CREATE, "item": CAN_EDIT, "move": CAN_EDIT, "delete_item": CAN_EDIT,
               "scoring": CAN_EDIT, "scales": CAN_EDIT, "publish": CAN_EDIT, "share": CAN_EDIT, "import_xlsform": CAN_EDIT}  # fmt: skip


def _number(text: str, what: str):
    """A number typed in a field; DesignRefused naming the field otherwise."""
    text = text.strip()
    if not NUMBER.match(text):
        raise DesignRefused(gettext("%(what)s:「%(text)s」is not a number (digits 0–9).", what=what, text=text[:30]))
    value = float(text)
    return int(value) if value == int(value) else value


def _field(name: str, limit: int = MAX_FIELD) -> str:
    """A form field's text, bounded (a huge field is refused before it is parsed)."""
    text = request.form.get(name, "")
    if len(text) > limit:
        raise DesignRefused(gettext("A field is too long: at most %(n)d characters.", n=limit))
    return text


def _plain(text: str, what: str) -> str:
    """Text a spreadsheet would not run as a formula."""
    if formula_like(text):
        raise DesignRefused(gettext("%(what)s cannot start with %(signs)s.", what=what, signs="=、+、@"))
    return text


def parse_options(text: str, name: str) -> list[dict]:
    """Options as lines 「代碼|標籤|分數」 (the score optional)."""
    options = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        parts = [p.strip() for p in line.split("|")]
        if len(parts) not in (2, 3) or not parts[0] or not parts[1]:
            raise DesignRefused(gettext("%(item)s, option line %(n)d: write it as 代碼|標籤|分數.", item=name, n=number))
        option = {"code": parts[0][:20], "display": _plain(parts[1], name)}
        if len(parts) == 3 and parts[2]:
            option["weight"] = _number(parts[2], gettext("%(item)s, option line %(n)d", item=name, n=number))
        options.append(option)
    return options


def _item_from_form(definition: dict, original: str | None) -> tuple[dict, dict]:
    """The item the editor posted, and the definition with it in place (or appended)."""
    link = _field("linkId", 100).strip()
    kind = request.form.get("type", "")
    text = _plain(_field("text"), gettext("The question text"))
    name = gettext("Item %(id)s「%(text)s」", id=link[:50], text=text[:20])
    if kind not in ITEM_TYPES:
        raise DesignRefused(gettext("%(item)s: choose the item type.", item=name))
    item: dict = {"linkId": link, "type": kind, "text": text}
    help_text = _plain(_field("help").strip(), gettext("The help text"))
    if help_text:
        item["help"] = help_text
    if request.form.get("required") and kind not in NO_ANSWER:
        item["required"] = True
    scales = dict(definition.get("scales") or {})
    if kind in CHOICE_TYPES:
        scale = request.form.get("scale", "")
        options_text = _field("options")
        if scale:
            if scale == AGREE5 and AGREE5 not in scales:
                scales[AGREE5] = AGREE5_OPTIONS
            if scale not in scales:
                raise DesignRefused(gettext("%(item)s: there is no scale %(scale)s.", item=name, scale=scale[:30]))
            item["scale"] = scale
        elif options_text.strip():
            item["options"] = parse_options(options_text, name)
        elif kind != "boolean":
            raise DesignRefused(gettext("%(item)s: a choice item needs options or a scale.", item=name))
    if kind in NUMBER_TYPES:
        for bound, label in (("min", gettext("Minimum")), ("max", gettext("Maximum"))):
            value = _field(bound, 40)
            if value.strip():
                item[bound] = _number(value, f"{name} {label}")
    question = request.form.get("when_question", "")
    if question:
        operator = request.form.get("when_operator", "=")
        if operator not in OPERATORS:
            raise DesignRefused(gettext("%(item)s: choose how the earlier answer is compared.", item=name))
        answer = _field("when_answer", 100).strip()
        earlier = {i["linkId"]: i for i in definition.get("items", [])}
        target = earlier.get(question)
        if target is not None and target["type"] in NUMBER_TYPES:
            answer = _number(answer, name)
        item["enableWhen"] = [{"question": question, "operator": operator, "answer": answer}]
    items = list(definition.get("items", []))
    new = dict(definition, items=items)
    if scales:
        new["scales"] = scales
    if original is not None:
        position = next((n for n, i in enumerate(items) if i["linkId"] == original), None)
        if position is None:
            abort(404)
        items[position] = item
        if original != link:
            _rename(new, original, link)
    else:
        items.append(item)
    return item, new


def _rename(definition: dict, old: str, new: str) -> None:
    """An item's new name carried into the scores, flags and conditions that name it."""
    for spec in (definition.get("scoring") or {}).get("scores") or []:
        for key in ("items", "reverse"):
            if spec.get(key):
                spec[key] = [new if x == old else x for x in spec[key]]
        if spec.get("weights") and old in spec["weights"]:
            spec["weights"][new] = spec["weights"].pop(old)
    for flag in (definition.get("scoring") or {}).get("flags") or []:
        if flag.get("item") == old:
            flag["item"] = new
    for item in definition.get("items", []):
        for condition in item.get("enableWhen") or []:
            if condition.get("question") == old:
                condition["question"] = new


def _without(definition: dict, link: str) -> dict:
    """The definition without an item; scores drop it, a condition on it is refused."""
    for item in definition.get("items", []):
        if any(c.get("question") == link for c in item.get("enableWhen") or []):
            raise DesignRefused(gettext("%(item)s shows only after an answer to this item: change it first.",
                                        item=gettext("Item %(id)s「%(text)s」", id=item["linkId"],
                                                     text=str(item.get("text", ""))[:20])))  # fmt: skip
    definition["items"] = [i for i in definition.get("items", []) if i["linkId"] != link]
    scoring = definition.get("scoring") or {}
    for spec in scoring.get("scores") or []:
        for key in ("items", "reverse"):
            if spec.get(key):
                spec[key] = [x for x in spec[key] if x != link]
        (spec.get("weights") or {}).pop(link, None)
    scoring["scores"] = [s for s in scoring.get("scores") or [] if s.get("items") or s.get("formula") is not None]
    scoring["flags"] = [f for f in scoring.get("flags") or [] if f.get("item") != link]
    if scoring:
        definition["scoring"] = {k: v for k, v in scoring.items() if v}
    return definition


def _scoring_from_form(definition: dict) -> dict:
    """The scoring spec the scoring form posted: a total, subscales, bands, flags."""
    scored = {i["linkId"] for i in answerable(definition) if i["type"] in CHOICE_TYPES + NUMBER_TYPES}
    order = [i["linkId"] for i in definition.get("items", []) if i["linkId"] in scored]
    chosen = [x for x in order if x in request.form.getlist("items")]
    reverse = [x for x in order if x in request.form.getlist("reverse")]
    method = request.form.get("method", "sum")
    missing = request.form.get("missing", "refuse")
    if method not in METHODS or missing not in MISSING_RULES:
        raise DesignRefused(gettext("Choose the method and the rule for missing answers."))
    label = _plain(_field("label", 100).strip() or gettext("Total score"), gettext("The score's label"))
    total: dict = {"name": "total", "label": label, "method": method, "items": chosen, "missing": missing}
    bad_reverse = [x for x in reverse if x not in chosen]
    if bad_reverse:
        raise DesignRefused(gettext("Item %(id)s is reversed but not in the total: tick it in the total too.",
                                    id=bad_reverse[0]))  # fmt: skip
    if reverse:
        total["reverse"] = reverse
    if method == "weighted":
        weights = {}
        for number, line in enumerate(_field("weights").splitlines(), start=1):
            if not line.strip():
                continue
            link, _sep, value = line.partition("=")
            link = link.strip()
            if link not in chosen:
                raise DesignRefused(gettext("Weights, line %(n)d: %(id)s is not an item of the total.", n=number,
                                            id=link[:50]))  # fmt: skip
            weights[link] = _number(value, gettext("Weights, line %(n)d", n=number))
        total["weights"] = weights
    max_missing = _field("max_missing", 20).strip()
    if missing == "prorate" and max_missing:
        total["max_missing"] = int(_number(max_missing, gettext("At most this many missing")))
    bands = _bands(_field("bands").splitlines(), gettext("Bands of the total"))
    if bands:
        total["bands"] = bands
    scores = [total] if chosen else []
    for number, line in enumerate(_field("subscales").splitlines(), start=1):
        if not line.strip():
            continue
        parts = [p.strip() for p in line.split("|")]
        if len(parts) not in (3, 4):
            raise DesignRefused(gettext("Subscales, line %(n)d: write it as %(form)s.", n=number,
                                        form="名稱|標籤|題號 題號 …|最低-最高 標籤; …"))  # fmt: skip
        links = parts[2].replace(",", " ").split()
        unknown = [x for x in links if x not in scored]
        if unknown or not links:
            raise DesignRefused(gettext("Subscales, line %(n)d: %(id)s is not a scored item.", n=number,
                                        id=(unknown or [""])[0][:50]))  # fmt: skip
        sub = {"name": parts[0][:50], "label": _plain(parts[1][:100], gettext("A subscale's label")),
               "method": "mean" if method == "mean" else "sum", "items": links, "missing": missing}  # fmt: skip
        sub_reverse = [x for x in reverse if x in links]
        if sub_reverse:
            sub["reverse"] = sub_reverse
        if len(parts) == 4 and parts[3]:
            sub["bands"] = _bands(re.split(r"[;；]", parts[3]), gettext("Subscales, line %(n)d", n=number))
        scores.append(sub)
    for number, line in enumerate(_field("formulas").splitlines(), start=1):
        if not line.strip():
            continue
        parts = [p.strip() for p in line.split("|")]
        if len(parts) not in (3, 4) or not parts[0] or not parts[2]:
            raise DesignRefused(gettext("Formula scores, line %(n)d: write it as %(form)s.", n=number,
                                        form="名稱|標籤|公式|最低-最高 標籤; …"))  # fmt: skip
        label_text = _plain(parts[1][:100] or parts[0][:50], gettext("A formula score's label"))
        formula = {"name": parts[0][:50], "label": label_text, "formula": parts[2]}
        if len(parts) == 4 and parts[3]:
            formula["bands"] = _bands(re.split(r"[;；]", parts[3]),
                                      gettext("Formula scores, line %(n)d", n=number))  # fmt: skip
        scores.append(formula)
    flags = []
    for number, line in enumerate(_field("flags").splitlines(), start=1):
        if not line.strip():
            continue
        match = FLAG.match(line.strip())
        if not match or match[1] not in scored:
            raise DesignRefused(gettext(
                "Flags, line %(n)d「%(line)s」: write it as %(form)s, naming a scored item.", n=number,
                line=line.strip()[:40], form="題號 >= 2 標籤"))  # fmt: skip
        flags.append({"name": f"flag{number}", "label": _plain(match[4].strip()[:100], gettext("A flag's label")),
                      "item": match[1], "operator": match[2], "value": _number(match[3], "")})  # fmt: skip
    scoring = {}
    if scores:
        scoring["scores"] = scores
    if flags:
        scoring["flags"] = flags
    new = dict(definition)
    if scoring:
        new["scoring"] = scoring
    else:
        new.pop("scoring", None)
    return new


def _bands(lines, where: str) -> list[dict]:
    """Bands typed as 「最低-最高 標籤」, one a line (or separated by ;), in ASCII digits."""
    bands = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        match = BAND.match(line.strip())
        if not match:
            raise DesignRefused(gettext(
                "%(where)s, band %(n)d「%(line)s」: write it as 最低-最高 標籤, with digits 0–9.", where=where,
                n=number, line=line.strip()[:40]))  # fmt: skip
        low, high = _number(match[1], ""), _number(match[2], "")
        bands.append({"min": low, "max": high, "label": _plain(match[3].strip()[:100], gettext("A band's label"))})
    return bands


def _bands_text(bands, separator: str) -> str:
    fmt = lambda v: f"{v:g}" if isinstance(v, float) else str(v)  # noqa: E731 - a one-line formatter
    return separator.join(f"{fmt(b['min'])}-{fmt(b['max'])} {b['label']}" for b in bands or [])


def scoring_form_values(definition: dict) -> dict:
    """The scoring form's fields from a definition (what the form shows before an edit)."""
    scoring = definition.get("scoring") or {}
    scores = scoring.get("scores") or []
    total = scores[0] if scores and scores[0].get("name") == "total" and scores[0].get("items") else {}
    fmt = lambda v: f"{v:g}" if isinstance(v, float) else str(v)  # noqa: E731 - a one-line formatter
    return {
        "label": total.get("label", gettext("Total score")), "method": total.get("method", "sum"),
        "missing": total.get("missing", "refuse"), "max_missing": str(total.get("max_missing", "")),
        "items": total.get("items") or [i["linkId"] for i in answerable(definition)
                                        if i["type"] in CHOICE_TYPES + NUMBER_TYPES],
        "reverse": total.get("reverse") or [],
        "weights": "\n".join(f"{k}={fmt(v)}" for k, v in (total.get("weights") or {}).items()),
        "bands": _bands_text(total.get("bands"), "\n"),
        "subscales": "\n".join(f"{s['name']}|{s.get('label', '')}|{' '.join(s.get('items') or [])}"
                               + (f"|{_bands_text(s['bands'], '; ')}" if s.get("bands") else "")
                               for s in scores if s is not total and s.get("items") and s.get("formula") is None),
        "formulas": "\n".join(f"{s['name']}|{s.get('label', '')}|{s['formula']}"
                              + (f"|{_bands_text(s['bands'], '; ')}" if s.get("bands") else "")
                              for s in scores if s.get("formula") is not None),
        "flags": "\n".join(f"{f['item']} {f['operator']} {fmt(f.get('value'))} {f['label']}"
                           for f in scoring.get("flags") or [] if f.get("item")),
    }  # fmt: skip


def item_form_values(definition: dict, item: dict | None) -> dict:
    """The item editor's fields from an item (empty for a new one)."""
    if item is None:
        number = len(definition.get("items", [])) + 1
        taken = {i["linkId"] for i in definition.get("items", [])}
        while f"q{number}" in taken:
            number += 1
        # The next item of a battery is like the last one: its type, scale and required mark.
        previous = next((i for i in reversed(definition.get("items", [])) if i["type"] not in NO_ANSWER), None)
        like = previous if previous is not None and previous["type"] in ("likert", "choice") and previous.get("scale") \
            else None  # fmt: skip
        return {"linkId": f"q{number}", "type": like["type"] if like else "likert", "text": "", "help": "",
                "required": "y" if not like or like.get("required") else "",
                "scale": like["scale"] if like else next(iter(definition.get("scales") or {}), AGREE5),
                "options": "", "min": "", "max": "", "when_question": "", "when_operator": "=",
                "when_answer": ""}  # fmt: skip
    condition = (item.get("enableWhen") or [{}])[0]
    fmt = lambda v: "" if v is None else f"{v:g}" if isinstance(v, float) else str(v)  # noqa: E731
    return {
        "linkId": item["linkId"], "type": item["type"], "text": item.get("text", ""), "help": item.get("help", ""),
        "required": "y" if item.get("required") else "", "scale": item.get("scale", ""),
        "options": "\n".join(f"{o['code']}|{o.get('display', '')}|{fmt(o.get('weight'))}".rstrip("|")
                             for o in item.get("options") or []),
        "min": fmt(item.get("min")), "max": fmt(item.get("max")),
        "when_question": condition.get("question", ""), "when_operator": condition.get("operator", "="),
        "when_answer": fmt(condition.get("answer")),
    }  # fmt: skip


def _options_text(options: list[dict]) -> str:
    fmt = lambda v: "" if v is None else f"{v:g}" if isinstance(v, float) else str(v)  # noqa: E731
    return "\n".join(f"{o['code']}|{o.get('display', '')}|{fmt(o.get('weight'))}".rstrip("|") for o in options)


SCALE_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,29}$")


def _scales_from_form(definition: dict, names: list[str], texts: list[str]) -> dict:
    """The definition with the shared scales the scales form posted (a blank row is no
    scale; a scale an item still uses cannot be removed)."""
    scales: dict = {}
    for number, (name, text) in enumerate(zip(names, texts, strict=True), start=1):
        name = name.strip()
        if not name and not text.strip():
            continue
        what = gettext("Shared scale %(name)s", name=name[:30] or number)
        if not SCALE_NAME.match(name):
            raise DesignRefused(gettext("%(what)s: the name is 1–30 letters, digits or _ and starts with a letter.",
                                        what=what))  # fmt: skip
        if name in scales:
            raise DesignRefused(gettext("%(what)s: the name is used twice.", what=what))
        options = parse_options(text, what)
        if not options:
            raise DesignRefused(gettext("%(what)s: write its options, one a line: 代碼|標籤|分數.", what=what))
        scales[name] = options
    for item in definition.get("items", []):
        if item.get("scale") and item["scale"] not in scales:
            raise DesignRefused(gettext("%(item)s uses the scale %(scale)s: give the item another scale first.",
                                        item=gettext("Item %(id)s「%(text)s」", id=item["linkId"],
                                                     text=str(item.get("text", ""))[:20]),
                                        scale=item["scale"]))  # fmt: skip
    new = dict(definition)
    if scales:
        new["scales"] = scales
    else:
        new.pop("scales", None)
    return new


class QuestionnaireDesignView(ScopedReportView):
    """The designer: the institution's questionnaires, a draft's items and scoring, preview,
    publishing, XLSForm in and out, and sharing."""

    route_base = "/questionnaire"
    default_view = "list"
    class_permission_name = QUESTIONNAIRE_DESIGN
    method_permission_name = PERMISSIONS

    def _instrument(self, pk) -> Instrument:
        instrument = instrument_in_scope(pk)
        if instrument is None or instrument.institution_id is None:
            abort(404)  # another institution's questionnaire by URL: as if it did not exist
        return instrument

    def _own(self, pk) -> Instrument:
        instrument = self._instrument(pk)
        if not owns(instrument):
            abort(403 if request.method == "GET" else 404)
        return instrument

    def _page(self, template: str, **context):
        return self.render_template(
            f"addiction/designer_{template}.html", type_labels=TYPE_LABELS, method_labels=METHOD_LABELS,
            missing_labels=MISSING_LABELS, sharing=InstrumentSharing, roc=to_roc, operators=OPERATORS,
            **context)  # fmt: skip

    @expose("/list")
    @has_access
    def list(self):
        """The institution's questionnaires, and those shared with it (read-only)."""
        rows = ScopedInterface(Instrument).filtered_query().filter(Instrument.institution_id.isnot(None)).all()
        rows.sort(key=lambda i: (i.institution.name if i.institution else "", i.code))
        own = [i for i in rows if owns(i)]
        shared = [i for i in rows if not owns(i)]
        can_create = bool(current_scope().institution_ids) and self.appbuilder.sm.has_access(
            f"can_{CAN_CREATE}", QUESTIONNAIRE_DESIGN)  # fmt: skip
        owners = db.session.scalars(select(Institution).where(Institution.id.in_(owner_choices()))
                                    .order_by(Institution.name)).all()  # fmt: skip
        return self._page("list", title=gettext("Questionnaire designer"), own=own, shared=shared,
                          can_create=can_create, form=request.form, draft_of=draft_of,
                          last_published=last_published, owners=owners)  # fmt: skip

    @expose("/create", methods=["POST"])
    @has_access
    def create(self):
        """A new questionnaire (empty, or from an XLSForm workbook) of the user's institution."""
        try:
            upload = request.files.get("file")
            definition = None
            if upload is not None and upload.filename:
                definition = import_xlsform(upload.read(2 * 1024 * 1024 + 1)).definition
            instrument = CreateInstrument(_field("code", 100), _field("title", 1000), definition,
                                          institution_id=request.values.get("institution", "")[:20] or None).run()
        except UserError as exc:
            flash_refusal(exc)  # another institution named in the form: 404, as if it did not exist
            return self.list(), 404 if exc.status == 404 else 200
        flash(gettext("The questionnaire was created: add its items."), "success")
        return redirect(url_for(".show", pk=instrument.id))

    @expose("/<pk>")
    @has_access
    def show(self, pk):
        """A questionnaire: its versions; for its institution the draft's items in order with
        their actions, the add-item form's entry and the publish button."""
        instrument = self._instrument(pk)
        mine = owns(instrument)
        definition = working_definition(instrument) if mine else (
            last_published(instrument).definition if last_published(instrument) else {"items": []})  # fmt: skip
        return self._page(
            "show", title=instrument.title, instrument=instrument, mine=mine, definition=definition,
            draft=draft_of(instrument), published=last_published(instrument), options_of=options_of,
            reversed_links={link for spec in (definition.get("scoring") or {}).get("scores") or []
                            for link in spec.get("reverse") or []},
            can_share=mine or current_scope().national, national=current_scope().national,
            can_edit=self.appbuilder.sm.has_access(f"can_{CAN_EDIT}", QUESTIONNAIRE_DESIGN),
        )  # fmt: skip

    @expose("/<pk>/item", methods=["GET", "POST"])
    @has_access
    def item(self, pk):
        """Add an item (no ?link) or edit one; a refusal keeps what was typed and names the item."""
        instrument = self._own(pk)
        definition = working_definition(instrument)
        original = request.values.get("link") or None
        item = None
        if original is not None:
            item = next((i for i in definition.get("items", []) if i["linkId"] == original), None)
            if item is None:
                abort(404)
        values = item_form_values(definition, item)
        if request.method == "POST":
            values = {k: request.form.get(k, "")[:MAX_FIELD] for k in values}
            try:
                _item, new = _item_from_form(definition, original)
                SaveDraft(instrument.id, new).run()
            except UserError as exc:
                flash_refusal(exc)
            else:
                flash(gettext("The item was saved in the draft."), "success")
                if request.form.get("next") and original is None:  # 儲存並新增下一題
                    return redirect(url_for(".item", pk=instrument.id))
                return redirect(url_for(".show", pk=instrument.id))
        earlier = [i for i in definition.get("items", []) if i["linkId"] != original and i["type"] not in NO_ANSWER]
        if original is not None:
            position = [i["linkId"] for i in definition["items"]].index(original)
            earlier = [i for i in definition["items"][:position] if i["type"] not in NO_ANSWER]
        scales = dict(definition.get("scales") or {})
        scales.setdefault(AGREE5, AGREE5_OPTIONS)
        return self._page("item", title=instrument.title, instrument=instrument, values=values,
                          original=original, earlier=earlier, scales=scales, agree5=AGREE5)  # fmt: skip

    @expose("/<pk>/move", methods=["POST"])
    @has_access
    def move(self, pk):
        """上移 / 下移: an item one place up or down."""
        instrument = self._own(pk)
        definition = working_definition(instrument)
        links = [i["linkId"] for i in definition.get("items", [])]
        link, step = request.form.get("link", ""), -1 if request.form.get("direction") == "up" else 1
        if link not in links:
            abort(404)
        at = links.index(link)
        if 0 <= at + step < len(links):
            items = definition["items"]
            items[at], items[at + step] = items[at + step], items[at]
            try:
                SaveDraft(instrument.id, definition).run()
            except UserError as exc:
                flash_refusal(exc)
        return redirect(url_for(".show", pk=instrument.id, _anchor="items"))

    @expose("/<pk>/delete_item", methods=["POST"])
    @has_access
    def delete_item(self, pk):
        """刪除: an item out of the draft (and out of its scores)."""
        instrument = self._own(pk)
        definition = working_definition(instrument)
        link = request.form.get("link", "")
        if link not in {i["linkId"] for i in definition.get("items", [])}:
            abort(404)
        try:
            SaveDraft(instrument.id, _without(definition, link)).run()
            flash(gettext("The item was removed from the draft."), "success")
        except UserError as exc:
            flash_refusal(exc)
        return redirect(url_for(".show", pk=instrument.id, _anchor="items"))

    @expose("/<pk>/scoring", methods=["GET", "POST"])
    @has_access
    def scoring(self, pk):
        """The scoring: a total (sum, mean, weighted), reverse items, subscales, bands, flags
        and the rule for missing answers."""
        instrument = self._own(pk)
        definition = working_definition(instrument)
        values = scoring_form_values(definition)
        if request.method == "POST":
            values = {k: request.form.get(k, "")[:MAX_FIELD] for k in values}
            values["items"], values["reverse"] = request.form.getlist("items"), request.form.getlist("reverse")
            try:
                SaveDraft(instrument.id, _scoring_from_form(definition)).run()
            except UserError as exc:
                flash_refusal(exc)
            else:
                flash(gettext("The scoring was saved in the draft."), "success")
                return redirect(url_for(".show", pk=instrument.id, _anchor="scoring"))
        scored = [i for i in answerable(definition) if i["type"] in CHOICE_TYPES + NUMBER_TYPES]
        return self._page("scoring", title=instrument.title, instrument=instrument, values=values, scored=scored,
                          methods=METHODS, missing_rules=MISSING_RULES,
                          formula_functions="、".join(FORMULA_FUNCTIONS))  # fmt: skip

    @expose("/<pk>/preview", methods=["GET", "POST"])
    @has_access
    def preview(self, pk):
        """The form exactly as it will be filled in: the draft for its institution, the
        published version (or ?version=<n>) otherwise. 試算 (POST) scores the answers typed
        with the server's engine and shows the scores, bands and flags; nothing is saved."""
        instrument = self._instrument(pk)
        version = None
        number = request.values.get("version", "")
        if number.isascii() and number.isdigit():
            version = next((v for v in instrument.versions if str(v.number) == number), None)
        if version is not None and (version.status == VersionStatus.PUBLISHED.value or owns(instrument)):
            definition = version.definition
        elif owns(instrument):
            definition = working_definition(instrument)
        else:
            published = last_published(instrument)
            definition = published.definition if published else {"items": []}
        answers, errors, scored = {}, {}, None
        if request.method == "POST":
            answers = answers_from_form(definition, request.form)
            try:
                check_definition(definition)
                _clean, scored = score_response(definition, answers)
            except AnswersRefused as refused:
                errors = refused.errors
            except UserError as exc:
                flash_refusal(exc)
        labels = {s["name"]: s.get("label") or s["name"] for s in (definition.get("scoring") or {}).get("scores") or []}
        return self._page("preview", title=instrument.title, instrument=instrument, definition=definition,
                          blocks=form_blocks(definition, answers, errors), scored=scored, labels=labels,
                          version=number if version is not None else "",
                          general_errors=[m for k, m in errors.items() if k not in {i["linkId"] for i in
                                                                                    definition.get("items", [])}])  # fmt: skip

    @expose("/<pk>/scales", methods=["GET", "POST"])
    @has_access
    def scales(self, pk):
        """共用量尺: the draft's shared Likert scales, each a name and its options (代碼|標籤|分數);
        a change reaches every item on the scale; a scale still used cannot be removed."""
        instrument = self._own(pk)
        definition = working_definition(instrument)
        current = dict(definition.get("scales") or {})
        values = {"scales": [{"name": n, "options": _options_text(o)} for n, o in current.items()]}
        values["scales"].append({"name": "", "options": ""})
        if request.method == "POST":
            names = [request.form.get(f"name_{n}", "")[:60] for n in range(len(current) + 1)]
            texts = [request.form.get(f"options_{n}", "")[:MAX_FIELD] for n in range(len(current) + 1)]
            values["scales"] = [{"name": a, "options": b} for a, b in zip(names, texts, strict=True)]
            try:
                SaveDraft(instrument.id, _scales_from_form(definition, names, texts)).run()
            except UserError as exc:
                flash_refusal(exc)
            else:
                flash(gettext("The shared scales were saved in the draft."), "success")
                return redirect(url_for(".show", pk=instrument.id))
        return self._page("scales", title=instrument.title, instrument=instrument, values=values)

    @expose("/<pk>/publish", methods=["GET", "POST"])
    @has_access
    def publish(self, pk):
        """發布: the classified change list first, then (confirmed) the draft is published."""
        instrument = self._own(pk)
        if request.method == "POST" and request.form.get("confirm") == "yes":
            try:
                version = PublishDraft(instrument.id).run()
            except UserError as exc:
                flash_refusal(exc)
            else:
                flash(gettext("Version %(n)d was published.", n=version.number), "success")
                return redirect(url_for(".show", pk=instrument.id))
        changes = pending_changes(instrument)
        draft = draft_of(instrument)
        return self._page("publish", title=instrument.title, instrument=instrument, changes=changes,
                          items=len(answerable(draft.definition)) if draft else 0,
                          scores=((draft.definition.get("scoring") or {}).get("scores") or []) if draft else [],
                          draft=draft_of(instrument), previous=last_published(instrument),
                          breaking=[c for c in changes if not c.safe])  # fmt: skip

    @expose("/<pk>/share", methods=["POST"])
    @has_access
    def share(self, pk):
        """Who else may use the questionnaire (read-only)."""
        try:
            ShareInstrument(pk, request.form.get("sharing", "")).run()
            flash(gettext("The sharing was saved."), "success")
        except UserError as exc:
            flash_refusal(exc)
            if exc.status == 404:
                abort(404)
        return redirect(url_for(".show", pk=pk) if instrument_in_scope(pk) else url_for(".list"))

    @expose("/<pk>/import", methods=["POST"])
    @has_access
    def import_xlsform(self, pk):
        """匯入 XLSForm: the workbook's questionnaire becomes the draft (refusals name sheet, row, column)."""
        instrument = self._own(pk)
        upload = request.files.get("file")
        try:
            if upload is None or not upload.filename:
                raise FormatRefused(gettext("Choose an XLSForm workbook (.xlsx) to import."))
            form = import_xlsform(upload.read(2 * 1024 * 1024 + 1))
            SaveDraft(instrument.id, form.definition).run()
            flash(gettext("The workbook was imported into the draft: check it and publish."), "success")
        except UserError as exc:
            flash_refusal(exc)
        return redirect(url_for(".show", pk=instrument.id))

    @expose("/<pk>/xlsform/<number>")
    @has_access
    def xlsform(self, pk, number):
        """下載 XLSForm: a version as an XLSForm workbook (a draft only for its institution)."""
        instrument = self._instrument(pk)
        version = next((v for v in instrument.versions if str(v.number) == str(number)), None)
        if version is None or (version.status != VersionStatus.PUBLISHED.value and not owns(instrument)):
            abort(404)
        try:
            data = export_xlsform(version.definition, instrument.title, instrument.code, str(version.number))
        except UserError as exc:
            flash_refusal(exc)
            return redirect(url_for(".show", pk=instrument.id))
        return Response(data, mimetype="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                        headers={"Content-Disposition":
                                 f'attachment; filename="{instrument.code}-v{version.number}.xlsx"'})  # fmt: skip


def register(appbuilder, category: str, label, icon: str) -> None:
    """The designer in the addiction menu."""
    appbuilder.add_view(QuestionnaireDesignView, "Questionnaire designer", label=_l("Questionnaire designer"),
                        icon="fa-list-ol", category=category, category_label=label, category_icon=icon)  # fmt: skip
