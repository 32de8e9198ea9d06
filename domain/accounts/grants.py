"""Account resources (applications, the helpdesk's lookup) and what each role may do."""

from __future__ import annotations

from core.security.permissions import CAN_READ, READ_EXPORT
from core.security.roles import BUREAU, HELPDESK

APPLICATION = "AccountApplication"
ACCOUNT = "Account"
CAN_APPROVE, CAN_REJECT, CAN_UNLOCK, CAN_SEND_RESET = "approve", "reject", "unlock", "send_reset"

GRANTS: dict[str, dict[str, set[str]]] = {
    # Facility-staff applications of the bureau's county (A13)
    BUREAU: {APPLICATION: READ_EXPORT | {CAN_APPROVE, CAN_REJECT}},
    # Looks up accounts, unlocks them and sends reset links; nothing else, no clinical data.
    HELPDESK: {ACCOUNT: {CAN_READ, CAN_UNLOCK, CAN_SEND_RESET}},
}
