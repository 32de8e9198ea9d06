"""成癮醫療業務統計 (A11, issue 19 part 5): every figure of every section against an independent
count over a small hand-built world (plain Python over the world's own description, not the
report's SQL), scope both ways, the cache invalidated by a write, bad input never a 500.

The world: two test institutions (甲 in 臺北市, 乙 in 高雄市) and seven cases around ROC 110
(2021), a year the demo data has no case in. Figures are read in a facility scope of the two
institutions (nothing else in the shared test database can reach them), and through the
screens and the API for the roles that meet them."""

from __future__ import annotations

import datetime as dt
import io
from dataclasses import dataclass, field

import pytest
from dateutil.relativedelta import relativedelta

from core.data.scope import Scope, ScopeKind
from domain.addiction import reports
from domain.addiction.reports import compute_section, report_section
from models.addiction.case import Case, ReferralSource, SubstanceCategory
from models.addiction.course import Course, CourseTransition
from models.addiction.instrument import AssessmentResponse, Instrument
from models.addiction.record import TreatmentRecord
from models.registry.institution import Institution
from models.registry.practitioner import ServiceAssignment
from models.registry.reference import County
from tests.addiction import claims_world as w

YEAR = 2021
ROC = YEAR - 1911
TODAY = dt.date(2026, 12, 1)


@dataclass
class C:
    """One case of the world, with its one course, its records, assessments and history."""

    inst: str  # "a" or "b"
    substance: str
    referral: str
    opened: dt.date
    closed: dt.date | None = None
    course: tuple[dt.date, dt.date] | None = None
    status: str = "active"
    stopped_at: dt.datetime | None = None  # UTC, the step out of 進行中
    records: list[tuple[dt.date, str]] = field(default_factory=list)
    initial: dt.date | None = None
    follow_up: dt.date | None = None


D = dt.date
LAB = "lab_test"
PSY = "individual_psychotherapy"
WORLD = [
    # 1 drug, self, opened on the 31st (retention dates clamp to the month's end).
    C("a", "drug", "self", D(2021, 1, 31), course=(D(2021, 2, 1), D(2022, 1, 31)),
      records=[(D(2021, 2, 10), PSY), (D(2021, 3, 10), PSY), (D(2021, 3, 20), PSY), (D(2021, 4, 10), LAB),
               (D(2021, 5, 10), PSY), (D(2021, 8, 15), PSY)],
      initial=D(2021, 2, 10), follow_up=D(2021, 5, 1)),
    # 2 alcohol, deferred prosecution: interrupted 110/07/20, closed 110/08/01.
    C("a", "alcohol", "deferred_prosecution", D(2021, 3, 15), closed=D(2021, 8, 1),
      course=(D(2021, 3, 15), D(2022, 3, 14)), status="interrupted", stopped_at=dt.datetime(2021, 7, 20, 8),
      records=[(D(2021, 3, 20), PSY), (D(2021, 4, 5), PSY), (D(2021, 4, 25), PSY), (D(2021, 6, 30), PSY)],
      initial=D(2021, 4, 15)),
    # 3 both, drunk driving: opened in 2020, completed 110/10/31 (00:30 UTC = 08:30 Taipei).
    C("a", "both", "drunk_driving", D(2020, 11, 1), course=(D(2020, 11, 1), D(2021, 10, 31)),
      status="completed", stopped_at=dt.datetime(2021, 10, 31, 0, 30),
      records=[(D(2021, 1, 5), PSY), (D(2021, 2, 5), PSY), (D(2021, 9, 5), PSY)]),
    # 4 closed before the year: in no figure of it.
    C("a", "drug", "other", D(2019, 5, 1), closed=D(2020, 6, 30), course=(D(2019, 5, 1), D(2020, 4, 30)),
      status="completed", stopped_at=dt.datetime(2020, 4, 30, 2), records=[(D(2019, 6, 1), PSY)]),
    # 5 drug, self, opened in December: one month planned, none held; nothing assessed.
    C("a", "drug", "self", D(2021, 12, 20), course=(D(2021, 12, 20), D(2022, 12, 19))),
    # 6 alcohol, self, at 乙 (高雄市): follow-up late.
    C("b", "alcohol", "self", D(2021, 6, 1), course=(D(2021, 6, 1), D(2022, 5, 31)),
      records=[(D(2021, 6, 2), PSY), (D(2021, 7, 2), PSY)], initial=D(2021, 6, 1), follow_up=D(2021, 9, 15)),
    # 7 interrupted at 2020-12-31 17:00 UTC, which is 110/01/01 01:00 in Taipei: in 2021.
    C("a", "drug", "self", D(2020, 6, 1), course=(D(2020, 6, 1), D(2021, 5, 31)), status="interrupted",
      stopped_at=dt.datetime(2020, 12, 31, 17), records=[(D(2020, 12, 15), PSY)]),
    # 8 drug, self, opened 110/12/15, interrupted 111/01/20, never closed: its last record
    # (12/20) is before its 3-month day, so it is not retained, whatever other cases' days are.
    C("a", "drug", "self", D(2021, 12, 15), course=(D(2021, 12, 15), D(2022, 12, 14)), status="interrupted",
      stopped_at=dt.datetime(2022, 1, 20, 2), records=[(D(2021, 12, 20), PSY)]),
]  # fmt: skip


# ------------------------------------------------------------------ independent counts
def first_last(year=YEAR):
    return D(year, 1, 1), D(year, 12, 31)


def taipei_day(moment: dt.datetime) -> dt.date:
    return (moment + dt.timedelta(hours=8)).date()


def expect_cases(world, year=YEAR, today=TODAY):
    first, last = first_last(year)
    cut = min(last, today)
    out = {"substance": {}, "referral": {}}
    for c in world:
        opened = first <= c.opened <= last
        active = c.opened <= cut and (c.closed is None or c.closed >= first)
        for kind, key in (("substance", c.substance), ("referral", c.referral)):
            cell = out[kind].setdefault(key, [0, 0])
            cell[0] += opened
            cell[1] += active
    return out


def expect_courses(world, year=YEAR):
    first, last = first_last(year)
    out = {}
    for c in world:
        cell = out.setdefault(c.substance, [0, 0, 0])
        if c.course and first <= c.course[0] <= last:
            cell[0] += 1
        if c.stopped_at and first <= taipei_day(c.stopped_at) <= last:
            cell[1 if c.status == "completed" else 2] += 1
    return out


def expect_attendance(world, year=YEAR, today=TODAY):
    first, last = first_last(year)
    out = {}
    for c in world:
        if not c.course or c.course[0] > min(last, today) or c.course[1] < first:
            continue
        end = c.course[1]
        if c.stopped_at and taipei_day(c.stopped_at) < end:
            end = taipei_day(c.stopped_at)
        ws, we = max(c.course[0], first), min(end, last, today)
        months = []
        day = D(ws.year, ws.month, 1)
        while we >= ws and day <= we:
            months.append((day.year, day.month))
            day += relativedelta(months=1)
        sessions = [d for d, kind in c.records if kind != LAB and ws <= d <= we]
        held = {(d.year, d.month) for d in sessions}
        cell = out.setdefault(c.substance, [0, 0, 0, 0])
        cell[0] += bool(months)
        cell[1] += len(months)
        cell[2] += len(held)
        cell[3] += len(sessions)
    return out


def expect_retention(world, year=YEAR, today=TODAY):
    first, last = first_last(year)
    out = {}
    for c in world:
        if not first <= c.opened <= last:
            continue
        cell = out.setdefault(c.substance, {"cohort": 0, **{m: [0, 0] for m in (3, 6, 12)}})
        cell["cohort"] += 1
        for m in (3, 6, 12):
            t = c.opened + relativedelta(months=m)
            if t > today:
                continue
            cell[m][0] += 1
            not_closed = c.closed is None or c.closed > t
            covering = c.course and c.course[0] <= t <= c.course[1]
            going = c.status == "active" or any(d >= t for d, _ in c.records)
            cell[m][1] += bool(not_closed and covering and going)
    return out


def expect_assessments(world, year=YEAR, today=TODAY, days=14, months=3):
    first, last = first_last(year)
    out = {}
    for c in world:
        if not c.course or not first <= c.course[0] <= last:
            continue
        start = c.course[0]
        due = start + relativedelta(months=months)
        cell = out.setdefault(c.substance, [0] * 8)
        cell[0] += 1
        cell[1] += c.initial is not None
        cell[2] += c.initial is not None and c.initial <= start + dt.timedelta(days=days)
        cell[3] += due <= today
        cell[4] += c.follow_up is not None and c.follow_up <= due
        cell[5] += c.follow_up is not None and c.follow_up > due
        cell[6] += c.follow_up is None and due < today
        # The due list (A3): in progress, and the initial missing or the follow-up due and missing.
        cell[7] += c.status == "active" and (
            c.initial is None or (due <= today and c.follow_up is None)
        )
    return out


def by_key(rows):
    return {r["key"]: r for r in rows}


# ------------------------------------------------------------------ the world
@dataclass
class Built:
    a: int
    b: int
    khh: int
    tpe: int


def _response_template(db, purpose):
    """A stored demo response of a required instrument (answers, result and spec the engine
    computed), reused so that every stored score still recomputes the same."""
    return (
        db.session.query(AssessmentResponse).join(Instrument, Instrument.id == AssessmentResponse.instrument_id)
        .filter(Instrument.purpose == purpose).order_by(AssessmentResponse.id).first()
    )  # fmt: skip


def add_case(db, inst_id, c: C):
    author = (
        db.session.query(ServiceAssignment)
        .filter_by(institution_id=inst_id)
        .first()
        .practitioner_id
    )
    person = w.patient(db)
    row = Case(patient_id=person.id, institution_id=inst_id, opened_on=c.opened, substance_category=c.substance,
               referral_source=c.referral, eligibility="general", status="closed" if c.closed else "open",
               closed_on=c.closed, close_reason="結案" if c.closed else None)  # fmt: skip
    db.session.add(row)
    db.session.flush()
    if c.course:
        course = Course(case_id=row.id, institution_id=inst_id, start_date=c.course[0], end_date=c.course[1],
                        status=c.status)  # fmt: skip
        db.session.add(course)
        db.session.flush()
        start = dt.datetime.combine(c.course[0], dt.time(1, 30))
        db.session.add(
            CourseTransition(course_id=course.id, from_status=None, to_status="active", at=start)
        )
        if c.stopped_at:
            db.session.add(CourseTransition(course_id=course.id, from_status="active", to_status=c.status,
                                            at=c.stopped_at))  # fmt: skip
        for day, kind in c.records:
            db.session.add(TreatmentRecord(course_id=course.id, case_id=row.id, institution_id=inst_id,
                                           executed_on=day, author_id=author, profession="psychologist", kind=kind,
                                           content={"topic": "測試"}))  # fmt: skip
        for purpose, day in (("initial", c.initial), ("follow_up", c.follow_up)):
            if day is None:
                continue
            t = _response_template(db, purpose)
            db.session.add(AssessmentResponse(version_id=t.version_id, instrument_id=t.instrument_id,
                                              course_id=course.id, case_id=row.id, institution_id=inst_id,
                                              answered_on=day, author_id=author, answers=t.answers, result=t.result,
                                              spec=t.spec, total=t.total, band=t.band))  # fmt: skip
    db.session.flush()
    return row


@pytest.fixture(scope="module")
def world(app):
    from core.extensions import db
    from core.security.roles import TREATMENT

    with app.app_context():
        a = db.session.query(Institution).filter_by(name="統計測試甲院").one_or_none()
        if a is None:
            a, b = w.institution(db, "TPE"), w.institution(db, "KHH")
            a.name, b.name = "統計測試甲院", "統計測試乙院"
            w.practitioner(db, a), w.practitioner(db, b)
            db.session.flush()
            for c in WORLD:
                add_case(db, a.id if c.inst == "a" else b.id, c)
            db.session.commit()
            w.user(app, db, "report_staff_a", TREATMENT, inst=a)
        b = db.session.query(Institution).filter_by(name="統計測試乙院").one()
        built = Built(a.id, b.id, db.session.query(County).filter_by(code="KHH").one().id,
                      db.session.query(County).filter_by(code="TPE").one().id)  # fmt: skip
        db.session.remove()
        yield built


def mine(world_ids) -> Scope:
    return Scope(kind=ScopeKind.FACILITY, institution_ids=frozenset(world_ids))


# ------------------------------------------------------------------ every figure
def test_a11_cases_opened_and_active_by_substance_and_referral_source(db, world):
    result = compute_section("cases", YEAR, mine([world.a, world.b]), TODAY)
    expected = expect_cases(WORLD)
    for kind, rows, enum in (("substance", result["by_substance"], SubstanceCategory),
                             ("referral", result["by_referral"], ReferralSource)):  # fmt: skip
        rows = by_key(rows)
        for member in enum:
            opened, active = expected[kind].get(member.value, [0, 0])
            assert (rows[member.value]["opened"], rows[member.value]["active"]) == (
                opened,
                active,
            ), member
        assert rows["total"]["opened"] == sum(v[0] for v in expected[kind].values()) == 5
        assert rows["total"]["active"] == sum(v[1] for v in expected[kind].values()) == 7
    assert by_key(result["by_substance"])["drug"]["active"] == 4  # cases 1, 5, 7, 8 (4 closed in 2020)


def test_a11_courses_started_completed_interrupted(db, world):
    rows = by_key(compute_section("courses", YEAR, mine([world.a, world.b]), TODAY)["rows"])
    expected = expect_courses(WORLD)
    for member in SubstanceCategory:
        started, completed, interrupted = expected.get(member.value, [0, 0, 0])
        row = rows[member.value]
        assert (row["started"], row["completed"], row["interrupted"]) == (
            started,
            completed,
            interrupted,
        )
    # Case 7's interruption at 2020-12-31 17:00 UTC is on 110/01/01 in Taipei.
    assert rows["drug"]["interrupted"] == 1 and rows["total"]["interrupted"] == 2
    assert rows["total"]["completion_rate"] == reports.percent(1, 3) == "33.33"


def test_a11_attendance_months_held_against_months_planned(db, world):
    rows = by_key(compute_section("attendance", YEAR, mine([world.a, world.b]), TODAY)["rows"])
    expected = expect_attendance(WORLD)
    for member in SubstanceCategory:
        courses, planned, held, records = expected.get(member.value, [0, 0, 0, 0])
        row = rows[member.value]
        assert (row["courses"], row["planned"], row["held"], row["records"]) == (
            courses,
            planned,
            held,
            records,
        )
        assert row["rate"] == reports.percent(held, planned)
    # Case 1: Feb 2021 – Dec 2021 planned (11 months), held in Feb, Mar, May, Aug (April's
    # record is a lab test); the two March sessions make one month.
    only_1 = expect_attendance(WORLD[:1])["drug"]
    assert only_1 == [1, 11, 4, 5]
    total = rows["total"]
    assert total["rate"] == reports.percent(total["held"], total["planned"])


def test_a11_retention_at_3_6_and_12_months(db, world):
    rows = by_key(compute_section("retention", YEAR, mine([world.a, world.b]), TODAY)["rows"])
    expected = expect_retention(WORLD)
    for member in SubstanceCategory:
        cell = expected.get(member.value, {"cohort": 0, 3: [0, 0], 6: [0, 0], 12: [0, 0]})
        row = rows[member.value]
        assert row["cohort"] == cell["cohort"]
        for m in (3, 6, 12):
            assert (row[f"due_{m}"], row[f"retained_{m}"]) == tuple(cell[m]), (member, m)
            assert row[f"rate_{m}"] == reports.percent(*reversed(cell[m]))
    # Case 2 (alcohol): still treated at 3 months (a record on 6/30 after 6/15), closed by 6.
    assert rows["alcohol"]["retained_3"] == 2 and rows["alcohol"]["retained_6"] == 1


def test_a11_retention_counts_only_the_months_that_have_come(db, world):
    """Cases opened in the year whose 12-month day is after today are not due (not lost)."""
    rows = by_key(
        compute_section("retention", YEAR, mine([world.a, world.b]), D(2022, 3, 1))["rows"]
    )
    expected = expect_retention(WORLD, today=D(2022, 3, 1))
    assert rows["total"]["due_12"] == sum(v[12][0] for v in expected.values()) == 1  # case 1 only
    assert rows["total"]["due_3"] == sum(v[3][0] for v in expected.values()) == 3


def test_a11_assessments_on_time(db, world):
    result = compute_section("assessments", YEAR, mine([world.a, world.b]), TODAY)
    rows = by_key(result["rows"])
    expected = expect_assessments(WORLD)
    names = ("courses", "initial_done", "initial_on_time", "follow_up_due", "follow_up_on_time",
             "follow_up_late", "follow_up_overdue", "on_due_list")  # fmt: skip
    for member in SubstanceCategory:
        cell = expected.get(member.value, [0] * 8)
        assert tuple(rows[member.value][n] for n in names) == tuple(cell), member
    assert rows["total"]["on_due_list"] == 1  # case 5: in progress, no initial assessment
    assert rows["total"]["initial_rate"] == reports.percent(2, 5)  # 8: interrupted, never assessed


# ------------------------------------------------------------------ scope, both ways
def _api(client, headers, section, **params):
    return client.get(
        f"/api/v1/addictionreport/{section}", query_string={"year": ROC, **params}, headers=headers
    )


def test_a11_bureau_sees_its_county_only(app, db, world, api_as):
    """Scope both ways: 高雄市's bureau reads 高雄市's figures (equal to the computation over
    its county), a case at 甲 (臺北市) does not move them and one at 乙 does; naming another
    county is refused; the Ministry naming 高雄市 reads the same figures. The cases written
    here are of ROC 111, so the world's ROC 110 stays as described."""
    client, headers = api_as("bureau_khh")
    year = ROC + 1
    before = _api(client, headers, "cases", year=year)
    assert before.status_code == 200, before.text
    assert before.json["scope"]["county"] == "KHH" and before.json["year"] == year
    khh = Scope(kind=ScopeKind.COUNTY, county_ids=frozenset([world.khh]))
    assert before.json["by_substance"] == compute_section("cases", YEAR + 1, khh)["by_substance"]
    add_case(db, world.a, C("a", "drug", "self", D(2022, 7, 1)))
    db.session.commit()
    same = _api(client, headers, "cases", year=year).json
    assert by_key(same["by_substance"])["drug"] == by_key(before.json["by_substance"])["drug"]
    add_case(db, world.b, C("b", "drug", "self", D(2022, 7, 1)))
    db.session.commit()
    after = _api(client, headers, "cases", year=year).json
    assert (
        by_key(after["by_substance"])["drug"]["opened"]
        == by_key(before.json["by_substance"])["drug"]["opened"] + 1
    )
    # Another county, named: refused; the ministry naming 高雄市 gets the same figures.
    assert _api(client, headers, "cases", county="TPE").status_code == 403
    moh, moh_headers = api_as("ministry")
    assert (
        _api(moh, moh_headers, "cases", year=year, county="KHH").json["by_substance"]
        == after["by_substance"]
    )
    national = _api(moh, moh_headers, "cases", year=year).json
    assert national["scope"]["kind"] == "national"
    assert (
        by_key(national["by_substance"])["total"]["opened"]
        >= by_key(after["by_substance"])["total"]["opened"]
    )


def test_a11_treatment_staff_see_their_own_institution_only(app, db, world, api_as, login_as):
    """Treatment staff read their own institutions' figures (counts of cases they see row by
    row anyway: the seed lists 相關報表統計 among the institutions' functions); never a county."""
    client, headers = api_as("report_staff_a")
    answer = _api(client, headers, "attendance")
    assert answer.status_code == 200
    assert answer.json["rows"] == compute_section("attendance", YEAR, mine([world.a]))["rows"]
    expected = expect_attendance([c for c in WORLD if c.inst == "a"])
    assert by_key(answer.json["rows"])["drug"]["planned"] == expected["drug"][1]
    assert _api(client, headers, "attendance", county="TPE").status_code == 403
    page = login_as("report_staff_a").get(f"/addictionreport/?year={ROC}")
    assert (
        page.status_code == 200 and "統計測試甲院" in page.text and "統計測試乙院" not in page.text
    )


@pytest.mark.parametrize("username", ["office", "facility_tpe", "helpdesk"])
def test_a11_cessation_only_and_helpdesk_accounts_get_404(
    app, db, world, login_as, api_as, username
):
    client = login_as(username)
    for url in ("/addictionreport/", f"/addictionreport/export/cases?year={ROC}"):
        assert client.get(url).status_code in (403, 404), url
    api, headers = api_as(username)
    assert _api(api, headers, "cases").status_code in (403, 404)
    assert "/addictionreport/" not in client.get("/").text


# ------------------------------------------------------------------ cache
def test_a11_cached_until_a_write_touches_the_figures(app, db, world, monkeypatch):
    scope = mine([world.a, world.b])
    calls = []
    original = reports.SECTIONS["courses"]

    def counting(year, scope_, today):
        calls.append(year)
        return original[0](year, scope_, today)

    monkeypatch.setitem(reports.SECTIONS, "courses", (counting, original[1]))
    year = YEAR + 1  # the world's 2021 stays as described
    first = report_section("courses", year, scope)
    again = report_section("courses", year, scope)
    assert again == first and len(calls) == 1  # the second from the cache
    add_case(
        db,
        world.a,
        C("a", "alcohol", "self", D(2022, 9, 1), course=(D(2022, 9, 1), D(2023, 8, 31))),
    )
    # Uncommitted: this session computes for itself and caches nothing.
    pending = report_section("courses", year, scope)
    assert (
        by_key(pending["rows"])["alcohol"]["started"]
        == by_key(first["rows"])["alcohol"]["started"] + 1
    )
    db.session.commit()
    fresh = report_section("courses", year, scope)
    assert (
        by_key(fresh["rows"])["alcohol"]["started"]
        == by_key(first["rows"])["alcohol"]["started"] + 1
    )
    assert len(calls) == 3
    report_section("courses", year, scope)
    assert len(calls) == 3


# ------------------------------------------------------------------ bad input
BAD_YEARS = [
    "abc",
    "99999",
    "%",
    "١١٤",
    "²⁰²¹",
    "114.0",
    "-1",
    "0",
    "3000",
    "110 OR 1=1",
    "'",
    "\x00",
]


@pytest.mark.parametrize("text", BAD_YEARS)
def test_a11_bad_year_is_a_400_naming_the_field(app, db, world, api_as, text):
    client, headers = api_as("ministry")
    answer = client.get(
        "/api/v1/addictionreport/cases", query_string={"year": text}, headers=headers
    )
    assert answer.status_code == 400, answer.text
    message = answer.json["message"]
    if text == "\x00":  # refused before any view by core/web/badinput.py, in zh_TW
        assert isinstance(message, str) and message
    else:
        assert "民國年" in message["year"][0] and text[:20] in message["year"][0]


@pytest.mark.parametrize("text", ["abc", "99999", "%", "١١٤"])
def test_a11_bad_year_on_the_page_says_so_and_keeps_what_was_typed(app, db, world, login_as, text):
    page = login_as("ministry").get("/addictionreport/", query_string={"year": text})
    assert page.status_code == 200
    assert 'id="error"' in page.text and "民國年" in page.text
    import html

    assert html.escape(text) in page.text
    export = login_as("ministry").get("/addictionreport/export/cases", query_string={"year": text})
    assert export.status_code == 400


def test_a11_unknown_section_or_county_is_404(app, db, world, api_as, login_as):
    client, headers = api_as("ministry")
    assert _api(client, headers, "subsidy_nonexistent").status_code == 404
    assert _api(client, headers, "cases", county="ZZZ").status_code == 404
    assert login_as("ministry").get("/addictionreport/export/nothing").status_code == 404
    assert login_as("ministry").get("/addictionreport/?county=ZZZ").status_code == 404


# ------------------------------------------------------------------ screens, export, API document
def test_a11_page_shows_every_section_with_a_chart_and_an_export(app, db, world, login_as):
    page = login_as("bureau_khh").get(f"/addictionreport/?year={ROC}")
    assert page.status_code == 200
    for section in ("cases", "courses", "attendance", "retention", "assessments"):
        assert f'id="section-{section}"' in page.text and f'id="chart-{section}"' in page.text
        assert f"/addictionreport/export/{section}?year={ROC}" in page.text
    assert 'id="county"' not in page.text  # a bureau has its own county only
    assert 'id="other-reports"' in page.text
    ministry = login_as("ministry").get(f"/addictionreport/?year={ROC}&county=KHH")
    assert 'id="county"' in ministry.text and "高雄市" in ministry.text


def test_a11_report_page_links_the_subsidy_claims_report_for_the_same_year(app, db, world, login_as):
    """A11: the subsidy claimed / approved / returned report is one click from the yearly
    reports, for the year on screen, to those who may read it (not to treatment staff)."""
    for username in ("ministry", "bureau_khh"):
        page = login_as(username).get(f"/addictionreport/?year={ROC}")
        assert f"/claimreport/?year={ROC}" in page.text and "補助經費核銷統計" in page.text
    staff = login_as("report_staff_a").get(f"/addictionreport/?year={ROC}")
    assert staff.status_code == 200 and "/claimreport/" not in staff.text


def test_a11_excel_export_holds_the_section_figures(app, db, world, login_as):
    import openpyxl

    answer = login_as("report_staff_a").get(f"/addictionreport/export/courses?year={ROC}")
    assert answer.status_code == 200
    sheet = openpyxl.load_workbook(io.BytesIO(answer.data)).worksheets[0]
    values = [[c.value for c in row] for row in sheet.iter_rows()]
    assert any(isinstance(v, str) and "110" in v for v in values[0])
    expected = by_key(compute_section("courses", YEAR, mine([world.a]))["rows"])
    total_row = next(r for r in values if r[0] == "合計" or r[0] == "Total")
    assert total_row[1:4] == [expected["total"]["started"], expected["total"]["completed"],
                              expected["total"]["interrupted"]]  # fmt: skip
    every = login_as("report_staff_a").get(f"/addictionreport/export/all?year={ROC}")
    assert len(openpyxl.load_workbook(io.BytesIO(every.data)).worksheets) == len(reports.SECTIONS)


def test_a11_api_is_in_the_openapi_document(app, api_as):
    client, headers = api_as("ministry")
    spec = client.get("/api/v1/_openapi", headers=headers).json
    path = spec["paths"]["/api/v1/addictionreport/{section}"]["get"]
    assert {p["name"] for p in path["parameters"]} >= {"section", "year", "county"}
    assert "400" in path["responses"]


def test_a11_cached_figures_are_labelled_in_each_readers_language(app, db, world, login_as):
    """The cache is shared by every reader: labels are put on when read, not stored."""
    client = login_as("bureau_khh")
    client.get("/lang/zh_TW")
    assert "藥癮" in client.get(f"/addictionreport/?year={ROC}").text
    client.get("/lang/en")
    try:
        english = client.get(f"/addictionreport/?year={ROC}").text
        assert "Drug addiction" in english and "Self-referred" in english
    finally:
        client.get("/lang/zh_TW")
