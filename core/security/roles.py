"""Roles as data: each role's grants per resource, synced idempotently by `flask init`."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l

from core.web.views import CAN_CREATE, CAN_DELETE, CAN_EDIT, CAN_EXPORT, CAN_READ

# Resources (the class_permission_name shared by a view and its API)
COUNTY = "County"
LEVEL = "InstitutionLevel"
INSTITUTION = "Institution"
CONTRACT = "ContractPeriod"
PRACTITIONER = "Practitioner"
ASSIGNMENT = "ServiceAssignment"
AUDIT = "AuditLog"
PERSONAL_ID = "PersonalId"  # a permission only: reading personal IDs unmasked
VISIT = "Visit"
EXPORT_JOB = "ExportJob"
FEE_DEDUCTION = "FeeDeduction"
SELF_CHECK = "SelfCheck"
CESSATION_STATISTICS = "CessationStatistics"  # yearly bulletin tables 1–3 (C9)
QUITTER = "Quitter"
#: Registrations whose identity data differ from the national record of their ID (issue 12).
QUITTER_IDENTITY = "QuitterIdentity"
PRACTITIONER_IDENTITY = "PractitionerIdentity"
CAN_MERGE = "merge"
APPLICATION = "AccountApplication"
ACCOUNT = "Account"
CORRECTION = "CorrectionTicket"
#: Conversion (轉檔) is its own resource: reviewing a ticket does not allow applying it.
CORRECTION_CONVERSION = "CorrectionConversion"
#: FAB's /api/v1/_openapi document: integrators of every API-using role may read the spec.
OPENAPI = "OpenApi"
CAN_GET = "get"
CAN_APPROVE, CAN_REJECT, CAN_UNLOCK, CAN_SEND_RESET = "approve", "reject", "unlock", "send_reset"
CAN_REVIEW, CAN_CONVERT = "review", "convert"

# Roles
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


READ = {CAN_READ}
READ_EXPORT = {CAN_READ, CAN_EXPORT}
ALL = {CAN_READ, CAN_CREATE, CAN_EDIT, CAN_DELETE, CAN_EXPORT}

_REFERENCE = {COUNTY: READ, LEVEL: READ}

#: What each role may do, per resource. Admin is not listed: it holds every permission.
ROLE_GRANTS: dict[str, dict[str, set[str]]] = {
    OFFICE: {
        **_REFERENCE,
        CESSATION_STATISTICS: READ_EXPORT,
        VISIT: READ_EXPORT,
        FEE_DEDUCTION: READ_EXPORT,
        SELF_CHECK: READ,
        # The office owns the identity data of the programme's shared persons (issue 12):
        # it alone corrects a quitter's or a practitioner's ID, name, sex or birth date.
        QUITTER: READ_EXPORT | {CAN_EDIT},
        QUITTER_IDENTITY: {CAN_READ, CAN_MERGE},
        PRACTITIONER_IDENTITY: {CAN_READ, CAN_MERGE},
        INSTITUTION: READ_EXPORT,
        CONTRACT: READ_EXPORT,
        PRACTITIONER: READ_EXPORT | {CAN_EDIT},
        ASSIGNMENT: READ_EXPORT,
        PERSONAL_ID: READ,
        # C5–C7: intake of faxed/e-mailed forms, review, and the engineer's conversion.
        CORRECTION: READ_EXPORT | {CAN_CREATE, CAN_REVIEW},
        CORRECTION_CONVERSION: {CAN_CONVERT},
    },
    MINISTRY: {
        **_REFERENCE,
        CESSATION_STATISTICS: READ_EXPORT,
        VISIT: READ_EXPORT,
        QUITTER: READ_EXPORT,
        INSTITUTION: READ_EXPORT,
        CONTRACT: READ_EXPORT,
        PRACTITIONER: READ_EXPORT,
        ASSIGNMENT: READ_EXPORT,
    },
    BUREAU: {
        **_REFERENCE,
        CESSATION_STATISTICS: READ_EXPORT,
        VISIT: READ_EXPORT,
        FEE_DEDUCTION: READ_EXPORT,
        SELF_CHECK: READ,
        QUITTER: READ_EXPORT,
        INSTITUTION: READ_EXPORT | {CAN_EDIT},
        CONTRACT: ALL,
        PRACTITIONER: READ_EXPORT,
        ASSIGNMENT: READ_EXPORT,
        # Facility-staff applications of the bureau's county (A13)
        APPLICATION: READ_EXPORT | {CAN_APPROVE, CAN_REJECT},
        # The county's correction tickets, read-only.
        CORRECTION: READ_EXPORT,
    },
    FACILITY: {
        **_REFERENCE,
        CESSATION_STATISTICS: READ_EXPORT,
        # C2: the institution adds, changes and deletes its own visits until the deadline.
        VISIT: ALL,
        FEE_DEDUCTION: READ_EXPORT,
        SELF_CHECK: READ,
        # Registers persons (found by ID and identity data, domain/registry/persons.py), never
        # rewrites them: a quitter or practitioner may be served elsewhere too.
        QUITTER: READ_EXPORT | {CAN_CREATE},
        INSTITUTION: READ_EXPORT,
        CONTRACT: READ_EXPORT,
        PRACTITIONER: READ_EXPORT | {CAN_CREATE},
        ASSIGNMENT: ALL,
        PERSONAL_ID: READ,
        # Its own correction tickets; filing online (C5).
        CORRECTION: READ_EXPORT | {CAN_CREATE},
    },
    # Looks up accounts, unlocks them and sends reset links; nothing else, no clinical data.
    HELPDESK: {**_REFERENCE, INSTITUTION: READ, ACCOUNT: {CAN_READ, CAN_UNLOCK, CAN_SEND_RESET}},
}
#: Every role that uses the REST API may read its OpenAPI document (not the helpdesk).
for _role in (OFFICE, MINISTRY, BUREAU, FACILITY):
    ROLE_GRANTS[_role][OPENAPI] = {CAN_GET}
#: Everyone who can export can follow their own background exports.
for _grants in ROLE_GRANTS.values():
    if any(CAN_EXPORT in actions for actions in _grants.values()):
        _grants[EXPORT_JOB] = READ

#: Self-service pages every signed-in role may use (its own profile and password).
SELF_SERVICE = [
    ("can_userinfo", "{user_view}"),
    ("resetmypassword", "{user_view}"),
    ("userinfoedit", "{user_view}"),
    ("can_this_form_get", "ResetMyPasswordView"),
    ("can_this_form_post", "ResetMyPasswordView"),
    ("can_this_form_get", "UserInfoEditView"),
    ("can_this_form_post", "UserInfoEditView"),
]


def self_service_permissions(appbuilder) -> set[tuple[str, str]]:
    """SELF_SERVICE with the name of the user view actually registered."""
    view = appbuilder.sm.userdbmodelview
    name = view.__name__ if isinstance(view, type) else type(view).__name__
    return {(p, v.format(user_view=name)) for p, v in SELF_SERVICE}


def menus_by_resource(appbuilder) -> dict[str, set[str]]:
    """Menu entries (and their categories) that open a view of each resource."""
    result: dict[str, set[str]] = {}
    for category in appbuilder.menu.get_list():
        items = category.childs or [category]
        for item in items:
            view = getattr(item, "baseview", None)
            resource = getattr(view, "class_permission_name", None)
            if resource:
                names = result.setdefault(resource, set())
                names.add(item.name)
                if item is not category:
                    names.add(category.name)
    return result


def sync_roles(appbuilder) -> dict[str, int]:
    """Create every permission, then set each role's permissions to exactly its grants."""
    from core.security.manager import bump_security_version

    sm = appbuilder.sm
    session = sm.session
    # FAB_CREATE_DB is off, so nothing else creates the two built-in roles.
    for name in (ADMIN, sm.auth_role_public):
        if sm.find_role(name) is None:
            sm.add_role(name)
    _sync_permissions(appbuilder)
    menus = menus_by_resource(appbuilder)

    def pv(permission, view):
        found = sm.find_permission_view_menu(permission, view)
        if found is None:
            raise LookupError(f"no permission {permission} on {view}: is the view registered?")
        return found

    summary = {}
    for role_name, grants in ROLE_GRANTS.items():
        role = sm.find_role(role_name) or sm.add_role(role_name)
        desired = {pv(p, v) for p, v in self_service_permissions(appbuilder)}
        for resource, actions in grants.items():
            for action in actions:
                desired.add(pv(f"can_{action}", resource))
            if CAN_READ in actions:
                for menu in menus.get(resource, ()):
                    desired.add(pv("menu_access", menu))
        role.permissions = sorted(desired, key=lambda p: p.id)
        summary[role_name] = len(desired)
    admin = sm.find_role(ADMIN) or sm.add_role(ADMIN)
    admin.permissions = session.query(sm.permissionview_model).all()
    summary[ADMIN] = len(admin.permissions)
    public = sm.find_role(sm.auth_role_public) or sm.add_role(sm.auth_role_public)
    public.permissions = []
    session.commit()
    bump_security_version()
    return summary


def _sync_permissions(appbuilder) -> None:
    """Create each resource's permissions: the union over every view and API sharing it.

    FAB's own add_permissions() prunes a resource down to the last view's list, so a view
    and an API sharing a resource would delete each other's permissions.
    """
    from flask_appbuilder.baseviews import BaseView

    sm = appbuilder.sm
    wanted: dict[str, set[str]] = {PERSONAL_ID: {"can_read"}}
    for view in appbuilder.baseviews:
        if isinstance(view, BaseView) or hasattr(view, "base_permissions"):
            name = view.class_permission_name
            wanted.setdefault(name, set()).update(view.base_permissions or [])
    for resource, permissions in wanted.items():
        view_menu = sm.add_view_menu(resource)
        for permission in sorted(permissions):
            if sm.find_permission_view_menu(permission, resource) is None:
                sm.add_permission_view_menu(permission, resource)
        for stale in sm.find_permissions_view_menu(view_menu):
            if stale.permission is not None and stale.permission.name not in permissions:
                for role in sm.get_all_roles():
                    if stale in role.permissions:
                        role.permissions.remove(stale)
                sm.session.delete(stale)
    for category in appbuilder.menu.get_list():
        sm.add_permissions_menu(category.name)
        for item in category.childs:
            if item.name != "-":
                sm.add_permissions_menu(item.name)
    sm.session.commit()
