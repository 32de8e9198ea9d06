"""Courses (療程) of a case, rule A2:

- a course has a start date and an end date that defaults to start + 1 year (a calendar year:
  2024-02-29 → 2025-02-28); any length is allowed, the end never before the start;
- two courses of the same case never overlap: the refusal names the other course's dates;
- a course is 進行中 until it is 已完成 or 中斷 (with a reason), each step in its history;
- its institution is its case's, never one from input.
"""

from __future__ import annotations

import datetime as dt

from dateutil.relativedelta import relativedelta
from flask_babel import gettext
from sqlalchemy import select

from core.commands import Command
from core.data import rules
from core.data.datamodel import ScopedInterface
from core.dates import to_roc
from core.errors import UserError
from core.extensions import db
from core.workflow import TransitionCommand, TransitionRefused, Workflow
from domain.addiction.assessments import check_course_can_complete
from models.addiction.case import Case, CaseStatus
from models.addiction.course import Course, CourseStatus, CourseTransition

COURSE_START_LABEL = rules.field_rules(Course)["start_date"].label


class CourseRefused(UserError):
    """A course the rules refuse; str() is the zh_TW message."""


def default_end(start: dt.date) -> dt.date:
    """A2: one calendar year after the start (a 29 February start ends on 28 February)."""
    return start + relativedelta(years=1)


def check_course(case_id: int, start: dt.date, end: dt.date, exclude_id: int | None = None) -> None:
    """A2: the dates in order and no other course of the case overlapping them."""
    _values, errors = rules.check_values(Course, {"start_date": start, "end_date": end})
    if errors:
        raise CourseRefused(next(iter(errors.values())))
    stmt = select(Course.start_date, Course.end_date).where(
        Course.case_id == case_id, Course.start_date <= end, Course.end_date >= start
    )
    if exclude_id is not None:
        stmt = stmt.where(Course.id != exclude_id)
    other = db.session.execute(stmt.order_by(Course.start_date).limit(1)).first()
    if other is not None:
        raise CourseRefused(
            gettext(
                "This course overlaps the case's course of %(start)s–%(end)s: "
                "two courses of the same case cannot overlap.",
                start=to_roc(other.start_date), end=to_roc(other.end_date),
            )  # fmt: skip
        )


def _lock_case(case_id: int) -> None:
    """Serialise course writes of one case, so two at once cannot both pass the overlap check."""
    from sqlalchemy import update

    db.session.execute(
        update(Case).where(Case.id == case_id).values(status=Case.status)
        .execution_options(synchronize_session=False)
    )  # fmt: skip


class StartCourse(Command):
    """A new course of a case in the user's scope (the case read through scope, 404 otherwise)."""

    def __init__(self, case_id, start_date: dt.date | None, end_date: dt.date | None = None):
        self.case_id, self.start_date, self.end_date = case_id, start_date, end_date
        self.case: Case | None = None

    def validate(self) -> None:
        valid_id = isinstance(self.case_id, int) and not isinstance(self.case_id, bool)
        self.case = ScopedInterface(Case).get(self.case_id) if valid_id else None
        if self.case is None:
            raise CourseRefused(
                gettext(
                    "The selected %(what)s does not exist or is outside your data scope.",
                    what=str(Case.__label__),
                ),
                status=404,
            )
        if self.case.status != CaseStatus.OPEN.value:
            raise CourseRefused(gettext("A course can be started only in an open case."))
        if self.start_date is None:
            raise CourseRefused(gettext("Please fill in %(field)s.", field=str(COURSE_START_LABEL)))
        given = {"start_date": self.start_date}
        if self.end_date is not None:
            given["end_date"] = self.end_date
        _values, errors = rules.check_values(Course, given)
        if errors:
            raise CourseRefused(next(iter(errors.values())))
        if self.end_date is None:
            self.end_date = default_end(self.start_date)

    def execute(self) -> Course:
        _lock_case(self.case.id)
        check_course(self.case.id, self.start_date, self.end_date)
        course = Course(
            case_id=self.case.id, institution_id=self.case.institution_id,
            start_date=self.start_date, end_date=self.end_date, status=CourseStatus.ACTIVE.value,
        )  # fmt: skip
        db.session.add(course)
        db.session.flush()
        COURSE_WORKFLOW.record(course, None, CourseStatus.ACTIVE.value)
        ScopedInterface(Course).enforce_scope([course])
        return course


class ChangeCourseDates(Command):
    """New dates of a course (A2's rules again, the course itself left out of the overlap)."""

    def __init__(self, course: Course, start_date: dt.date, end_date: dt.date | None):
        self.course, self.start_date = course, start_date
        self.end_date = end_date if end_date is not None else default_end(start_date)

    def execute(self) -> Course:
        _lock_case(self.course.case_id)
        check_course(self.course.case_id, self.start_date, self.end_date, exclude_id=self.course.id)
        self.course.start_date, self.course.end_date = self.start_date, self.end_date
        ScopedInterface(Course).enforce_scope([self.course])
        return self.course


def _history(course, **values) -> CourseTransition:
    return CourseTransition(course=course, **values)


COURSE_WORKFLOW = Workflow(
    Course, "status", _history,
    {
        "complete": ((CourseStatus.ACTIVE.value,), CourseStatus.COMPLETED.value),
        "interrupt": ((CourseStatus.ACTIVE.value,), CourseStatus.INTERRUPTED.value),
    },
    refused=lambda row, name: gettext(
        "This course is %(status)s: only a course in progress can be completed or interrupted.",
        status=row.status_label,
    ),
    stale=lambda: gettext("Someone changed this course first: reload the page and try again."),
    error=TransitionRefused,
)  # fmt: skip


class CompleteCourse(TransitionCommand):
    """進行中 → 已完成, only with the initial and follow-up assessments done (A3)."""

    workflow = COURSE_WORKFLOW
    name = "complete"

    def validate(self) -> None:
        super().validate()
        check_course_can_complete(self.row)


class InterruptCourse(TransitionCommand):
    """進行中 → 中斷, with its reason (kept on the course and in its history)."""

    workflow = COURSE_WORKFLOW
    name = "interrupt"

    def __init__(self, row, reason: str | None):
        super().__init__(row)
        self.reason = (reason or "").strip()

    def validate(self) -> None:
        super().validate()
        if not self.reason:
            raise CourseRefused(
                gettext("Please fill in %(field)s.", field=str(rules.field_rules(Course)["interrupt_reason"].label))
            )

    def note(self) -> str | None:
        return self.reason

    def apply(self) -> None:
        self.row.interrupt_reason = self.reason


def transition_actors(transitions) -> dict[int, str]:
    """Who moved each course transition, as a person reads it: the staff member's name and
    professions (王小明（心理師）), an account without a staff profile by its full name; a
    transition without an account keeps the name it was written with."""
    from models.addiction.staff import StaffLicence, StaffProfession
    from models.platform.user import ScopedUser as User
    from models.registry.practitioner import Practitioner

    user_ids = {t.user_id for t in transitions if t.user_id}
    people: dict[int, str] = {}
    if user_ids:
        rows = db.session.execute(
            select(User.id, User.first_name, User.last_name, Practitioner.id, Practitioner.name)
            .outerjoin(Practitioner, Practitioner.id == User.practitioner_id)
            .where(User.id.in_(user_ids))
        ).all()  # fmt: skip
        practitioners = {r[3] for r in rows if r[3]}
        professions: dict[int, list[str]] = {}
        if practitioners:
            for pid, profession in db.session.execute(
                select(StaffLicence.practitioner_id, StaffLicence.profession).distinct()
                .where(StaffLicence.practitioner_id.in_(practitioners))
                .order_by(StaffLicence.practitioner_id, StaffLicence.profession)
            ):  # fmt: skip
                professions.setdefault(pid, []).append(StaffProfession.label_of(profession))
        for user_id, first, last, pid, name in rows:
            if pid:
                held = "、".join(professions.get(pid, []))
                people[user_id] = f"{name}（{held}）" if held else name
            else:
                people[user_id] = " ".join(filter(None, [first, last]))
    return {t.id: people.get(t.user_id) or t.username or "" for t in transitions}
