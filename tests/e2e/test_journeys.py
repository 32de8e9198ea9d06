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
    page.select_option("#medication_name", label="尼古丁貼片")  # the code list (issue 15)
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
    assert "已儲存：林小妤" in person.flashes(), person.text()

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
    dates = [r[0] for r in list(exported.iter_rows(values_only=True))[2:]]  # below title, headers
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


def national_id(prefix: str) -> str:
    return prefix + personal_id_check_digit(prefix)


def mail_texts(server) -> list[str]:
    """Subject and body of every mail the live server wrote to its folder, decoded."""
    import email
    from email import policy

    texts = []
    for path in sorted((server.instance / "mail").glob("*.eml")):
        message = email.message_from_bytes(path.read_bytes(), policy=policy.default)
        body = message.get_body(preferencelist=("plain", "html"))
        texts.append(f"{message['subject']}\n{body.get_content() if body else ''}")
    return texts


def tpe_institution(server) -> tuple[int, str]:
    """facility_tpe's institution (id, NHI code), read from its account's scope."""
    return query(
        server,
        "SELECT i.id, i.nhi_code FROM institution i WHERE i.nhi_code = ?",
        "0110000095",
    )[0]


def test_office_enters_a_faxed_ticket_converts_it_and_opens_the_statistics(journey, live_server):
    """C5–C7 and C9 as the office meets them: a faxed Appendix 9 form for facility_tpe's
    placeholder record (林志明, seed/cessation/corrections.py) entered in one screen; approval refused
    without the seals (C7), then approved; the conversion preview, the conversion, and the
    ticket number on the record's audit trail. Then the ROC 113 statistics, the chart and
    the workbook."""
    person = journey("office_ticket")
    page = person.page
    _institution_id, nhi_code = tpe_institution(live_server)
    quitter = national_id("F12345678")
    placeholder_id, recorded = query(
        live_server,
        "SELECT v.id, v.visit_date FROM visit v JOIN quitter q ON q.id = v.quitter_id "
        "WHERE q.national_id = ? ORDER BY v.id DESC LIMIT 1",
        quitter,
    )[0]
    recorded = dt.date.fromisoformat(recorded)
    real = today() - dt.timedelta(days=70)

    person.login("office")
    person.goto("/corrections/list/", shot="ticket queue")
    assert person.page.locator("#status-counts .status-count").count() == 6
    person.click("#new-ticket", shot="new ticket form")
    page.fill("#nhi_code", nhi_code)
    page.select_option("#channel", "fax")
    page.fill("#received_on", to_roc(today()))
    page.fill("#quitter_national_id", quitter)
    page.fill("#lines-0-recorded_date", to_roc(recorded))
    page.fill("#lines-0-corrected_date", to_roc(real))
    page.fill(
        "#reason",
        f"個案於 {to_roc(real)} 就診之資料漏未登錄，於 {to_roc(recorded)} 發現後以發現日建檔，申請更正為實際就診日期。",
    )
    scan = person.folder / "附錄九更正申請單.pdf"
    scan.write_bytes(minimal_pdf())
    page.set_input_files("#form_file", str(scan))
    person.submit("#file-ticket", shot="ticket filed")
    assert "已" in person.flashes() and "/corrections/show/" in page.url, person.text()
    number = page.inner_text("#ticket-fields tr:first-child td:nth-child(2)").strip()
    assert number.startswith(f"{today().year - 1911}-"), number
    assert person.text("#ticket-status") == "收件"
    assert "附錄九更正申請單.pdf" in person.text("#ticket-attachments")

    person.submit("#start-review", shot="in review")
    assert person.text("#ticket-status") == "審核中"
    # C7: no approval without both seals checked.
    page.check("#approve-form input[name=institution_seal]")
    person.submit("#approve", shot="approval refused without the supervisor's seal")
    assert person.text("#ticket-status") == "審核中"
    assert "申請單須有" in person.flashes() and "業務主管簽章" in person.flashes(), person.flashes()
    page.check("#approve-form input[name=institution_seal]")
    page.check("#approve-form input[name=supervisor_seal]")
    person.submit("#approve", shot="approved")
    assert person.text("#ticket-status") == "核准待轉檔", person.flashes()

    person.click("#conversion-preview", shot="conversion preview")
    row = page.locator("#conversion-preview tr").nth(1)
    assert row.locator(".before").inner_text() == to_roc(recorded)
    assert row.locator(".after").inner_text() == to_roc(real)
    assert row.locator(".problem").inner_text() == "可轉檔", row.inner_text()
    person.submit("#convert", shot="converted")
    assert number in person.flashes(), person.flashes()
    assert person.text("#ticket-status") == "已轉檔"
    audit = person.text("#ticket-audit")
    assert number in audit and to_roc(recorded) in audit and to_roc(real) in audit, audit
    assert query(live_server, "SELECT visit_date, original_date FROM visit WHERE id = ?", placeholder_id) == [
        (real.isoformat(), recorded.isoformat())
    ]
    person.goto(f"/visitview/show/{placeholder_id}", shot="the converted record")
    record = person.text()
    assert number in record and to_roc(real) in record and to_roc(recorded) in record, record

    # C9: the yearly statistics of ROC 113, the chart and the workbook.
    person.goto("/cessationstats/?year=113", shot="statistics 113")
    for table in ("#table-1", "#table-2", "#table-3"):
        assert page.locator(f"{table} tr").count() >= 3, table
    assert "113" in person.text(".panel-heading")
    assert page.locator("#execution-rate-chart rect.bar").count() >= 3
    workbook = load_workbook(person.download("#export-xlsx"))
    cells = [str(c) for row in workbook.worksheets[0].iter_rows(values_only=True) for c in row if c is not None]
    for header in ("合約特約機構數", "執行特約機構數", "執行率", "層級別"):
        assert any(header in c for c in cells), (header, cells[:20])
    assert any("113" in c for c in cells[:3]), cells[:3]
    person.finish()


def test_facility_files_online_is_returned_and_sees_the_reminder(journey, live_server):
    """C5: facility_tpe files a ticket online with the scanned stamped form; the office
    returns it with a reason, which the institution then reads; and the converted swap-case
    ticket of the seed shows its re-entry reminder on the self-check screen (C6)."""
    person = journey("facility_ticket")
    page = person.page
    institution_id, _nhi_code = tpe_institution(live_server)
    quitter = national_id("D28800004")  # 陳怡君: her first ticket was returned (seed)
    recorded = dt.date.fromisoformat(
        query(
            live_server,
            "SELECT v.visit_date FROM visit v JOIN quitter q ON q.id = v.quitter_id "
            "WHERE q.national_id = ? ORDER BY v.id LIMIT 1",
            quitter,
        )[0][0]
    )
    real = today() - dt.timedelta(days=80)

    person.login("facility_tpe")
    person.goto("/corrections/list/", shot="own tickets")
    person.click("#new-ticket", shot="online form")
    assert page.locator("#nhi_code").count() == 0  # the institution is its own, not typed
    page.select_option("#institution", str(institution_id))
    page.fill("#quitter_national_id", quitter)
    page.fill("#lines-0-recorded_date", to_roc(recorded))
    page.fill("#lines-0-corrected_date", to_roc(real))
    page.fill("#reason", f"個案於 {to_roc(real)} 就診之資料漏未登錄，依附錄九申請更正就診日期（已補蓋業務主管章）。")
    # No scanned form: refused, nothing filed.
    before = query(live_server, "SELECT count(*) FROM correction_ticket")[0][0]
    person.submit("#file-ticket", shot="refused without the scan")
    assert "/corrections/add" in page.url and "掃描" in person.flashes(), person.flashes()
    assert query(live_server, "SELECT count(*) FROM correction_ticket")[0][0] == before
    scan = person.folder / "更正申請單_用印.pdf"
    scan.write_bytes(minimal_pdf())
    page.fill("#lines-0-recorded_date", to_roc(recorded))
    page.fill("#lines-0-corrected_date", to_roc(real))
    page.set_input_files("#form_file", str(scan))
    person.submit("#file-ticket", shot="filed online")
    assert "/corrections/show/" in page.url, person.flashes() + person.text()
    ticket_url = page.url
    number = page.inner_text("#ticket-fields tr:first-child td:nth-child(2)").strip()
    assert "線上" in person.text("#ticket-fields") and person.text("#ticket-status") == "收件"
    assert page.locator("#review-actions").count() == 0  # the institution does not review
    person.logout()

    office = journey("facility_ticket_office")
    office.login("office")
    office.goto("/corrections/list/?_flt_0_status=received", shot="received tickets")
    office.click(f"table tbody tr:has-text('{number}') a[href*='/show/']", shot="the online ticket")
    assert "更正申請單_用印.pdf" in office.text("#ticket-attachments")
    reason = "申請單更正後日期與病歷影本不符，請檢附當日病歷後重新申請。"
    office.page.fill("#return-form textarea[name=return_reason]", reason)
    office.submit("#return", shot="returned")
    assert office.text("#ticket-status") == "退件", office.flashes()
    assert any(number in text and reason in text for text in mail_texts(live_server)), mail_texts(live_server)
    office.finish()

    person.login("facility_tpe")
    person.goto(ticket_url, shot="returned ticket")
    assert person.text("#ticket-status") == "退件"
    assert reason in person.text("#return-reason")
    person.click("#file-again", shot="filing again, pre-filled")
    assert page.input_value("#quitter_national_id") == quitter
    assert page.input_value("#lines-0-recorded_date") == to_roc(recorded)
    # C6: the converted swap case of the seed asks for the displaced visit to be re-entered.
    person.goto("/selfcheck/", shot="self-check with the re-entry reminder")
    reminders = person.text("#reentry-reminders")
    swap_number = query(
        live_server,
        "SELECT t.number FROM correction_ticket t JOIN quitter q ON q.id = t.quitter_id WHERE q.national_id = ?",
        national_id("E18800005"),
    )[0][0]
    assert swap_number in reminders and "黃冠宇" in reminders, reminders
    person.finish()


def test_a_person_registered_elsewhere_is_kept_apart_and_the_office_merges_it(journey, live_server):
    """Issue 12: facility_tpe enters a visit for an ID that 高雄市 registered under another
    name: saved like any visit, no "name does not match", and it sees only what it typed;
    the office finds the registration under 戒菸者身分資料待核對 beside the national record
    and merges it."""
    khh = "SELECT id FROM institution WHERE nhi_code = (SELECT nhi_code FROM institution i JOIN ab_user_institution ui ON ui.institution_id = i.id JOIN ab_user u ON u.id = ui.user_id WHERE u.username = 'facility_khh')"  # noqa: E501
    row = query(
        live_server,
        "SELECT q.national_id, q.name FROM quitter q WHERE q.identity_status = 'verified' AND q.id IN "
        f"(SELECT quitter_id FROM visit WHERE institution_id IN ({khh})) AND q.id NOT IN "
        "(SELECT person_id FROM person_link WHERE person_kind = 'quitter' AND institution_id NOT IN "
        f"({khh})) AND q.id NOT IN (SELECT quitter_id FROM visit WHERE visit_date >= ?) LIMIT 1",
        (today() - dt.timedelta(days=10)).isoformat(),
    )
    national_id, registered_name = row[0]
    person = journey("person_elsewhere")
    person.login("facility_tpe")
    person.goto("/visitview/add", shot="visit of a person registered elsewhere")
    fill_visit(person.page, national_id, "林美玲", today())
    person.submit("form [type=submit]", shot="saved under the typed name")
    assert "已儲存：林美玲" in person.flashes(), person.text()
    person.goto(f"/quitterview/list/?_flt_0_national_id={national_id}", shot="own quitter list")
    listed = person.text()
    assert "林美玲" in listed and registered_name not in listed
    person.finish()

    office = journey("person_elsewhere_office")
    office.login("office")
    office.goto("/quitteridentityview/list/", shot="identity data to reconcile")
    office.click("table tbody tr:has-text('林美玲') a[href*='/show/']", shot="conflict beside the national record")
    assert registered_name in office.text()
    office.confirm_action("併入全國資料", shot="merged")
    assert "已併入全國資料" in office.flashes(), office.flashes()
    assert query(live_server, "SELECT count(*) FROM quitter WHERE national_id = ?", national_id)[0][0] == 1
    office.finish()
