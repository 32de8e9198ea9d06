"""Field rules: one declaration per model column, run by every path that writes a row.

A model lists its rules in `__field_rules__` (and cross-field rules in `__record_rules__`);
from that one declaration come

- the HTML forms' validators (ScopedModelView installs `RuleValidator` on every field of a
  ruled column, core/web/views.py),
- the REST API's marshmallow validators and the normalisation of the JSON body before it is
  loaded (ScopedModelRestApi, core/web/views.py),
- the batch upload's per-field row checks (domain/cessation/batch.py calls `Rule.clean`),
- a session hook that normalises and checks every inserted or changed row at flush time, so a
  path that forgot (a CLI command, a seeder, a later workflow) cannot store a bad value,
- the database CHECK constraints of the model's table (`check_constraints`), the last line.

A value that breaks a rule is refused with the rule's zh_TW message; nothing is written.
A stored value that is not a member of its enum renders as "（無效值：X）" (`invalid_label`).
"""

from __future__ import annotations

import datetime as dt
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from flask_appbuilder.models.sqla import Model
from flask_babel import gettext

from core.errors import UserError
from core.validators import is_valid_nhi_code, is_valid_personal_id, normalize_id

#: Dates before this are typing mistakes (a birth year 1011 for 2011), whatever the field.
EARLIEST_DATE = dt.date(1900, 1, 1)
#: Dates after this are typing mistakes too (contracts and visits are not planned this far).
LATEST_DATE = dt.date(2099, 12, 31)

# Characters a person's name, an address or a licence number never holds: C0/C1 controls
# (line breaks, tabs), surrogates, zero-width and bidirectional controls (they reorder what
# the next reader sees). Private-use characters stay allowed: Taiwan's household registers
# write rare name characters (造字) there.
_INVISIBLE = {
    *range(0x200B, 0x2010), *range(0x202A, 0x202F), *range(0x2060, 0x2070),
    0x2028, 0x2029, 0xFEFF, 0x00AD,
}  # fmt: skip


class RuleError(UserError, ValueError):
    """A value refused by its field rule; str() is the zh_TW message, `column` the field."""

    def __init__(self, column: str, message: str):
        super().__init__(message)
        self.column = column
        self.message = message

    def answer(self):
        """Per field, as marshmallow answers: {column: [message]}."""
        return {self.column: [self.message]}


def has_control_characters(text: str) -> bool:
    return any(
        unicodedata.category(ch) in ("Cc", "Cs") or ord(ch) in _INVISIBLE for ch in text
    )


def strip_text(value):
    """Strip surrounding blanks (a full-width space too); non-text stays as it is."""
    return value.strip() if isinstance(value, str) else value


def _roc(day: dt.date) -> str:
    from core.dates import to_roc

    return to_roc(day)


@dataclass(frozen=True)
class Rule:
    """What one column accepts. `kind` is text, personal_id, nhi_code, enum, int or date."""

    kind: str
    label: Any
    required: bool = False
    min_length: int = 0
    max_length: int | None = None
    exact_length: int | None = None
    choices: Any = None  # a LabelledEnum
    min_value: int | None = None
    max_value: int | None = None
    min_date: dt.date | None = None
    #: A date, or a function of no arguments returning one (today, on the one clock).
    max_date: Any = None
    #: Normalise before checking (and store the normalised value).
    normalise: Callable[[Any], Any] | None = None
    column: str = field(default="", compare=False)

    # ------------------------------------------------------------- normalise
    def normalised(self, value):
        if self.normalise is not None:
            return self.normalise(value)
        if self.kind in ("text", "enum"):
            return strip_text(value)
        if self.kind == "int" and isinstance(value, str) and value.strip():
            text = unicodedata.normalize("NFKC", value).strip()
            try:
                return int(text)
            except ValueError:
                return value
        return value

    def latest_date(self) -> dt.date | None:
        return self.max_date() if callable(self.max_date) else self.max_date

    # ----------------------------------------------------------------- check
    def error(self, value) -> str | None:
        """The zh_TW message for a (normalised) value this rule refuses, else None."""
        label = str(self.label)
        if value is None or value == "":
            return gettext("Please fill in %(field)s.", field=label) if self.required else None
        check = getattr(self, f"_check_{self.kind}")
        return check(value, label)

    def _check_text(self, value, label):
        if not isinstance(value, str):
            return gettext("%(field)s must be text.", field=label)
        if has_control_characters(value):
            return gettext(
                "%(field)s may not contain line breaks, tabs or invisible control characters.",
                field=label,
            )
        if len(value) < self.min_length:
            return gettext("Please fill in %(field)s.", field=label)
        if self.max_length is not None and len(value) > self.max_length:
            return gettext(
                "%(field)s may be at most %(max)d characters long (you gave %(n)d).",
                field=label, max=self.max_length, n=len(value),
            )  # fmt: skip
        return None

    def _check_personal_id(self, value, label):
        if not isinstance(value, str) or not is_valid_personal_id(value) or value != normalize_id(value):
            return gettext(
                "Invalid national ID or resident certificate number: check the letters and the check digit."
            )
        return None

    def _check_nhi_code(self, value, label):
        if not isinstance(value, str) or not is_valid_nhi_code(value) or value != value.strip():
            return gettext("The NHI institution code must be exactly 10 digits.")
        return None

    def _check_enum(self, value, label):
        if value not in {m.value for m in self.choices}:
            return gettext(
                "%(field)s must be one of: %(choices)s.",
                field=label,
                choices="、".join(f"{m.value}（{m.label}）" for m in self.choices),
            )
        return None

    def _check_int(self, value, label):
        if isinstance(value, bool) or not isinstance(value, int):
            return gettext("%(field)s must be a whole number.", field=label)
        if (self.min_value is not None and value < self.min_value) or (
            self.max_value is not None and value > self.max_value
        ):
            return gettext(
                "%(field)s must be a whole number from %(min)d to %(max)d.",
                field=label, min=self.min_value, max=self.max_value,
            )  # fmt: skip
        return None

    def _check_date(self, value, label):
        if isinstance(value, dt.datetime) or not isinstance(value, dt.date):
            return gettext("%(field)s must be a date.", field=label)
        earliest, latest = self.min_date or EARLIEST_DATE, self.latest_date() or LATEST_DATE
        if value < earliest or value > latest:
            return gettext(
                "%(field)s must be a date from %(min)s to %(max)s.",
                field=label, min=_roc(earliest), max=_roc(latest),
            )  # fmt: skip
        return None

    def clean(self, value):
        """The normalised value, or RuleError with the zh_TW message."""
        value = self.normalised(value)
        message = self.error(value)
        if message is not None:
            raise RuleError(self.column, message)
        return value

    # ------------------------------------------------------------ database
    def check_sql(self, column: str) -> str | None:
        """The SQL condition a CHECK constraint backs this rule with (portable SQL only)."""
        parts = []
        if self.kind == "enum":
            values = ", ".join(f"'{m.value}'" for m in self.choices)
            parts.append(f"{column} IN ({values})")
        elif self.kind == "int" and self.min_value is not None:
            parts.append(f"{column} BETWEEN {self.min_value} AND {self.max_value}")
        elif self.kind == "date":
            parts.append(f"{column} >= '{(self.min_date or EARLIEST_DATE).isoformat()}'")
            if self.max_date is not None and not callable(self.max_date):
                parts.append(f"{column} <= '{self.max_date.isoformat()}'")
        elif self.kind == "personal_id":
            parts.append(f"{column} = upper({column}) AND length({column}) = 10")
        elif self.kind == "nhi_code":
            parts.append(f"length({column}) = 10")
        elif self.kind == "text":
            if self.max_length is not None and self.min_length:
                parts.append(f"length({column}) BETWEEN {self.min_length} AND {self.max_length}")
            elif self.max_length is not None:
                parts.append(f"length({column}) <= {self.max_length}")
        if not parts:
            return None
        condition = " AND ".join(parts)
        return condition if self.required else f"{column} IS NULL OR ({condition})"


def text(label, *, required=False, max_length, min_length=None) -> Rule:
    return Rule(
        "text", label, required=required, max_length=max_length,
        min_length=(1 if required else 0) if min_length is None else min_length,
    )  # fmt: skip


def personal_id(label) -> Rule:
    return Rule("personal_id", label, required=True, normalise=lambda v: normalize_id(v) if isinstance(v, str) else v)


def _blank_is_none(value):
    return None if isinstance(value, str) and not value.strip() else value


def nhi_code(label, *, required=True) -> Rule:
    """A 10-digit NHI institution code; an optional one stores a blank as no code."""
    if required:
        return Rule("nhi_code", label, required=True)
    return Rule("nhi_code", label, normalise=_blank_is_none)


def enum(label, choices, *, required=True) -> Rule:
    return Rule("enum", label, required=required, choices=choices)


def integer(label, min_value: int, max_value: int, *, required=False) -> Rule:
    return Rule("int", label, required=required, min_value=min_value, max_value=max_value)


def date(label, *, required=False, min_date=None, max_date=LATEST_DATE) -> Rule:
    return Rule("date", label, required=required, min_date=min_date, max_date=max_date)


def today() -> dt.date:
    from core import clock

    return clock.today()


@dataclass(frozen=True)
class DatesInOrder:
    """A record rule: `end` is empty or not earlier than `start`."""

    start: str
    end: str

    def error(self, values: dict) -> tuple[str, str] | None:
        start, end = values.get(self.start), values.get(self.end)
        if isinstance(start, dt.date) and isinstance(end, dt.date) and end < start:
            return self.end, gettext("The end date cannot be earlier than the start date.")
        return None

    def check_sql(self) -> str:
        return f"{self.end} IS NULL OR {self.end} >= {self.start}"


# ---------------------------------------------------------------- per model
def field_rules(model) -> dict[str, Rule]:
    """A model's rules by column, each knowing its column name."""
    rules = getattr(model, "__field_rules__", None) or {}
    cache = model.__dict__.get("_named_field_rules")
    if cache is None or cache[0] is not rules:
        named = {col: _named(rule, col) for col, rule in rules.items()}
        cache = (rules, named)
        model._named_field_rules = cache
    return cache[1]


def record_rules(model) -> list:
    return list(getattr(model, "__record_rules__", None) or [])


def _named(rule: Rule, column: str) -> Rule:
    from dataclasses import replace

    return replace(rule, column=column)


def check_constraints(table: str, rules: dict[str, Rule], records=()) -> list:
    """CheckConstraints (ck_<table>_<column>) backing a model's rules, for __table_args__."""
    from sqlalchemy import CheckConstraint

    constraints = []
    for column, rule in rules.items():
        sql = rule.check_sql(column)
        if sql is not None:
            constraints.append(CheckConstraint(sql, name=f"ck_{table}_{column}"))
    return constraints


def check_values(model, values: dict, columns=None) -> tuple[dict, dict[str, str]]:
    """Normalise and check `values` (column → value) against the model's rules.

    Returns (normalised values, {column: message}); columns not in `values` are not checked,
    record rules only when both of their columns are given.
    """
    rules = field_rules(model)
    out, errors = dict(values), {}
    for column, value in values.items():
        rule = rules.get(column)
        if rule is None or (columns is not None and column not in columns):
            continue
        out[column] = value = rule.normalised(value)
        message = rule.error(value)
        if message is not None:
            errors[column] = message
    for record in record_rules(model):
        if record.start in out and record.end in out and record.end not in errors:
            found = record.error(out)
            if found is not None:
                errors[found[0]] = found[1]
    return out, errors


def check_instance(obj, only_changed: bool = False) -> None:
    """Normalise a row's ruled attributes in place; raise RuleError for the first bad one."""
    from sqlalchemy import inspect

    model = type(obj)
    rules = field_rules(model)
    if not rules and not record_rules(model):
        return
    state = inspect(obj)
    for column, rule in rules.items():
        if only_changed and not state.attrs[column].history.has_changes():
            continue
        value = getattr(obj, column)
        normal = rule.normalised(value)
        if normal is not value and normal != value:
            setattr(obj, column, normal)
        message = rule.error(normal)
        if message is not None:
            raise RuleError(column, message)
    for record in record_rules(model):
        found = record.error({record.start: getattr(obj, record.start), record.end: getattr(obj, record.end)})
        if found is not None:
            raise RuleError(*found)


def ruled_models() -> list:
    """Every mapped model that declares field rules (a new model is found, not listed; the
    app factory has imported every model by then)."""
    found, stack = [], [Model]
    while stack:
        for sub in stack.pop().__subclasses__():
            stack.append(sub)
            if "__field_rules__" in vars(sub) and hasattr(sub, "__table__"):
                found.append(sub)
    return sorted(found, key=lambda m: m.__tablename__)


def scan_rows(model, limit: int = 20):
    """(id, column, message) of stored rows that break a rule, streamed, at most `limit`."""
    from sqlalchemy import select

    from core.extensions import db

    columns = list(field_rules(model))
    pk = model.__table__.primary_key.columns.values()[0]
    stmt = select(pk, *(getattr(model, c) for c in columns)).order_by(pk)
    reported = 0
    for row in db.session.execute(stmt.execution_options(yield_per=5000)):
        values = dict(zip(columns, row[1:], strict=True))
        _normal, errors = check_values(model, values)
        # A value the rules would store differently (lower case, blanks) breaks them too.
        for column, value in values.items():
            if column not in errors and _normal[column] != value:
                errors[column] = invalid_label(value)
        for column, message in errors.items():
            yield row[0], column, message
            reported += 1
            if reported >= limit:
                return


def _before_flush(session, flush_context, instances):
    for obj in list(session.new):
        check_instance(obj)
    for obj in list(session.dirty):
        if session.is_modified(obj):
            check_instance(obj, only_changed=True)


def install(session) -> None:
    """Check every row a flush writes (forms, API, batch, CLI, jobs: one net under them all)."""
    from sqlalchemy import event

    if not event.contains(session, "before_flush", _before_flush):
        event.listen(session, "before_flush", _before_flush)


# ---------------------------------------------------------------- rendering
def invalid_label(value) -> str:
    """How a stored value that no rule would accept today is shown: （無效值：X）."""
    return gettext("(invalid value: %(value)s)", value=value)


def enum_label(enum_class, value) -> str:
    """The label of an enum value; a value outside the enum shows as invalid, never raises."""
    if value is None or value == "":
        return ""
    try:
        return str(enum_class(value).label)
    except ValueError:
        return invalid_label(value)


# ---------------------------------------------------------------- WTForms
class RuleValidator:
    """WTForms validator derived from a Rule: normalises field.data, stops with the message."""

    def __init__(self, rule: Rule):
        self.rule = rule
        self.field_flags = {"required": True} if rule.required else {}

    def __call__(self, form, field):
        from wtforms.validators import StopValidation

        if field.errors:
            return  # the field could not read the input (a date, a number): that message
        data = field.data
        if isinstance(data, str) and self.rule.kind in ("int", "date"):
            return
        data = self.rule.normalised(data)
        if self.rule.kind in ("text", "personal_id", "nhi_code", "enum"):
            field.data = data
        message = self.rule.error(data)
        if message is not None:
            raise StopValidation(message)


class DatesInOrderValidator:
    """WTForms validator on the end-date field of a DatesInOrder record rule."""

    def __init__(self, record: DatesInOrder):
        self.record = record

    def __call__(self, form, field):
        from wtforms.validators import ValidationError

        start = getattr(form, self.record.start, None)
        found = self.record.error(
            {self.record.start: getattr(start, "data", None), self.record.end: field.data}
        )
        if found is not None:
            raise ValidationError(found[1])


def form_validators(model, column: str) -> list:
    """The WTForms validators of one column (its Rule and any record rule ending there)."""
    validators = []
    rule = field_rules(model).get(column)
    if rule is not None:
        validators.append(RuleValidator(rule))
    for record in record_rules(model):
        if record.end == column:
            validators.append(DatesInOrderValidator(record))
    return validators


def with_validators(unbound, validators: list):
    """A copy of an unbound form field whose validators start with `validators`."""
    from wtforms.fields.core import UnboundField

    if not isinstance(unbound, UnboundField) or not validators:
        return unbound
    args, kwargs = list(unbound.args), dict(unbound.kwargs)
    if len(args) >= 2:
        args[1] = [*validators, *(args[1] or [])]
    else:
        kwargs["validators"] = [*validators, *(kwargs.get("validators") or [])]
    copy = UnboundField(unbound.field_class, *args, name=unbound.name, **kwargs)
    copy.creation_counter = unbound.creation_counter
    return copy


# ---------------------------------------------------------------- marshmallow
class MarshmallowRule:
    """marshmallow validator derived from a Rule (the body is normalised before loading)."""

    def __init__(self, rule: Rule):
        self.rule = rule

    def __call__(self, value):
        from marshmallow import ValidationError

        message = self.rule.error(self.rule.normalised(value))
        if message is not None:
            raise ValidationError(message)
        return True


def install_marshmallow_rules(schema, model) -> None:
    """Replace the generated length checks of each ruled field with the field's Rule."""
    from marshmallow.validate import Length

    rules = field_rules(model)
    for name, schema_field in schema.fields.items():
        rule = rules.get(name)
        if rule is None or schema_field.dump_only:
            continue
        schema_field.validators = [
            v for v in schema_field.validators if not isinstance(v, Length | MarshmallowRule)
        ] + [MarshmallowRule(rule)]


def normalise_json(model, data, columns) -> None:
    """Normalise the ruled text values of a JSON body in place, before it is loaded."""
    if not isinstance(data, dict):
        return
    rules = field_rules(model)
    for column in columns or ():
        rule = rules.get(column)
        if rule is not None and isinstance(data.get(column), str):
            data[column] = rule.normalised(data[column])
