"""評估 screens and API (A3, A4): the course page's assessment panel, the form rendered from an
instrument version's definition, the response page, the per-instrument Excel export, the list
of courses whose required assessments are due, a case's scores over time as inline SVG, the
REST API for responses, and the admin's licence screen for built-ins that are not free (FTND).

Every write goes through WriteAssessment (domain/addiction/assessments.py): the server
checks the answers against the version (clean_answers) and computes every score; the form's
script only shows and hides items."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from flask import abort, current_app, flash, g, redirect, render_template, request, url_for
from flask_appbuilder import expose
from flask_appbuilder.api import protect, safe
from flask_appbuilder.models.filters import BaseFilter
from flask_appbuilder.security.decorators import has_access
from flask_babel import gettext
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from markupsafe import Markup, escape
from sqlalchemy import inspect as sa_inspect
from sqlalchemy import select
from wtforms import SelectField, TextAreaField
from wtforms.validators import Optional

from core import clock
from core.data.datamodel import ScopedInterface
from core.data.scope import current_scope
from core.dates import DateFormatError, parse_date, to_roc
from core.errors import UserError
from core.export.xlsx import export_file_name, send_xlsx, write_xlsx
from core.extensions import db, without_sqlite_mmap
from core.web.fields import RocDateField
from core.web.views import (
    API_METHOD_PERMISSIONS,
    CAN_CREATE,
    CAN_EDIT,
    CAN_EXPORT,
    CAN_READ,
    VIEW_METHOD_PERMISSIONS,
    ScopedModelRestApi,
    ScopedModelView,
    ScopedReportView,
    flash_refusal,
    valid_pk,
)
from domain.addiction.assessment_bulk import BulkEntry, BulkRefused, ImportAssessments
from domain.addiction.assessment_queries import (
    DUE_SCREEN_LIMIT,
    LICENCE_NOTE_MAX,
    RecordLicence,
    case_score_series,
    count_instrument_responses,
    due_counts,
    due_rows,
    export_columns,
    instrument_export_rows,
)
from domain.addiction.assessments import (
    AssessmentInput,
    WriteAssessment,
    course_assessments,
    published_version,
    usable_instruments,
)
from domain.addiction.grants import (
    ASSESSMENT,
    ASSESSMENT_DUE,
    COURSE,
    INSTRUMENT_LICENCE,
)
from domain.addiction.records import serving_staff
from domain.addiction.scoring import AnswersRefused, battery_key, options_of, shown
from models.addiction.course import Course, CourseStatus
from models.addiction.instrument import AssessmentResponse, Instrument, InstrumentVersion
from models.registry.institution import Institution
from models.registry.reference import County
from views.addiction.cases import course_page_sections

ASSESSMENT_LABELS = {
    "answered_on": _l("Assessment date"),
    "instrument": _l("Instrument"),
    "case": _l("Case"),
    "course": _l("Treatment course"),
    "institution": _l("Treatment institution"),
    "author": _l("Assessor"),
    "total": _l("Total score"),
    "band": _l("Band"),
    "spec": _l("Scoring spec fingerprint"),
    "note": _l("Note"),
    "version": _l("Version"),
}
INSTRUMENT_LABELS = {
    "title": _l("Instrument"),
    "code": _l("Code"),
    "source": _l("Source"),
    "licence": _l("Licence"),
    "free_use": _l("Free to use"),
    "enabled": _l("Enabled"),
    "licence_note": _l("Licence recorded"),
}
#: Widest bar of text an answer field keeps (more is refused by the engine, with its message).
MAX_FIELD = 4000


# ------------------------------------------------------------------ the form
class AssessmentForm(FlaskForm):
    """The fields every assessment has; the items are read from request.form by linkId."""

    answered_on = RocDateField(ASSESSMENT_LABELS["answered_on"], validators=[Optional()])
    author = SelectField(ASSESSMENT_LABELS["author"], coerce=str, validate_choice=False)
    note = TextAreaField(ASSESSMENT_LABELS["note"], validators=[Optional()])


def _field(link: str) -> str:
    """The form field name of an item (a prefix keeps linkIds clear of the fixed fields)."""
    return f"a_{link}"


def answers_from_form(definition: dict, form) -> dict:
    """The typed answers per linkId (empty ones left out; a date typed in ROC handed over as
    ISO, anything else as typed: the engine decides)."""
    answers: dict = {}
    for item in definition.get("items", []):
        kind, link = item.get("type"), item.get("linkId")
        if kind in ("group", "display"):
            continue
        if kind == "multi":
            chosen = [v[:100] for v in form.getlist(_field(link)) if v]
            if chosen:
                answers[link] = chosen
            continue
        value = (form.get(_field(link)) or "")[:MAX_FIELD + 1]
        if kind not in ("string", "text"):
            value = value.strip()
        if not value:
            continue
        if kind == "date":
            try:
                value = parse_date(value).isoformat()
            except (DateFormatError, ValueError, OverflowError):
                pass  # as typed: the engine names the item
        answers[link] = value
    return answers


def _typed(answers: dict, link: str, kind: str):
    """What a field shows: a stored or typed answer (a stored date in ROC)."""
    value = answers.get(link)
    if kind == "date" and isinstance(value, str) and len(value) == 10:
        try:
            return to_roc(dt.date.fromisoformat(value))
        except ValueError:
            return value
    return value


def form_blocks(definition: dict, answers: dict, errors: dict) -> list[dict]:
    """The definition as blocks to render: headings, text, one matrix per battery of
    consecutive items on the same scale (scoring.battery_key), and single items, each with what was
    typed, its error and whether it shows for these answers."""
    visible = shown(definition, answers)
    blocks: list[dict] = []
    for item in definition.get("items", []):
        kind, link = item.get("type"), item["linkId"]
        entry = {
            "item": item, "link": link, "name": _field(link), "kind": kind,
            "options": options_of(definition, item), "value": _typed(answers, link, kind),
            "error": errors.get(link), "hidden": link not in visible, "required": bool(item.get("required")),
            "when": item.get("enableWhen") or [], "behavior": item.get("enableBehavior", "all"),
        }  # fmt: skip
        last = blocks[-1] if blocks else None
        key = battery_key(definition, item)
        if key is not None:
            if last and last["kind"] == "matrix" and last["scale"] == key:
                last["rows"].append(entry)
                continue
            blocks.append({"kind": "matrix", "scale": key, "options": entry["options"], "rows": [entry]})
            continue
        blocks.append(entry)
    # A lone single-choice item on a scale is no battery: its own radio buttons.
    return [b["rows"][0] if b["kind"] == "matrix" and len(b["rows"]) == 1 and b["rows"][0]["kind"] != "likert"
            else b for b in blocks]  # fmt: skip


def _staff_choices(course: Course) -> list[tuple[str, str]]:
    """The assessor choices: staff serving at the course's institution."""
    return [("", "")] + [(str(p.id), p.name) for p in serving_staff(course.institution_id)]


def _course_in_scope(pk) -> Course | None:
    """The course of this id if the user may see it; None for any other value."""
    return ScopedInterface(Course).get(int(pk)) if valid_pk(pk) else None


def _instrument_in_scope(pk) -> Instrument | None:
    """The instrument of this id if the user may see it; None for any other value."""
    return ScopedInterface(Instrument).get(int(pk)) if valid_pk(pk) else None


def score_lines(version: InstrumentVersion, result: dict) -> list[tuple[str, object, str]]:
    """(label, value, band) of each score of a response, in the spec's order."""
    specs = (version.definition.get("scoring") or {}).get("scores") or []
    scores, bands = (result or {}).get("scores") or {}, (result or {}).get("bands") or {}
    return [(s.get("label") or s["name"], scores.get(s["name"]), bands.get(s["name"], "")) for s in specs]


def answer_label(definition: dict, item: dict, value) -> str:
    """An answer as its label (a choice's display text, several joined by 、; a date in ROC)."""
    if value is None or value == "" or value == []:
        return ""
    labels = {o["code"]: o.get("display") or o["code"] for o in options_of(definition, item)}
    if isinstance(value, list):
        return "、".join(str(labels.get(str(v), v)) for v in value)
    if labels:
        return str(labels.get(str(value), value))
    if item.get("type") == "date":
        try:
            return to_roc(dt.date.fromisoformat(str(value)))
        except ValueError:
            return str(value)
    return str(value)


def _whole(value):
    """A score as people write it: 9, not 9.0 (still a number in the export)."""
    if value is None:
        return ""
    return int(value) if float(value).is_integer() else value


class AssessmentView(ScopedModelView):
    """評估紀錄: a course's assessments, filled in on a form rendered from the version's
    definition, corrected on the same version; per-instrument Excel exports."""

    route_base = "/assessment"
    datamodel = ScopedInterface(AssessmentResponse)
    class_permission_name = ASSESSMENT
    method_permission_name = {**VIEW_METHOD_PERMISSIONS, "export_instrument": CAN_EXPORT}
    include_route_methods = {"list", "show", "add", "edit", "download", "action", "action_post",
                             "export_xlsx", "export_instrument"}  # fmt: skip
    base_permissions = ["can_read", "can_export", "can_create", "can_edit"]
    list_title = show_title = _l("Assessments")
    add_title = _l("New assessment")
    edit_title = _l("Correct assessment")
    list_columns = ["answered_on", "instrument", "case", "total", "band", "author"]
    # The forms are the definition's (add/edit below); no relation is picked from a list.
    add_columns = edit_columns = ["answered_on", "note"]
    search_columns = ["answered_on", "instrument"]
    order_columns = ["answered_on"]
    base_order = ("answered_on", "desc")
    label_columns = ASSESSMENT_LABELS
    list_eager = ["instrument", "case", "case.patient", "author"]
    formatters_columns = {"author": lambda author: author.name if author is not None else "",
                          "total": lambda total: _whole(total)}  # fmt: skip
    export_columns = ["answered_on", "institution.nhi_code", "institution.name", "instrument.title", "course_id",
                      "author.name", "total", "band", "spec"]  # fmt: skip
    export_labels = {"instrument.title": _l("Instrument"), "course_id": _l("Treatment course"),
                     "author.name": _l("Assessor")}  # fmt: skip

    def _render_form(self, form, course, version, answers, errors, response=None):
        """The form of a version: its blocks, the date, assessor and note fields."""
        form.author.choices = _staff_choices(course)
        return self.render_template(
            "addiction/assessment_form.html", title=self.edit_title if response else self.add_title,
            form=form, course=course, version=version, instrument=version.instrument, response=response,
            blocks=form_blocks(version.definition, answers, errors), to_roc=to_roc,
            general_errors=[m for k, m in errors.items() if k not in {i["linkId"] for i in version.definition["items"]}],
        )  # fmt: skip

    def _save(self, form, course, version, response=None):
        """Submit through WriteAssessment; a refusal keeps the whole form as typed."""
        answers = answers_from_form(version.definition, request.form)
        errors: dict = {}
        if form.validate():
            given = AssessmentInput(
                course_id=course.id, instrument_id=version.instrument_id, answered_on=form.answered_on.data,
                author_id=form.author.data, answers=answers, note=form.note.data,
            )  # fmt: skip
            # Read before the commit expires them (three statements more after it, per save).
            title = version.instrument.title
            try:
                saved = WriteAssessment(given, response).run()
            except AnswersRefused as exc:
                db.session.rollback()
                errors = dict(exc.errors)
                flash(gettext("Some answers need attention: see the items marked below."), "danger")
            except UserError as exc:
                flash_refusal(exc)
            else:
                flash(gettext("The assessment was saved: %(title)s.", title=title), "success")
                return redirect(url_for(".show", pk=sa_inspect(saved).identity[0]))
        return self._render_form(form, course, version, answers, errors, response)

    @expose("/add", methods=["GET", "POST"])
    @has_access
    def add(self):
        """A new assessment of a course (?course=<id>) on an instrument (?instrument=<id>):
        another institution's course or instrument answers 404, as if it did not exist."""
        if not request.values.get("course"):
            # The list's + button: an assessment belongs to a course, picked on its page.
            flash(gettext("Open the treatment course and choose 新增評估 there."), "info")
            return redirect(url_for("CourseView.list"))
        course = _course_in_scope(request.values.get("course"))
        if course is None:
            abort(404)
        if not request.values.get("instrument"):
            return redirect(url_for("CourseView.page", pk=course.id, _anchor="assessments"))
        instrument = _instrument_in_scope(request.values.get("instrument"))
        if instrument is None:
            abort(404)
        version = published_version(instrument)
        if not instrument.enabled or version is None:
            flash(gettext("%(title)s is not enabled: its licence must be recorded by the system administrator first.",
                          title=instrument.title), "danger")  # fmt: skip
            return redirect(url_for("CourseView.page", pk=course.id))
        form = AssessmentForm()
        if request.method == "GET":
            today = clock.today()
            form.answered_on.data = today if course.start_date <= today <= course.end_date else None
            form.author.data = str(getattr(getattr(g, "user", None), "practitioner_id", None) or "")
            return self._render_form(form, course, version, {}, {})
        return self._save(form, course, version)

    def _response(self, pk) -> AssessmentResponse:
        """The response of this id in scope, or 404."""
        item = self.datamodel.get(int(pk)) if valid_pk(pk) else None
        if item is None:
            abort(404)
        return item

    @expose("/edit/<pk>", methods=["GET", "POST"])
    @has_access
    def edit(self, pk):
        """Correct a response: the same version it was answered on, whatever is newer."""
        response = self._response(pk)
        form = AssessmentForm()
        if request.method == "GET":
            form.answered_on.data, form.note.data = response.answered_on, response.note
            form.author.data = str(response.author_id)
            return self._render_form(form, response.course, response.version, response.answers or {}, {}, response)
        return self._save(form, response.course, response.version, response)

    @expose("/show/<pk>")
    @has_access
    def show(self, pk):
        """The response: each item with its answer as a label, the scores, bands and flags,
        the version and the fingerprint of the spec that computed them."""
        response = self._response(pk)
        definition = response.version.definition
        answers = response.answers or {}
        visible = shown(definition, answers)
        lines = []
        for item in definition.get("items", []):
            if item.get("type") in ("group", "display"):
                lines.append((item, None))
            elif item["linkId"] in visible:
                lines.append((item, answer_label(definition, item, answers.get(item["linkId"]))))
        return self.render_template(
            "addiction/assessment_show.html", title=self.show_title, response=response, lines=lines,
            scores=score_lines(response.version, response.result), flags=(response.result or {}).get("flags") or [],
            can_edit=self.appbuilder.sm.has_access(f"can_{CAN_EDIT}", ASSESSMENT),
            can_export=self.appbuilder.sm.has_access(f"can_{CAN_EXPORT}", ASSESSMENT), to_roc=to_roc,
        )  # fmt: skip

    @expose("/export/instrument/<pk>")
    @has_access
    def export_instrument(self, pk):
        """One instrument's responses in scope: one row per response, one column per item of
        every version (an answer never moves into another item's column). Above
        EXPORT_ASYNC_THRESHOLD responses it runs as a background job with a progress page."""
        instrument = _instrument_in_scope(pk)
        if instrument is None:
            abort(404)
        total = count_instrument_responses(current_scope(), instrument)
        if total > current_app.config["EXPORT_ASYNC_THRESHOLD"]:
            from core.export.background import queue_export

            job = queue_export(self, total, f"instrument={instrument.id}", g.user.id)
            return redirect(url_for("ExportJobView.progress", job_id=job.id))
        path, _count, name = self.write_instrument_export(instrument)
        return send_xlsx(path, name)

    def write_instrument_export(self, instrument: Instrument, progress=None) -> tuple[str, int, str]:
        """The instrument's export, streamed into a temporary .xlsx: (path, rows, file name)."""
        columns = export_columns(instrument)
        headers = [gettext("Assessment id"), str(ASSESSMENT_LABELS["answered_on"]), gettext("Institution code"),
                   gettext("Institution name"), gettext("Treatment course"), gettext("Patient"),
                   str(ASSESSMENT_LABELS["author"]), str(ASSESSMENT_LABELS["version"]),
                   str(ASSESSMENT_LABELS["total"]), str(ASSESSMENT_LABELS["band"]), gettext("Flags"),
                   str(ASSESSMENT_LABELS["spec"]), *(f"{c.link} {c.header}" for c in columns)]  # fmt: skip
        with without_sqlite_mmap(db.session):  # mapped pages would count in the export's memory
            path, count = write_xlsx(
                headers, instrument_export_rows(current_scope(), instrument, columns), sheet_name=instrument.code,
                title=f"{instrument.title}（{gettext('As of')} {to_roc(clock.today())}）",
                max_rows=current_app.config.get("EXPORT_MAX_ROWS"), progress=progress, ready=True,
            )  # fmt: skip
        return path, count, export_file_name(f"{gettext('Assessments')}-{instrument.title}")

    def write_export(self, progress=None) -> tuple[str, int, str]:
        """A background export job: the instrument export (?instrument=<id>), else the list's."""
        if request.args.get("instrument"):
            instrument = _instrument_in_scope(request.args["instrument"])
            if instrument is None:
                abort(404)
            return self.write_instrument_export(instrument, progress)
        return super().write_export(progress)


# ------------------------------------------------------------------ the course panel
@dataclass(frozen=True)
class InstrumentChoice:
    """An instrument offered by 新增評估 (what the panel's select shows)."""

    id: int
    title: str
    purpose: str | None
    builtin: bool
    #: The owner of a custom one: the course's institution (our own) or another that shared it.
    institution_id: int | None = None


def instrument_choices() -> list[InstrumentChoice]:
    """usable_instruments() for the user's scope, cached under the instrument tables' write
    versions: the course page reads them on every view, and without the cache the panel cost
    the page 12 statements (one per instrument's versions; tests/addiction/test_records.py
    holds the course page to 8)."""
    from core.data.scope import current_scope
    from core.web.workqueue import cached_value, scope_key

    return cached_value(
        f"usable-instruments|{scope_key(current_scope())}", ["instrument", "instrument_version"],
        lambda: [InstrumentChoice(i.id, i.title, i.purpose, i.builtin, i.institution_id) for i in usable_instruments()],
    )  # fmt: skip


def assessment_panel(course: Course) -> Markup:
    """The course page's 「評估」 panel: initial and follow-up done or due (overdue with the
    follow-up's due date), the other assessments in date order, and 新增評估."""
    sm = current_app.appbuilder.sm
    if not sm.has_access(f"can_{CAN_READ}", ASSESSMENT):
        return Markup("")
    state = course_assessments(course)
    can_add = sm.has_access(f"can_{CAN_CREATE}", ASSESSMENT) and course.status == CourseStatus.ACTIVE.value
    instruments = instrument_choices() if can_add else []
    return Markup(render_template(
        "addiction/assessment_panel.html", course=course, state=state, today=clock.today(),
        instruments=instruments, can_add=can_add, to_roc=to_roc,
        can_export=sm.has_access(f"can_{CAN_EXPORT}", ASSESSMENT),
    ))  # fmt: skip


# ------------------------------------------------------------------ the case chart
CHART_WIDTH, CHART_HEIGHT, CHART_LEFT, CHART_TOP, CHART_BOTTOM = 560, 200, 40, 12, 36


def score_chart(series) -> Markup:
    """One instrument's totals over time as inline SVG (no script, no CDN): points joined
    by a line, each band's lower threshold a dashed horizontal line with its label."""
    points, bands = series.points, series.bands
    values = [p[1] for p in points]
    low = min([0, *values, *[b["min"] for b in bands]])
    high = max([*values, *[b["max"] for b in bands], low + 1])
    plot_w, plot_h = CHART_WIDTH - CHART_LEFT - 130, CHART_HEIGHT - CHART_TOP - CHART_BOTTOM
    first, last = points[0][0], points[-1][0]
    span = max((last - first).days, 1)

    def x(day):
        """The horizontal position of a day."""
        return CHART_LEFT + (plot_w / 2 if first == last else (day - first).days * plot_w / span)

    def y(value):
        """The vertical position of a score."""
        return CHART_TOP + plot_h - (value - low) * plot_h / (high - low)

    title = f"{series.instrument.title} {series.label}"
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="score-chart" role="img" width="{CHART_WIDTH}" '
        f'height="{CHART_HEIGHT}" viewBox="0 0 {CHART_WIDTH} {CHART_HEIGHT}" aria-label="{escape(title)}" '
        f'data-instrument="{escape(series.instrument.code)}" style="max-width:100%;height:auto">',
        f"<title>{escape(title)}</title>",
        f'<line x1="{CHART_LEFT}" y1="{CHART_TOP + plot_h}" x2="{CHART_LEFT + plot_w}" y2="{CHART_TOP + plot_h}" '
        'stroke="#999"></line>',
        f'<line x1="{CHART_LEFT}" y1="{CHART_TOP}" x2="{CHART_LEFT}" y2="{CHART_TOP + plot_h}" stroke="#999"></line>',
        f'<text x="{CHART_LEFT - 6}" y="{y(high) + 4:.1f}" font-size="11" text-anchor="end">{high:g}</text>',
        f'<text x="{CHART_LEFT - 6}" y="{y(low) + 4:.1f}" font-size="11" text-anchor="end">{low:g}</text>',
    ]
    for band in bands:
        if band["min"] <= low:
            continue  # the lowest band starts at the axis: no line to draw
        line_y = y(band["min"] - 0.5) if float(band["min"]).is_integer() else y(band["min"])
        parts.append(
            f'<line class="band-threshold" data-min="{band["min"]:g}" x1="{CHART_LEFT}" y1="{line_y:.1f}" '
            f'x2="{CHART_LEFT + plot_w}" y2="{line_y:.1f}" stroke="#d9534f" stroke-dasharray="4 3"></line>'
            f'<text x="{CHART_LEFT + plot_w + 4}" y="{line_y + 4:.1f}" font-size="11" fill="#a94442">'
            f'≥{band["min"]:g} {escape(band["label"])}</text>'
        )
    path = " ".join(f"{x(day):.1f},{y(value):.1f}" for day, value, _band, _rid in points)
    if len(points) > 1:
        parts.append(f'<polyline points="{path}" fill="none" stroke="#337ab7" stroke-width="2"></polyline>')
    for day, value, band, _rid in points:
        parts.append(
            f'<circle class="score-point" data-date="{day.isoformat()}" data-total="{value:g}" cx="{x(day):.1f}" '
            f'cy="{y(value):.1f}" r="4" fill="#337ab7"><title>{escape(to_roc(day))}：{value:g} {escape(band)}</title>'
            f'</circle><text x="{x(day):.1f}" y="{y(value) - 7:.1f}" font-size="11" text-anchor="middle">{value:g}</text>'
        )
    parts.append(f'<text x="{CHART_LEFT}" y="{CHART_HEIGHT - 8}" font-size="11">{escape(to_roc(first))}</text>')
    if last != first:
        parts.append(f'<text x="{CHART_LEFT + plot_w}" y="{CHART_HEIGHT - 8}" font-size="11" '
                     f'text-anchor="end">{escape(to_roc(last))}</text>')  # fmt: skip
    parts.append("</svg>")
    return Markup("".join(parts))


def assessment_charts(case) -> Markup:
    """The case page's charts: one per instrument with scored responses of the case."""
    if case is None or not current_app.appbuilder.sm.has_access(f"can_{CAN_READ}", ASSESSMENT):
        return Markup("")
    series = case_score_series(current_scope(), case.id)
    return Markup(render_template(
        "addiction/assessment_charts.html", charts=[(s, score_chart(s)) for s in series], to_roc=to_roc,
    ))  # fmt: skip


# ------------------------------------------------------------------ the due list
def _int_arg(name: str) -> int | None:
    """A query argument as an id, or None for anything else."""
    value = request.args.get(name, "")
    return int(value) if valid_pk(value) else None


class AssessmentDueView(ScopedReportView):
    """評估待辦 (A3): courses in progress whose initial assessment is missing, or whose
    follow-up is due or overdue, per institution and per county; exportable."""

    route_base = "/assessmentdue"
    default_view = "index"
    class_permission_name = ASSESSMENT_DUE
    method_permission_name = {"index": "read", "export": "export"}

    @staticmethod
    def shows_patients() -> bool:
        """Only those who read the courses see whose they are (a bureau sees counts and dates)."""
        return current_app.appbuilder.sm.has_access(f"can_{CAN_READ}", COURSE)

    def headers(self) -> list[str]:
        """The columns of the screen and of the export, in order."""
        out = [gettext("County"), gettext("Institution code"), gettext("Institution name")]
        if self.shows_patients():
            out.append(gettext("Patient"))
        return out + [gettext("Start date"), gettext("Missing"), gettext("Follow-up due"), gettext("Status")]

    def cells(self, row) -> list:
        """One row as the screen and the export show it."""
        out = [row.county, row.institution_code, row.institution]
        if self.shows_patients():
            out.append(row.patient)
        # As the course page says it: overdue once the follow-up's due date has passed.
        status = gettext("Overdue") if row.overdue else gettext("Due")
        return out + [to_roc(row.start_date), row.missing, to_roc(row.follow_up_due), status]

    def _args(self):
        """The county and institution the list is narrowed to."""
        return {"county_id": _int_arg("county"), "institution_id": _int_arg("institution")}

    @expose("/")
    @has_access
    def index(self):
        """The due list on screen: counts per county and institution, the first courses."""
        scope = current_scope()
        per_county, per_institution = due_counts(scope, **self._args())
        rows = list(due_rows(scope, limit=DUE_SCREEN_LIMIT, **self._args()))
        counties = db.session.execute(
            select(County.id, County.name).where(scope.county_filter(County.id)).order_by(County.code)
        ).all()
        institution = _int_arg("institution")
        return self.render_template(
            "addiction/assessment_due.html", title=gettext("Assessments due"), headers=self.headers(),
            rows=[(r, self.cells(r)) for r in rows], per_county=per_county, per_institution=per_institution,
            total=sum(n for _c, n in per_county), limit=DUE_SCREEN_LIMIT, counties=counties,
            county=_int_arg("county"), show_links=self.shows_patients(),
            institution=db.session.scalar(select(Institution.name).where(
                Institution.id == institution, Institution.scope_clause(scope))) if institution else None,
            args={k: v for k, v in request.args.items() if k in ("county", "institution")},
            today=to_roc(clock.today()),
        )  # fmt: skip

    @expose("/export")
    @has_access
    def export(self):
        """The whole due list as .xlsx, streamed."""
        name, as_of = gettext("Assessments due"), gettext("As of")
        path, _ = write_xlsx(
            self.headers(), (self.cells(r) for r in due_rows(current_scope(), **self._args())), sheet_name=name,
            title=f"{name}（{as_of} {to_roc(clock.today())}）", max_rows=current_app.config.get("EXPORT_MAX_ROWS"),
        )  # fmt: skip
        return send_xlsx(path, export_file_name(name))


# ------------------------------------------------------------------ the API
def _body_date(value):
    """A date of a JSON body (ISO or ROC text); None for anything else (the command says so)."""
    if isinstance(value, str):
        try:
            return parse_date(value[:40])
        except (DateFormatError, ValueError, OverflowError):
            return None
    return None


class AssessmentApi(ScopedModelRestApi):
    """Assessments over REST: POST and PUT go through WriteAssessment, so the server checks
    the answers and computes every score; score fields in the body are ignored."""

    resource_name = "assessment"
    datamodel = ScopedInterface(AssessmentResponse)
    class_permission_name = ASSESSMENT
    include_route_methods = {"get", "get_list", "info", "post", "put", "bulk"}
    method_permission_name = {**API_METHOD_PERMISSIONS, "bulk": CAN_CREATE}
    list_columns = show_columns = ["id", "course.id", "case.id", "institution.id", "instrument.id", "version.id",
                                   "version.number", "answered_on", "author.id", "answers", "result", "total",
                                   "band", "spec", "note"]  # fmt: skip
    add_columns = ["course", "instrument", "answered_on", "author", "answers", "note"]
    edit_columns = ["answered_on", "author", "answers", "note"]
    search_columns = ["answered_on", "instrument", "course"]
    order_columns = ["answered_on", "id"]
    base_order = ("answered_on", "desc")
    label_columns = ASSESSMENT_LABELS

    def _write(self, given: AssessmentInput, response=None, status=201):
        """Run WriteAssessment and answer the row as the API shows it."""
        item = WriteAssessment(given, response).run()
        return self.response(status, id=item.id, result=self.show_model_schema.dump(item))

    def _body(self):
        """The JSON body, or None if it is not an object."""
        body = request.get_json(silent=True)
        return body if isinstance(body, dict) else None

    def post_headless(self):
        """A new assessment: relations by id in scope, then WriteAssessment."""
        body = self._body()
        if body is None:
            return self.response_400(message=gettext("A value in the request is not valid."))
        errors = self._relation_errors(self.add_columns)
        if errors:
            return self.response_422(message=errors)
        given = AssessmentInput(
            course_id=body.get("course"), instrument_id=body.get("instrument"),
            answered_on=_body_date(body.get("answered_on")), author_id=body.get("author"),
            answers=body.get("answers"), note=body.get("note") if isinstance(body.get("note"), str) else None,
        )  # fmt: skip
        return self._guarded(self._write, given)

    @expose("/bulk", methods=["POST"])
    @protect()
    @safe
    def bulk(self):
        """Import a batch of responses: all stored, every score computed, or none.
        ---
        post:
          summary: Import a batch of assessment responses (all or nothing)
          description: >-
            Each response names its course, its instrument (id, or code) and optionally a
            published version number (default the newest), the assessment date (ISO or ROC),
            the assessor (practitioner id, or national ID) and the answers by linkId. The
            server checks and scores every response with the engine of single saves; one bad
            response refuses the batch with each line's problems. At most
            ASSESSMENT_BULK_MAX_ROWS responses (default 10,000).
          requestBody:
            required: true
            content:
              application/json:
                schema:
                  type: array
                  items:
                    type: object
                    properties:
                      course: {type: integer}
                      instrument: {type: integer}
                      instrument_code: {type: string}
                      version: {type: integer, nullable: true}
                      answered_on: {type: string, format: date}
                      author: {type: integer}
                      author_national_id: {type: string}
                      answers: {type: object, additionalProperties: true}
                      note: {type: string, nullable: true}
          responses:
            201:
              description: Every response stored; the new ids, ascending
              content:
                application/json:
                  schema:
                    type: object
                    properties:
                      imported: {type: integer}
                      ids: {type: array, items: {type: integer}}
            400:
              $ref: '#/components/responses/400'
            413:
              description: More responses than one batch may hold; nothing stored
              content:
                application/json:
                  schema:
                    type: object
                    properties:
                      message: {type: string}
            422:
              description: Some responses were refused (line = position in the list, from 1); nothing stored
              content:
                application/json:
                  schema:
                    type: object
                    properties:
                      message: {type: string}
                      lines:
                        type: array
                        items:
                          type: object
                          properties:
                            line: {type: integer}
                            errors: {type: object, additionalProperties: {type: string}}
        """
        body = request.get_json(silent=True)
        if isinstance(body, dict) and isinstance(body.get("responses"), list):
            body = body["responses"]
        if not isinstance(body, list):
            return self.response_400(message=gettext("The request body must be a JSON list of responses."))
        entries, malformed = [], []
        for line, item in enumerate(body, start=1):
            if not isinstance(item, dict):
                malformed.append({"line": line, "errors": {"": gettext("Each response must be a JSON object.")}})
                continue
            note = item.get("note")
            entries.append(BulkEntry(
                line=line, course=item.get("course"), instrument=item.get("instrument"),
                instrument_code=item.get("instrument_code") if isinstance(item.get("instrument_code"), str) else None,
                version=item.get("version"), answered_on=item.get("answered_on"),
                author=item.get("author"),
                author_national_id=item.get("author_national_id") if isinstance(item.get("author_national_id"), str)
                else None,
                answers=item.get("answers"), note=note if isinstance(note, str) or note is None else str(note),
            ))  # fmt: skip
        try:
            if malformed:
                raise BulkRefused(gettext("%(bad)d of %(n)d responses have errors, so nothing was imported.",
                                          bad=len(malformed), n=len(body)), malformed)  # fmt: skip
            ids = ImportAssessments(entries).run()
        except BulkRefused as exc:
            db.session.rollback()
            return self.response(exc.status, message=exc.message, **({"lines": exc.lines} if exc.lines else {}))
        except UserError as exc:
            db.session.rollback()
            return self.response(exc.status, message=exc.answer())
        return self.response(201, imported=len(ids), ids=ids)

    def put_headless(self, pk):
        """A correction on the response's own version: what the body omits is kept."""
        response = self.datamodel.get(int(pk)) if valid_pk(pk) else None
        if response is None:
            return self.response_404()
        body = self._body()
        if body is None:
            return self.response_400(message=gettext("A value in the request is not valid."))
        errors = self._relation_errors(self.edit_columns)
        if errors:
            return self.response_422(message=errors)
        answered = body["answered_on"] if "answered_on" in body else response.answered_on.isoformat()
        note = body.get("note", response.note)
        given = AssessmentInput(
            course_id=response.course_id, instrument_id=response.instrument_id, answered_on=_body_date(answered),
            author_id=body.get("author", response.author_id), answers=body.get("answers", response.answers),
            note=note if isinstance(note, str) else None,
        )  # fmt: skip
        return self._guarded(self._write, given, response, 200)


# ------------------------------------------------------------------ admin: licences
class BuiltinFilter(BaseFilter):
    """The instruments the system ships (no institution)."""

    name = _l("Built-in")
    arg_name = "builtin"

    def apply(self, query, value):
        """Only the instruments with no institution."""
        return query.filter(Instrument.institution_id.is_(None))


class InstrumentLicenceView(ScopedModelView):
    """量表授權 (Admin): the built-ins with their source and licence; one whose licence is
    not free (FTND) is enabled only with the licence recorded."""

    route_base = "/instrumentlicence"
    datamodel = ScopedInterface(Instrument)
    class_permission_name = INSTRUMENT_LICENCE
    method_permission_name = {**VIEW_METHOD_PERMISSIONS, "licence": CAN_EDIT}
    include_route_methods = {"list", "show", "licence", "download", "action", "action_post"}
    base_permissions = ["can_read", "can_edit"]
    base_filters = [["institution_id", BuiltinFilter, None]]
    list_title = show_title = _l("Instrument licences")
    list_columns = ["title", "code", "licence", "free_use", "enabled", "licence_note"]
    show_columns = ["title", "code", "source", "licence", "free_use", "enabled", "licence_note"]
    search_columns = ["title", "code"]
    order_columns = ["title", "code"]
    base_order = ("code", "asc")
    label_columns = INSTRUMENT_LABELS
    formatters_columns = {"free_use": lambda v: gettext("Yes") if v else gettext("No"),
                          "enabled": lambda v: gettext("Yes") if v else gettext("No")}  # fmt: skip
    show_template = "addiction/assessment_licence_show.html"

    def _instrument(self, pk) -> Instrument:
        """The built-in of this id, or 404."""
        item = self.datamodel.get(int(pk), self._base_filters) if valid_pk(pk) else None
        if item is None:
            abort(404)
        return item

    @expose("/show/<pk>")
    @has_access
    def show(self, pk):
        """The instrument, its licence, and (not free) the form that records it."""
        item = self._instrument(pk)
        return self.render_template(
            self.show_template, title=self.show_title, item=item, labels=INSTRUMENT_LABELS,
            max_note=LICENCE_NOTE_MAX, can_edit=self.appbuilder.sm.has_access(f"can_{CAN_EDIT}", INSTRUMENT_LICENCE),
        )  # fmt: skip

    @expose("/licence/<pk>", methods=["POST"])
    @has_access
    def licence(self, pk):
        """Enable with the licence note recorded, or disable."""
        item = self._instrument(pk)
        enable = request.form.get("enable") == "1"
        try:
            RecordLicence(item.id, (request.form.get("note") or "")[:LICENCE_NOTE_MAX + 1], enable).run()
        except UserError as exc:
            flash_refusal(exc)
        else:
            flash(gettext("%(title)s is enabled: its licence is recorded.", title=item.title) if enable
                  else gettext("%(title)s is disabled.", title=item.title), "success")  # fmt: skip
        return redirect(url_for(".show", pk=item.id))


def register(appbuilder) -> None:
    """評估紀錄, 評估待辦 and 量表授權 under the addiction menu; the panel on the course page,
    the charts on the case page, the API."""
    from views.addiction import CATEGORY, CATEGORY_ICON, CATEGORY_LABEL

    menu = {"category": CATEGORY, "category_label": CATEGORY_LABEL, "category_icon": CATEGORY_ICON}
    appbuilder.add_view(AssessmentView, "Assessments", label=_l("Assessments"), icon="fa-check-square-o", **menu)
    appbuilder.add_view(AssessmentDueView, "Assessments due", label=_l("Assessments due"), icon="fa-clock-o",
                        **menu)  # fmt: skip
    appbuilder.add_view(InstrumentLicenceView, "Instrument licences", label=_l("Instrument licences"),
                        icon="fa-key", **menu)  # fmt: skip
    from views.addiction.assessment_upload import AssessmentUploadView

    appbuilder.add_view(AssessmentUploadView, "Assessment upload", label=_l("Batch upload of assessments"),
                        icon="fa-upload", **menu)  # fmt: skip
    appbuilder.add_api(AssessmentApi)
    if assessment_panel not in course_page_sections:
        # Before the records: the required assessments are what a course is checked against.
        course_page_sections.insert(0, assessment_panel)
    current_app.jinja_env.globals["assessment_charts"] = assessment_charts
