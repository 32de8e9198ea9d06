"""ROLE_GRANTS: every domain's grants merged, the one module that sees them all; `flask init`
hands it to core.security.permissions.sync_roles. Admin is not listed: it holds every
permission."""

from __future__ import annotations

from core.security.permissions import CAN_EXPORT, CAN_GET, EXPORT_JOB, OPENAPI, READ
from core.security.roles import (
    ADDICTION_BUREAU,
    ADDICTION_MINISTRY,
    BUREAU,
    FACILITY,
    HELPDESK,
    HIS_INTERFACE,
    MINISTRY,
    OFFICE,
    TREATMENT,
)
from domain.accounts import grants as accounts
from domain.addiction import grants as addiction
from domain.cessation import grants as cessation
from domain.registry import grants as registry

DOMAIN_GRANTS = (registry.GRANTS, cessation.GRANTS, accounts.GRANTS, addiction.GRANTS)


def merge(*grants: dict[str, dict[str, set[str]]]) -> dict[str, dict[str, set[str]]]:
    """Union of grant tables; a resource granted by two domains to one role is refused."""
    merged: dict[str, dict[str, set[str]]] = {}
    for table in grants:
        for role, resources in table.items():
            target = merged.setdefault(role, {})
            for resource, actions in resources.items():
                if resource in target and target[resource] != actions:
                    raise ValueError(f"{role}: {resource} granted differently by two domains")
                target[resource] = set(actions)
    return merged


ROLE_GRANTS = merge(*DOMAIN_GRANTS)
for _role in (OFFICE, MINISTRY, BUREAU, FACILITY, HELPDESK, TREATMENT, ADDICTION_BUREAU,
              ADDICTION_MINISTRY, HIS_INTERFACE):
    ROLE_GRANTS.setdefault(_role, {})
#: Every role that uses the REST API may read its OpenAPI document (not the helpdesk).
for _role in (OFFICE, MINISTRY, BUREAU, FACILITY, TREATMENT, ADDICTION_BUREAU, ADDICTION_MINISTRY,
              HIS_INTERFACE):
    ROLE_GRANTS[_role][OPENAPI] = {CAN_GET}
#: Everyone who can export can follow their own background exports.
for _grants in ROLE_GRANTS.values():
    if any(CAN_EXPORT in actions for actions in _grants.values()):
        _grants[EXPORT_JOB] = set(READ)
