"""Base class and mixins for application models."""

from __future__ import annotations

import datetime as dt
import enum
from typing import TYPE_CHECKING

from flask_appbuilder.models.sqla import Model
from flask_babel import lazy_gettext as _l
from sqlalchemy import (
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    Integer,
    String,
    Text,
    and_,
    false,
    or_,
)
from sqlalchemy.orm import Mapped, declared_attr, mapped_column

from core.data.rules import enum_label
from core.dates import utcnow

if TYPE_CHECKING:
    from sqlalchemy.sql.elements import ColumnElement



class AppModel(Model):
    """Base of every application table: audited, and invisible unless it defines its scope."""

    __abstract__ = True
    #: Every insert/update/delete is written to the audit trail (models/platform/audit.py).
    __audited__ = True

    @classmethod
    def scope_clause(cls, scope) -> ColumnElement[bool]:
        """Rows of this model `scope` (a core.data.scope.Scope) may see. Deny by default:
        subclasses must say. (Not imported for the annotation: scope reads the user and
        institution tables, which stand on this module.)"""
        return false()

    @classmethod
    def defines_scope(cls) -> bool:
        return "scope_clause" in {k for c in cls.__mro__ if c is not AppModel for k in vars(c)}


class AuditColumnsMixin:
    """Who created and last changed a row, and when; filled by the audit session hook."""

    @declared_attr
    def created_on(cls) -> Mapped[dt.datetime]:
        return mapped_column(DateTime, default=utcnow, nullable=False)

    @declared_attr
    def changed_on(cls) -> Mapped[dt.datetime]:
        return mapped_column(DateTime, default=utcnow, onupdate=utcnow, nullable=False)

    @declared_attr
    def created_by_id(cls) -> Mapped[int | None]:
        return mapped_column(Integer, ForeignKey("ab_user.id", ondelete="SET NULL"))

    @declared_attr
    def changed_by_id(cls) -> Mapped[int | None]:
        return mapped_column(Integer, ForeignKey("ab_user.id", ondelete="SET NULL"))


class TransitionColumnsMixin:
    """One step of a workflow's history (core/workflow.py): the status before and after, when,
    who and why; corrections, courses and claims keep their history in these columns."""

    @declared_attr
    def from_status(cls) -> Mapped[str | None]:
        return mapped_column(String(12), info={"label": _l("Status before")})

    @declared_attr
    def to_status(cls) -> Mapped[str]:
        return mapped_column(String(12), nullable=False, info={"label": _l("Status after")})

    @declared_attr
    def at(cls) -> Mapped[dt.datetime]:
        return mapped_column(DateTime, nullable=False, default=utcnow, info={"label": _l("Time")})

    @declared_attr
    def user_id(cls) -> Mapped[int | None]:
        return mapped_column(ForeignKey("ab_user.id", ondelete="SET NULL"))

    @declared_attr
    def username(cls) -> Mapped[str | None]:
        return mapped_column(String(100), info={"label": _l("User")})

    @declared_attr
    def note(cls) -> Mapped[str | None]:
        return mapped_column(Text, info={"label": _l("Note")})


class DateRangeMixin:
    """A row valid from `start_date` to an optional `end_date`, both days included.

    Every dated table of the registry shares these two names (contracts, assignments; later
    courses, schemes, consents, licences), so "covers this day" is written once, here, in
    Python (`covers`) and in SQL (`covering`), and the two cannot drift apart.
    """

    @declared_attr
    def start_date(cls) -> Mapped[dt.date]:
        return mapped_column(Date, nullable=False)

    @declared_attr
    def end_date(cls) -> Mapped[dt.date | None]:
        return mapped_column(Date)

    @staticmethod
    def range_check(name: str) -> CheckConstraint:
        """The table's CHECK that an end date, when given, is not before the start date."""
        return CheckConstraint("end_date IS NULL OR end_date >= start_date", name=name)

    def covers(self, day: dt.date) -> bool:
        """The range includes `day` (an open end covers every day from the start on)."""
        return self.start_date <= day and (self.end_date is None or self.end_date >= day)

    @classmethod
    def covering(cls, day) -> ColumnElement[bool]:
        """Clause: the row's range includes `day`, a date or a date column (e.g. Visit.visit_date)."""
        return and_(cls.start_date <= day, or_(cls.end_date.is_(None), cls.end_date >= day))


class LabelledEnum(enum.StrEnum):
    """A str enum whose members carry a translatable label (shown in forms, lists, exports)."""

    def __new__(cls, value: str, label):
        obj = str.__new__(cls, value)
        obj._value_ = value
        obj.label = label
        return obj

    def __str__(self) -> str:
        return str(self.label)

    @classmethod
    def choices(cls) -> list[tuple[str, str]]:
        return [(m.value, m.label) for m in cls]

    @classmethod
    def label_of(cls, value) -> str:
        """The label of a stored value; one outside the enum shows as （無效值：X）, never raises."""
        return enum_label(cls, value)
