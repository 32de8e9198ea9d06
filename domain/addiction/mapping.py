"""Order-code mapping (A6, Q9): each institution maps its HIS order codes to subsidy items.

A6  a mapping runs from a start date to an optional end date; the mapping in force on an
    order's execution date applies (a change mid-year maps the orders before and after the
    change differently); two mappings of one code at one institution never overlap (refused,
    the message names the other). An order whose code has no mapping in force is never
    dropped: it waits in the unmapped-codes work queue (codes with their count, first and
    last execution date); mapping the code there re-evaluates its waiting orders, since what
    is claimable is computed from the mappings as they stand (domain/addiction/claimable.py).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from flask_babel import gettext
from sqlalchemy import exists, func, or_, select

from core.commands import Command
from core.data.scope import current_scope
from core.dates import in_range, parse_date, to_roc
from core.errors import UserError
from core.extensions import db
from models.addiction.his import HisOrder, OrderCodeMapping
from models.addiction.scheme import SchemeItem
from models.registry.institution import Institution


class MappingError(UserError):
    """A mapping refused (overlap, unknown item, bad dates)."""


def _date(value, label, required=True):
    if value is None or value == "":
        if required:
            raise MappingError(gettext("%(field)s: please enter a date.", field=label))
        return None
    if isinstance(value, dt.date):
        day = value
    else:
        try:
            day = parse_date(str(value)[:40])
        except UserError as exc:
            raise MappingError(f"{label}: {exc}") from None
    if not in_range(day):
        raise MappingError(gettext("%(field)s: the date is out of range.", field=label))
    return day


def _code(value, label, max_length=30) -> str:
    text = str(value or "").strip().upper()
    if not text:
        raise MappingError(gettext("%(field)s: a value is required.", field=label))
    if len(text) > max_length or any(ord(c) < 33 for c in text):
        raise MappingError(gettext("%(field)s: at most %(n)d characters, no spaces.", field=label, n=max_length))
    return text


def known_item_codes() -> set[str]:
    """Codes of items of any scheme the user sees (central, or their county's)."""
    from models.addiction.scheme import SubsidyScheme

    scope = current_scope()
    return set(db.session.scalars(
        select(SchemeItem.code).join(SubsidyScheme).where(SubsidyScheme.scope_clause(scope)).distinct()
    ))  # fmt: skip


class SaveMapping(Command):
    """Add a mapping, or change one (`mapping` given), after checking overlap and the item."""

    def __init__(self, institution_id, order_code, item_code, start_date, end_date, mapping=None):
        self.mapping = mapping
        self.institution_id = institution_id
        self.raw = (order_code, item_code, start_date, end_date)

    def validate(self) -> None:
        order_code, item_code, start, end = self.raw
        self.order_code = _code(order_code, gettext("Order code"))
        self.item_code = _code(item_code, gettext("Subsidy item code"))
        self.start = _date(start, gettext("Effective from"))
        self.end = _date(end, gettext("Effective to"), required=False)
        if self.end is not None and self.end < self.start:
            raise MappingError(gettext("The end date is before the start date."))
        scope = current_scope()
        institution = db.session.scalar(
            select(Institution).where(Institution.id == self.institution_id, Institution.scope_clause(scope))
        ) if isinstance(self.institution_id, int) else None  # fmt: skip
        if institution is None:
            raise MappingError(gettext("The institution does not exist or is outside your data scope."), 404)
        if self.item_code not in known_item_codes():
            raise MappingError(gettext("No subsidy scheme has an item with the code %(code)s.", code=self.item_code))
        far = dt.date(9999, 12, 31)
        other = db.session.scalar(
            select(OrderCodeMapping).where(
                OrderCodeMapping.institution_id == self.institution_id,
                OrderCodeMapping.order_code == self.order_code,
                OrderCodeMapping.id != (self.mapping.id if self.mapping is not None else -1),
                OrderCodeMapping.start_date <= (self.end or far),
                or_(OrderCodeMapping.end_date.is_(None), OrderCodeMapping.end_date >= self.start),
            ).limit(1)
        )
        if other is not None:
            raise MappingError(gettext(
                "The mapping overlaps the mapping of %(code)s to %(item)s from %(start)s to %(end)s: "
                "end that one first, or choose other dates.",
                code=other.order_code, item=other.item_code, start=to_roc(other.start_date),
                end=to_roc(other.end_date) if other.end_date else gettext("(open)"),
            ))  # fmt: skip

    def execute(self) -> OrderCodeMapping:
        mapping = self.mapping or OrderCodeMapping(institution_id=self.institution_id)
        mapping.order_code, mapping.item_code = self.order_code, self.item_code
        mapping.start_date, mapping.end_date = self.start, self.end
        db.session.add(mapping)
        db.session.flush()
        return mapping


def mapped_clause():
    """SQL: the order has a mapping in force on its execution date (or is a manual line)."""
    return or_(
        HisOrder.item_code.is_not(None),
        exists().where(
            OrderCodeMapping.institution_id == HisOrder.institution_id,
            OrderCodeMapping.order_code == HisOrder.order_code,
            OrderCodeMapping.covering(HisOrder.executed_on),
        ),
    )


@dataclass(frozen=True)
class UnmappedCode:
    """One line of the work queue: a code of an institution with orders waiting for a mapping."""

    institution_id: int
    institution_name: str
    order_code: str
    orders: int
    first: dt.date
    last: dt.date


def unmapped_codes(scope, limit: int = 500) -> list[UnmappedCode]:
    """Codes with orders that no mapping covers on their execution date, in the scope."""
    rows = db.session.execute(
        select(HisOrder.institution_id, Institution.name, HisOrder.order_code, func.count(),
               func.min(HisOrder.executed_on), func.max(HisOrder.executed_on))
        .join(Institution, Institution.id == HisOrder.institution_id)
        .where(HisOrder.scope_clause(scope), ~mapped_clause())
        .group_by(HisOrder.institution_id, Institution.name, HisOrder.order_code)
        .order_by(func.count().desc(), HisOrder.order_code)
        .limit(limit)
    )  # fmt: skip
    return [UnmappedCode(*row) for row in rows]


def unmapped_count(scope) -> int:
    return db.session.scalar(
        select(func.count()).select_from(HisOrder).where(HisOrder.scope_clause(scope), ~mapped_clause())
    ) or 0


def mapping_in_force(mappings: list[tuple], day: dt.date) -> str | None:
    """The item code of the mapping (start, end, item) covering `day`, if any."""
    for start, end, item in mappings:
        if start <= day and (end is None or end >= day):
            return item
    return None


__all__ = ["SaveMapping", "MappingError", "unmapped_codes", "unmapped_count", "mapping_in_force"]
