"""Reports that lead somewhere (issue 15, item 3 and 7): the self-check opens on the month
whose deadline is running (C1/C2) and leads to each record and to 補登; national and county
users get summaries; 核扣清單 (C8) opens on the last closed month, says when a month is
provisional, drills down, totals and sorts; the office's ticket queue is the open tickets,
longest wait first, coloured by wait; the demo's tickets arrived over the last weeks."""

from __future__ import annotations

import datetime as dt
import re
from html import unescape

import pytest
from sqlalchemy import select

from core import clock
from models.cessation.correction import CorrectionTicket, TicketStatus
from models.cessation.visit import Quitter
from models.registry.institution import Institution
from models.registry.reference import County
from tests.cessation.test_reports import _insert_visit
from tests.conftest import visible_text
from tests.factories import _setup


def _field(html: str) -> str:
    """The value of the month field as the page shows it."""
    return re.search(r'id="month" name="month" value="([^"]*)"', html).group(1)


# ------------------------------------------------------------------ self-check
@pytest.mark.parametrize("now, month", [
    (dt.datetime(2025, 4, 15, 9, 0), "114/03"),   # until the 20th: last month's deadline runs
    (dt.datetime(2025, 4, 20, 23, 0), "114/03"),  # the deadline day itself
    (dt.datetime(2025, 4, 21, 0, 5), "114/04"),   # after it: this month
    (dt.datetime(2025, 1, 10, 9, 0), "113/12"),   # across the year
])  # fmt: skip
def test_c1_self_check_opens_on_the_month_whose_deadline_is_running(login_as, now, month):
    """C1/C2: the month a clinic can still fix is the one the self-check opens on."""
    with clock.frozen(now):
        html = login_as("facility_tpe").get("/selfcheck/").text
    assert _field(html) == month
    assert f"每月資料自行清查：{month}" in visible_text(html)


def test_c2_self_check_lists_have_headers_record_links_and_enter_missed_visit(app, db, login_as):
    """C2: every list has headers; a visit row opens the record, a gap row offers 補登 with
    the quitter's ID and a date of the month, the link the visit form pre-fills from."""
    institution_id, practitioner_id = _setup(db, "facility_tpe")
    seen = _insert_visit(db, institution_id, practitioner_id, dt.date(2019, 8, 12), dt.datetime(2019, 8, 12, 12, 0))
    gap = _insert_visit(db, institution_id, practitioner_id, dt.date(2019, 7, 23), dt.datetime(2019, 7, 23, 12, 0))
    quitter = db.session.get(Quitter, gap.quitter_id)
    with clock.frozen(dt.datetime(2019, 9, 5, 9, 0)):
        html = login_as("facility_tpe").get("/selfcheck/?month=108/08").text
    for table in ("per-practitioner", "gaps", "month-visits"):
        block = re.search(rf'<table[^>]*id="{table}".*?</table>', html, re.S).group(0)
        assert "<thead>" in block and "<th" in block, table
    assert f'href="/visitview/show/{seen.id}"' in html
    assert f'/quitterview/show/{quitter.id}' in html
    assert f'href="/visitview/add?national_id={quitter.national_id}&amp;visit_date=2019-08-23"' in html
    # another institution never gets the link (nor the quitter)
    other = login_as("facility_khh").get("/selfcheck/?month=108/08").text
    assert quitter.national_id not in other


def test_c2_self_check_draws_visits_per_day_on_the_server(app, db, login_as):
    """A bar for every day of the month (an empty day is an empty slot), inline SVG, no script."""
    institution_id, practitioner_id = _setup(db, "facility_tpe")
    for day in (3, 3, 17):
        _insert_visit(db, institution_id, practitioner_id, dt.date(2018, 2, day), dt.datetime(2018, 2, day, 12, 0))
    html = login_as("facility_tpe").get("/selfcheck/?month=107/02").text
    svg = re.search(r'<svg[^>]*id="per-day-chart".*?</svg>', html, re.S).group(0)
    bars = dict(re.findall(r'data-date="([\d-]+)" data-visits="(\d+)"', svg))
    assert len(bars) == 28 and bars["2018-02-03"] == "2" and bars["2018-02-17"] == "1" and bars["2018-02-04"] == "0"
    assert "<script" not in svg and "http" not in svg.replace("http://www.w3.org/2000/svg", "")


@pytest.mark.parametrize("month", ["abc", "115/13", "５月", "9" * 60, "99999999999999/01", "%", "=1+1", "١١٤/٠٥"])
def test_c2_a_bad_month_is_refused_with_the_input_kept(login_as, month):
    """A bad month is said so in zh_TW, stays in the field, and no other month is shown."""
    for user in ("facility_tpe", "office"):
        response = login_as(user).get("/selfcheck/", query_string={"month": month})
        assert response.status_code == 200
        html = response.text
        error = re.search(r'id="month-error"[^>]*>(.*?)</', html, re.S).group(1)
        assert "114/05" in error or "範圍" in error or "年" in error
        assert unescape(_field(html)) == month
        assert 'id="month-visits"' not in html and 'id="county-summary"' not in html


def test_c2_fullwidth_digits_read_as_the_month(login_as):
    """A Taiwanese IME types １１４／０５: the same month as 114/05, not a refusal."""
    html = login_as("facility_tpe").get("/selfcheck/", query_string={"month": "１１４／０５"}).text
    assert 'id="month-error"' not in html and "每月資料自行清查：114/05" in visible_text(html)


def test_c2_national_self_check_is_per_county_and_drills_down(app, db, login_as):
    """The office sees counties, not names; a county shows its institutions, one institution
    its own list (the same lists the institution sees)."""
    institution_id, practitioner_id = _setup(db, "facility_tpe")
    visit = _insert_visit(db, institution_id, practitioner_id, dt.date(2017, 5, 9), dt.datetime(2017, 5, 9, 12, 0))
    quitter = db.session.get(Quitter, visit.quitter_id)
    institution = db.session.get(Institution, institution_id)
    county = db.session.get(County, institution.county_id)
    office = login_as("office")
    national = office.get("/selfcheck/?month=106/05").text
    assert 'id="county-summary"' in national and 'id="month-visits"' not in national
    assert quitter.name not in national
    assert f'county={county.code}' in national
    rows = re.search(r'id="county-summary".*?</table>', national, re.S).group(0)
    assert county.name in visible_text(rows) and "合計" in visible_text(rows)
    in_county = office.get(f"/selfcheck/?month=106/05&county={county.code}").text
    assert 'id="institution-summary"' in in_county and institution.name in in_county
    assert quitter.name not in in_county
    assert f"institution={institution_id}" in in_county
    one = office.get(f"/selfcheck/?month=106/05&institution={institution_id}").text
    assert 'id="month-visits"' in one and quitter.name in one
    assert "/visitview/add?" not in one  # the office does not enter visits


def test_c2_bureau_self_check_is_its_county_and_nothing_else(app, db, login_as):
    """bureau_tpe opens on its county's institutions; another county or its institution is a 404."""
    tpe_id, _ = _setup(db, "facility_tpe")
    khh_id, _ = _setup(db, "facility_khh")
    khh = db.session.get(County, db.session.get(Institution, khh_id).county_id)
    bureau = login_as("bureau_tpe")
    html = bureau.get("/selfcheck/").text
    assert 'id="institution-summary"' in html and db.session.get(Institution, tpe_id).name in html
    assert db.session.get(Institution, khh_id).name not in html
    assert bureau.get(f"/selfcheck/?county={khh.code}").status_code == 404
    assert bureau.get(f"/selfcheck/?institution={khh_id}").status_code == 404
    assert bureau.get(f"/selfcheck/?institution={tpe_id}").status_code == 200
    for hostile in ("abc", "1" * 40, "-1", "１"):
        assert bureau.get("/selfcheck/", query_string={"institution": hostile}).status_code == 404
        assert bureau.get("/selfcheck/", query_string={"county": hostile}).status_code == 404
    # a facility cannot drill into another institution either
    assert login_as("facility_tpe").get(f"/selfcheck/?institution={khh_id}").status_code == 404


# --------------------------------------------------------------- fee deduction
@pytest.mark.parametrize("now, month", [
    (dt.datetime(2025, 4, 15, 9, 0), "114/02"),   # March's deadline (04/20) has not passed
    (dt.datetime(2025, 4, 21, 0, 5), "114/03"),
    (dt.datetime(2025, 2, 3, 9, 0), "113/12"),
])  # fmt: skip
def test_c8_fee_deduction_opens_on_the_last_month_whose_deadline_passed(login_as, now, month):
    """C8: the list opens on a month whose count is final."""
    with clock.frozen(now):
        html = login_as("office").get("/feededuction/").text
    assert _field(html) == month
    assert 'id="provisional"' not in html and 'id="final"' in html


def test_c8_a_month_whose_deadline_has_not_passed_is_marked_provisional(login_as):
    """C8: before its deadline a month's counts can still grow: the page says 暫定 in words."""
    with clock.frozen(dt.datetime(2025, 4, 15, 9, 0)):
        html = login_as("office").get("/feededuction/?month=114/03").text
    text = visible_text(re.search(r'id="provisional".*?</div>', html, re.S).group(0))
    assert "暫定" in text and "114/04/20" in text


def test_c8_fee_deduction_drills_down_totals_and_sorts(app, db, login_as):
    """C8: each count opens the records behind it; a totals row; columns sort both ways."""
    institution_id, practitioner_id = _setup(db, "facility_tpe")
    late = _insert_visit(db, institution_id, practitioner_id, dt.date(2016, 3, 8), dt.datetime(2016, 5, 2, 9, 0))
    _insert_visit(db, institution_id, practitioner_id, dt.date(2016, 3, 9), dt.datetime(2016, 3, 12, 9, 0))
    khh_id, khh_prac = _setup(db, "facility_khh")
    for day in (1, 2):
        _insert_visit(db, khh_id, khh_prac, dt.date(2016, 3, day), dt.datetime(2016, 6, 1, 9, 0))
    office = login_as("office")
    html = office.get("/feededuction/?month=105/03").text
    links = [h for h in re.findall(r'href="(/feededuction/records\?[^"]+)"', html)
             if f"institution={institution_id}&" in h and "kind=after_deadline" in h]
    assert links, "the after-deadline count links to its records"
    records = office.get(unescape(links[0]))
    assert records.status_code == 200
    assert f'/visitview/show/{late.id}' in records.text and "105/03/08" in visible_text(records.text)
    totals = visible_text(re.search(r'id="fee-totals".*?</tr>', html, re.S).group(0)).split()
    assert totals[-2:] == ["3", "1"]
    codes = {db.session.get(Institution, i).nhi_code: n for i, n in ((institution_id, 1), (khh_id, 2))}

    def order(query):
        body = office.get(f"/feededuction/?month=105/03&{query}").text
        return [c for c in re.findall(r"<tr><td>(\d{10})</td>", body) if c in codes]

    assert order("sort=after_deadline&dir=desc") == sorted(codes, key=codes.get, reverse=True)
    assert order("sort=after_deadline&dir=asc") == sorted(codes, key=codes.get)
    # the records of another institution are not the bureau's: a 404, not an empty page
    assert login_as("bureau_tpe").get(f"/feededuction/records?institution={khh_id}&month=105/03"
                                      "&kind=after_deadline").status_code == 404  # fmt: skip
    for bad in ({"kind": "x"}, {"month": "abc"}, {"month": "115/13"}, {"institution": "abc"}, {"institution": "9" * 40}):
        query = {"institution": institution_id, "month": "105/03", "kind": "after_deadline", **bad}
        assert office.get("/feededuction/records", query_string=query).status_code == 404, bad


def test_c8_a_bad_fee_month_keeps_the_input_and_lists_nothing(login_as):
    """A bad month is refused in zh_TW with the input kept (never every month instead)."""
    html = login_as("office").get("/feededuction/?month=115/13").text
    assert _field(html) == "115/13" and 'id="month-error"' in html and 'id="fee-deduction"' not in html


# ---------------------------------------------------------------- ticket queue
def test_ticket_queue_defaults_to_open_tickets_longest_wait_first(app, db, login_as):
    """Closed tickets only behind a filter; the open ones oldest first, days shown as text
    with the level in words, the row coloured by it."""
    tickets = db.session.scalars(select(CorrectionTicket)).all()
    closed = [t for t in tickets if t.status == TicketStatus.CLOSED.value]
    assert closed, "the demo has a closed ticket"
    office = login_as("office")
    html = office.get("/corrections/list/").text
    html = html[html.rindex("<table"):]  # the queue itself, not the re-entry reminders above it
    text = visible_text(html)
    assert all(t.number not in text for t in closed)
    open_tickets = sorted((t for t in tickets if t.status != TicketStatus.CLOSED.value),
                          key=lambda t: (t.received_on, t.id))  # fmt: skip
    shown = sorted((text.index(t.number), t.received_on) for t in open_tickets if t.number in text)
    received = [day for _, day in shown]
    assert received == sorted(received) and len(received) >= 2
    assert "超過 14 天" in visible_text(office.get("/corrections/list/").text)
    every = visible_text(office.get("/corrections/list/?show=all").text)
    assert all(t.number in every for t in closed)
    by_status = visible_text(office.get(f"/corrections/list/?_flt_0_status={TicketStatus.CLOSED.value}").text)
    assert all(t.number in by_status for t in closed)
    waits = dict((int(d), level) for level, d in re.findall(r'class="wait wait-(\w+)" data-days="(\d+)"', html))
    assert any(level == "red" for level in waits.values()), waits
    for days, level in waits.items():
        assert level == ("red" if days > 14 else "amber" if days > 7 else "ok"), (days, level)


# -------------------------------------------------------------------- demo data
def test_demo_tickets_arrived_over_the_last_weeks(app, db):
    """Issue 15 item 7: the demo's tickets were received over about six weeks, not all today
    (other tests add tickets of their own, of any date: the demo's spread is what is read)."""
    received = db.session.scalars(select(CorrectionTicket.received_on)).all()
    today = clock.today()
    ages = sorted({(today - day).days for day in received})
    assert len(ages) >= 5 and any(1 <= a <= 7 for a in ages) and any(35 <= a <= 45 for a in ages), ages
    assert any(7 < a <= 14 for a in ages) and any(14 < a < 35 for a in ages)
