"""Browser journeys of the addiction programme (issue 14): a psychologist's chart, course and
PDF record (A2, A5), a nurse refused a psychotherapy record (A5), the programmes kept apart
(A1), and the authorities' addiction screens (A1, A14).

The harness is tests/e2e/browser.py: every page visited is checked (no console error, no 5xx,
no Simplified or untranslated string) and saved in tests/e2e/screenshots/<journey>/.
"""

from __future__ import annotations

import datetime as dt
import hashlib

from dateutil.relativedelta import relativedelta
from openpyxl import load_workbook

from core.dates import to_roc
from tests.e2e.test_journeys import minimal_pdf, query, today

HOSPITAL_TPE = "SELECT institution_id FROM ab_user_institution ui JOIN ab_user u ON u.id = ui.user_id WHERE u.username = 'psy_tpe'"  # noqa: E501


def free_case(server, start: dt.date) -> tuple[int, str, str]:
    """An open case of psy_tpe's hospital with no course reaching `start` (id, ID, name)."""
    return query(
        server,
        "SELECT c.id, p.national_id, p.name FROM addiction_case c JOIN patient p ON p.id = c.patient_id "
        f"WHERE c.institution_id = ({HOSPITAL_TPE}) AND c.status = 'open' AND c.opened_on <= ? "
        "AND NOT EXISTS (SELECT 1 FROM course k WHERE k.case_id = c.id AND k.end_date >= ?) "
        "AND (SELECT count(*) FROM addiction_case o WHERE o.patient_id = c.patient_id) = 1 "
        "ORDER BY c.id LIMIT 1",
        start.isoformat(), start.isoformat(),
    )[0]  # fmt: skip


def quick_search(person, text: str, shot: str) -> None:
    """The case list's quick search box: the full ID or part of the name, one box."""
    person.page.fill("#case-quick-text", text)
    person.submit("#case-quick-search [type=submit]", shot=shot)


def register_blank_form(person, title: str) -> None:
    """From a record form that finds no blank form of its kind: 登錄紀錄表單 (the kind chosen)."""
    page = person.page
    person.click("#no-blank-form a", shot="register a blank form")
    assert page.input_value("#kind") == "individual_psychotherapy"
    page.fill("#title", title)
    blank = person.folder / "個別心理治療紀錄表_空白.pdf"
    blank.write_bytes(minimal_pdf())
    page.set_input_files("#pdf", str(blank))
    person.submit("#save-form", shot="blank form registered")
    assert "/recordform/show/" in page.url, person.flashes() + person.text()


def filled_pdf() -> bytes:
    """A small real PDF of two pages (a filled-in record form), not the blank one."""
    import io

    from pypdf import PdfWriter

    writer = PdfWriter()
    writer.add_blank_page(width=595, height=842)
    writer.add_blank_page(width=595, height=842)
    writer.add_metadata({"/Title": "個別心理治療紀錄"})
    buffer = io.BytesIO()
    writer.write(buffer)
    return buffer.getvalue()


def test_a2_a5_psychologist_finds_a_case_starts_a_course_and_records_a_pdf_session(journey, live_server):
    """A2, A5: psy_tpe finds a case by ID and by name, reads its chart, starts a course with
    the end date left empty (start + 1 year shown), records a session on the hospital's own
    form as an uploaded PDF (registering the blank 個別心理治療 form from the record form,
    which finds none) and one on the built-in form dated earlier, sees both on the course
    page in date order, and downloads the PDF through the record (the bytes are the uploaded
    ones), then goes back to the course page from the record."""
    person = journey("addiction_psychologist")
    page = person.page
    start = today() - dt.timedelta(days=14)
    case_id, national_id, name = free_case(live_server, start)
    person.login("psy_tpe")
    assert "藥酒癮個案管理" in person.text(".navbar")

    person.goto("/caseview/list/", shot="cases")
    quick_search(person, national_id, shot="found by ID")
    rows = page.locator("table tbody tr:has(a[href*='/caseview/show/'])")
    assert rows.count() == 1 and name in rows.first.inner_text(), person.text()
    person.goto("/caseview/list/", shot="cases again")
    quick_search(person, name, shot="found by name")
    assert page.locator(f"a[href$='/caseview/show/{case_id}']").count() == 1, person.text()
    person.click(f"a[href$='/caseview/show/{case_id}']", shot="the chart")
    chart = person.text("#case-chart")
    assert name in chart and "個案當事人" in chart and "療程" in chart, chart

    person.click("#start-course", shot="start a course")
    page.fill("#start_date", to_roc(start))
    assert page.input_value("#course_end") == ""
    person.submit("form [type=submit]", shot="course started")
    end = start + relativedelta(years=1)
    assert "/course/" in page.url, person.flashes() + person.text()
    fields = person.text("#course-fields")
    assert to_roc(start) in fields and to_roc(end) in fields, fields
    course_id = query(live_server, "SELECT id FROM course WHERE case_id = ? AND start_date = ?", case_id,
                      start.isoformat())[0][0]  # fmt: skip
    course_url = page.url

    # The session on the hospital's own form, as a PDF: the hospital registers its blank
    # form first, from the record form that finds none.
    person.click("a.add-record:has-text('個別心理治療')", shot="new psychotherapy record")
    page.check("input[name=mode][value=pdf]")
    assert page.is_hidden("#structured-content") and page.is_visible("#no-blank-form")
    register_blank_form(person, "本院個別心理治療紀錄表")
    person.goto(course_url, shot="course page")
    person.click("a.add-record:has-text('個別心理治療')", shot="new psychotherapy record, form registered")
    assert page.locator("#record-form input[name=course]").get_attribute("type") == "hidden"  # never retyped
    session = start + dt.timedelta(days=7)
    page.fill("#executed_on", to_roc(session))
    page.fill("#minutes", "50")
    page.check("input[name=mode][value=pdf]")
    page.select_option("#form_version", index=0)
    upload = person.folder / "個別心理治療紀錄_第2次.pdf"
    pdf = filled_pdf()
    upload.write_bytes(pdf)
    page.set_input_files("#pdf", str(upload))
    person.submit("#save-record", shot="pdf record saved")
    assert "/treatmentrecord/show/" in page.url, person.flashes() + person.text()
    pdf_record = int(page.url.rstrip("/").rsplit("/", 1)[1])
    assert query(live_server, "SELECT sha256, form_id IS NOT NULL FROM treatment_record WHERE id = ?",
                 pdf_record) == [(hashlib.sha256(pdf).hexdigest(), 1)]  # fmt: skip

    # An earlier session on the built-in form, entered afterwards.
    person.goto(course_url, shot="course page again")
    person.click("a.add-record:has-text('個別心理治療')", shot="second psychotherapy record")
    page.fill("#executed_on", to_roc(start))
    page.fill("#minutes", "60")
    page.fill("#c_topic", "初次會談：飲酒史與改變動機")
    page.fill("#c_interventions", "動機式晤談，建立治療同盟")
    # Changing the kind reloads nothing and loses nothing: the shared 主題 stays on screen,
    # the fields of psychotherapy are hidden, and come back as typed.
    page.select_option("#pick-kind", "nursing_education")
    assert page.input_value("#c_topic") == "初次會談：飲酒史與改變動機" and page.is_hidden("#c_interventions")
    assert page.is_visible("#c_education")
    person.check("kind changed to nursing education")
    page.select_option("#pick-kind", "individual_psychotherapy")
    assert page.input_value("#c_interventions") == "動機式晤談，建立治療同盟" and page.input_value("#minutes") == "60"
    person.submit("#save-record", shot="structured record saved")
    assert "/treatmentrecord/show/" in page.url, person.flashes() + person.text()

    person.goto(course_url, shot="course page with both records")
    listed = page.locator("#course-records tr:has(a[href*='/treatmentrecord/show/'])")
    dates = [row.locator("td").first.inner_text().strip() for row in listed.all()]
    assert dates == [to_roc(start), to_roc(session)], dates
    assert "初次會談" in listed.first.inner_text() and "PDF" in listed.nth(1).inner_text()
    assert query(live_server, "SELECT count(*) FROM treatment_record WHERE course_id = ?", course_id) == [(2,)]

    person.click(f"a[href$='/treatmentrecord/show/{pdf_record}']", shot="the pdf record")
    assert "本院個別心理治療紀錄表" in person.text("#record-show"), person.text()
    downloaded = person.download("#record-pdf")
    assert downloaded.read_bytes() == pdf
    person.click("#record-course", shot="back to the course page")
    assert page.url.rstrip("/").endswith(f"/course/{course_id}"), page.url
    person.finish()


def active_course(server) -> tuple[int, dt.date]:
    """A course of psy_tpe's hospital starting after the demo staff began serving (id, start)."""
    course_id, start = query(
        server,
        f"SELECT id, start_date FROM course WHERE institution_id = ({HOSPITAL_TPE}) AND status = 'active' "
        "AND start_date >= '2025-01-02' ORDER BY start_date, id LIMIT 1",
    )[0]  # fmt: skip
    return course_id, dt.date.fromisoformat(start)


def fill_psychotherapy(page, day: dt.date) -> None:
    """The built-in 個別心理治療 form: date, minutes, topic and interventions."""
    page.fill("#executed_on", to_roc(day))
    page.fill("#minutes", "45")
    page.fill("#c_topic", "復發預防：高風險情境辨識")
    page.fill("#c_interventions", "認知行為治療，因應技巧演練")


def assert_refused_and_kept(person, live_server, course_id: int, day: dt.date, before: int) -> None:
    """Still the form, the A5 refusal on screen in zh_TW, what was typed kept, nothing stored."""
    page = person.page
    assert "/treatmentrecord/add" in page.url, page.url
    message = person.flashes()
    assert "個別心理治療紀錄須由" in message and "李護理師未持有此類證照" in message, message
    assert page.input_value("#executed_on") == to_roc(day)
    assert page.input_value("#minutes") == "45"
    assert page.input_value("#c_topic") == "復發預防：高風險情境辨識"
    assert page.input_value("#c_interventions") == "認知行為治療，因應技巧演練"
    assert query(live_server, "SELECT count(*) FROM treatment_record WHERE course_id = ?", course_id)[0][0] == before


def test_a5_a_nurse_is_refused_a_psychotherapy_record(journey, live_server):
    """A5: a psychotherapy record is signed by a psychologist or a physician. rn_tpe (a nurse
    of the same hospital) is refused one, and so is psy_tpe naming the nurse as its author:
    each time the zh_TW message on screen, the form keeps what was typed, nothing is stored."""
    course_id, start = active_course(live_server)
    day = start + dt.timedelta(days=1)
    before = query(live_server, "SELECT count(*) FROM treatment_record WHERE course_id = ?", course_id)[0][0]

    nurse = journey("addiction_nurse")
    nurse.login("rn_tpe")
    nurse.goto(f"/course/{course_id}", shot="course page")
    nurse.click("a.add-record:has-text('個別心理治療')", shot="psychotherapy form")
    assert nurse.page.locator("#author option:checked").inner_text() == "李護理師"
    fill_psychotherapy(nurse.page, day)
    nurse.submit("#save-record", shot="refused")
    assert_refused_and_kept(nurse, live_server, course_id, day, before)
    nurse.finish()

    person = journey("addiction_nurse_as_author")
    person.login("psy_tpe")
    person.goto(f"/treatmentrecord/add?course={course_id}&kind=individual_psychotherapy", shot="psychotherapy form")
    person.page.select_option("#author", label="李護理師")
    fill_psychotherapy(person.page, day)
    person.submit("#save-record", shot="nurse as author refused")
    assert_refused_and_kept(person, live_server, course_id, day, before)
    assert person.page.locator("#author option:checked").inner_text() == "李護理師"
    person.finish()


def refused(person, path: str, shot: str, absent: str = "", status: int = 404) -> None:
    """The URL answers 404, as if the other programme's screens, files and APIs did not
    exist (a 403 would tell they are there), and nothing of the row (`absent`) is on it;
    `status=403` for a screen of the user's own programme that their role may not open."""
    person.expected_status.add(person.url(path))
    response = person.goto(path, shot=shot)
    assert response.status == status, f"{path}: {response.status}"
    assert not absent or absent not in person.page.content(), path


def test_a1_each_programme_is_invisible_to_the_other(journey, live_server):
    """A1: facility_tpe (cessation only) has no 藥酒癮個案管理 menu and is refused the
    addiction screens, files and APIs by URL (of rows that exist),
    and psy_clinic (addiction only) has no 戒菸服務 menu and is refused the cessation ones."""
    case_id, course_id, record_id, name = query(
        live_server,
        "SELECT r.case_id, r.course_id, r.id, p.name FROM treatment_record r "
        "JOIN addiction_case c ON c.id = r.case_id JOIN patient p ON p.id = c.patient_id "
        f"WHERE r.institution_id = ({HOSPITAL_TPE}) ORDER BY r.id LIMIT 1",
    )[0]  # fmt: skip
    person = journey("programme_separation_facility")
    person.login("facility_tpe")
    assert "戒菸服務" in person.text(".navbar") and "藥酒癮" not in person.text(".navbar")
    for path in ("/caseview/list/", f"/caseview/show/{case_id}", f"/course/{course_id}",
                 f"/course/{course_id}/records", f"/treatmentrecord/show/{record_id}",
                 f"/treatmentrecord/pdf/{record_id}", "/designationview/list/", "/staffshortfall/",
                 "/api/v1/case/", f"/api/v1/treatmentrecord/{record_id}"):  # fmt: skip
        refused(person, path, f"addiction {path}", absent=name)
    person.finish()

    visit_id = query(live_server, "SELECT id FROM visit ORDER BY id LIMIT 1")[0][0]
    clinic = journey("programme_separation_clinic")
    clinic.login("psy_clinic")
    assert "藥酒癮個案管理" in clinic.text(".navbar") and "戒菸服務" not in clinic.text(".navbar-nav")
    for path in ("/visitview/list/", f"/visitview/show/{visit_id}", "/corrections/list/", "/selfcheck/",
                 "/cessationstats/", "/api/v1/visit/", f"/api/v1/visit/{visit_id}"):  # fmt: skip
        refused(clinic, path, f"cessation {path}")
    clinic.finish()


def test_a1_a14_the_bureau_and_the_ministry_open_their_addiction_screens(journey, live_server):
    """A1, A14: bureau_tpe and the ministry open 藥酒癮指定機構 (the bureau: its county only),
    the staff training and licence reminders, and its Excel export (the rows on screen); the
    Ministry also lists every institution's blank record forms."""
    for username in ("bureau_tpe", "ministry"):
        person = journey(f"addiction_{username}")
        page = person.page
        person.login(username)
        assert "藥酒癮個案管理" in person.text(".navbar")
        person.goto("/designationview/list/", shot="designations")
        assert page.locator("table tbody tr:has(a[href*='/designationview/show/'])").count() > 0, person.text()
        if username == "bureau_tpe":
            counties = query(
                live_server,
                "SELECT DISTINCT c.name FROM designation d JOIN institution i ON i.id = d.institution_id "
                "JOIN county c ON c.id = i.county_id WHERE d.kind = 'alcohol_treatment'",
            )  # fmt: skip
            assert len(counties) > 1  # other counties exist, and are not listed
            assert "高雄市" not in person.text("table")
        person.goto("/staffshortfall/", shot="staff reminders")
        shown = page.locator("#staff-shortfall tr.shortfall-row").count()
        workbook = load_workbook(person.download("#export-xlsx"))
        exported = list(workbook.worksheets[0].iter_rows(values_only=True))
        # a title row naming the list and its date, then the headers, then the rows
        assert exported[1][0] == "縣市" and len(exported) - 2 == shown, (exported[:3], shown)
        if username == "ministry":
            person.goto("/recordform/list/", shot="every institution's blank forms")
        else:
            refused(person, "/recordform/list/", "no record forms", status=403)  # the Ministry's
        person.finish()


def test_a4_psychologist_designs_and_publishes_a_likert_questionnaire(journey, live_server):
    """A4: psy_tpe designs a 5-item Likert questionnaire (5-point agreement) with q3 reversed
    and bands, previews it as a matrix, sees the publish confirmation and publishes v1; the
    ministry then shares it nationally."""
    person = journey("a4_designer")
    page = person.page
    person.login("psy_tpe")
    person.goto("/questionnaire/list", shot="designer list")
    page.fill("#create-form input[name=code]", "cope_e2e")
    page.fill("#create-form input[name=title]", "因應自信量表")
    person.click("#create-instrument", shot="new questionnaire")
    assert "問卷已建立" in person.flashes(), person.flashes()
    questions = ["我能拒絕別人遞來的酒", "我有可以求助的人", "我常想要使用藥物", "我知道壓力大時怎麼辦", "我對戒除有信心"]
    for number, text in enumerate(questions, start=1):
        person.click("#add-item", shot=f"item editor {number}")
        assert page.input_value("#linkId") == f"q{number}" and page.input_value("#scale") == "agree5"
        page.fill("#text", text)
        person.click("#save-item", shot=f"item {number} saved")
    assert page.locator("#item-table tr.designer-item").count() == 5
    person.click("#edit-scoring", shot="scoring")
    page.check("#reverse-q3")
    page.fill("#bands", "5-12 低\n13-19 中\n20-25 高")
    person.click("#save-scoring", shot="scoring saved")
    assert "反向計分 q3" in person.text("#scoring-summary"), person.text("#scoring-summary")
    person.click("#preview", shot="preview")
    assert page.locator("table.likert-matrix tr").count() == 6 and "非常同意" in person.text("table.likert-matrix")
    person.goto(page.url.replace("/preview", ""), shot="back to the draft")
    person.click("#publish", shot="publish confirmation")
    assert "第一個版本" in person.text("#designer-publish")
    person.click("#confirm-publish", shot="published")
    assert "第 1 版已發布" in person.flashes(), person.flashes()
    pk = page.url.rstrip("/").split("/")[-1].split("?")[0]
    person.finish()
    ministry = journey("a4_designer_ministry")
    ministry.login("ministry")
    ministry.goto(f"/questionnaire/{pk}", shot="ministry sees it")
    ministry.page.select_option("#sharing", "national")
    ministry.click("#save-sharing", shot="shared nationally")
    assert "分享設定已儲存" in ministry.flashes()
    assert query(live_server, f"SELECT sharing FROM instrument WHERE id = {int(pk)}")[0][0] == "national"
    ministry.finish()


def test_a3_a4_psychologist_fills_bsrs5_sees_scores_and_the_course_waits_for_its_follow_up(journey, live_server):
    """A3, A4: on a course without its follow-up assessment, 已完成 is refused naming 追蹤評估;
    psy_tpe fills in BSRS-5 (a Likert matrix): the response page shows the server's total,
    band and the suicidal-ideation flag in words, and the case page charts it; a PHQ-9 with
    an item left empty is refused next to that item with every other answer kept."""
    start = today() - dt.timedelta(days=100)  # the follow-up (3 months) is overdue
    case_id, _national_id, _name = free_case(live_server, start)
    person = journey("addiction_assessment")
    person.login("psy_tpe")
    person.goto(f"/caseview/show/{case_id}", shot="the chart")
    person.click("#start-course", shot="start a course")
    person.page.fill("#start_date", to_roc(start))
    person.submit("form [type=submit]", shot="course started")
    course_id = query(live_server, "SELECT id FROM course WHERE case_id = ? AND start_date = ?", case_id,
                      start.isoformat())[0][0]  # fmt: skip
    person.goto(f"/course/{course_id}", shot="course page with its assessments")
    panel = person.text("#course-assessments")
    assert "初次評估" in panel and "待完成" in panel and "逾期" in panel
    person.submit("#complete-course", shot="completed refused")
    assert "初次評估" in person.flashes() and "追蹤評估" in person.flashes()
    person.page.select_option("#pick-instrument", label="簡式健康量表（BSRS-5，心情溫度計）")
    person.submit("#start-assessment", shot="BSRS-5 form")
    assert person.page.locator("table.likert-matrix tr.assessment-item").count() == 6
    for n, value in zip(range(1, 7), ("3", "2", "3", "2", "2", "2"), strict=True):
        person.page.check(f"input[name=a_b{n}][value='{value}']")
    person.submit("#save-assessment", shot="BSRS-5 saved")
    scores = person.text("#assessment-scores")
    assert "12" in scores and "中度情緒困擾" in scores
    assert "自殺想法" in person.text("#assessment-flags") and "厲害" in person.text("#assessment-answers")
    person.goto(f"/caseview/show/{case_id}", shot="case chart")
    assert person.page.locator("svg.score-chart[data-instrument='BSRS5'] line.band-threshold").count() == 3
    person.goto(f"/course/{course_id}", shot="course page again")
    person.page.select_option("#pick-instrument", label="病人健康問卷（PHQ-9）")
    person.submit("#start-assessment", shot="PHQ-9 form")
    for n in range(1, 9):
        person.page.check(f"input[name=a_p{n}][value='1']")
    person.submit("#save-assessment", shot="PHQ-9 refused")
    assert "p9" in person.text(".item-error[data-for='p9']")
    assert person.page.locator("input[name=a_p3][value='1']").is_checked()
    after = query(live_server, "SELECT count(*) FROM assessment_response WHERE course_id = ?", course_id)[0][0]
    assert after == 1
    person.finish()


#: Every required item of a form answered with its first option (numbers 1): enough for the
#: built-in 初次評估表 / 追蹤評估表, whose first options hide the items that follow them.
FILL_FIRST_OPTIONS = """form => {
  for (let round = 0; round < 3; round++) {
    form.querySelectorAll('.assessment-item:not([hidden])').forEach(box => {
      if (!box.querySelector('span.text-danger')) { return; }  // the required mark
      const radios = box.querySelectorAll('input[type=radio]:not(:disabled)');
      const names = [...new Set([...radios].map(r => r.name))];
      names.forEach(name => { const first = box.querySelector(`input[name="${name}"]:not(:disabled)`);
                              if (!box.querySelector(`input[name="${name}"]:checked`)) { first.click(); } });
      const boxes = box.querySelectorAll('input[type=checkbox]:not(:disabled)');
      if (boxes.length && !box.querySelector('input[type=checkbox]:checked')) { boxes[0].click(); }
      box.querySelectorAll('input.assessment-number:not(:disabled)').forEach(i => {
        if (!i.value) { i.value = '1'; i.dispatchEvent(new Event('input', {bubbles: true})); } });
    });
  }
}"""


def fill_required_assessment(person, course_id: int, label: str, shot: str) -> None:
    """From the course page: 新增評估 of the instrument by its label, every item answered."""
    person.goto(f"/course/{course_id}", shot=f"course page before {shot}")
    person.page.select_option("#pick-instrument", label=label)
    person.submit("#start-assessment", shot=f"{shot} form")
    person.page.eval_on_selector("#assessment-form", FILL_FIRST_OPTIONS)
    person.submit("#save-assessment", shot=f"{shot} saved")
    assert "/assessment/show/" in person.page.url, person.flashes() + person.text()[:500]


def test_a3_a4_psychologist_designs_a_likert_questionnaire_fills_it_for_a_course_and_the_course_waits(
    journey, live_server, browser
):
    """Issue 16's journey (A3, A4): psy_tpe designs a 5-item Likert questionnaire (5-point
    agreement) with q3 reverse-scored and bands, tries the scoring in the preview, publishes
    it, fills it in for a course: the response page shows the server's total (q3 reversed)
    and band, the case page charts it with the band thresholds; 已完成 is refused naming both
    required assessments, then (initial done) naming 追蹤評估 only, then accepted once the
    follow-up is done. The fill forms of BSRS-5, PHQ-9, AUDIT and this questionnaire each
    show their battery as one matrix and fit a laptop and a phone without sideways scroll."""
    from tests.e2e.browser import Journey
    from tests.e2e.test_phone import PHONE, _layout_problems

    person = journey("a4_design_fill_complete")
    page = person.page
    person.login("psy_tpe")
    person.goto("/questionnaire/list", shot="designer list")
    page.fill("#create-form input[name=code]", "conf_journey")
    page.fill("#create-form input[name=title]", "戒癮信心量表")
    person.click("#create-instrument", shot="new questionnaire")
    questions = ["我能拒絕別人遞來的藥物", "我有可以求助的人", "我常想要使用藥物", "我知道壓力大時怎麼辦", "我對戒除有信心"]
    for number, text in enumerate(questions, start=1):
        person.click("#add-item", shot=f"item editor {number}")
        page.fill("#text", text)
        person.click("#save-item", shot=f"item {number} saved")
    person.click("#edit-scoring", shot="scoring")
    page.check("#reverse-q3")
    page.fill("#bands", "5-12 低\n13-19 中\n20-25 高")
    person.click("#save-scoring", shot="scoring saved")
    assert "反向計分 q3" in person.text("#scoring-summary")
    person.click("#preview", shot="preview")
    assert page.locator("table.likert-matrix tr.assessment-item").count() == 5
    for n, value in zip(range(1, 6), ("4", "5", "2", "3", "4"), strict=True):
        page.check(f"input[name=a_q{n}][value='{value}']")
    person.submit("#try-scoring", shot="preview scored")
    assert "20" in person.text("#preview-scores") and "高" in person.text("#preview-scores")
    person.goto(page.url.split("/preview")[0], shot="back to the draft")
    person.click("#publish", shot="publish confirmation")
    person.click("#confirm-publish", shot="published")
    assert "第 1 版已發布" in person.flashes(), person.flashes()
    instrument_id = int(page.url.rstrip("/").split("/")[-1].split("?")[0])

    start = today() - dt.timedelta(days=100)
    case_id, _national_id, _name = free_case(live_server, start)
    person.goto(f"/caseview/show/{case_id}", shot="the chart")
    person.click("#start-course", shot="start a course")
    page.fill("#start_date", to_roc(start))
    person.submit("form [type=submit]", shot="course started")
    course_id = query(live_server, "SELECT id FROM course WHERE case_id = ? AND start_date = ?", case_id,
                      start.isoformat())[0][0]  # fmt: skip
    person.goto(f"/course/{course_id}", shot="course page")
    page.select_option("#pick-instrument", label="戒癮信心量表（本機構自訂）")
    person.submit("#start-assessment", shot="our questionnaire's form")
    assert page.locator("table.likert-matrix tr.assessment-item").count() == 5
    for n, value in zip(range(1, 6), ("4", "5", "2", "3", "4"), strict=True):
        page.check(f"input[name=a_q{n}][value='{value}']")
    person.submit("#save-assessment", shot="our questionnaire saved")
    scores = person.text("#assessment-scores")
    assert "20" in scores and "高" in scores, scores  # 4 + 5 + (6 − 2) + 3 + 4
    assert query(live_server, "SELECT total, band FROM assessment_response WHERE course_id = ? AND instrument_id = ?",
                 course_id, instrument_id)[0] == (20.0, "高")  # fmt: skip
    person.goto(f"/caseview/show/{case_id}", shot="case chart")
    chart = "svg.score-chart[data-instrument='conf_journey']"
    assert page.locator(chart).count() == 1 and page.locator(f"{chart} line.band-threshold").count() == 3

    person.goto(f"/course/{course_id}", shot="course before completing")
    person.submit("#complete-course", shot="completed refused: both")
    assert "初次評估" in person.flashes() and "追蹤評估" in person.flashes(), person.flashes()
    fill_required_assessment(person, course_id, "初次評估表", "initial assessment")
    person.goto(f"/course/{course_id}", shot="course with its initial assessment")
    person.submit("#complete-course", shot="completed refused: follow-up")
    refusal = person.flashes()
    assert "追蹤評估" in refusal and "初次評估" not in refusal, refusal
    assert query(live_server, "SELECT status FROM course WHERE id = ?", course_id)[0][0] == "active"
    fill_required_assessment(person, course_id, "追蹤評估表", "follow-up assessment")
    person.goto(f"/course/{course_id}", shot="course with both assessments")
    person.submit("#complete-course", shot="completed")
    assert "療程已完成" in person.flashes() or "已完成" in person.text("#course-status"), person.flashes()
    assert query(live_server, "SELECT status FROM course WHERE id = ?", course_id)[0][0] == "completed"
    person.finish()

    # The fill forms on a laptop and on a phone: one matrix per battery, no sideways scroll.
    other_course, _start = active_course(live_server)
    ids = dict(query(live_server, "SELECT code, id FROM instrument WHERE code IN ('BSRS5', 'PHQ-9', 'AUDIT') "
                                  f"OR id = {instrument_id}"))  # fmt: skip
    matrices = {"BSRS5": [6], "PHQ-9": [9], "AUDIT": [6], "conf_journey": [5]}
    for device, options in (("laptop", {"viewport": {"width": 1366, "height": 768}}), ("phone", PHONE)):
        viewer = Journey(browser, live_server, f"a4_forms_{device}", **options)
        viewer.login("psy_tpe")
        problems = []
        for code, rows in matrices.items():
            viewer.goto(f"/assessment/add?course={other_course}&instrument={ids[code]}", shot=f"{code} {device}")
            counts = viewer.page.eval_on_selector_all(
                "table.likert-matrix", "ts => ts.map(t => t.querySelectorAll('tr.assessment-item').length)")
            assert counts == rows, (code, device, counts)
            width = viewer.page.evaluate("document.documentElement.scrollWidth")
            limit = options["viewport"]["width"]
            assert width <= limit, (code, device, width)
            if device == "phone":
                problems += _layout_problems(viewer)
        assert problems == [], problems
        viewer.finish()
def test_a12_khh_case_manager_reads_the_timeline_a_tpe_consent_allows_and_tpe_sees_the_lookup(journey, live_server):
    """A12: cm_khh opens 王大明, who consented at the 臺北 demo hospital: the case page offers
    the cross-hospital timeline without reading it (no log row); opened in place, it shows
    臺北's course and records (dates, institution, kind) with the urine tests' results, never
    the psychotherapy note, and writes one log row; 臺北's record answers 404 by URL; psy_tpe
    then finds the look in 跨院查詢紀錄, reads the consent with its history, and opens the
    timeline of a person without consent on its own page."""
    from seed.addiction.consent import PSYCHOTHERAPY_NOTE, demo_national_id

    national_id = demo_national_id("A18800001")
    (tpe_name, tpe_record), = query(
        live_server,
        "SELECT i.name, r.id FROM treatment_record r JOIN institution i ON i.id = r.institution_id "
        "JOIN addiction_case c ON c.id = r.case_id JOIN patient p ON p.id = c.patient_id "
        f"WHERE p.national_id = ? AND r.institution_id = ({HOSPITAL_TPE}) AND r.kind = 'individual_psychotherapy'",
        national_id,
    )  # fmt: skip
    person = journey("addiction_cross_hospital")
    page = person.page
    person.login("cm_khh")
    person.goto("/caseview/list/", shot="cases")
    quick_search(person, national_id, shot="found by ID")
    looks = ("SELECT count(*) FROM consent_access a JOIN patient p ON p.id = a.patient_id "
             "WHERE p.national_id = ? AND a.username = 'cm_khh'")  # fmt: skip
    before = query(live_server, looks, national_id)
    person.click("table a[href*='/caseview/show/']", shot="chart with the consent, timeline on demand")
    # The chart offers the timeline; reading it is a lookup of its own, logged when opened.
    assert page.locator("#timeline-records").count() == 0 and "顯示跨院治療歷程" in person.text("#open-timeline")
    assert query(live_server, looks, national_id) == before
    chart = page.url
    page.click("#open-timeline")  # loaded in place by the case page's nonce'd script
    page.wait_for_selector("#timeline-records")
    person.check("chart with the cross-hospital timeline opened")
    assert page.url == chart
    (after,), = query(live_server, looks, national_id)
    assert after == before[0][0] + 1
    courses, records, labs = (person.text(f"#timeline-{t}") for t in ("courses", "records", "labs"))
    assert tpe_name in courses and "藥癮" in courses, courses
    assert tpe_name in records and "個別心理治療" in records and "心理師" in records, records
    assert tpe_name in labs and "安非他命" in labs and "陰性" in labs and "陽性" in labs, labs
    assert "依據個案於" in person.text("#timeline-grant")
    assert PSYCHOTHERAPY_NOTE not in page.content()
    # Only the timeline: 臺北's record itself is not there by URL.
    person.goto(f"/treatmentrecord/show/{tpe_record}", shot="tpe record by url", expect_status=404)
    person.logout()

    person.login("psy_tpe")
    person.goto("/consentaccess/list/", shot="tpe lookup log")
    log = person.text(".panel-body")
    assert "cm_khh" in log and "王大明" in log, log
    person.goto("/caseview/list/", shot="tpe cases")
    quick_search(person, national_id, shot="tpe found by ID")
    person.click("table a[href*='/caseview/show/']", shot="tpe chart with the consent")
    assert "有效" in person.text("#consent-status")
    person.click("#consent-status a", shot="consent details")
    assert "撤回同意" in person.text("#revoke-form")
    person.goto("/consent/list/", shot="tpe consents")
    # 李小華 has not consented: the blank form printed by the system is refused as unsigned.
    refused_id = demo_national_id("B28800002")
    person.goto("/caseview/list/", shot="cases for the form")
    quick_search(person, refused_id, shot="no-consent patient")
    person.click("table a[href*='/caseview/show/']", shot="chart without consent")
    # Without JavaScript the button is a link to the timeline's own page, and back.
    person.goto(page.get_attribute("#open-timeline", "href"), shot="timeline page without consent")
    assert "沒有跨院查詢同意書" in person.text("#timeline-reason")
    person.click("#back-to-case", shot="back to the chart")
    blank = person.download("#consent-form-pdf")
    person.click("#record-consent", shot="record a consent")
    person.page.fill("#signed_on", to_roc(today()))
    person.page.set_input_files("#scan", str(blank))
    person.submit("#save-consent", shot="blank form refused")
    assert "未簽名" in person.flashes(), person.flashes()
    assert query(live_server, "SELECT count(*) FROM consent c JOIN patient p ON p.id = c.patient_id "
                 "WHERE p.national_id = ?", refused_id) == [(0,)]  # fmt: skip
    person.finish()
