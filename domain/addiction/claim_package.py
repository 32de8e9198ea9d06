"""The claim's sign-off package (A11, 陳核用): the case list and detail lines of one frozen
snapshot (ClaimSubmission) as a PDF and as an Excel workbook, both in zh_TW whatever the
interface language, ROC dates, the snapshot's sha256 on every page and sheet.

Both are drawn from the snapshot's JSON only, never from the live claim: printing the same
snapshot twice gives the same lines (and, reportlab's `invariant=1`, the same PDF bytes).
The PDF uses the CID font MSung-Light, like the consent form (domain/addiction/consent.py).
"""

from __future__ import annotations

import io
from collections import OrderedDict

from flask_babel import force_locale, gettext

from core.export.xlsx import write_xlsx
from domain.addiction.claims import snapshot_data
from models.addiction.claim import ClaimSubmission

FONT = "MSung-Light"
#: Lines per PDF page (A4 landscape, 11 pt rows).
ROWS_PER_PAGE = 32


def _texts() -> dict:
    with force_locale("zh_Hant_TW"):
        return {
            "title": gettext("Subsidy claim: case list and details (for internal sign-off)"),
            "institution": gettext("Institution"), "scheme": gettext("Subsidy scheme"),
            "period": gettext("Claim period"), "snapshot": gettext("Snapshot"), "hash": "SHA-256",
            "page": gettext("Page %(n)d of %(total)d"),
            "columns": [gettext("No."), gettext("Case no."), gettext("Person's name"), gettext("ID (masked)"),
                        gettext("Date of service"), gettext("Subsidy item"), gettext("Order code"),
                        gettext("Unit amount (NT$)"), gettext("Amount claimed (NT$)")],
            "cases": gettext("Case list"), "case_total": gettext("Lines"),
            "totals": gettext("Totals: %(cases)d cases, %(lines)d lines, NT$%(amount)s"),
            "signatures": [gettext("Officer in charge"), gettext("Head of unit"), gettext("Head of institution")],
            "submitted": gettext("Submission %(n)d"), "printed": gettext("Printed for sign-off %(n)d"),
            "details": gettext("Details"),
        }  # fmt: skip


def _label(snapshot: ClaimSubmission, t: dict) -> str:
    key = "submitted" if snapshot.kind == "submission" else "printed"
    return t[key] % {"n": snapshot.number}


def _cases(lines: list[dict]) -> list[tuple]:
    cases: OrderedDict = OrderedDict()
    for d in sorted(lines, key=lambda d: d["case"]):
        row = cases.setdefault(d["case"], [d["case"], d["name"], d["id"], 0, 0])
        row[3] += 1
        row[4] += d["amount"]
    return [tuple(v) for v in cases.values()]


def package_pdf(snapshot: ClaimSubmission) -> bytes:
    """The PDF: a header and the hash on every page, the lines, totals and signature boxes."""
    from reportlab.lib.pagesizes import A4, landscape
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.cidfonts import UnicodeCIDFont
    from reportlab.pdfgen import canvas

    if FONT not in pdfmetrics.getRegisteredFontNames():
        pdfmetrics.registerFont(UnicodeCIDFont(FONT))
    t = _texts()
    data = snapshot_data(snapshot)
    head, lines = data["header"], data["lines"]
    width, height = landscape(A4)
    pages = max(1, -(-len(lines) // ROWS_PER_PAGE)) + 1  # the lines, then the case list and signatures
    buf = io.BytesIO()
    pdf = canvas.Canvas(buf, pagesize=(width, height), invariant=1)
    pdf.setTitle(t["title"])
    pdf.setSubject(f"{head['institution']} {head['scheme_name']} {head['period']}")
    pdf.setKeywords(snapshot.sha256)
    pdf.setCreator("backoffice")
    xs = [30, 62, 120, 200, 290, 370, 560, 650, 730]

    def page_head(number: int) -> float:
        pdf.setFont(FONT, 15)
        pdf.drawCentredString(width / 2, height - 36, t["title"])
        pdf.setFont(FONT, 10)
        pdf.drawString(30, height - 58, f"{t['institution']}：{head['institution']}（{head['nhi_code']}）")
        pdf.drawString(30, height - 72, f"{t['scheme']}：{head['scheme_name']}（{head['scheme']}）　"
                                        f"{t['period']}：{head['period']}（{head['from']}–{head['to']}）")
        pdf.drawString(30, height - 86, f"{t['snapshot']}：{_label(snapshot, t)}　{t['hash']}：{snapshot.sha256}")
        pdf.drawRightString(width - 30, 20, t["page"] % {"n": number, "total": pages})
        pdf.setFont(FONT, 7)
        pdf.drawString(30, 20, f"{t['hash']} {snapshot.sha256}")
        return height - 110

    for page_no in range(pages - 1):
        y = page_head(page_no + 1)
        pdf.line(30, y - 4, width - 30, y - 4)
        # One text object per page (a drawString per cell built 190,000 of them: bench/claims.py).
        text = pdf.beginText()
        text.setFont(FONT, 9)
        for x, cell in zip(xs, t["columns"], strict=True):
            text.setTextOrigin(x, y)
            text.textOut(cell)
        y -= 17
        start = page_no * ROWS_PER_PAGE
        for n, d in enumerate(lines[start:start + ROWS_PER_PAGE], start=start + 1):
            cells = (str(n), str(d["case"]), d["name"], d["id"], d["roc"], f"{d['item']} {d['item_name']}"[:22],
                     d["order"], f"{d['unit']:,}", f"{d['amount']:,}")  # fmt: skip
            for x, cell in zip(xs, cells, strict=True):
                text.setTextOrigin(x, y)
                text.textOut(cell)
            y -= 14
        pdf.drawText(text)
        pdf.showPage()
    y = page_head(pages)
    pdf.setFont(FONT, 11)
    pdf.drawString(30, y, t["totals"] % {"cases": head["cases"], "lines": head["lines"], "amount": f"{head['total']:,}"})
    y -= 30
    box_w = (width - 60 - 40) / 3
    for n, label in enumerate(t["signatures"]):
        x = 30 + n * (box_w + 20)
        pdf.rect(x, y - 90, box_w, 90)
        pdf.drawString(x + 8, y - 16, label)
    pdf.showPage()
    pdf.save()
    return buf.getvalue()


def package_xlsx(snapshot: ClaimSubmission) -> str:
    """The workbook (a temporary file's path): title row with the hash, then every line and
    the totals; one sheet, so every printed page of it carries the title and its hash."""
    t = _texts()
    data = snapshot_data(snapshot)
    head, lines = data["header"], data["lines"]
    title = (f"{t['title']} {head['institution']}（{head['nhi_code']}） {head['scheme_name']} {head['period']} "
             f"{_label(snapshot, t)} {t['hash']} {snapshot.sha256}")  # fmt: skip
    rows = [(n, d["case"], d["name"], d["id"], d["roc"], f"{d['item']} {d['item_name']}", d["order"], d["unit"],
             d["amount"]) for n, d in enumerate(lines, start=1)]  # fmt: skip
    rows.append(("", "", "", "", "", "", "", "", head["total"]))
    rows.append((t["totals"] % {"cases": head["cases"], "lines": head["lines"], "amount": f"{head['total']:,}"},))
    rows.append((f"{t['hash']} {snapshot.sha256}",))
    path, _count = write_xlsx(t["columns"], rows, sheet_name=t["details"][:31], title=title)
    return path


__all__ = ["package_pdf", "package_xlsx"]
