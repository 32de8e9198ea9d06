"""The correction tickets' status machine (C5–C7) and the re-entry of displaced visits (C6):
what the visit rules ask of tickets, apart from the ticket commands, so that
domain/cessation/visits.py and domain/cessation/corrections.py do not import each other."""

from __future__ import annotations

import datetime as dt

from flask_babel import gettext
from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from core import clock
from core.dates import to_roc
from core.errors import UserError
from core.extensions import db
from core.workflow import TransitionRefused, Workflow
from models.cessation.correction import (
    CorrectionLine,
    CorrectionTicket,
    TicketStatus,
    TicketTransition,
)
from models.cessation.visit import Visit


class CorrectionError(UserError):
    """A refused ticket operation; str() is the zh_TW message shown to the user."""


class TransitionError(CorrectionError, TransitionRefused):
    """The ticket's current status does not allow this step (or changed meanwhile): 409."""


# ------------------------------------------------------------------ workflow
#: What each step is called in the refusal "A ticket that is … cannot be …".
ACTION_LABELS = {
    "review": _l("taken into review"),
    "approve": _l("approved"),
    "return": _l("returned"),
    "close": _l("closed"),
    "convert": _l("converted"),
}


def _add_history(ticket: CorrectionTicket, **fields) -> TicketTransition:
    """A ticket's history row, in its list of transitions (the show page reads it)."""
    entry = TicketTransition(**fields)
    ticket.transitions.append(entry)
    return entry


TICKET_FLOW = Workflow(
    CorrectionTicket,
    "status",
    _add_history,
    {
        "review": ((TicketStatus.RECEIVED.value,), TicketStatus.IN_REVIEW.value),
        "approve": ((TicketStatus.IN_REVIEW.value,), TicketStatus.APPROVED.value),
        "return": (
            (TicketStatus.RECEIVED.value, TicketStatus.IN_REVIEW.value),
            TicketStatus.RETURNED.value,
        ),
        "convert": ((TicketStatus.APPROVED.value,), TicketStatus.CONVERTED.value),
        "close": ((TicketStatus.CONVERTED.value,), TicketStatus.CLOSED.value),
    },
    refused=lambda ticket, name: gettext(
        "A ticket that is %(status)s cannot be %(action)s.",
        status=ticket.status_label, action=str(ACTION_LABELS[name]),
    ),  # fmt: skip
    stale=lambda: gettext("The ticket was changed by someone else meanwhile: reload it."),
    error=TransitionError,
)


def open_reentry_tickets(
    institution_id: int, quitter_id: int, visit_date: dt.date
) -> list[CorrectionTicket]:
    """Converted tickets of this institution and quitter still waiting for the displaced visit
    of exactly this date."""
    return db.session.scalars(
        select(CorrectionTicket)
        .join(CorrectionLine, CorrectionLine.ticket_id == CorrectionTicket.id)
        .where(
            CorrectionTicket.institution_id == institution_id,
            CorrectionTicket.quitter_id == quitter_id,
            CorrectionTicket.status == TicketStatus.CONVERTED.value,
            CorrectionLine.displaced_date == visit_date,
        )
        .distinct()
    ).all()


def _close_if_reentered(ticket: CorrectionTicket) -> bool:
    """Close a converted swap-case ticket once every displaced visit exists again."""
    if not ticket.reentry_pending:
        return False
    for day in ticket.displaced_dates:
        found = db.session.scalar(
            select(Visit.id)
            .where(
                Visit.institution_id == ticket.institution_id,
                Visit.quitter_id == ticket.quitter_id,
                Visit.visit_date == day,
            )
            .limit(1)
        )
        if found is None:
            return False
    ticket.status = TicketStatus.CLOSED.value
    ticket.closed_at = clock.utc_naive()
    TICKET_FLOW.record(
        ticket, TicketStatus.CONVERTED.value, TicketStatus.CLOSED.value,
        gettext("The displaced visit of %(dates)s has been re-entered.",
                dates="、".join(to_roc(d) for d in ticket.displaced_dates)),
    )  # fmt: skip
    return True


def close_fulfilled_reentries(visit: Visit) -> None:
    """Called when a visit is written: a re-entered displaced visit closes its ticket (C6).

    Runs inside the visit's transaction, so the visit and the closing commit together."""
    for ticket in open_reentry_tickets(visit.institution_id, visit.quitter_id, visit.visit_date):
        _close_if_reentered(ticket)


