"""Adding a practitioner who already serves at another institution (issue 15, item 5).

The institution names the practitioner by national ID *and* name, as it knows them; both
must match a registration of that ID, or nothing happens. A match gives a service assignment
at one of the user's own institutions, and with it (models/registry/person.py) the link that
lets the institution see the practitioner. Nothing of the other institutions shows: not their
names, not the practitioner's other assignments, and a refusal reads the same whether the ID
is unknown or the name differs, so the form tells nobody more than "this ID and this name go
together", which the user had to know already.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from flask_babel import gettext
from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from core.data.datamodel import ScopedInterface
from core.dates import to_roc
from core.errors import UserError
from core.extensions import db
from core.validators import normalize_id
from domain.registry.persons import grant_reference, identity_matches
from models.registry.institution import Institution
from models.registry.person import IdentityStatus
from models.registry.practitioner import (
    ASSIGNMENT_RULES,
    PRACTITIONER_RULES,
    Practitioner,
    ServiceAssignment,
)


class JoinRefused(UserError):
    """A join the registry or the institution's own assignments refuse; str() is zh_TW."""


def no_match_message() -> str:
    """One answer for an unknown ID and for a name that differs: no 'exists elsewhere' oracle."""
    return gettext(
        "No registered practitioner has this national ID with this name. Check both, or "
        "register the practitioner with %(add)s.", add=gettext("Add practitioner"),
    )


@dataclass
class JoinPractitioner:
    """Give a registered practitioner (found by ID and name) an assignment at an institution
    in the user's scope. validate() raises JoinRefused or RuleError; run() commits."""

    national_id: str
    name: str
    institution_id: object
    start_date: object
    end_date: object = None

    def validate(self) -> tuple[Practitioner, Institution]:
        """The person and institution the join is for, or a refusal in zh_TW."""
        national_id = PRACTITIONER_RULES["national_id"].clean(normalize_id(self.national_id or ""))
        name = PRACTITIONER_RULES["name"].clean(self.name)
        self.start_date = ASSIGNMENT_RULES["start_date"].clean(self.start_date)
        self.end_date = ASSIGNMENT_RULES["end_date"].clean(self.end_date)
        if self.end_date is not None and self.end_date < self.start_date:
            raise JoinRefused(gettext("The end date cannot be earlier than the start date."))
        institution = self._institution()
        rows = db.session.scalars(
            select(Practitioner).where(Practitioner.national_id == national_id).order_by(Practitioner.id)
        ).all()
        # The national record first: a conflict row holding the same name is the same person
        # typed twice, the verified one is what the institution means.
        rows.sort(key=lambda row: row.identity_status != IdentityStatus.VERIFIED.value)
        person = next((row for row in rows if identity_matches(row, {"name": name})), None)
        if person is None:
            raise JoinRefused(no_match_message())
        self._refuse_overlap(person, institution)
        return person, institution

    def _institution(self) -> Institution:
        key = self.institution_id.id if isinstance(self.institution_id, Institution) else self.institution_id
        institution = ScopedInterface(Institution).get(key) if key not in (None, "") else None
        if institution is None:
            raise JoinRefused(gettext(
                "The selected %(what)s does not exist or is outside your data scope.",
                what=str(Institution.__label__),
            ), status=403)  # fmt: skip
        return institution

    def _refuse_overlap(self, person, institution) -> None:
        """An assignment there already covering part of the period: named, it is the user's own."""
        far = dt.date.max
        for held in person.assignments:
            if held.institution_id != institution.id:
                continue  # other institutions' assignments: neither read out nor compared
            if held.start_date <= (self.end_date or far) and self.start_date <= (held.end_date or far):
                raise JoinRefused(gettext(
                    "%(person)s already serves at this institution from %(start)s to %(end)s.",
                    person=person.name, start=to_roc(held.start_date),
                    end=to_roc(held.end_date) if held.end_date else gettext("(open)"),
                ), status=409)  # fmt: skip

    def run(self) -> ServiceAssignment:
        """Insert the assignment through the scoped datamodel (scope proved after the flush)."""
        person, institution = self.validate()
        # Found by ID and name: knowing both is what entitles the writer to point at the row.
        grant_reference(db.session, person)
        assignment = ServiceAssignment(
            practitioner_id=person.id, institution_id=institution.id,
            start_date=self.start_date, end_date=self.end_date,
        )  # fmt: skip
        ScopedInterface(ServiceAssignment).add(assignment)
        return assignment


JOIN_LABELS = {
    "national_id": _l("National ID / resident certificate no."),
    "name": _l("Full name"),
    "institution": _l("Serving institution"),
    "start_date": _l("Service start date"),
    "end_date": _l("Service end date"),
}
