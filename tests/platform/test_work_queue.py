"""The home page's work queue (issue 15): each role's items, counts equal to an independent
count of the rows, links that open exactly those rows, and no count reaching past scope."""

from __future__ import annotations

import datetime as dt
import html as htmllib
import re

import pytest

from core import clock
from models.accounts.application import AccountApplication
from models.cessation.correction import CorrectionTicket
from models.cessation.visit import Visit
from tests.scope_oracle import user_view

ITEM = re.compile(
    r'<a class="list-group-item queue-item[^"]*"\s*(?:href="([^"]*)")?\s*data-count="(\d*)">'
    r'.*?<strong class="queue-label">(.*?)</strong>',
    re.S,
)


def queue(client) -> dict[str, tuple[int | None, str]]:
    """label -> (count, link) of the home page's queue items."""
    page = client.get("/")
    assert page.status_code == 200
    return {
        htmllib.unescape(label): (int(count) if count else None, htmllib.unescape(url or ""))
        for url, count, label in ITEM.findall(page.get_data(as_text=True))
    }


def item(items, fragment):
    found = [v for k, v in items.items() if fragment in k]
    assert len(found) == 1, f"{fragment!r} not once in {list(items)}"
    return found[0]


def shown_ids(client, url: str, marker: str) -> set[int]:
    """Row ids a list page shows (all of them: one big page)."""
    sep = "&" if "?" in url else "?"
    page = client.get(f"{url}{sep}psize_{marker}=1000")
    assert page.status_code == 200, url
    text = page.get_data(as_text=True)
    # The C6 reminders above a ticket list link to their tickets too: only the rows count.
    text = re.sub(r'<div class="alert alert-warning" id="reentry-reminders">.*?</div>', "", text, flags=re.S)
    return {int(pk) for pk in re.findall(r"/show/(\d+)", text)}


def running_month_first(today: dt.date) -> dt.date:
    """The first day of the month whose entry deadline runs (C1), computed here, not imported."""
    if today.day <= 20:
        return (today.replace(day=1) - dt.timedelta(days=1)).replace(day=1)
    return today.replace(day=1)


def test_c1_facility_sees_the_running_deadline_and_its_open_records(db, login_as):
    """C1/C2: the deadline item names the running month; open records count only its own rows
    and link to a visit list showing exactly them."""
    client = login_as("facility_tpe")
    me = user_view(db, "facility_tpe")
    items = queue(client)
    first = running_month_first(clock.today())
    from core.dates import roc_month, to_roc

    deadline = [k for k in items if "資料登錄期限" in k and roc_month(first.year, first.month) in k]
    assert deadline, items
    count, url = item(items, "仍可自行修改")
    expected = {v.id for v in db.session.query(Visit).all()
                if v.institution_id in me.institution_ids and v.visit_date >= first}  # fmt: skip
    assert count == len(expected) and count > 0
    assert shown_ids(client, url, "VisitView") == expected
    assert to_roc(first - dt.timedelta(days=1)) in url


def test_c3_returned_tickets_and_c6_reentries_of_a_facility(db, login_as):
    """C3/C6: returned tickets and visits to re-enter are the facility's own, nobody else's."""
    client = login_as("facility_tpe")
    me = user_view(db, "facility_tpe")
    items = queue(client)
    tickets = db.session.query(CorrectionTicket).all()
    returned = {t.id for t in tickets if t.status == "returned" and t.institution_id in me.institution_ids}
    count, url = item(items, "退件的更正申請單")
    assert count == len(returned) >= 1  # the demo's one, and any other test's
    assert shown_ids(client, url, "CorrectionTicketView") == returned
    lines = [(t.number, line.displaced_date) for t in tickets for line in t.lines
             if t.status == "converted" and line.displaced_date and t.institution_id in me.institution_ids]  # fmt: skip
    count, url = item(items, "待補登")
    assert count == len(lines) >= 1
    page = client.get(url.split("#")[0]).get_data(as_text=True)
    assert page.count('class="reentry-reminder"') == count
    assert lines[0][0] in page


def test_possibly_missed_quitters_equal_the_self_check_gaps(db, login_as):
    """The gap count is the number of quitters the self-check of the running month lists."""
    client = login_as("facility_tpe")
    me = user_view(db, "facility_tpe")
    first = running_month_first(clock.today())
    after = (first + dt.timedelta(days=32)).replace(day=1)
    before = ((first - dt.timedelta(days=1)).replace(day=1) - dt.timedelta(days=1)).replace(day=1)
    mine = [v for v in db.session.query(Visit).all() if v.institution_id in me.institution_ids]
    now = {v.quitter_id for v in mine if first <= v.visit_date < after}
    expected = {v.quitter_id for v in mine if before <= v.visit_date < first} - now
    count, url = item(queue(client), "可能漏登")
    assert count == len(expected)
    page = client.get(url.split("#")[0]).get_data(as_text=True)
    from views.cessation.reports import SELF_CHECK_BOUND

    gaps = re.search(r'<table [^>]*id="gaps">(.*?)</table>', page, re.S).group(1)
    assert gaps.count('class="gap-row"') == min(count, SELF_CHECK_BOUND)


def test_office_sees_open_tickets_by_status_with_the_longest_wait(db, login_as):
    """The office's queue: each open status's count and oldest ticket, linked to that status."""
    client = login_as("office")
    items = queue(client)
    tickets = db.session.query(CorrectionTicket).all()
    today = clock.today()
    from models.cessation.correction import TicketStatus

    for status in ("received", "in_review", "approved", "converted"):
        count, url = item(items, str(TicketStatus.label_of(status)))
        mine = [t for t in tickets if t.status == status]
        assert count == len(mine)
        assert shown_ids(client, url, "CorrectionTicketView") == {t.id for t in mine}
    page = client.get("/").get_data(as_text=True)
    oldest = max((today - t.received_on).days for t in tickets if t.status == "received")
    assert f"{oldest} " in page and oldest >= 30  # the demo's tickets span weeks (issue 15 item 7)
    assert "退件的更正申請單" not in " ".join(items)  # a facility's item, not the office's


def test_idle_institutions_link_lists_exactly_those(db, login_as):
    """Institutions under contract with no visit in the running month: count and list agree."""
    from models.registry.institution import ContractPeriod, Institution

    client = login_as("bureau_tpe")
    me = user_view(db, "bureau_tpe")
    today = clock.today()
    first = running_month_first(today)
    after = (first + dt.timedelta(days=32)).replace(day=1)
    contracted = {c.institution_id for c in db.session.query(ContractPeriod).all() if c.covers(today)}
    visited = {v.institution_id for v in db.session.query(Visit).all() if first <= v.visit_date < after}
    expected = {i.id for i in db.session.query(Institution).all()
                if i.id in me.institution_ids and i.kind == "medical" and i.id in contracted} - visited  # fmt: skip
    count, url = item(queue(client), "尚無就醫資料的特約機構")
    assert count == len(expected)
    page = client.get(url).get_data(as_text=True)
    assert {int(x) for x in re.findall(r'class="idle-institution" data-id="(\d+)"', page)} == expected


@pytest.mark.parametrize("username", ["bureau_tpe", "admin"])
def test_pending_applications_per_approver(db, login_as, username):
    """A13: a bureau counts its county's facility-staff applications, the admin every one."""
    client = login_as(username)
    me = user_view(db, username)
    rows = [a for a in db.session.query(AccountApplication).all() if a.status == "pending"]
    if not me.national:
        rows = [a for a in rows if a.requested_role == "facility" and a.institution_id in me.institution_ids]
    count, url = item(queue(client), "待審核的帳號申請")
    assert count == len(rows) and count > 0
    assert shown_ids(client, url, "AccountApplicationView") == {a.id for a in rows}


def test_counts_never_leak_across_scope(db, login_as):
    """A facility never counts another institution's rows: a ticket returned to facility_khh
    leaves facility_tpe's count as it was, and facility_khh's grows (cache invalidated)."""
    from domain.cessation.corrections import ReturnTicket

    tpe, khh = login_as("facility_tpe"), login_as("facility_khh")
    before_tpe = item(queue(tpe), "退件的更正申請單")[0]
    before_khh = item(queue(khh), "退件的更正申請單")[0]
    khh_ids = user_view(db, "facility_khh").institution_ids
    ticket = next(t for t in db.session.query(CorrectionTicket).all()
                  if t.institution_id in khh_ids and t.status == "received")  # fmt: skip
    ReturnTicket(ticket, "測試退件：缺少業務主管簽章。").run()
    assert item(queue(tpe), "退件的更正申請單")[0] == before_tpe
    assert item(queue(khh), "退件的更正申請單")[0] == before_khh + 1


def test_addiction_staff_items_equal_the_reminder_report(db, login_as, app):
    """A14: staff short of hours and licences ending, as the reminders report lists them."""
    from core.data.scope import scope_for_user_id
    from domain.addiction.staff import shortfall_rows

    client = login_as("dr_tpe")
    me = user_view(db, "dr_tpe")
    with app.test_request_context():
        rows = shortfall_rows(scope_for_user_id(me.user_id), clock.today())
    items = queue(client)
    short, url = item(items, "訓練時數不足")
    ending = item(items, "天內到期的證照")[0]
    assert short == sum(r.hours_short for r in rows) and ending == sum(r.licence_ending for r in rows)
    assert client.get(url).status_code == 200
    assert not [k for k in items if "更正" in k or "登錄期限" in k]


def test_helpdesk_has_no_clinical_items_but_sees_contact_and_last_login(app, login_as):
    """Everyone: the helpdesk contact and the previous sign-in's time and address."""
    from seed.testing import login

    first = app.test_client()
    first.environ_base["REMOTE_ADDR"] = "10.1.2.3"
    login(app, first, "helpdesk")
    second = app.test_client()
    login(app, second, "helpdesk")
    page = second.get("/").get_data(as_text=True)
    assert app.config["HELPDESK_CONTACT"] in page
    assert 'id="last-login"' in page and "10.1.2.3" in page  # the sign-in before this one
    assert not queue(second)


def test_announcements_in_period_shown_to_everyone(db, login_as, app):
    """公告: the admin's announcement shows on every home page in its period, not after it;
    only the admin may open the announcements list."""
    from tests.conftest import csrf_token

    admin = login_as("admin")
    today = clock.today()
    from core.dates import to_roc

    for title, start, end in (("系統維護公告", today, today + dt.timedelta(days=3)),
                              ("已過期公告", today - dt.timedelta(days=9), today - dt.timedelta(days=1))):
        response = admin.post("/announcements/add", data={
            "title": title, "body": "12/05 晚間 22:00 起暫停服務。\n請提前完成資料登錄。", "start_date": to_roc(start),
            "end_date": to_roc(end), "csrf_token": csrf_token(app, admin)})  # fmt: skip
        assert response.status_code == 302, response.get_data(as_text=True)[:2000]
    nurse = login_as("facility_tpe")
    page = nurse.get("/").get_data(as_text=True)
    assert "系統維護公告" in page and "已過期公告" not in page
    assert nurse.get("/announcements/list/").status_code in (302, 403)
    from models.platform.audit import AuditLog

    assert db.session.query(AuditLog).filter_by(model="Announcement", action="insert").count() >= 2


@pytest.mark.parametrize("month", ["１１５/１３", "%", "=1+1", "9" * 400, "114/00"])
def test_idle_list_refuses_a_bad_month_with_a_message(login_as, month):
    """Hostile input: a bad month answers 200 with a zh_TW message and the running month."""
    page = login_as("office").get("/selfcheck/idle", query_string={"month": month})
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert re.search(r'<p class="text-danger">[^<]+</p>', text)


def test_idle_list_of_a_facility_is_its_own(db, login_as):
    """Scope: a facility opening the idle list sees at most its own institutions."""
    me = user_view(db, "facility_tpe")
    page = login_as("facility_tpe").get("/selfcheck/idle").get_data(as_text=True)
    shown = {int(x) for x in re.findall(r'class="idle-institution" data-id="(\d+)"', page)}
    assert shown <= me.institution_ids
