"""藥酒癮指定機構: designations of the addiction programme's institutions (A1), screens and API.

The Ministry lists and maintains every designation; a county bureau its county's
alcohol-treatment ones (domain/addiction/designations.py refuses the rest); a treatment
institution reads its own.
"""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from wtforms import SelectField, StringField

from core.data.datamodel import ScopedInterface
from core.data.filters import institution_text_filter
from core.web.views import ScopedModelRestApi, ScopedModelView, valid_pk
from domain.addiction.designations import (
    DesignationError,
    check_designation,
    designation_refusal,
)
from domain.addiction.grants import DESIGNATION
from models.addiction.designation import Designation, DesignationKind

DESIGNATION_LABELS = {
    "institution": _l("Treatment institution"),
    "kind": _l("Designation"),
    "county": _l("Designating county"),
    "document_number": _l("Designation document no."),
    "start_date": _l("Start date"),
    "end_date": _l("End date"),
}


class DesignationAllowed:
    """Form validator on the kind: the domain's refusal shown in the form, which keeps what
    was typed (a refusal in pre_add would redirect away from it)."""

    def __call__(self, form, field):
        from flask import request
        from wtforms.validators import ValidationError

        from core.data.scope import current_scope

        pk = (request.view_args or {}).get("pk")
        stored = DesignationView.datamodel.get(pk) if pk is not None and valid_pk(pk) else None
        original = (stored.kind, stored.institution) if stored is not None else None
        refusal = designation_refusal(
            field.data, form.institution.data, current_scope(), original
        )
        if refusal:
            raise ValidationError(refusal)


def _checked(item) -> None:
    # FAB's _add/_edit flash what pre_add/pre_update raise but do not roll back.
    from core.extensions import db

    try:
        check_designation(item)
    except DesignationError:
        db.session.rollback()
        raise


class DesignationView(ScopedModelView):
    """Programme designations of institutions (A1)."""

    datamodel = ScopedInterface(Designation)
    class_permission_name = DESIGNATION
    list_title = show_title = _l("Addiction programme designations")
    add_title = _l("Add designation")
    edit_title = _l("Edit designation")
    list_columns = ["institution", "kind", "county", "start_date", "end_date"]
    show_columns = ["institution", "kind", "county", "document_number", "start_date", "end_date"]
    add_columns = edit_columns = ["institution", "kind", "document_number", "start_date", "end_date"]
    search_columns = ["institution", "kind", "start_date", "end_date"]
    search_filters = {"institution": [institution_text_filter()]}
    search_form_extra_fields = {
        "institution": StringField(_l("Treatment institution")),
        "kind": SelectField(_l("Designation"), choices=DesignationKind.choices()),
    }
    order_columns = ["start_date", "end_date"]
    base_order = ("start_date", "desc")
    label_columns = DESIGNATION_LABELS
    formatters_columns = {"kind": DesignationKind.label_of}
    add_form_extra_fields = {
        "kind": SelectField(
            _l("Designation"), choices=DesignationKind.choices(), validators=[DesignationAllowed()]
        )
    }
    edit_form_extra_fields = add_form_extra_fields
    export_columns = [
        "institution.nhi_code", "institution.registry_code", "institution.name", "kind", "county",
        "document_number", "start_date", "end_date",
    ]  # fmt: skip
    export_labels = {
        "institution.registry_code": _l("Registry code"),
        "kind": _l("Designation"),
        "county": _l("Designating county"),
        "document_number": _l("Designation document no."),
    }

    def pre_add(self, item):
        _checked(item)
        super().pre_add(item)

    def pre_update(self, item):
        _checked(item)
        super().pre_update(item)


class DesignationApi(ScopedModelRestApi):
    """Designations over REST, under the same rules as the screens."""

    resource_name = "designation"
    datamodel = ScopedInterface(Designation)
    class_permission_name = DESIGNATION
    list_columns = show_columns = [
        "id", "institution.nhi_code", "institution.registry_code", "institution.name", "kind",
        "county.name", "document_number", "start_date", "end_date",
    ]  # fmt: skip
    add_columns = edit_columns = ["institution", "kind", "document_number", "start_date", "end_date"]
    search_columns = ["institution", "kind", "start_date", "end_date"]
    order_columns = ["start_date"]
    base_order = ("start_date", "desc")
    label_columns = DESIGNATION_LABELS

    def pre_add(self, item):
        check_designation(item)

    def pre_update(self, item):
        check_designation(item)
