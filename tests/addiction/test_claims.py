"""A11: subsidy claims — built from the claimable lines, lines left out one by one, the sign-off
package (PDF and workbook) equal to its frozen snapshot, submitted to the county bureau, reviewed
line by line, returned with a reason, corrected and resubmitted, approved in part or in full
against the scheme's budget; concurrent clicks; scope both ways; the queues and the report."""

from __future__ import annotations

import datetime as dt
import io
import itertools
import threading

import pytest

from core import clock
from core.dates import TAIPEI
from core.errors import UserError
from domain.addiction.claims import (
    BuildClaim,
    DecideClaim,
    FreezePackage,
    ReviewLines,
    SubmitClaim,
    budget_remaining,
    bureau_recipients,
    institution_recipients,
)
from models.addiction.claim import Claim, ClaimReview, ClaimSubmission, ClaimTransition
from tests.addiction import claims_world as w
from tests.conftest import csrf_token

#: Years of this module's own schemes (no other test module has schemes in them).
Y = 2034
Y_TIGHT = 2035
ROC = Y - 1911
_his = itertools.count(1)


@pytest.fixture(scope="module")
def world(app):
    from core.extensions import db

    with app.app_context():
        world = w.build(app, db)
        from models.addiction.scheme import SubsidyScheme

        if db.session.query(SubsidyScheme).filter_by(code="C-DRUG").first() is None:
            khh = db.session.query(w.County).filter_by(code="KHH").one().id
            w.scheme(db, "C-DRUG", None, Y, 40_000, 1_000_000, [
                w.item("PSY", 1500, "individual_psychotherapy"), w.item("CM", 500, "case_management", within_cap=False, cm=True)])  # fmt: skip
            w.scheme(db, "C-KHH", khh, Y, 20_000, 100_000, [w.item("GRP", 800, "group_psychotherapy")])
            w.scheme(db, "C-DRUG", None, Y_TIGHT, 40_000, 2_000, [w.item("PSY", 1500, "individual_psychotherapy")])
            db.session.commit()
        yield world
        db.session.remove()


def _today(year=Y):
    return clock.frozen(dt.datetime(year, 12, 20, 9, 0, tzinfo=TAIPEI))


def _lines(app, db, world, days, year=Y, kind="individual_psychotherapy", code="PSY01"):
    """A new person with a case at institution B (高雄市), a record and an HIS order each day."""
    person = w.patient(db)
    case = w.case(db, world.b, person, opened=dt.date(year, 1, 1), course=(dt.date(year, 1, 1), dt.date(year, 12, 31)))
    for day in days:
        w.record(db, case, day, kind=kind)
    db.session.commit()
    serial = next(_his)
    response = w.post(app, world.key_b, {"orders": [w.order(f"CLM-{case.id}-{serial}", n, person, code, day)
                                                     for n, day in enumerate(days, start=1)]})  # fmt: skip
    assert response.status_code == 200, response.text
    return case


def _march(year=Y):
    return [dt.date(year, 3, d) for d in (3, 10, 17)]


def _claim(db, world, code="C-DRUG", year=Y, month=3) -> Claim:
    with _today(year):
        claim = BuildClaim(world.b, code, year - 1911, month).run()
    db.session.expire_all()
    return db.session.get(Claim, claim.id)


def _post(client, app, url, **data):
    return client.post(url, data={"csrf_token": csrf_token(app, client), **data}, follow_redirects=True)


def _state(db, claim_id):
    db.session.expire_all()
    claim = db.session.get(Claim, claim_id)
    return (claim.status, claim.claimed_amount, claim.approved_amount, claim.submissions,
            db.session.query(ClaimTransition).filter_by(claim_id=claim_id).count(),
            db.session.query(ClaimSubmission).filter_by(claim_id=claim_id).count(),
            db.session.query(ClaimReview).filter_by(claim_id=claim_id).count(),
            tuple((ln.id, ln.included, ln.review, ln.amount) for ln in claim.lines))  # fmt: skip


def _pdf_text(data: bytes) -> list[str]:
    from pypdf import PdfReader

    return [page.extract_text() for page in PdfReader(io.BytesIO(data)).pages]


def _mails(to):
    from core.mail import read_mails

    return [text for _path, text in read_mails(to)]


# ------------------------------------------------------------------ the full cycle
def test_a11_full_cycle_with_return_resubmission_and_partial_approval(app, db, world, login_as):
    """cm builds the month's claim, leaves a line out, prints, submits; the bureau returns a
    line with a reason; resubmitted unchanged it is refused; corrected and resubmitted, the
    bureau sees the difference, returns it again and closes the claim as 部分核准 — the
    approved amount is written against the budget and the ministry's report shows it."""
    days = _march()
    _lines(app, db, world, days)
    staff, bureau = login_as(world.staff_b), login_as("bureau_khh")
    with _today():
        page = _post(staff, app, "/claim/add", institution=str(world.b), scheme_code="C-DRUG", year=str(ROC),
                     period_number="3")  # fmt: skip
    assert page.status_code == 200
    claim = db.session.query(Claim).filter_by(institution_id=world.b, scheme_code="C-DRUG", year=Y,
                                              period_start=dt.date(Y, 3, 1)).one()  # fmt: skip
    ids = [ln.id for ln in claim.lines]
    assert len(ids) >= 3 and claim.status == "draft" and claim.claimed_amount == 1500 * len(ids)
    before_budget = budget_remaining("C-DRUG", Y)

    # Left out one by one before submitting.
    _post(staff, app, f"/claim/include/{claim.id}", line=str(ids[-1]), included="0")
    status, claimed, *_ = _state(db, claim.id)
    assert claimed == 1500 * (len(ids) - 1)

    # Submitted: the bureau is mailed; the claim is frozen as submission 1.
    bureau_mail = bureau_recipients(claim.institution.county_id)
    assert bureau_mail, "bureau_khh has an address"
    mails_before = len(_mails(bureau_mail[0]))
    page = _post(staff, app, f"/claim/submit/{claim.id}")
    assert _state(db, claim.id)[0] == "submitted"
    assert len(_mails(bureau_mail[0])) == mails_before + 1

    # Submitted claims are not edited: leaving a line out now changes nothing.
    frozen = _state(db, claim.id)
    page = _post(staff, app, f"/claim/include/{claim.id}", line=str(ids[0]), included="0")
    assert "只有草稿" in page.text or "only a draft" in page.text
    assert _state(db, claim.id) == frozen

    # The bureau: in its queue, approves the first line, returns the second with a reason.
    listing = bureau.get("/claimreview/list/").text
    assert f"/claimreview/show/{claim.id}" in listing
    _post(bureau, app, f"/claimreview/review/{claim.id}", line=str(ids[0]), decision="approved")
    _post(bureau, app, f"/claimreview/review/{claim.id}", line=str(ids[1]), decision="returned",
          reason="no_record", comment="紀錄未簽名")  # fmt: skip
    assert _state(db, claim.id)[0] == "in_review"
    staff_mail = institution_recipients(world.b)
    staff_before = len(_mails(staff_mail[0]))
    _post(bureau, app, f"/claimreview/decide/{claim.id}")
    assert _state(db, claim.id)[0] == "returned"
    returned_mail = _mails(staff_mail[0])
    assert len(returned_mail) == staff_before + 1

    # Resubmitted unchanged: refused, nothing changed, the history intact.
    frozen = _state(db, claim.id)
    page = _post(staff, app, f"/claim/submit/{claim.id}")
    assert "unchanged" in page.text or "未修正" in page.text or "未更正" in page.text or "不變" in page.text
    assert _state(db, claim.id) == frozen

    # Corrected (a 補正說明) and resubmitted: submission 2; the bureau sees the difference.
    _post(staff, app, f"/claim/note/{claim.id}", line=str(ids[1]), note="已補醫師簽名")
    _post(staff, app, f"/claim/submit/{claim.id}")
    status, _c, _a, submissions, *_ = _state(db, claim.id)
    assert (status, submissions) == ("resubmitted", 2)
    show = bureau.get(f"/claimreview/show/{claim.id}").text
    assert 'id="claim-diff"' in show and "已補醫師簽名" in show

    # Returned again and closed: 部分核准, the approved amount against the budget.
    _post(bureau, app, f"/claimreview/review/{claim.id}", line=str(ids[1]), decision="returned",
          reason="documents", comment="仍缺文件")  # fmt: skip
    _post(bureau, app, f"/claimreview/decide/{claim.id}", close="1")
    status, _c, approved, *_ = _state(db, claim.id)
    assert (status, approved) == ("partial", 1500)
    assert budget_remaining("C-DRUG", Y) == before_budget - 1500
    history = [t.to_status for t in db.session.query(ClaimTransition).filter_by(claim_id=claim.id)
               .order_by(ClaimTransition.id)]  # fmt: skip
    assert history == ["draft", "submitted", "in_review", "returned", "resubmitted", "in_review", "partial"]

    # The ministry reads the central-scheme claim and its report shows the amount.
    ministry = login_as("ministry")
    assert ministry.get(f"/claimreview/show/{claim.id}").status_code == 200
    api = ministry.get(f"/api/v1/claimreport/subsidy?year={ROC}").json
    row = next(r for r in api["schemes"] if r["code"] == "C-DRUG")
    assert row["approved"] >= 1500 and row["budget"] == 1_000_000
    assert "1,500" in ministry.get(f"/claimreport/?year={ROC}").text


def test_a11_full_approval_writes_the_amount_against_the_budget(app, db, world):
    """Every line approved: 核准, the claim's amount off the scheme-year's remaining budget."""
    _lines(app, db, world, [dt.date(Y, 4, 2), dt.date(Y, 4, 9)])
    claim = _claim(db, world, month=4)
    before = budget_remaining("C-DRUG", Y)
    SubmitClaim(claim).run()
    ReviewLines(claim, [ln.id for ln in claim.lines], "approved").run()
    DecideClaim(claim).run()
    assert claim.status == "approved" and claim.approved_amount == claim.claimed_amount > 0
    assert budget_remaining("C-DRUG", Y) == before - claim.approved_amount


# ------------------------------------------------------------------ the package
def test_a11_package_equals_its_snapshot_and_prints_the_same_twice(app, db, world, login_as):
    """PDF (read back with pypdf) and workbook (openpyxl) hold the snapshot's lines and its
    hash on every page; printing an unchanged claim twice gives the same snapshot and bytes."""
    from openpyxl import load_workbook

    from domain.addiction.claim_package import package_pdf
    from domain.addiction.claims import snapshot_data

    _lines(app, db, world, [dt.date(Y, 5, d) for d in (5, 12)])
    claim = _claim(db, world, month=5)
    first = FreezePackage(claim).run()
    second = FreezePackage(claim).run()
    assert first.id == second.id and first.sha256 == second.sha256
    assert package_pdf(first) == package_pdf(second)
    data = snapshot_data(first)
    staff = login_as(world.staff_b)
    response = staff.post(f"/claim/package/{claim.id}", data={"csrf_token": csrf_token(app, staff), "format": "pdf"})
    assert response.status_code == 302 and f"/claim/package/{first.id}.pdf" in response.headers["Location"]
    pdf = staff.get(f"/claim/package/{first.id}.pdf")
    assert pdf.status_code == 200 and pdf.mimetype == "application/pdf"
    pages = _pdf_text(pdf.data)
    assert all(first.sha256 in text.replace("\n", "") for text in pages)
    text = "".join(pages)
    for line in data["lines"]:
        assert line["roc"] in text and f"{line['amount']:,}" in text
    from flask_babel import force_locale, gettext

    with force_locale("zh_Hant_TW"):  # 承辦人, 單位主管, 機構負責人 (babel/pending/i19-claims.tsv)
        for label in ("Officer in charge", "Head of unit", "Head of institution"):
            assert gettext(label) in text
    assert claim.institution.name in text
    book = staff.get(f"/claim/package/{first.id}.xlsx")
    assert book.status_code == 200
    sheet = load_workbook(io.BytesIO(book.data), read_only=True).active
    rows = list(sheet.iter_rows(values_only=True))
    assert first.sha256 in rows[0][0]
    body = [r for r in rows[2:] if isinstance(r[0], int)]
    assert [(r[4], r[8]) for r in body] == [(d["roc"], d["amount"]) for d in data["lines"]]
    # Leaving a line out makes a new snapshot with a new hash; the old one stays as it was.
    from domain.addiction.claims import IncludeLines

    IncludeLines(claim, [claim.lines[0].id], False).run()
    third = FreezePackage(claim).run()
    assert third.id != first.id and third.sha256 != first.sha256 and third.lines == first.lines - 1
    db.session.expire_all()
    assert db.session.get(ClaimSubmission, first.id).content == first.content


# ------------------------------------------------------------------ concurrency
def _race(app, claim_id, step):
    """Run step(claim) in two threads at once, each with its own session; (results, errors)."""
    barrier = threading.Barrier(2)
    results, errors = [], []

    def worker():
        from core.extensions import db as _db

        with app.app_context():
            claim = _db.session.get(Claim, claim_id)
            _ = claim.lines, claim.institution  # read before the race, as a page would
            barrier.wait()
            try:
                results.append(step(claim).run())
            except UserError as exc:  # ClaimRefused, or ClaimStale (the lost race)
                errors.append(("refused", exc.status, str(exc)))
            except Exception as exc:  # reported below
                errors.append(("error", repr(exc)))
            finally:
                _db.session.remove()

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results, errors


def test_a11_concurrent_submission_one_wins_the_other_is_told(app, db, world):
    """Two submissions of one draft at once: one submission, one history row, a 409 message."""
    _lines(app, db, world, [dt.date(Y, 6, 1), dt.date(Y, 6, 8)])
    claim = _claim(db, world, month=6)
    results, errors = _race(app, claim.id, SubmitClaim)
    assert len(results) == 1 and len(errors) == 1, errors
    assert errors[0][0] == "refused" and errors[0][1] == 409, errors
    status, _c, _a, submissions, transitions, snapshots, *_ = _state(db, claim.id)
    assert (status, submissions, transitions, snapshots) == ("submitted", 1, 2, 1)


def test_a11_concurrent_approval_one_wins_budget_written_once(app, db, world):
    """Two approvals of one claim at once: approved once, its amount off the budget once."""
    _lines(app, db, world, [dt.date(Y, 2, 3), dt.date(Y, 2, 10)])
    claim = _claim(db, world, month=2)
    SubmitClaim(claim).run()
    ReviewLines(claim, [ln.id for ln in claim.lines], "approved").run()
    before = budget_remaining("C-DRUG", Y)
    results, errors = _race(app, claim.id, DecideClaim)
    assert len(results) == 1 and len(errors) == 1, errors
    assert errors[0][0] == "refused" and errors[0][1] == 409
    status, claimed, approved, _s, transitions, *_ = _state(db, claim.id)
    assert (status, approved) == ("approved", claimed)
    assert budget_remaining("C-DRUG", Y) == before - claimed
    assert db.session.query(ClaimTransition).filter_by(claim_id=claim.id, to_status="approved").count() == 1


# ------------------------------------------------------------------ bad input
def test_a11_approving_beyond_the_remaining_budget_is_refused(app, db, world, login_as):
    """A scheme-year with NT$2,000 left: the first NT$1,500 line is approved, the second refused."""
    _lines(app, db, world, [dt.date(Y_TIGHT, 3, 2), dt.date(Y_TIGHT, 3, 9)], year=Y_TIGHT)
    claim = _claim(db, world, year=Y_TIGHT, month=3)
    SubmitClaim(claim).run()
    bureau = login_as("bureau_khh")
    first, second = [ln.id for ln in claim.lines]
    _post(bureau, app, f"/claimreview/review/{claim.id}", line=str(first), decision="approved")
    frozen = _state(db, claim.id)
    page = _post(bureau, app, f"/claimreview/review/{claim.id}", line=str(second), decision="approved")
    assert "budget" in page.text or "預算" in page.text
    assert _state(db, claim.id) == frozen


def test_a11_bad_input_is_refused_with_a_message_and_changes_nothing(app, db, world, login_as):
    """Submitting or approving twice, another county's bureau, lines of another claim, a
    reason not in the list, a month 13: a message (the form keeps what was typed), no change."""
    _lines(app, db, world, [dt.date(Y, 7, 1), dt.date(Y, 7, 8)])
    claim = _claim(db, world, month=7)
    staff, bureau, other = login_as(world.staff_b), login_as("bureau_khh"), login_as("bureau_tpe")
    _post(staff, app, f"/claim/submit/{claim.id}")
    frozen = _state(db, claim.id)
    page = _post(staff, app, f"/claim/submit/{claim.id}")
    assert page.status_code == 200 and _state(db, claim.id) == frozen  # submitted twice
    # Another county's bureau: 404 on every step, nothing changed.
    for url, data in ((f"/claimreview/show/{claim.id}", None),
                      (f"/claimreview/review/{claim.id}", {"line": str(claim.lines[0].id), "decision": "approved"}),
                      (f"/claimreview/decide/{claim.id}", {})):  # fmt: skip
        response = other.get(url) if data is None else other.post(url, data={"csrf_token": csrf_token(app, other), **data})
        assert response.status_code == 404, url
    assert _state(db, claim.id) == frozen
    # A line of another claim, a junk id, a reason not in the list.
    foreign = db.session.query(Claim).filter(Claim.id != claim.id, Claim.institution_id == world.b).first()
    for data in ({"line": str(foreign.lines[0].id) if foreign and foreign.lines else "999999", "decision": "approved"},
                 {"line": "abc", "decision": "approved"},
                 {"line": str(claim.lines[0].id), "decision": "returned", "reason": "because"},
                 {"line": str(claim.lines[0].id), "decision": "maybe"}):  # fmt: skip
        page = _post(bureau, app, f"/claimreview/review/{claim.id}", **data)
        assert page.status_code == 200 and "alert-danger" in page.text, data
    assert _state(db, claim.id) == frozen
    # Approved, then approved again: refused, the amount written once.
    _post(bureau, app, f"/claimreview/review/{claim.id}", line=[str(ln.id) for ln in claim.lines], decision="approved")
    _post(bureau, app, f"/claimreview/decide/{claim.id}")
    frozen = _state(db, claim.id)
    assert frozen[0] == "approved"
    page = _post(bureau, app, f"/claimreview/decide/{claim.id}")
    assert "alert-danger" in page.text and _state(db, claim.id) == frozen
    # A month 13 and a second claim for the same period: the form comes back as typed.
    with _today():
        page = _post(staff, app, "/claim/add", institution=str(world.b), scheme_code="C-DRUG", year=str(ROC),
                     period_number="13")  # fmt: skip
        assert "alert-danger" in page.text and 'value="13"' in page.text
        count = db.session.query(Claim).count()
        page = _post(staff, app, "/claim/add", institution=str(world.b), scheme_code="C-DRUG", year=str(ROC),
                     period_number="7")  # fmt: skip
        assert "alert-danger" in page.text and db.session.query(Claim).count() == count


def test_a11_bureau_reviewer_cannot_prepare_and_institution_cannot_review(app, db, world, login_as):
    """Each side's steps are its own: the institution cannot approve its own claim."""
    _lines(app, db, world, [dt.date(Y, 8, 4), dt.date(Y, 8, 11)])
    claim = _claim(db, world, month=8)
    SubmitClaim(claim).run()
    frozen = _state(db, claim.id)
    staff = login_as(world.staff_b)
    response = staff.post(f"/claimreview/review/{claim.id}", data={"csrf_token": csrf_token(app, staff),
                                                                    "line": str(claim.lines[0].id), "decision": "approved"})  # fmt: skip
    assert response.status_code in (302, 403, 404)
    ministry = login_as("ministry")
    response = ministry.post(f"/claimreview/decide/{claim.id}", data={"csrf_token": csrf_token(app, ministry)})
    assert response.status_code in (302, 403, 404)
    assert _state(db, claim.id) == frozen


# ------------------------------------------------------------------ scope both ways
def test_a11_scope_both_ways(app, db, world, login_as):
    """The institution and its county's bureau (once submitted) see the claim, its package and its snapshot;
    another institution and another county's bureau get 404; the Ministry sees central-scheme
    claims only — a county's local-scheme claim is the county's."""
    _lines(app, db, world, [dt.date(Y, 9, 1), dt.date(Y, 9, 8)])
    central = _claim(db, world, month=9)
    _lines(app, db, world, [dt.date(Y, 9, 2)], kind="group_psychotherapy", code="GRP01")
    local = _claim(db, world, code="C-KHH", month=9)
    assert local.lines and local.scheme_county_id is not None
    snap = FreezePackage(central).run()
    local_snap = FreezePackage(local).run()
    # A draft is the institution's own: the bureau meets it once submitted.
    assert login_as("bureau_khh").get(f"/claimreview/show/{central.id}").status_code == 404
    SubmitClaim(central).run()
    SubmitClaim(local).run()
    seen = {
        world.staff_b: ("/claim", {central.id, local.id}),
        "bureau_khh": ("/claimreview", {central.id, local.id}),
        "ministry": ("/claimreview", {central.id}),
    }
    for username, (base, visible) in seen.items():
        client = login_as(username)
        for claim, snapshot in ((central, snap), (local, local_snap)):
            expected = 200 if claim.id in visible else 404
            assert client.get(f"{base}/show/{claim.id}").status_code == expected, (username, claim.id)
            assert client.get(f"{base}/package/{snapshot.id}.pdf").status_code == expected, (username, claim.id)
    for username, base in ((world.staff_a, "/claim"), ("bureau_tpe", "/claimreview")):
        client = login_as(username)
        for claim, snapshot in ((central, snap), (local, local_snap)):
            assert client.get(f"{base}/show/{claim.id}").status_code == 404
            assert client.get(f"{base}/package/{snapshot.id}.pdf").status_code == 404
            assert client.get(f"{base}/package/{snapshot.id}.xlsx").status_code == 404
            token = csrf_token(app, client)
            assert client.post(f"{base}/package/{claim.id}", data={"csrf_token": token}).status_code == 404
        assert f"{base}/show/{central.id}" not in client.get(f"{base}/list/?psize_ClaimView=500").text


# ------------------------------------------------------------------ queues and report
def test_a11_queues_bureau_waiting_and_institution_returned(app, db, world, login_as):
    """The bureau's queue counts its waiting claims (oldest first, days, amount); the
    institution's its drafts, returned claims with their reasons and unclaimed lines."""
    from core.data.scope import scope_for_user_id
    from domain.addiction.claims import institution_claim_summary, waiting_claims
    from models.platform.user import ScopedUser

    bureau = db.session.query(ScopedUser).filter_by(username="bureau_khh").one()
    rows = waiting_claims(scope_for_user_id(bureau.id))
    assert rows and [r["days"] for r in rows] == sorted((r["days"] for r in rows), reverse=True)
    home = login_as("bureau_khh").get("/").text
    assert "/claimreview/list" in home
    staff = db.session.query(ScopedUser).filter_by(username="cm_khh").one()
    with _today(clock.today().year):
        summary = institution_claim_summary(scope_for_user_id(staff.id), clock.today())
    assert summary["drafts"] >= 1 and summary["returned"] >= 1 and "no_record" in summary["reasons"]
    page = login_as("cm_khh").get("/").text
    assert "/claim/list" in page


def test_a11_review_list_puts_waiting_claims_first_oldest_first(app, db, world, login_as):
    """補助金核覆 lists the claims waiting for the bureau first, the oldest first, then the
    others (decided or returned), on SQLite and PostgreSQL alike (NULLs sort differently)."""
    import re

    from models.addiction.claim import WAITING, Claim

    page = login_as("bureau_khh").get("/claimreview/list/?psize_ClaimReviewView=100")
    assert page.status_code == 200
    ids = list(dict.fromkeys(int(n) for n in re.findall(r"/claimreview/show/(\d+)", page.text)))
    claims = {c.id: c for c in db.session.query(Claim).filter(Claim.id.in_(ids))}
    waiting = [i for i in ids if claims[i].status in WAITING]
    others = [i for i in ids if claims[i].status not in WAITING]
    assert waiting and others, "the demo gives bureau_khh waiting and decided claims"
    assert ids == waiting + others
    assert [claims[i].waiting_since for i in waiting] == sorted(claims[i].waiting_since for i in waiting)


def test_a11_report_is_cached_until_a_claim_is_written(app, db, world, login_as):
    """The subsidy report per scheme: the bureau its county's, the Ministry national; a new
    approval shows at once (the cache follows the claim tables' versions); Excel and JSON."""
    from openpyxl import load_workbook

    ministry = login_as("ministry")
    before = next((r for r in ministry.get(f"/api/v1/claimreport/subsidy?year={ROC}").json["schemes"]
                   if r["code"] == "C-DRUG"), {"approved": 0})  # fmt: skip
    _lines(app, db, world, [dt.date(Y, 10, 6)])
    claim = _claim(db, world, month=10)
    SubmitClaim(claim).run()
    ReviewLines(claim, [ln.id for ln in claim.lines], "approved").run()
    DecideClaim(claim).run()
    after = next(r for r in ministry.get(f"/api/v1/claimreport/subsidy?year={ROC}").json["schemes"]
                 if r["code"] == "C-DRUG")  # fmt: skip
    assert after["approved"] == before["approved"] + claim.approved_amount
    assert after["remaining"] == after["budget"] - after["approved"]
    tpe = login_as("bureau_tpe").get(f"/api/v1/claimreport/subsidy?year={ROC}").json
    assert all(r["approved"] == 0 for r in tpe["schemes"])  # no 臺北市 claim
    khh = login_as("bureau_khh").get(f"/api/v1/claimreport/subsidy?year={ROC}").json
    assert any(r["code"] == "C-KHH" for r in khh["schemes"])
    assert not any(r["code"] == "C-KHH" for r in after and ministry.get(
        f"/api/v1/claimreport/subsidy?year={ROC}").json["schemes"])  # fmt: skip
    assert ministry.get("/api/v1/claimreport/subsidy?year=abc").status_code == 400
    assert login_as(world.staff_b).get(f"/api/v1/claimreport/subsidy?year={ROC}").status_code in (401, 403, 404)
    page = ministry.get(f"/claimreport/?year={ROC}").text
    assert 'id="claim-chart"' in page
    book = ministry.get(f"/claimreport/export?year={ROC}")
    rows = list(load_workbook(io.BytesIO(book.data), read_only=True).active.iter_rows(values_only=True))
    assert any(r[4] == after["approved"] for r in rows[2:] if r and r[0])
