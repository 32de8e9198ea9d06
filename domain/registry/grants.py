"""Registry resources (reference data, institutions, contracts, practitioners, persons) and
what each role may do with them."""

from __future__ import annotations

from core.security.permissions import ALL, CAN_CREATE, CAN_EDIT, PERSONAL_ID, READ, READ_EXPORT
from core.security.roles import BUREAU, FACILITY, HELPDESK, MINISTRY, OFFICE

COUNTY = "County"
LEVEL = "InstitutionLevel"
INSTITUTION = "Institution"
CONTRACT = "ContractPeriod"
PRACTITIONER = "Practitioner"
ASSIGNMENT = "ServiceAssignment"
#: Registrations whose identity data differ from the national record of their ID (issue 12).
PRACTITIONER_IDENTITY = "PractitionerIdentity"
CAN_MERGE = "merge"

REFERENCE = {COUNTY: READ, LEVEL: READ}

GRANTS: dict[str, dict[str, set[str]]] = {
    OFFICE: {
        **REFERENCE,
        INSTITUTION: READ_EXPORT,
        CONTRACT: READ_EXPORT,
        # The office owns the identity data of the programme's shared persons (issue 12):
        # it alone corrects a practitioner's ID, name, sex or birth date.
        PRACTITIONER: READ_EXPORT | {CAN_EDIT},
        PRACTITIONER_IDENTITY: {"read", CAN_MERGE},
        ASSIGNMENT: READ_EXPORT,
        PERSONAL_ID: READ,
    },
    MINISTRY: {
        **REFERENCE,
        INSTITUTION: READ_EXPORT,
        CONTRACT: READ_EXPORT,
        PRACTITIONER: READ_EXPORT,
        ASSIGNMENT: READ_EXPORT,
    },
    BUREAU: {
        **REFERENCE,
        INSTITUTION: READ_EXPORT | {CAN_EDIT},
        CONTRACT: ALL,
        PRACTITIONER: READ_EXPORT,
        ASSIGNMENT: READ_EXPORT,
    },
    FACILITY: {
        **REFERENCE,
        INSTITUTION: READ_EXPORT,
        CONTRACT: READ_EXPORT,
        # Registers persons (found by ID and identity data, domain/registry/persons.py),
        # never rewrites them: a practitioner may serve elsewhere too.
        PRACTITIONER: READ_EXPORT | {CAN_CREATE},
        ASSIGNMENT: ALL,
        PERSONAL_ID: READ,
    },
    # Looks up accounts (domain/accounts/grants.py); of the registry, only where they work.
    HELPDESK: {**REFERENCE, INSTITUTION: READ},
}
