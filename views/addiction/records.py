"""治療紀錄 (A5): records by profession in the built-in form of their kind or as the
institution's own PDF form, the blank record forms (versioned; the Ministry's national list),
lab results, a course's records in date order, and their REST APIs."""

from __future__ import annotations

import datetime as dt

from flask import abort, current_app, flash, redirect, render_template, request, url_for
from flask_appbuilder import expose
from flask_appbuilder.models.filters import BaseFilter
from flask_appbuilder.security.decorators import has_access
from flask_babel import gettext
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from flask_wtf.file import FileField
from markupsafe import Markup, escape
from wtforms import (
    FieldList,
    Form,
    FormField,
    IntegerField,
    RadioField,
    SelectField,
    StringField,
    TextAreaField,
)
from wtforms.validators import Optional

from core.data.datamodel import ScopedInterface
from core.data.filters import institution_text_filter
from core.dates import parse_date, to_roc
from core.web.fields import RocDateField
from core.web.views import (
    CAN_CREATE,
    CAN_EDIT,
    CAN_READ,
    VIEW_METHOD_PERMISSIONS,
    ScopedModelRestApi,
    ScopedModelView,
    ScopedReportView,
    refusals_flashed,
    valid_pk,
)
from domain.addiction.grants import RECORD, RECORD_FORM
from domain.addiction.records import (
    CONTENT_FIELDS,
    FORM_FILES,
    MAX_LAB_ROWS,
    RECORD_FILES,
    LabRowInput,
    RecordError,
    RecordInput,
    RegisterRecordForm,
    WriteRecord,
    course_record_lines,
    institution_forms,
    is_kind,
    serving_staff,
)
from models.addiction.course import Course
from models.addiction.record import (
    LabOutcome,
    LabResult,
    RecordForm,
    TreatmentKind,
    TreatmentRecord,
)
from models.addiction.staff import StaffProfession
from models.registry.institution import Institution
from views.addiction.cases import course_page_sections, enum_formatter

RECORD_LABELS = {
    "executed_on": _l("Execution date"),
    "institution": _l("Treatment institution"),
    "course": _l("Treatment course"),
    "case": _l("Case"),
    "author": _l("Author"),
    "profession": _l("Profession"),
    "kind": _l("Kind of treatment"),
    "minutes": _l("Minutes"),
    "form": _l("Record form"),
    "sha256": _l("SHA-256"),
    "version": _l("Version"),
    "title": _l("Title"),
    "pages": _l("Pages"),
    "size": _l("Size (bytes)"),
    "created_on": _l("Registered at"),
    "substance": _l("Substance"),
    "sampled_on": _l("Sample date"),
    "outcome": _l("Result"),
    "value": _l("Value"),
}
PERMISSIONS = {**VIEW_METHOD_PERMISSIONS, "pdf": CAN_READ}


def _month_bounds(value) -> tuple[dt.date, dt.date] | None:
    """The first and last day of a month typed as ROC 114/03 or 2025-03; None if not one."""
    text = str(value or "").strip().replace("-", "/")
    parts = text.split("/")
    if len(parts) != 2 or not all(p.isascii() and p.isdigit() and len(p) <= 4 for p in parts):
        return None
    year, month = int(parts[0]), int(parts[1])
    year = year + 1911 if year < 1000 else year
    if not (1 <= month <= 12 and 1912 <= year <= 2200):
        return None
    first = dt.date(year, month, 1)
    return first, (first.replace(day=28) + dt.timedelta(days=4)).replace(day=1) - dt.timedelta(days=1)


class MonthFilter(BaseFilter):
    """Records executed in one month (ROC 114/03); a value that is no month matches nothing."""

    name = _l("In month (e.g. 114/03)")
    arg_name = "rec_month"

    def apply(self, query, value):
        bounds = _month_bounds(value)
        column = TreatmentRecord.executed_on
        if bounds is None:
            return query.filter(column.is_(None))  # never null: no rows, and no 500
        return query.filter(column.between(*bounds))


def _kind_choices():
    return [("", "")] + TreatmentKind.choices()


class LabRowForm(Form):
    """One lab result row of the lab-test form."""

    substance = StringField(RECORD_LABELS["substance"], validators=[Optional()])
    sampled_on = RocDateField(RECORD_LABELS["sampled_on"], validators=[Optional()])
    outcome = SelectField(RECORD_LABELS["outcome"], choices=[("", "")] + LabOutcome.choices(), validate_choice=False)
    value = StringField(RECORD_LABELS["value"], validators=[Optional()])


class RecordFormBase(FlaskForm):
    """The fields every record has; the kind's own fields are added by record_form_class()."""

    course = IntegerField(_l("Treatment course"), validators=[Optional()])
    kind = SelectField(RECORD_LABELS["kind"], choices=_kind_choices(), validate_choice=False)
    executed_on = RocDateField(RECORD_LABELS["executed_on"], validators=[Optional()])
    author = SelectField(RECORD_LABELS["author"], coerce=str, validate_choice=False)
    minutes = StringField(RECORD_LABELS["minutes"], validators=[Optional()])
    mode = RadioField(
        _l("Content"), default="structured", validate_choice=False,
        choices=[("structured", _l("The built-in form")), ("pdf", _l("Our own record form (PDF)"))],
    )  # fmt: skip
    form_version = SelectField(_l("Blank record form used"), coerce=str, validate_choice=False)
    pdf = FileField(_l("Filled-in record form (PDF)"))


def record_form_class(kind: str | None):
    """The record form for a kind: the common fields, the kind's content fields, lab rows."""
    fields = {}
    for spec in CONTENT_FIELDS.get(kind, ()):
        fields[f"c_{spec.name}"] = TextAreaField(spec.label, validators=[Optional()])
    if kind == TreatmentKind.LAB_TEST:
        fields["lab"] = FieldList(FormField(LabRowForm), min_entries=3, max_entries=MAX_LAB_ROWS)
    return type("RecordEntryForm", (RecordFormBase,), fields)


def _minutes(text):
    text = str(text or "").strip()
    return int(text) if text.isascii() and text.isdigit() and len(text) < 6 else text or None


def _input_from_form(form, kind) -> RecordInput:
    upload = form.pdf.data
    data = RECORD_FILES.read(upload)
    return RecordInput(
        course_id=form.course.data,
        executed_on=form.executed_on.data,
        author_id=form.author.data,
        kind=kind,
        minutes=_minutes(form.minutes.data),
        content={s.name: getattr(form, f"c_{s.name}").data or "" for s in CONTENT_FIELDS.get(kind, ())},
        lab_rows=[
            LabRowInput(e.substance.data, e.sampled_on.data, e.outcome.data or None, e.value.data)
            for e in getattr(form, "lab", [])
        ],
        pdf=data,
        pdf_name=getattr(upload, "filename", "") or "",
        form_id=form.form_version.data,
        use_pdf=form.mode.data == "pdf",
    )


def _course_in_scope(pk) -> Course | None:
    return ScopedInterface(Course).get(int(pk)) if valid_pk(pk) else None


class TreatmentRecordView(ScopedModelView):
    """治療紀錄: the institution's records (filter by institution and month, Excel export);
    add and correct in the kind's built-in form or as the institution's own PDF form (A5)."""

    datamodel = ScopedInterface(TreatmentRecord)
    class_permission_name = RECORD
    route_base = "/treatmentrecord"
    method_permission_name = PERMISSIONS
    include_route_methods = {"list", "show", "add", "edit", "download", "action", "action_post",
                             "export_xlsx", "pdf"}  # fmt: skip
    list_title = show_title = _l("Treatment records")
    add_title = _l("Add treatment record")
    edit_title = _l("Correct treatment record")
    list_columns = ["executed_on", "institution", "case", "kind", "author", "profession", "minutes"]
    show_columns = list_columns
    add_columns = edit_columns = ["executed_on", "minutes"]  # the forms are record_form_class()'s
    search_columns = ["executed_on", "institution", "kind"]
    search_filters = {"institution": [institution_text_filter()], "executed_on": [MonthFilter]}
    search_form_extra_fields = {
        "institution": StringField(_l("Treatment institution")),
        "executed_on": StringField(RECORD_LABELS["executed_on"]),
        "kind": SelectField(RECORD_LABELS["kind"], choices=TreatmentKind.choices()),
    }
    order_columns = ["executed_on"]
    base_order = ("executed_on", "desc")
    label_columns = RECORD_LABELS
    # Each label translated once per request (50 cells a page).
    formatters_columns = {"kind": enum_formatter(TreatmentKind), "profession": enum_formatter(StaffProfession)}
    export_columns = ["executed_on", "institution.nhi_code", "institution.name", "case_id", "course_id",
                      "kind", "author.name", "profession", "minutes", "sha256"]  # fmt: skip
    export_labels = {"author.name": _l("Author"), "case_id": _l("Case"), "course_id": _l("Treatment course")}
    list_eager = ["institution", "case", "author", "case.patient"]

    def _record(self, pk) -> TreatmentRecord:
        item = self.datamodel.get(pk) if valid_pk(pk) else None
        if item is None:
            abort(404)
        return item

    def _render_form(self, form, kind, course, record=None):
        staff = serving_staff(course.institution_id) if course is not None else []
        form.author.choices = [("", "")] + [(str(p.id), p.name) for p in staff]
        forms = institution_forms(course.institution_id, kind) if course is not None and kind else []
        form.form_version.choices = [(str(f.id), str(f)) for f in forms]
        return self.render_template(
            "records/form.html", title=self.edit_title if record else self.add_title,
            form=form, kind=kind, course=course, record=record,
            content_fields=[getattr(form, f"c_{s.name}") for s in CONTENT_FIELDS.get(kind, ())],
        )  # fmt: skip

    @expose("/add", methods=["GET", "POST"])
    @has_access
    def add(self):
        """A new record of a course (?course=<id>&kind=<kind>); the kind picks its form."""
        kind = request.values.get("kind") if is_kind(request.values.get("kind")) else None
        course_arg = request.values.get("course")
        course = _course_in_scope(course_arg) if course_arg else None
        if request.method == "GET" and course_arg and course is None:
            abort(404)  # another institution's course by URL: as if it did not exist
        form = record_form_class(kind)()
        if request.method == "GET":
            form.course.data = course.id if course else None
            form.kind.data = kind
            from flask import g

            practitioner_id = getattr(getattr(g, "user", None), "practitioner_id", None)
            form.author.data = str(practitioner_id or "")
        elif form.validate_on_submit() and kind:
            with refusals_flashed():
                record = WriteRecord(_input_from_form(form, kind)).run()
                flash(gettext("The treatment record was saved."), "success")
                return redirect(url_for(".show", pk=record.id))
        return self._render_form(form, kind, course)

    @expose("/edit/<pk>", methods=["GET", "POST"])
    @has_access
    def edit(self, pk):
        """Correct a record (its course stays); the change is kept in the audit trail."""
        record = self._record(pk)
        kind = record.kind
        form = record_form_class(kind)()
        if request.method == "GET":
            form.course.data, form.executed_on.data = record.course_id, record.executed_on
            form.author.data, form.minutes.data = str(record.author_id), str(record.minutes or "")
            form.mode.data = "pdf" if record.stored_name else "structured"
            form.form_version.data = str(record.form_id or "")
            for spec in CONTENT_FIELDS.get(kind, ()):
                getattr(form, f"c_{spec.name}").data = (record.content or {}).get(spec.name, "")
            for entry, row in zip(getattr(form, "lab", []), record.lab_results, strict=False):
                entry.substance.data, entry.sampled_on.data = row.substance, row.sampled_on
                entry.outcome.data, entry.value.data = row.outcome, row.value
        elif form.validate_on_submit():
            with refusals_flashed():
                data = _input_from_form(form, kind)
                WriteRecord(data, record).run()
                flash(gettext("The treatment record was corrected."), "success")
                return redirect(url_for(".show", pk=record.id))
        return self._render_form(form, kind, record.course, record)

    @expose("/show/<pk>")
    @has_access
    def show(self, pk):
        """A record with its content: the built-in form's fields, its lab results, or its PDF."""
        record = self._record(pk)
        return self.render_template(
            "records/show.html", title=self.show_title, record=record, to_roc=to_roc,
            fields=[(s.label, (record.content or {}).get(s.name, "")) for s in CONTENT_FIELDS.get(record.kind, ())],
            can_edit=self.appbuilder.sm.has_access(f"can_{CAN_EDIT}", RECORD),
            outcome_label=LabOutcome.label_of, kind_label=TreatmentKind.label_of,
            profession_label=StaffProfession.label_of,
        )  # fmt: skip

    @expose("/pdf/<pk>")
    @has_access
    def pdf(self, pk):
        """The uploaded PDF of a record in scope; 404 for any other."""
        item = self.datamodel.get(pk) if valid_pk(pk) else None
        return RECORD_FILES.send(item, stored=lambda r: r.stored_name, name=lambda r: f"record-{r.id}.pdf")


class RecordFormView(ScopedModelView):
    """紀錄表單: an institution's blank record forms per kind, versioned; the Ministry lists
    every institution's (no patient data, seed Q15) and downloads them."""

    datamodel = ScopedInterface(RecordForm)
    class_permission_name = RECORD_FORM
    route_base = "/recordform"
    method_permission_name = PERMISSIONS
    include_route_methods = {"list", "show", "add", "download", "action", "action_post", "export_xlsx", "pdf"}
    list_title = show_title = _l("Record forms")
    add_title = _l("Register a record form")
    list_columns = ["institution", "kind", "version", "title", "pages", "created_on"]
    show_columns = ["institution", "kind", "version", "title", "pages", "size", "sha256", "created_on"]
    add_columns = ["title"]
    search_columns = ["institution", "kind"]
    search_filters = {"institution": [institution_text_filter()]}
    search_form_extra_fields = {
        "institution": StringField(_l("Treatment institution")),
        "kind": SelectField(RECORD_LABELS["kind"], choices=TreatmentKind.choices()),
    }
    order_columns = ["kind", "version", "created_on"]
    base_order = ("created_on", "desc")
    label_columns = RECORD_LABELS
    formatters_columns = {"kind": TreatmentKind.label_of}
    export_columns = ["institution.nhi_code", "institution.name", "kind", "version", "title", "pages",
                      "size", "sha256", "created_on"]  # fmt: skip
    list_eager = ["institution"]

    @expose("/add", methods=["GET", "POST"])
    @has_access
    def add(self):
        """Register a blank form: the kind's next version at one of the user's institutions."""

        class RegisterForm(FlaskForm):
            institution = SelectField(_l("Treatment institution"), coerce=str, validate_choice=False)
            kind = SelectField(RECORD_LABELS["kind"], choices=_kind_choices(), validate_choice=False)
            title = StringField(RECORD_LABELS["title"], validators=[Optional()])
            pdf = FileField(_l("Blank record form (PDF)"))

        form = RegisterForm()
        if request.method == "GET" and is_kind(request.args.get("kind")):
            form.kind.data = request.args["kind"]  # from a record form that found none of its kind
        institutions = ScopedInterface(Institution).scoped_query().order_by(Institution.nhi_code).limit(200).all()
        form.institution.choices = [(str(i.id), f"{i.nhi_code} {i.name}") for i in institutions]
        if form.validate_on_submit():
            upload = form.pdf.data
            with refusals_flashed():
                item = RegisterRecordForm(
                    form.institution.data, form.kind.data, form.title.data,
                    FORM_FILES.read(upload), getattr(upload, "filename", "") or "",
                ).run()  # fmt: skip
                flash(gettext("Version %(n)d of the record form was registered.", n=item.version), "success")
                return redirect(url_for(".show", pk=item.id))
        return self.render_template("records/register_form.html", title=self.add_title, form=form)

    @expose("/pdf/<pk>")
    @has_access
    def pdf(self, pk):
        """The blank PDF of a form in scope; 404 for any other."""
        item = self.datamodel.get(pk) if valid_pk(pk) else None
        return FORM_FILES.send(
            item, stored=lambda f: f.stored_name, name=lambda f: f"{f.title}-v{f.version}.pdf"
        )


class CourseRecordsView(ScopedReportView):
    """療程紀錄: a course's records in date order (the course page links here)."""

    route_base = "/course"
    default_view = "records"
    class_permission_name = RECORD
    method_permission_name = {"records": CAN_READ}

    @expose("/<pk>/records")
    @has_access
    def records(self, pk):
        """Every record of a course in scope, oldest first; 404 for any other course."""
        course = _course_in_scope(pk)
        if course is None:
            abort(404)
        return self.render_template(
            "records/course.html", title=_l("Records of the course"), course=course,
            rows=course_record_rows(course), kinds=list(TreatmentKind),
            can_add=self.appbuilder.sm.has_access(f"can_{CAN_CREATE}", RECORD),
        )  # fmt: skip


class _Escaped(dict):
    """Values to their HTML-escaped text (`label_of` first, if given), each done once per page."""

    def __init__(self, label_of=str):
        super().__init__()
        self.label_of = label_of

    def __missing__(self, value):
        text = self[value] = str(escape(self.label_of(value)))
        return text


def _topic(content) -> str:
    """A built-in record's first field (its topic, assessment …), escaped, at most 40 characters."""
    first = next(iter((content or {}).values()), "") if isinstance(content, dict) else ""
    first = str(first or "")
    return f"{escape(first[:40])}{'…' if len(first) > 40 else ''} " if first else ""


def course_record_rows(course) -> Markup:
    """The <tr> rows of a course's records, oldest first, built with one str.join.

    Through Jinja, each of 200 rows cost a url_for, three label lookups and a dozen escapes:
    loading and rendering them took 22-27 ms CPU (min of 30, a 201-record course, SQLite,
    demo scale, a loaded 2-core machine); here, with the show URL made once and each author,
    label and substance escaped once, 5-7 ms, of which 2-4 ms is course_record_lines.
    """
    rows, labs = course_record_lines(course.id)
    before, after = str(escape(url_for("TreatmentRecordView.show", pk="__pk__"))).split("__pk__")
    kinds, professions = _Escaped(TreatmentKind.label_of), _Escaped(StaffProfession.label_of)
    outcomes, text = _Escaped(LabOutcome.label_of), _Escaped()
    out = []
    for r in rows:
        # Dates, ids and minutes are digits and slashes: nothing to escape.
        results = None if r.pdf else labs.get(r.id)
        content = "PDF" if r.pdf else _topic(r.content) + ("".join(
            f"{text[substance]} {outcomes[outcome]}；" for substance, outcome in results
        ) if results else "")  # fmt: skip
        out.append(
            f'<tr><td><a href="{before}{r.id}{after}">{to_roc(r.executed_on)}</a></td>'
            f"<td>{kinds[r.kind]}</td><td>{text[r.author]}（{professions[r.profession]}）</td>"
            f'<td>{r.minutes or ""}</td><td>{content}</td></tr>'
        )
    return Markup("".join(out))


def course_records_section(course) -> Markup:
    """The course page's records in date order (views/addiction/cases.py course_page_sections)."""
    return Markup(render_template(
        "records/_course_records.html", course=course, rows=course_record_rows(course),
        kinds=list(TreatmentKind), can_add=current_app.appbuilder.sm.has_access(f"can_{CAN_CREATE}", RECORD),
    ))  # fmt: skip


def _body_date(value):
    """A date of a JSON body (ISO or ROC text); None for anything else (the command says so)."""
    from core.dates import DateFormatError

    if isinstance(value, str):
        try:
            return parse_date(value)
        except (DateFormatError, ValueError, OverflowError):
            return None
    return None


class TreatmentRecordApi(ScopedModelRestApi):
    """Treatment records over REST: the same command and rules as the form (A5). A lab test's
    results come as `content.results` [{substance, sampled_on, outcome, value}]; PDF records
    are uploaded through the form."""

    resource_name = "treatmentrecord"
    datamodel = ScopedInterface(TreatmentRecord)
    class_permission_name = RECORD
    include_route_methods = {"get", "get_list", "info", "post", "put"}
    list_columns = show_columns = ["id", "course.id", "case.id", "institution.id", "executed_on", "author.id",
                                   "profession", "kind", "minutes", "content", "form.id", "sha256"]  # fmt: skip
    add_columns = ["course", "executed_on", "author", "kind", "minutes", "content"]
    edit_columns = ["executed_on", "author", "minutes", "content"]
    search_columns = ["executed_on", "institution", "kind", "course"]
    order_columns = ["executed_on", "id"]
    base_order = ("executed_on", "desc")
    label_columns = RECORD_LABELS

    def _input(self, body: dict, record: TreatmentRecord | None = None) -> RecordInput:
        content = body.get("content", record.content if record else None)
        rows = []
        if isinstance(content, dict) and isinstance(content.get("results"), list):
            content = dict(content)
            for row in content.pop("results"):
                row = row if isinstance(row, dict) else {}
                rows.append(LabRowInput(row.get("substance"), _body_date(row.get("sampled_on")),
                                        row.get("outcome"), row.get("value")))  # fmt: skip
        elif record is not None and "content" not in body:
            rows = [LabRowInput(r.substance, r.sampled_on, r.outcome, r.value) for r in record.lab_results]
        executed = body["executed_on"] if "executed_on" in body else (record.executed_on.isoformat() if record else None)
        return RecordInput(
            course_id=body.get("course"),
            executed_on=_body_date(executed),
            author_id=body.get("author", record.author_id if record else None),
            kind=body.get("kind", record.kind if record else None),
            minutes=body.get("minutes", record.minutes if record else None),
            content=content, lab_rows=rows,
            use_pdf=bool(record and record.stored_name and "content" not in body),
            form_id=record.form_id if record else None,
        )  # fmt: skip

    def _write(self, body, record=None, status=201):
        try:
            item = WriteRecord(self._input(body, record), record).run()
        except RecordError as exc:
            return self.response(exc.status, message=exc.answer())
        return self.response(status, id=item.id, result=self.show_model_schema.dump(item))

    def post_headless(self):
        body = request.get_json(silent=True)
        if not isinstance(body, dict):
            return self.response_400(message=gettext("A value in the request is not valid."))
        errors = self._relation_errors(self.add_columns)
        if errors:
            return self.response_422(message=errors)
        return self._guarded(self._write, body)

    def put_headless(self, pk):
        record = self.datamodel.get(int(pk)) if valid_pk(pk) else None
        if record is None:
            return self.response_404()
        body = request.get_json(silent=True)
        if not isinstance(body, dict):
            return self.response_400(message=gettext("A value in the request is not valid."))
        errors = self._relation_errors(self.edit_columns)
        if errors:
            return self.response_422(message=errors)
        return self._guarded(self._write, body, record, 200)


class RecordFormApi(ScopedModelRestApi):
    """Blank record forms over REST, read-only (registered with their PDF through the form)."""

    resource_name = "recordform"
    datamodel = ScopedInterface(RecordForm)
    class_permission_name = RECORD_FORM
    include_route_methods = {"get", "get_list", "info"}
    list_columns = show_columns = ["id", "institution.id", "kind", "version", "title", "pages", "size",
                                   "sha256", "created_on"]  # fmt: skip
    search_columns = ["institution", "kind"]
    order_columns = ["kind", "version", "id"]
    base_order = ("id", "asc")
    label_columns = RECORD_LABELS


class LabResultApi(ScopedModelRestApi):
    """Lab results over REST, read-only: the structured rows of lab-test records."""

    resource_name = "labresult"
    datamodel = ScopedInterface(LabResult)
    class_permission_name = RECORD
    include_route_methods = {"get", "get_list", "info"}
    list_columns = show_columns = ["id", "record.id", "substance", "sampled_on", "outcome", "value"]
    search_columns = ["substance", "sampled_on", "outcome"]
    order_columns = ["sampled_on", "id"]
    base_order = ("sampled_on", "asc")
    label_columns = RECORD_LABELS


def register(appbuilder, category: str, label, icon: str) -> None:
    """The records' screens in the addiction menu, the course page and the APIs."""
    for view, name, title, view_icon in (
        (TreatmentRecordView, "TreatmentRecords", _l("Treatment records"), "fa-file-text-o"),
        (RecordFormView, "RecordForms", _l("Record forms"), "fa-file-pdf-o"),
    ):
        appbuilder.add_view(view, name, label=title, icon=view_icon, category=category,
                            category_label=label, category_icon=icon)  # fmt: skip
    appbuilder.add_view_no_menu(CourseRecordsView)
    if course_records_section not in course_page_sections:
        course_page_sections.append(course_records_section)
    for api in (TreatmentRecordApi, RecordFormApi, LabResultApi):
        appbuilder.add_api(api)

