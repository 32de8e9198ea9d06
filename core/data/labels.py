"""The names a person reads for models and their columns, from the one place each is declared.

A model's name is its `__label__`; a column's is the label a registered view gives it
(`label_columns`), else its field rule's label (`__field_rules__`), else, for a foreign key
`x_id`, the label of its relation `x` (or the related model's `__label__`). Nothing here keeps
a second list: the audit log, the export headers and the i18n test all ask these functions.
FAB fills `label_columns` with prettified English ("Institution Nhi Code") for every column a
view did not label; those are recognised and ignored, so they never reach a person.
"""

from __future__ import annotations

import functools
import re

from flask import current_app
from flask_appbuilder.models.sqla import Model
from flask_babel import lazy_gettext as _l
from sqlalchemy import inspect

#: Columns every audited model shares (AuditColumnsMixin): labelled once, here, because no
#: model declares them itself.
SHARED_COLUMN_LABELS = {
    "id": _l("Record key"),
    "created_on": _l("Created on"),
    "changed_on": _l("Changed on"),
    "created_by_id": _l("Created by"),
    "changed_by_id": _l("Changed by"),
}
#: Pseudo-models the audit trail names that are no table of their own (core/data/audit.py,
#: core/security/sessions.py write "Account" rows for logins, role and scope changes).
PSEUDO_MODEL_LABELS = {"Account": _l("User account")}


def prettified(column: str) -> str:
    """FAB's own made-up English label for a column (BaseView._prettify_column)."""
    return re.sub("[._]", " ", column).title()


def mapped_models() -> dict[str, type]:
    """Every mapped model by class name (a new model is found, not listed)."""
    return _mapped_models(len(Model.registry._managers))


@functools.lru_cache(maxsize=4)
def _mapped_models(_count: int) -> dict[str, type]:
    # Keyed by the count: the registry only grows (at start-up); an audit export asks for
    # every row's model name, a million times.
    return {m.class_.__name__: m.class_ for m in Model.registry.mappers}


def _views():
    appbuilder = getattr(current_app, "appbuilder", None)
    return list(getattr(appbuilder, "baseviews", []) or [])


def _view_labels(model) -> dict[str, str]:
    """The labels registered views over `model` give its columns, FAB's made-up ones left out."""
    found: dict[str, str] = {}
    for view in _views():
        datamodel = getattr(view, "datamodel", None)
        if getattr(datamodel, "obj", None) is not model:
            continue
        for col, label in (getattr(view, "label_columns", None) or {}).items():
            if col not in found and label is not None and str(label) != prettified(col):
                found[col] = label
    return found


def _view_title(model):
    for view in _views():
        if getattr(getattr(view, "datamodel", None), "obj", None) is model and view.list_title:
            return view.list_title
    return None


def model_label(name_or_model) -> str:
    """A model's name for people: its __label__, else the list title of a view over it."""
    from flask_babel import get_locale

    return _model_label(name_or_model, str(get_locale()), id(current_app._get_current_object()))


@functools.lru_cache(maxsize=1024)
def _model_label(name_or_model, _locale: str, _app: int) -> str:
    model = name_or_model
    if isinstance(name_or_model, str):
        if name_or_model in PSEUDO_MODEL_LABELS:
            return str(PSEUDO_MODEL_LABELS[name_or_model])
        model = mapped_models().get(name_or_model)
        if model is None:
            return name_or_model
    label = model.__dict__.get("__label__") or _view_title(model)
    return str(label) if label is not None else model.__name__


def column_label(model, column: str) -> str:
    """A column's name for people; a dotted path names the related model's column."""
    root, _, leaf = column.partition(".")
    if leaf:
        relation = inspect(model).relationships.get(root)
        if relation is not None:
            explicit = _view_labels(model).get(column)
            return str(explicit) if explicit else column_label(relation.mapper.class_, leaf)
    label = _view_labels(model).get(column)
    if label is None:
        from core.data.rules import field_rules

        rule = field_rules(model).get(column)
        label = getattr(rule, "label", None)
    table_column = model.__table__.columns.get(column) if hasattr(model, "__table__") else None
    if label is None and table_column is not None:
        # A column no view shows declares its name where it is declared: info={"label": …}.
        label = table_column.info.get("label")
    if label is None:
        relation = foreign_key_relation(model, column)
        if relation is not None:
            label = _view_labels(model).get(relation.key)
    if label is None:
        label = SHARED_COLUMN_LABELS.get(column)
    if label is None and table_column is not None:
        target = foreign_key_target(table_column)
        if target is not None:
            return model_label(target)
    return str(label) if label is not None else column


@functools.lru_cache(maxsize=512)
def _fk_relations(model) -> dict:
    found = {}
    for rel in inspect(model).relationships:
        if rel.direction.name != "MANYTOONE":
            continue
        for local in rel.local_columns:
            found.setdefault(local.key, rel)
    return found


def foreign_key_relation(model, column: str):
    """The many-to-one relation a foreign-key column (institution_id) stands for, if any."""
    return _fk_relations(model).get(column)


def foreign_key_target(table_column):
    """The mapped model a foreign-key column points at (ab_user: the user model), if any."""
    for fk in table_column.foreign_keys:
        table = fk.column.table.name
        found = None
        for cls in mapped_models().values():
            # FAB's User and our ScopedUser share ab_user: the subclass is the one we name.
            if getattr(cls, "__tablename__", None) == table and (found is None or issubclass(cls, found)):
                found = cls
        if found is not None:
            return found
    return None
