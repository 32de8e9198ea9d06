"""Batch upload of visits (.xlsx in the published template): validate every row first;
import all rows in one transaction only if none fails, else hand back the marked file."""

from __future__ import annotations

import datetime as dt
import io
from dataclasses import dataclass, field

from flask import g
from flask_babel import gettext
from flask_babel import lazy_gettext as _l
from openpyxl import load_workbook
from sqlalchemy import select

from core import clock
from core.dates import DateFormatError, parse_date
from core.extensions import db
from core.interface import ScopedInterface
from core.persons import register_person
from core.validators import is_valid_personal_id, normalize_id
from core.visits import VisitRuleError, check_visit, enforce_on_write
from models.institution import Institution
from models.practitioner import Practitioner, ServiceAssignment
from models.visit import Quitter, Visit

#: The template's columns, in order (zh_TW headers are the gettext of these).
COLUMNS = [
    ("nhi_code", _l("NHI institution code")),
    ("practitioner_id", _l("Practitioner's national ID")),
    ("quitter_id", _l("Quitter's national ID")),
    ("quitter_name", _l("Quitter's name")),
    ("sex", _l("Sex (M/F)")),
    ("birth_date", _l("Birth date")),
    ("visit_date", _l("Visit date")),
    ("medication_name", _l("Medication")),
    ("medication_days", _l("Medication days")),
    ("education_minutes", _l("Education minutes")),
]
MAX_ROWS = 5000


class BatchError(Exception):
    """The file as a whole cannot be read (not an .xlsx, wrong headers, too many rows)."""


@dataclass
class Row:
    """One data row: its number in the sheet, raw values, parsed values and problems."""

    number: int
    raw: list
    values: dict = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)


def headers() -> list[str]:
    return [str(label) for _, label in COLUMNS]


def read_rows(data: bytes) -> list[Row]:
    try:
        workbook = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception:  # any failure to open means "not an .xlsx we accept"
        raise BatchError(gettext("The file is not an Excel (.xlsx) workbook.")) from None
    sheet = workbook.worksheets[0]
    rows = sheet.iter_rows(values_only=True)
    header = [str(c).strip() if c is not None else "" for c in next(rows, [])]
    if header[: len(COLUMNS)] != headers():
        raise BatchError(gettext("The columns do not match the template: download the template and use it."))
    result = []
    for number, raw in enumerate(rows, start=2):
        raw = list(raw[: len(COLUMNS)]) + [None] * (len(COLUMNS) - len(raw))
        if all(v is None or str(v).strip() == "" for v in raw):
            continue
        result.append(Row(number, raw))
        if len(result) > MAX_ROWS:
            raise BatchError(gettext("At most %(n)d rows per file.", n=MAX_ROWS))
    if not result:
        raise BatchError(gettext("The file has no data rows."))
    return result


def _date(value) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    return parse_date(str(value))


def _int(value, label) -> int | None:
    if value is None or str(value).strip() == "":
        return None
    try:
        number = int(float(str(value).strip()))
    except ValueError:
        raise VisitRuleError(gettext("%(field)s must be a whole number.", field=label)) from None
    return number


def validate(rows: list[Row]) -> None:
    """Fill row.values and row.errors; scope, C1–C4 as on the form, and C4 within the file."""
    institutions = ScopedInterface(Institution)
    seen: dict[str, list[tuple[dt.date, int]]] = {}
    for row in rows:
        v = dict(zip([key for key, _ in COLUMNS], row.raw, strict=True))
        try:
            code = str(v["nhi_code"] or "").strip()
            institution = institutions.scoped_query().filter(Institution.nhi_code == code).one_or_none()
            if institution is None:
                raise VisitRuleError(gettext("Institution %(code)s is not one of yours.", code=code))
            practitioner_id = normalize_id(v["practitioner_id"])
            # Only practitioners who serve (or served) at the row's institution: whether an
            # ID is registered elsewhere is none of the file's business (issue 12, class 3).
            practitioner = db.session.scalar(
                select(Practitioner)
                .join(ServiceAssignment, ServiceAssignment.practitioner_id == Practitioner.id)
                .where(Practitioner.national_id == practitioner_id,
                       ServiceAssignment.institution_id == institution.id)
                .limit(1)
            )  # fmt: skip
            if practitioner is None:
                raise VisitRuleError(gettext("No practitioner with this national ID serves at this institution."))
            quitter_id = normalize_id(v["quitter_id"])
            if not is_valid_personal_id(quitter_id):
                raise VisitRuleError(gettext("Invalid national ID or resident certificate number: check the letters and the check digit."))
            name = str(v["quitter_name"] or "").strip()
            sex = str(v["sex"] or "").strip().upper()[:1]
            sex = {"男": "M", "女": "F"}.get(str(v["sex"] or "").strip(), sex)
            # Every row gives the quitter's identity data, known person or not: a row that
            # could omit them for a registered ID would tell which IDs are registered.
            if not name or sex not in ("M", "F") or v["birth_date"] in (None, ""):
                raise VisitRuleError(gettext("Every row needs the quitter's name, sex (M/F) and birth date."))
            birth_date = _date(v["birth_date"])
            # Any row of the ID will do for the 5-day rule, which spans them (core/visits.py).
            quitter = db.session.scalar(
                select(Quitter).where(Quitter.national_id == quitter_id).limit(1)
            )
            visit_date = _date(v["visit_date"])
            medication_days = _int(v["medication_days"], gettext("Medication days"))
            education_minutes = _int(v["education_minutes"], gettext("Education minutes"))
            check_visit(
                institution_id=institution.id,
                practitioner_id=practitioner.id,
                quitter_id=quitter.id if quitter else None,
                visit_date=visit_date,
                medication_days=medication_days,
                education_minutes=education_minutes,
            )
            for other_date, other_row in seen.get(quitter_id, []):
                if abs((other_date - visit_date).days) < 5:
                    raise VisitRuleError(
                        gettext("Less than 5 days from row %(row)d of this file (the same quitter).", row=other_row)
                    )
            seen.setdefault(quitter_id, []).append((visit_date, row.number))
            row.values = {
                "institution": institution, "practitioner": practitioner, "quitter": quitter,
                "quitter_id": quitter_id, "name": name, "sex": sex,
                "birth_date": birth_date,
                "visit_date": visit_date, "medication_name": (str(v["medication_name"]).strip() or None) if v["medication_name"] else None,
                "medication_days": medication_days, "education_minutes": education_minutes,
            }  # fmt: skip
        except (VisitRuleError, DateFormatError) as exc:
            row.errors.append(str(exc))


def import_rows(rows: list[Row]) -> int:
    """All rows in one transaction, each re-checked under its quitter lock; all or nothing."""
    try:
        for row in rows:
            v = row.values
            identity = {"name": v["name"], "sex": v["sex"], "birth_date": v["birth_date"]}
            quitter = register_person(
                Quitter, v["quitter_id"], identity, [v["institution"].id], source="visit"
            )
            visit = Visit(
                institution_id=v["institution"].id, practitioner_id=v["practitioner"].id,
                quitter_id=quitter.id, visit_date=v["visit_date"], medication_name=v["medication_name"],
                medication_days=v["medication_days"], education_minutes=v["education_minutes"],
                entered_at=clock.utc_naive(), entered_by_id=getattr(g.get("user"), "id", None),
            )  # fmt: skip
            try:
                enforce_on_write(visit)
            except VisitRuleError as exc:
                row.errors.append(str(exc))
                raise
        ScopedInterface(Visit).enforce_scope()
        db.session.commit()
    except Exception:
        db.session.rollback()
        raise
    return len(rows)
