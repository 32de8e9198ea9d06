"""Visit records (就醫資料) and quitters (戒菸者): entry under rules C1–C4."""

from __future__ import annotations

from flask import g, request
from flask_appbuilder.fieldwidgets import BS3TextFieldWidget
from flask_appbuilder.models.sqla.filters import FilterEqual
from flask_babel import lazy_gettext as _l
from sqlalchemy import select
from wtforms import IntegerField, SelectField, StringField
from wtforms.validators import DataRequired, Optional, ValidationError

from core import clock
from core.data.datamodel import ScopedInterface
from core.data.filters import institution_text_filter, practitioner_text_filter, related_text_filter
from core.data.rules import enum_label, form_validators
from core.dates import to_roc
from core.extensions import db
from core.validators import normalize_id
from core.web.fields import RocDateField
from core.web.views import ScopedModelRestApi, ScopedModelView
from domain.cessation.grants import QUITTER, QUITTER_IDENTITY, VISIT
from domain.cessation.visits import VisitRuleError, check_visit, enforce_on_delete, enforce_on_write
from domain.registry.persons import register_person, registering_institutions
from models.cessation.visit import Quitter, Sex, Visit
from models.registry.institution import InstitutionKind
from views.registry.persons import PersonIdentityView, person_post

VISIT_LABELS = {
    "visit_date": _l("Visit date"),
    "institution": _l("Institution"),
    "practitioner": _l("Practitioner"),
    "quitter": _l("Quitter"),
    "medication_name": _l("Medication"),
    "medication_days": _l("Medication days"),
    "education_minutes": _l("Education minutes"),
    "services_text": _l("Services"),
    "entry_deadline": _l("Entry deadline"),
    "timeliness": _l("Timeliness"),
    "timeliness_label": _l("Timeliness"),
    "entered_at": _l("Entered at"),
    "quitter_national_id": _l("National ID / resident certificate no."),
    "quitter_name": _l("Quitter's name"),
    "quitter_sex": _l("Sex"),
    "quitter_birth_date": _l("Birth date"),
    "original_date": _l("Originally recorded date"),
    "corrected_by_number": _l("Corrected by ticket"),
}
QUITTER_LABELS = {
    "national_id": _l("National ID / resident certificate no."),
    "name": _l("Full name"),
    "sex": _l("Sex"),
    "birth_date": _l("Birth date"),
}


def quitter_text_filter():
    return related_text_filter(Quitter, ("national_id", "name"), _l("ID or name contains"), "quit_txt")


def _find_quitter(national_id: str | None) -> Quitter | None:
    national_id = normalize_id(national_id)
    if not national_id:
        return None
    return db.session.scalar(select(Quitter).where(Quitter.national_id == national_id))


#: Export headers of a quitter's columns beside a visit or a correction ticket.
QUITTER_EXPORT_LABELS = {
    "quitter.national_id": _l("Quitter's national ID"),
    "quitter.name": _l("Quitter's name"),
}

class VisitRules:
    """Form validator on the visit date: the whole rule set, shown next to the field."""

    def __call__(self, form, field):
        if field.data is None or form.errors:
            return
        institution = getattr(form, "institution", None)
        practitioner = getattr(form, "practitioner", None)
        if institution is None or institution.data is None or practitioner is None or practitioner.data is None:
            return
        pk = (request.view_args or {}).get("pk")
        visit = db.session.get(Visit, int(pk)) if pk and str(pk).isdigit() else None
        if hasattr(form, "quitter_national_id"):
            quitter = _find_quitter(form.quitter_national_id.data)
            quitter_id = quitter.id if quitter else None
        else:
            quitter_id = visit.quitter_id if visit is not None else None
        try:
            check_visit(
                institution_id=institution.data.id,
                practitioner_id=practitioner.data.id,
                quitter_id=quitter_id,
                visit_date=field.data,
                medication_days=form.medication_days.data,
                education_minutes=form.education_minutes.data,
                exclude_visit_id=visit.id if visit is not None else None,
            )
        except VisitRuleError as exc:
            raise ValidationError(str(exc)) from None


class VisitView(ScopedModelView):
    """就醫資料: the institution enters and corrects its own visits until the deadline (C1–C3)."""

    datamodel = ScopedInterface(Visit)
    class_permission_name = VISIT
    list_title = show_title = _l("Visit records")
    add_title = _l("Add visit record")
    edit_title = _l("Edit visit record")
    list_columns = ["visit_date", "institution", "quitter", "practitioner", "services_text",
                    "entry_deadline", "timeliness_label"]  # fmt: skip
    show_columns = ["visit_date", "institution", "quitter", "practitioner", "medication_name",
                    "medication_days", "education_minutes", "entered_at", "entry_deadline", "timeliness_label",
                    "original_date", "corrected_by_number"]  # fmt: skip
    add_columns = ["institution", "practitioner", "quitter_national_id", "quitter_name", "quitter_sex",
                   "quitter_birth_date", "visit_date", "medication_name", "medication_days", "education_minutes"]  # fmt: skip
    edit_columns = ["practitioner", "visit_date", "medication_name", "medication_days", "education_minutes"]
    search_columns = ["visit_date", "institution", "quitter", "practitioner"]
    # Text boxes, not dropdowns: a national user would otherwise load 11,477 practitioners.
    search_filters = {
        "institution": [institution_text_filter()],
        "quitter": [quitter_text_filter()],
        "practitioner": [practitioner_text_filter()],
    }
    search_form_extra_fields = {
        "institution": StringField(_l("Institution")),
        "quitter": StringField(_l("Quitter")),
        "practitioner": StringField(_l("Practitioner")),
    }
    order_columns = ["visit_date"]
    base_order = ("visit_date", "desc")
    # Cessation visits are seen at medical institutions only: the addiction programme's
    # psychotherapy clinics and social-worker offices (A1) are never offered here.
    add_form_query_rel_fields = {"institution": [["kind", FilterEqual, InstitutionKind.MEDICAL.value]]}
    label_columns = VISIT_LABELS
    formatters_columns = {
        "entry_deadline": to_roc,
    }
    export_columns = ["visit_date", "institution.nhi_code", "institution.name", "quitter.national_id",
                      "quitter.name", "practitioner.name", "medication_name", "medication_days",
                      "education_minutes", "entered_at"]  # fmt: skip
    list_eager = ["institution", "quitter", "practitioner"]
    personal_id_columns = ["quitter.national_id"]
    export_labels = QUITTER_EXPORT_LABELS
    # Field rules (core/data/rules.py: Visit's, and Quitter's for the quitter_* fields) come first.
    validators_columns = {"visit_date": [VisitRules()]}
    add_form_extra_fields = {
        "quitter_national_id": StringField(VISIT_LABELS["quitter_national_id"], validators=form_validators(Quitter, "national_id"), widget=BS3TextFieldWidget()),
        "quitter_name": StringField(VISIT_LABELS["quitter_name"], validators=form_validators(Quitter, "name"), widget=BS3TextFieldWidget()),
        "quitter_sex": SelectField(VISIT_LABELS["quitter_sex"], choices=Sex.choices(), validators=form_validators(Quitter, "sex")),
        "quitter_birth_date": RocDateField(VISIT_LABELS["quitter_birth_date"], validators=[DataRequired(), *form_validators(Quitter, "birth_date")]),
        "medication_days": IntegerField(VISIT_LABELS["medication_days"], validators=[Optional()], widget=BS3TextFieldWidget()),
        "education_minutes": IntegerField(VISIT_LABELS["education_minutes"], validators=[Optional()], widget=BS3TextFieldWidget()),
    }
    edit_form_extra_fields = {
        "medication_days": add_form_extra_fields["medication_days"],
        "education_minutes": add_form_extra_fields["education_minutes"],
    }

    def process_form(self, form, is_created):
        # The quitter's fields name a person, not visit columns: keep them aside.
        if is_created:
            g.visit_quitter = {
                "national_id": normalize_id(form.quitter_national_id.data),
                "name": form.quitter_name.data.strip(),
                "sex": form.quitter_sex.data,
                "birth_date": form.quitter_birth_date.data,
            }
            for name in ("quitter_national_id", "quitter_name", "quitter_sex", "quitter_birth_date"):
                delattr(form, name)

    def pre_add(self, item):
        data = g.pop("visit_quitter")
        # The person is found by national ID *and* identity data, and linked to this
        # institution; a mismatch is registered apart, never reported (domain/registry/persons.py).
        item.quitter = register_person(
            Quitter, data.pop("national_id"), data, [item.institution.id], source="visit"
        )
        item.entered_at = clock.utc_naive()
        item.entered_by_id = getattr(g.user, "id", None)
        _write_or_rollback(item)
        super().pre_add(item)

    def pre_update(self, item):
        from sqlalchemy import inspect

        original = inspect(item).attrs.visit_date.history.deleted
        _write_or_rollback(item, original[0] if original else item.visit_date)
        super().pre_update(item)

    def pre_delete(self, item):
        enforce_on_delete(item)


def _write_or_rollback(item, original_date=None):
    # FAB's _add/_edit flash what pre_add/pre_update raise but do not roll back.
    try:
        enforce_on_write(item, original_date)
    except VisitRuleError:
        db.session.rollback()
        raise


class QuitterView(ScopedModelView):
    """戒菸者: one per national ID nationally; visible where they have a visit in scope."""

    datamodel = ScopedInterface(Quitter)
    class_permission_name = QUITTER
    list_title = show_title = _l("Quitters")
    edit_title = _l("Edit quitter")
    list_columns = ["national_id", "name", "sex", "birth_date"]
    show_columns = add_columns = edit_columns = ["national_id", "name", "sex", "birth_date"]
    add_title = _l("Add quitter")
    search_columns = ["national_id", "name", "birth_date"]
    order_columns = ["name", "birth_date"]
    base_order = ("name", "asc")
    label_columns = QUITTER_LABELS
    personal_id_columns = ["national_id"]
    formatters_columns = {"sex": lambda v: enum_label(Sex, v)}
    add_form_extra_fields = edit_form_extra_fields = {
        "sex": SelectField(QUITTER_LABELS["sex"], choices=Sex.choices())
    }
    related_views = [VisitView]

    def pre_add(self, item):
        item.__dict__["_registered_as"] = register_person(
            Quitter, item.national_id, {f: getattr(item, f) for f in Quitter.__identity_fields__},
            registering_institutions(), new=item,
        )
        super().pre_add(item.__dict__["_registered_as"])


class QuitterIdentityView(PersonIdentityView):
    """身分資料待核對（戒菸者）: quitters registered with identity data that differ from the
    national record of their ID."""

    datamodel = ScopedInterface(Quitter)
    class_permission_name = QUITTER_IDENTITY
    list_title = show_title = _l("Quitters: identity data to reconcile")
    list_columns = show_columns = ["national_id", "name", "sex", "birth_date", "national_record",
                                   "linked_institutions", "created_on"]  # fmt: skip
    label_columns = {**QUITTER_LABELS, **PersonIdentityView.label_columns}
    formatters_columns = {"sex": lambda v: str(Sex(v).label) if v in ("M", "F") else (v or "")}


class VisitApi(ScopedModelRestApi):
    """Visit records over REST; the same rules as the form (C1–C4)."""

    resource_name = "visit"
    datamodel = ScopedInterface(Visit)
    class_permission_name = VISIT
    list_columns = show_columns = ["id", "visit_date", "institution.nhi_code", "quitter.id",
                                   "practitioner.id", "medication_name", "medication_days",
                                   "education_minutes", "entered_at"]  # fmt: skip
    add_columns = ["institution", "practitioner", "quitter", "visit_date", "medication_name",
                   "medication_days", "education_minutes"]  # fmt: skip
    edit_columns = ["practitioner", "visit_date", "medication_name", "medication_days", "education_minutes"]
    search_columns = ["visit_date", "institution", "quitter", "practitioner"]
    order_columns = ["visit_date", "id"]
    base_order = ("visit_date", "desc")
    label_columns = VISIT_LABELS

    def pre_add(self, item):
        item.entered_at = clock.utc_naive()
        item.entered_by_id = getattr(g.get("user"), "id", None)
        _write_or_rollback(item)

    def pre_update(self, item):
        from sqlalchemy import inspect

        original = inspect(item).attrs.visit_date.history.deleted
        _write_or_rollback(item, original[0] if original else item.visit_date)

    def pre_delete(self, item):
        enforce_on_delete(item)


class QuitterApi(ScopedModelRestApi):
    """Quitters over REST (create one before posting its visits)."""

    resource_name = "quitter"
    datamodel = ScopedInterface(Quitter)
    class_permission_name = QUITTER
    list_columns = show_columns = ["id", "national_id", "name", "sex", "birth_date"]
    add_columns = edit_columns = ["national_id", "name", "sex", "birth_date"]
    search_columns = ["national_id", "name"]
    order_columns = ["name"]
    base_order = ("name", "asc")
    label_columns = QUITTER_LABELS
    personal_id_columns = ["national_id"]

    def post_headless(self):
        return person_post(self, Quitter)

