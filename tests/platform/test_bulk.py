"""core/data/bulk.py: many rows in one go (COPY on PostgreSQL) store every value as given."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import Boolean, Column, Date, DateTime, Integer, MetaData, String, Table, select

from core.data.bulk import insert_rows

PROBE = Table(
    "bulk_insert_probe", MetaData(),
    Column("id", Integer, primary_key=True), Column("text", String(50)), Column("flag", Boolean),
    Column("day", Date), Column("at", DateTime), Column("n", Integer),
)  # fmt: skip

VALUES = [
    {"text": "tab\there", "flag": True, "day": dt.date(2025, 2, 28), "at": dt.datetime(2025, 2, 28, 23, 59, 1), "n": 0},
    {"text": "line\nbreak\r\nand \\N back\\slash", "flag": False, "day": None, "at": None, "n": -5},
    {"text": None, "flag": None, "day": dt.date(1912, 1, 1), "at": dt.datetime(2030, 1, 1), "n": None},
    {"text": "", "flag": True, "day": dt.date(2200, 12, 31), "at": dt.datetime(2025, 1, 1, 0, 0, 0, 123000), "n": 2**31 - 1},
    {"text": "藥酒癮 ＼ 個案", "flag": False, "day": dt.date(2024, 2, 29), "at": dt.datetime(2024, 2, 29, 12), "n": 7},
]  # fmt: skip


@pytest.fixture
def probe(app, db):
    PROBE.create(db.engine, checkfirst=True)
    yield
    db.session.rollback()
    PROBE.drop(db.engine, checkfirst=True)


def test_every_value_comes_back_as_it_was_given(db, probe):
    """Tabs, line breaks, backslashes, \\N as text, empty text against NULL, booleans, dates,
    times with microseconds, the integer limits."""
    assert insert_rows(PROBE, [dict(v) for v in VALUES]) == len(VALUES)
    db.session.commit()
    stored = [dict(r._mapping) for r in db.session.execute(select(PROBE).order_by(PROBE.c.id))]
    assert [{k: v for k, v in row.items() if k != "id"} for row in stored] == VALUES


def test_nothing_to_insert_is_no_statement(db, probe):
    assert insert_rows(PROBE, []) == 0


def test_rows_are_part_of_the_callers_transaction(db, probe):
    """A rollback takes them back: nothing is committed behind the caller's back."""
    insert_rows(PROBE, [dict(v) for v in VALUES])
    db.session.rollback()
    assert db.session.execute(select(PROBE.c.id)).first() is None
