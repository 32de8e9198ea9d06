"""A14: addiction staff licences and training, and the list of staff short of their yearly
training hours or whose licence ends soon, in each user's scope. The users and staff are
made here (not the demo's): a treatment institution's staff at two 臺北市 institutions, one
高雄市 one, the two counties' bureaus and the Ministry."""

from __future__ import annotations

import datetime as dt
import io
import re
from decimal import Decimal
from pathlib import Path

import pytest
from openpyxl import load_workbook

from core import clock
from core.dates import to_roc
from models.addiction.staff import StaffLicence, Training
from models.platform.user import ScopedUser, ScopeKind
from models.registry.institution import Institution
from models.registry.practitioner import Practitioner, ServiceAssignment
from models.registry.reference import County
from tests.conftest import PASSWORD, post_form, visible_text
from tests.factories import _new_id


def _pdf() -> bytes:
    """A one-page PDF that parses."""
    from pypdf import PdfWriter

    writer, buffer = PdfWriter(), io.BytesIO()
    writer.add_blank_page(width=72, height=72)
    writer.write(buffer)
    return buffer.getvalue()


PDF_BYTES = _pdf()
PENDING = Path(__file__).resolve().parents[2] / "babel" / "pending" / "staff.tsv"


def _zh(msgid: str, **values) -> str:
    """The zh_TW text of a message: the catalog's, else the one pending in staff.tsv."""
    pending = dict(line.split("\t", 1) for line in PENDING.read_text(encoding="utf-8").splitlines() if line)
    text = pending.get(msgid, msgid)
    return text % values if values else text


def _shown(html: str, msgid: str, **values) -> bool:
    """The page states the message (in zh_TW once babel/pending is applied, else its msgid)."""
    text = visible_text(html)
    return (_zh(msgid, **values) in text) or ((msgid % values if values else msgid) in text)


def _institutions(db, county_code: str, n: int) -> list[Institution]:
    return (
        db.session.query(Institution).join(County).filter(County.code == county_code)
        .order_by(Institution.nhi_code).limit(n).all()
    )  # fmt: skip


def _user(app, db, username, role, kind, county=None, institutions=()):
    from core.security.passwords import demo_passwords_allowed

    sm = app.appbuilder.sm
    user = sm.find_user(username=username)
    if user is None:
        with demo_passwords_allowed():
            user = sm.add_user(username, username, "測試", f"{username}@test.invalid",
                               [sm.find_role(role)], PASSWORD)  # fmt: skip
    user = db.session.get(ScopedUser, user.id)
    user.scope_kind, user.scope_county, user.scope_institutions = kind, county, list(institutions)
    db.session.commit()


def _staff(db, name, institution_id, licences, trainings=()):
    """A practitioner serving at `institution` since 2020, with (profession, end) licences and
    (held_on, hours, category) trainings."""
    person = Practitioner(national_id=_new_id("S"), name=name, profession="psychologist")
    person.assignments.append(ServiceAssignment(institution_id=institution_id, start_date=dt.date(2020, 1, 1)))
    db.session.add(person)
    db.session.flush()
    for number, (profession, end) in enumerate(licences):
        db.session.add(StaffLicence(practitioner_id=person.id, profession=profession,
                                    licence_number=f"{name}-{number}", start_date=dt.date(2020, 1, 1),
                                    end_date=end))  # fmt: skip
    for held_on, hours, category in trainings:
        db.session.add(Training(practitioner_id=person.id, course_name="成癮治療繼續教育", organiser="衛生福利部",
                                held_on=held_on, hours=Decimal(hours), category=category))  # fmt: skip
    db.session.commit()
    return person


@pytest.fixture(scope="module")
def world(app):
    """The staff and users of these tests, made once."""
    from core.extensions import db

    with app.app_context():
        today = clock.today()
        year = today.year
        tpe_a, tpe_b = _institutions(db, "TPE", 2)
        (khh,) = _institutions(db, "KHH", 1)
        counties = {c.code: c.id for c in db.session.query(County).all()}
        ids_of = {"tpe_a": tpe_a.id, "tpe_b": tpe_b.id, "khh": khh.id}
        staff = {
            # 2 + 3 addiction hours this year (last year's 10 and this year's 4 of mental health
            # do not count): short of a psychologist's 6.
            "short": _staff(db, "測試許心怡", ids_of["tpe_a"], [("psychologist", None)], [
                (dt.date(year, 1, 15), "2", "addiction"), (dt.date(year, 3, 1), "3", "addiction"),
                (dt.date(year - 1, 12, 31), "10", "addiction"), (dt.date(year, 2, 1), "4", "mental_health"),
            ]),  # fmt: skip
            # Hours met, licence ending in 30 days.
            "ending": _staff(db, "測試林志明", ids_of["tpe_a"], [("physician", today + dt.timedelta(days=30))],
                             [(dt.date(year, 1, 2), "6", "addiction")]),  # fmt: skip
            # Hours met, licence ending in 90 days: not listed.
            "fine": _staff(db, "測試陳美玲", ids_of["tpe_b"], [("physician", today + dt.timedelta(days=90))],
                           [(dt.date(year, 1, 3), "6.5", "addiction")]),  # fmt: skip
            # Two professions, 5 hours: short of a case manager's 8, not of a nurse's 4.
            "two": _staff(db, "測試王雅婷", ids_of["tpe_b"], [("case_manager", None), ("nurse", None)],
                          [(dt.date(year, 1, 4), "5", "addiction")]),  # fmt: skip
            "khh": _staff(db, "測試黃建國", ids_of["khh"], [("social_worker", None)]),
        }
        _user(app, db, "a14_treat_a", "Treatment", ScopeKind.FACILITY, institutions=[db.session.get(Institution, ids_of["tpe_a"])])
        _user(app, db, "a14_treat_khh", "Treatment", ScopeKind.FACILITY, institutions=[db.session.get(Institution, ids_of["khh"])])
        _user(app, db, "a14_bureau_tpe", "AddictionBureau", ScopeKind.COUNTY, county=db.session.get(County, counties["TPE"]))
        _user(app, db, "a14_bureau_khh", "AddictionBureau", ScopeKind.COUNTY, county=db.session.get(County, counties["KHH"]))
        _user(app, db, "a14_ministry", "AddictionMinistry", ScopeKind.NATIONAL)
        ids = {key: p.id for key, p in staff.items()}
        names = {key: db.session.get(Practitioner, p.id).name for key, p in staff.items()}
        db.session.remove()
    return {"ids": ids, "names": names, **ids_of, "today": today}


def _screen_rows(client, query="") -> list[list[str]]:
    html = client.get(f"/staffshortfall/{query}").text
    table = re.search(r'<table[^>]*id="staff-shortfall"[^>]*>(.*?)</table>', html, re.S).group(1)
    rows = re.findall(r'<tr class="shortfall-row">(.*?)</tr>', table, re.S)
    return [[visible_text(c) for c in re.findall(r"<td>(.*?)</td>", r, re.S)] for r in rows]


def _names(rows) -> list[str]:
    return [r[3] for r in rows]


def test_a14_hours_are_summed_per_profession_per_calendar_year(app, world, login_as):
    """A14: this year's addiction hours only, against each profession's configured hours."""
    rows = _screen_rows(login_as("a14_bureau_tpe"))
    names = world["names"]
    by_person = {(r[3], r[4]): r for r in rows}
    short = by_person[(names["short"], "心理師")]
    assert short[7:10] == ["5.0", "6.0", "1.0"] and _shown(short[10], "Short of training hours")
    # 5 hours: short of a case manager's 8 (listed once, as that), not of a nurse's 4.
    (two,) = [key for key in by_person if key[0] == names["two"]]
    assert two[1] in ("個案管理師", "Case manager") and by_person[two][8] == "8.0"
    assert names["fine"] not in _names(rows)
    # The requirement is configuration: at 5 hours a psychologist is no longer short.
    hours = dict(app.config["ADDICTION_TRAINING_HOURS"])
    app.config["ADDICTION_TRAINING_HOURS"] = {**hours, "psychologist": 5}
    try:
        assert names["short"] not in _names(_screen_rows(login_as("a14_bureau_tpe")))
    finally:
        app.config["ADDICTION_TRAINING_HOURS"] = hours


def test_a14_required_hours_are_read_from_the_environment_as_json(monkeypatch):
    """A14: ADDICTION_TRAINING_HOURS overrides the defaults as JSON."""
    import importlib

    import config

    monkeypatch.setenv("ADDICTION_TRAINING_HOURS", '{"physician": 12}')
    try:
        assert importlib.reload(config).Config.ADDICTION_TRAINING_HOURS == {"physician": 12}
    finally:
        monkeypatch.delenv("ADDICTION_TRAINING_HOURS")
        assert importlib.reload(config).Config.ADDICTION_TRAINING_HOURS["physician"] == 6


def test_a14_a_licence_ending_within_60_days_is_listed(app, world, login_as):
    """A14: a licence ending in 30 days is listed, one ending in 90 days is not (60 by default)."""
    names = world["names"]
    rows = _screen_rows(login_as("a14_bureau_tpe"))
    ending = next(r for r in rows if r[3] == names["ending"])
    assert ending[6] == to_roc(world["today"] + dt.timedelta(days=30)) and ending[9] == "0.0"
    assert names["fine"] not in _names(rows)
    app.config["LICENCE_EXPIRY_WARNING_DAYS"] = 100
    try:
        assert names["fine"] in _names(_screen_rows(login_as("a14_bureau_tpe")))
    finally:
        app.config["LICENCE_EXPIRY_WARNING_DAYS"] = 60


def test_a14_out_of_scope_staff_are_not_listed(world, login_as):
    """A14 scope: a bureau lists its county's staff only, an institution its own, the Ministry all."""
    names = world["names"]
    tpe = _names(_screen_rows(login_as("a14_bureau_tpe")))
    khh = _names(_screen_rows(login_as("a14_bureau_khh")))
    own = _names(_screen_rows(login_as("a14_treat_a")))
    national = _names(_screen_rows(login_as("a14_ministry")))
    assert names["khh"] in khh and names["khh"] not in tpe and names["khh"] not in own
    assert names["short"] in tpe and names["short"] not in khh
    # The demo staff serve at the same hospitals: only this test's own staff are compared.
    assert set(own) & set(names.values()) == {names["short"], names["ending"]}
    assert {names["short"], names["two"], names["khh"]} <= set(national)
    # Asking for another county's institution or county by id lists nothing of it.
    assert _screen_rows(login_as("a14_bureau_khh"), f"?institution={world['tpe_a']}") == []
    assert names["khh"] not in _names(_screen_rows(login_as("a14_treat_a"), f"?institution={world['khh']}"))
    # A cessation account has no such report at all.
    assert login_as("facility_tpe").get("/staffshortfall/").status_code in (302, 403, 404)


@pytest.mark.parametrize("username", ["a14_treat_a", "a14_bureau_tpe", "a14_bureau_khh", "a14_ministry"])
def test_a14_the_export_has_the_same_rows_as_the_screen(world, login_as, username):
    """A14: the Excel export lists exactly the screen's rows, zh_TW headers, ROC dates."""
    client = login_as(username)
    screen = _screen_rows(client)
    response = client.get("/staffshortfall/export")
    assert response.status_code == 200
    sheet = load_workbook(io.BytesIO(response.data), read_only=True).active
    # Numbers are cells of numbers (openpyxl reads 6.0 back as 6); the screen prints 6.0.
    title, header, *rows = [
        ["" if v is None else str(float(v)) if isinstance(v, int | float) else str(v) for v in row]
        for row in sheet.iter_rows(values_only=True)
    ]
    assert title[0].startswith("人員訓練及證照提醒")
    assert header[:4] == ["縣市", "機構代碼", "機構名稱", "醫事人員"]  # a registry code or an NHI one
    assert rows == screen


def _training_form(practitioner_id, **changes):
    data = {"practitioner": str(practitioner_id), "course_name": "動機式晤談進階", "organiser": "臺灣成癮科學學會",
            "held_on": to_roc(clock.today() - dt.timedelta(days=1)), "hours": "3", "category": "addiction"}  # fmt: skip
    data.update(changes)
    return data


def _trainings(db, practitioner_id):
    db.session.expire_all()
    return db.session.query(Training).filter_by(practitioner_id=practitioner_id).all()


def test_a14_certificate_of_another_institutions_staff_is_404(app, db, world, login_as):
    """A14: a certificate is served only through a Training row in the viewer's scope."""
    pid = world["ids"]["short"]
    before = len(_trainings(db, pid))
    client = login_as("a14_treat_a")
    response = post_form(app, client, "/trainingview/add", {
        **_training_form(pid), "certificate": (io.BytesIO(PDF_BYTES), "證明.pdf")
    }, content_type="multipart/form-data")  # fmt: skip
    assert response.status_code == 302, visible_text(response.text)[-300:]
    (training,) = [t for t in _trainings(db, pid) if t.certificate_name]
    assert len(_trainings(db, pid)) == before + 1 and training.certificate_mime == "application/pdf"
    assert "證明" not in training.certificate_name  # a random name, not the uploaded one
    url = f"/trainingview/certificate/{training.id}"
    assert client.get(url).data == PDF_BYTES
    assert login_as("a14_bureau_tpe").get(url).status_code == 200
    assert login_as("a14_treat_khh").get(url).status_code == 404
    assert login_as("a14_bureau_khh").get(url).status_code == 404
    assert login_as("a14_treat_khh").get(f"/api/v1/training/{training.id}").status_code in (401, 404)
    # A fake certificate (HTML named .pdf) is refused with the form kept, nothing stored.
    fake = post_form(app, client, "/trainingview/add", {
        **_training_form(pid, course_name="假檔案"), "certificate": (io.BytesIO(b"<html>x</html>"), "x.pdf")
    }, content_type="multipart/form-data")  # fmt: skip
    assert fake.status_code == 200 and _shown(fake.text, "The certificate must be a PDF, PNG or JPEG file.")
    assert "假檔案" in fake.text and len(_trainings(db, pid)) == before + 1


def _licences(db, practitioner_id):
    db.session.expire_all()
    return db.session.query(StaffLicence).filter_by(practitioner_id=practitioner_id).all()


def test_a14_overlapping_licences_of_one_profession_are_refused(app, db, world, login_as, api_as):
    """A14: a second licence of the same profession overlapping the first is refused, by
    form and by API, naming the other; another profession or a later period is accepted."""
    pid = world["ids"]["khh"]
    client = login_as("a14_treat_khh")
    form = {"practitioner": str(pid), "profession": "social_worker", "licence_number": "社字第999號",
            "start_date": "113/01/01", "end_date": "118/12/31"}  # fmt: skip
    response = post_form(app, client, "/stafflicenceview/add", form)
    assert response.status_code == 200 and "社字第999號" in response.text
    assert "黃建國-0" in visible_text(response.text) and len(_licences(db, pid)) == 1
    client_api, headers = api_as("a14_treat_khh")
    body = {"practitioner": pid, "profession": "social_worker", "licence_number": "社字第998號",
            "start_date": "2030-01-01"}  # fmt: skip
    refused = client_api.post("/api/v1/staff_licence/", json=body, headers=headers)
    assert refused.status_code == 422 and "黃建國-0" in str(refused.json)
    assert len(_licences(db, pid)) == 1
    accepted = client_api.post("/api/v1/staff_licence/", json={**body, "profession": "case_manager"}, headers=headers)
    assert accepted.status_code == 201, accepted.text
    assert len(_licences(db, pid)) == 2
    # Another county's bureau cannot see them; the Ministry can.
    listed = api_as("a14_bureau_tpe")
    assert listed[0].get(f"/api/v1/staff_licence/{accepted.json['id']}", headers=listed[1]).status_code == 404
    national = api_as("a14_ministry")
    assert national[0].get(f"/api/v1/staff_licence/{accepted.json['id']}", headers=national[1]).status_code == 200


@pytest.mark.parametrize("hours", ["-1", "0", "99999", "１２", "١٢", "1.25", "1e2", "abc", "²"])
def test_a14_bad_training_hours_are_refused_and_nothing_is_stored(app, db, world, login_as, api_as, hours):
    """A14 bad input: negative, zero, huge, Unicode-digit or malformed hours are refused
    with the zh_TW message, by form (which keeps what was typed) and by API."""
    pid = world["ids"]["ending"]
    before = len(_trainings(db, pid))
    response = post_form(app, login_as("a14_treat_a"), "/trainingview/add", _training_form(pid, hours=hours))
    assert response.status_code == 200
    assert _shown(response.text, "Training hours must be a number from 0.5 to %(max)d, with at most one decimal place.", max=200)
    client, headers = api_as("a14_treat_a")
    body = {"practitioner": pid, "course_name": "x", "organiser": "y", "held_on": "2025-01-01",
            "hours": hours, "category": "addiction"}  # fmt: skip
    answer = client.post("/api/v1/training/", json=body, headers=headers)
    assert answer.status_code == 422 and "hours" in answer.json["message"]
    assert len(_trainings(db, pid)) == before


def test_a14_bad_dates_are_refused_and_nothing_is_stored(app, db, world, login_as, api_as):
    """A14 bad input: a licence ending before it starts, a training dated in the future."""
    pid = world["ids"]["ending"]
    client = login_as("a14_treat_a")
    response = post_form(app, client, "/stafflicenceview/add", {
        "practitioner": str(pid), "profession": "nurse", "licence_number": "護字第1號",
        "start_date": "114/05/01", "end_date": "114/04/30"})  # fmt: skip
    assert response.status_code == 200 and "結束日期不可早於起始日期" in visible_text(response.text) or (
        "The end date cannot be earlier than the start date." in response.text
    )
    api, headers = api_as("a14_treat_a")
    answer = api.post("/api/v1/staff_licence/", json={
        "practitioner": pid, "profession": "nurse", "licence_number": "護字第1號",
        "start_date": "2025-05-01", "end_date": "2025-04-30"}, headers=headers)  # fmt: skip
    assert answer.status_code == 422
    assert len(_licences(db, pid)) == 1
    before = len(_trainings(db, pid))
    future = to_roc(clock.today() + dt.timedelta(days=3))
    response = post_form(app, client, "/trainingview/add", _training_form(pid, held_on=future))
    assert response.status_code == 200 and _shown(response.text, "A training cannot be dated in the future.")
    assert len(_trainings(db, pid)) == before


def test_a14_the_staff_messages_have_their_zh_tw_translations():
    """Every new message of the staff screens has its zh_TW translation pending."""
    from domain.addiction import staff

    source = Path(staff.__file__).read_text(encoding="utf-8")
    pending = dict(line.split("\t", 1) for line in PENDING.read_text(encoding="utf-8").splitlines() if line)
    for msgid in ("This licence overlaps licence", "Training hours must be", "A training cannot be dated",
                  "The certificate must be"):  # fmt: skip
        assert msgid in source
        (full,) = [m for m in pending if m.startswith(msgid)]
        assert re.search(r"[\u4e00-\u9fff]", pending[full])


@pytest.mark.parametrize("username", ["a14_treat_a", "a14_treat_khh", "a14_bureau_tpe", "a14_bureau_khh", "a14_ministry"])
def test_a14_licence_and_training_lists_follow_the_oracle(app, db, world, login_as, api_as, username):
    """A14 scope, by the independent oracle (tests/scope_oracle.py): each list and export holds
    exactly the rows of staff linked to the user's institutions; any other row is a 404."""
    from tests.scope_oracle import expected_split, user_view

    client, (api, headers) = login_as(username), api_as(username)
    user = user_view(db, username)
    for view, model, api_path in (("stafflicenceview", StaffLicence, "staff_licence"),
                                  ("trainingview", Training, "training")):  # fmt: skip
        visible, hidden = expected_split(db, model, user)
        name = "StaffLicenceView" if model is StaffLicence else "TrainingView"
        listed: set[int] = set()
        for page in range(len(visible) // 500 + 1):  # a national user's list has pages
            html = client.get(f"/{view}/list/?psize_{name}=500&page_{name}={page}").text
            listed |= {int(pk) for pk in re.findall(rf"/{view}/show/(\d+)", html)}
        assert listed == visible
        sheet = load_workbook(io.BytesIO(client.get(f"/{view}/export/xlsx").data), read_only=True).active
        assert sheet.max_row - 2 == len(visible)  # below the title row and the headers
        for pk in sorted(hidden)[:3]:
            assert client.get(f"/{view}/show/{pk}").status_code == 404
            assert api.get(f"/api/v1/{api_path}/{pk}", headers=headers).status_code == 404
        if visible:
            shown = api.get(f"/api/v1/{api_path}/{min(visible)}", headers=headers)
            assert shown.status_code == 200 and shown.json["id"] == min(visible)
        if hidden and model is Training:
            assert client.get(f"/trainingview/certificate/{min(hidden)}").status_code == 404


def test_a14_the_staff_apis_are_in_the_openapi_document(api_as):
    """A14: the licence and training APIs are documented (OpenAPI), with their refusals."""
    client, headers = api_as("facility_tpe")
    spec = client.get("/api/v1/_openapi", headers=headers).json
    for path in ("/api/v1/staff_licence/", "/api/v1/training/"):
        assert {"get", "post"} <= set(spec["paths"][path])
        assert {"401", "403"} <= set(spec["paths"][path]["get"]["responses"])


def test_a14_hostile_form_and_api_values_never_answer_500(app, db, world, login_as, api_as):
    """A14 bad input: every hostile value (tests/platform/test_fuzz_inputs.py) in every field
    of the licence and training forms and APIs is a 4xx or a form with its message."""
    from tests.platform.test_fuzz_inputs import HOSTILE

    pid = world["ids"]["ending"]
    client, (api, headers) = login_as("a14_treat_a"), api_as("a14_treat_a")
    # Each base form is refused whatever one field holds (an overlap, bad hours), so a
    # hostile value that happens to be acceptable text stores nothing either.
    licence = {"practitioner": str(pid), "profession": "physician", "licence_number": "醫字第2號",
               "start_date": "114/01/01", "end_date": ""}  # fmt: skip
    before = (len(_licences(db, pid)), len(_trainings(db, pid)))
    for value in HOSTILE[::2]:
        for form, url in ((licence, "/stafflicenceview/add"), (_training_form(pid, hours="x"), "/trainingview/add")):
            for field in form:
                response = post_form(app, client, url, {**form, field: value})
                assert response.status_code in (200, 302, 400), (url, field, value)
        for path, body in (("staff_licence", {"practitioner": pid, "profession": "physician",
                                              "licence_number": value, "start_date": value}),
                           ("training", {"practitioner": pid, "course_name": value, "organiser": "y",
                                         "held_on": "2025-01-01", "hours": value, "category": "addiction"})):  # fmt: skip
            answer = api.post(f"/api/v1/{path}/", json=body, headers=headers)
            assert 400 <= answer.status_code < 500, (path, value, answer.status_code)
    assert (len(_licences(db, pid)), len(_trainings(db, pid))) == before
