"""Visit records (就醫資料) and quitters (戒菸者): entry under rules C1–C4."""

from __future__ import annotations

import datetime as dt
import re
import unicodedata

from flask import abort, flash, g, jsonify, redirect, request, url_for
from flask_appbuilder import expose, has_access
from flask_appbuilder.exceptions import DatabaseException
from flask_appbuilder.fieldwidgets import BS3TextFieldWidget, Select2Widget
from flask_appbuilder.models.sqla.filters import FilterEqual
from flask_appbuilder.urltools import get_filter_args
from flask_appbuilder.widgets import FormWidget, ListWidget
from flask_babel import gettext
from flask_babel import lazy_gettext as _l
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from wtforms import IntegerField, SelectField, StringField
from wtforms.validators import Optional, ValidationError

from core import clock
from core.data.datamodel import ScopedInterface
from core.data.filters import (
    institution_text_filter,
    practitioner_text_filter,
    related_text_filter,
    sees_ids_masked,
)
from core.data.rules import enum_label, form_validators
from core.dates import to_roc
from core.errors import UserError
from core.extensions import db
from core.security.permissions import CAN_CREATE
from core.validators import is_valid_personal_id, mask_personal_id, normalize_id
from core.web.fields import RocDateField
from core.web.views import (
    VIEW_METHOD_PERMISSIONS,
    ScopedModelRestApi,
    ScopedModelView,
    _integrity_message,
    valid_pk,
)
from domain.cessation.grants import CORRECTION, QUITTER, QUITTER_IDENTITY, VISIT
from domain.cessation.visits import VisitRuleError, check_visit, enforce_on_delete, enforce_on_write
from domain.registry.persons import identity_matches, register_person, registering_institutions
from models.cessation.visit import Medication, Quitter, Sex, Visit
from models.registry.institution import Institution, InstitutionKind
from models.registry.practitioner import Practitioner
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
    "lock_status": _l("Change status"),
    "medication_label": _l("Medication"),
}
#: The add form's fields that name the quitter (a person, not visit columns).
QUITTER_FIELDS = ("quitter_national_id", "quitter_name", "quitter_sex", "quitter_birth_date")
#: Longest lookup text read (a national ID is 10, a name at most 50 characters).
LOOKUP_MAX = 50
QUITTER_LABELS = {
    "national_id": _l("National ID / resident certificate no."),
    "name": _l("Full name"),
    "sex": _l("Sex"),
    "birth_date": _l("Birth date"),
}


def quitter_text_filter():
    return related_text_filter(Quitter, ("national_id", "name"), _l("ID or name contains"), "quit_txt")


def known_quitter(national_id: str | None, name: str | None = None) -> Quitter | None:
    """The quitter of this ID that the user's scope may see (and, given a name, whose name
    matches it): a facility learns nothing of another institution's quitter through it."""
    national_id = normalize_id(national_id)
    if not national_id or not is_valid_personal_id(national_id):
        return None
    rows = (
        ScopedInterface(Quitter).scoped_query()
        .filter(Quitter.national_id == national_id).order_by(Quitter.id).limit(10).all()
    )  # fmt: skip
    if name is None:
        return rows[0] if rows else None
    return next((row for row in rows if identity_matches_name(row, name)), None)


def identity_matches_name(quitter: Quitter, name: str) -> bool:
    """Whether `name` is the stored name of the quitter, compared as registration compares it."""
    return identity_matches(
        quitter, {"name": name, "sex": quitter.sex, "birth_date": quitter.birth_date}
    )


class FromKnownQuitter:
    """Sex and birth date may be left blank for a known quitter (only the ID and name are
    needed, as in the batch template): taken from the quitter's record in the user's scope."""

    def __init__(self, column: str):
        self.column = column

    def __call__(self, form, field):
        if field.data not in (None, ""):
            return
        known = known_quitter(form.quitter_national_id.data, form.quitter_name.data or "")
        if known is not None:
            field.data = getattr(known, self.column)


class MedicationRequired:
    """Medication days need the medicine (from the list), and the medicine its days."""

    def __call__(self, form, field):
        days = getattr(form, "medication_days", None)
        if field.data and days is not None and days.data is None:
            raise ValidationError(gettext("Please fill in the medication days for the medicine chosen."))
        if not field.data and days is not None and days.data is not None:
            raise ValidationError(gettext("Please choose the medicine given."))


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


class VisitAddFormWidget(FormWidget):
    """The add form with 「儲存並新增下一筆」 beside 儲存, and the quitter lookup above it."""

    template = "visits/add_form.html"


class VisitListWidget(ListWidget):
    """The visit list: edit and delete offered only on rows still open (C2/C3)."""

    template = "visits/list_widget.html"


def _medication_choices():
    return [("", "")] + [(m.value, m.label) for m in Medication]


class VisitView(ScopedModelView):
    """就醫資料: the institution enters and corrects its own visits until the deadline (C1–C3)."""

    datamodel = ScopedInterface(Visit)
    class_permission_name = VISIT
    method_permission_name = {**VIEW_METHOD_PERMISSIONS, "quitter_lookup": CAN_CREATE}
    add_template = "visits/add.html"
    edit_template = "visits/edit.html"
    show_template = "visits/show.html"
    add_widget = VisitAddFormWidget
    list_title = show_title = _l("Visit records")
    add_title = _l("Add visit record")
    edit_title = _l("Edit visit record")
    list_columns = ["visit_date", "institution", "quitter", "practitioner", "services_text",
                    "entry_deadline", "timeliness_label", "lock_status"]  # fmt: skip
    list_widget = VisitListWidget
    show_columns = ["visit_date", "institution", "quitter", "practitioner", "medication_label",
                    "medication_days", "education_minutes", "entered_at", "entry_deadline", "timeliness_label",
                    "lock_status", "original_date", "corrected_by_number"]  # fmt: skip
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
        "quitter_sex": SelectField(VISIT_LABELS["quitter_sex"], choices=[("", "")] + Sex.choices(), validators=[FromKnownQuitter("sex"), *form_validators(Quitter, "sex")], widget=Select2Widget(),
                                   description=_l("For a quitter already seen here, the ID and name are enough.")),
        "quitter_birth_date": RocDateField(VISIT_LABELS["quitter_birth_date"], validators=[FromKnownQuitter("birth_date"), *form_validators(Quitter, "birth_date")]),
        "medication_name": SelectField(VISIT_LABELS["medication_name"], choices=_medication_choices(), validators=[MedicationRequired()], widget=Select2Widget()),
        "medication_days": IntegerField(VISIT_LABELS["medication_days"], validators=[Optional()], widget=BS3TextFieldWidget()),
        "education_minutes": IntegerField(VISIT_LABELS["education_minutes"], validators=[Optional()], widget=BS3TextFieldWidget()),
    }
    edit_form_extra_fields = {
        "medication_name": add_form_extra_fields["medication_name"],
        "medication_days": add_form_extra_fields["medication_days"],
        "education_minutes": add_form_extra_fields["education_minutes"],
    }

    formatters_columns = {
        "entry_deadline": to_roc,
        "medication_name": lambda v: enum_label(Medication, v),
    }

    def process_form(self, form, is_created):
        # The quitter's fields name a person, not visit columns: keep them aside (and the
        # fields themselves, so that a refused form is shown again with what was typed).
        if is_created:
            g.visit_quitter = {
                "national_id": normalize_id(form.quitter_national_id.data),
                "name": form.quitter_name.data.strip(),
                "sex": form.quitter_sex.data,
                "birth_date": form.quitter_birth_date.data,
            }
            g.visit_quitter_fields = {name: form._fields.pop(name) for name in QUITTER_FIELDS}
        if not form.medication_name.data:
            form.medication_name.data = None

    # ------------------------------------------------------------------ add
    def _add(self):
        """FAB's add, except that a refusal raised while saving (a rule, the scope, the
        person registry) shows the form again with what was typed, instead of a redirect
        that throws it away; and a GET is pre-filled from its arguments."""
        get_filter_args(self._filters, disallow_if_not_in_search=False)
        exclude_cols = self._filters.get_relation_cols()
        form = self.add_form.refresh()
        if request.method != "POST":
            self._prefill(form)
            self.update_redirect()
            return self._get_add_widget(form=form, exclude_cols=exclude_cols)
        self._fill_form_exclude_cols(exclude_cols, form)
        if not form.validate():
            return self._get_add_widget(form=form, exclude_cols=exclude_cols)
        self.process_form(form, True)
        item = self.datamodel.obj()
        try:
            form.populate_obj(item)
            self.pre_add(item)
            self.datamodel.add(item)
            self.post_add(item)
        except (UserError, SQLAlchemyError) as exc:
            db.session.rollback()
            flash(str(exc) if isinstance(exc, UserError) else _integrity_message(exc), "danger")
            for name, field in g.pop("visit_quitter_fields", {}).items():
                form._fields[name] = field
            return self._get_add_widget(form=form, exclude_cols=exclude_cols)
        flash(gettext("Saved: the visit of %(quitter)s on %(date)s.", quitter=str(item.quitter),
                      date=to_roc(item.visit_date)), "success")  # fmt: skip
        if request.form.get("save_and_next"):
            # The next visit is usually of the same clinic, practitioner and day.
            g.visit_next_url = url_for(
                ".add", institution=item.institution_id, practitioner=item.practitioner_id,
                visit_date=item.visit_date.isoformat(),
            )  # fmt: skip
        return None

    def _edit(self, pk):
        """FAB's edit, except that a refusal raised while saving (C2–C4 at save time, the
        scope) shows the form again with what was typed, as the add form does."""
        if request.method != "POST":
            return super()._edit(pk)
        get_filter_args(self._filters, disallow_if_not_in_search=False)
        exclude_cols = self._filters.get_relation_cols()
        item = self.datamodel.get(pk, self._base_filters) if valid_pk(pk) else None
        if item is None:
            abort(404)
        form = self.edit_form.refresh(request.form)
        self._fill_form_exclude_cols(exclude_cols, form)
        form._id = self.datamodel.get_pk_value(item)
        if not form.validate():
            return self._get_edit_widget(form=form, exclude_cols=exclude_cols)
        self.process_form(form, False)
        try:
            form.populate_obj(item)
            self.pre_update(item)
            self.datamodel.edit(item)
            self.post_update(item)
        except (UserError, SQLAlchemyError, DatabaseException) as exc:
            db.session.rollback()
            cause = exc.__cause__ if isinstance(exc, DatabaseException) else exc
            flash(str(exc) if isinstance(exc, UserError) else _integrity_message(cause), "danger")
            return self._get_edit_widget(form=form, exclude_cols=exclude_cols)
        flash(self.edit_row_message, "success")
        return None

    def post_add_redirect(self):
        """「儲存並新增下一筆」 opens a fresh form; 儲存 goes back as FAB does."""
        next_url = g.pop("visit_next_url", None)
        return redirect(next_url) if next_url else super().post_add_redirect()

    def _prefill(self, form):
        """GET arguments fill the form; a value that is malformed or out of scope is ignored.

        ?national_id=<ID>&visit_date=<YYYY-MM-DD> (the self-check's 補登), ?_flt_0_quitter=<id>
        (the ＋ on a quitter's visit tab), ?institution=<id>&practitioner=<id> (the next entry).
        """
        args = request.args
        institution = _scoped_row(Institution, args.get("institution"))
        if institution is None:
            # A facility with one institution has nothing to choose.
            own = registering_institutions()
            institution = _scoped_row(Institution, own[0]) if len(own) == 1 else None
        if institution is not None and institution.kind == InstitutionKind.MEDICAL.value:
            form.institution.data = institution
        practitioner = _scoped_row(Practitioner, args.get("practitioner"))
        if practitioner is not None:
            form.practitioner.data = practitioner
        quitter = _scoped_row(Quitter, args.get("_flt_0_quitter")) or known_quitter(
            _short(args.get("national_id"))
        )
        if quitter is not None:
            form.quitter_national_id.data = quitter.national_id
            form.quitter_name.data = quitter.name
            form.quitter_sex.data = quitter.sex
            form.quitter_birth_date.data = quitter.birth_date
        # Visits are expected the same day (C1): today unless the link names the date.
        form.visit_date.data = _iso_date(args.get("visit_date")) or clock.today()

    @expose("/quitter_lookup")
    @has_access
    def quitter_lookup(self):
        """JSON: the quitters in the user's scope with this national ID, or whose name
        contains this text (at most 10). Input it cannot read (a malformed ID, too long, blank)
        is answered 200 with `error` and a zh_TW message: the form's script shows it beside the
        box (a 4xx would also be a console error in the browser, for what is only a typo)."""
        text = " ".join(unicodedata.normalize("NFKC", request.args.get("q", "")).split())
        if not text:
            return jsonify(error=True, message=gettext("Type a national ID or a name to look up."), results=[])
        if len(text) > LOOKUP_MAX:
            return jsonify(error=True, message=gettext("Too long: type a national ID or a name of at most %(n)d characters.", n=LOOKUP_MAX), results=[])
        query = ScopedInterface(Quitter).scoped_query()
        if re.fullmatch(r"[A-Za-z][A-Za-z0-9]*", text):
            national_id = normalize_id(text)
            if not is_valid_personal_id(national_id):
                return jsonify(error=True, message=gettext(
                    "Invalid national ID or resident certificate number: check the letters and the check digit."
                ), results=[])
            rows = query.filter(Quitter.national_id == national_id).order_by(Quitter.id).limit(10).all()
        else:
            pattern = "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            rows = query.filter(Quitter.name.like(pattern, escape="\\")).order_by(Quitter.name, Quitter.id).limit(10).all()
        masked = sees_ids_masked()
        results = [{
            "national_id": mask_personal_id(q.national_id) if masked else q.national_id,
            "fill_id": not masked,
            "name": q.name,
            "sex": q.sex,
            "sex_label": q.sex_label,
            "birth_date": to_roc(q.birth_date),
        } for q in rows]  # fmt: skip
        message = "" if results else gettext("No quitter of yours matches: fill in sex and birth date for a new quitter.")
        return jsonify(error=False, message=message, results=results)

    # ----------------------------------------------------------- edit, show
    @expose("/edit/<pk>", methods=["GET", "POST"])
    @has_access
    def edit(self, pk):
        """The edit page says whether the record is open before anyone types (C2/C3); a
        locked one offers 申請更正 instead of a form the server would refuse."""
        item = self.datamodel.get(pk, self._base_filters) if valid_pk(pk) else None
        if item is not None and not item.lock_status.editable:
            return self.render_template(
                "visits/locked.html", title=self.edit_title, item=item,
                can_correct=self.appbuilder.sm.has_access(f"can_{CAN_CREATE}", CORRECTION),
            )  # fmt: skip
        g.visit_lock = item.lock_status if item is not None else None
        return super().edit(pk)

    @expose("/show/<pk>", methods=["GET"])
    @has_access
    def show(self, pk):
        """The record's page, with its lock state and, once locked, 申請更正 (C3, C5)."""
        item = self.datamodel.get(pk, self._base_filters) if valid_pk(pk) else None
        g.visit_item = item
        g.visit_can_correct = self.appbuilder.sm.has_access(f"can_{CAN_CREATE}", CORRECTION)
        return super().show(pk)

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


def _short(value) -> str:
    """A request argument, cut to the longest value any pre-fill reads."""
    return (value or "")[:LOOKUP_MAX]


def _scoped_row(model, key):
    """The row of this key that the user's scope may see; None for a malformed key."""
    if key is None or not valid_pk(key):
        return None
    return ScopedInterface(model).get(int(key))


def _iso_date(value) -> dt.date | None:
    """A YYYY-MM-DD argument, or None when it is anything else (not a date, out of range)."""
    from core.dates import in_range

    text = _short(value)
    if not re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", text):
        return None
    try:
        day = dt.date.fromisoformat(text)
    except ValueError:
        return None
    return day if in_range(day) and day <= clock.today() else None


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

