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
    RadioField,
    SelectField,
    StringField,
    TextAreaField,
)
from wtforms.validators import Optional

from core import clock
from core.data.datamodel import ScopedInterface
from core.data.filters import institution_text_filter, sees_ids_masked
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
from domain.addiction.grants import CASE, RECORD, RECORD_FORM
from domain.addiction.records import (
    CASE_LOOKUP_LIMIT,
    CONTENT_FIELDS,
    FORM_FILES,
    MAX_LAB_ROWS,
    RECORD_FILES,
    LabRowInput,
    RecordError,
    RecordInput,
    RegisterRecordForm,
    WriteRecord,
    content_field_order,
    course_on,
    course_record_lines,
    find_open_cases,
    institution_forms,
    is_kind,
    open_courses,
    serving_staff,
)
from models.addiction.case import Case
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
    """The fields every record has; every kind's content fields are added by record_form_class()."""

    case = SelectField(_l("Case"), coerce=str, validate_choice=False)
    course = SelectField(_l("Treatment course"), coerce=str, validate_choice=False)
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


#: The fields that every kind's record has (their errors always count; see _valid_for).
COMMON_FIELDS = ("csrf_token", "case", "course", "kind", "executed_on", "author", "minutes", "mode",
                 "form_version", "pdf")  # fmt: skip


def record_form_class():
    """The record form: the common fields, every kind's content fields once, the lab rows.

    All kinds are in one form so that changing the kind on the page only shows other fields
    (templates/records/form.html): nothing typed is lost, and the server validates the kind
    the form is saved with."""
    fields = {}
    for spec in content_field_order():
        fields[f"c_{spec.name}"] = TextAreaField(spec.label, validators=[Optional()])
    fields["lab"] = FieldList(FormField(LabRowForm), min_entries=3, max_entries=MAX_LAB_ROWS)
    return type("RecordEntryForm", (RecordFormBase,), fields)


def _valid_for(form, kind) -> bool:
    """The form validated, counting only the errors of the fields that `kind` uses (a hidden
    field of another kind never blocks a save with a message the user cannot see)."""
    form.validate()
    used = set(COMMON_FIELDS) | {f"c_{s.name}" for s in CONTENT_FIELDS.get(kind, ())}
    if kind == TreatmentKind.LAB_TEST:
        used.add("lab")
    return not any(form[name].errors for name in used if name in form)


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
    """The course of this id if the user may see it; None for any other value."""
    return ScopedInterface(Course).get(int(pk)) if valid_pk(pk) else None


def _case_in_scope(pk) -> Case | None:
    """The case of this id if the user may see it; None for any other value."""
    return ScopedInterface(Case).get(int(pk)) if valid_pk(pk) else None


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
    # The author is a colleague named as one (the practitioner's own str() carries a masked ID).
    formatters_columns = {"kind": enum_formatter(TreatmentKind), "profession": enum_formatter(StaffProfession),
                          "author": lambda author: author.name if author is not None else ""}  # fmt: skip
    export_columns = ["executed_on", "institution.nhi_code", "institution.name", "case_id", "course_id",
                      "kind", "author.name", "profession", "minutes", "sha256"]  # fmt: skip
    export_labels = {"author.name": _l("Author"), "case_id": _l("Case"), "course_id": _l("Treatment course")}
    list_eager = ["institution", "case", "author", "case.patient"]
    list_defer = ["content"]  # each row's JSON body, decoded for nothing (25 a page)

    def _record(self, pk) -> TreatmentRecord:
        item = self.datamodel.get(pk) if valid_pk(pk) else None
        if item is None:
            abort(404)
        return item

    def _render_form(self, form, kind, course, record=None, case=None, courses=None):
        """The record form: authors and blank forms of the course's (or case's) institution,
        the course picked from the case's open courses when the page has no course."""
        institution_id = course.institution_id if course is not None else case.institution_id if case else None
        staff = serving_staff(institution_id) if institution_id else []
        form.author.choices = [("", "")] + [(str(p.id), p.name) for p in staff]
        kinds = [record.kind] if record is not None else list(TreatmentKind)
        blank_forms = [f for k in kinds for f in institution_forms(institution_id, k)] if institution_id else []
        form.form_version.choices = [(str(f.id), str(f)) for f in blank_forms]
        if courses is not None:
            form.course.choices = [("", gettext("The course that holds the execution date"))] + [
                (str(c.id), f"{c}（{c.status_label}）") for c in courses
            ]
        fields = content_field_order()
        return self.render_template(
            "records/form.html", title=self.edit_title if record else self.add_title,
            form=form, kind=kind, course=course, record=record, case=case, courses=courses,
            content_fields=[(getattr(form, f"c_{s.name}"), s) for s in fields],
            kind_fields={k.value: [f"c_{s.name}" for s in CONTENT_FIELDS.get(k, ())] for k in TreatmentKind},
            required_fields={k.value: [f"c_{s.name}" for s in CONTENT_FIELDS.get(k, ()) if s.required]
                             for k in TreatmentKind},
            blank_forms=blank_forms, kind_label=TreatmentKind.label_of, to_roc=to_roc,
            course_periods={str(c.id): [c.start_date.isoformat(), c.end_date.isoformat()] for c in courses or ()},
        )  # fmt: skip

    def _lookup(self):
        """No course and no case given: find the open case by ID or name first (never a
        course number to type)."""
        text = request.args.get("q", "")[:50]
        cases = find_open_cases(text, sees_ids_masked()) if text.strip() else []
        return self.render_template(
            "records/pick_case.html", title=self.add_title, q=text, cases=cases, searched=bool(text.strip()),
            kind=request.args.get("kind") if is_kind(request.args.get("kind")) else None,
            limit=CASE_LOOKUP_LIMIT, to_roc=to_roc,
            can_open=self.appbuilder.sm.has_access(f"can_{CAN_CREATE}", CASE),
        )  # fmt: skip

    @expose("/add", methods=["GET", "POST"])
    @has_access
    def add(self):
        """A new record of a course (?course=<id>), or of one of a case's open courses
        (?case=<id>), or first a case lookup; ?kind=<kind> preselects the kind."""
        kind = request.values.get("kind") if is_kind(request.values.get("kind")) else None
        course_arg, case_arg = request.values.get("course"), request.values.get("case")
        case = courses = None
        if case_arg:
            case = _case_in_scope(case_arg)
            if case is None:
                abort(404)  # another institution's case by URL or form: as if it did not exist
            courses = open_courses(case.id)
        form = record_form_class()()
        if courses is not None:
            chosen = {str(c.id): c for c in courses}
            course = chosen.get(str(course_arg or ""))
            if request.method == "GET" and course is None:
                course = course_on(courses, clock.today()) or (courses[-1] if courses else None)
        else:
            course = _course_in_scope(course_arg) if course_arg else None
            if request.method == "GET" and course_arg and course is None:
                abort(404)  # another institution's course by URL: as if it did not exist
            if request.method == "GET" and course is None:
                return self._lookup()
        if request.method == "GET":
            form.course.data = str(course.id) if course else ""
            form.case.data = str(case.id) if case else ""
            form.kind.data = kind
            from flask import g

            practitioner_id = getattr(getattr(g, "user", None), "practitioner_id", None)
            form.author.data = str(practitioner_id or "")
        elif "switch" in request.form:
            pass  # the kind changed without JavaScript: the same form, the new kind's fields
        elif _valid_for(form, kind):
            if courses is not None and course is None:
                # No course picked: the case's open course that holds the execution date.
                course = course_on(courses, form.executed_on.data)
            with refusals_flashed():
                if courses is not None and course is None:
                    raise RecordError(gettext(
                        "No open course of this case holds the execution date: choose the course."
                    ))  # fmt: skip
                data = _input_from_form(form, kind)
                data.course_id = course.id if course is not None else form.course.data
                record = WriteRecord(data).run()
                flash(gettext("The treatment record was saved."), "success")
                return redirect(url_for(".show", pk=record.id))
        return self._render_form(form, kind, course, case=case, courses=courses)

    @expose("/edit/<pk>", methods=["GET", "POST"])
    @has_access
    def edit(self, pk):
        """Correct a record (its course and kind stay); the change is kept in the audit trail."""
        record = self._record(pk)
        kind = record.kind
        form = record_form_class()()
        if request.method == "GET":
            form.course.data, form.executed_on.data = str(record.course_id), record.executed_on
            form.kind.data = kind
            form.author.data, form.minutes.data = str(record.author_id), str(record.minutes or "")
            form.mode.data = "pdf" if record.stored_name else "structured"
            form.form_version.data = str(record.form_id or "")
            for spec in CONTENT_FIELDS.get(kind, ()):
                getattr(form, f"c_{spec.name}").data = (record.content or {}).get(spec.name, "")
            while len(form.lab.entries) < min(len(record.lab_results), MAX_LAB_ROWS):
                form.lab.append_entry()  # every stored result, not only the first three
            for entry, row in zip(form.lab, record.lab_results, strict=False):
                entry.substance.data, entry.sampled_on.data = row.substance, row.sampled_on
                entry.outcome.data, entry.value.data = row.outcome, row.value
        elif _valid_for(form, kind):
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
        form.institution.choices = [(str(i.id), str(i)) for i in institutions]
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
    """/course/<id>/records, the old address of a course's records: the course page shows
    them, so the old links (bookmarks, mails) land there."""

    route_base = "/course"
    default_view = "records"
    class_permission_name = RECORD
    method_permission_name = {"records": CAN_READ}

    @expose("/<pk>/records")
    @has_access
    def records(self, pk):
        """Redirect to the course page (its records section) for a course in scope; 404 else."""
        course = _course_in_scope(pk)
        if course is None:
            abort(404)
        return redirect(url_for("CourseView.page", pk=course.id, _anchor="course-records"))


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
    for rid, executed_on, kind, author, profession, minutes, pdf, content in rows:
        # Dates, ids and minutes are digits and slashes: nothing to escape.
        results = None if pdf else labs.get(rid)
        content = "PDF" if pdf else _topic(content) + ("".join(
            f"{text[substance]} {outcomes[outcome]}；" for substance, outcome in results
        ) if results else "")  # fmt: skip
        out.append(
            f'<tr><td><a href="{before}{rid}{after}">{to_roc(executed_on)}</a></td>'
            f"<td>{kinds[kind]}</td><td>{text[author]}（{professions[profession]}）</td>"
            f'<td>{minutes or ""}</td><td>{content}</td></tr>'
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

