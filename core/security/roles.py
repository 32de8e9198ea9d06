"""The roles of the application: their names and translated labels. What each may do is data
of the domains (domain/*/grants.py), merged in domain/roles.py and synced by `flask init`."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l

ADMIN = "Admin"
OFFICE = "Office"
MINISTRY = "Ministry"
BUREAU = "Bureau"
FACILITY = "Facility"
HELPDESK = "Helpdesk"

ROLE_LABELS = {
    ADMIN: _l("System administrator"),
    OFFICE: _l("Cessation management office"),
    MINISTRY: _l("Ministry of Health and Welfare"),
    BUREAU: _l("Health bureau"),
    FACILITY: _l("Contracted institution"),
    HELPDESK: _l("Helpdesk"),
}


def role_label(name: str) -> str:
    """The translated label of a role name (unknown roles show their name)."""
    return str(ROLE_LABELS.get(name, name))
