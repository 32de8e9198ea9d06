"""Search filters for foreign keys to large tables: a text box instead of a dropdown of every row."""

from __future__ import annotations

from flask_appbuilder.models.filters import BaseFilter
from flask_babel import lazy_gettext as _l
from sqlalchemy import false, or_, select


def related_text_filter(target, fields: tuple[str, ...], label, arg_name: str):
    """A filter on `<fk relation>` matching the related row's `fields` (prefix or substring).

    The related rows are searched in a sub-select, so the outer query keeps using its index
    on the foreign key, and the related table is never loaded into the page.
    """

    class RelatedTextFilter(BaseFilter):
        """Relation matched by text on the related row (code prefix or name substring)."""

        name = label

        def apply(self, query, value):
            value = (value or "").strip()
            if not value:
                return query
            rel = getattr(self.model, self.column_name)
            conditions = [getattr(target, f).startswith(value) for f in fields[:1]]
            conditions += [getattr(target, f).contains(value) for f in fields[1:]]
            if rel.property.uselist:  # a collection (e.g. a user's institutions)
                return query.filter(rel.any(or_(*conditions)))
            fk = next(iter(rel.property.local_columns))
            pk = next(iter(target.__mapper__.primary_key))
            matching = select(pk).where(or_(*conditions))
            ids = _few_matching_ids(matching, (target.__name__, fields, value))
            if ids is None:
                return query.filter(fk.in_(matching))
            if not ids:
                return query.filter(false())
            # Literal ids, not a sub-select: the planner can then walk the (fk, sort column)
            # index in order, instead of sorting every visit of the matching rows.
            return query.filter(fk == ids[0] if len(ids) == 1 else fk.in_(ids))

    RelatedTextFilter.arg_name = arg_name
    RelatedTextFilter.__name__ = f"Filter{target.__name__}Text"
    return RelatedTextFilter


#: Up to this many matching related rows are inlined as literal ids.
INLINE_IDS = 20


def _few_matching_ids(matching, key) -> list | None:
    """The ids `matching` selects when they are at most INLINE_IDS, else None.

    Memoised for the request: FAB applies each filter twice (count and page)."""
    from flask import g, has_request_context

    from core.extensions import db

    memo = g.setdefault("_related_text_ids", {}) if has_request_context() else {}
    if key not in memo:
        ids = db.session.scalars(matching.limit(INLINE_IDS + 1)).all()
        memo[key] = ids if len(ids) <= INLINE_IDS else None
    return memo[key]


def institution_text_filter():
    from models.institution import Institution

    return related_text_filter(
        Institution, ("nhi_code", "name"), _l("Code or name contains"), "inst_txt"
    )


def practitioner_text_filter():
    from models.practitioner import Practitioner

    return related_text_filter(
        Practitioner, ("national_id", "name"), _l("ID or name contains"), "prac_txt"
    )


def _roc_date_filter(base):
    """`base` (a FAB date filter) that also reads ROC dates such as 114/04/01."""

    class RocDateFilter(base):
        """Date filter accepting ROC and ISO text (FAB's dateutil parse misreads 114/04/01)."""

        def apply(self, query, value):
            from core.dates import DateFormatError, parse_date

            if isinstance(value, str):
                try:
                    value = parse_date(value)
                except DateFormatError:
                    return query.filter(false())
            return super().apply(query, value)

    RocDateFilter.__name__ = f"Roc{base.__name__}"
    return RocDateFilter


def _roc_converter():
    from flask_appbuilder.models.sqla.filters import SQLAFilterConverter

    table = tuple(
        (kind, [_roc_date_filter(f) for f in filters] if kind == "is_date" else filters)
        for kind, filters in SQLAFilterConverter.conversion_table
    )
    return type("RocFilterConverter", (SQLAFilterConverter,), {"conversion_table": table})


#: The filter converter of every scoped datamodel: FAB's, with ROC-aware date filters.
RocFilterConverter = _roc_converter()
