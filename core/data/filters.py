"""Search filters for foreign keys to large tables: a text box instead of a dropdown of every row."""

from __future__ import annotations

import functools

from flask_appbuilder.models.filters import BaseFilter, Filters
from flask_babel import lazy_gettext as _l
from sqlalchemy import false, inspect, or_, select

from core.security.permissions import can_see_full_ids
from core.validators import normalize_id


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
            masked = sees_ids_masked()
            conditions = [
                # A personal ID the viewer sees masked matches only as the exact full value.
                getattr(target, f) == normalize_id(value)
                if masked and is_personal_id(target, f)
                else getattr(target, f).startswith(value) if i == 0
                else getattr(target, f).contains(value)
                for i, f in enumerate(fields)
            ]  # fmt: skip
            if rel.property.uselist:  # a collection (e.g. a user's institutions)
                return query.filter(rel.any(or_(*conditions)))
            fk = next(iter(rel.property.local_columns))
            pk = next(iter(target.__mapper__.primary_key))
            matching = select(pk).where(or_(*conditions))
            ids = _few_matching_ids(matching, (target.__name__, fields, value, masked))
            if ids is None:
                return query.filter(fk.in_(matching))
            if not ids:
                return query.filter(false())
            # Literal ids, not a sub-select: the planner can then walk the (fk, sort column)
            # index in order, instead of sorting every visit of the matching rows.
            return query.filter(fk == ids[0] if len(ids) == 1 else fk.in_(ids))

    RelatedTextFilter.arg_name = arg_name
    RelatedTextFilter.target, RelatedTextFilter.fields = target, fields
    RelatedTextFilter.__name__ = f"Filter{target.__name__}Text"
    return RelatedTextFilter


#: Up to this many matching related rows are inlined as literal ids.
INLINE_IDS = 20


def _few_matching_ids(matching, key) -> list | None:
    """The ids `matching` selects when they are at most INLINE_IDS, else None.

    Memoised for the request (FAB applies each filter twice: count and page), and cached
    across requests under the versions of the tables `matching` reads, like a list's count
    (core/data/counts.py): any commit that writes the institution table makes the next
    lookup read it again; writes outside a Session are seen after COUNT_SECONDS. The ids
    are those of every matching row, in scope or not: they only narrow the scoped query.
    A record list filtered by an institution's code: one statement fewer (staff 4 -> 3)."""
    import hashlib

    from core.data.counts import _PENDING, COUNT_SECONDS, table_versions, tables_of
    from core.data.versions import request_memo
    from core.extensions import cache, db

    def load():
        """The ids, or None when there are too many to inline."""
        ids = db.session.scalars(matching.limit(INLINE_IDS + 1)).all()
        return ids if len(ids) <= INLINE_IDS else None

    def shared():
        """load()'s answer from the shared cache, stored there on a miss."""
        if db.session.info.get(_PENDING):  # this session's own uncommitted writes
            return load()
        tables = tables_of(matching)
        tokens = ",".join(map(str, table_versions(tables)))
        digest = hashlib.sha1(repr((key, tables, tokens)).encode()).hexdigest()
        entry = cache.get(f"related-ids:{digest}")
        if entry is None:
            entry = (load(),)  # a tuple: None (too many) is an answer too
            cache.set(f"related-ids:{digest}", entry, timeout=COUNT_SECONDS)
        return entry[0]

    return request_memo(("related_text_ids", key), shared)


def institution_text_filter():
    from models.registry.institution import Institution

    return related_text_filter(
        Institution, ("nhi_code", "name"), _l("Code or name contains"), "inst_txt"
    )


def practitioner_text_filter():
    from models.registry.practitioner import Practitioner

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


# ------------------------------------------------- personal IDs seen masked (issue 12 class 2)
# A role that sees 身分證字號 masked (A12****789) must not recover them through a filter, a
# search or an order (trap 11): for such a role every filter on a personal-ID field matches
# only the exact full value, and no list is ordered by one. The fields are the ones the views
# and APIs declare in `personal_id_columns` (a dotted "quitter.national_id" names the related
# model's field), so a new model is covered by declaring its column.

#: (model, column) of every field holding a personal ID, from the views' declarations.
_PERSONAL_ID_FIELDS: set[tuple[type, str]] = set()
#: FAB's operators that exclude what they match; on a masked field they become "not equal".
NEGATIVE_OPERATORS = frozenset({"nsw", "new", "nct", "neq"})
#: Filters whose value the view itself computes (base filters), never a user's text.
_FUNCTION_OPERATORS = frozenset({"eqf", "inf"})


@functools.lru_cache(maxsize=4096)
def resolve_column(model, path: str) -> tuple[type, str] | None:
    """(model, column) that a column path names: "quitter.national_id" on Visit → (Quitter,
    "national_id"); None when a part of the path is not a relationship of the model."""
    *relations, column = path.split(".")
    for name in relations:
        rel = inspect(model).relationships.get(name)
        if rel is None:
            return None
        model = rel.mapper.class_
    return model, column


def register_personal_id_columns(model, columns) -> None:
    """Record the personal-ID fields a view or API declares (called by the bases)."""
    for path in columns or ():
        resolved = resolve_column(model, path)
        if resolved is not None:
            _PERSONAL_ID_FIELDS.add(resolved)


def is_personal_id(model, path: str) -> bool:
    """Whether the column path of `model` reaches a declared personal-ID field."""
    if not _PERSONAL_ID_FIELDS or not isinstance(path, str):
        return False
    try:
        return resolve_column(model, path) in _PERSONAL_ID_FIELDS
    except Exception:  # not a mapped class (a FAB filter's model is always one)
        return False


def sees_ids_masked() -> bool:
    """Whether the current viewer sees personal IDs masked. Outside a request (no viewer)
    the answer is yes: nothing then relies on a prefix of a personal ID."""
    from flask import has_request_context

    if not has_request_context():
        return True
    return not can_see_full_ids()


def exact_id_filter(flt, value):
    """(filter, value) as applied for a viewer who sees the field masked: the full value
    exactly (normalised like a typed ID), whatever operator was asked for. A partial value
    then matches nothing, the same answer as a wrong full value."""
    from flask_appbuilder.models.sqla import filters as fab

    arg = flt.arg_name
    if arg in _FUNCTION_OPERATORS or getattr(flt, "is_related_view", False):
        return flt, value
    if arg in ("in", "not_in"):
        values = value if isinstance(value, list | tuple) else [value]
        cls = fab.FilterIn if arg == "in" else fab.FilterNotIn
        return cls(flt.column_name, flt.datamodel), [normalize_id(v) for v in values]
    cls = fab.FilterNotEqual if arg in NEGATIVE_OPERATORS else fab.FilterEqual
    if isinstance(value, list):
        return cls(flt.column_name, flt.datamodel), [normalize_id(v) for v in value]
    return cls(flt.column_name, flt.datamodel), normalize_id(value)


class PersonalIdFilters(Filters):
    """FAB's Filters, matching a personal-ID field only exactly for a viewer who sees it
    masked. Joined and copied filters keep the rule (FAB builds new Filters for both)."""

    def apply_all(self, query):
        if not self.filters or not any(
            is_personal_id(f.model, f.column_name) for f in self.filters
        ) or not sees_ids_masked():
            return super().apply_all(query)
        for flt, values in zip(self.filters, self.values, strict=True):
            if is_personal_id(flt.model, flt.column_name):
                flt, values = exact_id_filter(flt, values)
            # FAB's own loop (Filters.apply_all): a list is several values of one filter.
            if isinstance(values, list) and flt.arg_name not in {"in", "not_in"}:
                for value in values:
                    query = flt.apply(query, value)
            else:
                query = flt.apply(query, values)
        return query

    def get_joined_filters(self, filters):
        return personal_id_filters(super().get_joined_filters(filters))

    def copy(self):
        return personal_id_filters(super().copy())


def personal_id_filters(filters):
    """`filters` (a FAB Filters) under the personal-ID rule; the same object, retyped."""
    if filters is not None and type(filters) is Filters:
        filters.__class__ = PersonalIdFilters
    return filters


def masked_search_operators(datamodel, column: str, filters: list) -> list | None:
    """The operators a viewer who sees `column` masked is offered for it: only "equal to",
    as the first entry (FAB's search form numbers its operators from 0, and every operator
    of a masked field matches exactly for that viewer). None when nothing needs hiding."""
    if not is_personal_id(datamodel.obj, column) or not sees_ids_masked():
        return None
    if not filters or filters[0].arg_name in NEGATIVE_OPERATORS | {"not_in"}:
        return []
    from flask_appbuilder.models.sqla.filters import FilterEqual

    return [FilterEqual]
