"""The blank account application form (帳號申請單): a printable A4 sheet to fill in, sign, seal
and scan as the PDF the online application asks for."""

from __future__ import annotations

import io

import xlsxwriter
from flask_babel import gettext


def blank_application_form(fields: list[tuple[str, str]]) -> bytes:
    """One A4 sheet: a title, one row per (label, hint) to fill in by hand, and the boxes for
    the applicant's and the supervisor's signatures and the institution's seal."""
    buffer = io.BytesIO()
    workbook = xlsxwriter.Workbook(buffer, {"in_memory": True, "strings_to_formulas": False})
    sheet = workbook.add_worksheet(gettext("Account application form")[:31])
    title = workbook.add_format({"bold": True, "font_size": 16, "align": "center", "valign": "vcenter"})
    label = workbook.add_format({"bold": True, "border": 1, "valign": "vcenter", "text_wrap": True, "bg_color": "#F2F2F2"})
    blank = workbook.add_format({"border": 1, "valign": "vcenter", "text_wrap": True, "font_color": "#808080", "font_size": 9})
    note = workbook.add_format({"text_wrap": True, "valign": "top", "font_size": 10})
    sheet.set_paper(9)  # A4
    sheet.set_portrait()
    sheet.fit_to_pages(1, 1)
    sheet.set_margins(left=0.6, right=0.6, top=0.6, bottom=0.6)
    sheet.set_column(0, 0, 24)
    sheet.set_column(1, 3, 22)
    sheet.merge_range(0, 0, 0, 3, gettext("Account application form"), title)
    sheet.set_row(0, 36)
    row = 2
    for text, hint in fields:
        sheet.set_row(row, 30)
        sheet.write_string(row, 0, text, label)
        sheet.merge_range(row, 1, row, 3, hint, blank)
        row += 1
    row += 1
    for text in (
        gettext("Applicant's signature"),
        gettext("Supervisor's signature"),
        gettext("Institution's seal"),
    ):
        sheet.set_row(row, 60)
        sheet.write_string(row, 0, text, label)
        sheet.merge_range(row, 1, row, 3, "", blank)
        row += 1
    sheet.set_row(row, 30)
    sheet.write_string(row, 0, gettext("Date"), label)
    sheet.merge_range(row, 1, row, 3, gettext("ROC year / month / day"), blank)
    row += 2
    sheet.merge_range(
        row, 0, row + 2, 3,
        gettext("Print this form, fill it in, have it signed by your supervisor and sealed by your institution, scan it as a PDF and attach it to the online application."),
        note,
    )  # fmt: skip
    sheet.print_area(0, 0, row + 2, 3)
    workbook.close()
    return buffer.getvalue()
