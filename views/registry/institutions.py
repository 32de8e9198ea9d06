"""Registries: contracted institutions, contract periods, practitioners, service assignments."""

from __future__ import annotations

import datetime as dt

from flask import flash, g, redirect, request, url_for
from flask_appbuilder import expose, has_access
from flask_appbuilder.api import protect, safe
from flask_appbuilder.fields import QuerySelectField
from flask_appbuilder.fieldwidgets import BS3TextFieldWidget, Select2Widget
from flask_appbuilder.forms import DynamicForm
from flask_babel import gettext
from flask_babel import lazy_gettext as _l
from wtforms import SelectField, StringField
from wtforms.validators import DataRequired

from core.data.datamodel import ScopedInterface
from core.data.filters import institution_text_filter, practitioner_text_filter
from core.data.rules import enum_label
from core.errors import UserError
from core.extensions import db
from core.security.permissions import CAN_CREATE
from core.web.fields import RocDateField
from core.web.views import (
    API_METHOD_PERMISSIONS,
    VIEW_METHOD_PERMISSIONS,
    ScopedModelRestApi,
    ScopedModelView,
)
from domain.registry.grants import (
    ASSIGNMENT,
    CONTRACT,
    INSTITUTION,
    PRACTITIONER,
    PRACTITIONER_IDENTITY,
)
from domain.registry.persons import register_person, registering_institutions
from models.registry.institution import ContractPeriod, Institution, InstitutionKind
from models.registry.practitioner import Practitioner, Profession, ServiceAssignment
from views.addiction.designations import DesignationView
from views.registry.join import JOIN_LABELS, JoinPractitioner
from views.registry.persons import PersonIdentityView, person_post

INSTITUTION_LABELS = {
    "nhi_code": _l("NHI institution code"),
    "registry_code": _l("Registry code"),
    "kind": _l("Institution type"),
    "name": _l("Institution name"),
    "level": _l("Level"),
    "county": _l("County"),
    "address": _l("Address"),
    "phone": _l("Phone"),
    "contracts": _l("Contract periods"),
    "created_on": _l("Created on"),
    "changed_on": _l("Changed on"),
}
CONTRACT_LABELS = {
    "institution": _l("Institution"),
    "start_date": _l("Start date"),
    "end_date": _l("End date"),
}
PRACTITIONER_LABELS = {
    "national_id": _l("National ID / resident certificate no."),
    "name": _l("Full name"),
    "profession": _l("Profession"),
    "licence_number": _l("Licence number"),
    "assignments": _l("Service assignments"),
    "institution": _l("Serving institution"),
    "start_date": _l("Service start date"),
}
ASSIGNMENT_LABELS = {
    "practitioner": _l("Practitioner"),
    "institution": _l("Institution"),
    "start_date": _l("Start date"),
    "end_date": _l("End date"),
}


def _check_dates(item) -> None:
    if item.end_date is not None and item.start_date is not None and item.end_date < item.start_date:
        raise ValueError(gettext("The end date cannot be earlier than the start date."))


class ContractPeriodView(ScopedModelView):
    """Contract periods of institutions (a contract can start and end within a year)."""

    datamodel = ScopedInterface(ContractPeriod)
    class_permission_name = CONTRACT
    list_title = show_title = _l("Contract periods")
    add_title = _l("Add contract period")
    edit_title = _l("Edit contract period")
    list_columns = ["institution", "start_date", "end_date"]
    show_columns = add_columns = edit_columns = ["institution", "start_date", "end_date"]
    search_columns = ["institution", "start_date", "end_date"]
    search_filters = {"institution": [institution_text_filter()]}
    search_form_extra_fields = {"institution": StringField(_l("Institution"))}
    order_columns = ["start_date", "end_date"]
    base_order = ("start_date", "desc")
    label_columns = CONTRACT_LABELS
    export_columns = ["institution.nhi_code", "institution.name", "start_date", "end_date"]

    def pre_add(self, item):
        _check_dates(item)
        super().pre_add(item)

    def pre_update(self, item):
        _check_dates(item)
        super().pre_update(item)


class ServiceAssignmentView(ScopedModelView):
    """Which practitioner serves at which institution, from when to when."""

    datamodel = ScopedInterface(ServiceAssignment)
    class_permission_name = ASSIGNMENT
    list_title = show_title = _l("Service assignments")
    add_title = _l("Add service assignment")
    edit_title = _l("Edit service assignment")
    list_columns = ["practitioner", "institution", "start_date", "end_date"]
    show_columns = add_columns = edit_columns = list_columns
    search_columns = ["institution", "practitioner", "start_date", "end_date"]
    search_filters = {
        "institution": [institution_text_filter()],
        "practitioner": [practitioner_text_filter()],
    }
    search_form_extra_fields = {
        "institution": StringField(_l("Institution")),
        "practitioner": StringField(_l("Practitioner")),
    }
    order_columns = ["start_date", "end_date"]
    base_order = ("start_date", "desc")
    label_columns = ASSIGNMENT_LABELS
    export_columns = [
        "practitioner.name", "institution.nhi_code", "institution.name", "start_date", "end_date",
    ]  # fmt: skip

    def pre_add(self, item):
        _check_dates(item)
        super().pre_add(item)

    def pre_update(self, item):
        _check_dates(item)
        super().pre_update(item)


def _scoped_institutions():
    return ScopedInterface(Institution).scoped_query().order_by(Institution.nhi_code).all()


class JoinPractitionerForm(DynamicForm):
    """加入已登錄的醫事人員: national ID and name as the registry holds them, where and from when."""

    national_id = StringField(
        JOIN_LABELS["national_id"], widget=BS3TextFieldWidget(), validators=[DataRequired()],
        description=_l("Both the national ID and the name must match the practitioner's registration."),
    )  # fmt: skip
    name = StringField(JOIN_LABELS["name"], widget=BS3TextFieldWidget(), validators=[DataRequired()])
    institution = QuerySelectField(
        JOIN_LABELS["institution"], query_func=_scoped_institutions, get_pk_func=lambda item: item.id,
        # A key outside the user's institutions reads as no choice: say what may be chosen.
        widget=Select2Widget(), validators=[DataRequired(message=_l("Choose one of your own institutions."))],
    )  # fmt: skip
    start_date = RocDateField(JOIN_LABELS["start_date"], validators=[DataRequired()])
    end_date = RocDateField(JOIN_LABELS["end_date"])


class PractitionerView(ScopedModelView):
    """Practitioners; adding one also records where they serve, so it stays in scope."""

    datamodel = ScopedInterface(Practitioner)
    class_permission_name = PRACTITIONER
    list_title = show_title = _l("Practitioners")
    add_title = _l("Add practitioner")
    edit_title = _l("Edit practitioner")
    list_template = "registry/practitioner_list.html"
    method_permission_name = {**VIEW_METHOD_PERMISSIONS, "join": CAN_CREATE}
    list_columns = ["name", "national_id", "profession", "licence_number"]
    show_columns = ["name", "national_id", "profession", "licence_number"]
    add_columns = ["national_id", "name", "profession", "licence_number", "institution", "start_date"]
    edit_columns = ["national_id", "name", "profession", "licence_number"]
    search_columns = ["name", "national_id", "profession", "licence_number"]
    order_columns = ["name", "licence_number"]
    base_order = ("name", "asc")
    label_columns = PRACTITIONER_LABELS
    personal_id_columns = ["national_id"]
    related_views = [ServiceAssignmentView]
    formatters_columns = {"profession": lambda v: _profession_label(v)}
    export_columns = ["name", "national_id", "profession", "licence_number"]
    add_form_extra_fields = {
        "profession": SelectField(_l("Profession"), choices=Profession.choices()),
        "institution": QuerySelectField(
            _l("Serving institution"),
            query_func=_scoped_institutions,
            get_pk_func=lambda item: item.id,
            widget=Select2Widget(),
            validators=[DataRequired()],
        ),
        "start_date": RocDateField(_l("Service start date"), validators=[DataRequired()]),
    }
    edit_form_extra_fields = {
        "profession": SelectField(_l("Profession"), choices=Profession.choices()),
    }

    def process_form(self, form, is_created):
        # The two extra fields describe the first assignment, not practitioner columns.
        # Kept on `g`, not on the view: one view instance serves concurrent requests.
        g.new_assignment = None
        if is_created:
            g.new_assignment = (form.institution.data, form.start_date.data)
            del form.institution
            del form.start_date

    def pre_add(self, item):
        institution, start = g.get("new_assignment") or (None, None)
        # Found by national ID and name, or registered (apart, on a mismatch): the answer is
        # the same either way, so it tells nobody whether the ID is known (domain/registry/persons.py).
        person = register_person(
            Practitioner, item.national_id, {"name": item.name}, registering_institutions(),
            new=item,
        )
        item.__dict__["_registered_as"] = person
        if institution is not None:
            person.assignments.append(
                ServiceAssignment(institution=institution, start_date=start)
            )
        super().pre_add(person)

    @expose("/join", methods=["GET", "POST"])
    @has_access
    def join(self):
        """Add a practitioner registered elsewhere to one's own institution by ID and name;
        a refusal keeps the form as typed."""
        form = JoinPractitionerForm.refresh() if request.method == "GET" else JoinPractitionerForm()
        if request.method == "POST" and form.validate():
            command = JoinPractitioner(form.national_id.data, form.name.data, form.institution.data,
                                       form.start_date.data, form.end_date.data)  # fmt: skip
            try:
                assignment = command.run()
            except UserError as exc:
                db.session.rollback()
                flash(str(exc), "danger")
            else:
                flash(gettext("%(person)s now serves at %(institution)s from %(start)s.",
                              person=assignment.practitioner.name, institution=assignment.institution.name,
                              start=form.start_date._value()), "success")  # fmt: skip
                return redirect(url_for(".show", pk=assignment.practitioner_id))
        widget = self.add_widget(form=form, include_cols=list(JOIN_LABELS), exclude_cols=[])
        return self.render_template(
            self.add_template, title=gettext("Add a practitioner registered at another institution"),
            widgets={"add": widget}, form=form,
        )  # fmt: skip


class PractitionerIdentityView(PersonIdentityView):
    """身分資料待核對（醫事人員）: practitioners registered with a name that differs from the
    national record of their ID."""

    datamodel = ScopedInterface(Practitioner)
    class_permission_name = PRACTITIONER_IDENTITY
    list_title = show_title = _l("Practitioners: identity data to reconcile")
    list_columns = show_columns = ["national_id", "name", "profession", "national_record",
                                   "linked_institutions", "created_on"]  # fmt: skip
    label_columns = {**PRACTITIONER_LABELS, **PersonIdentityView.label_columns}
    formatters_columns = {"profession": lambda v: _profession_label(v)}


def _profession_label(value):
    return enum_label(Profession, value)


class InstitutionView(ScopedModelView):
    """Institutions: the cessation programme's contracted ones and the addiction programme's
    (A1). The show page lists its programmes: contract periods (戒菸服務) and designations
    (藥酒癮), each only to a viewer who may read it (readable_related_views)."""

    datamodel = ScopedInterface(Institution)
    class_permission_name = INSTITUTION
    list_title = show_title = _l("Contracted institutions")
    add_title = _l("Add institution")
    edit_title = _l("Edit institution")
    list_columns = ["nhi_code", "registry_code", "name", "level", "county", "phone"]
    show_columns = [
        "kind", "nhi_code", "registry_code", "name", "level", "county", "address", "phone",
    ]  # fmt: skip
    add_columns = edit_columns = ["kind", "nhi_code", "name", "level", "county", "address", "phone"]
    search_columns = ["nhi_code", "registry_code", "name", "level", "county", "address"]
    order_columns = ["nhi_code", "name"]
    base_order = ("nhi_code", "asc")
    label_columns = INSTITUTION_LABELS
    related_views = [ContractPeriodView, DesignationView, ServiceAssignmentView]
    formatters_columns = {"kind": InstitutionKind.label_of}
    # The field rules (models/registry/institution.py) check every field, this one included.
    add_form_extra_fields = {
        "nhi_code": StringField(
            _l("NHI institution code"),
            widget=BS3TextFieldWidget(),
            description=_l("10 digits"),
        ),
        "kind": SelectField(_l("Institution type"), choices=InstitutionKind.choices()),
    }
    edit_form_extra_fields = add_form_extra_fields
    export_columns = ["nhi_code", "name", "level", "county", "address", "phone"]


# ------------------------------------------------------------------ REST APIs
class InstitutionApi(ScopedModelRestApi):
    """Institutions over REST."""

    resource_name = "institution"
    datamodel = ScopedInterface(Institution)
    class_permission_name = INSTITUTION
    list_columns = ["id", "kind", "nhi_code", "registry_code", "name", "level.name", "county.name", "phone"]
    show_columns = [
        "id", "kind", "nhi_code", "registry_code", "name", "level.name", "county.name", "address",
        "phone",
    ]  # fmt: skip
    add_columns = edit_columns = ["kind", "nhi_code", "name", "level", "county", "address", "phone"]
    search_columns = ["nhi_code", "registry_code", "name", "level", "county"]
    order_columns = ["nhi_code", "name"]
    base_order = ("nhi_code", "asc")
    label_columns = INSTITUTION_LABELS


class ContractPeriodApi(ScopedModelRestApi):
    """Contract periods over REST."""

    resource_name = "contract_period"
    datamodel = ScopedInterface(ContractPeriod)
    class_permission_name = CONTRACT
    list_columns = show_columns = ["id", "institution.nhi_code", "start_date", "end_date"]
    add_columns = edit_columns = ["institution", "start_date", "end_date"]
    search_columns = ["institution", "start_date", "end_date"]
    order_columns = ["start_date"]
    base_order = ("start_date", "desc")
    label_columns = CONTRACT_LABELS


class PractitionerApi(ScopedModelRestApi):
    """Practitioners over REST (personal IDs masked for roles that do not need them)."""

    resource_name = "practitioner"
    datamodel = ScopedInterface(Practitioner)
    class_permission_name = PRACTITIONER
    list_columns = show_columns = ["id", "name", "national_id", "profession", "licence_number"]
    add_columns = edit_columns = ["national_id", "name", "profession", "licence_number"]
    search_columns = ["name", "national_id", "profession", "licence_number"]
    order_columns = ["name"]
    base_order = ("name", "asc")
    label_columns = PRACTITIONER_LABELS
    personal_id_columns = ["national_id"]

    method_permission_name = {**API_METHOD_PERMISSIONS, "join": CAN_CREATE}

    def post_headless(self):
        return person_post(self, Practitioner)

    @expose("/join", methods=["POST"])
    @protect()
    @safe
    def join(self):
        """Add a registered practitioner to an institution in scope by national ID and name.
        ---
        post:
          summary: Add a practitioner registered elsewhere to an institution by national ID and name
          requestBody:
            required: true
            content:
              application/json:
                schema:
                  type: object
                  required: [national_id, name, institution, start_date]
                  properties:
                    national_id: {type: string}
                    name: {type: string}
                    institution: {type: integer}
                    start_date: {type: string, format: date}
                    end_date: {type: string, format: date, nullable: true}
          responses:
            201:
              description: The new service assignment (and the practitioner's id)
            400:
              $ref: '#/components/responses/400'
            401:
              $ref: '#/components/responses/401'
            403:
              $ref: '#/components/responses/403'
            409:
              description: The practitioner already serves there in that period
            422:
              $ref: '#/components/responses/422'
        """
        body = request.get_json(silent=True)
        if not isinstance(body, dict):
            return self.response_400(message=gettext("The request body must be a JSON object."))
        dates = {}
        for key in ("start_date", "end_date"):
            value = body.get(key)
            if value in (None, ""):
                dates[key] = None
                continue
            try:
                dates[key] = dt.date.fromisoformat(value) if isinstance(value, str) else None
            except ValueError:
                dates[key] = None
            if dates[key] is None:
                return self.response_422(message={key: [gettext("Please enter a date such as 2025-04-01.")]})
        text = {key: body.get(key) if isinstance(body.get(key), str) else "" for key in ("national_id", "name")}
        institution = body.get("institution")
        if isinstance(institution, bool) or not isinstance(institution, int | str):
            institution = None

        def save():
            assignment = JoinPractitioner(text["national_id"], text["name"], institution,
                                          dates["start_date"], dates["end_date"]).run()  # fmt: skip
            return self.response(201, id=assignment.id, practitioner_id=assignment.practitioner_id)

        return self._guarded(save)


class ServiceAssignmentApi(ScopedModelRestApi):
    """Service assignments over REST."""

    resource_name = "service_assignment"
    datamodel = ScopedInterface(ServiceAssignment)
    class_permission_name = ASSIGNMENT
    list_columns = show_columns = [
        "id", "practitioner.name", "institution.nhi_code", "institution.name", "start_date",
        "end_date",
    ]  # fmt: skip
    add_columns = edit_columns = ["practitioner", "institution", "start_date", "end_date"]
    search_columns = ["institution", "practitioner", "start_date", "end_date"]
    order_columns = ["start_date"]
    base_order = ("start_date", "desc")
    label_columns = ASSIGNMENT_LABELS

