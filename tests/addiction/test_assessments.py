"""Assessments of a course (A3) written through the engine: required initial and follow-up
assessments before a course is completed, refusals that store nothing, scores recomputed
from every stored response, and the scope of instruments an institution designs (A4)."""

from __future__ import annotations

import contextlib
import datetime as dt

import pytest
from dateutil.relativedelta import relativedelta
from flask import g
from flask_login import login_user
from sqlalchemy import func, select

from core.data.datamodel import ScopedInterface
from core.errors import UserError
from domain.addiction.assessments import (
    AssessmentInput,
    WriteAssessment,
    course_assessments,
    courses_due_query,
    ensure_builtins,
    follow_up_due,
    rescore_all,
)
from domain.addiction.courses import CompleteCourse
from models.addiction.course import Course
from models.addiction.instrument import AssessmentResponse, Instrument, InstrumentVersion
from models.platform.user import ScopedUser
from models.registry.practitioner import ServiceAssignment


@contextlib.contextmanager
def acting(app, db, username):
    """A request context signed in as a demo user (the commands read scope from it)."""
    with app.test_request_context(headers={"Accept-Language": "zh-TW"}):
        user = db.session.query(ScopedUser).filter_by(username=username).one()
        login_user(user)
        g.user = user  # what FAB's before_request sets
        yield


def _builtin(db, code) -> Instrument:
    return db.session.scalar(select(Instrument).where(Instrument.institution_id.is_(None), Instrument.code == code))


def _fresh_course(app, db, username="psy_tpe") -> tuple[Course, int]:
    """A course in progress at the user's institution with no assessment yet, and a staff member there."""
    user = db.session.query(ScopedUser).filter_by(username=username).one()
    institution_id = user.scope_institutions[0].id
    has_any = select(AssessmentResponse.course_id)
    course = db.session.scalar(
        select(Course).where(Course.institution_id == institution_id, Course.status == "active",
                             Course.id.not_in(has_any), Course.start_date <= dt.date.today() - dt.timedelta(days=120))
        .order_by(Course.id)
    )  # fmt: skip
    if course is None:  # make one: a course of a case of the institution
        from models.addiction.case import Case

        case = db.session.scalar(select(Case).where(Case.institution_id == institution_id).order_by(Case.id))
        course = Course(case_id=case.id, institution_id=institution_id, start_date=dt.date(2019, 1, 2),
                        end_date=dt.date(2019, 12, 31), status="active")  # fmt: skip
        db.session.add(course)
        db.session.commit()
    author = db.session.scalar(select(ServiceAssignment.practitioner_id)
                               .where(ServiceAssignment.institution_id == institution_id).limit(1))  # fmt: skip
    return course, author


INITIAL_ANSWERS = {"substances": ["meth"], "days_used": "８", "frequency": "2", "route": ["smoke"],
                   "employment": "part", "housing": "family", "legal": "deferred", "goals": ["stop", "work"]}  # fmt: skip
FOLLOW_ANSWERS = {"substances": ["none"], "days_used": 0, "frequency": "0", "employment": "full",
                  "housing": "family", "legal": "deferred", "goal_progress": "partly"}  # fmt: skip


def test_a3_builtins_are_shipped_once_with_a_published_version(app, db):
    assert ensure_builtins() == 0  # the demo seed shipped them; a second run adds nothing
    ftnd = _builtin(db, "FTND")
    assert ftnd.enabled is False and ftnd.free_use is False and "授權" in ftnd.licence
    assert all(v.status == "published" for v in _builtin(db, "BSRS5").versions)


def test_a3_a_course_is_completed_only_with_its_initial_and_follow_up_assessments(app, db):
    with acting(app, db, "psy_tpe"):
        course, author = _fresh_course(app, db)
        assert course_assessments(course).missing == ["初次評估", "追蹤評估"]
        with pytest.raises(UserError) as refused:
            CompleteCourse(course).run()
        assert "初次評估" in str(refused.value) and "追蹤評估" in str(refused.value)
        day = course.start_date + dt.timedelta(days=3)
        initial = WriteAssessment(AssessmentInput(course.id, _builtin(db, "INITIAL").id, day, author,
                                                  INITIAL_ANSWERS)).run()  # fmt: skip
        assert initial.answers["days_used"] == 8 and initial.version.instrument.code == "INITIAL"
        with pytest.raises(UserError) as refused:
            CompleteCourse(course).run()
        assert "追蹤評估" in str(refused.value) and "初次評估" not in str(refused.value)
        assert db.session.get(Course, course.id).status == "active"
        follow = follow_up_due(course)
        assert follow == course.start_date + relativedelta(months=3)
        WriteAssessment(AssessmentInput(course.id, _builtin(db, "FOLLOW_UP").id, min(follow, course.end_date), author,
                                        FOLLOW_ANSWERS)).run()  # fmt: skip
        CompleteCourse(db.session.get(Course, course.id)).run()
        assert db.session.get(Course, course.id).status == "completed"


def test_a3_the_follow_up_offset_is_configurable(app, db):
    course = db.session.scalar(select(Course).order_by(Course.id))
    with app.test_request_context():
        app.config["ADDICTION_FOLLOW_UP_MONTHS"] = 6
        try:
            assert (follow_up_due(course) - course.start_date).days in range(181, 185)
        finally:
            app.config.pop("ADDICTION_FOLLOW_UP_MONTHS")
        assert (follow_up_due(course) - course.start_date).days in range(89, 93)


@pytest.mark.parametrize("change, needle", [
    ({"answered_on": dt.date(2001, 1, 1)}, "療程"),
    ({"answered_on": dt.date.today() + dt.timedelta(days=2)}, "未來"),
    ({"answered_on": None}, "評估日期"),
    ({"author_id": 999_999_999}, "機構"),
    ({"answers": {"b1": "9"}}, "b1"),
    ({"answers": {"b1": "0", "b2": "0", "b3": "0", "b4": "0", "b5": "0"}}, "b6"),
    ({"instrument_id": "1 OR 1=1"}, ""),
    ({"course_id": -5}, ""),
])  # fmt: skip
def test_a3_a_refused_assessment_stores_nothing(app, db, change, needle):
    with acting(app, db, "psy_tpe"):
        course, author = _fresh_course(app, db)
        before = db.session.scalar(select(func.count(AssessmentResponse.id)))
        given = {"course_id": course.id, "instrument_id": _builtin(db, "BSRS5").id, "author_id": author,
                 "answered_on": course.start_date + dt.timedelta(days=1),
                 "answers": {f"b{n}": "1" for n in range(1, 7)}} | change  # fmt: skip
        with pytest.raises(UserError) as refused:
            WriteAssessment(AssessmentInput(**given)).run()
        assert needle in str(refused.value)
        assert db.session.scalar(select(func.count(AssessmentResponse.id))) == before


def test_a3_another_institutions_course_and_a_disabled_instrument_are_refused(app, db):
    with acting(app, db, "cm_khh"):
        khh_course, khh_author = _fresh_course(app, db, "cm_khh")
    with acting(app, db, "psy_tpe"):
        _course, author = _fresh_course(app, db)
        with pytest.raises(UserError) as refused:
            WriteAssessment(AssessmentInput(khh_course.id, _builtin(db, "BSRS5").id, khh_course.start_date,
                                            author, {})).run()  # fmt: skip
        assert refused.value.status == 404
        with pytest.raises(UserError) as refused:
            WriteAssessment(AssessmentInput(_course.id, _builtin(db, "FTND").id, _course.start_date, author,
                                            {})).run()  # fmt: skip
        assert "授權" in str(refused.value)


def test_a3_every_stored_score_of_the_demo_data_recomputes_the_same(app, db):
    assert db.session.scalar(select(func.count(AssessmentResponse.id))) > 0
    with app.test_request_context():
        assert list(rescore_all()) == []


def test_a3_courses_due_lists_courses_missing_an_assessment_in_scope(app, db):
    with acting(app, db, "psy_tpe"):
        due = ScopedInterface(Course).filtered_query().filter(courses_due_query()).all()
        assert due and all(c.status == "active" for c in due)
        for course in due[:20]:
            state = course_assessments(course)
            assert state.initial is None or state.follow_up_overdue
        mine = {c.institution_id for c in due}
        user = db.session.query(ScopedUser).filter_by(username="psy_tpe").one()
        assert mine <= {i.id for i in user.scope_institutions}


def test_a4_a_custom_instrument_is_seen_by_its_institution_its_county_when_shared_and_not_elsewhere(app, db):
    psy = db.session.query(ScopedUser).filter_by(username="psy_tpe").one()
    institution = psy.scope_institutions[0]
    custom = Instrument(institution_id=institution.id, code="MY-LIKERT", title="本院滿意度問卷", sharing="private")
    custom.versions = [InstrumentVersion(number=1, status="published", spec="x",
                                         definition={"items": [{"linkId": "q1", "type": "string"}]})]  # fmt: skip
    db.session.add(custom)
    db.session.commit()
    try:
        def seen(username):
            with acting(app, db, username):
                return ScopedInterface(Instrument).get(custom.id) is not None

        assert seen("psy_tpe") and not seen("cm_khh") and seen("ministry")
        custom.sharing = "county"
        db.session.commit()
        assert seen("bureau_tpe") and not seen("bureau_khh") and not seen("cm_khh")
        custom.sharing = "national"
        db.session.commit()
        assert seen("cm_khh")
    finally:
        db.session.delete(custom)
        db.session.commit()
