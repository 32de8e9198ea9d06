"""A9, A10: schemes with items, caps (by age group) and budgets; the Ministry edits central
schemes, a bureau only its own county's; a published version is frozen and a change makes a
new version that applies from its date; bad values are refused in zh_TW keeping what was typed."""

from __future__ import annotations

import datetime as dt

import pytest

from core.security.roles import ADDICTION_BUREAU, ADDICTION_MINISTRY
from models.addiction.scheme import SchemeItem, SubsidyScheme
from models.registry.reference import County
from tests.addiction import claims_world as w
from tests.conftest import csrf_token

YEAR = w.YEAR + 5  # no other test's schemes


@pytest.fixture(scope="module")
def users(app):
    from core.extensions import db

    with app.app_context():
        tpe = db.session.query(County).filter_by(code="TPE").one().id
        khh = db.session.query(County).filter_by(code="KHH").one().id
        w.user(app, db, "scheme_moh", ADDICTION_MINISTRY, national=True)
        w.user(app, db, "scheme_tpe", ADDICTION_BUREAU, county=tpe)
        w.user(app, db, "scheme_khh", ADDICTION_BUREAU, county=khh)
        yield {"tpe": tpe, "khh": khh}
        db.session.remove()


def _form(app, client, **values):
    data = {"csrf_token": csrf_token(app, client), "code": "X", "name": "測試方案", "substance": "drug",
            "year": str(YEAR - 1911), "cap_adult": "40000", "cap_minor": "", "minor_age": "18", "budget": "1000000"}
    data.update(values)
    return data


def _add(app, login_as, username, **values):
    client = login_as(username)
    return client.post("/subsidyscheme/add", data=_form(app, client, **values))


def _scheme(db, code) -> SubsidyScheme:
    db.session.expire_all()
    return db.session.query(SubsidyScheme).filter_by(code=code, year=YEAR).order_by(SubsidyScheme.version.desc()).first()


def test_a9_the_ministry_makes_a_central_scheme_and_a_bureau_its_countys(app, db, login_as, users):
    assert _add(app, login_as, "scheme_moh", code="C-MOH").status_code == 302
    assert _scheme(db, "C-MOH").county_id is None
    assert _add(app, login_as, "scheme_tpe", code="L-TPE", cap_minor="45000").status_code == 302
    local = _scheme(db, "L-TPE")
    assert local.county_id == users["tpe"] and (local.cap_adult, local.cap_minor) == (40000, 45000)
    assert local.cap_for_age(17) == 45000 and local.cap_for_age(18) == 40000


@pytest.mark.parametrize("field,value,message", [
    ("cap_adult", "-1", "不可為負數"),
    ("cap_minor", "-5", "不可為負數"),
    ("budget", "abc", "整數"),
    ("year", "3000", "年度"),
])
def test_a9_a_negative_cap_or_bad_number_is_refused_keeping_what_was_typed(app, db, login_as, users, field, value, message):
    response = _add(app, login_as, "scheme_moh", code=f"BAD-{field}"[:30].upper(), name="保留的名稱", **{field: value})
    assert response.status_code == 200
    assert message in response.text and "保留的名稱" in response.text
    assert _scheme(db, f"BAD-{field}".upper()) is None


def _item(app, login_as, username, scheme_id, **values):
    client = login_as(username)
    data = {"csrf_token": csrf_token(app, client), "scheme": str(scheme_id), "code": "PSY", "name": "個別心理治療",
            "unit_amount": "1500", "within_cap": "y", "kinds": ["individual_psychotherapy"]}
    data.update(values)
    return client.post("/schemeitem/add", data=data)


def test_a9_the_case_management_fee_is_never_inside_the_cap(app, db, login_as, users):
    _add(app, login_as, "scheme_moh", code="C-CMF")
    scheme = _scheme(db, "C-CMF")
    response = _item(app, login_as, "scheme_moh", scheme.id, code="CM", name="個案管理服務費", unit_amount="500",
                     within_cap="y", case_management_fee="y", kinds=["case_management"])
    assert response.status_code == 302, response.text
    item = db.session.query(SchemeItem).filter_by(scheme_id=scheme.id, code="CM").one()
    assert item.case_management_fee and not item.within_cap


def test_a10_a_bureau_cannot_edit_a_central_scheme_nor_another_countys(app, db, login_as, users):
    _add(app, login_as, "scheme_moh", code="C-OWN")
    central = _scheme(db, "C-OWN")
    _add(app, login_as, "scheme_khh", code="L-KHH")
    other = _scheme(db, "L-KHH")
    client = login_as("scheme_tpe")
    # Another county's scheme does not exist for it: 404 on every path.
    assert client.get(f"/subsidyscheme/show/{other.id}").status_code == 404
    assert client.post(f"/subsidyscheme/edit/{other.id}", data=_form(app, client, name="改名")).status_code == 404
    assert client.post(f"/subsidyscheme/publish/{other.id}", data={"csrf_token": csrf_token(app, client)}).status_code == 404
    # A central scheme it reads but may not change.
    assert client.get(f"/subsidyscheme/show/{central.id}").status_code == 200
    response = client.post(f"/subsidyscheme/edit/{central.id}", data=_form(app, client, name="改名"))
    assert "衛生福利部" in response.text
    assert _item(app, login_as, "scheme_tpe", central.id).status_code == 200
    db.session.expire_all()
    assert _scheme(db, "C-OWN").name == "測試方案" and not _scheme(db, "C-OWN").items
    # The Ministry may not change a county's scheme either.
    moh = login_as("scheme_moh")
    response = moh.post(f"/subsidyscheme/edit/{other.id}", data=_form(app, moh, name="改名"))
    assert "衛生局" in response.text
    assert _scheme(db, "L-KHH").name == "測試方案"


def test_a9_a_published_version_is_frozen_and_a_new_version_applies_from_its_date(app, db, login_as, users):
    _add(app, login_as, "scheme_moh", code="C-VER")
    scheme = _scheme(db, "C-VER")
    client = login_as("scheme_moh")
    token = csrf_token(app, client)
    assert client.post(f"/subsidyscheme/publish/{scheme.id}", data={"csrf_token": token}).status_code == 302
    assert not _scheme(db, "C-VER").published  # no item yet: refused
    _item(app, login_as, "scheme_moh", scheme.id)
    client.post(f"/subsidyscheme/publish/{scheme.id}", data={"csrf_token": token})
    assert _scheme(db, "C-VER").published
    response = client.post(f"/subsidyscheme/edit/{scheme.id}", data=_form(app, client, cap_adult="1"))
    assert "凍結" in response.text and _scheme(db, "C-VER").cap_adult == 40000
    assert _item(app, login_as, "scheme_moh", scheme.id, code="NEW").status_code == 200
    response = client.post(f"/subsidyscheme/newversion/{scheme.id}",
                           data={"csrf_token": token, "effective_from": f"{YEAR - 1911}/07/01"})
    assert response.status_code == 302
    new = _scheme(db, "C-VER")
    assert (new.version, new.effective_from, new.published) == (2, dt.date(YEAR, 7, 1), False)
    assert [i.code for i in new.items] == ["PSY"]
    response = client.post(f"/subsidyscheme/edit/{new.id}", data=_form(app, client, cap_adult="30000"))
    assert response.status_code == 302
    client.post(f"/subsidyscheme/publish/{new.id}", data={"csrf_token": token})
    from domain.addiction.claimable import _in_force, load_schemes

    versions = load_schemes(YEAR)["C-VER"]
    assert _in_force(versions, dt.date(YEAR, 6, 30)).cap_adult == 40000
    assert _in_force(versions, dt.date(YEAR, 7, 1)).cap_adult == 30000


def test_a9_a_new_version_needs_a_later_date_in_the_year(app, db, login_as, users):
    _add(app, login_as, "scheme_moh", code="C-VD")
    scheme = _scheme(db, "C-VD")
    _item(app, login_as, "scheme_moh", scheme.id)
    client = login_as("scheme_moh")
    token = csrf_token(app, client)
    client.post(f"/subsidyscheme/publish/{scheme.id}", data={"csrf_token": token})
    for bad in (f"{YEAR - 1911}/02/30", f"{YEAR - 1910}/03/01", f"{YEAR - 1911}/01/01"):
        response = client.post(f"/subsidyscheme/newversion/{scheme.id}", data={"csrf_token": token,
                                                                               "effective_from": bad},
                               follow_redirects=True)  # fmt: skip
        assert "生效日期" in response.text, bad
    assert _scheme(db, "C-VD").version == 1


def test_a10_treatment_staff_read_central_and_their_countys_schemes_only(app, db, login_as, users):
    _add(app, login_as, "scheme_khh", code="L-KHH2")
    _add(app, login_as, "scheme_tpe", code="L-TPE2")
    page = login_as("dr_tpe").get("/subsidyscheme/list/?psize_SchemeView=500")
    assert page.status_code == 200
    assert f"/subsidyscheme/show/{_scheme(db, 'L-TPE2').id}\"" in page.text
    assert f"/subsidyscheme/show/{_scheme(db, 'L-KHH2').id}\"" not in page.text
    assert login_as("dr_tpe").get("/subsidyscheme/add").status_code in (302, 403, 404)


def test_a9_spending_against_budget_per_county_and_nationally_with_a_chart(app, db, login_as, users):
    page = login_as("ministry").get("/schemespending/?year=2025")
    assert page.status_code == 200
    assert 'id="spending-table"' in page.text and "<svg" in page.text and "藥癮治療費用補助方案" in page.text
    assert 'id="spending-by-county"' in page.text
    county = login_as("bureau_tpe").get("/schemespending/?year=2025")
    assert county.status_code == 200 and "臺北市藥癮者治療補助計畫" in county.text
    assert "高雄市酒癮治療補助方案" not in county.text
    assert login_as("dr_tpe").get("/schemespending/").status_code in (302, 403, 404)


def test_a9_an_institution_sees_its_unclaimed_lines_by_month(app, db, login_as):
    page = login_as("dr_tpe").get("/unclaimed/?year=2025")
    assert page.status_code == 200 and 'id="unclaimed-table"' in page.text
    assert "醫令代碼未對照補助項目" in page.text or "當日無可據以申請的處置紀錄" in page.text


# ------------------------------------------------------------------ the REST API (A9, A10)
def _api_scheme(**values):
    body = {"code": "API", "name": "API 方案", "substance": "drug", "year": YEAR - 1911, "cap_adult": 40000,
            "budget": 1_000_000}  # fmt: skip
    body.update(values)
    return body


API_ITEM = {"code": "PSY", "name": "個別心理治療", "unit_amount": 1500, "within_cap": True,
            "kinds": ["individual_psychotherapy"]}  # fmt: skip


def test_a10_the_scheme_api_reads_in_scope_and_writes_only_for_the_owner(app, db, api_as, users):
    """Read: central schemes and the reader's county's. Write: the Ministry the central ones,
    a bureau its county's; another county's scheme is 404 on every path, a central one 403
    for a bureau; a bad value a 422 naming it, nothing stored."""
    moh, moh_h = api_as("scheme_moh")
    tpe, tpe_h = api_as("scheme_tpe")
    khh, khh_h = api_as("scheme_khh")
    central = moh.post("/api/v1/subsidy_scheme/", json=_api_scheme(code="C-API"), headers=moh_h)
    assert central.status_code == 201, central.text
    assert central.json["result"]["county_id"] is None
    local = tpe.post("/api/v1/subsidy_scheme/", json=_api_scheme(code="L-TPE-API"), headers=tpe_h)
    assert local.status_code == 201, local.text
    assert local.json["result"]["county_id"] == users["tpe"]
    central_id, local_id = central.json["id"], local.json["id"]
    listed = khh.get("/api/v1/subsidy_scheme/?q=(page_size:100,filters:!((col:code,opr:sw,value:'L-TPE')))", headers=khh_h)
    assert listed.status_code == 200 and listed.json["count"] == 0
    for method in ("get", "put"):
        kwargs = {"json": {"name": "改名"}} if method == "put" else {}
        assert getattr(khh, method)(f"/api/v1/subsidy_scheme/{local_id}", headers=khh_h, **kwargs).status_code == 404
    assert khh.post(f"/api/v1/subsidy_scheme/{local_id}/publish", headers=khh_h).status_code == 404
    assert khh.get(f"/api/v1/subsidy_scheme/{central_id}", headers=khh_h).status_code == 200
    refused = khh.put(f"/api/v1/subsidy_scheme/{central_id}", json={"name": "改名"}, headers=khh_h)
    assert refused.status_code == 403 and "衛生福利部" in refused.json["message"]
    assert moh.put(f"/api/v1/subsidy_scheme/{local_id}", json={"name": "改名"}, headers=moh_h).status_code == 403
    assert tpe.post("/api/v1/subsidy_scheme/", json=_api_scheme(code="C-BAD", cap_adult=-1), headers=tpe_h).status_code == 422
    changed = tpe.put(f"/api/v1/subsidy_scheme/{local_id}", json={"name": "臺北市 API 方案", "cap_minor": 45000},
                      headers=tpe_h)  # fmt: skip
    assert changed.status_code == 200, changed.text
    db.session.expire_all()
    assert _scheme(db, "C-API").name == "API 方案" and _scheme(db, "C-BAD") is None
    assert (_scheme(db, "L-TPE-API").name, _scheme(db, "L-TPE-API").cap_minor) == ("臺北市 API 方案", 45000)
    # An item for another county's scheme: answered like a scheme that does not exist.
    hidden = khh.post("/api/v1/scheme_item/", json={**API_ITEM, "scheme": local_id}, headers=khh_h)
    missing = khh.post("/api/v1/scheme_item/", json={**API_ITEM, "scheme": local_id + 10_000}, headers=khh_h)
    assert hidden.status_code == missing.status_code == 422 and hidden.json == missing.json
    assert tpe.post("/api/v1/scheme_item/", json={**API_ITEM, "scheme": central_id}, headers=tpe_h).status_code == 403
    assert not _scheme(db, "L-TPE-API").items and not _scheme(db, "C-API").items


def test_a9_through_the_api_a_published_version_is_frozen_and_a_new_version_is_a_draft(app, db, api_as, users):
    moh, headers = api_as("scheme_moh")
    scheme_id = moh.post("/api/v1/subsidy_scheme/", json=_api_scheme(code="C-APIV"), headers=headers).json["id"]
    assert moh.post(f"/api/v1/subsidy_scheme/{scheme_id}/publish", headers=headers).status_code == 422  # no item
    item = moh.post("/api/v1/scheme_item/", json={**API_ITEM, "scheme": scheme_id}, headers=headers)
    assert item.status_code == 201, item.text
    assert moh.post(f"/api/v1/subsidy_scheme/{scheme_id}/publish", headers=headers).status_code == 200
    frozen = moh.put(f"/api/v1/subsidy_scheme/{scheme_id}", json={"cap_adult": 1}, headers=headers)
    assert frozen.status_code == 422 and "凍結" in frozen.json["message"]
    assert moh.put(f"/api/v1/scheme_item/{item.json['id']}", json={"unit_amount": 1}, headers=headers).status_code == 422
    assert moh.post("/api/v1/scheme_item/", json={**API_ITEM, "code": "NEW", "scheme": scheme_id},
                    headers=headers).status_code == 422  # fmt: skip
    bad = moh.post(f"/api/v1/subsidy_scheme/{scheme_id}/new_version", json={"effective_from": f"{YEAR - 1911}/02/30"},
                   headers=headers)  # fmt: skip
    assert bad.status_code == 422 and "生效日期" in bad.json["message"]
    new = moh.post(f"/api/v1/subsidy_scheme/{scheme_id}/new_version", json={"effective_from": f"{YEAR - 1911}/07/01"},
                   headers=headers)  # fmt: skip
    assert new.status_code == 201, new.text
    assert (new.json["result"]["version"], new.json["result"]["status"]) == (2, "draft")
    assert _scheme(db, "C-APIV").cap_adult == 40000


def test_a9_an_item_of_a_draft_version_is_deleted_a_published_ones_is_refused(app, db, login_as, api_as, users):
    """Screen and API: the owner deletes an item of a draft version; a published version's
    items stay (frozen), and another county's bureau finds no such item (404)."""
    _add(app, login_as, "scheme_tpe", code="L-DEL")
    scheme = _scheme(db, "L-DEL")
    _item(app, login_as, "scheme_tpe", scheme.id, code="PSY")
    _item(app, login_as, "scheme_tpe", scheme.id, code="OPD", name="門診")
    _item(app, login_as, "scheme_tpe", scheme.id, code="GRP", name="團體")
    ids = {i.code: i.id for i in _scheme(db, "L-DEL").items}
    client = login_as("scheme_tpe")
    page = client.get(f"/subsidyscheme/show/{scheme.id}")
    assert "delete-item-form" in page.text
    response = client.post(f"/schemeitem/delete/{ids['OPD']}", data={"csrf_token": csrf_token(app, client)})
    assert response.status_code == 302 and f"/subsidyscheme/show/{scheme.id}" in response.location
    khh, khh_h = api_as("scheme_khh")
    assert khh.delete(f"/api/v1/scheme_item/{ids['GRP']}", headers=khh_h).status_code == 404
    other = login_as("scheme_khh")
    assert other.post(f"/schemeitem/delete/{ids['GRP']}", data={"csrf_token": csrf_token(app, other)}).status_code == 404
    tpe, tpe_h = api_as("scheme_tpe")
    assert tpe.delete(f"/api/v1/scheme_item/{ids['GRP']}", headers=tpe_h).status_code == 200
    assert [i.code for i in _scheme(db, "L-DEL").items] == ["PSY"]
    client.post(f"/subsidyscheme/publish/{scheme.id}", data={"csrf_token": csrf_token(app, client)})
    assert _scheme(db, "L-DEL").published
    assert "delete-item-form" not in client.get(f"/subsidyscheme/show/{scheme.id}").text
    refused = tpe.delete(f"/api/v1/scheme_item/{ids['PSY']}", headers=tpe_h)
    assert refused.status_code == 422 and "凍結" in refused.json["message"]
    response = client.post(f"/schemeitem/delete/{ids['PSY']}", data={"csrf_token": csrf_token(app, client)},
                           follow_redirects=True)  # fmt: skip
    assert "凍結" in response.text
    assert [i.code for i in _scheme(db, "L-DEL").items] == ["PSY"]


def _spending_rows(html: str) -> dict:
    import re

    rows = {}
    for code, body in re.findall(r'<tr class="[^"]*" data-scheme="([^"]+)">(.*?)</tr>', html, re.S):
        rows[code] = [re.sub(r"<[^>]+>", "", cell).strip() for cell in re.findall(r"<td[^>]*>(.*?)</td>", body, re.S)]
    return rows


def test_a10_the_bureaus_spending_page_shows_each_budget_at_the_level_it_is_held(app, db, login_as):
    """補助經費執行情形 for a bureau: a central scheme's budget is national (the model keeps
    no county share), so it is labelled 全國預算 and set against national spending, with the
    county's institutions' spending beside it; a local scheme's budget is the county's."""
    from flask_babel import gettext

    from core import clock
    from views.addiction.schemes import spending_cached

    tpe = db.session.query(County).filter_by(code="TPE").one()
    page = login_as("bureau_tpe").get("/schemespending/?year=2025")
    assert page.status_code == 200 and 'id="budget-note"' in page.text
    rows = _spending_rows(page.text)
    with app.test_request_context():
        national_label, county_label = gettext("National budget"), gettext("%(county)s budget", county=tpe.name)
        national = {r.code: r for r in spending_cached(2025, None, clock.today())["rows"]}
        county = {r.code: r for r in spending_cached(2025, tpe.id, clock.today())["rows"]}
    central = [code for code, r in county.items() if r.county_id is None]
    local = [code for code, r in county.items() if r.county_id == tpe.id]
    assert central and local
    for code in central:
        cells = rows[code]
        assert cells[2] == national_label
        assert cells[3] == f"{national[code].budget:,}" and cells[4] == f"{national[code].spent:,}"
        assert cells[5] == f"{national[code].remaining:,}"
        assert cells[7] == f"{county[code].spent:,}"  # this county's institutions
    for code in local:
        cells = rows[code]
        assert cells[2] == county_label
        assert (cells[3], cells[4], cells[7]) == (f"{county[code].budget:,}", f"{county[code].spent:,}",
                                                  f"{county[code].spent:,}")  # fmt: skip
    # The Ministry's page: every budget at its level, no county column.
    ministry = _spending_rows(login_as("ministry").get("/schemespending/?year=2025").text)
    assert all(ministry[code][2] == national_label for code in central)
    assert all(len(cells) == 9 for cells in ministry.values())


@pytest.mark.parametrize("field,value", [("kinds", 5), ("kinds", {"a": 1}), ("unit_amount", [1]), ("code", None),
                                         ("professions", ["astronaut"])])  # fmt: skip
def test_a9_a_hostile_item_body_is_a_422_and_stores_nothing_never_a_500(app, db, api_as, users, field, value):
    moh, headers = api_as("scheme_moh")
    code = f"C-H{abs(hash((field, str(value)))) % 10_000}"
    scheme_id = moh.post("/api/v1/subsidy_scheme/", json=_api_scheme(code=code), headers=headers).json["id"]
    response = moh.post("/api/v1/scheme_item/", json={**API_ITEM, "scheme": scheme_id, field: value}, headers=headers)
    assert response.status_code == 422, response.text
    assert not _scheme(db, code).items
