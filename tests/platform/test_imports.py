"""core/imports.py with a toy spreadsheet, not the visit one: every row is checked first; one
bad row (at checking or at writing) imports nothing and the file comes back with an error
column; all good rows import in one transaction; the template reads back as it was written."""

from __future__ import annotations

import io

import pytest
from openpyxl import Workbook, load_workbook
from sqlalchemy import Integer, String, func, select
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from core.imports import Column, RowRules, Spreadsheet


class _Base(DeclarativeBase):
    """A metadata of its own: the toy table never reaches the app's schema or audit trail."""


class Toy(_Base):
    """One imported toy row."""

    __tablename__ = "toy_import"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(10), nullable=False)
    count: Mapped[int] = mapped_column(Integer, nullable=False)


class ToyFileError(Exception):
    """The toy file refused as a whole."""


class ToyRowError(ValueError):
    """One toy row refused."""


class ToyRows(RowRules):
    """Code required; count a whole number; a code written twice is refused on writing."""

    row_errors = (ToyRowError,)

    def __init__(self):
        self.finished = False

    def check(self, row, cells):
        """Errors per column, every column checked."""
        if not str(cells["code"] or "").strip():
            row.errors.append("Code: required")
        if not isinstance(cells["count"], int):
            row.errors.append("Count: not a whole number")
        row.values = {"code": str(cells["code"]), "count": cells["count"]}

    def save(self, row):
        """Add the row; a code already written in this transaction is refused."""
        from core.extensions import db

        db.session.flush()
        if db.session.scalar(select(Toy.id).where(Toy.code == row.values["code"])):
            raise ToyRowError("Code: written twice")
        db.session.add(Toy(**row.values))

    def before_commit(self):
        """Record that the last check ran."""
        self.finished = True


SHEET = Spreadsheet(
    columns=[Column("code", "Code", "X1"), Column("count", "Count", 3)],
    title="Toys",
    error=ToyFileError,
    notes=["One toy per row."],
)


def _xlsx(rows, header=("Code", "Count")) -> bytes:
    workbook = Workbook()
    workbook.active.append(list(header))
    for row in rows:
        workbook.active.append(row)
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


@pytest.fixture
def toys(app, db):
    """The toy table in the test database for one test, inside a request context."""
    _Base.metadata.create_all(db.engine)
    try:
        with app.test_request_context():
            yield db
    finally:
        db.session.rollback()
        _Base.metadata.drop_all(db.engine)


def _count(db) -> int:
    return db.session.scalar(select(func.count()).select_from(Toy))


def test_one_bad_row_imports_nothing_and_the_report_marks_it(toys):
    rules = ToyRows()
    outcome = SHEET.run(_xlsx([["A", 1], ["B", "many"], ["C", 3]]), rules)
    assert outcome.imported == 0 and [r.number for r in outcome.failed] == [3]
    assert outcome.failed[0].errors == ["Count: not a whole number"]
    assert _count(toys) == 0 and not rules.finished  # nothing written once a row failed
    report = io.BytesIO()
    SHEET.write_report(outcome.rows, report)
    marked = [list(r) for r in load_workbook(report).worksheets[0].iter_rows(values_only=True)]
    assert marked[0][:2] == ["Code", "Count"] and len(marked[0]) == 3
    assert marked[1] == ["A", 1, ""] and marked[3] == ["C", 3, ""]
    assert marked[2] == ["B", "many", "Count: not a whole number"]


def test_every_row_and_every_column_is_checked_before_anything_is_written(toys):
    outcome = SHEET.run(_xlsx([["", "x"], ["B", 2], [None, 3]]), ToyRows())
    assert [r.errors for r in outcome.failed] == [
        ["Code: required", "Count: not a whole number"],
        ["Code: required"],
    ]


def test_all_good_rows_import_in_one_transaction(toys):
    rules = ToyRows()
    outcome = SHEET.run(_xlsx([["A", 1], [None, None], ["B", 2], ["C", 3]]), rules)
    assert outcome.imported == 3 and outcome.failed == [] and rules.finished
    assert sorted(toys.session.scalars(select(Toy.code))) == ["A", "B", "C"]


def test_a_row_refused_on_writing_rolls_back_the_rows_before_it(toys):
    outcome = SHEET.run(_xlsx([["A", 1], ["B", 2], ["A", 3]]), ToyRows())
    assert outcome.imported == 0
    assert [(r.number, r.errors) for r in outcome.failed] == [(4, ["Code: written twice"])]
    assert _count(toys) == 0


def test_the_template_round_trips(toys):
    template = io.BytesIO()
    SHEET.write_template(template)
    workbook = load_workbook(template)
    data, notes = workbook.worksheets
    assert data.title == "Toys"
    assert [list(r) for r in data.iter_rows(values_only=True)] == [["Code", "Count"]]
    assert [list(r) for r in notes.iter_rows(values_only=True)] == [
        ["One toy per row.", None], [None, None], ["Code", "Count"], ["X1", 3],
    ]  # fmt: skip
    with pytest.raises(ToyFileError):  # the template as downloaded has no data rows
        SHEET.read_rows(template.getvalue())
    data.append([c.example for c in SHEET.columns])
    filled = io.BytesIO()
    workbook.save(filled)
    rows = SHEET.read_rows(filled.getvalue())
    assert [(r.number, r.raw) for r in rows] == [(2, ["X1", 3])]


def test_a_file_not_in_the_template_is_refused_with_the_spreadsheets_error(toys):
    with pytest.raises(ToyFileError):
        SHEET.read_rows(_xlsx([["A", 1]], header=("Count", "Code")))
    with pytest.raises(ToyFileError):
        SHEET.read_rows(b"not a zip")
