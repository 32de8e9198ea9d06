"""Excel export: the list's scope, filters and order; zh_TW headers; ROC dates; no formulas."""

from __future__ import annotations

import io

from openpyxl import load_workbook

from core.export.xlsx import neutralise
from models.registry.institution import ContractPeriod, Institution
from models.registry.reference import InstitutionLevel
from tests.scope_oracle import expected_split, user_view


def _sheet(response):
    assert response.status_code == 200, response.status_code
    assert response.mimetype.endswith("spreadsheetml.sheet")
    sheet = load_workbook(io.BytesIO(response.data), read_only=True).active
    return [list(r) for r in sheet.iter_rows(values_only=True)]


def _rows(response):
    """The header row and the data rows (below the title row)."""
    return _sheet(response)[1:]


def test_export_title_row_names_the_list_and_its_filter_as_a_person_reads_it(db, login_as):
    level = db.session.query(InstitutionLevel).filter_by(code="clinic").one()
    response = login_as("office").get(f"/institutionview/export/xlsx?_flt_0_level={level.id}")
    title = _sheet(response)[0]
    assert title[0] == "特約機構（層級：西醫診所）"
    assert _sheet(login_as("office").get("/institutionview/export/xlsx"))[0][0] == "特約機構"


def test_export_title_reads_a_date_range_as_a_month_or_days(login_as):
    """FAB's strict 大於/小於 pair on a date reads as the days it keeps: a whole month as
    就診日期 115/11, other spans as 115/11/03 至 115/11/20."""
    client = login_as("office")
    month = client.get("/visitview/export/xlsx?_flt_1_visit_date=115/10/31&_flt_2_visit_date=115/12/01")
    assert _sheet(month)[0][0] == "戒菸者就醫資料（就診日期 115/11）"
    days = client.get("/visitview/export/xlsx?_flt_1_visit_date=115/11/02&_flt_2_visit_date=115/11/21")
    assert _sheet(days)[0][0] == "戒菸者就醫資料（就診日期 115/11/03 至 115/11/20）"
    hostile = client.get("/visitview/export/xlsx", query_string={"_flt_1_visit_date": "=1+1１２"})
    assert hostile.status_code in (200, 400)
    if hostile.status_code == 200:
        assert not str(_sheet(hostile)[0][0]).startswith("=")


def test_export_follows_the_active_filter_and_the_scope(db, login_as):
    client = login_as("bureau_tpe")
    user = user_view(db, "bureau_tpe")
    visible, _ = expected_split(db, Institution, user)
    level = db.session.query(InstitutionLevel).filter_by(code="clinic").one()
    expected = {
        i.nhi_code
        for i in db.session.query(Institution).filter(Institution.id.in_(visible))
        if i.level_id == level.id
    }
    rows = _rows(client.get(f"/institutionview/export/xlsx?_flt_0_level={level.id}"))
    header, body = rows[0], rows[1:]
    assert header[:2] == ["健保醫事機構代碼", "機構名稱"]
    assert {r[0] for r in body} == expected
    assert all(r[2] == "西醫診所" for r in body)


def test_export_never_has_more_rows_than_the_list(db, login_as):
    client = login_as("facility_khh")
    rows = _rows(client.get("/institutionview/export/xlsx"))
    assert len(rows) - 1 == len(user_view(db, "facility_khh").institution_ids)


def test_export_dates_are_in_roc_form(db, login_as):
    client = login_as("office")
    rows = _rows(client.get("/contractperiodview/export/xlsx"))
    first = db.session.query(ContractPeriod).order_by(ContractPeriod.id).first()
    roc = f"{first.start_date.year - 1911}/{first.start_date:%m/%d}"
    assert any(r[0] == first.institution.nhi_code and r[2] == roc for r in rows[1:])


def test_export_neutralises_formula_injection(app, db, login_as):
    institution = db.session.query(Institution).order_by(Institution.id).first()
    original = institution.name
    institution.name = '=HYPERLINK("http://evil.invalid","點我")'
    db.session.commit()
    try:
        rows = _rows(login_as("admin").get("/institutionview/export/xlsx"))
        cell = next(r[1] for r in rows if r[0] == institution.nhi_code)
        assert cell.startswith("'=")
    finally:
        institution.name = original
        db.session.commit()


def test_neutralise_covers_every_formula_prefix():
    for text in ("=1+1", "+1", "-1", "@SUM(A1)", "\t=1", "\r=1"):
        assert neutralise(text).startswith("'")
    assert neutralise("醫學中心") == "醫學中心"


def test_personal_ids_are_masked_in_exports_for_roles_without_the_permission(db, login_as):
    bureau_rows = _rows(login_as("bureau_tpe").get("/practitionerview/export/xlsx"))
    unmasked = [r for r in bureau_rows[1:] if "****" not in str(r[1])]
    assert bureau_rows[1:] and not unmasked, unmasked
    facility_rows = _rows(login_as("facility_tpe").get("/practitionerview/export/xlsx"))
    assert facility_rows[1:] and all("****" not in r[1] for r in facility_rows[1:])


def test_institution_text_filter_on_lists_and_exports(db, login_as):
    """Large foreign keys are searched by text (code prefix or name), in the list and export."""
    from models.registry.practitioner import ServiceAssignment

    client = login_as("office")
    institution = db.session.query(Institution).order_by(Institution.id).first()
    expected = db.session.query(ServiceAssignment).filter_by(institution_id=institution.id).count()
    html = client.get(
        f"/serviceassignmentview/list/?_flt_0_institution={institution.nhi_code}"
        "&psize_ServiceAssignmentView=500"
    ).text
    assert html.count("/serviceassignmentview/show/") == expected
    rows = _rows(
        client.get(f"/serviceassignmentview/export/xlsx?_flt_0_institution={institution.nhi_code}")
    )
    assert len(rows) - 1 == expected and {r[1] for r in rows[1:]} == {institution.nhi_code}


def test_visit_exports_mask_quitter_ids_for_roles_without_the_permission(db, login_as):
    header, *rows = _rows(login_as("bureau_tpe").get("/visitview/export/xlsx"))
    column = header.index("戒菸者身分證字號")
    assert rows and all("****" in str(r[column]) for r in rows)
    header, *rows = _rows(login_as("facility_tpe").get("/visitview/export/xlsx"))
    assert rows and all("****" not in str(r[column]) for r in rows)


def test_institution_text_filter_matching_many_institutions(db, login_as, monkeypatch):
    """A name fragment matching more institutions than are inlined as ids still finds all of
    their rows (the filter falls back to a sub-select), and one matching none finds nothing."""
    from core.data import filters
    from models.registry.practitioner import ServiceAssignment

    monkeypatch.setattr(filters, "INLINE_IDS", 3)

    fragment = "醫院"
    matching = [
        i.id for i in db.session.query(Institution).filter(Institution.name.contains(fragment))
    ]
    assert len(matching) > filters.INLINE_IDS
    expected = (
        db.session.query(ServiceAssignment)
        .filter(ServiceAssignment.institution_id.in_(matching))
        .count()
    )
    client = login_as("office")
    rows = _rows(client.get(f"/serviceassignmentview/export/xlsx?_flt_0_institution={fragment}"))
    assert len(rows) - 1 == expected
    rows = _rows(client.get("/serviceassignmentview/export/xlsx?_flt_0_institution=不存在的機構"))
    assert len(rows) == 1
