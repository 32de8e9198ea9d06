"""C6: the converted swap-case ticket's page opens, for the clinic from the reminder that asks it
to re-enter the displaced visit, and for everyone who may read the ticket."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from models.cessation.correction import CorrectionTicket, TicketStatus


def _converted_swap_ticket(db) -> CorrectionTicket:
    tickets = db.session.scalars(
        select(CorrectionTicket).where(CorrectionTicket.status == TicketStatus.CONVERTED.value)
    ).all()
    swap = [t for t in tickets if any(line.displaced_date for line in t.lines)]
    assert swap, "the demo has a converted swap-case ticket (C6)"
    return swap[0]


def test_c6_reminder_on_self_check_leads_to_the_converted_tickets_page(app, db, login_as):
    """The clinic follows every reminder link of 每月資料自行清查 and lands on a ticket page."""
    ticket = _converted_swap_ticket(db)
    client = login_as("facility_tpe")
    page = client.get("/selfcheck/")
    assert page.status_code == 200
    panel = re.search(r'id="reentry-reminders".*?</div>', page.text, re.S)
    assert panel, "the self-check shows the re-entry reminder"
    links = re.findall(r'href="([^"]+)"', panel.group(0))
    assert f"/corrections/show/{ticket.id}" in links
    for link in links:
        shown = client.get(link)
        assert shown.status_code == 200, (link, shown.status_code)
        assert ticket.number in shown.text if link.endswith(f"/{ticket.id}") else True
        assert 'id="reentry-reminder"' in shown.text or not link.endswith(f"/{ticket.id}")


@pytest.mark.parametrize("username", ["facility_tpe", "office", "bureau_tpe", "admin"])
def test_c6_converted_swap_ticket_page_opens_for_every_reader(db, login_as, username):
    """Its page (history, conversion audit trail, displaced date) answers 200, never a 500."""
    ticket = _converted_swap_ticket(db)
    response = login_as(username).get(f"/corrections/show/{ticket.id}")
    assert response.status_code == 200
    assert 'id="ticket-audit"' in response.text  # the conversion's audit trail is shown
    assert 'id="ticket-lines"' in response.text
