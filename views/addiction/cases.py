"""個案 and 療程 screens and APIs (issue 14 items 3–4, A2): one form registers the patient and
opens the case; the case page reads like a chart; each course has its own page."""

from __future__ import annotations

from flask import abort, flash, redirect, request, url_for
from flask_appbuilder import expose
from flask_appbuilder.fieldwidgets import BS3TextFieldWidget
from flask_appbuilder.models.sqla.filters import FilterEqual
from flask_appbuilder.security.decorators import has_access
from flask_appbuilder.urltools import get_filter_args
from flask_babel import gettext
from flask_babel import lazy_gettext as _l
from sqlalchemy import select
from sqlalchemy.orm import joinedload
from wtforms import SelectField, StringField
from wtforms.validators import DataRequired, Optional

from core.data.datamodel import ScopedInterface
from core.data.filters import related_text_filter
from core.data.rules import enum_label
from core.data.versions import request_memo
from core.errors import UserError
from core.extensions import db
from core.security.permissions import can_see_full_ids
from core.validators import mask_personal_id
from core.web.fields import RocDateField
from core.web.views import (
    VIEW_METHOD_PERMISSIONS,
    ScopedModelRestApi,
    ScopedModelView,
    flash_refusal,
    valid_pk,
)
from domain.addiction.cases import CASE_FIELDS, ChangeCase, OpenCase, PatientRegistration
from domain.addiction.courses import (
    ChangeCourseDates,
    CompleteCourse,
    InterruptCourse,
    StartCourse,
    transition_actors,
)
from domain.addiction.grants import CASE, COURSE, PATIENT, RECORD
from domain.registry.persons import registering_institutions
from models.addiction.case import (
    Case,
    CaseStatus,
    EligibilityCategory,
    IdKind,
    Patient,
    PatientSex,
    ReferralSource,
    SubstanceCategory,
)
from models.addiction.course import Course, CourseStatus

PATIENT_LABELS = {
    "id_kind": _l("Identity document"),
    "national_id": _l("ID / resident certificate / passport no."),
    "name": _l("Full name"),
    "sex": _l("Sex"),
    "birth_date": _l("Birth date"),
}
#: The patient's fields on the case form (FAB adds to a view's label dict: not iterated).
PATIENT_FIELDS = ("id_kind", "national_id", "name", "sex", "birth_date")
CASE_LABELS = {
    "patient": _l("Patient"),
    "institution": _l("Treatment institution"),
    "opened_on": _l("Opened on"),
    "substance_category": _l("Substance category"),
    "substances": _l("Substances"),
    "referral_source": _l("Referral source"),
    "eligibility": _l("Eligibility category"),
    "status": _l("Case status"),
    "status_label": _l("Case status"),
    "closed_on": _l("Closed on"),
    "close_reason": _l("Reason for closing"),
    "referred_to": _l("Referred to"),
    "referred_to_code": _l("Code of the institution referred to"),
    "note": _l("Note"),
    **{f"patient_{k}": v for k, v in PATIENT_LABELS.items()},
    "patient.national_id": PATIENT_LABELS["national_id"],
    "patient.name": _l("Patient"),
}
COURSE_LABELS = {
    "case": _l("Case"),
    "institution": _l("Treatment institution"),
    "start_date": _l("Start date"),
    "end_date": _l("End date"),
    "status": _l("Course status"),
    "status_label": _l("Course status"),
    "interrupt_reason": _l("Reason for interruption"),
}

#: Sections of the course page after its own fields, each `(course) -> HTML`: other parts of
#: the programme append theirs (the treatment records in date order, later the assessments).
course_page_sections: list = []
#: Sections of the case page after its courses, each `(case) -> HTML` (the consent panel and
#: the cross-hospital timeline, views/addiction/consent.py).
case_page_sections: list = []


def patient_text_filter():
    """個案 quick search: a full ID (exact, if the viewer sees IDs masked) or a name."""
    return related_text_filter(Patient, ("national_id", "name"), _l("ID or name contains"), "patient_txt")


def enum_formatter(enum):
    """A formatter: the label of a stored value, translated once per request and value.

    A case list page formats 75 enum cells; enum_label translated each afresh: 40% of
    render_rows' time on that page (cProfile, SQLite, demo scale)."""

    def label(value):
        labels = request_memo(("enum-labels", enum), dict)
        text = labels.get(value)
        if text is None:
            text = labels[value] = enum_label(enum, value)
        return text

    return label


class CommandForms:
    """Add and edit forms that run a domain Command: a refusal flashes its message and the
    form comes back with what was typed (FAB's _add/_edit would redirect, losing it)."""

    def add_command(self, form):
        """The Command a valid add form runs."""
        raise NotImplementedError

    def edit_command(self, item, form):
        """The Command a valid edit form runs on `item`."""
        raise NotImplementedError

    def _add(self):
        get_filter_args(self._filters, disallow_if_not_in_search=False)
        exclude_cols = self._filters.get_relation_cols()
        form = self.add_form.refresh()
        if request.method == "POST":
            self._fill_form_exclude_cols(exclude_cols, form)
            if form.validate():
                try:
                    self._saved = self.add_command(form).run()
                except UserError as exc:
                    flash_refusal(exc)
                else:
                    flash(str(self.add_row_message), "success")
                    return None
        else:
            self.update_redirect()
        return self._get_add_widget(form=form, exclude_cols=exclude_cols)

    def _edit(self, pk):
        item = self.datamodel.get(pk, self._base_filters)
        if item is None:
            abort(404)
        if request.method != "POST":
            return super()._edit(pk)
        form = self.edit_form.refresh(request.form)
        if form.validate():
            try:
                self._saved = self.edit_command(item, form).run()
            except UserError as exc:
                flash_refusal(exc)
            else:
                flash(str(self.edit_row_message), "success")
                return None
        return self._get_edit_widget(form=form, exclude_cols=[])

    def post_add_redirect(self):
        return redirect(url_for(".show", pk=self._saved.id))

    def post_edit_redirect(self):
        return redirect(url_for(".show", pk=self._saved.id))


class PatientView(ScopedModelView):
    """個案當事人: the persons this institution serves (registered through the case form)."""

    datamodel = ScopedInterface(Patient)
    class_permission_name = PATIENT
    base_permissions = ["can_read", "can_export"]
    list_title = show_title = _l("Patients")
    list_columns = ["national_id", "name", "sex", "birth_date"]
    show_columns = ["id_kind", "national_id", "name", "sex", "birth_date"]
    search_columns = ["national_id", "name", "birth_date"]
    order_columns = ["name", "birth_date"]
    base_order = ("name", "asc")
    label_columns = dict(PATIENT_LABELS)
    personal_id_columns = ["national_id"]
    formatters_columns = {"sex": enum_formatter(PatientSex), "id_kind": enum_formatter(IdKind)}


class CaseView(CommandForms, ScopedModelView):
    """個案: the institution's cases; the case page reads like a chart."""

    datamodel = ScopedInterface(Case)
    class_permission_name = CASE
    base_permissions = ["can_read", "can_export", "can_create", "can_edit"]
    list_title = show_title = _l("Cases")
    add_title = _l("Open a case")
    edit_title = _l("Edit case")
    show_template = "addiction/case_show.html"
    list_template = "addiction/case_list.html"  # the quick search box by ID or name
    list_columns = ["patient", "institution", "opened_on", "substance_category", "referral_source", "status"]
    show_columns = ["patient", "institution", "opened_on", "substance_category", "substances",
                    "referral_source", "eligibility", "status", "closed_on", "close_reason",
                    "referred_to", "note"]  # fmt: skip
    add_columns = ["institution", "patient_id_kind", "patient_national_id", "patient_name",
                   "patient_sex", "patient_birth_date", "opened_on", "substance_category",
                   "substances", "referral_source", "eligibility", "note"]  # fmt: skip
    edit_columns = ["substance_category", "substances", "referral_source", "eligibility", "status",
                    "closed_on", "close_reason", "referred_to_code", "note"]  # fmt: skip
    search_columns = ["patient", "opened_on", "status", "substance_category"]
    search_filters = {"patient": [patient_text_filter()], "status": [FilterEqual], "substance_category": [FilterEqual]}
    # Statuses and substance categories are picked by their zh_TW labels, not typed as codes.
    search_form_extra_fields = {
        "patient": StringField(_l("Patient")),
        "status": SelectField(CASE_LABELS["status"], choices=CaseStatus.choices()),
        "substance_category": SelectField(CASE_LABELS["substance_category"], choices=SubstanceCategory.choices()),
    }
    order_columns = ["opened_on"]
    base_order = ("opened_on", "desc")
    label_columns = dict(CASE_LABELS)
    list_eager = ["patient", "institution"]
    export_columns = ["opened_on", "institution.nhi_code", "institution.name", "patient.national_id",
                      "patient.name", "substance_category", "substances", "referral_source",
                      "eligibility", "status", "closed_on", "close_reason"]  # fmt: skip
    export_labels = {"patient.national_id": PATIENT_LABELS["national_id"], "patient.name": _l("Patient")}
    personal_id_columns = ["patient.national_id"]
    formatters_columns = {
        "substance_category": enum_formatter(SubstanceCategory), "referral_source": enum_formatter(ReferralSource),
        "eligibility": enum_formatter(EligibilityCategory), "status": enum_formatter(CaseStatus),
    }  # fmt: skip
    add_form_extra_fields = {
        "patient_id_kind": SelectField(PATIENT_LABELS["id_kind"], choices=IdKind.choices()),
        "patient_national_id": StringField(PATIENT_LABELS["national_id"], validators=[DataRequired()], widget=BS3TextFieldWidget()),
        "patient_name": StringField(PATIENT_LABELS["name"], validators=[DataRequired()], widget=BS3TextFieldWidget()),
        "patient_sex": SelectField(PATIENT_LABELS["sex"], choices=PatientSex.choices()),
        "patient_birth_date": RocDateField(PATIENT_LABELS["birth_date"], validators=[DataRequired()]),
        "substance_category": SelectField(CASE_LABELS["substance_category"], choices=SubstanceCategory.choices()),
        "referral_source": SelectField(CASE_LABELS["referral_source"], choices=ReferralSource.choices()),
        "eligibility": SelectField(CASE_LABELS["eligibility"], choices=EligibilityCategory.choices()),
    }
    edit_form_extra_fields = {
        "substance_category": add_form_extra_fields["substance_category"],
        "referral_source": add_form_extra_fields["referral_source"],
        "eligibility": add_form_extra_fields["eligibility"],
        "status": SelectField(CASE_LABELS["status"], choices=CaseStatus.choices()),
        "referred_to_code": StringField(CASE_LABELS["referred_to_code"], validators=[Optional()], widget=BS3TextFieldWidget()),
    }

    def add_command(self, form):
        patient = {k: form[f"patient_{k}"].data for k in PATIENT_FIELDS}
        case = {k: form[k].data for k in ("opened_on", "substance_category", "substances",
                                          "referral_source", "eligibility", "note")}  # fmt: skip
        institution = form.institution.data
        return OpenCase(patient, case, institution.id if institution is not None else None)

    def edit_command(self, item, form):
        before = item.status
        for name in ("substance_category", "substances", "referral_source", "eligibility", "status",
                     "closed_on", "close_reason", "note"):  # fmt: skip
            value = form[name].data
            setattr(item, name, None if value == "" else value)
        return ChangeCase(item, before, form.referred_to_code.data)

    @expose("/show/<pk>", methods=["GET"])
    @has_access
    def show(self, pk):
        """The chart: the person, this institution's cases of the person, the courses."""
        case = self.datamodel.get(pk, self._base_filters) if str(pk).isdigit() else None
        if case is None:
            abort(404)
        cases = db.session.scalars(
            select(Case).where(Case.patient_id == case.patient_id, Case.institution_id == case.institution_id)
            .order_by(Case.opened_on.desc(), Case.id.desc())
        ).all()  # fmt: skip
        courses = db.session.scalars(
            select(Course).where(Course.case_id == case.id).order_by(Course.start_date)
        ).all()
        national_id = case.patient.national_id
        return self.render_template(
            self.show_template, title=self.show_title, item=case, cases=cases, courses=courses,
            national_id=national_id if can_see_full_ids() else mask_personal_id(national_id),
            can_start=self.appbuilder.sm.has_access("can_create", COURSE) and case.status == CaseStatus.OPEN.value,
            can_edit=self.appbuilder.sm.has_access("can_edit", CASE),
            can_add_record=self.appbuilder.sm.has_access("can_create", RECORD),
            sections=[section(case) for section in case_page_sections],
            labels=CASE_LABELS, PatientSex=PatientSex, IdKind=IdKind, enum_label=enum_label,
            SubstanceCategory=SubstanceCategory, ReferralSource=ReferralSource,
            EligibilityCategory=EligibilityCategory, CaseStatus=CaseStatus, CourseStatus=CourseStatus,
        )  # fmt: skip


class CourseView(CommandForms, ScopedModelView):
    """療程 (A2): start, end (start + 1 year unless given), status with its history."""

    route_base = "/course"
    datamodel = ScopedInterface(Course)
    class_permission_name = COURSE
    method_permission_name = {**VIEW_METHOD_PERMISSIONS, "page": "read", "complete": "edit", "interrupt": "edit"}
    base_permissions = ["can_read", "can_export", "can_create", "can_edit"]
    list_title = show_title = _l("Treatment courses")
    add_title = _l("Start a course")
    edit_title = _l("Edit course dates")
    show_template = "addiction/course_show.html"
    list_columns = ["case", "start_date", "end_date", "status"]
    show_columns = ["case", "start_date", "end_date", "status", "interrupt_reason"]
    # The end date may be left empty (A2's default): a field of its own, since the column's
    # rule requires a value.
    add_columns = ["case", "start_date", "course_end"]
    edit_columns = ["start_date", "course_end"]
    search_columns = ["start_date", "end_date", "status"]
    search_form_extra_fields = {"status": SelectField(COURSE_LABELS["status"], choices=CourseStatus.choices())}
    order_columns = ["start_date", "end_date"]
    base_order = ("start_date", "desc")
    label_columns = dict(COURSE_LABELS)
    list_eager = ["case", "case.patient", "case.institution"]
    export_columns = ["start_date", "end_date", "status", "interrupt_reason"]
    formatters_columns = {"status": enum_formatter(CourseStatus)}
    add_form_extra_fields = edit_form_extra_fields = {
        "course_end": RocDateField(COURSE_LABELS["end_date"], validators=[Optional()],
                                   description=_l("Leave empty for one year after the start date.")),
    }

    def add_command(self, form):
        case = form.case.data
        return StartCourse(case.id if case is not None else None, form.start_date.data, form.course_end.data)

    def edit_command(self, item, form):
        return ChangeCourseDates(item, form.start_date.data, form.course_end.data)

    def _course(self, pk):
        course = self.datamodel.get(pk, self._base_filters) if str(pk).isdigit() else None
        if course is None:
            abort(404)
        return course

    def _course_page(self, pk):
        """The course with its case, the case's patient and institution in one statement
        (the page heads with them): 3 lazy loads fewer; with course_record_lines the page
        went from 11 statements to 7 (bench/addiction_pages.py, SQLite, demo scale)."""
        if not valid_pk(pk):
            abort(404)
        case = joinedload(Course.case, innerjoin=True)
        # Its transitions too (the history): one statement fewer (course page 6 -> 5 with
        # course_record_lines' lab results joined to the records).
        query = self.datamodel.scoped_query().filter(Course.id == int(pk)).options(
            case.joinedload(Case.patient, innerjoin=True), case.joinedload(Case.institution, innerjoin=True),
            joinedload(Course.transitions),
        )  # fmt: skip
        query = self._base_filters.apply_all(query) if self._base_filters else query
        course = query.one_or_none()
        if course is None:
            abort(404)
        return course

    @expose("/show/<pk>", methods=["GET"])
    @has_access
    def show(self, pk):
        """The course page: its fields, its history, then every section others add."""
        course = self._course_page(pk)
        return self.render_template(
            self.show_template, title=self.show_title, item=course,
            sections=[section(course) for section in course_page_sections],
            actors=transition_actors(course.transitions),
            can_edit=self.appbuilder.sm.has_access("can_edit", COURSE),
            labels=COURSE_LABELS, CourseStatus=CourseStatus, enum_label=enum_label,
        )  # fmt: skip

    @expose("/<int:pk>", methods=["GET"])
    @has_access
    def page(self, pk):
        """`/course/<id>`: the course page."""
        return self.show(str(pk))

    @expose("/complete/<pk>", methods=["POST"])
    @has_access
    def complete(self, pk):
        """進行中 → 已完成."""
        course = self._course(pk)
        try:
            CompleteCourse(course).run()
            flash(gettext("The course is completed."), "success")
        except UserError as exc:
            flash_refusal(exc)
        return redirect(url_for(".show", pk=pk))

    @expose("/interrupt/<pk>", methods=["POST"])
    @has_access
    def interrupt(self, pk):
        """進行中 → 中斷, with the reason typed."""
        course = self._course(pk)
        try:
            InterruptCourse(course, request.form.get("reason")).run()
            flash(gettext("The course is interrupted."), "success")
        except UserError as exc:
            flash_refusal(exc)
        return redirect(url_for(".show", pk=pk))


class PatientApi(ScopedModelRestApi):
    """Patients over REST: POST finds the patient by ID (a mismatch is refused) or registers one."""

    resource_name = "patient"
    datamodel = ScopedInterface(Patient)
    class_permission_name = PATIENT
    include_route_methods = {"get", "get_list", "info", "post"}
    list_columns = show_columns = ["id", "id_kind", "national_id", "name", "sex", "birth_date"]
    add_columns = ["id_kind", "national_id", "name", "sex", "birth_date"]
    search_columns = ["national_id", "name"]
    order_columns = ["name"]
    base_order = ("name", "asc")
    label_columns = dict(PATIENT_LABELS)
    personal_id_columns = ["national_id"]

    def post_headless(self):
        return command_post(self, lambda body: PatientRegistration(body, registering_institutions()))


class CaseApi(ScopedModelRestApi):
    """Cases over REST: POST opens a case of a patient (by its identity) at the user's institution."""

    resource_name = "case"
    datamodel = ScopedInterface(Case)
    class_permission_name = CASE
    include_route_methods = {"get", "get_list", "info", "post"}
    list_columns = show_columns = ["id", "patient.id", "institution.id", "opened_on", "substance_category",
                                   "substances", "referral_source", "eligibility", "status", "closed_on"]  # fmt: skip
    add_columns = ["institution", "opened_on", "substance_category", "substances", "referral_source", "eligibility"]
    search_columns = ["opened_on", "status", "institution"]
    order_columns = ["opened_on", "id"]
    base_order = ("opened_on", "desc")
    label_columns = dict(CASE_LABELS)

    def post_headless(self):
        """The body's case fields, and `patient`: the patient's identity (as PatientApi's POST)."""
        return command_post(self, lambda body: OpenCase(
            body.get("patient") if isinstance(body.get("patient"), dict) else {},
            {k: body.get(k) for k in CASE_FIELDS}, body.get("institution"),
        ))  # fmt: skip


class CourseApi(ScopedModelRestApi):
    """Courses over REST: POST starts a course of a case in scope (A2's rules as the form)."""

    resource_name = "course"
    datamodel = ScopedInterface(Course)
    class_permission_name = COURSE
    include_route_methods = {"get", "get_list", "info", "post"}
    list_columns = show_columns = ["id", "case.id", "institution_id", "start_date", "end_date", "status",
                                   "interrupt_reason"]  # fmt: skip
    add_columns = ["case", "start_date", "end_date"]
    search_columns = ["start_date", "end_date", "status", "case"]
    order_columns = ["start_date", "id"]
    base_order = ("start_date", "desc")
    label_columns = dict(COURSE_LABELS)

    def post_headless(self):
        return command_post(self, lambda body: StartCourse(
            body.get("case"), body.get("start_date"), body.get("end_date")))


def _dates(body: dict) -> dict:
    """The body's ISO dates as dates (a bad one left as typed: the rules refuse it)."""
    import datetime as dt

    out = dict(body)
    for key in ("birth_date", "opened_on", "start_date", "end_date"):
        if isinstance(out.get(key), str):
            try:
                out[key] = dt.date.fromisoformat(out[key])
            except ValueError:
                pass
        if isinstance(out.get(key), dict):
            out[key] = _dates(out[key])
    if isinstance(out.get("patient"), dict):
        out["patient"] = _dates(out["patient"])
    return out


def command_post(api, build):
    """A REST POST that runs a domain Command: 201 with the new row, or its refusal's status."""
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        return api.response_400(message="Request is not JSON")

    def save():
        row = build(_dates(body)).run()
        return api.response(201, id=row.id, result=api.show_model_schema.dump(row))

    return api._guarded(save)


def register(appbuilder) -> None:
    """個案, 療程 and 個案當事人 under the addiction menu; their APIs."""
    from views.addiction import CATEGORY, CATEGORY_ICON, CATEGORY_LABEL

    menu = {"category": CATEGORY, "category_label": CATEGORY_LABEL, "category_icon": CATEGORY_ICON}
    appbuilder.add_view(CaseView, "Cases", label=_l("Cases"), icon="fa-folder-open", **menu)
    appbuilder.add_view(CourseView, "Treatment courses", label=_l("Treatment courses"), icon="fa-calendar", **menu)
    appbuilder.add_view(PatientView, "Patients", label=_l("Patients"), icon="fa-user", **menu)
    for api in (PatientApi, CaseApi, CourseApi):
        appbuilder.add_api(api)


__all__ = ["CaseView", "CourseView", "PatientView", "case_page_sections", "course_page_sections", "enum_formatter"]
