"""Who may hold an account (A1): the kinds of organisation an account holder works for.

Prosecutors' offices (地檢署) and NGOs (民間團體) take part in the addiction programme's
referrals but are not users of this system: the account application and the admin's user
forms both ask for the organisation type and refuse these two with a message.
"""

from __future__ import annotations

from flask_babel import gettext
from flask_babel import lazy_gettext as _l

PROSECUTORS_OFFICE = "prosecutors_office"
NGO = "ngo"

#: (value, label) in form order; the last two are offered so that they can be refused.
ORGANISATION_TYPES = [
    ("medical", _l("Medical institution")),
    ("psychotherapy_clinic", _l("Psychotherapy clinic")),
    ("social_work_office", _l("Social-worker office")),
    ("health_authority", _l("Health bureau / drug-prevention centre / health station")),
    ("ministry", _l("Ministry of Health and Welfare")),
    (PROSECUTORS_OFFICE, _l("District prosecutors office")),
    (NGO, _l("Non-governmental organisation")),
]
#: Organisations that can never hold an account.
EXCLUDED_ORGANISATIONS = {PROSECUTORS_OFFICE, NGO}


def organisation_refusal(value) -> str | None:
    """The zh_TW refusal for an organisation type that cannot hold an account, else None."""
    if value in EXCLUDED_ORGANISATIONS:
        return gettext("Prosecutors' offices and NGOs cannot have an account of this system.")
    if value not in {v for v, _ in ORGANISATION_TYPES}:
        return gettext("Please choose the type of your organisation.")
    return None


class OrganisationAllowed:
    """WTForms validator: refuses an organisation type that cannot hold an account."""

    def __call__(self, form, field):
        from wtforms.validators import ValidationError

        refusal = organisation_refusal(field.data)
        if refusal:
            raise ValidationError(refusal)
