"""Visit rules of the cessation bulletin (seed 000):

C1  a visit is entered by its institution, which must hold a contract covering the visit
    date, by a practitioner assigned there on that date; expected within 24 hours and at
    the latest by the 20th of the next month, 23:59:59 Asia/Taipei (the entry deadline);
C2  until the deadline the institution adds, changes and deletes its own records;
C3  after it the record is locked: only an approved correction changes it;
C4  two visits of the same quitter less than 5 days apart are refused, naming the other;
C8  records entered after their deadline count toward fee deduction.
"""

from __future__ import annotations

import datetime as dt

from flask_babel import gettext
from sqlalchemy import and_, select, update

from core import clock
from core.data.scope import current_scope
from core.dates import to_roc
from core.errors import UserError
from core.extensions import db
from domain.cessation.tickets import close_fulfilled_reentries, open_reentry_tickets
from models.cessation.visit import (  # C1's calendar lives with the table it derives
    Quitter,
    Visit,
    entry_deadline,
    entry_open,
    timeliness,
)
from models.registry.institution import ContractPeriod
from models.registry.practitioner import ServiceAssignment

MIN_DAYS_APART = 5


class VisitRuleError(UserError, ValueError):
    """A visit that the rules refuse; str() is the zh_TW message for the user."""


def is_open(visit_date: dt.date, at: dt.datetime | None = None) -> bool:
    """The institution may still add, change or delete a visit of this date itself (C2/C3)."""
    return entry_open(visit_date, at)


def _correction_route() -> str:
    return gettext(
        "Enter the visit under today's date and send the stamped correction request form "
        "(Appendix 9) to the cessation management office."
    )


def check_visit(
    *,
    institution_id: int,
    practitioner_id: int,
    quitter_id: int | None,
    visit_date: dt.date,
    medication_days: int | None,
    education_minutes: int | None,
    exclude_visit_id: int | None = None,
) -> None:
    """Every rule a new or changed visit must meet; raises VisitRuleError (changes nothing)."""
    if medication_days is None and education_minutes is None:
        raise VisitRuleError(gettext("A visit needs medication, education or both."))
    if medication_days is not None and medication_days <= 0:
        raise VisitRuleError(gettext("Medication days must be a positive number."))
    if education_minutes is not None and education_minutes <= 0:
        raise VisitRuleError(gettext("Education minutes must be a positive number."))
    if visit_date > clock.today():
        raise VisitRuleError(gettext("A visit cannot be dated in the future."))
    if not is_open(visit_date) and not reentry_allowed(institution_id, quitter_id, visit_date):
        raise VisitRuleError(
            gettext(
                "The entry deadline for visits of %(date)s (%(deadline)s) has passed. %(route)s",
                date=to_roc(visit_date),
                deadline=to_roc(entry_deadline(visit_date)),
                route=_correction_route(),
            )
        )
    check_contract_and_assignment(institution_id, practitioner_id, visit_date)
    if quitter_id is not None:
        check_five_days(quitter_id, visit_date, exclude_visit_id)


def reentry_allowed(institution_id: int, quitter_id: int | None, visit_date: dt.date) -> bool:
    """C6: after a swap-case conversion the displaced visit of exactly this date may be
    entered, past its deadline, while the ticket's reminder is open."""
    if quitter_id is None:
        return False
    return bool(open_reentry_tickets(institution_id, quitter_id, visit_date))


def check_contract_and_assignment(institution_id: int, practitioner_id: int, visit_date: dt.date) -> None:
    """C1: a contract covering the date, and the practitioner assigned there on that date."""
    contracted = db.session.scalar(
        select(ContractPeriod.id).where(
            ContractPeriod.institution_id == institution_id, ContractPeriod.covering(visit_date)
        )
    )
    if contracted is None:
        raise VisitRuleError(
            gettext("The institution holds no contract covering %(date)s.", date=to_roc(visit_date))
        )
    assigned = db.session.scalar(
        select(ServiceAssignment.id).where(
            ServiceAssignment.practitioner_id == practitioner_id,
            ServiceAssignment.institution_id == institution_id,
            ServiceAssignment.covering(visit_date),
        )
    )
    if assigned is None:
        raise VisitRuleError(
            gettext(
                "The practitioner has no service assignment at this institution on %(date)s.",
                date=to_roc(visit_date),
            )
        )


def check_five_days(quitter_id: int, visit_date: dt.date, exclude_visit_id: int | None = None) -> None:
    """C4: no other visit of the person within 4 days either side (an index lookup).

    The person is the national ID: rows registered apart for the same ID (identity
    conflicts, domain/registry/persons.py) count as one person. A visit outside the user's scope is
    named by nothing (no date, no institution): that the quitter was seen elsewhere within
    the window is all C4 needs to say, and all another institution may learn (issue 12).
    """
    from domain.registry.persons import same_person_ids

    window = dt.timedelta(days=MIN_DAYS_APART - 1)
    conditions = [
        Visit.quitter_id.in_(same_person_ids(Quitter, quitter_id)),
        Visit.visit_date.between(visit_date - window, visit_date + window),
    ]
    if exclude_visit_id is not None:
        conditions.append(Visit.id != exclude_visit_id)
    others = db.session.execute(
        select(Visit.visit_date, Visit.institution_id).where(and_(*conditions)).limit(10)
    ).all()
    if not others:
        return
    scope = current_scope()
    own = [
        o for o in others
        if scope.national or o.institution_id in scope.institution_ids
        or _in_county(scope, o.institution_id)
    ]  # fmt: skip
    if own:
        from models.registry.institution import Institution

        other = own[0]
        name = db.session.get(Institution, other.institution_id).name
        message = gettext(
            "Refused by the 5-day rule: this quitter already has a visit on %(date)s at %(inst)s; "
            "two visits must be at least 5 days apart.",
            date=to_roc(other.visit_date),
            inst=name,
        )
    else:
        message = gettext(
            "Refused by the 5-day rule: this quitter was seen at another institution less than "
            "5 days from this date; two visits must be at least 5 days apart."
        )
    raise VisitRuleError(message)


def _in_county(scope, institution_id: int) -> bool:
    if not scope.county_ids:
        return False
    from models.registry.institution import Institution

    return db.session.scalar(
        select(Institution.county_id).where(Institution.id == institution_id)
    ) in scope.county_ids


def lock_quitter(quitter_id: int) -> None:
    """Serialise entries for one quitter: two requests at once cannot both pass C4.

    An UPDATE takes the row lock on PostgreSQL and the write lock on SQLite, held until
    the transaction that inserts the visit commits.
    """
    from domain.registry.persons import same_person_ids

    # Every row of the same national ID: rows registered apart still are one person (C4).
    db.session.execute(
        update(Quitter)
        .where(Quitter.id.in_(same_person_ids(Quitter, quitter_id)))
        .values(last_entry_at=clock.utc_naive())
        .execution_options(synchronize_session=False)
    )


def enforce_on_write(visit: Visit, original_date: dt.date | None = None) -> None:
    """The authoritative check just before a visit is saved (form, API, batch)."""
    from core.dates import in_range, out_of_range_message

    if visit.visit_date is not None and not in_range(visit.visit_date):  # before the deadline arithmetic overflows
        raise VisitRuleError(out_of_range_message())
    if original_date is not None and not is_open(original_date):
        raise VisitRuleError(
            gettext(
                "This record is locked: its entry deadline (%(deadline)s) has passed. %(route)s",
                deadline=to_roc(entry_deadline(original_date)),
                route=_correction_route(),
            )
        )
    # Flush first: foreign keys set through relationships get their ids, and the 5-day check
    # below can exclude this very row.
    visit.entry_timeliness = timeliness(visit.visit_date, visit.entered_at).value
    db.session.add(visit)
    db.session.flush()
    lock_quitter(visit.quitter_id)
    check_visit(
        institution_id=visit.institution_id,
        practitioner_id=visit.practitioner_id,
        quitter_id=visit.quitter_id,
        visit_date=visit.visit_date,
        medication_days=visit.medication_days,
        education_minutes=visit.education_minutes,
        exclude_visit_id=visit.id,
    )
    # C6: a re-entered displaced visit closes the ticket that asked for it.
    close_fulfilled_reentries(visit)


def enforce_on_delete(visit: Visit) -> None:
    if not is_open(visit.visit_date):
        raise VisitRuleError(
            gettext(
                "This record is locked: its entry deadline (%(deadline)s) has passed. %(route)s",
                deadline=to_roc(entry_deadline(visit.visit_date)),
                route=_correction_route(),
            )
        )

