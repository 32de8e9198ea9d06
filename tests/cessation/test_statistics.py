"""Yearly cessation statistics, bulletin tables 1–3 (rule C9): definitions on hand-built
cases, scope (screen, API, workbook), the cache never serving a stale figure, and the demo
dataset reproducing the ROC 113 bulletin cell for cell."""

from __future__ import annotations

import datetime as dt
import io

import pytest
from openpyxl import load_workbook
from sqlalchemy import delete, event, func, insert, select, text, update
from sqlalchemy.engine import Engine

from core.data.scope import SYSTEM_SCOPE, Scope, ScopeKind
from domain.cessation.statistics import TOTAL, cessation_statistics, compute_cessation_statistics
from models.cessation.visit import Quitter, Visit
from models.registry.institution import ContractPeriod, Institution
from models.registry.practitioner import Practitioner, ServiceAssignment
from models.registry.reference import County, InstitutionLevel
from seed.cessation import bulletin113 as bulletin
from tests.conftest import visible_text
from tests.factories import _new_id
from tests.scope_oracle import user_view

Y = 2019  # ROC 108: no demo visit is dated in it
D = dt.date


def _rows(result, table):
    return {r["level"]: r for r in result[table]}


def _cells(result, table, level, *keys):
    row = _rows(result, table)[level]
    return tuple(row[k] for k in keys)


RATE = ("contracted", "executing", "rate")
SERVICES = ("medication_visits", "education_visits", "medication_average", "education_average")


@pytest.fixture
def world(db):
    """Four institutions in 連江縣 (see each row's comment), five practitioners, four quitters."""
    county = db.session.scalar(select(County).where(County.code == "LIE"))
    levels = {lv.code: lv for lv in db.session.scalars(select(InstitutionLevel))}
    made: list = []

    def add(obj):
        db.session.add(obj)
        db.session.flush()
        made.append(obj)
        return obj

    def institution(code, level, contract_end=None, start=None):
        start = start or D(2010, 1, 1)
        inst = add(
            Institution(
                nhi_code=code,
                name=f"測試{code[-2:]}",
                level_id=levels[level].id,
                county_id=county.id,
            )
        )
        add(ContractPeriod(institution_id=inst.id, start_date=start, end_date=contract_end))
        return inst

    suffix = _new_id("S")[2:6]
    a = institution(f"9920{suffix}01", "district_hospital")  # contracted, with visits
    b = institution(f"9920{suffix}02", "district_hospital")  # contracted, no visit in Y
    c = institution(
        f"9920{suffix}03", "district_hospital", contract_end=D(Y, 6, 30)
    )  # ended mid-year
    d = institution(f"9920{suffix}04", "clinic", start=D(2015, 1, 1))

    def practitioner(*posts):
        p = add(Practitioner(national_id=_new_id("P"), name="測試醫師", profession="physician"))
        for inst, end in posts:
            add(
                ServiceAssignment(
                    practitioner_id=p.id,
                    institution_id=inst.id,
                    start_date=D(2015, 1, 1),
                    end_date=end,
                )
            )
        return p

    p1 = practitioner((a, None), (d, None))  # two levels
    p2 = practitioner((a, None))  # contracted, never a visit
    p3 = practitioner((c, None))  # at the institution whose contract ended
    p4 = practitioner((a, D(Y, 10, 1)))  # assignment ended before 12/31
    p5 = practitioner((b, None))
    quitters = [
        add(Quitter(national_id=_new_id("Q"), name="測試者", sex="M", birth_date=D(1970, 1, 1)))
        for _ in range(4)
    ]
    q1, q2, q3, q4 = quitters

    def visit(inst, prac, quitter, day, med=False, edu=False):
        return add(Visit(institution_id=inst.id, practitioner_id=prac.id, quitter_id=quitter.id, visit_date=day,
                         medication_name="Varenicline" if med else None, medication_days=14 if med else None,
                         education_minutes=20 if edu else None, entered_at=dt.datetime(2020, 1, 2),
                         entry_timeliness="after_deadline"))  # fmt: skip

    visits = {
        "both": visit(a, p1, q1, D(Y, 1, 1), med=True, edu=True),  # 1/1 of Y counts
        "med": visit(a, p1, q1, D(Y, 2, 1), med=True),
        "ended_assignment": visit(a, p4, q2, D(Y, 9, 1), edu=True),
        "dec31": visit(a, p1, q3, D(Y, 12, 31), edu=True),  # 12/31 of Y counts
        "before": visit(b, p5, q2, D(Y - 1, 12, 31), med=True),  # 12/31 of Y-1 does not
        "after": visit(b, p5, q2, D(Y + 1, 1, 1), med=True),  # 1/1 of Y+1 does not
        "ended_contract": visit(c, p3, q4, D(Y, 3, 1), med=True),
        "other_level": visit(d, p1, q1, D(Y, 3, 1), med=True),  # Q1 at a second level
    }
    db.session.commit()
    scope = Scope(kind=ScopeKind.FACILITY, institution_ids=frozenset(i.id for i in (a, b, c, d)))
    yield {
        "a": a,
        "b": b,
        "c": c,
        "d": d,
        "p1": p1,
        "p2": p2,
        "p4": p4,
        "q1": q1,
        "scope": scope,
        "visits": visits,
    }
    db.session.rollback()
    for model in (Visit, ServiceAssignment, ContractPeriod):
        ids = [o.id for o in made if isinstance(o, model)]
        db.session.execute(delete(model).where(model.id.in_(ids)))
    for model in (Quitter, Practitioner, Institution):
        ids = [o.id for o in made if isinstance(o, model)]
        db.session.execute(delete(model).where(model.id.in_(ids)))
    db.session.commit()


def test_c9_table1_contracted_at_year_end_and_executing_with_a_visit_in_the_year(db, world):
    """C9 table 1: B is contracted with no visit in Y (only on 12/31 of Y-1 and 1/1 of Y+1);
    C's contract ended mid-year, so it is not contracted although it had visits."""
    result = compute_cessation_statistics(Y, world["scope"])
    assert _cells(result, "institutions", "district_hospital", *RATE) == (2, 1, "50.00")
    assert _cells(result, "institutions", "clinic", *RATE) == (1, 1, "100.00")
    assert _cells(result, "institutions", "medical_center", *RATE) == (0, 0, None)
    assert _cells(result, "institutions", TOTAL, *RATE) == (3, 2, "66.67")
    assert [r["level"] for r in result["institutions"]] == [*bulletin.LEVEL_CODES, TOTAL]


def test_c9_table2_a_practitioner_at_two_levels_counts_in_each_and_once_in_the_total(db, world):
    """C9 table 2: P1 serves at a district hospital and a clinic; P2 never saw anyone; P3 is
    at the institution whose contract ended; P4's assignment ended before 12/31."""
    result = compute_cessation_statistics(Y, world["scope"])
    assert _cells(result, "practitioners", "district_hospital", *RATE) == (
        3,
        1,
        "33.33",
    )  # P1, P2, P5
    assert _cells(result, "practitioners", "clinic", *RATE) == (1, 1, "100.00")  # P1
    assert _cells(result, "practitioners", TOTAL, *RATE) == (3, 1, "33.33")  # P1 once
    levels = [r for r in result["practitioners"] if r["level"] != TOTAL]
    assert sum(r["contracted"] for r in levels) == 4 > 3  # the bulletin's footnote


def test_c9_table3_visits_quitters_with_both_services_and_the_year_boundaries(db, world):
    """C9 table 3: a visit with both services counts in both; visits at the institution whose
    contract ended count; 1/1 and 12/31 of Y count, 12/31 of Y-1 and 1/1 of Y+1 do not; the
    total row divides by distinct quitters over all levels (Q1 visited two levels)."""
    result = compute_cessation_statistics(Y, world["scope"])
    assert _cells(result, "services", "district_hospital", *SERVICES) == (3, 3, "1.5", "1.0")
    assert _cells(result, "services", "clinic", *SERVICES) == (1, 0, "1.0", None)
    assert _cells(result, "services", "pharmacy", *SERVICES) == (0, 0, None, None)
    # 4 medication visits by Q1 and Q4: 2.0 (not 4 / (2 + 1) = 1.3)
    assert _cells(result, "services", TOTAL, *SERVICES) == (4, 3, "2.0", "1.0")
    assert _rows(result, "services")[TOTAL]["medication_quitters"] == 2
    # moving the 12/31 visit to 1/1 of the next year takes it out of Y
    world["visits"]["dec31"].visit_date = D(Y + 1, 1, 1)
    db.session.flush()
    moved = compute_cessation_statistics(Y, world["scope"])
    assert _cells(moved, "services", "district_hospital", *SERVICES)[:2] == (3, 2)
    assert _cells(compute_cessation_statistics(Y + 1, world["scope"]), "services", "district_hospital",
                  "education_visits") == (1,)  # fmt: skip
    db.session.rollback()


def _statements(fn):
    """Run fn() and return the SQL statements it executed."""
    seen: list[str] = []

    def listener(conn, cursor, statement, *args):
        seen.append(statement)

    event.listen(Engine, "before_cursor_execute", listener)
    try:
        result = fn()
    finally:
        event.remove(Engine, "before_cursor_execute", listener)
    return result, seen


def test_c9_cache_is_used_and_never_serves_a_stale_figure(db, world):
    """The cached tables answer without SQL; every committed change to visits, contracts or
    assignments (ORM, Core bulk insert, raw SQL) gives fresh figures at once."""
    scope, a = world["scope"], world["a"]

    def fresh_equals_cached():
        cached = cessation_statistics(Y, scope)
        assert cached == compute_cessation_statistics(Y, scope)
        return cached

    first = fresh_equals_cached()
    again, statements = _statements(lambda: cessation_statistics(Y, scope))
    assert again == first and not [s for s in statements if "visit" in s.lower()]

    # a visit added through the ORM
    extra = Visit(institution_id=a.id, practitioner_id=world["p2"].id, quitter_id=world["q1"].id,
                  visit_date=D(Y, 6, 1), medication_days=7, entered_at=dt.datetime(2019, 6, 1),
                  entry_timeliness="within_24h")  # fmt: skip
    db.session.add(extra)
    db.session.commit()
    after_add = fresh_equals_cached()
    assert _cells(after_add, "practitioners", "district_hospital", "executing") == (2,)
    assert _cells(after_add, "services", "district_hospital", "medication_visits") == (4,)
    # ... and deleted
    db.session.delete(extra)
    db.session.commit()
    assert fresh_equals_cached() == first
    # a contract ended before 12/31
    contract = db.session.scalar(
        select(ContractPeriod).where(ContractPeriod.institution_id == world["b"].id)
    )
    contract.end_date = D(Y, 11, 30)
    db.session.commit()
    assert _cells(fresh_equals_cached(), "institutions", "district_hospital", "contracted") == (1,)
    contract.end_date = None
    db.session.commit()
    assert fresh_equals_cached() == first
    # an assignment ended before 12/31
    assignment = db.session.scalar(
        select(ServiceAssignment).where(ServiceAssignment.practitioner_id == world["p2"].id)
    )
    assignment.end_date = D(Y, 5, 1)
    db.session.commit()
    assert _cells(fresh_equals_cached(), "practitioners", "district_hospital", "contracted") == (2,)
    assignment.end_date = None
    db.session.commit()
    # a Core bulk insert (the seed's and batch upload's path) and a raw SQL delete
    db.session.execute(insert(Visit), [{"institution_id": a.id, "practitioner_id": world["p1"].id,
                                        "quitter_id": world["q1"].id, "visit_date": D(Y, 7, 1), "education_minutes": 10,
                                        "entered_at": dt.datetime(2019, 7, 1), "entry_timeliness": "within_24h"}])  # fmt: skip
    db.session.commit()
    bulk = fresh_equals_cached()
    assert _cells(bulk, "services", "district_hospital", "education_visits") == (4,)
    db.session.execute(text("DELETE FROM visit WHERE visit_date = :day AND institution_id = :inst"),
                       {"day": D(Y, 7, 1), "inst": a.id})  # fmt: skip
    db.session.commit()
    assert fresh_equals_cached() == first
    # an uncommitted change is seen by its own transaction, and a rollback leaves no trace
    db.session.execute(
        update(Visit).where(Visit.id == world["visits"]["med"].id).values(visit_date=D(Y - 1, 2, 1))
    )
    assert _cells(
        cessation_statistics(Y, scope), "services", "district_hospital", "medication_visits"
    ) == (2,)
    db.session.rollback()
    assert cessation_statistics(Y, scope) == first


def _cached(year, scope):
    """(tables, hit): hit when the answer came from the cache, without reading any visit."""
    result, statements = _statements(lambda: cessation_statistics(year, scope))
    return result, not [s for s in statements if "visit" in s.lower()]


def _orm_visit(world, day, prac="p1"):
    return Visit(institution_id=world["a"].id, practitioner_id=world[prac].id, quitter_id=world["q1"].id,
                 visit_date=day, medication_days=7, entered_at=dt.datetime(2020, 1, 2),
                 entry_timeliness="after_deadline")  # fmt: skip


def test_c9_cache_a_visit_in_another_year_keeps_the_year_cached_one_in_the_year_refreshes_it(
    db, world
):
    """Invalidation is scoped by year: a visit entered, edited or deleted with a date in Y+1
    (ORM, Core bulk insert) leaves Y's cached tables in place (answered without SQL); a visit
    dated in Y recomputes them at once with the new figure; raw SQL (years unknown) and a
    Core UPDATE/DELETE by a condition recompute every year; a rollback changes nothing."""
    scope = world["scope"]
    first = cessation_statistics(Y, scope)
    assert _cached(Y, scope) == (first, True)
    next_year = cessation_statistics(Y + 1, scope)

    # a visit dated Y+1 through the ORM: entered, edited, deleted — Y stays cached
    extra = _orm_visit(world, D(Y + 1, 3, 1))
    db.session.add(extra)
    db.session.commit()
    assert _cached(Y, scope) == (first, True)
    after, hit = _cached(Y + 1, scope)
    assert not hit and after == compute_cessation_statistics(Y + 1, scope) != next_year
    extra.education_minutes = 15
    db.session.commit()
    assert _cached(Y, scope) == (first, True)
    edited, hit = _cached(Y + 1, scope)
    assert not hit and edited == compute_cessation_statistics(Y + 1, scope)
    assert _cells(edited, "services", "district_hospital", "education_visits") == (1,)
    db.session.delete(extra)
    db.session.commit()
    assert _cached(Y, scope) == (first, True)
    assert _cached(Y + 1, scope)[0] == next_year

    # a Core bulk insert dated Y+1 (batch upload's path): Y stays cached
    db.session.execute(insert(Visit), [{"institution_id": world["a"].id, "practitioner_id": world["p1"].id,
                                        "quitter_id": world["q1"].id, "visit_date": D(Y + 1, 4, 1), "medication_days": 7,
                                        "entered_at": dt.datetime(2020, 4, 1), "entry_timeliness": "within_24h"}])  # fmt: skip
    db.session.commit()
    assert _cached(Y, scope) == (first, True)
    # a Core DELETE by a condition: its years are unknown, so every year recomputes
    db.session.execute(
        delete(Visit).where(
            Visit.visit_date == D(Y + 1, 4, 1), Visit.institution_id == world["a"].id
        )
    )
    db.session.commit()
    assert _cached(Y, scope) == (first, False)
    assert _cached(Y + 1, scope) == (next_year, False)

    # a visit dated in Y: the next request recomputes Y and shows the new figure
    extra = _orm_visit(world, D(Y, 6, 1), prac="p2")
    db.session.add(extra)
    db.session.commit()
    fresh, hit = _cached(Y, scope)
    assert not hit and fresh == compute_cessation_statistics(Y, scope)
    assert _cells(fresh, "services", "district_hospital", "medication_visits") == (4,)
    assert _cells(fresh, "practitioners", "district_hospital", "executing") == (2,)
    assert _cached(Y + 1, scope) == (next_year, True)
    db.session.delete(extra)
    db.session.commit()
    assert _cached(Y, scope) == (first, False)

    # raw SQL on a visit dated Y+1: its years cannot be told from SQL text, so Y recomputes too
    db.session.execute(text("UPDATE visit SET education_minutes = 5 WHERE id = :id"),
                       {"id": world["visits"]["after"].id})  # fmt: skip
    db.session.commit()
    assert _cached(Y, scope) == (first, False)
    assert _cells(
        _cached(Y + 1, scope)[0], "services", "district_hospital", "education_visits"
    ) == (1,)

    # a visit in Y written, then rolled back: the cache still answers with the committed figures
    cessation_statistics(Y, scope)
    db.session.add(_orm_visit(world, D(Y, 8, 1)))
    db.session.flush()
    assert _cells(
        cessation_statistics(Y, scope), "services", "district_hospital", "medication_visits"
    ) == (4,)
    db.session.rollback()
    assert _cached(Y, scope) == (first, True)


def test_c9_cache_re_dating_a_visit_across_years_refreshes_both_years_only(db, world):
    """A visit moved from Y to Y+1 (an edit through the ORM) changes both years' tables at
    once; a third year stays cached."""
    scope = world["scope"]
    before = {year: cessation_statistics(year, scope) for year in (Y - 1, Y, Y + 1)}
    world["visits"]["med"].visit_date = D(Y + 1, 2, 1)
    db.session.commit()
    assert _cached(Y - 1, scope) == (before[Y - 1], True)
    moved, hit = _cached(Y, scope)
    assert not hit and _cells(moved, "services", "district_hospital", "medication_visits") == (2,)
    assert moved == compute_cessation_statistics(Y, scope)
    later, hit = _cached(Y + 1, scope)
    assert not hit and later == compute_cessation_statistics(Y + 1, scope)
    assert _cells(later, "services", "district_hospital", "medication_visits") == (2,)
    world["visits"]["med"].visit_date = D(Y, 2, 1)
    db.session.commit()
    assert (_cached(Y, scope)[0], _cached(Y + 1, scope)[0]) == (before[Y], before[Y + 1])


def test_c9_cache_a_correction_conversion_refreshes_the_old_and_the_new_year(app, db):
    """C5/C9: converting a correction ticket re-dates a visit from 2025-02-03 to 2024-12-30;
    both years' tables of the institution change at once, 2023's stay cached."""
    from core import clock
    from core.dates import TAIPEI
    from domain.cessation.corrections import ConvertTicket
    from models.cessation.correction import CorrectionTicket
    from tests.cessation.test_corrections import _approved_ticket

    ticket, visit, _ = _approved_ticket(db, found=D(2025, 2, 3), real=D(2024, 12, 30))
    scope = Scope(kind=ScopeKind.FACILITY, institution_ids=frozenset([visit.institution_id]))
    before = {year: cessation_statistics(year, scope) for year in (2023, 2024, 2025)}
    with clock.frozen(dt.datetime(2025, 2, 5, 10, 0, tzinfo=TAIPEI)):
        assert ConvertTicket(db.session.get(CorrectionTicket, ticket.id)).run().changed
    assert _cached(2023, scope) == (before[2023], True)
    for year, change in ((2024, 1), (2025, -1)):
        after, hit = _cached(year, scope)
        assert not hit and after == compute_cessation_statistics(year, scope)
        old, new = (_rows(r, "services")[TOTAL]["medication_visits"] for r in (before[year], after))
        assert new - old == change, year


def _table(html: str, table_id: str) -> str:
    return visible_text(html.split(f'id="{table_id}"', 1)[1].split("</table>", 1)[0])


def test_c9_report_screen_shows_three_tables_definitions_footnote_and_chart(app, db, login_as):
    page = login_as("office").get("/cessationstats/?year=113")
    assert page.status_code == 200
    html = page.text
    national = cessation_statistics(2024, SYSTEM_SCOPE)
    total = _rows(national, "institutions")[TOTAL]
    assert f"{total['contracted']:,} {total['executing']:,} {total['rate']}%" in _table(
        html, "table-1"
    )
    assert "醫學中心" in _table(html, "table-3") and "合計" in _table(html, "table-3")
    text_ = visible_text(html)
    assert "各層級人數加總可能大於合計人數" in text_  # the bulletin's footnote under table 2
    assert "12/31" in text_ and "用藥" in text_  # C9 definitions under the tables
    assert html.count('class="bar"') == 7 and "<svg" in html
    assert "cdn" not in html.split('id="execution-rate-chart"', 1)[1].split("</svg>", 1)[0].lower()
    # levels in the bulletin's order, total last
    names = [r["name"] for r in national["institutions"][:-1]]
    body = _table(html, "table-1")
    assert [body.index(n) for n in names] == sorted(body.index(n) for n in names)
    assert body.rindex("合計") > body.index(names[-1])
    # a county chosen by a national user
    tpe = login_as("office").get("/cessationstats/?year=113&county=TPE").text
    assert visible_text(tpe.split('id="scope-name">', 1)[1].split("<", 1)[0]) == "臺北市"


def _oracle_contracted(db, username) -> int:
    """An independent count: institutions the user may see, contracted on 2024-12-31."""
    visible = user_view(db, username).institution_ids
    contracted = db.session.scalars(
        select(Institution.id).where(Institution.contracted_at_year_end(2024))
    )
    return len(set(contracted) & visible)


@pytest.mark.parametrize("username", ["bureau_tpe", "facility_tpe", "office"])
def test_c9_scope_screen_api_and_workbook_hold_only_the_users_rows(
    app, db, login_as, api_as, username
):
    client, headers = api_as(username)
    data = client.get("/api/v1/reports/cessation?year=113", headers=headers)
    assert data.status_code == 200, data.text
    body = data.json
    expected_total = _oracle_contracted(db, username)
    assert body["year"] == 113 and body["institutions"][-1]["contracted"] == expected_total
    if username == "facility_tpe":
        assert expected_total == 1
    # the screen and the workbook give the same numbers
    screen = _table(login_as(username).get("/cessationstats/?year=113").text, "table-1")
    total = body["institutions"][-1]
    assert f"{total['contracted']:,} {total['executing']:,}" in screen
    workbook = load_workbook(
        io.BytesIO(login_as(username).get("/cessationstats/export?year=113").data)
    )
    cells = [list(r) for r in workbook.active.iter_rows(values_only=True)]
    assert "113" in cells[0][0]
    total_row = next(r for r in cells if r[0] == "合計")
    assert total_row[1:3] == [total["contracted"], total["executing"]]
    services = body["services"][-1]
    assert [services["medication_visits"], services["education_visits"]] in [r[1:3] for r in cells]


@pytest.mark.parametrize(
    "username, county, status",
    [("bureau_tpe", "KHH", 403), ("facility_tpe", "KHH", 403), ("facility_tpe", "TPE", 403),
     ("office", "XXX", 404), ("bureau_tpe", "TPE", 200), ("office", "TPE", 200)],
)  # fmt: skip
def test_c9_api_refuses_a_scope_outside_the_callers(
    app, db, api_as, login_as, username, county, status
):
    """A bureau or facility naming another county (or a facility naming any) gets 403, an
    unknown county 404, on the API, the screen and the workbook alike. (One user per test:
    the test client shares `g` between requests of one test.)"""
    client, headers = api_as(username)
    response = client.get(f"/api/v1/reports/cessation?year=113&county={county}", headers=headers)
    assert response.status_code == status
    if status == 200:
        tpe = db.session.scalar(select(County.id).where(County.code == "TPE"))
        expected = cessation_statistics(
            2024, Scope(kind=ScopeKind.COUNTY, county_ids=frozenset([tpe]))
        )
        assert response.json["institutions"] == expected["institutions"]
        assert response.json["scope"]["name"] == "臺北市"
    browser = login_as(username)
    assert browser.get(f"/cessationstats/?year=113&county={county}").status_code == status
    assert browser.get(f"/cessationstats/export?year=113&county={county}").status_code == status


@pytest.mark.parametrize("username", ["helpdesk", "office"])
def test_c9_bad_year_and_roles_without_the_report(app, db, api_as, login_as, username):
    client, headers = api_as(username)
    response = client.get("/api/v1/reports/cessation?year=abc", headers=headers)
    page = login_as(username).get("/cessationstats/?year=abc")
    if username == "helpdesk":
        # 404: the helpdesk is in neither programme, so the report is not there for it (A1)
        assert response.status_code in (401, 403, 404) and page.status_code in (302, 403, 404)
    else:
        assert response.status_code == 400 and "113" in response.json["message"]
        assert page.status_code == 200 and "請以民國年輸入年度" in visible_text(page.text)


# --- the full-scale demo dataset -----------------------------------------------------------


@pytest.fixture(scope="module")
def full_scale(database_url, tmp_path_factory):
    """The demo dataset at scale 1.0 (seed 113), in a database of its own, built once."""
    from flask_migrate import upgrade
    from sqlalchemy import create_engine
    from sqlalchemy.engine import make_url

    from app import create_app
    from core.extensions import db
    from seed.demo import seed_demo

    url = make_url(database_url)
    admin = None
    if url.get_backend_name() == "sqlite":
        scratch = f"sqlite:///{tmp_path_factory.mktemp('full') / 'full.db'}"
    else:
        admin = create_engine(url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text("DROP DATABASE IF EXISTS c9_full_scale"))
            conn.execute(text("CREATE DATABASE c9_full_scale"))
        scratch = url.set(database="c9_full_scale").render_as_string(hide_password=False)
    application = create_app({"SQLALCHEMY_DATABASE_URI": scratch, "CACHE_TYPE": "SimpleCache",
                              "UPLOAD_FOLDER": str(tmp_path_factory.mktemp("full-up"))})  # fmt: skip
    with application.app_context():
        upgrade()
        # The addiction programme's cases and records (450,000 rows, a third of this
        # fixture's time) touch no table these statistics read.
        seed_demo(seed=113, scale=1.0, addiction_cases=False)
        result = compute_cessation_statistics(bulletin.YEAR, SYSTEM_SCOPE)
        yield application, result
        db.session.remove()
        db.engine.dispose()
    if admin is not None:
        with admin.connect() as conn:
            conn.execute(text("DROP DATABASE IF EXISTS c9_full_scale WITH (FORCE)"))
        admin.dispose()


def test_c9_demo_dataset_reproduces_bulletin_tables_1_to_3_digit_for_digit(full_scale):
    """Every cell of tables 1–3 of the ROC 113 bulletin, every level and the totals.

    One published cell cannot be reproduced by any dataset: the bulletin's medication total
    (217,500) is 2,000 more than its own seven levels (215,500). The total row is the sum of
    the levels by definition, so it shows 215,500; every other cell matches."""
    _, result = full_scale
    assert result["roc_year"] == bulletin.ROC_YEAR
    for code in bulletin.LEVEL_CODES:
        assert _cells(result, "institutions", code, *RATE) == bulletin.TABLE1[code], code
        assert _cells(result, "practitioners", code, *RATE) == bulletin.TABLE2[code], code
        assert _cells(result, "services", code, *SERVICES) == bulletin.TABLE3[code], code
    assert [r["level"] for r in result["services"]] == [*bulletin.LEVEL_CODES, TOTAL]
    assert _cells(result, "institutions", TOTAL, *RATE) == bulletin.TABLE1_TOTAL
    assert _cells(result, "practitioners", TOTAL, *RATE) == bulletin.TABLE2_TOTAL
    medication, education, med_average, edu_average = _cells(result, "services", TOTAL, *SERVICES)
    assert (education, med_average, edu_average) == bulletin.TABLE3_TOTAL[1:]
    assert (
        medication
        == sum(bulletin.TABLE3[c][0] for c in bulletin.LEVEL_CODES)
        == bulletin.TABLE3_LEVELS_MEDICATION
    )
    assert bulletin.TABLE3_TOTAL[0] - medication == 2_000


def test_demo_dataset_respects_c1_and_c4(full_scale):
    """Every demo visit is by a practitioner assigned there on that day, at an institution
    holding a contract then (C1), and a quitter's visits are at least 5 days apart (C4)."""
    from core.extensions import db

    application, _ = full_scale
    with application.app_context():
        unassigned = db.session.scalar(select(func.count(Visit.id)).where(~select(ServiceAssignment.id).where(
            ServiceAssignment.practitioner_id == Visit.practitioner_id,
            ServiceAssignment.institution_id == Visit.institution_id,
            ServiceAssignment.start_date <= Visit.visit_date,
            (ServiceAssignment.end_date.is_(None)) | (ServiceAssignment.end_date >= Visit.visit_date),
        ).exists()))  # fmt: skip
        uncontracted = db.session.scalar(select(func.count(Visit.id)).where(~select(ContractPeriod.id).where(
            ContractPeriod.institution_id == Visit.institution_id, ContractPeriod.covering(Visit.visit_date),
        ).exists()))  # fmt: skip
        assert (unassigned, uncontracted) == (0, 0)
        previous, too_close = None, 0
        for quitter_id, day in db.session.execute(
            select(Visit.quitter_id, Visit.visit_date).order_by(Visit.quitter_id, Visit.visit_date)
        ):
            if previous and previous[0] == quitter_id and (day - previous[1]).days < 5:
                too_close += 1
            previous = (quitter_id, day)
        assert too_close == 0
        in_2024 = db.session.scalar(
            select(func.count(Visit.id)).where(
                Visit.visit_date.between(D(2024, 1, 1), D(2024, 12, 31))
            )
        )
        assert in_2024 > 400_000
        assert (
            db.session.scalar(
                select(func.count(Visit.id)).where(Visit.visit_date > D(2024, 12, 31))
            )
            > 0
        )
        assert (
            db.session.scalar(select(func.count(Visit.id)).where(Visit.visit_date < D(2024, 1, 1)))
            > 0
        )
