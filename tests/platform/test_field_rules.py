"""issue 12 class 6: one set of field rules per model, run by every path that writes.

The REST API, the batch upload, the HTML forms and any ORM write (a CLI command, a seeder,
a job) refuse the same values with the same zh_TW message and store the same normalised
value; CHECK constraints back every enum and range; and a stored value that no rule would
accept renders as （無效值：X） on lists, show pages and exports instead of a 500."""

from __future__ import annotations

import datetime as dt
import io

import pytest
from openpyxl import load_workbook
from sqlalchemy import inspect, text
from sqlalchemy.exc import IntegrityError

from core import clock
from core.data import rules
from core.dates import TAIPEI
from models.base import LabelledEnum
from models.cessation.visit import Quitter, Sex, Visit
from models.registry.institution import ContractPeriod, Institution
from models.registry.practitioner import Practitioner, Profession, ServiceAssignment
from tests.cessation.test_batch_upload import _rows, _template, _upload, _xlsx
from tests.conftest import post_form, visible_text
from tests.factories import _form, _new_id, _setup
from tests.scope_oracle import user_view

ID_MESSAGE = "身分證字號或居留證號"
RULED = [Quitter, Practitioner, Visit, Institution, ContractPeriod, ServiceAssignment]


def _count(db, model, **where) -> int:
    db.session.expire_all()
    query = db.session.query(model)
    for column, value in where.items():
        query = query.filter(getattr(model, column) == value)
    return query.count()


def _messages(response) -> str:
    return str(response.json.get("message"))


# ----------------------------------------------------------------------------- REST API
@pytest.mark.parametrize(
    "body, field, expected",
    [
        ({"national_id": "A123456788"}, "national_id", ID_MESSAGE),  # bad check digit
        ({"sex": "X"}, "sex", "性別必須為下列之一"),
        ({"birth_date": "2999-01-01"}, "birth_date", "出生日期必須為"),
        ({"birth_date": "1011-01-01"}, "birth_date", "出生日期必須為"),
        ({"name": "王\n小明"}, "name", "不可包含換行"),
        ({"name": "   "}, "name", "請填寫"),
        ({"name": "王" * 51}, "name", "最多 50 個字"),
    ],
)
def test_the_quitter_api_refuses_what_the_form_refuses(db, api_as, body, field, expected):
    """issue 12 class 6: the API ran no field rule; a bad value is a 422, nothing written."""
    client, headers = api_as("facility_tpe")
    national_id = _new_id("K")
    data = {"national_id": national_id, "name": "林志明", "sex": "M", "birth_date": "1980-02-03", **body}
    before = _count(db, Quitter)
    response = client.post("/api/v1/quitter/", headers=headers, json=data)
    assert response.status_code == 422, response.text
    assert field in response.json["message"] and expected in _messages(response), response.text
    assert _count(db, Quitter) == before


def test_a_national_id_in_lower_case_is_stored_upper_case_and_finds_the_person(db, api_as):
    """issue 12 class 6: a lower-case ID made a second row for the same person."""
    client, headers = api_as("facility_tpe")
    national_id = _new_id("K")
    body = {"name": "陳怡君", "sex": "F", "birth_date": "1975-06-07"}
    first = client.post("/api/v1/quitter/", headers=headers, json={"national_id": "  " + national_id.lower(), **body})
    assert first.status_code == 201, first.text
    again = client.post("/api/v1/quitter/", headers=headers, json={"national_id": national_id.lower(), **body})
    assert again.status_code != 500
    db.session.expire_all()
    stored = db.session.query(Quitter.national_id).filter(Quitter.national_id.ilike(national_id)).all()
    assert stored == [(national_id,)]
    db.session.query(Quitter).filter(Quitter.national_id == national_id).delete()
    db.session.commit()


@pytest.mark.parametrize(
    "body, field, expected",
    [
        ({"national_id": "b223456780"}, "national_id", ID_MESSAGE),
        ({"profession": "wizard"}, "profession", "必須為下列之一：physician（醫師）"),
        ({"licence_number": "L" * 31}, "licence_number", "最多 30 個字"),
    ],
)
def test_the_practitioner_api_refuses_bad_fields(db, api_as, body, field, expected):
    """issue 12 class 6: an arbitrary profession string was stored."""
    client, headers = api_as("admin")
    data = {"national_id": _new_id("K"), "name": "張家豪", "profession": "physician", **body}
    before = _count(db, Practitioner)
    response = client.post("/api/v1/practitioner/", headers=headers, json=data)
    assert response.status_code == 422, response.text
    assert field in response.json["message"] and expected in _messages(response), response.text
    assert _count(db, Practitioner) == before


def _visible_quitter(db, institution_id) -> int:
    return db.session.query(Visit.quitter_id).filter(Visit.institution_id == institution_id).first()[0]


@pytest.mark.parametrize(
    "body, field",
    [
        ({"medication_days": 100_000}, "medication_days"),
        ({"medication_days": 10**30}, "medication_days"),  # numeric overflow on write
        ({"medication_days": 0}, "medication_days"),
        ({"education_minutes": 601}, "education_minutes"),
        ({"medication_name": "藥" * 51}, "medication_name"),
    ],
)
def test_the_visit_api_refuses_out_of_range_numbers(db, api_as, body, field):
    """issue 12 class 6: 100,000 medication days were stored; 10**30 was a 500."""
    institution_id, practitioner_id = _setup(db, "facility_tpe")
    client, headers = api_as("facility_tpe")
    data = {
        "institution": institution_id, "practitioner": practitioner_id,
        "quitter": _visible_quitter(db, institution_id), "visit_date": "2025-04-01",
        "medication_name": "Varenicline", "medication_days": 14, **body,
    }  # fmt: skip
    before = _count(db, Visit)
    with clock.frozen(dt.datetime(2025, 4, 2, 9, 0, tzinfo=TAIPEI)):
        response = client.post("/api/v1/visit/", headers=headers, json=data)
    assert response.status_code == 422, response.text
    assert field in response.json["message"], response.text
    assert "必須為" in _messages(response) or "最多" in _messages(response)
    assert _count(db, Visit) == before


def test_the_institution_api_checks_lengths_on_post_and_put(db, api_as):
    """issue 12 class 6: lengths beyond the column were a DataError (500) on PostgreSQL."""
    client, headers = api_as("admin")
    institution = db.session.query(Institution).first()
    original = institution.phone
    response = client.put(f"/api/v1/institution/{institution.id}", headers=headers, json={"phone": "0" * 31})
    assert response.status_code == 422 and "phone" in response.json["message"], response.text
    response = client.post(
        "/api/v1/institution/", headers=headers,
        json={"nhi_code": "0401189999", "name": "院" * 101, "level": institution.level_id,
              "county": institution.county_id},
    )  # fmt: skip
    assert response.status_code == 422 and "name" in response.json["message"], response.text
    assert _count(db, Institution, nhi_code="0401189999") == 0
    assert _count(db, Institution, id=institution.id, phone=original) == 1


def test_a_contract_ending_before_it_starts_is_a_422_with_the_message(db, api_as):
    """issue 12 class 6: the API answered the database's refusal, naming an exception."""
    client, headers = api_as("admin")
    institution_id = db.session.query(Institution.id).first()[0]
    before = _count(db, ContractPeriod)
    for body in (
        {"start_date": "2025-05-01", "end_date": "2025-04-01"},
        {"start_date": "0001-01-01", "end_date": None},
    ):
        response = client.post(
            "/api/v1/contract_period/", headers=headers, json={"institution": institution_id, **body}
        )
        assert response.status_code == 422, response.text
        assert "日期" in _messages(response), response.text
    assert _count(db, ContractPeriod) == before


# ------------------------------------------------------------------------- HTML forms
def test_the_visit_form_refuses_a_future_birth_date_and_keeps_the_input(app, db, login_as):
    """issue 12 class 6: the form's quitter fields run the Quitter rules."""
    institution_id, practitioner_id = _setup(db, "facility_tpe")
    national_id = _new_id("K")
    data = _form(institution_id, practitioner_id, national_id, "114/04/01", quitter_birth_date="200/01/01")
    with clock.frozen(dt.datetime(2025, 4, 2, 9, 0, tzinfo=TAIPEI)):
        response = post_form(app, login_as("facility_tpe"), "/visitview/add", data)
    assert response.status_code == 200
    text = visible_text(response.text)
    assert "出生日期必須為 1900 到" not in text  # ROC dates, not years
    assert "出生日期必須為 -11/01/01 到 114/04/02 之間的日期" in text, text[:400]
    assert 'value="200/01/01"' in response.text
    assert _count(db, Quitter, national_id=national_id) == 0


def test_the_quitter_edit_form_refuses_control_characters(app, db, login_as):
    """issue 12 class 6: names are stripped and hold no control characters on every path
    (the edit form is the office's: identity data are its to correct, class 4)."""
    quitter = db.session.get(Quitter, _visible_quitter(db, min(user_view(db, "facility_tpe").institution_ids)))
    form = {"national_id": quitter.national_id, "name": "王\u202e明", "sex": quitter.sex,
            "birth_date": quitter.birth_date.isoformat()}  # fmt: skip
    response = post_form(app, login_as("office"), f"/quitterview/edit/{quitter.id}", form)
    assert "不可包含換行" in visible_text(response.text)
    assert _count(db, Quitter, id=quitter.id, name=quitter.name) == 1


def test_the_contract_form_refuses_an_end_before_the_start(app, db, login_as):
    """issue 12 class 6: the record rule shows next to the end date, nothing is written."""
    user = user_view(db, "bureau_tpe")
    before = _count(db, ContractPeriod)
    response = post_form(
        app, login_as("bureau_tpe"), "/contractperiodview/add",
        {"institution": str(min(user.institution_ids)), "start_date": "114/05/01", "end_date": "114/04/01"},
    )  # fmt: skip
    assert "結束日期不可早於起始日期" in visible_text(response.text)
    assert _count(db, ContractPeriod) == before


# ------------------------------------------------------------------------ batch upload
def test_the_batch_upload_runs_the_field_rules_on_every_row(app, db, login_as):
    """issue 12 class 6: future birth years and 100,000 days were imported."""
    institution_id, practitioner_id = _setup(db, "facility_tpe")
    client = login_as("facility_tpe")
    ids = [_new_id("U") for _ in range(4)]
    rows = _rows(db, institution_id, practitioner_id, ids, ["114/04/01"] * 4)
    rows[0][5] = "200/01/01"  # born in 2111
    rows[1][8] = 100_000
    rows[2][4] = "X"
    rows[3][2] = ids[3][:-1] + str((int(ids[3][-1]) + 1) % 10)  # check digit
    with clock.frozen(dt.datetime(2025, 4, 10, 9, 0, tzinfo=TAIPEI)):
        response = _upload(app, client, _xlsx(_template(client), rows))
    text = visible_text(response.text)
    assert "全部未匯入" in text
    report = client.get(response.text.split('id="error-report" href="', 1)[1].split('"', 1)[0])
    marked = [list(r) for r in load_workbook(io.BytesIO(report.data)).worksheets[0].iter_rows(values_only=True)]
    assert marked[1][-1].startswith("出生日期：出生日期必須為"), marked[1][-1]
    assert "1 到 365 之間的整數" in marked[2][-1]
    assert "性別必須為下列之一" in marked[3][-1]
    assert ID_MESSAGE in marked[4][-1]
    assert _count(db, Quitter, national_id=ids[0]) == 0


def test_a_lower_case_id_in_the_batch_finds_the_existing_quitter(app, db, login_as):
    """issue 12 class 6: the row's ID is normalised like the form's (NFKC, upper case)."""
    institution_id, practitioner_id = _setup(db, "facility_tpe")
    client = login_as("facility_tpe")
    national_id = _new_id("U")
    rows = _rows(db, institution_id, practitioner_id, [national_id, national_id], ["114/04/01", "114/04/08"])
    rows[1][2] = "ｕ" + national_id[1:]  # full-width lower-case letter
    with clock.frozen(dt.datetime(2025, 4, 10, 9, 0, tzinfo=TAIPEI)):
        response = _upload(app, client, _xlsx(_template(client), rows))
    assert response.status_code == 302, visible_text(response.text)[:400]
    assert _count(db, Quitter, national_id=national_id) == 1
    db.session.expire_all()
    assert db.session.query(Visit).join(Quitter).filter(Quitter.national_id == national_id).count() == 2


# --------------------------------------------------------------- ORM net (CLI, seeders)
def test_every_orm_write_is_normalised_and_checked_at_flush(app, db):
    """issue 12 class 6: a CLI command or seeder that skips the forms still meets the rules."""
    national_id = _new_id("K")
    quitter = Quitter(national_id=national_id.lower(), name=" 歐陽規則測 ", sex="F", birth_date=dt.date(1970, 1, 1))
    db.session.add(quitter)
    db.session.flush()
    assert (quitter.national_id, quitter.name) == (national_id, "歐陽規則測")
    db.session.delete(quitter)
    db.session.commit()
    with app.test_request_context():
        for change in ({"sex": "X"}, {"birth_date": dt.date(1899, 12, 31)}, {"national_id": "A123456788"}):
            values = {"national_id": _new_id("K"), "name": "歐陽規則測", "sex": "F", "birth_date": dt.date(1970, 1, 1)}
            db.session.add(Quitter(**{**values, **change}))
            with pytest.raises(rules.RuleError) as refused:
                db.session.flush()
            assert refused.value.column == next(iter(change))
            db.session.rollback()
    assert _count(db, Quitter, name="歐陽規則測") == 0, db.session.query(Quitter.national_id, Quitter.sex, Quitter.birth_date).filter(Quitter.name == "歐陽規則測").all()


def test_the_seeded_demo_data_meets_every_rule(db):
    """issue 12 class 6: the constraints' migration runs over the demo data, so it must pass."""
    for model in RULED:
        columns = list(rules.field_rules(model))
        for row in db.session.query(*(getattr(model, c) for c in columns)).limit(2000):
            _normal, errors = rules.check_values(model, dict(zip(columns, row, strict=True)))
            assert not errors, (model.__name__, row, errors)


def test_the_check_rules_command_reports_rows_that_break_a_rule(app, db):
    """issue 12 class 6: `flask check-rules` finds rows written before the rules existed."""
    assert set(RULED) <= set(rules.ruled_models())
    runner = app.test_cli_runner()
    result = runner.invoke(args=["check-rules"])
    assert result.exit_code == 0 and "every row meets the field rules" in result.output, result.output
    quitter_id = db.session.query(Quitter.id).order_by(Quitter.id).first()[0]
    previous = _write_invalid_sex(db, quitter_id, "X")
    try:
        result = runner.invoke(args=["check-rules"])
    finally:
        _restore_sex(db, quitter_id, previous)
    assert result.exit_code == 1
    assert f"quitter {quitter_id} sex:" in result.output, result.output


# ----------------------------------------------------------------- database constraints
BAD_UPDATES = [
    ("quitter", "sex", "'X'"),
    ("quitter", "birth_date", "'1899-12-31'"),
    ("quitter", "national_id", "lower(national_id)"),
    ("quitter", "name", "''"),
    ("practitioner", "profession", "'wizard'"),
    ("visit", "medication_days", "100000"),
    ("visit", "education_minutes", "0"),
    ("institution", "nhi_code", "'123'"),
    ("contract_period", "start_date", "'0001-01-01'"),
    ("service_assignment", "end_date", "'2100-01-01'"),
]


@pytest.mark.parametrize("table, column, value", BAD_UPDATES)
def test_check_constraints_back_the_rules(db, table, column, value):
    """issue 12 class 6: raw SQL cannot store what the rules refuse."""
    with db.engine.connect() as conn:
        key = conn.execute(text(f"SELECT id FROM {table} ORDER BY id LIMIT 1")).scalar()
        with pytest.raises(IntegrityError):
            conn.execute(text(f"UPDATE {table} SET {column} = {value} WHERE id = :id"), {"id": key})
        conn.rollback()


def test_the_migrated_database_has_every_check_constraint_of_the_models(db):
    """issue 12 class 6: alembic's compare does not see CHECK constraints; this does."""
    inspector = inspect(db.engine)
    for model in RULED:
        table = model.__table__
        wanted = {c.name for c in table.constraints if c.__class__.__name__ == "CheckConstraint"}
        present = {c["name"] for c in inspector.get_check_constraints(table.name)}
        assert wanted and wanted <= present, (table.name, wanted - present)
        ruled = {f"ck_{table.name}_{c}" for c, r in rules.field_rules(model).items() if r.check_sql(c)}
        assert ruled <= wanted


# ------------------------------------------------------------- stored bad values render
def test_every_enum_label_of_an_unknown_value_renders_as_invalid(app):
    """issue 12 class 6: `Sex(v).label` in a formatter raised for every role seeing the row."""
    enums = set()
    stack = [LabelledEnum]
    while stack:
        for sub in stack.pop().__subclasses__():
            enums.add(sub)
            stack.append(sub)
    assert {Sex, Profession} <= enums
    with app.test_request_context():
        for enum_class in enums:
            assert enum_class.label_of("??") == "（無效值：??）"
            member = next(iter(enum_class))
            assert enum_class.label_of(member.value) == str(member.label)
        practitioner = Practitioner(profession="wizard")
        assert practitioner.profession_label == "（無效值：wizard）"
        assert Quitter(sex="X").sex_label == "（無效值：X）"


def test_no_list_formatter_raises_on_a_text_value_outside_its_rules(app):
    """issue 12 class 6: every formatter of every model view, given a stored bad text."""
    from core.web.views import ScopedModelView

    views = [v for v in app.appbuilder.baseviews if isinstance(v, ScopedModelView)]
    assert len(views) > 5
    with app.test_request_context():
        for view in views:
            model = view.datamodel.obj
            for column, formatter in view.formatters_columns.items():
                sql_column = model.__table__.columns.get(column)
                kind = sql_column.type.python_type if sql_column is not None else None
                if kind is str:
                    formatter("Z?%s")


def _write_invalid_sex(db, quitter_id: int, sex: str) -> str:
    """Store `sex` bypassing the CHECK constraint; returns the previous value."""
    db.session.rollback()  # the test's own session must hold no lock on the table (ALTER)
    db.session.close()
    with db.engine.connect() as conn:
        previous = conn.execute(text("SELECT sex FROM quitter WHERE id = :id"), {"id": quitter_id}).scalar()
        if db.engine.dialect.name == "sqlite":
            conn.exec_driver_sql("PRAGMA ignore_check_constraints = ON")
            try:
                conn.execute(text("UPDATE quitter SET sex = :s WHERE id = :id"), {"s": sex, "id": quitter_id})
                conn.commit()
            finally:
                conn.exec_driver_sql("PRAGMA ignore_check_constraints = OFF")
        else:  # PostgreSQL checks cannot be bypassed: lift this one for the test, then restore it
            conn.execute(text("ALTER TABLE quitter DROP CONSTRAINT ck_quitter_sex"))
            conn.execute(text("UPDATE quitter SET sex = :s WHERE id = :id"), {"s": sex, "id": quitter_id})
            conn.commit()
    return previous


def _restore_sex(db, quitter_id: int, sex: str) -> None:
    db.session.rollback()
    db.session.close()
    with db.engine.connect() as conn:
        conn.execute(text("UPDATE quitter SET sex = :s WHERE id = :id"), {"s": sex, "id": quitter_id})
        if db.engine.dialect.name != "sqlite":
            conn.execute(text("ALTER TABLE quitter ADD CONSTRAINT ck_quitter_sex CHECK (sex IN ('M', 'F'))"))
        conn.commit()


def test_a_stored_bad_sex_renders_as_invalid_on_list_show_and_export(app, db, login_as, api_as):
    """issue 12 class 6: the quitter list, show page and export answered 500 for the row."""
    institution_id = min(user_view(db, "facility_tpe").institution_ids)
    quitter_id = _visible_quitter(db, institution_id)
    national_id = db.session.get(Quitter, quitter_id).national_id
    previous = _write_invalid_sex(db, quitter_id, "X")
    try:
        for username in ("facility_tpe", "office"):
            client = login_as(username)
            show = client.get(f"/quitterview/show/{quitter_id}")
            assert show.status_code == 200 and "（無效值：X）" in visible_text(show.text), username
            listed = client.get(f"/quitterview/list/?_flt_3_national_id={national_id}")
            assert listed.status_code == 200 and "（無效值：X）" in visible_text(listed.text), username
            export = client.get(f"/quitterview/export/xlsx?_flt_3_national_id={national_id}")
            assert export.status_code == 200, username
            cells = [c for row in load_workbook(io.BytesIO(export.data)).worksheets[0].iter_rows(values_only=True) for c in row]
            assert "（無效值：X）" in cells, username
        client, headers = api_as("facility_tpe")
        assert client.get(f"/api/v1/quitter/{quitter_id}", headers=headers).status_code == 200
    finally:
        _restore_sex(db, quitter_id, previous)
    db.session.expire_all()
    assert db.session.get(Quitter, quitter_id).sex == previous
