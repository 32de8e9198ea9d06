"""Columns of an export across versions, and the classification of a new version's changes
(issue 16 item 3, A4).

KoboToolbox shifts answers into the wrong columns when a choice is removed between versions,
because its columns follow the positions of the newest version's choices. Here a column is
keyed by what it holds — an item's linkId, or linkId + choice code for a multi's choices, or
a score's name — and every key that existed in any version keeps its column, in one stable
order: the oldest version's order, each later item (or choice) placed after the one it
follows in the version that brought it. A response fills the columns with its own version's
items; a column its version did not have stays empty.

classify_changes compares two versions item by item (effective options, so a renamed shared
scale with the same options is no change) and says for each change whether old answers stay
valid and mean the same (safe) or not (breaking): label, help text, a choice's label, order,
a new optional item, a relaxed check: safe; a new required item, a removed item, a removed or
recoded choice, a changed type, weight or branching, a tightened check, any change of the
scoring spec: breaking.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flask_babel import gettext

from domain.addiction.scoring import NO_ANSWER, answerable, options_of


@dataclass(frozen=True)
class Column:
    """One export column: its key, the item (and choice code for a multi), its header from
    the newest version that had it, and whether the newest version still has it."""

    key: str
    link_id: str
    code: str | None
    header: str
    current: bool
    kind: str = "item"


def _merge(order: list[str], sequence: list[str]) -> None:
    """Place the keys of `sequence` not yet in `order` after their predecessor there."""
    placed = set(order)
    present = set(sequence)
    anchor = -1
    for key in sequence:
        if key in placed:
            anchor = order.index(key)
            continue
        # Past the columns this version no longer has: a recoded choice follows its old code.
        while anchor + 1 < len(order) and order[anchor + 1] not in present:
            anchor += 1
        order.insert(anchor + 1, key)
        placed.add(key)
        anchor += 1


def _keys(definition: dict) -> list[str]:
    """The column keys of one version: items, and a multi's item:code per choice."""
    keys = []
    for item in answerable(definition):
        if item["type"] == "multi":
            keys += [f"{item['linkId']}:{o['code']}" for o in options_of(definition, item)]
        else:
            keys.append(item["linkId"])
    return keys


def export_columns(versions: list[dict]) -> list[Column]:
    """Every column any version needs, oldest version first (pass versions in publishing order)."""
    order: list[str] = []
    scores: list[str] = []
    described: dict[str, tuple[str, str, str | None, str]] = {}
    for definition in versions:
        _merge(order, _keys(definition))
        for item in answerable(definition):
            text = item.get("text") or item["linkId"]
            if item["type"] == "multi":
                for option in options_of(definition, item):
                    key = f"{item['linkId']}:{option['code']}"
                    described[key] = ("item", item["linkId"], option["code"],
                                      f"{text}：{option.get('display') or option['code']}")  # fmt: skip
            else:
                described[item["linkId"]] = ("item", item["linkId"], None, text)
        names = [s["name"] for s in (definition.get("scoring") or {}).get("scores") or []]
        _merge(scores, names)
        for spec in (definition.get("scoring") or {}).get("scores") or []:
            described[f"score:{spec['name']}"] = ("score", spec["name"], None, spec.get("label") or spec["name"])
    newest: set[str] = set()
    if versions:
        newest = set(_keys(versions[-1]))
        newest |= {f"score:{s['name']}" for s in (versions[-1].get("scoring") or {}).get("scores") or []}
    columns = []
    for key in order + [f"score:{name}" for name in scores]:
        kind, link, code, header = described[key]
        if key not in newest:
            header = gettext("%(header)s (earlier versions)", header=header)
        columns.append(Column(key=key, link_id=link, code=code, header=header, current=key in newest, kind=kind))
    return columns


def row_values(definition: dict, answers: dict, columns: list[Column], scores: dict | None = None,
               labels: bool = False) -> list[Any]:  # fmt: skip
    """One response's cells in the columns: its own version's items; a multi's choice 1 when
    chosen, 0 when answered without it, empty when the item was not answered or the choice
    did not exist in that version; a single choice its code (or its label in that version)."""
    items = {i["linkId"]: i for i in answerable(definition)}
    cells: list[Any] = []
    for column in columns:
        if column.kind == "score":
            cells.append((scores or {}).get(column.link_id))
            continue
        item = items.get(column.link_id)
        value = answers.get(column.link_id)
        if item is None or value in (None, "", []):
            cells.append(None)
            continue
        options = {o["code"]: o for o in options_of(definition, item)}
        if column.code is not None:
            if item["type"] != "multi" or column.code not in options:
                cells.append(None)
            else:
                cells.append(1 if column.code in value else 0)
        elif item["type"] == "multi":
            cells.append(None)  # a multi's answers live in its choice columns
        elif labels and value in options:
            cells.append(options[value].get("display") or value)
        else:
            cells.append(value)
    return cells


# ------------------------------------------------------------------ classification
@dataclass(frozen=True)
class Change:
    """One difference between two versions: the item (or score) it concerns, its kind,
    whether old answers stay valid and mean the same, and a zh_TW description."""

    link_id: str
    kind: str
    safe: bool
    description: str


def _name(item: dict) -> str:
    """An item named for a message: its id and the start of its text."""
    text = str(item.get("text") or item["linkId"])
    text = text if len(text) <= 30 else text[:29] + "…"
    return gettext("Item %(id)s「%(text)s」", id=item["linkId"], text=text)


def _range(definition: dict, item: dict) -> tuple[float, float] | None:
    """The lowest and highest weight of an item's options."""
    weights = [o["weight"] for o in options_of(definition, item) if o.get("weight") is not None]
    return (min(weights), max(weights)) if weights else None


def classify_changes(old: dict, new: dict) -> list[Change]:
    """Every change from `old` to `new`, in the new version's item order, removed items last."""
    changes: list[Change] = []
    before = {i["linkId"]: i for i in old.get("items", [])}
    after = {i["linkId"]: i for i in new.get("items", [])}
    reversed_links = {link for spec in (new.get("scoring") or {}).get("scores") or [] for link in spec.get("reverse") or []}

    def add(link, kind, safe, description):
        """Record one change."""
        changes.append(Change(link, kind, safe, description))

    for link, item in after.items():
        name = _name(item)
        previous = before.get(link)
        if previous is None:
            if item.get("required") and item["type"] not in NO_ANSWER:
                add(link, "added_required", False, gettext(
                    "%(item)s is new and required: earlier responses have no answer to it.", item=name))
            else:
                add(link, "added", True, gettext("%(item)s is new.", item=name))
            continue
        if previous.get("type") != item.get("type"):
            add(link, "type", False, gettext("%(item)s changed type from %(old)s to %(new)s.", item=name,
                                             old=previous.get("type"), new=item.get("type")))  # fmt: skip
            continue
        if (previous.get("text") or "") != (item.get("text") or ""):
            add(link, "label", True, gettext("%(item)s: the wording changed.", item=name))
        if (previous.get("help") or "") != (item.get("help") or ""):
            add(link, "help", True, gettext("%(item)s: the help text changed.", item=name))
        if (previous.get("message") or "") != (item.get("message") or ""):
            add(link, "message", True, gettext("%(item)s: the check's message changed.", item=name))
        if bool(previous.get("required")) != bool(item.get("required")):
            if item.get("required"):
                add(link, "required", False, gettext(
                    "%(item)s is now required: earlier responses may have no answer to it.", item=name))
            else:
                add(link, "optional", True, gettext("%(item)s is now optional.", item=name))
        if (previous.get("enableWhen") or [], previous.get("enableBehavior", "all")) != (
                item.get("enableWhen") or [], item.get("enableBehavior", "all")):  # fmt: skip
            add(link, "branching", False, gettext(
                "%(item)s shows under other conditions: earlier answers may be to a hidden item.", item=name))
        changes += _check_changes(link, name, previous, item)
        if item["type"] in ("likert", "choice", "multi", "boolean"):
            changes += _option_changes(link, name, old, previous, new, item, link in reversed_links)
    for link, item in before.items():
        if link not in after:
            safe = item["type"] in NO_ANSWER
            add(link, "removed", safe, gettext("%(item)s was removed.", item=_name(item)) if safe else gettext(
                "%(item)s was removed: its answers in earlier responses have no place in the new version.",
                item=_name(item)))  # fmt: skip
    if [i["linkId"] for i in old.get("items", []) if i["linkId"] in after] != [
            i["linkId"] for i in new.get("items", []) if i["linkId"] in before]:  # fmt: skip
        add("", "order", True, gettext("The order of the items changed."))
    changes += _scoring_changes(old, new)
    return changes


def _check_changes(link: str, name: str, previous: dict, item: dict) -> list[Change]:
    """Changes of an item's range and pattern, narrowed ones breaking."""
    out = []
    for bound, tighter in (("min", lambda a, b: b > a), ("max", lambda a, b: b < a)):
        a, b = previous.get(bound), item.get(bound)
        if a == b:
            continue
        narrowed = b is not None and (a is None or tighter(a, b))
        out.append(Change(link, "range", not narrowed, gettext(
            "%(item)s: the range narrowed, so earlier answers may fall outside it.", item=name) if narrowed
            else gettext("%(item)s: the range widened.", item=name)))  # fmt: skip
    if previous.get("pattern") != item.get("pattern"):
        out.append(Change(link, "pattern", item.get("pattern") is None, gettext(
            "%(item)s: the expected form changed, so earlier answers may not match it.", item=name)
            if item.get("pattern") else gettext("%(item)s: the expected form was removed.", item=name)))  # fmt: skip
    return out


def _option_changes(link, name, old, previous, new, item, reversed_item) -> list[Change]:
    """Changes of an item's choices: removed, recoded, reweighted, relabelled, added."""
    out = []
    was = {o["code"]: o for o in options_of(old, previous)}
    now = {o["code"]: o for o in options_of(new, item)}
    by_label = {(o.get("display") or ""): code for code, o in now.items() if code not in was}
    for code, option in was.items():
        label = option.get("display") or code
        if code not in now:
            recoded = by_label.get(option.get("display") or "")
            if recoded is not None:
                out.append(Change(link, "choice_recoded", False, gettext(
                    "%(item)s: the choice「%(label)s」was recoded from %(old)s to %(new)s; earlier answers keep "
                    "the old code.", item=name, label=label, old=code, new=recoded)))  # fmt: skip
            else:
                out.append(Change(link, "choice_removed", False, gettext(
                    "%(item)s: the choice「%(label)s」(%(code)s) was removed; earlier answers chose it.",
                    item=name, label=label, code=code)))  # fmt: skip
            continue
        if option.get("weight") != now[code].get("weight"):
            out.append(Change(link, "weight", False, gettext(
                "%(item)s: the weight of「%(label)s」changed from %(old)s to %(new)s, so earlier scores differ.",
                item=name, label=label, old=_text(option.get("weight")), new=_text(now[code].get("weight")))))
        if (option.get("display") or "") != (now[code].get("display") or ""):
            out.append(Change(link, "choice_label", True, gettext(
                "%(item)s: the choice %(code)s now reads「%(label)s」.", item=name, code=code,
                label=now[code].get("display") or code)))  # fmt: skip
    recoded_to = {by_label.get(o.get("display") or "") for c, o in was.items() if c not in now}
    for code, option in now.items():
        if code in was or code in recoded_to:
            continue
        # A new choice leaves old answers valid, unless it widens a reversed item's range,
        # which moves every reversed score (max + min − weight).
        widens = reversed_item and _range(old, previous) != _range(new, item)
        out.append(Change(link, "choice_added", not widens, gettext(
            "%(item)s: the new choice「%(label)s」changes the reversed scoring of earlier answers.", item=name,
            label=option.get("display") or code) if widens else gettext(
            "%(item)s: a new choice「%(label)s」.", item=name, label=option.get("display") or code)))  # fmt: skip
    if [c for c in was if c in now] != [c for c in now if c in was]:
        out.append(Change(link, "choice_order", True, gettext("%(item)s: the choices are in another order.", item=name)))
    return out


def _text(value) -> str:
    """A weight for a message (— when none)."""
    return "—" if value is None else f"{value:g}" if isinstance(value, float) else str(value)


def _scoring_changes(old: dict, new: dict) -> list[Change]:
    """Changes of the scores and flags: any change of how a score is computed breaks."""
    out = []
    was = {s["name"]: s for s in (old.get("scoring") or {}).get("scores") or []}
    now = {s["name"]: s for s in (new.get("scoring") or {}).get("scores") or []}
    for name, spec in now.items():
        label = spec.get("label") or name
        if name not in was:
            out.append(Change(name, "score_added", False, gettext(
                "Score %(name)s is new: earlier responses were scored without it.", name=label)))
        elif {k: v for k, v in was[name].items() if k != "label"} != {k: v for k, v in spec.items() if k != "label"}:
            out.append(Change(name, "scoring", False, gettext(
                "Score %(name)s is computed differently: earlier scores were computed by the old rule.", name=label)))
        elif was[name].get("label") != spec.get("label"):
            out.append(Change(name, "score_label", True, gettext("Score %(name)s: the label changed.", name=label)))
    for name, spec in was.items():
        if name not in now:
            out.append(Change(name, "score_removed", False, gettext("Score %(name)s was removed.",
                                                                    name=spec.get("label") or name)))  # fmt: skip
    if ((old.get("scoring") or {}).get("flags") or []) != ((new.get("scoring") or {}).get("flags") or []):
        out.append(Change("", "flags", False, gettext("The flags changed: earlier responses were flagged by the old rules.")))
    return out
