"""Subsidy schemes (A9, A10): who owns which, what a version may still change.

A9   a scheme year has items (code, name, unit amount, inside or outside the cap, the
     treatment kinds and professions that justify it, the eligibility categories that may
     claim it), an annual cap per person (optionally one for minors), and a budget. The
     case-management fee (個案管理服務費) is never inside the cap.
A10  central schemes are the Ministry's (national scope); a county bureau maintains only its
     own county's local schemes; neither edits the other's (a bureau never sees another
     county's scheme: 404; a central one it reads but may not change: 403).
     A published version is frozen: a change makes the next version as a draft, which
     applies from its own date once published.
"""

from __future__ import annotations

import datetime as dt

from flask_babel import gettext
from sqlalchemy import func, select

from core.commands import Command
from core.data.scope import current_scope
from core.dates import in_range, parse_date, to_roc
from core.errors import UserError
from core.extensions import db
from models.addiction.case import EligibilityCategory
from models.addiction.record import TreatmentKind
from models.addiction.scheme import SchemeItem, SchemeStatus, SchemeSubstance, SubsidyScheme
from models.addiction.staff import StaffProfession

MAX_AMOUNT = 100_000_000


class SchemeError(UserError):
    """A scheme or item change refused."""


def may_own(county_id: int | None) -> bool:
    """Whether the current user maintains schemes of this owner (None: central)."""
    scope = current_scope()
    if county_id is None:
        return scope.national
    return scope.kind == "county" and county_id in scope.county_ids


def check_owner(county_id: int | None) -> None:
    if not may_own(county_id):
        if county_id is None:
            raise SchemeError(gettext("Central schemes are maintained by the Ministry only."), 403)
        raise SchemeError(gettext("A local scheme is maintained by its county's bureau only."), 403)


def _amount(value, label, required=True):
    if value is None or value == "":
        if required:
            raise SchemeError(gettext("%(field)s: a value is required.", field=label))
        return None
    if isinstance(value, bool):
        raise SchemeError(gettext("%(field)s must be a whole number of NT$.", field=label))
    try:
        number = int(str(value).strip().replace(",", ""))
    except ValueError:
        raise SchemeError(gettext("%(field)s must be a whole number of NT$.", field=label)) from None
    if number < 0:
        raise SchemeError(gettext("%(field)s cannot be negative.", field=label))
    if number > MAX_AMOUNT:
        raise SchemeError(gettext("%(field)s is larger than NT$%(max)s.", field=label, max=f"{MAX_AMOUNT:,}"))
    return number


def _text(value, label, max_length):
    text = str(value or "").strip()
    if not text:
        raise SchemeError(gettext("%(field)s: a value is required.", field=label))
    if len(text) > max_length:
        raise SchemeError(gettext("%(field)s: at most %(n)d characters.", field=label, n=max_length))
    return text


def _codes(values, enum, label, required=False) -> str | None:
    if isinstance(values, str):
        values = [v for v in values.split(",")]
    elif values is not None and not isinstance(values, list | tuple):
        raise SchemeError(gettext("%(field)s: unknown value %(value)s.", field=label, value=str(values)[:40]))
    chosen = [str(v).strip() for v in (values or []) if str(v).strip()]
    allowed = {m.value for m in enum}
    bad = [v for v in chosen if v not in allowed]
    if bad:
        raise SchemeError(gettext("%(field)s: unknown value %(value)s.", field=label, value=bad[0][:40]))
    if required and not chosen:
        raise SchemeError(gettext("%(field)s: choose at least one.", field=label))
    return ",".join(sorted(set(chosen))) or None


def _frozen(scheme: SubsidyScheme) -> None:
    if scheme.published:
        raise SchemeError(gettext(
            "Version %(v)d of this scheme is published and frozen: make a new version to change it.",
            v=scheme.version,
        ))  # fmt: skip


class SaveScheme(Command):
    """A new scheme (version 1, a draft), or a change to a draft version."""

    FIELDS = ("code", "name", "county_id", "substance", "year", "cap_adult", "cap_minor", "minor_age", "budget")

    def __init__(self, values: dict, scheme: SubsidyScheme | None = None):
        self.values, self.scheme = values, scheme

    def validate(self) -> None:
        v = self.values
        if self.scheme is not None:
            _frozen(self.scheme)
            county_id = self.scheme.county_id
        else:
            county_id = v.get("county_id")
            if county_id in ("", None):
                county_id = None
            scope = current_scope()
            if county_id is None and scope.kind == "county" and len(scope.county_ids) == 1:
                county_id = next(iter(scope.county_ids))  # a bureau's scheme is its county's
        check_owner(county_id)
        self.county_id = county_id
        self.clean = {
            "code": _text(v.get("code"), gettext("Scheme code"), 30).upper(),
            "name": _text(v.get("name"), gettext("Scheme name"), 100),
            "cap_adult": _amount(v.get("cap_adult"), gettext("Annual cap per person")),
            "cap_minor": _amount(v.get("cap_minor"), gettext("Annual cap per minor"), required=False),
            "budget": _amount(v.get("budget"), gettext("Budget")),
        }
        substance = v.get("substance")
        if substance not in {m.value for m in SchemeSubstance}:
            raise SchemeError(gettext("Substance: choose drug or alcohol addiction."))
        self.clean["substance"] = substance
        try:
            year = int(str(v.get("year")).strip())
        except (TypeError, ValueError):
            raise SchemeError(gettext("Year: give the year, e.g. 114 or 2025.")) from None
        year = year + 1911 if year < 1000 else year
        if not 2000 <= year <= 2200:
            raise SchemeError(gettext("Year: give the year, e.g. 114 or 2025."))
        self.clean["year"] = year
        age = v.get("minor_age")
        try:
            self.clean["minor_age"] = 18 if age in (None, "") else int(str(age))
        except ValueError:
            raise SchemeError(gettext("Age of majority must be a whole number.")) from None
        if not 1 <= self.clean["minor_age"] <= 30:
            raise SchemeError(gettext("Age of majority must lie between 1 and 30."))
        same = select(SubsidyScheme.id).where(
            SubsidyScheme.code == self.clean["code"], SubsidyScheme.year == year,
            SubsidyScheme.id != (self.scheme.id if self.scheme else -1),
        )  # fmt: skip
        if self.scheme is None and db.session.scalar(same.limit(1)) is not None:
            raise SchemeError(gettext("A scheme %(code)s for %(year)d already exists: make a new version of it.",
                                      code=self.clean["code"], year=year - 1911))  # fmt: skip
        other_owner = db.session.scalar(
            select(SubsidyScheme.county_id).where(SubsidyScheme.code == self.clean["code"]).limit(1)
        )
        if self.scheme is None and other_owner is not None and other_owner != county_id:
            raise SchemeError(gettext("The scheme code %(code)s is another owner's.", code=self.clean["code"]))

    def execute(self) -> SubsidyScheme:
        scheme = self.scheme
        if scheme is None:
            scheme = SubsidyScheme(county_id=self.county_id, version=1, status=SchemeStatus.DRAFT.value)
            scheme.effective_from = dt.date(self.clean["year"], 1, 1)
        elif scheme.version == 1:
            scheme.effective_from = dt.date(self.clean["year"], 1, 1)
        for key, value in self.clean.items():
            setattr(scheme, key, value)
        db.session.add(scheme)
        db.session.flush()
        return scheme


class PublishScheme(Command):
    """A draft version becomes the version in force from its date; then it is frozen."""

    def __init__(self, scheme: SubsidyScheme):
        self.scheme = scheme

    def validate(self) -> None:
        check_owner(self.scheme.county_id)
        _frozen(self.scheme)
        if not self.scheme.items:
            raise SchemeError(gettext("A scheme needs at least one item before it is published."))
        if self.scheme.effective_from.year != self.scheme.year:
            raise SchemeError(gettext("The version must apply from a date in its own year."))

    def execute(self) -> SubsidyScheme:
        self.scheme.status = SchemeStatus.PUBLISHED.value
        return self.scheme


class NewSchemeVersion(Command):
    """A copy of the latest version as the next draft version, applying from `effective_from`."""

    def __init__(self, scheme: SubsidyScheme, effective_from):
        self.scheme, self.raw = scheme, effective_from

    def validate(self) -> None:
        check_owner(self.scheme.county_id)
        try:
            day = self.raw if isinstance(self.raw, dt.date) else parse_date(str(self.raw or "")[:40])
        except UserError as exc:
            raise SchemeError(gettext("Applies from: %(error)s", error=str(exc))) from None
        if not in_range(day) or day.year != self.scheme.year:
            raise SchemeError(gettext("Applies from: a date in %(year)d.", year=self.scheme.year - 1911))
        versions = db.session.scalars(
            select(SubsidyScheme).where(SubsidyScheme.code == self.scheme.code, SubsidyScheme.year == self.scheme.year)
            .order_by(SubsidyScheme.version)
        ).all()  # fmt: skip
        if any(not v.published for v in versions):
            raise SchemeError(gettext("A draft version exists already: publish or change it first."))
        latest = versions[-1]
        if day <= latest.effective_from:
            raise SchemeError(gettext("The new version must apply after %(date)s, when version %(v)d applies.",
                                      date=to_roc(latest.effective_from), v=latest.version))  # fmt: skip
        self.latest, self.day = latest, day

    def execute(self) -> SubsidyScheme:
        old = self.latest
        new = SubsidyScheme(
            code=old.code, name=old.name, county_id=old.county_id, substance=old.substance, year=old.year,
            version=old.version + 1, effective_from=self.day, status=SchemeStatus.DRAFT.value,
            cap_adult=old.cap_adult, cap_minor=old.cap_minor, minor_age=old.minor_age, budget=old.budget,
            claim_period=old.claim_period,
        )  # fmt: skip
        for item in old.items:
            new.items.append(SchemeItem(
                code=item.code, name=item.name, unit_amount=item.unit_amount, within_cap=item.within_cap,
                case_management_fee=item.case_management_fee, kinds=item.kinds, professions=item.professions,
                categories=item.categories,
            ))  # fmt: skip
        db.session.add(new)
        db.session.flush()
        return new


class SaveItem(Command):
    """An item added to, or changed in, a draft version."""

    def __init__(self, scheme: SubsidyScheme, values: dict, item: SchemeItem | None = None):
        self.scheme, self.values, self.item = scheme, values, item

    def validate(self) -> None:
        check_owner(self.scheme.county_id)
        _frozen(self.scheme)
        v = self.values
        cm_fee = bool(v.get("case_management_fee"))
        self.clean = {
            "code": _text(v.get("code"), gettext("Subsidy item code"), 30).upper(),
            "name": _text(v.get("name"), gettext("Item name"), 100),
            "unit_amount": _amount(v.get("unit_amount"), gettext("Unit amount")),
            "case_management_fee": cm_fee,
            # The case-management fee never counts toward the cap (A9), whatever was ticked.
            "within_cap": False if cm_fee else bool(v.get("within_cap")),
            "kinds": _codes(v.get("kinds"), TreatmentKind, gettext("Treatment kinds that justify it"), required=True),
            "professions": _codes(v.get("professions"), StaffProfession, gettext("Professions")),
            "categories": _codes(v.get("categories"), EligibilityCategory, gettext("Eligible categories")),
        }
        if self.clean["unit_amount"] > 1_000_000:
            raise SchemeError(gettext("Unit amount is larger than NT$1,000,000."))
        clash = db.session.scalar(select(func.count()).select_from(SchemeItem).where(
            SchemeItem.scheme_id == self.scheme.id, SchemeItem.code == self.clean["code"],
            SchemeItem.id != (self.item.id if self.item else -1),
        ))  # fmt: skip
        if clash:
            raise SchemeError(gettext("The scheme has an item %(code)s already.", code=self.clean["code"]))

    def execute(self) -> SchemeItem:
        item = self.item or SchemeItem(scheme_id=self.scheme.id)
        for key, value in self.clean.items():
            setattr(item, key, value)
        db.session.add(item)
        db.session.flush()
        return item


class DeleteItem(Command):
    """An item removed from a draft version (a published version is frozen: A9)."""

    def __init__(self, item: SchemeItem):
        self.item = item

    def validate(self) -> None:
        check_owner(self.item.scheme.county_id)
        _frozen(self.item.scheme)

    def execute(self) -> SchemeItem:
        scheme = self.item.scheme
        scheme.items.remove(self.item)
        db.session.delete(self.item)
        db.session.flush()
        return self.item
