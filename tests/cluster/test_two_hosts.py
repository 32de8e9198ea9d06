"""Two app hosts on one PostgreSQL and one Redis (issue 20 part 2): whatever one host
writes or decides, the other host's next request sees. Hosts A and B are two gunicorn
processes with their own instance folders (tests/cluster/conftest.py); every test goes
through HTTP only, as a person behind a load balancer would be sent to either host.

Two tests need the shared file storage of issue 20 part 3 (STORAGE_BACKEND=database, branch
i20-ops) and /readyz (part 4, same branch): the export's file and the correction scan read
through the other host, and /readyz on both.
"""

from __future__ import annotations

import datetime as dt
import re
import time

from tests.cluster.conftest import APPLY_LIMIT, Browser, signed_in

_ids = iter(range(1, 10_000))


def _national_id(letter: str = "C") -> str:
    from core.validators import personal_id_check_digit

    prefix = f"{letter}2{next(_ids):07d}"
    return prefix + personal_id_check_digit(prefix)


def _roc(day: dt.date) -> str:
    from core.dates import to_roc

    return to_roc(day)


def _record_count(html: str) -> int:
    found = re.search(r"(?:資料筆數|Record Count)\s*:?\s*</strong>\s*([\d,]+)", html)
    assert found, "no record count on the list page"
    return int(found.group(1).replace(",", ""))


def _facility(world, username: str = "facility_tpe"):
    from core.extensions import db
    from tests.factories import _setup

    with world.app_context():
        return _setup(db, username)


def _visits_this_year(browser: Browser, host) -> int:
    year = dt.date.today().year
    response = browser.request(f"{host.url}/api/v1/reports/cessation?year={year}")
    assert response.status == 200, response.text[:300]
    payload = response.json()
    result = payload.get("result", payload)
    total = next(row for row in result["services"] if row["level"] == "total")
    return total["medication_visits"]


def _enter_visit(browser: Browser, host, institution_id, practitioner_id) -> str:
    """A visit of a new quitter today, through the form; the quitter's national ID."""
    national_id = _national_id()
    response = browser.post(host, "/visitview/add", {
        "institution": str(institution_id), "practitioner": str(practitioner_id),
        "quitter_national_id": national_id, "quitter_name": "吳宗翰", "quitter_sex": "M",
        "quitter_birth_date": "60/05/01", "visit_date": _roc(dt.date.today()),
        "medication_name": "Varenicline", "medication_days": "14", "education_minutes": "",
    })  # fmt: skip
    assert response.status == 302, _text(response)
    return national_id


def _text(response) -> str:
    """The end of a page's visible text (where a refused form says why)."""
    html = re.sub(r"(?is)<(script|style)\b.*?</\1>", " ", response.text)
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))[-600:]


def test_a_visit_entered_on_a_shows_in_bs_next_list_count_and_statistics(cluster, world):
    """List counts and statistics are cached under version tokens in Redis: a commit on A
    gives the tables fresh tokens, so B's very next count and figures are computed anew."""
    a, b = cluster.a, cluster.b
    institution_id, practitioner_id = _facility(world)
    facility = Browser()
    assert signed_in(facility.login(a, "facility_tpe").location)
    bureau = Browser()
    bureau.token = bureau.api_login(b, "bureau_tpe")
    before = _record_count(facility.get(b, "/visitview/list/").text)
    assert _record_count(facility.get(b, "/visitview/list/").text) == before  # cached on B now
    stats_before = _visits_this_year(bureau, b)
    assert _visits_this_year(bureau, b) == stats_before
    _enter_visit(facility, a, institution_id, practitioner_id)
    assert _record_count(facility.get(b, "/visitview/list/").text) == before + 1
    assert _visits_this_year(bureau, b) == stats_before + 1
    assert _record_count(facility.get(a, "/visitview/list/").text) == before + 1


def test_five_failed_logins_split_across_a_and_b_lock_the_account(cluster):
    """A13 lockout: 3 failures on A and 2 on B are 5 for the account, whichever host counts."""
    a, b = cluster.a, cluster.b
    for host in (a, b, a, b, a):
        assert not signed_in(Browser().login(host, "ministry", "Wrong-Pass-0000!").location)
    for host in (a, b):
        person = Browser()
        refused = person.login(host, "ministry")
        assert not signed_in(refused.location)
        page = person.get(host, "/login/").text
        assert "鎖定" in page, "the login page does not say the account is locked"
    assert signed_in(Browser().login(b, "office").location)  # other accounts sign in as before


def test_the_rate_limit_is_shared_by_both_hosts(cluster):
    """APPLY_RATE_LIMIT (4 per hour here) counts the POSTs to /apply/ of A and B together:
    two on each are the four allowed, the fifth is refused on either host."""
    a, b = cluster.a, cluster.b
    person = Browser()
    statuses = [
        person.post(host, "/apply/", {"applicant_name": ""}).status for host in (a, b, a, b)
    ]
    assert len(statuses) == APPLY_LIMIT and 429 not in statuses, statuses
    assert person.post(a, "/apply/", {"applicant_name": ""}).status == 429
    assert person.post(b, "/apply/", {"applicant_name": ""}).status == 429


def _queue_export(cluster):
    """facility_tpe asks A for its visit list's workbook; the consumer runs the job."""
    a, b = cluster.a, cluster.b
    person = Browser()
    assert signed_in(person.login(a, "facility_tpe").location)
    response = person.get(a, "/visitview/export/xlsx")
    assert response.status == 302 and "/exports/" in response.location, (
        response.status,
        response.location,
    )
    job_id = response.location.rstrip("/").split("/")[-1]
    deadline = time.monotonic() + 60
    status = None
    while time.monotonic() < deadline:
        status = person.get(b, f"/exports/{job_id}/status").json()
        if status["status"] in ("done", "failed"):
            break
        time.sleep(0.3)
    assert status and status["status"] == "done", status
    return person, job_id, status


def test_an_export_queued_on_a_is_run_by_the_worker_and_its_progress_shows_on_b(cluster):
    """The job goes through huey's queue in Redis to the consumer (neither host runs it:
    they have no HUEY_IMMEDIATE), and B reads its progress from the shared database."""
    person, job_id, status = _queue_export(cluster)
    assert status["percent"] == 100 and status["done"] == status["total"] > 5
    log = cluster.worker.log.read_text(errors="replace")
    assert "run_export" in log, "the huey consumer did not run the export"
    assert "run_export" not in cluster.a.log.read_text(errors="replace")
    assert Browser().get(cluster.b, f"/exports/{job_id}/status").status in (302, 401, 403, 404)


def test_an_export_queued_on_a_is_downloaded_through_b(cluster):
    """Needs the shared storage (STORAGE_BACKEND=database, issue 20 part 3): the worker's
    file is read by B, and only by its requester."""
    import io

    from openpyxl import load_workbook

    person, job_id, status = _queue_export(cluster)
    download = person.get(cluster.b, f"/exports/{job_id}/download")
    assert download.status == 200, download.status
    rows = list(
        load_workbook(io.BytesIO(download.body), read_only=True).active.iter_rows(values_only=True)
    )
    assert len(rows) - 2 == status["total"]
    stranger = Browser()
    assert signed_in(stranger.login(cluster.b, "facility_khh").location)
    assert stranger.get(cluster.b, f"/exports/{job_id}/download").status == 404


def test_a_correction_attachment_uploaded_through_a_is_served_by_b(cluster, world):
    """Needs the shared storage (STORAGE_BACKEND=database, issue 20 part 3): the scan
    stored by A is read by B, through the scoped ticket row."""
    from sqlalchemy import select

    from core.extensions import db
    from models.cessation.correction import CorrectionAttachment, CorrectionTicket
    from seed.documents import blank_pdf

    a, b = cluster.a, cluster.b
    institution_id, practitioner_id = _facility(world)
    facility = Browser()
    assert signed_in(facility.login(a, "facility_tpe").location)
    national_id = _enter_visit(facility, a, institution_id, practitioner_id)
    scan = blank_pdf()  # a real visit 75 days ago (past its entry deadline) entered today
    day = _roc(dt.date.today())
    response = facility.post(a, "/corrections/add", {
        "institution": str(institution_id), "quitter_national_id": national_id,
        "lines-0-recorded_date": day, "lines-0-corrected_date": _roc(dt.date.today() - dt.timedelta(days=75)),
        "reason": "個案就診資料漏未登錄，已以發現日建檔，申請更正就診日期。",
    }, files={"form_file": ("附錄九.pdf", scan, "application/pdf")})  # fmt: skip
    assert response.status == 302, _text(response)
    with world.app_context():
        attachment_id = db.session.scalar(
            select(CorrectionAttachment.id).join(CorrectionTicket)
            .where(CorrectionTicket.institution_id == institution_id)
            .order_by(CorrectionAttachment.id.desc()).limit(1)
        )  # fmt: skip
    served = facility.get(b, f"/corrections/attachment/{attachment_id}")
    assert served.status == 200 and served.body == scan
    other = Browser()
    assert signed_in(other.login(b, "facility_khh").location)
    assert other.get(b, f"/corrections/attachment/{attachment_id}").status == 404


def test_a_session_ended_on_a_is_refused_by_b(cluster):
    """A13: the server-side session (database) and the API tokens' revocation mark (Redis)
    end on every host at once: B refuses the old cookie and the old JWT."""
    a, b = cluster.a, cluster.b
    person = Browser()
    assert signed_in(person.login(a, "bureau_khh").location)
    assert person.get(b, "/visitview/list/").status == 200  # one session, either host
    api = Browser()
    api.token = api.api_login(a, "bureau_khh")
    assert api.request(f"{b.url}/api/v1/visit/").status == 200
    cookies = list(person.jar)
    assert person.get(a, "/logout/").status == 302
    replay = Browser()  # the cookie as it was before the logout (a second tab, a stolen copy)
    for cookie in cookies:
        replay.jar.set_cookie(cookie)
    refused = replay.get(b, "/visitview/list/")
    assert refused.status == 302 and "/login" in refused.location
    assert api.request(f"{b.url}/api/v1/visit/").status == 401


def test_readyz_on_both_hosts(cluster):
    """Needs /readyz (issue 20 part 4): both hosts reach the database, Redis and the queue."""
    for host in (cluster.a, cluster.b):
        response = Browser().get(host, "/readyz")
        assert response.status == 200, (host.name, response.status, response.text[:300])
