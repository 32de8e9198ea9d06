"""Cessation resources (visits, quitters, reports, statistics, correction tickets) and what
each role may do with them."""

from __future__ import annotations

from core.security.permissions import ALL, CAN_CREATE, CAN_EDIT, CAN_READ, READ, READ_EXPORT
from core.security.roles import BUREAU, FACILITY, MINISTRY, OFFICE

VISIT = "Visit"
QUITTER = "Quitter"
#: Registrations whose identity data differ from the national record of their ID (issue 12).
QUITTER_IDENTITY = "QuitterIdentity"
FEE_DEDUCTION = "FeeDeduction"
SELF_CHECK = "SelfCheck"
CESSATION_STATISTICS = "CessationStatistics"  # yearly bulletin tables 1–3 (C9)
CORRECTION = "CorrectionTicket"
#: Conversion (轉檔) is its own resource: reviewing a ticket does not allow applying it.
CORRECTION_CONVERSION = "CorrectionConversion"
CAN_REVIEW, CAN_CONVERT, CAN_MERGE = "review", "convert", "merge"

GRANTS: dict[str, dict[str, set[str]]] = {
    OFFICE: {
        CESSATION_STATISTICS: READ_EXPORT,
        VISIT: READ_EXPORT,
        FEE_DEDUCTION: READ_EXPORT,
        SELF_CHECK: READ,
        # The office owns the identity data of the programme's shared persons (issue 12):
        # it alone corrects a quitter's ID, name, sex or birth date.
        QUITTER: READ_EXPORT | {CAN_EDIT},
        QUITTER_IDENTITY: {CAN_READ, CAN_MERGE},
        # C5–C7: intake of faxed/e-mailed forms, review, and the engineer's conversion.
        CORRECTION: READ_EXPORT | {CAN_CREATE, CAN_REVIEW},
        CORRECTION_CONVERSION: {CAN_CONVERT},
    },
    MINISTRY: {
        CESSATION_STATISTICS: READ_EXPORT,
        VISIT: READ_EXPORT,
        QUITTER: READ_EXPORT,
    },
    BUREAU: {
        CESSATION_STATISTICS: READ_EXPORT,
        VISIT: READ_EXPORT,
        FEE_DEDUCTION: READ_EXPORT,
        SELF_CHECK: READ,
        QUITTER: READ_EXPORT,
        # The county's correction tickets, read-only.
        CORRECTION: READ_EXPORT,
    },
    FACILITY: {
        CESSATION_STATISTICS: READ_EXPORT,
        # C2: the institution adds, changes and deletes its own visits until the deadline.
        VISIT: ALL,
        FEE_DEDUCTION: READ_EXPORT,
        SELF_CHECK: READ,
        # Registers quitters (domain/registry/persons.py), never rewrites them.
        QUITTER: READ_EXPORT | {CAN_CREATE},
        # Its own correction tickets; filing online (C5).
        CORRECTION: READ_EXPORT | {CAN_CREATE},
    },
}
