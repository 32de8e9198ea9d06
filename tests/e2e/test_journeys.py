"""Browser journeys: people doing their jobs in Debian's Chromium against gunicorn.

tests/e2e/browser.py holds the harness: every page a journey visits is checked (no console
error, no 5xx, no Simplified or untranslated string) and saved as a full-page screenshot in
tests/e2e/screenshots/<journey>/. One journey per function; add new ones the same way.
"""

from __future__ import annotations

import datetime as dt
import io
import random
import sqlite3
from zoneinfo import ZoneInfo

from openpyxl import load_workbook

from core.dates import to_roc
from core.validators import personal_id_check_digit

TAIPEI = ZoneInfo("Asia/Taipei")


def new_national_id(seed: int) -> str:
    rng = random.Random(seed)
    prefix = rng.choice("ABCDEFGHJKLMNPQRSTUVXYWZ") + "1" + "".join(rng.choice("0123456789") for _ in range(7))
    return prefix + personal_id_check_digit(prefix)


def query(server, sql: str, *args):
    """Read the live server's database (to know which rows to expect, never to change them)."""
    with sqlite3.connect(server.instance / "app.db") as conn:
        return conn.execute(sql, args).fetchall()


def today() -> dt.date:
    return dt.datetime.now(TAIPEI).date()


def fill_visit(page, national_id: str, name: str, visit_date: dt.date) -> None:
    page.fill("#quitter_national_id", national_id)
    page.fill("#quitter_name", name)
    page.select_option("#quitter_sex", "F")
    page.fill("#quitter_birth_date", "70/05/12")
    page.fill("#visit_date", to_roc(visit_date))
    page.fill("#medication_name", "尼古丁貼片")
    page.fill("#medication_days", "14")
    page.fill("#education_minutes", "20")


def test_facility_enters_visits_uploads_a_batch_and_exports_the_month(journey, live_server):
    """facility_tpe: a visit; a second within 5 days refused on screen (C4); a batch with one
    bad row imports nothing and hands back the marked file; the month's visits to Excel."""
    person = journey("facility_tpe")
    page = person.page
    person.login("facility_tpe")
    assert "戒菸服務" in person.text(".navbar")  # the zh_TW menu

    quitter = new_national_id(1)
    person.goto("/visitview/add", shot="new visit form")
    fill_visit(page, quitter, "林小妤", today())
    person.submit("form [type=submit]", shot="visit saved")
    assert "資料已新增" in person.flashes(), person.text()

    person.goto("/visitview/add", shot="second visit form")
    fill_visit(page, quitter, "林小妤", today() - dt.timedelta(days=2))
    person.submit("form [type=submit]", shot="second visit refused")
    assert "/visitview/add" in page.url
    assert "不符 5 日規定" in person.text() and to_roc(today()) in person.text()

    # Batch upload: the published template, one good row and one bad national ID.
    person.goto("/visitupload/", shot="batch upload")
    template = person.download("#template-link")
    practitioner_id = query(
        live_server,
        "SELECT p.national_id FROM practitioner p JOIN service_assignment a ON a.practitioner_id = p.id "
        "JOIN institution i ON i.id = a.institution_id WHERE i.nhi_code = ? ORDER BY p.id LIMIT 1",
        "0110000095",
    )[0][0]
    workbook = load_workbook(template)
    sheet = workbook.worksheets[0]
    day = to_roc(today() - dt.timedelta(days=1))
    sheet.append(["0110000095", practitioner_id, new_national_id(2), "陳大文", "M", "60/01/01", day, "戒必適", 28, None])
    sheet.append(["0110000095", practitioner_id, "A123456780", "王小明", "M", "61/02/02", day, None, None, 30])
    upload = person.folder / "batch.xlsx"
    workbook.save(upload)
    before = query(live_server, "SELECT count(*) FROM visit")[0][0]
    page.set_input_files("#upload-file", str(upload))
    person.submit("#upload-submit", shot="batch refused")
    assert "沒有匯入" in person.flashes() or "未匯入" in person.flashes(), person.flashes()
    assert query(live_server, "SELECT count(*) FROM visit")[0][0] == before
    report = load_workbook(person.download("#error-report")).worksheets[0]
    rows = list(report.iter_rows(values_only=True))
    assert rows[1][-1] in (None, "") and "檢查碼" in rows[2][-1], rows

    # The month's visits, filtered in the list and exported with the same filter.
    first = today().replace(day=1)
    person.goto(
        f"/visitview/list/?_flt_1_visit_date={to_roc(first - dt.timedelta(days=1))}"
        f"&_flt_2_visit_date={to_roc((first + dt.timedelta(days=32)).replace(day=1))}",
        shot="visits of the month",
    )
    exported = load_workbook(person.download("#export-xlsx")).worksheets[0]
    dates = [r[0] for r in list(exported.iter_rows(values_only=True))[1:]]
    expected = query(
        live_server,
        "SELECT count(*) FROM visit v JOIN institution i ON i.id = v.institution_id "
        "WHERE i.nhi_code = ? AND v.visit_date >= ? AND v.visit_date < ?",
        "0110000095", first.isoformat(), (first + dt.timedelta(days=32)).replace(day=1).isoformat(),
    )[0][0]  # fmt: skip
    assert len(dates) == expected > 0
    assert all(str(d).startswith(to_roc(first)[:7]) for d in dates), dates[:5]
    person.finish()


def test_bureau_sees_only_its_county_and_cannot_open_another_by_url(journey, live_server):
    """bureau_khh: every institution listed is in 高雄市; a 臺北市 one by URL is a 404."""
    person = journey("bureau_khh")
    person.login("bureau_khh")
    person.goto("/institutionview/list/?psize_InstitutionView=100", shot="institutions")
    counties = person.page.locator("table tbody tr td:nth-last-child(2)").all_inner_texts()
    expected = query(
        live_server,
        "SELECT count(*) FROM institution i JOIN county c ON c.id = i.county_id WHERE c.name = '高雄市'",
    )[0][0]
    assert counties and set(counties) == {"高雄市"} and len(counties) == expected, counties
    taipei = query(
        live_server,
        "SELECT i.id FROM institution i JOIN county c ON c.id = i.county_id WHERE c.name = '臺北市' LIMIT 1",
    )[0][0]
    person.goto(f"/institutionview/show/{taipei}", shot="taipei institution by url", expect_status=404)
    person.goto(f"/institutionview/edit/{taipei}", shot="taipei edit by url", expect_status=404)
    person.finish()


def test_helpdesk_sees_a_lockout_and_unlocks_the_account(journey, live_server):
    """5 failed logins lock facility_tpe (A13); the helpdesk finds it, sees it locked, and
    unlocks it; then facility_tpe signs in again."""
    person = journey("helpdesk")
    for _attempt in range(5):
        person.login("facility_tpe", "Wrong-Password-1!", expect_ok=False)
    person.login("facility_tpe", expect_ok=False)
    assert "鎖定" in person.flashes(), person.flashes()

    person.login("helpdesk")
    person.goto("/accounts/list/?_flt_0_username=facility_tpe", shot="account lookup")
    row = person.page.locator("table tbody tr", has_text="facility_tpe")
    assert "鎖定至" in row.inner_text()
    person.click("table tbody tr:has-text('facility_tpe') a[href*='/accounts/show/']", shot="account")
    assert "鎖定至" in person.text()
    person.confirm_action("解除鎖定", shot="unlocked")
    assert "帳號已解除鎖定" in person.flashes()
    assert "啟用" in person.text()
    person.logout()
    person.login("facility_tpe")
    person.finish()


def minimal_pdf() -> bytes:
    from pypdf import PdfWriter

    writer = PdfWriter()
    writer.add_blank_page(width=595, height=842)
    buffer = io.BytesIO()
    writer.write(buffer)
    return buffer.getvalue()


def test_an_applicant_applies_and_the_bureau_approves(journey, live_server):
    """A13: a facility staff member applies on the public page; bureau_khh approves; the
    account exists, inactive, and the applicant is mailed a set-password link."""
    person = journey("applicant")
    page = person.page
    person.goto("/login/", shot="login page")
    person.click("a[href*='/apply/']", shot="application form")
    page.fill("#applicant_name", "張雅婷")
    page.fill("#email", "ya-ting.chang@example.org")
    page.fill("#phone", "(07)3456-7890")
    page.fill("#job_title", "個案管理師")
    page.select_option("#requested_role", "facility")
    page.fill("#nhi_code", "0610000087")
    page.fill("#supervisor_name", "黃主任")
    pdf = person.folder / "application.pdf"
    pdf.write_bytes(minimal_pdf())
    page.set_input_files("#form_file", str(pdf))
    person.submit("form [type=submit]", shot="application sent")
    assert "/apply/done" in page.url, person.text()

    person.login("bureau_khh")
    person.goto("/accountapplicationview/list/", shot="applications")
    person.click("table tbody tr:has-text('張雅婷') a[href*='/show/']", shot="application")
    person.confirm_action("核准", shot="approved")
    assert "已開通" in person.flashes() or "開通" in person.flashes(), person.flashes()
    assert query(live_server, "SELECT active FROM ab_user WHERE email = ?", "ya-ting.chang@example.org") == [(0,)]
    mails = list((live_server.instance / "mail").glob("*.eml"))
    assert any("ya-ting.chang@example.org" in m.read_text(errors="replace") for m in mails)
    person.finish()
