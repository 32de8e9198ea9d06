"""Treatment courses (療程, A2) of a case, with their status history."""

from __future__ import annotations

import datetime as dt

from flask_babel import lazy_gettext as _l
from sqlalchemy import Date, ForeignKey, Index, Integer, String, select
from sqlalchemy.orm import Mapped, mapped_column, relationship

from core.data import rules
from core.dates import to_roc
from models.addiction.case import Case
from models.base import (
    AppModel,
    AuditColumnsMixin,
    DateRangeMixin,
    LabelledEnum,
    TransitionColumnsMixin,
)


class CourseStatus(LabelledEnum):
    """Where a course stands (A2)."""

    ACTIVE = "active", _l("In progress")
    COMPLETED = "completed", _l("Completed")
    INTERRUPTED = "interrupted", _l("Interrupted")


COURSE_RULES = {
    "start_date": rules.date(_l("Start date"), required=True),
    "end_date": rules.date(_l("End date"), required=True),
    "status": rules.enum(_l("Course status"), CourseStatus),
    "interrupt_reason": rules.text(_l("Reason for interruption"), max_length=200),
}


class Course(DateRangeMixin, AuditColumnsMixin, AppModel):
    """One course of a case: start, end (start + 1 year unless changed), status (A2).

    `institution_id` repeats the case's so that scope and the institution's lists read one
    index; the domain command sets it from the case and never from input."""

    __tablename__ = "course"
    __label__ = _l("Treatment course")
    __field_rules__ = COURSE_RULES
    __record_rules__ = (rules.DatesInOrder("start_date", "end_date"),)
    __table_args__ = (
        DateRangeMixin.range_check("ck_course_dates"),
        *rules.check_constraints("course", COURSE_RULES),
        Index("ix_course_case_start", "case_id", "start_date"),
        Index("ix_course_institution_start", "institution_id", "start_date", "id"),
        Index("ix_course_start", "start_date", "id"),  # national list (migration c4d5e6f7a8b9)
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("addiction_case.id"), nullable=False)
    institution_id: Mapped[int] = mapped_column(ForeignKey("institution.id"), nullable=False)
    # A course always ends (A2: the default is start + 1 year).
    end_date: Mapped[dt.date] = mapped_column(Date, nullable=False)
    status: Mapped[str] = mapped_column(String(12), nullable=False, default=CourseStatus.ACTIVE.value)
    interrupt_reason: Mapped[str | None] = mapped_column(String(200))

    case: Mapped[Case] = relationship()
    transitions: Mapped[list[CourseTransition]] = relationship(
        back_populates="course", cascade="all, delete-orphan", order_by="CourseTransition.id"
    )

    @classmethod
    def scope_clause(cls, scope):
        return scope.institution_filter(cls.institution_id)

    @property
    def status_label(self) -> str:
        return rules.enum_label(CourseStatus, self.status)

    def __str__(self) -> str:
        return f"{to_roc(self.start_date)}–{to_roc(self.end_date)}"


class CourseTransition(TransitionColumnsMixin, AppModel):
    """Who moved a course from one status to the next, and when (with a note)."""

    __tablename__ = "course_transition"
    __label__ = _l("Course history")
    __table_args__ = (Index("ix_course_transition_course", "course_id", "id"), {"sqlite_autoincrement": True})

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    course_id: Mapped[int] = mapped_column(ForeignKey("course.id", ondelete="CASCADE"), nullable=False)

    course: Mapped[Course] = relationship(back_populates="transitions")

    @classmethod
    def scope_clause(cls, scope):
        return cls.course_id.in_(select(Course.id).where(Course.scope_clause(scope)))
