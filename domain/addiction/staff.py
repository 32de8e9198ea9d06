"""Addiction-treatment staff and their training (A14).

A staff member is a practitioner of the registry; employment is their service assignments.
Rules kept here, for the forms, the APIs and any later path alike:

- a licence names a profession of StaffProfession; two licences of the same practitioner and
  profession may not overlap in time (the message names the other one);
- a training record has hours between 0.5 and MAX_HOURS in ASCII digits, at most one
  decimal place, is not dated in the future, and may carry a certificate (PDF or image,
  judged by content by core/files.py, stored under a random name, served only through its
  scoped Training row);
- the yearly addiction-training hours each profession needs are configuration
  (ADDICTION_TRAINING_HOURS); the shortfall list names the staff short of them this year,
  or whose licence ends within LICENCE_EXPIRY_WARNING_DAYS, in the user's scope.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from flask import current_app
from flask_babel import gettext
from sqlalchemy import and_, func, or_, select

from core import clock
from core.commands import Command
from core.data.rules import enum_label
from core.dates import to_roc
from core.errors import UserError
from core.extensions import db
from core.files import PDF, FileStore, UploadRefused
from models.addiction.staff import StaffLicence, StaffProfession, Training, TrainingCategory
from models.registry.institution import Institution
from models.registry.practitioner import Practitioner, ServiceAssignment
from models.registry.reference import County

#: The most hours one training record may count (a week-long course is 40).
MAX_HOURS = Decimal(200)
_HOURS = re.compile(r"[0-9]{1,4}(\.[0-9])?")
CERTIFICATES = FileStore(
    "training", {PDF: "pdf", "image/png": "png", "image/jpeg": "jpg"},
    "TRAINING_CERTIFICATE_MAX_BYTES", "certificate",
)  # fmt: skip


class StaffRuleError(UserError, ValueError):
    """A licence or training record the rules refuse; str() is the zh_TW message."""


# ------------------------------------------------------------------- licences
def check_licence(
    practitioner_id: int,
    profession: str,
    start: dt.date,
    end: dt.date | None,
    exclude_id: int | None = None,
) -> None:
    """No other licence of the practitioner in the same profession overlaps [start, end]."""
    conditions = [
        StaffLicence.practitioner_id == practitioner_id,
        StaffLicence.profession == profession,
        # Two ranges overlap when each starts before the other ends (an open end never ends).
        or_(StaffLicence.end_date.is_(None), StaffLicence.end_date >= start),
    ]
    if end is not None:
        conditions.append(StaffLicence.start_date <= end)
    if exclude_id is not None:
        conditions.append(StaffLicence.id != exclude_id)
    other = db.session.execute(
        select(StaffLicence.licence_number, StaffLicence.start_date, StaffLicence.end_date)
        .where(and_(*conditions)).order_by(StaffLicence.start_date).limit(1)
    ).first()  # fmt: skip
    if other is not None:
        raise StaffRuleError(
            gettext(
                "This licence overlaps licence %(number)s (%(start)s to %(end)s) of the same "
                "practitioner and profession.",
                number=other.licence_number,
                start=to_roc(other.start_date),
                end=to_roc(other.end_date) if other.end_date else gettext("no end date"),
            )
        )


def enforce_licence(licence: StaffLicence) -> None:
    """The authoritative check just before a licence is saved (form and API)."""
    db.session.add(licence)
    db.session.flush()  # the field rules and DatesInOrder run here; the id is known
    # Serialise licence writes of one practitioner (PostgreSQL row lock until commit), so two
    # overlapping licences sent at once cannot both pass the check.
    db.session.execute(
        select(Practitioner.id).where(Practitioner.id == licence.practitioner_id).with_for_update()
    )
    check_licence(
        licence.practitioner_id, licence.profession, licence.start_date, licence.end_date,
        exclude_id=licence.id,
    )  # fmt: skip


# ------------------------------------------------------------------ training
def parse_hours(value) -> Decimal:
    """Training hours as typed or sent: ASCII digits, at most one decimal place, 0.5 to
    MAX_HOURS; else StaffRuleError. Unicode digits (１２, ١٢) are refused, not read as 12."""
    if isinstance(value, bool) or value is None:
        raise StaffRuleError(_hours_message())
    if isinstance(value, int | float | Decimal):
        try:
            value = Decimal(str(value))
        except InvalidOperation:
            raise StaffRuleError(_hours_message()) from None
        text = format(value, "f") if value.is_finite() else ""
        if text.endswith(".0"):
            text = text[:-2]
    else:
        text = str(value).strip()
    if not text.isascii() or not _HOURS.fullmatch(text):
        raise StaffRuleError(_hours_message())
    hours = Decimal(text)
    if hours < Decimal("0.5") or hours > MAX_HOURS:
        raise StaffRuleError(_hours_message())
    return hours


def _hours_message() -> str:
    return gettext(
        "Training hours must be a number from 0.5 to %(max)d, with at most one decimal place.",
        max=int(MAX_HOURS),
    )


def check_training_date(held_on: dt.date | None) -> None:
    """A training record is of a training attended: not dated in the future."""
    if held_on is not None and held_on > clock.today():
        raise StaffRuleError(gettext("A training cannot be dated in the future."))


def check_certificate(data: bytes) -> str:
    """The MIME type of an acceptable certificate, judged by content; else StaffRuleError."""
    try:
        return CERTIFICATES.check(data)
    except UploadRefused as refused:
        if refused.reason == UploadRefused.TOO_LARGE:
            message = gettext("The certificate is larger than %(mb)d MB.", mb=refused.limit_mb)
        else:
            message = gettext("The certificate must be a PDF, PNG or JPEG file.")
        raise StaffRuleError(message) from None


class SaveTraining(Command):
    """Add or change a training record, with its certificate if one was uploaded.

    The screen and the API call `prepare()` inside FAB's write, which commits it (then
    `after_commit()`); a certificate file is written only once every rule passed, and
    removed again if the command is refused."""

    def __init__(self, training: Training, certificate: bytes | None = None):
        self.training = training
        self.certificate = certificate
        self._mime: str | None = None
        self._written: list[str] = []
        self._replaced: str | None = None

    def validate(self) -> None:
        self.training.hours = parse_hours(self.training.hours)
        check_training_date(self.training.held_on)
        if self.certificate is not None:
            self._mime = check_certificate(self.certificate)

    def execute(self) -> Training:
        training = self.training
        if self.certificate is not None:
            stored = CERTIFICATES.save(self.certificate, self._mime)
            self._written.append(stored)
            self._replaced = training.certificate_name
            training.certificate_name = stored
            training.certificate_mime = self._mime
            training.certificate_sha256 = hashlib.sha256(self.certificate).hexdigest()
        db.session.add(training)
        db.session.flush()
        return training

    def prepare(self) -> Training:
        """validate() and execute() inside a transaction the caller commits."""
        try:
            self.validate()
            return self.execute()
        except Exception:
            db.session.rollback()
            self.after_rollback()
            raise

    def after_commit(self) -> None:
        """A replaced certificate is removed once its replacement is committed."""
        if self._replaced:
            CERTIFICATES.discard([self._replaced])

    def after_rollback(self) -> None:
        """A certificate of a record that was not saved is not kept either."""
        CERTIFICATES.discard(self._written)
        self._written.clear()


# --------------------------------------------------------- shortfall list
def required_hours(profession: str) -> Decimal:
    """The yearly addiction-training hours a profession needs (ADDICTION_TRAINING_HOURS)."""
    return Decimal(str(current_app.config["ADDICTION_TRAINING_HOURS"].get(profession, 0)))


@dataclass(frozen=True)
class ShortfallRow:
    """One staff member in one profession at one institution, short of hours or of time."""

    county: str
    nhi_code: str
    institution: str
    institution_id: int
    county_id: int
    practitioner: str
    profession: str
    licence_number: str
    licence_end: dt.date | None
    hours: Decimal
    required: Decimal
    hours_short: bool
    licence_ending: bool

    @property
    def profession_label(self) -> str:
        """The profession as a person reads it."""
        return enum_label(StaffProfession, self.profession)

    @property
    def missing(self) -> Decimal:
        """Hours still needed this year (0 when the requirement is met)."""
        return max(self.required - self.hours, Decimal(0))


def shortfall_rows(
    scope, today: dt.date | None = None, county_id: int | None = None,
    institution_id: int | None = None,
) -> list[ShortfallRow]:  # fmt: skip
    """Staff serving today at an institution in `scope`, per licence valid today: those
    whose addiction-training hours this calendar year are below their profession's
    requirement, or whose licence ends within LICENCE_EXPIRY_WARNING_DAYS. Ordered by
    county, institution, name."""
    today = today or clock.today()
    horizon = today + dt.timedelta(days=int(current_app.config["LICENCE_EXPIRY_WARNING_DAYS"]))
    conditions = [
        ServiceAssignment.covering(today),
        StaffLicence.covering(today),
        Institution.scope_clause(scope),
    ]
    if county_id is not None:
        conditions.append(Institution.county_id == county_id)
    if institution_id is not None:
        conditions.append(Institution.id == institution_id)
    # An approved non-hospital institution has no NHI code: its registry code stands in (A1).
    code = func.coalesce(Institution.nhi_code, Institution.registry_code)
    staff = db.session.execute(
        select(County.name, code, Institution.name, Institution.id,
               County.id, Practitioner.id, Practitioner.name, StaffLicence.profession,
               StaffLicence.licence_number, StaffLicence.end_date)
        .select_from(ServiceAssignment)
        .join(Institution, Institution.id == ServiceAssignment.institution_id)
        .join(County, County.id == Institution.county_id)
        .join(Practitioner, Practitioner.id == ServiceAssignment.practitioner_id)
        .join(StaffLicence, StaffLicence.practitioner_id == Practitioner.id)
        .where(*conditions)
        .order_by(County.code, code, Practitioner.name, Practitioner.id,
                  StaffLicence.profession)
    ).all()  # fmt: skip
    hours = _hours_this_year({row[5] for row in staff}, today.year)
    rows = []
    for county, code, name, inst_id, cty_id, prac_id, prac, profession, number, end in staff:
        done, needed = hours.get(prac_id, Decimal(0)), required_hours(profession)
        short, ending = done < needed, end is not None and end <= horizon
        if short or ending:
            rows.append(ShortfallRow(county, code, name, inst_id, cty_id, prac, profession,
                                     number, end, done, needed, short, ending))  # fmt: skip
    return rows


def _hours_this_year(practitioner_ids: set[int], year: int) -> dict[int, Decimal]:
    """Addiction-training hours per practitioner in calendar `year`."""
    if not practitioner_ids:
        return {}
    result = db.session.execute(
        select(Training.practitioner_id, func.sum(Training.hours))
        .where(
            Training.practitioner_id.in_(sorted(practitioner_ids)),
            Training.category == TrainingCategory.ADDICTION.value,
            Training.held_on >= dt.date(year, 1, 1),
            Training.held_on <= dt.date(year, 12, 31),
        )
        .group_by(Training.practitioner_id)
    ).all()  # fmt: skip
    return {pid: Decimal(str(total or 0)) for pid, total in result}
