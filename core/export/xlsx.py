"""Excel export shared by every list: scoped, filtered, streamed, formula-safe."""

from __future__ import annotations

import datetime as dt
import os
import re
import tempfile
from collections.abc import Callable, Iterable, Iterator
from urllib.parse import quote

import xlsxwriter

from core.dates import ROC_OFFSET, TAIPEI, to_roc

#: A cell starting with one of these is read as a formula by spreadsheet programs.
_FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def neutralise(value: str) -> str:
    """Defuse formula injection: a leading apostrophe makes Excel keep the text as text."""
    if value and value.startswith(_FORMULA_PREFIXES):
        return "'" + value
    return value


def cell_text(value) -> str | int | float:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "是" if value else "否"
    if isinstance(value, int | float):
        return value
    if isinstance(value, dt.date | dt.datetime):
        return to_roc(value)
    return neutralise(str(value))


def write_xlsx(
    headers: list[str],
    rows: Iterable[tuple],
    formatters: list[Callable | None] | None = None,
    sheet_name: str = "Sheet1",
    max_rows: int | None = None,
    progress=None,
    title: str | None = None,
) -> tuple[str, int]:
    """Write rows into a temporary .xlsx in constant memory; returns (path, row count).

    A `title` (the list and its filter or month, as a person reads them) goes in the first
    row, above the headers, so a printed or forwarded file says what it holds.
    """
    fd, path = tempfile.mkstemp(suffix=".xlsx", prefix="export-")
    os.close(fd)
    workbook = xlsxwriter.Workbook(
        path, {"constant_memory": True, "strings_to_formulas": False, "strings_to_urls": False}
    )
    sheet = workbook.add_worksheet(sheet_name[:31])
    bold = workbook.add_format({"bold": True})
    top = 0
    if title:
        sheet.write_string(0, 0, neutralise(str(title))[:32767], bold)
        top = 1
    for col, header in enumerate(headers):
        sheet.write_string(top, col, neutralise(str(header)), bold)
    converters = [_converter(f) for f in (formatters or [None] * len(headers))]
    write_string, write_number = sheet.write_string, sheet.write_number
    count = 0
    for count, row in enumerate(_limit(rows, max_rows), start=1):
        line = count + top
        for col, value in enumerate(row):
            value = converters[col](value)
            if value.__class__ is str:
                if value:
                    write_string(line, col, value)
            else:
                write_number(line, col, value)
        if progress is not None and count % 5000 == 0:
            progress(count)
    sheet.freeze_panes(top + 1, 0)
    workbook.close()
    return path, count


def _converter(formatter: Callable | None) -> Callable:
    """One function per column: the view's formatter (if any), then cell_text."""
    if formatter is None:
        return cell_text
    return lambda value: cell_text(formatter(value))


def _limit(rows: Iterable[tuple], max_rows: int | None) -> Iterator[tuple]:
    for index, row in enumerate(rows):
        if max_rows is not None and index >= max_rows:
            break
        yield row


#: Characters no file name may hold on Windows, macOS or in a Content-Disposition header.
_UNSAFE_NAME = re.compile(r'[\\/:*?"<>|\x00-\x1f\x7f;]+')


def export_file_name(title: str, moment: dt.datetime | None = None) -> str:
    """戒菸者就醫資料-1151201-1707.xlsx: the list's zh_TW title, ROC date and Taipei HHMM."""
    if moment is None:
        from core import clock

        moment = clock.now()
    moment = (moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)).astimezone(TAIPEI)
    name = _UNSAFE_NAME.sub("_", str(title)).strip(" ._") or "export"
    stamp = f"{moment.year - ROC_OFFSET}{moment:%m%d}-{moment:%H%M}"
    return f"{name[:80]}-{stamp}.xlsx"


XLSX_MIMETYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def send_xlsx(path: str, name: str):
    """Send a temporary workbook and remove it once the response is done."""
    from flask import after_this_request, send_file

    @after_this_request
    def _cleanup(response):
        try:
            os.remove(path)
        except OSError:
            pass
        return response

    response = send_file(path, as_attachment=True, download_name=name, mimetype=XLSX_MIMETYPE)
    # RFC 5987/6266: browsers read filename* (UTF-8, percent-encoded); the plain filename is
    # for old clients. Werkzeug's fallback drops every CJK character ("-1151201-1707.xlsx"):
    # keep the stamp under a readable ASCII name instead.
    stamp = re.search(r"-\d{7}-\d{4}\.xlsx$", name)
    fallback = f"export{stamp.group(0)}" if stamp else "export.xlsx"
    if not name.isascii():
        response.headers["Content-Disposition"] = (
            f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(name, safe='')}"
        )
    return response
