"""Batch upload of visits (.xlsx in the published template): the template's columns and
the visit row rules (scope, C1–C4 as on the form, C4 within the file). Reading, the
all-or-nothing import and the marked file handed back are core/imports.py's."""

from __future__ import annotations

import datetime as dt

from flask_babel import gettext
from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from core import clock
from core.actor import current_actor
from core.data.datamodel import ScopedInterface
from core.data.rules import RuleError
from core.dates import DateFormatError, parse_date
from core.errors import UserError
from core.extensions import db
from core.imports import Column, Outcome, Row, RowRules, Spreadsheet
from core.validators import is_valid_personal_id, normalize_id
from domain.cessation.visits import MIN_DAYS_APART, VisitRuleError, check_visit, enforce_on_write
from domain.registry.persons import register_person
from models.cessation.visit import Quitter, Visit
from models.registry.institution import Institution
from models.registry.practitioner import Practitioner, ServiceAssignment

#: The template's columns, in order (zh_TW headers are the gettext of these).
COLUMNS = [
    Column("nhi_code", _l("NHI institution code")),
    Column("practitioner_id", _l("Practitioner's national ID")),
    Column("quitter_id", _l("Quitter's national ID")),
    Column("quitter_name", _l("Quitter's name")),
    Column("sex", _l("Sex (male or female)"), former=(_l("Sex (M/F)"),)),
    Column("birth_date", _l("Birth date")),
    Column("visit_date", _l("Visit date")),
    Column("medication_name", _l("Medication")),
    Column("medication_days", _l("Medication days")),
    Column("education_minutes", _l("Education minutes")),
]
TEMPLATE_NOTES = [
    _l("One visit per row, from the second row on; keep the header row as it is."),
    _l("Dates: ROC (114/04/01 or 114/4/1) or ISO (2025-04-01)."),
    _l("Give medication (name and days), education (minutes) or both."),
    _l("Medication: a medicine of the form's list, by its Chinese or its English name (e.g. Nicotine patch)."),
    _l("A new quitter needs name, sex (male or female) and birth date; a known one only the national ID and name."),
    _l("The same rules as the form apply: your own institutions, the entry deadline, the practitioner's assignment and the 5-day rule."),
    _l("If any row fails, nothing is imported: you get the file back with an error column."),
]
MAX_ROWS = 5000
#: Blank or not, rows read beyond MAX_ROWS and the header before a file is refused.
ROW_ALLOWANCE = 100


class BatchError(UserError):
    """The file as a whole cannot be read (not an .xlsx, wrong headers, too many rows)."""

    status = 400


def spreadsheet() -> Spreadsheet:
    """The visit template; built at each call, so the row limits above are read as they stand."""
    return Spreadsheet(
        COLUMNS, _l("Visit records"), BatchError, TEMPLATE_NOTES, max_rows=MAX_ROWS, row_allowance=ROW_ALLOWANCE
    )


def headers() -> list[str]:
    """The template's header row, in the current language."""
    return spreadsheet().headers()


def read_rows(data: bytes) -> list[Row]:
    """The data rows of an uploaded visit file, within the upload bounds."""
    return spreadsheet().read_rows(data)


def import_visits(data: bytes) -> Outcome:
    """Check every row of the file; import them all only if none fails."""
    return spreadsheet().run(data, VisitRows())


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

    labels = {column.key: column.label for column in COLUMNS}
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


class VisitRows(RowRules):
    """The visit row rules: scope, C1–C4 as on the form, and C4 within the file."""

    row_errors = (VisitRuleError, DateFormatError)

    def __init__(self):
        self.institutions = ScopedInterface(Institution)
        #: Quitter's ID → (visit date, row number) of the rows checked so far (C4 within the file).
        self.seen: dict[str, list[tuple[dt.date, int]]] = {}

    def check(self, row: Row, cells: dict) -> None:
        """Fill row.values, or row.errors with every field's problem, or raise the row's refusal."""
        v = cells
        problems = check_fields(v)
        if problems:
            row.errors.extend(problems)
            return
        code = str(v["nhi_code"] or "").strip()
        institution = self.institutions.scoped_query().filter(Institution.nhi_code == code).one_or_none()
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
            raise VisitRuleError(gettext("Every row needs the quitter's name, sex (male or female) and birth date."))
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
        for other_date, other_row in self.seen.get(quitter_id, []):
            if abs((other_date - visit_date).days) < MIN_DAYS_APART:
                raise VisitRuleError(
                    gettext("Less than 5 days from row %(row)d of this file (the same quitter).", row=other_row)
                )
        self.seen.setdefault(quitter_id, []).append((visit_date, row.number))
        row.values = {
            "institution": institution, "practitioner": practitioner, "quitter": quitter,
            "quitter_id": quitter_id, "name": name, "sex": sex,
            "birth_date": birth_date,
            "visit_date": visit_date, "medication_name": (str(v["medication_name"]).strip() or None) if v["medication_name"] else None,
            "medication_days": medication_days, "education_minutes": education_minutes,
        }  # fmt: skip

    def save(self, row: Row) -> None:
        """Register the quitter and add the visit, re-checked under its quitter lock."""
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
        enforce_on_write(visit)

    def before_commit(self) -> None:
        """Every visit written lies in the uploader's scope."""
        ScopedInterface(Visit).enforce_scope()
