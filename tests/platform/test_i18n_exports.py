"""zh_TW in what leaves the screen and in the audit log: export headers, titles and file
names, and the audit trail's model and field names (issue 15, item 4).

Self-discovering: every registered view that can export, every audited model and column;
a new view or column without a zh_TW name fails here.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import re
from urllib.parse import unquote

import pytest
from openpyxl import load_workbook

from core import clock
from core.data.labels import column_label, mapped_models, model_label, prettified
from core.dates import TAIPEI
from core.web.views import ScopedModelView
from models.platform.audit import AuditLog
from tests.conftest import visible_text

#: Acronyms a zh_TW header may keep (來源 IP, 證明文件檢查碼（SHA-256）).
ACRONYMS = {"IP", "SHA", "NHI", "ID", "PDF"}
#: Users tried in turn until one may export a view (a view only some roles export still gets
#: checked); together they reach every exporting view, or the test says which they miss.
EXPORTERS = ("admin", "office", "ministry", "bureau_tpe", "facility_tpe", "dr_tpe")


def english_words(text: str) -> list[str]:
    """Latin words of a header or label that are not acronyms ("Institution Nhi Code")."""
    return [w for w in re.findall(r"[A-Za-z]{2,}", str(text)) if w not in ACRONYMS]


def _exporting_views(app):
    return [v for v in app.appbuilder.baseviews
            if isinstance(v, ScopedModelView) and "can_export" in v.base_permissions]  # fmt: skip


def _file_name(response) -> str:
    """The file name as a browser reads it: RFC 5987 filename* first."""
    header = response.headers["Content-Disposition"]
    star = re.search(r"filename\*=UTF-8''([^;]+)", header)
    assert star, f"no RFC 5987 filename* in {header!r}"
    return unquote(star.group(1))


def test_the_checker_catches_english_headers():
    assert english_words("Institution Nhi Code") == ["Institution", "Nhi", "Code"]
    assert english_words("來源 IP") == [] and english_words("健保醫事機構代碼") == []


def test_every_export_header_is_zh_tw_for_every_exporting_view(app):
    """Each export column's header, asked of the view itself (rows or not): no FAB-made
    English, no raw column name, no English word."""
    found = {}
    with app.test_request_context("/", headers={"Accept-Language": "zh-TW"}):
        for view in _exporting_views(app):
            for col in view.export_column_names():
                header = view.export_header(col)
                if header in (col, prettified(col)) or english_words(header):
                    found.setdefault(type(view).__name__, []).append((col, header))
    assert found == {}


def test_exports_have_a_title_row_zh_tw_headers_and_a_roc_taipei_file_name(app, login_as):
    """Every exporting view, exported by a role that may: title row = list title, header
    row in zh_TW, file name <list title>-<ROC date>-<Taipei HHMM>.xlsx (not Gregorian, not UTC)."""
    moment = dt.datetime(2026, 12, 1, 9, 7, tzinfo=dt.UTC)  # 17:07 in Taipei, 115/12/01
    clients = {name: login_as(name) for name in EXPORTERS}
    problems, exported = {}, set()
    with clock.frozen(moment.astimezone(TAIPEI)):
        for view in _exporting_views(app):
            for client in clients.values():
                response = client.get(f"{view.route_base}/export/xlsx")
                if response.status_code == 200:
                    break
            else:
                continue
            exported.add(type(view).__name__)
            rows = list(load_workbook(io.BytesIO(response.data), read_only=True).active
                        .iter_rows(values_only=True, max_row=2))  # fmt: skip
            title, header = rows[0], rows[1]
            with app.test_request_context("/", headers={"Accept-Language": "zh-TW"}):
                list_title = view.export_title()
            name = _file_name(response)
            wrong = []
            if title[0] != list_title:
                wrong.append(("title", title[0]))
            wrong += [("header", h) for h in header if h is None or english_words(h)]
            if name != f"{list_title}-1151201-1707.xlsx":
                wrong.append(("file name", name))
            if re.search(r"20\d{6}|0907", name):
                wrong.append(("Gregorian or UTC stamp", name))
            if wrong:
                problems[type(view).__name__] = wrong
    assert problems == {}
    missed = {type(v).__name__ for v in _exporting_views(app)} - exported
    assert missed == set(), f"no demo user could export {missed}: add one to EXPORTERS"


def test_export_file_name_is_safe_for_hostile_titles():
    """A title with path, quote or header characters cannot break out of the file name."""
    from core.export.xlsx import export_file_name

    name = export_file_name('../a"b;\r\nc:*?<>|', dt.datetime(2026, 12, 1, 9, 7, tzinfo=dt.UTC))
    assert name == "a_b_c-1151201-1707.xlsx"
    assert not re.search(r'[\\/:*?"<>|;\r\n]', name)


def test_every_audited_model_and_column_has_a_zh_tw_name(app):
    """The audit log names models and fields from core/data/labels.py: every audited model
    and every column it can record has a zh_TW name there (not its class or column name)."""
    found = []
    with app.test_request_context("/", headers={"Accept-Language": "zh-TW"}):
        for name, model in sorted(mapped_models().items()):
            if not getattr(model, "__audited__", False):
                continue
            label = model_label(name)
            if label == name or english_words(label):
                found.append((name, label))
            for column in model.__table__.columns:
                text = column_label(model, column.key)
                if text in (column.key, prettified(column.key)) or english_words(text):
                    found.append((f"{name}.{column.key}", text))
    assert found == []


def _latest(db, **filters):
    db.session.expire_all()
    return db.session.query(AuditLog).filter_by(**filters).order_by(AuditLog.id.desc()).first()


def test_audit_log_list_names_models_in_zh_tw_with_roc_taipei_times(app, db, login_as):
    entry = db.session.query(AuditLog).order_by(AuditLog.id.desc()).first()
    text = visible_text(login_as("admin").get("/auditlogview/list/").text)
    assert model_label(entry.model) in text
    english = {n for n, m in mapped_models().items() if getattr(m, "__audited__", False)}
    assert not [n for n in english if re.search(rf"\b{n}\b", text)]
    assert re.search(r"\b1\d\d/\d\d/\d\d \d\d:\d\d\b", text), "no ROC date-time in the list"
    assert not re.search(r"\b20\d\d-\d\d-\d\d", text), "an ISO (Gregorian) date in the list"


def test_audit_show_page_is_a_table_of_changed_fields_with_related_rows_by_name(
    app, db, login_as
):
    """An edited institution's entry shows 電話 before and after; a visit's entry names its
    institution and practitioner, shows the visit date in ROC, and no column names or JSON."""
    from models.cessation.visit import Visit
    from models.registry.institution import Institution
    from tests.conftest import institution_form, post_form
    from tests.scope_oracle import user_view

    client = login_as("bureau_tpe")
    # Not the institution test_audit edits: each test sees its own change.
    institution = db.session.get(Institution, sorted(user_view(db, "bureau_tpe").institution_ids)[1])
    old_phone = institution.phone
    response = post_form(app, client, f"/institutionview/edit/{institution.id}",
                         institution_form(institution, phone="(02)2351-0999"))  # fmt: skip
    assert response.status_code == 302
    entry = _latest(db, model="Institution", row_key=str(institution.id), action="update")
    assert entry.institution_id == institution.id
    admin = login_as("admin")
    text = visible_text(admin.get(f"/auditlogview/show/{entry.id}").text)
    assert "電話" in text and "(02)2351-0999" in text and (old_phone or "") in text
    assert "phone" not in text and "changed_on" not in text and "{" not in text

    visit = db.session.query(Visit).order_by(Visit.id).first()
    entry = _latest(db, model="Visit", row_key=str(visit.id))
    if entry is None:  # demo visits may be written without the session hook
        visit.education_minutes = (visit.education_minutes or 10) + 1
        db.session.commit()
        entry = _latest(db, model="Visit", row_key=str(visit.id))
    page = visible_text(admin.get(f"/auditlogview/show/{entry.id}").text)
    assert "就醫資料" in page
    assert not re.search(r"\b(institution_id|practitioner_id|quitter_id|visit_date)\b", page)
    if entry.action == "insert":
        assert visit.institution.name in page and visit.practitioner.name in page
        assert f"{visit.visit_date.year - 1911}/{visit.visit_date:%m/%d}" in page


def test_audit_log_filters_by_model_institution_and_person(app, db, login_as):
    """The search form offers models by zh_TW name and institutions by name; each filter
    narrows the list."""
    from models.registry.institution import Institution

    admin = login_as("admin")
    form = admin.get("/auditlogview/list/").text
    # The search fields come as JSON (FAB's search widget): <option value="Institution">特約機構.
    option = 'value=\\"%s\\"\\u003e%s\\u003c'
    assert option % ("Institution", json.dumps("特約機構")[1:-1]) in form
    assert option % ("Visit", json.dumps("就醫資料")[1:-1]) in form
    assert option % ("Visit", "Visit") not in form
    entry = db.session.query(AuditLog).filter(AuditLog.institution_id.isnot(None)).first()
    assert entry is not None
    institution = db.session.get(Institution, entry.institution_id)
    expected = db.session.query(AuditLog).filter_by(institution_id=institution.id).count()
    page = admin.get(f"/auditlogview/list/?_flt_0_institution={institution.id}"
                     "&psize_AuditLogView=100").text  # fmt: skip
    assert page.count("/auditlogview/show/") == min(expected, 100)
    entry = db.session.query(AuditLog).filter(AuditLog.username.isnot(None)).first()
    page = admin.get(f"/auditlogview/list/?_flt_3_username={entry.username}&_flt_3_model={entry.model}"
                     "&psize_AuditLogView=100").text  # fmt: skip
    expected = db.session.query(AuditLog).filter_by(username=entry.username, model=entry.model).count()
    assert page.count("/auditlogview/show/") == min(expected, 100)


@pytest.mark.parametrize("value", ["%", "=1+1", "１２３", "x" * 5000, "' OR 1=1 --"])
def test_audit_log_filters_take_hostile_input_without_an_error(login_as, value):
    """Unicode digits, %, formulas, huge input in any audit filter: a page, never a 500."""
    admin = login_as("admin")
    for column in ("model", "institution", "username", "action"):
        response = admin.get("/auditlogview/list/", query_string={f"_flt_0_{column}": value})
        assert response.status_code in (200, 400), (column, response.status_code)


def _reference_codes(db):
    """The stored codes of levels and counties (medical_center, TPE): keys, never shown."""
    from models.registry.reference import County, InstitutionLevel

    codes = [c for (c,) in db.session.query(InstitutionLevel.code)]
    codes += [c for (c,) in db.session.query(County.code)]
    return re.compile(r"(?<![A-Za-z_])(" + "|".join(map(re.escape, codes)) + r")(?![A-Za-z_])")


def test_exports_name_levels_and_counties_never_their_codes(app, db, login_as):
    """Every exporting view's export (first 300 rows), by a role that may export it: a level
    reads 醫學中心, a county 臺北市, never medical_center or TPE."""
    codes = _reference_codes(db)
    clients = {name: login_as(name) for name in EXPORTERS}
    found = {}
    for view in _exporting_views(app):
        for client in clients.values():
            response = client.get(f"{view.route_base}/export/xlsx")
            if response.status_code == 200:
                break
        else:
            continue
        _collect_codes(found, type(view).__name__, response, codes)
    # The yearly statistics (per level, per county) are an export of their own.
    for url in ("/cessationstats/export?year=113", "/cessationstats/export?year=113&county=TPE"):
        response = clients["office"].get(url)
        assert response.status_code == 200, url
        _collect_codes(found, url, response, codes)
    assert found == {}


def _collect_codes(found: dict, name: str, response, codes) -> None:
    """Add to `found[name]` every level or county code in the export's cells (first 300 rows)."""
    for sheet in load_workbook(io.BytesIO(response.data), read_only=True).worksheets:
        for row in sheet.iter_rows(values_only=True, max_row=300):
            hits = {m for cell in row if isinstance(cell, str) for m in codes.findall(cell)}
            if hits:
                found.setdefault(name, set()).update(hits)


def test_the_code_checker_catches_a_level_or_county_code(db):
    """The pattern the export test uses matches a code standing alone, not inside a word."""
    codes = _reference_codes(db)
    assert codes.findall("層級 medical_center") == ["medical_center"]
    assert codes.findall("TPE") == ["TPE"] and codes.findall("TPEX 臺北市") == []


@pytest.mark.parametrize("user", ["admin", "facility_tpe", "bureau_tpe"])
def test_level_and_county_screens_show_names_not_codes(app, db, login_as, user):
    """Lists, show pages and search dropdowns of institutions, levels and counties name them
    (醫學中心, 臺北市); the code lives only in the admin's add and edit forms."""
    from models.registry.reference import County, InstitutionLevel

    codes = _reference_codes(db)
    client = login_as(user)
    level = db.session.query(InstitutionLevel).order_by(InstitutionLevel.id).first()
    county = db.session.query(County).order_by(County.id).first()
    pages = ["/institutionview/list/", "/institutionlevelview/list/", "/countyview/list/",
             f"/institutionlevelview/show/{level.id}", f"/countyview/show/{county.id}",
             f"/institutionview/list/?_flt_0_level={level.id}"]  # fmt: skip
    for url in pages:
        response = client.get(url)
        assert response.status_code == 200, url
        text = visible_text(response.text)
        assert codes.findall(text) == [], url
        # The search form's dropdowns travel as JSON inside a script (\u003e name \u003c).
        assert not re.search(r"\\u003e(" + codes.pattern + r")\\u003c", response.text), url
    assert level.name in visible_text(client.get("/institutionlevelview/list/").text)
