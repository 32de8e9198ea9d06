"""DateRangeMixin (models/base.py): `covers` in Python and `covering` in SQL say the same on
every boundary, an open end covers every later day, and the CHECK refuses an end before the start.

A toy table on its own declarative base and in-memory SQLite, so the mixin is tested apart
from the contracts and assignments that use it."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import Integer, create_engine, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from models.base import DateRangeMixin

D = dt.date


class _Base(DeclarativeBase):
    """A metadata of its own: the toy table never reaches the app's schema."""


class Toy(DateRangeMixin, _Base):
    """A dated row and nothing else."""

    __tablename__ = "toy_range"
    __table_args__ = (DateRangeMixin.range_check("ck_toy_dates"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)


@pytest.fixture
def session():
    engine = create_engine("sqlite://")
    _Base.metadata.create_all(engine)
    with Session(engine) as s:
        yield s
    engine.dispose()


CLOSED = (D(2025, 3, 1), D(2025, 3, 31))
OPEN = (D(2025, 3, 1), None)
DAYS = [D(2025, 2, 28), D(2025, 3, 1), D(2025, 3, 15), D(2025, 3, 31), D(2025, 4, 1), D(2199, 12, 31)]
EXPECTED = {
    CLOSED: [False, True, True, True, False, False],
    OPEN: [False, True, True, True, True, True],
}


@pytest.mark.parametrize("bounds", [CLOSED, OPEN], ids=["closed", "open-end"])
def test_covers_and_covering_agree_on_the_boundaries(session, bounds):
    row = Toy(start_date=bounds[0], end_date=bounds[1])
    session.add(row)
    session.flush()
    in_python = [row.covers(day) for day in DAYS]
    in_sql = [session.scalar(select(Toy.id).where(Toy.covering(day))) == row.id for day in DAYS]
    assert in_python == in_sql == EXPECTED[bounds]


def test_a_one_day_range_covers_that_day_only(session):
    session.add(Toy(start_date=D(2025, 3, 1), end_date=D(2025, 3, 1)))
    session.flush()
    for day, covered in ((D(2025, 2, 28), False), (D(2025, 3, 1), True), (D(2025, 3, 2), False)):
        assert (session.scalar(select(Toy).where(Toy.covering(day))) is not None) is covered
        assert session.scalars(select(Toy)).one().covers(day) is covered


def test_the_check_refuses_an_end_before_the_start(session):
    session.add(Toy(start_date=D(2025, 3, 2), end_date=D(2025, 3, 1)))
    with pytest.raises(IntegrityError, match="ck_toy_dates"):
        session.flush()


def test_the_columns_are_a_required_start_and_an_optional_end():
    columns = Toy.__table__.columns
    assert not columns["start_date"].nullable and columns["end_date"].nullable
    assert {c.name for c in Toy.__table__.constraints if c.name} == {"ck_toy_dates"}
