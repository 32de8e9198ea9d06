"""The assessment screens and API (A3, A4): the course page's panel, the form rendered from a
version's definition (a Likert battery as a matrix), refusals that keep the form as typed,
the response page, per-instrument exports, the due list per county, the case's score chart,
the REST API (scores computed by the server), and FTND refused until a licence is recorded.
Another institution's course, instrument or response answers 404 by URL, form, export and API."""

from __future__ import annotations

import datetime as dt
import io
import re

import pytest
from openpyxl import load_workbook
from sqlalchemy import func, select

from core import clock
from core.dates import to_roc
from domain.addiction.scoring import spec_fingerprint
from models.addiction.case import Case
from models.addiction.course import Course
from models.addiction.instrument import AssessmentResponse, Instrument, InstrumentVersion
from models.platform.user import ScopedUser
from models.registry.institution import Institution
from models.registry.practitioner import ServiceAssignment
from tests.conftest import csrf_token, post_form, visible_text

BSRS_ANSWERS = {"b1": "1", "b2": "2", "b3": "1", "b4": "0", "b5": "1", "b6": "0"}


def _institution_id(db, username: str) -> int:
    """The first institution of a demo user's scope."""
    user = db.session.query(ScopedUser).filter_by(username=username).one()
    return user.scope_institutions[0].id


def _builtin(db, code: str) -> Instrument:
    """A shipped instrument by its code."""
    return db.session.scalar(select(Instrument).where(Instrument.institution_id.is_(None), Instrument.code == code))


def _author(db, institution_id: int) -> int:
    """A practitioner serving at the institution."""
    return db.session.scalar(select(ServiceAssignment.practitioner_id)
                             .where(ServiceAssignment.institution_id == institution_id).limit(1))  # fmt: skip


def _fresh_course(db, username: str = "psy_tpe") -> Course:
    """A course in progress at the user's institution, started over 4 months ago, with no
    assessment: made anew each time so that tests do not see each other's answers."""
    institution_id = _institution_id(db, username)
    case = db.session.scalar(select(Case).where(Case.institution_id == institution_id).order_by(Case.id))
    start = clock.today() - dt.timedelta(days=150)
    course = Course(case_id=case.id, institution_id=institution_id, start_date=start,
                    end_date=start + dt.timedelta(days=365), status="active")  # fmt: skip
    db.session.add(course)
    db.session.commit()
    return course


def _responses(db) -> int:
    """How many responses are stored."""
    db.session.expire_all()
    return db.session.scalar(select(func.count(AssessmentResponse.id)))


def _form(db, course: Course, answers: dict, day: dt.date | None = None, **extra) -> dict:
    """The assessment form as the browser posts it."""
    data = {"answered_on": to_roc(day or course.start_date + dt.timedelta(days=2)),
            "author": str(_author(db, course.institution_id)), "note": ""}  # fmt: skip
    for link, value in answers.items():
        data[f"a_{link}"] = value
    return data | extra


def _add_url(course, instrument) -> str:
    """The new-assessment URL of a course and instrument."""
    return f"/assessment/add?course={course.id}&instrument={instrument.id}"


def _custom_instrument(db, institution_id: int) -> Instrument:
    """An institution's own 5-item Likert questionnaire with one reverse item (A4), private."""
    code = f"OWN{institution_id}"
    existing = db.session.scalar(select(Instrument).where(Instrument.code == code))
    if existing is not None:
        return existing
    definition = {
        "scales": {"agree": [{"code": str(n), "display": label, "weight": n}
                             for n, label in enumerate(["非常不同意", "不同意", "普通", "同意", "非常同意"], start=1)]},
        "items": [{"linkId": f"q{n}", "type": "likert", "scale": "agree", "required": True, "text": f"自訂題 {n}"}
                  for n in range(1, 6)],
        "scoring": {"scores": [{"name": "total", "label": "總分", "items": [f"q{n}" for n in range(1, 6)],
                                "reverse": ["q5"], "bands": [{"min": 5, "max": 14, "label": "低"},
                                                             {"min": 15, "max": 25, "label": "高"}]}]},
    }  # fmt: skip
    instrument = Instrument(institution_id=institution_id, code=code, title=f"自訂問卷 {institution_id}",
                            free_use=True, enabled=True)  # fmt: skip
    db.session.add(instrument)
    db.session.flush()
    db.session.add(InstrumentVersion(instrument_id=instrument.id, number=1, status="published", definition=definition,
                                     spec=spec_fingerprint(definition), published_at=dt.datetime(2025, 1, 1)))  # fmt: skip
    db.session.commit()
    return instrument


# ------------------------------------------------------------------ A3: the course panel
def test_a3_panel_shows_required_assessments_due_overdue_then_done(app, db, login_as):
    """A3: a fresh course shows 初次評估 待完成 and 追蹤評估 逾期 with its ROC due date; the
    已完成 button is refused naming both; once the initial is in, it shows 已完成 with its
    date and a link, and the refusal names only the follow-up."""
    client = login_as("psy_tpe")
    course = _fresh_course(db)
    page = client.get(f"/course/{course.id}").text
    panel = page.split('id="course-assessments"', 1)[1].split("</table>", 1)[0]
    text = visible_text(panel)
    assert "初次評估" in text and "待完成" in text
    from dateutil.relativedelta import relativedelta

    assert "逾期" in text and to_roc(course.start_date + relativedelta(months=3)) in text
    assert "新增評估" in page and "初次評估表" in page
    # The 已完成 button's refusal names what is missing.
    refused = post_form(app, client, f"/course/complete/{course.id}", {}, follow_redirects=True).text
    assert "初次評估" in visible_text(refused) and "追蹤評估" in visible_text(refused)
    initial = _builtin(db, "INITIAL")
    answers = {"substances": "meth", "days_used": "8", "frequency": "2", "route": "smoke", "employment": "part",
               "housing": "family", "legal": "deferred", "goals": "stop"}  # fmt: skip
    saved = post_form(app, client, _add_url(course, initial), _form(db, course, answers))
    assert saved.status_code == 302 and "/assessment/show/" in saved.headers["Location"]
    page = client.get(f"/course/{course.id}").text
    panel = visible_text(page.split('id="course-assessments"', 1)[1].split("</table>", 1)[0])
    assert "已完成" in panel and to_roc(course.start_date + dt.timedelta(days=2)) in panel
    refused = post_form(app, client, f"/course/complete/{course.id}", {}, follow_redirects=True).text
    message = visible_text(refused.split('class="alert', 1)[1].split("</div>", 1)[0])
    assert "追蹤評估" in message and "初次評估" not in message
    assert db.session.get(Course, course.id).status == "active"


def test_a3_panel_lists_other_assessments_with_flags_in_words(app, db, login_as):
    """A3: other assessments are listed in date order with total, band, and a flag as a red label."""
    client = login_as("psy_tpe")
    course = _fresh_course(db)
    bsrs = _builtin(db, "BSRS5")
    for day, b6 in ((5, "3"), (3, "0")):
        answers = BSRS_ANSWERS | {"b6": b6}
        response = post_form(app, client, _add_url(course, bsrs),
                             _form(db, course, answers, course.start_date + dt.timedelta(days=day)))  # fmt: skip
        assert response.status_code == 302
    page = client.get(f"/course/{course.id}").text
    rows = re.findall(r'<tr class="other-assessment">(.*?)</tr>', page, re.S)
    assert len(rows) == 2
    first, second = (visible_text(r) for r in rows)
    assert first.startswith(to_roc(course.start_date + dt.timedelta(days=3))) and "5" in first
    assert "label-danger" in rows[1] and "自殺想法" in second and "label-danger" not in rows[0]
    show = client.get(re.search(r'href="(/assessment/show/\d+)"', rows[1]).group(1)).text
    assert "自殺想法" in visible_text(show.split('id="assessment-flags"', 1)[1].split("</div>", 1)[0])


# ------------------------------------------------------------------ A4: the form
def test_a4_form_round_trip_with_a_likert_matrix(app, db, login_as):
    """A4: PHQ-9 renders its 9 items as one matrix of radios over the shared scale; the saved
    response shows answers as labels, the server's total, band, flag, version and spec."""
    client = login_as("psy_tpe")
    course = _fresh_course(db)
    phq = _builtin(db, "PHQ-9")
    html = client.get(_add_url(course, phq)).text
    matrices = re.findall(r'<table class="[^"]*likert-matrix">(.*?)</table>', html, re.S)
    assert len(matrices) == 1
    assert len(re.findall(r'class="assessment-item', matrices[0])) == 9
    assert len(re.findall(r'type="radio"', matrices[0])) == 9 * 4 and "一半以上的天數" in matrices[0]
    assert client.get("/assessment/add").status_code == 302  # the list's +: to the courses
    assert client.get(f"/assessment/add?course={course.id}").status_code == 302
    assert "nonce=" in html and 'name="answered_on"' in html and to_roc(clock.today()) in html
    answers = {f"p{n}": "2" for n in range(1, 9)} | {"p9": "1"}
    before = _responses(db)
    saved = post_form(app, client, _add_url(course, phq), _form(db, course, answers, total="0"))
    assert saved.status_code == 302 and _responses(db) == before + 1
    response = db.session.scalar(select(AssessmentResponse).order_by(AssessmentResponse.id.desc()))
    assert response.total == 17 and response.band == "中重度" and response.version.instrument.code == "PHQ-9"
    show = client.get(saved.headers["Location"]).text
    text = visible_text(show)
    assert "一半以上的天數" in text and "有幾天" in text and "17" in text and "中重度" in text
    assert "第 9 題" in text and response.spec in text
    assert re.search(r'id="assessment-version">\s*1\s*<', show)


def test_a4_a_correction_keeps_the_version(app, db, login_as):
    """A4: correcting a response keeps the version it was answered on and rescored answers."""
    client = login_as("psy_tpe")
    course = _fresh_course(db)
    saved = post_form(app, client, _add_url(course, _builtin(db, "BSRS5")), _form(db, course, BSRS_ANSWERS))
    pk = int(saved.headers["Location"].rsplit("/", 1)[1])
    version_id = db.session.get(AssessmentResponse, pk).version_id
    edit = client.get(f"/assessment/edit/{pk}").text
    assert re.search(r'name="a_b2" value="2"[^>]*checked', edit)
    corrected = post_form(app, client, f"/assessment/edit/{pk}", _form(db, course, BSRS_ANSWERS | {"b1": "4"}))
    assert corrected.status_code == 302
    db.session.expire_all()
    row = db.session.get(AssessmentResponse, pk)
    assert row.version_id == version_id and row.total == 8 and row.answers["b1"] == "4"


@pytest.mark.parametrize("instrument, answers, item, needle", [
    # an answer to an item hidden by the earlier answers (no use: no route, no needles)
    ("INITIAL", {"substances": "meth", "days_used": "８", "frequency": "0", "route": "smoke", "employment": "part",
                 "housing": "family", "legal": "deferred", "goals": "stop"}, "route", "不須作答"),
    # out of range (0–30 days), with the item's own message
    ("INITIAL", {"substances": "meth", "days_used": "31", "frequency": "2", "employment": "part",
                 "housing": "family", "legal": "deferred", "goals": "stop"}, "days_used", "請填 0 到 30 天"),
    # a required item left empty
    ("BSRS5", {k: v for k, v in BSRS_ANSWERS.items() if k != "b3"}, "b3", "必填"),
    # hostile input: a formula, a percent sign, a huge text where a number is asked
    ("INITIAL", {"substances": "meth", "days_used": "=1+1", "frequency": "2", "employment": "part",
                 "housing": "family", "legal": "deferred", "goals": "stop"}, "days_used", "數字"),
    ("INITIAL", {"substances": "meth", "days_used": "%", "frequency": "2", "employment": "part",
                 "housing": "family", "legal": "deferred", "goals": "stop"}, "days_used", "數字"),
    ("INITIAL", {"substances": "meth", "days_used": "9" * 100_000, "frequency": "2", "employment": "part",
                 "housing": "family", "legal": "deferred", "goals": "stop"}, "days_used", "數字"),
    ("BSRS5", BSRS_ANSWERS | {"b1": "9"}, "b1", "選項"),
])  # fmt: skip
def test_a3_a4_refused_answers_keep_the_form_and_store_nothing(app, db, login_as, instrument, answers, item, needle):
    """A3/A4: a refused answer is shown next to its item in zh_TW, every other answer stays
    as typed, and nothing is stored (never a 500)."""
    client = login_as("psy_tpe")
    course = _fresh_course(db)
    before = _responses(db)
    response = post_form(app, client, _add_url(course, _builtin(db, instrument)),
                         _form(db, course, answers, note="=HYPERLINK(\"x\")"))  # fmt: skip
    assert response.status_code == 200 and _responses(db) == before
    html = response.text
    errors = re.findall(rf'<p class="help-block text-danger item-error" data-for="{item}"[^>]*>(.*?)</p>', html, re.S)
    assert errors and needle in visible_text(errors[0]), visible_text(html)[:2000]
    # Everything else as typed: a radio still checked, a text kept, the note kept.
    kept = [k for k in answers if k != item][0]
    assert re.search(rf'name="a_{kept}" value="{re.escape(answers[kept])}"[^>]*checked', html) or \
        f'value="{answers[kept]}"' in html  # fmt: skip
    assert "=HYPERLINK(&#34;x&#34;)" in html or '=HYPERLINK("x")' in html or "=HYPERLINK(&quot;x&quot;)" in html


def test_a3_a_refused_date_or_assessor_is_flashed_with_the_form_kept(app, db, login_as):
    """A3: a date outside the course (another UserError) is flashed; the answers stay."""
    client = login_as("psy_tpe")
    course = _fresh_course(db)
    before = _responses(db)
    response = post_form(app, client, _add_url(course, _builtin(db, "BSRS5")),
                         _form(db, course, BSRS_ANSWERS, day=dt.date(2001, 1, 1)))  # fmt: skip
    assert response.status_code == 200 and _responses(db) == before
    assert "療程" in visible_text(response.text) and re.search(r'name="a_b2" value="2"[^>]*checked', response.text)
    bad_date = post_form(app, client, _add_url(course, _builtin(db, "BSRS5")),
                         _form(db, course, BSRS_ANSWERS) | {"answered_on": "１１４／１３／９９"})  # fmt: skip
    assert bad_date.status_code == 200 and _responses(db) == before


def test_a4_hidden_items_carry_their_conditions_for_the_script(app, db, login_as):
    """A4: an item with enableWhen is rendered hidden (and its inputs off) until its condition
    holds, with its condition for the page's script."""
    client = login_as("psy_tpe")
    course = _fresh_course(db)
    html = client.get(_add_url(course, _builtin(db, "INITIAL"))).text
    box = re.search(r'<div class="form-group assessment-item"[^>]*data-link="shared_needles"[^>]*>', html).group(0)
    assert "hidden" in box and "inject" in box.replace("&#34;", '"').replace("&quot;", '"')
    assert 'name="a_days_used"' in html and "0–30" in html


# ------------------------------------------------------------------ scope: URL, form, export, API
def test_another_institutions_course_instrument_and_response_answer_404(app, db, login_as, api_as):
    """Another institution's course, private instrument or response is answered 404 by URL,
    form, export and API, and nothing is stored."""
    client = login_as("psy_tpe")
    own = _fresh_course(db)
    other_course = _fresh_course(db, "cm_khh")
    other_instrument = _custom_instrument(db, _institution_id(db, "cm_khh"))
    bsrs = _builtin(db, "BSRS5")
    other_response = db.session.scalar(select(AssessmentResponse.id).where(
        AssessmentResponse.institution_id == _institution_id(db, "cm_khh")).limit(1))  # fmt: skip
    assert other_response is not None
    before = _responses(db)
    assert client.get(_add_url(other_course, bsrs)).status_code == 404
    assert client.get(_add_url(own, other_instrument)).status_code == 404
    assert post_form(app, client, _add_url(other_course, bsrs), _form(db, own, BSRS_ANSWERS)).status_code == 404
    assert client.get(f"/assessment/show/{other_response}").status_code == 404
    assert client.get(f"/assessment/edit/{other_response}").status_code == 404
    assert post_form(app, client, f"/assessment/edit/{other_response}", _form(db, own, BSRS_ANSWERS)).status_code == 404
    assert client.get(f"/assessment/export/instrument/{other_instrument.id}").status_code == 404
    api, headers = api_as("psy_tpe")
    assert api.get(f"/api/v1/assessment/{other_response}", headers=headers).status_code == 404
    body = {"course": other_course.id, "instrument": bsrs.id, "answered_on": own.start_date.isoformat(),
            "author": _author(db, own.institution_id), "answers": BSRS_ANSWERS}  # fmt: skip
    refused = api.post("/api/v1/assessment/", json=body, headers=headers)
    assert refused.status_code in (404, 422) and "範圍" in str(refused.json)
    refused = api.post("/api/v1/assessment/", json=body | {"course": own.id, "instrument": other_instrument.id},
                       headers=headers)  # fmt: skip
    assert refused.status_code in (404, 422) and "範圍" in str(refused.json)
    assert api.put(f"/api/v1/assessment/{other_response}", json={"answers": BSRS_ANSWERS},
                   headers=headers).status_code == 404  # fmt: skip
    assert _responses(db) == before


def test_export_per_instrument_has_one_row_per_response_in_scope(app, db, login_as):
    """The per-instrument export holds exactly the user's responses of that instrument (the
    list's rows), one column per item, answers as labels."""
    client = login_as("psy_tpe")
    bsrs = _builtin(db, "BSRS5")
    institution_ids = {i.id for i in db.session.query(ScopedUser).filter_by(username="psy_tpe").one().scope_institutions}
    expected = db.session.scalar(select(func.count(AssessmentResponse.id)).where(
        AssessmentResponse.instrument_id == bsrs.id, AssessmentResponse.institution_id.in_(institution_ids)))  # fmt: skip
    assert expected
    response = client.get(f"/assessment/export/instrument/{bsrs.id}")
    assert response.status_code == 200
    sheet = load_workbook(io.BytesIO(response.data), read_only=True).active
    rows = list(sheet.iter_rows(values_only=True))
    headers, body = rows[1], rows[2:]
    assert len(body) == expected
    assert any(str(h).startswith("b1 ") for h in headers) and any(str(h).startswith("b6 ") for h in headers)
    labels = {"完全沒有", "輕微", "中等程度", "厲害", "非常厲害"}
    column = [str(h).startswith("b1 ") for h in headers].index(True)
    assert {r[column] for r in body} <= labels
    listed = client.get(f"/assessment/list/?_flt_0_instrument={bsrs.id}&psize_AssessmentView=1").text
    assert str(expected) in visible_text(listed)


def test_a3_due_list_scope_bureau_tpe_vs_bureau_khh(app, db, login_as):
    """A3: the due list shows a bureau only its county's courses (no patient names), the same
    number on screen and in the export, and an institution its own with the patient."""
    counties = {}
    for username, county in (("bureau_tpe", "臺北市"), ("bureau_khh", "高雄市")):
        client = login_as(username)
        page = client.get("/assessmentdue/")
        assert page.status_code == 200
        per_county = visible_text(page.text.split('id="due-per-county"', 1)[1].split("</table>", 1)[0])
        export = client.get("/assessmentdue/export")
        assert export.status_code == 200
        rows = list(load_workbook(io.BytesIO(export.data), read_only=True).active.iter_rows(values_only=True))
        headers, body = rows[1], rows[2:]
        assert "個案" not in headers and "姓名" not in " ".join(map(str, headers))
        assert body and {r[0] for r in body} == {county}, (username, {r[0] for r in body})
        assert f"{county} {len(body)}" in per_county
        counties[username] = len(body)
        user = db.session.query(ScopedUser).filter_by(username=username).one()
        in_county = select(Institution.id).where(Institution.county_id == user.scope_county_id)
        assert len(body) <= db.session.scalar(select(func.count(Course.id)).where(
            Course.institution_id.in_(in_county), Course.status == "active"))  # fmt: skip
    client = login_as("psy_tpe")
    course = _fresh_course(db)
    page = client.get(f"/assessmentdue/?institution={course.institution_id}").text
    assert f'/course/{course.id}#assessments' in page
    assert client.get("/assessmentdue/?county=99999999999999999999").status_code == 200


# ------------------------------------------------------------------ the case chart
def test_case_page_charts_each_instrument_with_band_thresholds(app, db, login_as):
    """The case page draws one inline SVG per instrument with scored responses, with the
    band thresholds as horizontal lines, and no script or CDN."""
    client = login_as("psy_tpe")
    course = _fresh_course(db)
    for day, answers in ((2, BSRS_ANSWERS), (20, BSRS_ANSWERS | {"b1": "4", "b2": "4", "b3": "4"})):
        post_form(app, client, _add_url(course, _builtin(db, "BSRS5")),
                  _form(db, course, answers, course.start_date + dt.timedelta(days=day)))  # fmt: skip
    html = client.get(f"/caseview/show/{course.case_id}").text
    charts = re.findall(r'<svg[^>]*class="score-chart"[^>]*data-instrument="([^"]+)"', html)
    assert "BSRS5" in charts and len(charts) == len(set(charts))
    svg = html.split('data-instrument="BSRS5"', 1)[1].split("</svg>", 1)[0]
    assert {m for m in re.findall(r'class="band-threshold" data-min="(\d+)"', svg)} == {"6", "10", "15"}
    assert len(re.findall(r'class="score-point"', svg)) >= 2 and "http" not in svg.replace("http://www.w3.org", "")


# ------------------------------------------------------------------ the API
def test_a4_api_post_scores_on_the_server_and_ignores_score_fields(app, db, api_as):
    """A4: POST goes through WriteAssessment: the body's total, band and result are ignored."""
    api, headers = api_as("psy_tpe")
    course = _fresh_course(db)
    body = {"course": course.id, "instrument": _builtin(db, "BSRS5").id,
            "answered_on": (course.start_date + dt.timedelta(days=4)).isoformat(),
            "author": _author(db, course.institution_id), "answers": BSRS_ANSWERS,
            "total": 99, "band": "假的", "result": {"scores": {"total": 99}}, "spec": "x"}  # fmt: skip
    response = api.post("/api/v1/assessment/", json=body, headers=headers)
    assert response.status_code == 201, response.json
    row = db.session.get(AssessmentResponse, response.json["id"])
    assert row.total == 5 and row.band == "一般正常範圍" and row.spec != "x"
    assert response.json["result"]["total"] == 5
    refused = api.post("/api/v1/assessment/", json=body | {"answers": {"b1": "7"}}, headers=headers)
    assert refused.status_code == 422 and "b1" in str(refused.json["message"])
    spec = api.get("/api/v1/_openapi", headers=headers).json
    assert "/api/v1/assessment/" in spec["paths"]


# ------------------------------------------------------------------ A4: FTND licence
def test_a4_ftnd_is_refused_until_an_admin_records_its_licence(app, db, login_as, api_as):
    """A4: FTND (not free) cannot be filled in until the admin records a licence; enabling
    without a note is refused; the licence screen is the admin's only."""
    ftnd = _builtin(db, "FTND")
    assert not ftnd.enabled
    psy = login_as("psy_tpe")
    course = _fresh_course(db)
    panel = psy.get(f"/course/{course.id}").text
    assert "尼古丁依賴度測試" not in panel
    refused = psy.get(_add_url(course, ftnd), follow_redirects=True)
    assert refused.status_code == 200 and "授權" in visible_text(refused.text)
    api, headers = api_as("psy_tpe")
    body = {"course": course.id, "instrument": ftnd.id, "answered_on": course.start_date.isoformat(),
            "author": _author(db, course.institution_id), "answers": {}}  # fmt: skip
    assert api.post("/api/v1/assessment/", json=body, headers=headers).status_code == 422
    assert psy.get(f"/instrumentlicence/show/{ftnd.id}").status_code in (302, 403, 404)
    assert post_form(app, psy, f"/instrumentlicence/licence/{ftnd.id}", {"enable": "1", "note": "x"}).status_code \
        in (302, 403, 404)  # fmt: skip
    ministry = login_as("ministry")  # reads which built-ins are licensed, records none
    assert "FTND" in ministry.get("/instrumentlicence/list/").text
    assert "licence-form" not in ministry.get(f"/instrumentlicence/show/{ftnd.id}").text
    assert post_form(app, ministry, f"/instrumentlicence/licence/{ftnd.id}", {"enable": "1", "note": "x"}) \
        .status_code in (302, 403)  # fmt: skip
    db.session.expire_all()
    assert not db.session.get(Instrument, ftnd.id).enabled
    admin = login_as("admin")
    assert "FTND" in admin.get("/instrumentlicence/list/").text
    no_note = post_form(app, admin, f"/instrumentlicence/licence/{ftnd.id}", {"enable": "1", "note": "  "},
                        follow_redirects=True)  # fmt: skip
    assert "授權" in visible_text(no_note.text)
    db.session.expire_all()
    assert not db.session.get(Instrument, ftnd.id).enabled
    free = _builtin(db, "BSRS5")
    assert post_form(app, admin, f"/instrumentlicence/licence/{free.id}", {"enable": "0", "note": ""}).status_code == 302
    db.session.expire_all()
    assert db.session.get(Instrument, free.id).enabled
    try:
        post_form(app, admin, f"/instrumentlicence/licence/{ftnd.id}",
                  {"enable": "1", "note": "某醫院 115/01/01 取得授權，至 116/12/31"})  # fmt: skip
        db.session.expire_all()
        assert db.session.get(Instrument, ftnd.id).enabled
        assert psy.get(_add_url(course, ftnd)).status_code == 200
    finally:
        row = db.session.get(Instrument, ftnd.id)
        row.enabled, row.licence_note = False, None
        db.session.commit()
    assert csrf_token(app, admin)
