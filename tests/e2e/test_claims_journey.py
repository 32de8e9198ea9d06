"""A11 in the browser: cm_khh builds and submits a month's claim (a line left out, the sign-off
PDF printed), bureau_khh returns one line with a reason, cm_khh corrects and resubmits,
bureau_khh approves, and the ministry's 補助經費核銷統計 shows the approved amount."""

from __future__ import annotations

from pypdf import PdfReader

from tests.e2e.test_journeys import query

MONTH = "8"  # the demo's claims take 114/01–114/07 (seed/addiction/claims.py)


def test_a11_claim_built_returned_corrected_resubmitted_and_approved(journey, live_server):
    staff = journey("claim_cm_khh")
    page = staff.page
    staff.login("cm_khh")
    staff.goto("/claim/add", shot="new claim")
    page.select_option("select[name=scheme_code]", "MOHW-DRUG")
    page.fill("input[name=year]", "114")
    page.fill("input[name=period_number]", MONTH)
    staff.submit("form [type=submit]", shot="claim drafted")
    assert "/claim/show/" in page.url, staff.flashes()
    claim_id = int(page.url.rstrip("/").split("/")[-1])
    lines = page.locator("#claim-lines input[name=line]")
    assert lines.count() >= 3, staff.text("#claim-lines")
    page.locator("#claim-lines input[name=line]").last.check()
    staff.click("#leave-out", shot="a line left out")
    pdf = PdfReader(str(staff.download("#package-pdf")))
    assert "機構負責人" in "".join(p.extract_text() for p in pdf.pages)
    staff.click("#submit-claim", shot="submitted")
    assert "已送出" in staff.text("#claim-status")

    bureau = journey("claim_bureau_khh")
    bpage = bureau.page
    bureau.login("bureau_khh")
    bureau.goto("/claimreview/list/", shot="claims waiting")
    bureau.goto(f"/claimreview/show/{claim_id}", shot="claim to review")
    bpage.locator("#claim-lines input[name=line]").first.check()
    bpage.select_option("#reason", "no_record")
    bpage.fill("#comment", "治療紀錄未簽名")
    bureau.click("#return-lines", shot="line returned")
    bpage.locator("#claim-lines tr[data-review=pending][data-included='1'] input[name=line]").evaluate_all(
        "boxes => boxes.forEach(b => b.checked = true)")
    bureau.click("#approve-lines", shot="other lines approved")
    bureau.click("#decide", shot="claim returned")
    assert "退回" in bureau.text("#claim-status")

    staff.goto(f"/claim/show/{claim_id}", shot="returned claim")
    assert "治療紀錄未簽名" in staff.text("#claim-lines")
    page.fill("#note", "已補醫師簽名")
    staff.click("#save-note", shot="correction note")
    staff.click("#submit-claim", shot="resubmitted")
    assert "再送出" in staff.text("#claim-status")

    bureau.goto(f"/claimreview/show/{claim_id}", shot="resubmitted claim with its difference")
    assert "已補醫師簽名" in bureau.text("#claim-diff")
    bpage.locator("#claim-lines tr[data-review=pending][data-included='1'] input[name=line]").evaluate_all(
        "boxes => boxes.forEach(b => b.checked = true)")
    bureau.click("#approve-lines", shot="last line approved")
    bureau.click("#decide", shot="claim approved")
    assert "核准" in bureau.text("#claim-status")
    approved = int(query(live_server, f"SELECT approved_amount FROM claim WHERE id = {claim_id}")[0][0])
    assert approved > 0

    ministry = journey("claim_ministry")
    ministry.login("ministry")
    ministry.goto("/claimreport/?year=114", shot="subsidy claims against budget")
    total = int(query(live_server, "SELECT SUM(approved_amount) FROM claim WHERE year = 2025 AND scheme_code = 'MOHW-DRUG' "
                                   "AND status IN ('approved', 'partial')")[0][0])  # fmt: skip
    assert f"{total:,}" in ministry.text("#claim-report")
    for person in (staff, bureau, ministry):
        person.finish()
