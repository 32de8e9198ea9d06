"""Identifiers and dates: checksums, formats, zh_TW messages, and no change on bad input."""

from __future__ import annotations

import datetime as dt

import pytest

from core.dates import DateFormatError, parse_date, to_roc
from core.validators import (
    is_valid_nhi_code,
    is_valid_personal_id,
    mask_personal_id,
    personal_id_check_digit,
)
from models.registry.institution import ContractPeriod, Institution
from models.registry.practitioner import Practitioner
from tests.conftest import post_form
from tests.scope_oracle import user_view


@pytest.mark.parametrize(
    "value, valid",
    [
        ("A123456789", True),  # national ID, the textbook example
        ("a123456789", True),  # typed in lower case
        ("Ａ123456789", True),  # full-width letter from a Chinese IME
        ("A123456788", False),  # wrong check digit
        ("A323456789", False),  # second digit must be 1 or 2 (or 8/9 for residents)
        ("A12345678", False),  # too short
        ("1234567890", False),
        ("A800000014", True),  # resident certificate, 2021 format
        ("A800000015", False),
        ("AC01234567", True),  # resident certificate, old format (letter, letter)
        ("AC01234568", False),
        ("", False),
    ],
)
def test_personal_id_checksum(value, valid):
    assert is_valid_personal_id(value) is valid


def test_check_digit_completes_a_valid_id():
    assert is_valid_personal_id("F13110409" + personal_id_check_digit("F13110409"))


def test_personal_ids_are_masked_like_a12_star_789():
    assert mask_personal_id("A123456789") == "A12****789"


@pytest.mark.parametrize(
    "value, valid",
    [("0401180014", True), ("401180014", False), ("04011800145", False), ("04O1180014", False),
     ("0000000000", False), ("", False)],
)  # fmt: skip
def test_nhi_institution_code_is_ten_digits(value, valid):
    assert is_valid_nhi_code(value) is valid


@pytest.mark.parametrize(
    "text, expected",
    [
        ("114/4/1", dt.date(2025, 4, 1)),
        ("114/04/01", dt.date(2025, 4, 1)),
        ("1140401", dt.date(2025, 4, 1)),
        ("2025-04-01", dt.date(2025, 4, 1)),
        (" 99/12/31 ", dt.date(2010, 12, 31)),
        ("113.2.29", dt.date(2024, 2, 29)),
    ],
)
def test_roc_and_iso_dates_are_accepted(app, text, expected):
    with app.test_request_context():
        assert parse_date(text) == expected


@pytest.mark.parametrize("text", ["114/13/01", "113/02/30", "abc", "2025/4/1/2", "0/1/1"])
def test_bad_dates_are_refused_in_zh_tw(app, text):
    with app.test_request_context():
        with pytest.raises(DateFormatError) as raised:
            parse_date(text)
    message = str(raised.value)
    assert "日期" in message, message


def test_dates_display_in_roc_form():
    assert to_roc(dt.date(2025, 4, 1)) == "114/04/01"
    assert to_roc(None) == ""


def _count(db, model):
    db.session.expire_all()
    return db.session.query(model).count()


def test_bad_nhi_code_gives_a_zh_message_and_changes_nothing(app, db, login_as):
    client = login_as("admin")
    level_id = db.session.query(Institution.level_id).first()[0]
    county_id = db.session.query(Institution.county_id).first()[0]
    before = _count(db, Institution)
    response = post_form(
        app,
        client,
        "/institutionview/add",
        {"nhi_code": "12345", "name": "測試診所", "level": str(level_id), "county": str(county_id)},
    )
    assert response.status_code == 200
    assert "醫事機構代碼必須為 10 位數字" in response.text
    assert _count(db, Institution) == before


def test_bad_national_id_gives_a_zh_message_and_changes_nothing(app, db, login_as):
    client = login_as("facility_tpe")
    user = user_view(db, "facility_tpe")
    before = _count(db, Practitioner)
    response = post_form(
        app,
        client,
        "/practitionerview/add",
        {
            "national_id": "A123456788",
            "name": "陳雅婷",
            "profession": "nurse",
            "institution": str(min(user.institution_ids)),
            "start_date": "114/01/02",
        },
    )
    assert response.status_code == 200
    assert "身分證字號或居留證號" in response.text
    assert _count(db, Practitioner) == before


@pytest.mark.parametrize("bad_date", ["114/13/01", "明天", "2025-02-30"])
def test_bad_roc_date_gives_a_zh_message_and_changes_nothing(app, db, login_as, bad_date):
    client = login_as("bureau_tpe")
    user = user_view(db, "bureau_tpe")
    before = _count(db, ContractPeriod)
    response = post_form(
        app,
        client,
        "/contractperiodview/add",
        {"institution": str(min(user.institution_ids)), "start_date": bad_date, "end_date": ""},
    )
    assert response.status_code == 200
    assert "日期" in response.text and f"「{bad_date}」" in response.text
    assert _count(db, ContractPeriod) == before


def test_api_refuses_a_bad_national_id_in_zh(db, api_as):
    client, headers = api_as("admin")
    before = _count(db, Practitioner)
    response = client.post(
        "/api/v1/practitioner/",
        headers=headers,
        json={"national_id": "B223456780", "name": "張家豪", "profession": "physician"},
    )
    assert response.status_code == 422
    assert "身分證字號或居留證號" in str(response.json)
    assert _count(db, Practitioner) == before


def test_list_date_filters_accept_roc_dates(db, login_as):
    from models.registry.practitioner import ServiceAssignment

    client = login_as("office")
    cutoff = dt.date(2020, 1, 1)
    expected = db.session.query(ServiceAssignment).filter(ServiceAssignment.start_date > cutoff).count()
    for text in ("109/01/01", "109/1/1", "2020-01-01"):
        response = client.get(
            f"/serviceassignmentview/list/?_flt_1_start_date={text}&psize_ServiceAssignmentView=500"
        )
        assert response.status_code == 200
        assert response.text.count("/serviceassignmentview/show/") == min(expected, 500), text
    bad = client.get("/serviceassignmentview/list/?_flt_1_start_date=not-a-date")
    assert bad.status_code == 200 and "/serviceassignmentview/show/" not in bad.text


def test_duplicate_nhi_code_is_refused_in_zh(app, db, login_as):
    existing = db.session.query(Institution).first()
    before = _count(db, Institution)
    response = post_form(
        app,
        login_as("admin"),
        "/institutionview/add",
        {"kind": "medical", "nhi_code": existing.nhi_code, "name": "重複代碼診所", "level": str(existing.level_id),
         "county": str(existing.county_id)},
        follow_redirects=True,
    )  # fmt: skip
    assert "已有相同內容的資料" in response.text
    assert _count(db, Institution) == before
