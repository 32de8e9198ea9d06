"""Designations of the addiction programme's institutions (A1): who may designate what.

The Ministry designates every kind, nationally; a county bureau designates only
alcohol-treatment service institutions (酒癮治療服務執行機構), only in its own county, and the
designation is that county's. A psychotherapy clinic or social-worker office is designated
as what it is, and a hospital kind only for a medical institution.
"""

from __future__ import annotations

from flask_babel import gettext
from sqlalchemy import inspect

from core.data.scope import current_scope
from core.errors import UserError
from models.addiction.designation import DESIGNATED_BY_COUNTY, Designation, DesignationKind
from models.registry.institution import InstitutionKind

#: The institution kind each designation kind needs.
INSTITUTION_KIND_FOR = {
    DesignationKind.DRUG_TREATMENT.value: InstitutionKind.MEDICAL.value,
    DesignationKind.ALCOHOL_TREATMENT.value: InstitutionKind.MEDICAL.value,
    DesignationKind.PSYCHOTHERAPY_CLINIC.value: InstitutionKind.PSYCHOTHERAPY_CLINIC.value,
    DesignationKind.SOCIAL_WORK_OFFICE.value: InstitutionKind.SOCIAL_WORK_OFFICE.value,
}


class DesignationError(UserError, ValueError):
    """A designation its writer may not make; str() is the zh_TW message."""


def _original(item, attribute: str):
    """The value an attribute had before this change (the stored one), else its current one."""
    history = inspect(item).attrs[attribute].history
    return history.deleted[0] if history.deleted else getattr(item, attribute)


def designation_refusal(kind, institution, scope, original=None) -> str | None:
    """The zh_TW refusal of designating `institution` as `kind` by a writer of `scope`, else
    None; `original` is the (kind, institution) a change starts from."""
    if institution is None:
        return gettext("Please choose the institution.")
    needed = INSTITUTION_KIND_FOR.get(kind)
    if needed is not None and institution.kind != needed:
        return gettext(
            "This kind of designation does not fit the institution's type (%(kind)s).",
            kind=institution.kind_label,
        )
    if scope.national:
        return None
    kinds, institutions = {kind}, [institution]
    if original is not None:
        kinds.add(original[0])
        institutions.append(original[1])
    if kinds - DESIGNATED_BY_COUNTY:
        return gettext(
            "A county bureau designates only alcohol-addiction treatment service institutions."
        )
    if any(i is not None and i.county_id not in scope.county_ids for i in institutions):
        return gettext("A county bureau designates only institutions of its own county.")
    return None


def check_designation(item: Designation, scope=None) -> None:
    """Refuse a designation (new or changed) that its writer's scope may not make; set the
    designating county of an alcohol-treatment one (the institution's county)."""
    original = None
    if inspect(item).persistent:
        original = (_original(item, "kind"), _original(item, "institution"))
    refusal = designation_refusal(item.kind, item.institution, scope or current_scope(), original)
    if refusal:
        raise DesignationError(refusal)
    # The designating county is the institution's (alcohol treatment), else none (Ministry).
    item.county = item.institution.county if item.kind in DESIGNATED_BY_COUNTY else None
