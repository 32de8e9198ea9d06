"""All-or-nothing spreadsheet import (.xlsx): a template of named columns, its rows read
within bounds (issue 12, class 7), every row checked by rules the domain hands in, all rows
written in one transaction only if none fails, else the uploaded rows handed back with an
error column. It knows no domain: the visit upload (domain/cessation/batch.py) is one user."""

from __future__ import annotations

import abc
import io
import math
import re
import time
import zipfile
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import IO, Any, NamedTuple
from xml.parsers import expat

import xlsxwriter
from flask import current_app, has_app_context
from flask_babel import gettext
from openpyxl import load_workbook

from core.export.xlsx import cell_text
from core.extensions import db

#: Defaults of the upload bounds (config: BATCH_MAX_BYTES, BATCH_MAX_UNPACKED_BYTES,
#: BATCH_MAX_PARTS, BATCH_TIME_BUDGET). A 5,000-row file in the visit template is about
#: 250 KB packed and 3 MB unpacked.
DEFAULT_BOUNDS = {
    "BATCH_MAX_BYTES": 2 * 1024 * 1024,
    "BATCH_MAX_UNPACKED_BYTES": 20 * 1024 * 1024,
    "BATCH_MAX_PARTS": 100,
    "BATCH_TIME_BUDGET": 20,
}


def bound(name: str):
    """An upload bound from the app's config, or its default outside an app."""
    if has_app_context():
        return current_app.config.get(name, DEFAULT_BOUNDS[name])
    return DEFAULT_BOUNDS[name]


def _megabytes(n: int) -> str:
    return f"{n / (1024 * 1024):.1f}".removesuffix(".0")


class Budget:
    """The time one upload may take to read and check (BATCH_TIME_BUDGET seconds)."""

    def __init__(self, error: type[Exception], seconds: float | None = None):
        self.error = error
        self.seconds = bound("BATCH_TIME_BUDGET") if seconds is None else seconds
        self.until = time.monotonic() + self.seconds

    def check(self) -> None:
        """Refuse the whole file once the budget is spent."""
        if time.monotonic() > self.until:
            raise self.error(
                gettext(
                    "Checking the file took longer than %(s)d seconds, so nothing was imported: "
                    "split it into smaller files.",
                    s=math.ceil(self.seconds),
                )
            )


class Column(NamedTuple):
    """One column of a template: the key the row rules read it by, its (translated) header,
    and an example value for the template's instructions sheet."""

    key: str
    label: Any
    example: Any = None
    #: Headers of earlier templates still accepted (a file downloaded before a rename).
    former: tuple = ()


@dataclass
class Row:
    """One data row: its number in the sheet, raw values, parsed values and problems."""

    number: int
    raw: list
    values: dict = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)


@dataclass
class Outcome:
    """What an import did: every row read, and how many were written (0 if any failed)."""

    rows: list[Row]
    imported: int

    @property
    def failed(self) -> list[Row]:
        """The rows with a problem; one of them means nothing was imported."""
        return [row for row in self.rows if row.errors]


class RowRules(abc.ABC):
    """A domain's checks and writes for one upload; one instance per upload, so it may keep
    state across rows (a duplicate within the file, a lookup done once)."""

    #: Exceptions whose message is a row's problem, shown in the error column.
    row_errors: tuple[type[Exception], ...] = ()

    def prepare(self, rows: list[Row], cells: list[dict]) -> None:  # noqa: B027 - optional hook
        """Before any row is checked, with every row (and its cells by column key): read what
        the rows refer to once for the whole file (nothing by default)."""

    @abc.abstractmethod
    def check(self, row: Row, cells: dict) -> None:
        """Fill `row.values` from `cells` (the row by column key), or add to `row.errors`
        (or raise one of `row_errors`)."""

    @abc.abstractmethod
    def save(self, row: Row) -> None:
        """Add one checked row to the session, uncommitted; raise one of `row_errors` to refuse it."""

    @abc.abstractmethod
    def before_commit(self) -> None:
        """A last check over everything written, just before the one commit (e.g. its scope)."""


@dataclass(frozen=True)
class Spreadsheet:
    """A file a domain accepts: its columns in order, the sheet's title, the template's
    instructions, the row limit, and the error raised for a file refused as a whole."""

    columns: Sequence[Column]
    title: Any
    error: type[Exception]
    notes: Sequence = ()
    max_rows: int = 5000
    #: Rows read beyond max_rows data rows and the header, blank or not, before a file is
    #: refused: a few blank rows after the data are harmless, three million are not.
    row_allowance: int = 100
    #: "openpyxl", or "calamine" for large files (10x faster; its sheet is measured first,
    #: see _check_extent, since it holds the used range as one dense block).
    reader: str = "openpyxl"
    #: Bounds of this spreadsheet in place of BATCH_MAX_BYTES / BATCH_MAX_UNPACKED_BYTES.
    max_bytes: int | None = None
    max_unpacked_bytes: int | None = None
    #: What an upload may be: "xlsx", and "csv" (UTF-8, with or without BOM, or Big5) for
    #: systems that export text only. A zip is read as .xlsx, anything else as CSV.
    formats: tuple[str, ...] = ("xlsx",)

    def _headers_match(self, header: list[str]) -> bool:
        """The header row is the template's, a column's former header allowed."""
        if len(header) != len(self.columns):
            return False
        return all(
            given in (str(column.label), *(str(f) for f in column.former))
            for given, column in zip(header, self.columns, strict=True)
        )

    def headers(self) -> list[str]:
        """The header row, in the current language."""
        return [str(column.label) for column in self.columns]

    def _sheet_name(self) -> str:
        return str(self.title)[:31]  # Excel's limit on a sheet name

    def _too_many_rows(self) -> Exception:
        return self.error(
            gettext(
                "At most %(n)d rows per file, empty rows included: delete the rows below your data "
                "(select them, right-click, Delete) and upload the file again.",
                n=self.max_rows,
            )
        )

    def _not_xlsx(self) -> Exception:
        return self.error(gettext("The file is not an Excel (.xlsx) workbook."))

    def _check_archive(self, data: bytes) -> None:
        """Refuse before parsing: too many bytes, or a zip that would unpack too large."""
        max_bytes = self.max_bytes or bound("BATCH_MAX_BYTES")
        if len(data) > max_bytes:
            raise self.error(
                gettext("The file is larger than %(mb)s MB.", mb=_megabytes(max_bytes))
            )
        try:
            parts = zipfile.ZipFile(io.BytesIO(data)).infolist()
        except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, OSError, EOFError):
            raise self._not_xlsx() from None
        # The declared sizes bound the work: zipfile never inflates a part beyond its size.
        unpacked = sum(part.file_size for part in parts)
        if len(parts) > bound("BATCH_MAX_PARTS") or unpacked > (
            self.max_unpacked_bytes or bound("BATCH_MAX_UNPACKED_BYTES")
        ):
            raise self.error(
                gettext(
                    "Unpacked, the file would take %(mb)s MB, more than a workbook of %(n)d rows "
                    "needs: upload the template with your rows only.",
                    mb=_megabytes(unpacked), n=self.max_rows,
                )
            )  # fmt: skip

    def read_csv_rows(self, data: bytes, budget: Budget | None = None) -> list[Row]:
        """The data rows of a CSV upload, within the same bounds as a workbook's."""
        import csv

        budget = budget or Budget(self.error)
        max_bytes = bound("BATCH_MAX_BYTES")
        if len(data) > max_bytes:
            raise self.error(gettext("The file is larger than %(mb)s MB.", mb=_megabytes(max_bytes)))
        text = None
        for encoding in ("utf-8-sig", "big5"):
            try:
                text = data.decode(encoding)
                break
            except UnicodeDecodeError:
                continue
        if text is None or "\x00" in text:
            raise self.error(gettext("The file is neither an Excel (.xlsx) workbook nor a CSV text file."))
        width = len(self.columns)
        limit = 1 + self.max_rows + self.row_allowance
        try:
            reader = csv.reader(io.StringIO(text, newline=""))
            header = [c.strip() for c in next(reader, [])]
            if not self._headers_match(header[:width] + [""] * (width - len(header[:width]))):
                raise self.error(gettext("The columns do not match the template: download the template and use it."))
            result = []
            for number, raw in enumerate(reader, start=2):
                if number > limit:
                    raise self._too_many_rows()
                if number % 256 == 0:
                    budget.check()
                raw = [c if c.strip() else None for c in raw[:width]] + [None] * (width - len(raw[:width]))
                if all(v is None for v in raw):
                    continue
                result.append(Row(number, raw))
                if len(result) > self.max_rows:
                    raise self._too_many_rows()
        except csv.Error:
            raise self.error(gettext("The file is neither an Excel (.xlsx) workbook nor a CSV text file.")) from None
        if not result:
            raise self.error(gettext("The file has no data rows."))
        return result

    def read_rows(self, data: bytes, budget: Budget | None = None) -> list[Row]:
        """The data rows of an upload, reading no more than the bounds allow (issue 12, class 7)."""
        budget = budget or Budget(self.error)
        if "csv" in self.formats and not data.startswith(b"PK"):
            return self.read_csv_rows(data, budget)
        self._check_archive(data)
        if self.reader == "calamine":
            return self._read_rows_calamine(data, budget)
        width = len(self.columns)
        try:
            workbook = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
            sheet = workbook.worksheets[0]
            declared = sheet.max_row  # the sheet's own dimension, read before any row
        except Exception:  # any failure to open means "not an .xlsx we accept"
            raise self._not_xlsx() from None
        limit = 1 + self.max_rows + self.row_allowance  # header, data rows, a few blank ones
        if isinstance(declared, int) and declared > limit:
            raise self._too_many_rows()
        try:
            # max_row bounds the reading whatever the dimension says; every row counts, blank or not.
            rows = sheet.iter_rows(min_row=1, max_row=limit + 1, max_col=width, values_only=True)
            header = [str(c).strip() if c is not None else "" for c in next(rows, [])]
            if not self._headers_match(header[:width]):
                raise self.error(
                    gettext(
                        "The columns do not match the template: download the template and use it."
                    )
                )
            result = []
            for number, raw in enumerate(rows, start=2):
                if number > limit:
                    raise self._too_many_rows()
                if number % 256 == 0:
                    budget.check()
                raw = list(raw[:width]) + [None] * (width - len(raw))
                if all(v is None or str(v).strip() == "" for v in raw):
                    continue
                result.append(Row(number, raw))
                if len(result) > self.max_rows:
                    raise self._too_many_rows()
        except self.error:
            raise
        except Exception:  # a part that is not the XML it claims to be
            raise self._not_xlsx() from None
        finally:
            workbook.close()
        if not result:
            raise self.error(gettext("The file has no data rows."))
        return result

    def _check_extent(self, data: bytes, budget: Budget) -> None:
        """Every worksheet part measured before calamine reads one: at most the rows the
        file may hold and the template's columns (calamine holds the used range as one dense
        block: a single cell at XFD1048576 would make it 17 billion cells), and no DOCTYPE
        (entity expansion) in any part. Measured with a few regular-expression passes over
        each part (0.4 s for a 10,000-row, 16 MB sheet on a loaded machine, where an expat
        pass took 4.4 s); a sheet whose cells or rows do not all start with their position
        (r="…", as Excel, LibreOffice and the Python writers put it) is measured by expat."""
        limit_rows = 1 + self.max_rows + self.row_allowance
        # A few stray columns beside the template's are read and ignored.
        limit_cols = len(self.columns) + 50
        widest = _column_name(limit_cols).encode()
        try:
            archive = zipfile.ZipFile(io.BytesIO(data))
            parts = [p for p in archive.infolist() if p.filename.endswith(".xml")]
            for part in parts:
                budget.check()
                text = archive.read(part)
                if _DOCTYPE.search(text):
                    raise self._not_xlsx()
                if b"sheetData" not in text:
                    continue
                cells = text.count(b"<c ") + text.count(b"<c>") + text.count(b"<c/>")
                rows = text.count(b"<row ") + text.count(b"<row>") + text.count(b"<row/>")
                if (b"<sheetData" not in text or cells != text.count(b'<c r="')
                        or rows != text.count(b'<row r="')):  # fmt: skip
                    # A prefixed namespace, or a cell or row without its position first.
                    self._check_extent_slowly(data, budget, only=part.filename)
                    continue
                far = re.findall(rb'<c r="[A-Za-z]{1,3}(\d{%d,})"' % len(str(limit_rows)), text)
                numbers = [int(n) for n in (*_ROW_NUMBER.findall(text), *far)]
                if numbers and max(numbers) > limit_rows:
                    raise self._too_many_rows()
                letters = set(re.findall(rb'<c r="([A-Za-z]{%d,})\d' % len(widest), text))
                if any(len(x) > len(widest) or x.upper() > widest for x in letters):
                    raise self.error(
                        gettext("The columns do not match the template: download the template and use it.")
                    )
        except (zipfile.BadZipFile, OSError, EOFError, ValueError, NotImplementedError, zlib.error):
            raise self._not_xlsx() from None

    def _check_extent_slowly(self, data: bytes, budget: Budget, only: str | None = None) -> None:
        """Every worksheet part measured before calamine reads one: at most the rows the
        file may hold and the template's columns (a cell at XFD1048576 would make its
        dense range 17 billion cells). A streaming expat pass over the parts, whose unpacked
        size _check_archive bounded; a DOCTYPE (entity expansion) refuses the file."""
        limit_rows = 1 + self.max_rows + self.row_allowance
        limit_cols = (
            len(self.columns) + 50
        )  # a few stray columns beside the template's are read and ignored
        too_many, too_wide = (
            self._too_many_rows(),
            self.error(
                gettext("The columns do not match the template: download the template and use it.")
            ),
        )

        class Refused(Exception):
            pass

        state = {"sheet": False, "row": 0, "col": 0, "seen": 0}

        def start(name, attrs):
            local = name.rpartition(":")[2]
            if local == "worksheet":
                state["sheet"] = True
            elif not state["sheet"]:
                return
            elif local == "row":
                ref = attrs.get("r")
                state["row"] = (
                    int(ref) if ref and ref.isdigit() and len(ref) < 8 else state["row"] + 1
                )
                state["col"] = 0
                if state["row"] > limit_rows:
                    raise Refused(too_many)
            elif local == "c":
                ref = attrs.get("r") or ""
                letters = ref.rstrip("0123456789")
                if letters and letters.isalpha() and len(letters) <= 3:
                    col = 0
                    for ch in letters.upper():
                        col = col * 26 + ord(ch) - 64
                    digits = ref[len(letters) :]
                    if digits and digits.isdigit() and len(digits) < 8 and int(digits) > limit_rows:
                        raise Refused(too_many)
                    state["col"] = col
                else:
                    state["col"] += 1
                if state["col"] > limit_cols:
                    raise Refused(too_wide)
                state["seen"] += 1
                if state["seen"] % 20000 == 0:
                    budget.check()

        def doctype(*_args):
            raise Refused(self._not_xlsx())

        archive = zipfile.ZipFile(io.BytesIO(data))
        for part in archive.infolist():
            if not part.filename.endswith(".xml") or (only is not None and part.filename != only):
                continue
            state.update(sheet=False, row=0, col=0)
            parser = expat.ParserCreate()
            parser.StartElementHandler = start
            parser.StartDoctypeDeclHandler = doctype
            try:
                with archive.open(part) as stream:
                    while chunk := stream.read(1024 * 1024):
                        parser.Parse(chunk, False)
                    parser.Parse(b"", True)
            except Refused as refused:
                raise refused.args[0] from None
            except (
                expat.ExpatError,
                zipfile.BadZipFile,
                OSError,
                EOFError,
                ValueError,
                NotImplementedError,
            ):
                raise self._not_xlsx() from None

    def _read_rows_calamine(self, data: bytes, budget: Budget) -> list[Row]:
        """read_rows with python-calamine: cell values as stored (a formula's last computed
        value, never the formula), numbers that are whole as int, dates as dates."""
        from python_calamine import CalamineWorkbook

        self._check_extent(data, budget)
        width = len(self.columns)
        try:
            sheet = CalamineWorkbook.from_filelike(io.BytesIO(data)).get_sheet_by_index(0)
            rows = iter(sheet.iter_rows())
            header = [_calamine_value(c) for c in next(rows, [])]
        except Exception:  # any failure to open means "not an .xlsx we accept"
            raise self._not_xlsx() from None
        header = [str(c).strip() if c is not None else "" for c in header]
        if not self._headers_match(header[:width]):
            raise self.error(
                gettext("The columns do not match the template: download the template and use it.")
            )
        result = []
        for number, raw in enumerate(rows, start=2):
            if number % 1024 == 0:
                budget.check()
            raw = [_calamine_value(c) for c in raw[:width]]
            raw += [None] * (width - len(raw))
            if all(v is None or (v.__class__ is str and not v.strip()) for v in raw):
                continue
            result.append(Row(number, raw))
            if len(result) > self.max_rows:
                raise self._too_many_rows()
        if not result:
            raise self.error(gettext("The file has no data rows."))
        return result

    def validate(self, rows: list[Row], rules: RowRules, budget: Budget | None = None) -> None:
        """Every row through the rules, within the time budget; fills values or errors."""
        budget = budget or Budget(self.error)
        keys = [column.key for column in self.columns]
        cells = [dict(zip(keys, row.raw, strict=True)) for row in rows]
        rules.prepare(rows, cells)
        for row, row_cells in zip(rows, cells, strict=True):
            budget.check()
            try:
                rules.check(row, row_cells)
            except rules.row_errors as exc:
                row.errors.append(str(exc))

    def import_rows(self, rows: list[Row], rules: RowRules) -> int:
        """All rows in one transaction; a row refused on writing rolls back every row."""
        try:
            for row in rows:
                try:
                    rules.save(row)
                except rules.row_errors as exc:
                    row.errors.append(str(exc))
                    raise
            rules.before_commit()
            db.session.commit()
        except Exception:
            db.session.rollback()
            raise
        return len(rows)

    def run(self, data: bytes, rules: RowRules) -> Outcome:
        """Read, check every row, and import them all only if none fails (one time budget)."""
        budget = Budget(self.error)
        rows = self.read_rows(data, budget)
        self.validate(rows, rules, budget)
        if any(row.errors for row in rows):
            return Outcome(rows, 0)
        try:
            return Outcome(rows, self.import_rows(rows, rules))
        except rules.row_errors:
            return Outcome(rows, 0)

    def write_template(self, target: str | IO[bytes]) -> None:
        """The empty template: the header row, and the instructions (with the example row) beside it."""
        workbook = xlsxwriter.Workbook(target)
        sheet = workbook.add_worksheet(self._sheet_name())
        bold = workbook.add_format({"bold": True, "bg_color": "#DDEBF7"})
        for col, header in enumerate(self.headers()):
            sheet.write_string(0, col, header, bold)
            sheet.set_column(col, col, 16)
        notes = workbook.add_worksheet(gettext("Instructions")[:31])
        for line, text in enumerate(self.notes):
            notes.write_string(line, 0, str(text))
        # On the instructions sheet, never the data sheet: an example left there would be imported.
        if any(column.example is not None for column in self.columns):
            first = len(self.notes) + 1
            _write_row(notes, first, self.headers(), bold)
            _write_row(notes, first + 1, [column.example for column in self.columns])
        workbook.close()

    def write_report(self, rows: list[Row], target: str | IO[bytes]) -> None:
        """The uploaded rows as they came, with an error column naming each row's problems."""
        workbook = xlsxwriter.Workbook(target, {"strings_to_formulas": False})
        sheet = workbook.add_worksheet(self._sheet_name())
        red = workbook.add_format({"font_color": "#C00000"})
        for col, header in enumerate([*self.headers(), gettext("Errors")]):
            sheet.write_string(0, col, header)
        for index, row in enumerate(rows, start=1):
            _write_row(sheet, index, row.raw)
            sheet.write_string(index, len(self.columns), "；".join(row.errors), red)
        workbook.close()


_DOCTYPE = re.compile(rb"<!DOCTYPE", re.IGNORECASE)
#: The row numbers of a sheet's rows.
_ROW_NUMBER = re.compile(rb'<row r="(\d+)"')


def _column_name(number: int) -> str:
    """Excel's name of a column (1 → A, 27 → AA)."""
    name = ""
    while number:
        number, rest = divmod(number - 1, 26)
        name = chr(65 + rest) + name
    return name


def _calamine_value(value):
    """A calamine cell as openpyxl gives it: None for empty, int for a whole number."""
    if value == "" and value.__class__ is str:
        return None
    if value.__class__ is float and value.is_integer() and abs(value) < 2**53:
        return int(value)
    return value


def _write_row(sheet, index: int, values, style=None) -> None:
    """One row of cells as text or numbers, formula-safe (core/export/xlsx.py)."""
    for col, value in enumerate(values):
        value = cell_text(value)
        (sheet.write_string if isinstance(value, str) else sheet.write_number)(
            index, col, value, style
        )


#: xlsx's MIME type (the error reports are workbooks).
_XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


@dataclass(frozen=True)
class ErrorReports:
    """The marked copy of a refused batch (its rows with an error column), kept for the user
    who uploaded it and served to them only — one helper for every batch upload (visits, HIS
    orders, assessments). Stored through core/storage.py, so any host serves it."""

    #: The storage kind ("batch-reports", "his-reports", …).
    kind: str

    def save(self, sheet: Spreadsheet, rows: list[Row]) -> str:
        """Write `rows` with their errors through `sheet`; the report's name, "<user id>-<hex>.xlsx"."""
        import uuid

        from flask import g

        from core.storage import storage

        buffer = io.BytesIO()
        sheet.write_report(rows, buffer)
        name = f"{g.user.id}-{uuid.uuid4().hex}.xlsx"
        db.session.rollback()  # nothing of the refused batch is kept: only its report
        storage().put(self.kind, buffer.getvalue(), name, _XLSX)
        db.session.commit()
        return name

    def send(self, name: str, download_name: str):
        """The report `name` if it is the signed-in user's own; 404 for any other name."""
        from flask import abort, g

        from core.storage import send_stored, storage_key

        if not re.fullmatch(r"\d+-[0-9a-f]{32}\.xlsx", name or "") or not name.startswith(f"{g.user.id}-"):
            abort(404)
        return send_stored(storage_key(self.kind, name), download_name, mimetype=_XLSX)
