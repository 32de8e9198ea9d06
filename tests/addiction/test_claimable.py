"""A7–A10: what can be claimed — records justify lines, orders do not; the subsidy year is the
execution date's; a fixed allocation order against the per-person cap across institutions;
the case-management fee outside the cap and addable without an order; a county scheme beside
the central one without paying a line twice; a reason for every line that cannot be claimed."""

from __future__ import annotations

import datetime as dt
import random

import pytest

from domain.addiction.claimable import Data, case_year, compute_person, compute_territory
from models.addiction.his import HisOrder
from tests.addiction import claims_world as w
from tests.conftest import csrf_token

Y = w.YEAR
D = dt.date(Y, 4, 1)


@pytest.fixture(scope="module")
def world(app):
    from core.extensions import db

    with app.app_context():
        yield w.build(app, db)
        db.session.remove()


def _fresh(db, world, inst=None, **case_args):
    person = w.patient(db, **({"birth": case_args.pop("birth")} if "birth" in case_args else {}))
    case = w.case(db, inst or world.a, person, **case_args)
    db.session.commit()
    return person, case


def _post(app, key, orders):
    response = w.post(app, key, {"orders": orders})
    assert response.status_code == 200, response.text
    return response.json


@pytest.mark.parametrize("orders,with_record,expected", [
    (0, True, []),
    (1, True, [(1500, None)]),
    (3, True, [(1500, None)]),
    (0, False, []),
    (1, False, [(0, "no_record")]),
    (3, False, [(0, "no_record")]),
])
def test_a7_zero_one_or_three_orders_with_and_without_a_record(app, db, world, orders, with_record, expected):
    """One line per (case, item, day): three orders claim what one does; no record, no claim."""
    person, case = _fresh(db, world)
    if with_record:
        w.record(db, case, D)
        db.session.commit()
    if orders:
        _post(app, world.key_a, [w.order(f"A7-{case.id}", n, person, "PSY01", D) for n in range(1, orders + 1)])
    lines, _ = case_year(case, Y)
    assert [(line.amount, line.reason) for line in lines] == expected
    if orders:
        assert len(lines[0].orders) == orders


def test_a7_a_record_of_another_kind_or_profession_does_not_justify_the_item(app, db, world):
    person, case = _fresh(db, world)
    w.record(db, case, D, kind="social_work", profession="social_worker")
    w.record(db, case, D, kind="outpatient", profession="nurse")  # OPD needs a physician's record
    db.session.commit()
    _post(app, world.key_a, [w.order("A7K", 1, person, "PSY01", D), w.order("A7K", 2, person, "OPD01", D)])
    lines, _ = case_year(case, Y)
    assert [(line.item_code, line.reason) for line in lines] == [("OPD", "no_record"), ("PSY", "no_record")] or \
        sorted((line.item_code, line.reason) for line in lines) == [("OPD", "no_record"), ("PSY", "no_record")]


def test_a8_an_order_of_12_31_executed_on_1_2_counts_in_the_new_year(app, db, world):
    person, case = _fresh(db, world)
    executed = dt.date(Y, 1, 2)
    w.record(db, case, executed)
    db.session.commit()
    _post(app, world.key_a, [w.order("A8", 1, person, "PSY01", executed, ordered=dt.date(Y - 1, 12, 31))])
    assert case_year(case, Y - 1)[0] == []
    lines, _ = case_year(case, Y)
    assert [(line.executed_on, line.amount) for line in lines] == [(executed, 1500)]


def test_a9_lines_fill_the_cap_in_execution_date_then_line_order_the_rest_over_the_cap(app, db, world):
    """Cap 10,000 at NT$1,500 a line: six lines paid, the seventh paid 1,000 of 1,500, the
    eighth not at all (central); the local scheme of 臺北市 pays those two instead."""
    person, case = _fresh(db, world)
    days = [dt.date(Y, 5, d) for d in range(1, 9)]
    for day in days:
        w.record(db, case, day)
    db.session.commit()
    _post(app, world.key_a, [w.order("A9C", n, person, "PSY01", day) for n, day in enumerate(days, 1)])
    lines, caps = case_year(case, Y)
    paid = [(line.scheme_code, line.amount) for line in lines]
    assert paid[:6] == [("T-DRUG", 1500)] * 6
    assert paid[6] == ("T-DRUG", 1000) and lines[6].reason == "over_cap"
    assert paid[7] == ("T-TPE", 1000)  # A10: the county's scheme pays what the central cap does not
    assert caps["remaining"]["T-DRUG"] == 0 and caps["remaining"]["T-TPE"] == 4000


def test_a9_two_institutions_reach_one_persons_cap_together(app, db, world, login_as):
    """The cap is the person's across institutions, allocated in one fixed order; each
    institution sees the remaining amount, nothing of the other's lines."""
    person = w.patient(db)
    case_a = w.case(db, world.a, person)
    case_b = w.case(db, world.b, person)
    for n in range(1, 5):
        w.record(db, case_a, dt.date(Y, 6, n))
        w.record(db, case_b, dt.date(Y, 6, n))
    db.session.commit()
    _post(app, world.key_a, [w.order("A9X", n, person, "PSY01", dt.date(Y, 6, n)) for n in range(1, 5)])
    _post(app, world.key_b, [w.order("B9X", n, person, "PSY01", dt.date(Y, 6, n)) for n in range(1, 5)])
    lines_a, caps_a = case_year(case_a, Y)
    lines_b, caps_b = case_year(case_b, Y)
    central = sum(line.amount for line in lines_a + lines_b if line.scheme_code == "T-DRUG")
    assert central == 10_000  # 8 lines of 1,500 = 12,000 asked, the cap paid
    assert caps_a["remaining"]["T-DRUG"] == caps_b["remaining"]["T-DRUG"] == 0
    # Day by day, and on one day by line id (HIS order id "A9X" < "B9X"), whoever posted first:
    # A's fourth line gets the last 1,000, B's fourth nothing.
    assert [line.amount for line in lines_a] == [1500, 1500, 1500, 1000]
    assert [line.amount for line in lines_b] == [1500, 1500, 1500, 0]
    # B's institution is 高雄市: no 臺北市 scheme for it, so its last line is over the cap.
    assert lines_b[-1].reason == "over_cap" and lines_a[-1].reason == "over_cap"
    page = login_as(world.staff_b).get(f"/caseview/show/{case_b.id}?claim_year={Y}")
    assert page.status_code == 200
    assert ">A9X-" not in page.text and ">B9X-1<" in page.text and 'data-scheme="T-DRUG">NT$0<' in page.text


def test_a9_the_same_lines_entered_in_another_order_give_the_same_allocation(app, db, world):
    """openIMIS's ceilings depend on entry order; ours do not."""
    results = []
    days = [dt.date(Y, 7, d) for d in (3, 1, 2, 2, 5, 4, 1, 6)]
    orders = [(f"PRM{i % 3}", i, day) for i, day in enumerate(days, 1)]
    for seed in (1, 2, 3):
        person, case = _fresh(db, world)
        for day in sorted(set(days)):
            w.record(db, case, day)
            w.record(db, case, day, kind="outpatient", profession="physician")
        db.session.commit()
        shuffled = list(orders)
        random.Random(seed).shuffle(shuffled)
        for his_id, n, day in shuffled:  # one post per order: ids in a different order each time
            code = "PSY01" if n % 2 else "OPD01"
            _post(app, world.key_a, [w.order(f"{his_id}-{case.id}", n, person, code, day)])
        lines, caps = case_year(case, Y)
        results.append(([(ln.executed_on, ln.item_code, ln.scheme_code, ln.amount, ln.reason) for ln in lines],
                         caps["remaining"]))  # fmt: skip
    assert results[0] == results[1] == results[2]


def test_a9_the_case_management_fee_is_outside_the_cap_and_added_without_an_order(app, db, world, login_as):
    person, case = _fresh(db, world)
    days = [dt.date(Y, 8, d) for d in range(1, 9)]
    for day in days:
        w.record(db, case, day)
    w.record(db, case, dt.date(Y, 8, 20), kind="case_management", profession="case_manager")
    db.session.commit()
    _post(app, world.key_a, [w.order("CMF", n, person, "PSY01", day) for n, day in enumerate(days, 1)])
    client = login_as(world.staff_a)
    response = client.post(f"/caseclaims/{case.id}/fee", data={"csrf_token": csrf_token(app, client),
                                                               "executed_on": f"{Y - 1911}/08/20"})
    assert response.status_code == 302
    # Twice: idempotent, one line.
    client.post(f"/caseclaims/{case.id}/fee", data={"csrf_token": csrf_token(app, client),
                                                    "executed_on": f"{Y - 1911}/08/20"})
    lines, caps = case_year(case, Y)
    fee = [line for line in lines if line.item_code == "CM"]
    assert [(f.amount, f.within_cap) for f in fee] == [(500, False)]
    assert caps["remaining"]["T-DRUG"] == 0  # the cap is spent; the fee is paid anyway
    assert db.session.query(HisOrder).filter_by(case_id=case.id, source="manual").count() == 1


def test_a9_the_fee_added_by_hand_without_a_record_is_not_claimable(app, db, world, login_as):
    person, case = _fresh(db, world)
    client = login_as(world.staff_a)
    client.post(f"/caseclaims/{case.id}/fee", data={"csrf_token": csrf_token(app, client),
                                                    "executed_on": f"{Y - 1911}/08/21"})
    lines, _ = case_year(case, Y)
    assert [(line.item_code, line.reason) for line in lines] == [("CM", "no_record")]


def test_a9_the_fee_for_a_case_out_of_scope_is_404(app, db, world, login_as):
    person, case = _fresh(db, world, inst=world.b)
    client = login_as(world.staff_a)
    response = client.post(f"/caseclaims/{case.id}/fee", data={"csrf_token": csrf_token(app, client),
                                                               "executed_on": f"{Y - 1911}/08/21"})
    assert response.status_code == 404
    assert db.session.query(HisOrder).filter_by(case_id=case.id).count() == 0


def test_a9_a_minor_has_the_minors_cap(app, db, world):
    from models.addiction.scheme import SubsidyScheme

    person, case = _fresh(db, world, birth=dt.date(Y - 15, 1, 1))
    local = db.session.query(SubsidyScheme).filter_by(code="T-TPE", year=Y).one()
    local.cap_minor = 1000
    db.session.commit()
    try:
        days = [dt.date(Y, 9, d) for d in range(1, 10)]
        for day in days:
            w.record(db, case, day, kind="group_psychotherapy")
        db.session.commit()
        _post(app, world.key_a, [w.order("MIN", n, person, "GRP01", day) for n, day in enumerate(days, 1)])
        lines, caps = case_year(case, Y)
        assert sum(line.amount for line in lines) == 1000 and caps["remaining"]["T-TPE"] == 0
    finally:
        local.cap_minor = None
        db.session.commit()


def test_a9_outside_the_course_and_not_eligible_say_why(app, db, world):
    person, case = _fresh(db, world, course=(dt.date(Y, 1, 1), dt.date(Y, 1, 31)))
    w.record(db, case, dt.date(Y, 1, 10))
    _, mandated = _fresh(db, world, eligibility="law_mandated_self_pay")
    w.record(db, mandated, D)
    db.session.commit()
    _post(app, world.key_a, [w.order("OUT", 1, person, "PSY01", dt.date(Y, 3, 1))])
    _post(app, world.key_a, [w.order("ELG", 1, mandated.patient, "PSY01", D)])
    assert [line.reason for line in case_year(case, Y)[0]] == ["outside_course"]
    # Not eligible centrally; the local scheme names no categories, so it pays.
    assert [(line.scheme_code, line.amount) for line in case_year(mandated, Y)[0]] == [("T-TPE", 1000)]


def test_a10_a_county_scheme_is_claimable_beside_the_central_one_without_paying_a_line_twice(app, db, world):
    person, case = _fresh(db, world)
    for n in range(1, 11):
        w.record(db, case, dt.date(Y, 10, n))
        w.record(db, case, dt.date(Y, 10, n), kind="group_psychotherapy")
    db.session.commit()
    _post(app, world.key_a, [w.order("A10", n, person, "PSY01", dt.date(Y, 10, n)) for n in range(1, 11)] +
          [w.order("A10", 100 + n, person, "GRP01", dt.date(Y, 10, n)) for n in range(1, 11)])
    lines, _ = case_year(case, Y)
    assert len(lines) == 20
    assert all(line.amount <= line.unit_amount for line in lines)
    by_scheme = {}
    for line in lines:
        by_scheme[line.scheme_code] = by_scheme.get(line.scheme_code, 0) + line.amount
    assert by_scheme["T-DRUG"] == 10_000 and by_scheme["T-TPE"] == 5_000
    assert len({(line.case_id, line.item_code, line.executed_on) for line in lines}) == 20


def test_a9_over_budget_lines_are_flagged_in_the_fixed_order(app, db, world):
    from domain.addiction.claimable import apply_budgets, load_schemes

    person, case = _fresh(db, world)
    for n in range(1, 4):
        w.record(db, case, dt.date(Y + 1, 2, n))
    db.session.commit()
    _post(app, world.key_a, [w.order("BUD", n, person, "PSY01", dt.date(Y + 1, 2, n)) for n in range(1, 4)])
    data = Data([person.id], Y + 1)
    lines = compute_person(data, person.id).lines
    families = load_schemes(Y + 1)
    tight = {code: [type(v)(**{**v.__dict__, "budget": 3000}) for v in versions] for code, versions in families.items()}
    apply_budgets(lines, tight, "flag")
    assert [line.over_budget for line in lines] == [False, False, True]
    apply_budgets(lines, tight, "stop")
    assert lines[-1].amount == 0 and lines[-1].reason == "over_budget"


def test_a7_the_territory_computation_covers_every_line_of_a_county_year(app, db, world):
    from models.registry.institution import Institution

    territory = compute_territory(Y, Institution.county_id == db.session.get(Institution, world.a).county_id)
    assert territory.lines and all(line.executed_on.year == Y for line in territory.lines)
    assert all(line.reason or line.amount > 0 for line in territory.lines)


def test_a9_the_case_page_panel_shows_claimable_remaining_cap_and_budget(app, db, world, login_as):
    person, case = _fresh(db, world)
    w.record(db, case, dt.date(Y, 11, 1))
    db.session.commit()
    _post(app, world.key_a, [w.order("PNL", 1, person, "PSY01", dt.date(Y, 11, 1)),
                             w.order("PNL", 2, person, "ZZZ99", dt.date(Y, 11, 2))])
    page = login_as(world.staff_a).get(f"/caseview/show/{case.id}?claim_year={Y}")
    assert page.status_code == 200
    assert 'id="his-panel"' in page.text and 'id="claimable-total">NT$1,500<' in page.text
    assert 'data-scheme="T-DRUG">NT$8,500<' in page.text
    assert "remaining-budget" in page.text
    assert 'data-reason="unmapped"' in page.text and "ZZZ99" in page.text
