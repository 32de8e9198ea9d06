"""The fee-deduction list (C8) and the monthly self-check (C2), in each user's scope."""

from __future__ import annotations

import datetime as dt
import io

from openpyxl import load_workbook

from core import clock
from core.dates import TAIPEI
from models.cessation.visit import Quitter, Visit, timeliness
from models.registry.institution import Institution
from tests.conftest import visible_text
from tests.factories import _new_id, _setup
from tests.scope_oracle import user_view


def _insert_visit(db, institution_id, practitioner_id, visit_date, entered_at_taipei):
    """A visit as a correction would leave it: entered_at possibly after the deadline."""
    quitter = Quitter(national_id=_new_id("R"), name="鄭雅婷", sex="F", birth_date=dt.date(1975, 3, 3))
    db.session.add(quitter)
    db.session.flush()
    entered = entered_at_taipei.replace(tzinfo=TAIPEI).astimezone(dt.UTC).replace(tzinfo=None)
    visit = Visit(institution_id=institution_id, practitioner_id=practitioner_id, quitter_id=quitter.id,
                  visit_date=visit_date, medication_name="Varenicline", medication_days=7,
                  entered_at=entered, entry_timeliness=timeliness(visit_date, entered).value)  # fmt: skip
    db.session.add(visit)
    db.session.commit()
    return visit


def _fee_counts(client, code, month="114/02") -> tuple[int, int]:
    """(after the deadline, after 24 h) of one institution and month, as the list shows them."""
    text = visible_text(client.get(f"/feededuction/?month={month}").text)
    if code not in text:
        return 0, 0
    row = text.split(code, 1)[1].split(month, 1)[1].split()
    return int(row[0]), int(row[1])


def test_c8_records_entered_after_the_deadline_are_on_the_fee_deduction_list(app, db, login_as):
    tpe_inst, tpe_prac = _setup(db, "facility_tpe")
    code = db.session.get(Institution, tpe_inst).nhi_code
    # other tests (correction tickets) may already have late records of 114/02 here
    before = _fee_counts(login_as("office"), code)
    _insert_visit(db, tpe_inst, tpe_prac, dt.date(2025, 2, 15), dt.datetime(2025, 4, 1, 10, 0))  # late: C8
    _insert_visit(db, tpe_inst, tpe_prac, dt.date(2025, 2, 16), dt.datetime(2025, 3, 20, 23, 59))  # >24 h
    _insert_visit(db, tpe_inst, tpe_prac, dt.date(2025, 2, 17), dt.datetime(2025, 2, 17, 18, 0))  # on time
    code = db.session.get(Institution, tpe_inst).nhi_code
    office = visible_text(login_as("office").get("/feededuction/?month=114/02").text)
    assert code in office
    after = _fee_counts(login_as("office"), code)
    assert (after[0] - before[0], after[1] - before[1]) == (1, 1)  # one after the deadline, one after 24 hours
    workbook = load_workbook(io.BytesIO(login_as("office").get("/feededuction/export?month=114/02").data))
    rows = [list(r) for r in workbook.active.iter_rows(values_only=True)]
    mine = [r for r in rows if r[0] == code]
    assert [[code, "114/02", *after]] == [[r[0], r[3], r[4], r[5]] for r in mine]
    # a bureau sees its county, a facility itself; the others do not see this row
    assert code in login_as("bureau_tpe").get("/feededuction/?month=114/02").text
    assert code not in login_as("bureau_khh").get("/feededuction/?month=114/02").text
    assert code not in login_as("facility_khh").get("/feededuction/?month=114/02").text
    assert code in login_as("facility_tpe").get("/feededuction/?month=114/02").text


def test_c2_monthly_self_check_shows_the_month_and_the_deadline(app, db, login_as):
    institution_id, practitioner_id = _setup(db, "facility_tpe")
    _insert_visit(db, institution_id, practitioner_id, dt.date(2025, 3, 10), dt.datetime(2025, 3, 10, 12, 0))
    gap = _insert_visit(db, institution_id, practitioner_id, dt.date(2025, 2, 20), dt.datetime(2025, 2, 20, 12, 0))
    client = login_as("facility_tpe")
    with clock.frozen(dt.datetime(2025, 4, 15, 9, 0)):
        page = visible_text(client.get("/selfcheck/?month=114/04").text)
        assert "本月資料可自行修改至 114/05/20（尚餘 35 天）" in page
        march = visible_text(client.get("/selfcheck/?month=114/03").text)
    assert "本月資料可自行修改至 114/04/20（尚餘 5 天）" in march
    assert "114/03/10" in march
    quitter = db.session.get(Quitter, gap.quitter_id)
    assert quitter.name in march.split("可能漏登的戒菸者", 1)[1]  # seen in February, not in March
    with clock.frozen(dt.datetime(2025, 4, 21, 0, 0)):
        closed = visible_text(client.get("/selfcheck/?month=114/03").text)
    assert "已於 114/04/20 截止" in closed
    other = visible_text(login_as("facility_khh").get("/selfcheck/?month=114/03").text)
    assert quitter.name not in other  # another institution's quitters never show


def test_report_months_are_validated(login_as):
    page = visible_text(login_as("office").get("/feededuction/?month=abc").text)
    assert "114/05" in page and "民國年月" in page
    assert user_view  # shared oracle import stays used


def test_fee_deduction_list_defaults_to_last_month(login_as):
    """C8: on 03/05 February's deadline (03/20) is still running: January is the last final month."""
    with clock.frozen(dt.datetime(2025, 3, 5, 9, 0)):
        page = login_as("office").get("/feededuction/").text
    assert 'value="114/01"' in page


def test_c2_self_check_pages_its_visits_and_bounds_its_lists(app, db, login_as, monkeypatch):
    """C2 self-check over a large month (the office's is nationwide): visit rows come a page
    at a time with the month's full count, and the gap and practitioner lists are bounded."""
    import views.cessation.reports as reports

    institution_id, practitioner_id = _setup(db, "facility_tpe")
    month, days = "105/07", [dt.date(2016, 7, d) for d in (4, 11, 18)]
    for day in days:
        _insert_visit(db, institution_id, practitioner_id, day, dt.datetime(2016, 7, day.day, 12, 0))
    for day in (dt.date(2016, 5, 9), dt.date(2016, 6, 6)):  # seen before July, not in it
        _insert_visit(db, institution_id, practitioner_id, day, dt.datetime(2016, 6, day.day, 12, 0))
    monkeypatch.setattr(reports, "SELF_CHECK_PAGE", 2)
    monkeypatch.setattr(reports, "SELF_CHECK_BOUND", 1)
    client = login_as("facility_tpe")
    first = visible_text(client.get(f"/selfcheck/?month={month}").text)
    assert "第 1–2 筆，共 3 筆" in first and "下一頁" in first and "上一頁" not in first
    assert "105/07/04" in first and "105/07/11" in first and "105/07/18" not in first.split("就醫資料")[-1]
    assert "僅列出前 1 位" in first
    second = visible_text(client.get(f"/selfcheck/?month={month}&page=2").text)
    assert "第 3–3 筆，共 3 筆" in second and "上一頁" in second and "下一頁" not in second
    # Out-of-range pages show the last page, not an error.
    assert "第 3–3 筆，共 3 筆" in visible_text(client.get(f"/selfcheck/?month={month}&page=99").text)
