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
#: The addiction programme's roles (A1): its data is the more sensitive (資安等級「高」), so
#: no cessation role reaches it and these reach no cessation data. A user may hold roles of
#: both programmes (a county bureau, the Ministry); the scope is the user's, the grants the roles'.
TREATMENT = "Treatment"
ADDICTION_BUREAU = "AddictionBureau"
ADDICTION_MINISTRY = "AddictionMinistry"
#: An institution's HIS system account (A6): posts its orders through the Web API with an
#: API key, scoped to its institution like its staff; it reads nothing else.
HIS_INTERFACE = "HisInterface"

#: Which programme a role belongs to; Admin and Helpdesk belong to neither (accounts only).
ADDICTION_ROLES = frozenset({TREATMENT, ADDICTION_BUREAU, ADDICTION_MINISTRY, HIS_INTERFACE})
CESSATION_ROLES = frozenset({OFFICE, MINISTRY, BUREAU, FACILITY})

ROLE_LABELS = {
    ADMIN: _l("System administrator"),
    OFFICE: _l("Cessation management office"),
    MINISTRY: _l("Ministry of Health and Welfare"),
    BUREAU: _l("Health bureau"),
    FACILITY: _l("Contracted institution"),
    HELPDESK: _l("Helpdesk"),
    TREATMENT: _l("Addiction treatment institution staff"),
    ADDICTION_BUREAU: _l("County bureau / drug-prevention centre (addiction)"),
    ADDICTION_MINISTRY: _l("Ministry of Health and Welfare (addiction)"),
    HIS_INTERFACE: _l("HIS system account (order import)"),
}


def role_label(name: str) -> str:
    """The translated label of a role name (unknown roles show their name)."""
    return str(ROLE_LABELS.get(name, name))
