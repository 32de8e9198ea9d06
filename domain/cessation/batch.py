"""Batch upload of visits (.xlsx in the published template): validate every row first;
import all rows in one transaction only if none fails, else hand back the marked file."""

from __future__ import annotations

import datetime as dt
import io
import math
import time
import zipfile
from dataclasses import dataclass, field

from flask import current_app, has_app_context
from flask_babel import gettext
from flask_babel import lazy_gettext as _l
from openpyxl import load_workbook
from sqlalchemy import select

from core import clock
from core.actor import current_actor
from core.data.datamodel import ScopedInterface
from core.data.rules import RuleError
from core.dates import DateFormatError, parse_date
from core.errors import UserError
from core.extensions import db
from core.validators import is_valid_personal_id, normalize_id
from domain.cessation.visits import MIN_DAYS_APART, VisitRuleError, check_visit, enforce_on_write
from domain.registry.persons import register_person
from models.cessation.visit import Quitter, Visit
from models.registry.institution import Institution
from models.registry.practitioner import Practitioner, ServiceAssignment

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
#: Rows read beyond MAX_ROWS data rows and the header, blank or not, before a file is
#: refused: a few blank rows after the data are harmless, three million are not.
ROW_ALLOWANCE = 100
#: Defaults of the upload bounds (config: BATCH_MAX_BYTES, BATCH_MAX_UNPACKED_BYTES,
#: BATCH_MAX_PARTS, BATCH_TIME_BUDGET). A 5,000-row file in the template is about 250 KB
#: packed and 3 MB unpacked.
DEFAULT_BOUNDS = {
    "BATCH_MAX_BYTES": 2 * 1024 * 1024,
    "BATCH_MAX_UNPACKED_BYTES": 20 * 1024 * 1024,
    "BATCH_MAX_PARTS": 100,
    "BATCH_TIME_BUDGET": 20,
}


class BatchError(UserError):
    """The file as a whole cannot be read (not an .xlsx, wrong headers, too many rows)."""

    status = 400


def bound(name: str):
    if has_app_context():
        return current_app.config.get(name, DEFAULT_BOUNDS[name])
    return DEFAULT_BOUNDS[name]


def _megabytes(n: int) -> str:
    return f"{n / (1024 * 1024):.1f}".removesuffix(".0")


class Budget:
    """The time one upload may take to read and check (BATCH_TIME_BUDGET seconds)."""

    def __init__(self, seconds: float | None = None):
        self.seconds = bound("BATCH_TIME_BUDGET") if seconds is None else seconds
        self.until = time.monotonic() + self.seconds

    def check(self) -> None:
        if time.monotonic() > self.until:
            raise BatchError(
                gettext(
                    "Checking the file took longer than %(s)d seconds, so nothing was imported: "
                    "split it into smaller files.",
                    s=math.ceil(self.seconds),
                )
            )


@dataclass
class Row:
    """One data row: its number in the sheet, raw values, parsed values and problems."""

    number: int
    raw: list
    values: dict = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)


def headers() -> list[str]:
    return [str(label) for _, label in COLUMNS]


def _too_many_rows() -> BatchError:
    return BatchError(
        gettext(
            "At most %(n)d rows per file, empty rows included: delete the rows below your data "
            "(select them, right-click, Delete) and upload the file again.",
            n=MAX_ROWS,
        )
    )


def _check_archive(data: bytes) -> None:
    """Refuse before parsing: too many bytes, or a zip that would unpack too large."""
    max_bytes = bound("BATCH_MAX_BYTES")
    if len(data) > max_bytes:
        raise BatchError(gettext("The file is larger than %(mb)s MB.", mb=_megabytes(max_bytes)))
    try:
        parts = zipfile.ZipFile(io.BytesIO(data)).infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, OSError, EOFError):
        raise BatchError(gettext("The file is not an Excel (.xlsx) workbook.")) from None
    # The declared sizes bound the work: zipfile never inflates a part beyond its size.
    unpacked = sum(part.file_size for part in parts)
    if len(parts) > bound("BATCH_MAX_PARTS") or unpacked > bound("BATCH_MAX_UNPACKED_BYTES"):
        raise BatchError(
            gettext(
                "Unpacked, the file would take %(mb)s MB, more than a workbook of %(n)d rows "
                "needs: upload the template with your rows only.",
                mb=_megabytes(unpacked), n=MAX_ROWS,
            )
        )  # fmt: skip


def read_rows(data: bytes, budget: Budget | None = None) -> list[Row]:
    """The data rows of an upload, reading no more than the bounds allow (issue 12, class 7)."""
    budget = budget or Budget()
    _check_archive(data)
    try:
        workbook = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
        sheet = workbook.worksheets[0]
        declared = sheet.max_row  # the sheet's own dimension, read before any row
    except Exception:  # any failure to open means "not an .xlsx we accept"
        raise BatchError(gettext("The file is not an Excel (.xlsx) workbook.")) from None
    limit = 1 + MAX_ROWS + ROW_ALLOWANCE  # header, data rows, a few blank ones
    if isinstance(declared, int) and declared > limit:
        raise _too_many_rows()
    try:
        # max_row bounds the reading whatever the dimension says; every row counts, blank or not.
        rows = sheet.iter_rows(min_row=1, max_row=limit + 1, max_col=len(COLUMNS), values_only=True)
        header = [str(c).strip() if c is not None else "" for c in next(rows, [])]
        if header[: len(COLUMNS)] != headers():
            raise BatchError(gettext("The columns do not match the template: download the template and use it."))
        result = []
        for number, raw in enumerate(rows, start=2):
            if number > limit:
                raise _too_many_rows()
            if number % 256 == 0:
                budget.check()
            raw = list(raw[: len(COLUMNS)]) + [None] * (len(COLUMNS) - len(raw))
            if all(v is None or str(v).strip() == "" for v in raw):
                continue
            result.append(Row(number, raw))
            if len(result) > MAX_ROWS:
                raise _too_many_rows()
    except BatchError:
        raise
    except Exception:  # a part that is not the XML it claims to be
        raise BatchError(gettext("The file is not an Excel (.xlsx) workbook.")) from None
    finally:
        workbook.close()
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


def _cell_text(value):
    """A cell as text: Excel gives numbers for digits-only cells (an NHI code, a name)."""
    if value is None:
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value)


def _cell_int(value):
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, bool):
        raise ValueError(value)
    if isinstance(value, float):
        if not value.is_integer():
            raise ValueError(value)
        return int(value)
    if isinstance(value, int):
        return value
    import unicodedata

    text = unicodedata.normalize("NFKC", str(value)).strip()
    try:
        return int(text)
    except ValueError:
        number = float(text)  # "14.0"; a ValueError for anything else
        if not number.is_integer():  # 14.5, inf, nan
            raise ValueError(text) from None
        return int(number)


#: Column of the file → (model, column) whose field rule checks it, and how a cell is read.
FIELD_RULES = {
    "nhi_code": (Institution, "nhi_code", _cell_text),
    "practitioner_id": (Practitioner, "national_id", _cell_text),
    "quitter_id": (Quitter, "national_id", _cell_text),
    "quitter_name": (Quitter, "name", _cell_text),
    "sex": (Quitter, "sex", None),
    "birth_date": (Quitter, "birth_date", None),
    "visit_date": (Visit, "visit_date", None),
    "medication_name": (Visit, "medication_name", _cell_text),
    "medication_days": (Visit, "medication_days", _cell_int),
    "education_minutes": (Visit, "education_minutes", _cell_int),
}


def check_fields(v: dict) -> list[str]:
    """The field rules (core/data/rules.py) on one row: normalises `v` in place, returns the
    problems as "<column header>: <message>" (every field, not only the first)."""
    from core.data.rules import field_rules

    labels = dict(COLUMNS)
    problems = []
    for key, (model, column, convert) in FIELD_RULES.items():
        value = v.get(key)
        if isinstance(value, str) and not value.strip():
            value = None
        try:
            if key == "sex" and value is not None:
                text = str(value).strip()
                value = {"男": "M", "女": "F"}.get(text, text.upper())
            elif key in ("birth_date", "visit_date") and value is not None:
                value = _date(value)
            elif convert is not None:
                value = convert(value)
        except DateFormatError as exc:
            problems.append(gettext("%(column)s: %(message)s", column=labels[key], message=str(exc)))
            continue
        except (ValueError, OverflowError):
            problems.append(gettext("%(column)s: %(message)s", column=labels[key],
                                    message=gettext("%(field)s must be a whole number.", field=labels[key])))  # fmt: skip
            continue
        rule = field_rules(model)[column]
        if value is None and key in ("sex", "birth_date"):
            v[key] = None  # needed for a new quitter only: the row check below says so
            continue
        try:
            v[key] = rule.clean(value)
        except RuleError as exc:
            problems.append(gettext("%(column)s: %(message)s", column=labels[key], message=exc.message))
    return problems


def validate(rows: list[Row], budget: Budget | None = None) -> None:
    """Fill row.values and row.errors; scope, C1–C4 as on the form, and C4 within the file."""
    budget = budget or Budget()
    institutions = ScopedInterface(Institution)
    seen: dict[str, list[tuple[dt.date, int]]] = {}
    for row in rows:
        budget.check()
        v = dict(zip([key for key, _ in COLUMNS], row.raw, strict=True))
        problems = check_fields(v)
        if problems:
            row.errors.extend(problems)
            continue
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
            # Any row of the ID will do for the 5-day rule, which spans them (domain/cessation/visits.py).
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
                if abs((other_date - visit_date).days) < MIN_DAYS_APART:
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
                entered_at=clock.utc_naive(), entered_by_id=current_actor().id,
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
