"""資料更正申請單 (Appendix 9): the office's queue, intake and review, the institution's online
filing, and the engineer's conversion (轉檔) with its before/after preview (C5–C7)."""

from __future__ import annotations

import datetime as dt

from flask import abort, flash, redirect, request, url_for
from flask_appbuilder import expose
from flask_appbuilder.models.filters import BaseFilter
from flask_appbuilder.security.decorators import has_access
from flask_babel import gettext
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from flask_wtf.file import FileField
from markupsafe import Markup
from sqlalchemy import false, or_, select
from wtforms import (
    BooleanField,
    FieldList,
    Form,
    FormField,
    SelectField,
    StringField,
    TextAreaField,
)
from wtforms.validators import DataRequired, Length, Optional

from core import clock
from core.data.datamodel import ScopedInterface
from core.data.filters import institution_text_filter
from core.data.scope import current_scope
from core.dates import to_roc
from core.extensions import db
from core.validators import PersonalId, mask_personal_id
from core.web.fields import RocDateField
from core.web.views import (
    CAN_CREATE,
    CAN_EXPORT,
    CAN_READ,
    VIEW_METHOD_PERMISSIONS,
    ScopedModelRestApi,
    ScopedModelView,
    ScopedReportView,
    can_see_full_ids,
    refusals_flashed,
)
from domain.cessation.corrections import (
    ATTACHMENTS,
    Approve,
    AttachmentInput,
    CloseTicket,
    ConvertTicket,
    FileTicket,
    LineInput,
    ReturnTicket,
    StartReview,
    pending_reentries,
    status_counts,
)
from domain.cessation.grants import CAN_CONVERT, CAN_REVIEW, CORRECTION, CORRECTION_CONVERSION
from domain.cessation.tickets import CorrectionError
from models.cessation.correction import (
    AttachmentKind,
    CorrectionAttachment,
    CorrectionLine,
    CorrectionTicket,
    TicketChannel,
    TicketStatus,
)
from models.cessation.visit import Visit
from models.platform.audit import AuditLog
from models.registry.institution import Institution, InstitutionKind
from models.registry.reference import County
from views.cessation.visits import QUITTER_EXPORT_LABELS

TICKET_LABELS = {
    "number": _l("Ticket number"),
    "institution": _l("Institution"),
    "quitter": _l("Quitter"),
    "channel": _l("Channel"),
    "received_on": _l("Received on"),
    "age_days": _l("Days waiting"),
    "reason": _l("Reason for the correction"),
    "institution_seal_checked": _l("Institution's seal checked"),
    "supervisor_seal_checked": _l("Supervisor's seal checked"),
    "status": _l("Status"),
    "return_reason": _l("Reason for returning"),
    "converted_at": _l("Converted at"),
    "closed_at": _l("Closed at"),
    "lines_text": _l("Corrections"),
}


# ------------------------------------------------------------------ filters
def _normalise_county(text: str) -> str:
    return text.strip().replace("台", "臺")


class CountyTextFilter(BaseFilter):
    """Tickets of institutions in a county (name or code, 台/臺 alike)."""

    name = _l("County contains")
    arg_name = "county_txt"

    def apply(self, query, value):
        value = _normalise_county(value or "")
        if not value:
            return query
        ids = (
            select(Institution.id)
            .join(County, County.id == Institution.county_id)
            .where(or_(County.name.contains(value), County.code == value.upper()))
        )
        return query.filter(CorrectionTicket.institution_id.in_(ids))


def _days(value) -> int | None:
    try:
        days = int(str(value).strip())
    except (TypeError, ValueError):
        return None
    return days if 0 <= days <= 36500 else None


class AgeAtLeastFilter(BaseFilter):
    """Tickets received at least N days ago."""

    name = _l("Waiting at least (days)")
    arg_name = "age_ge"

    def apply(self, query, value):
        days = _days(value)
        if days is None:
            return query.filter(false())
        return query.filter(CorrectionTicket.received_on <= clock.today() - dt.timedelta(days=days))


class AgeAtMostFilter(BaseFilter):
    """Tickets received at most N days ago."""

    name = _l("Waiting at most (days)")
    arg_name = "age_le"

    def apply(self, query, value):
        days = _days(value)
        if days is None:
            return query.filter(false())
        return query.filter(CorrectionTicket.received_on >= clock.today() - dt.timedelta(days=days))


# -------------------------------------------------------------------- forms
class LineForm(Form):
    """One line of the form: the record's date now → the date it should have."""

    recorded_date = RocDateField(_l("Date recorded now"), validators=[Optional()])
    corrected_date = RocDateField(_l("Correct date"), validators=[Optional()])
    displaced = BooleanField(_l("The record overwrote a real visit of its recorded date"))


class TicketForm(FlaskForm):
    """資料更正申請單: institution, quitter, lines, reason, scanned attachments."""

    nhi_code = StringField(_l("NHI institution code"), validators=[Optional(), Length(max=10)])
    institution = SelectField(_l("Institution"), coerce=int, validate_choice=False)
    quitter_national_id = StringField(
        _l("National ID / resident certificate no."), validators=[DataRequired(), PersonalId()]
    )
    channel = SelectField(
        _l("Channel"),
        choices=[(c.value, c.label) for c in (TicketChannel.FAX, TicketChannel.EMAIL)],
        default=TicketChannel.FAX.value,
        validate_choice=False,  # the command checks it; facilities file online
    )
    received_on = RocDateField(_l("Received on"), validators=[Optional()])
    reason = TextAreaField(
        _l("Reason for the correction"),
        validators=[Length(max=2000)],
        description=_l(
            "As detailed on the form, e.g. the visit of 114/02/15 was not entered; entered under 114/04/01."
        ),
    )
    lines = FieldList(FormField(LineForm), min_entries=3, max_entries=20)
    form_file = FileField(
        _l("Scanned correction request form"),
        description=_l(
            "PDF, TIFF, JPEG or PNG, with the institution's seal and the supervisor's seal."
        ),
    )
    case_record_file = FileField(_l("Case record form"))


def _read_upload(field, kind) -> AttachmentInput | None:
    data = ATTACHMENTS.read(field.data)
    if data is None:
        return None
    return AttachmentInput(filename=field.data.filename, data=data, kind=kind)


#: Days waiting from which a queue row turns amber, and red (the office's service goal:
#: a faxed form answered within a week, two at the most).
WAIT_AMBER_DAYS, WAIT_RED_DAYS = 7, 14
#: Statuses the queue hides unless asked for (?show=all or a status filter): done.
DONE_STATUSES = (TicketStatus.CLOSED.value,)


def wait_level(days: int | None) -> str:
    """'red' over two weeks, 'amber' over one, else ''."""
    if days is None:
        return ""
    return "red" if days > WAIT_RED_DAYS else "amber" if days > WAIT_AMBER_DAYS else ""


def wait_cell(days) -> Markup:
    """The days waiting as text, with the wait level as words and as a class the row's
    colour hangs on (templates/corrections/list.html): colour never says it alone."""
    if days is None:
        return Markup("")
    level = wait_level(days)
    words = {"red": gettext("over %(n)d days", n=WAIT_RED_DAYS),
             "amber": gettext("over %(n)d days", n=WAIT_AMBER_DAYS)}.get(level, "")  # fmt: skip
    text = gettext("%(n)d days", n=days) + (f"（{words}）" if words else "")
    return Markup('<span class="wait wait-{level}" data-days="{days}">{text}</span>').format(
        level=level or "ok", days=days, text=text
    )


class OpenTicketFilter(BaseFilter):
    """Tickets not yet closed: the queue's default (closed ones behind ?show=all)."""

    name = _l("Open")
    arg_name = "open"

    def apply(self, query, value):
        return query.filter(CorrectionTicket.status.not_in(DONE_STATUSES))


def _formatters():
    return {
        "status": TicketStatus.label_of,
        "channel": TicketChannel.label_of,
        "age_days": wait_cell,
    }


class CorrectionTicketView(ScopedModelView):
    """更正申請單: the office's queue (oldest first), intake, review; institutions' own tickets."""

    datamodel = ScopedInterface(CorrectionTicket)
    class_permission_name = CORRECTION
    route_base = "/corrections"
    list_all_args = {"show": "all"}  # the queue hides closed tickets by default
    method_permission_name = {
        **VIEW_METHOD_PERMISSIONS,
        "start_review": CAN_REVIEW,
        "approve": CAN_REVIEW,
        "return_ticket": CAN_REVIEW,
        "close": CAN_REVIEW,
        "attachment": CAN_READ,
    }
    base_permissions = [f"can_{p}" for p in (CAN_READ, CAN_EXPORT, CAN_CREATE, CAN_REVIEW)]
    include_route_methods = {
        "list", "show", "add", "download", "action", "action_post", "export_xlsx",
        "start_review", "approve", "return_ticket", "close", "attachment",
    }  # fmt: skip
    list_title = show_title = _l("Correction requests")
    add_title = _l("New correction request")
    list_columns = [
        "number",
        "received_on",
        "age_days",
        "institution",
        "quitter",
        "channel",
        "status",
    ]
    show_columns = [
        "number",
        "status",
        "institution",
        "quitter",
        "channel",
        "received_on",
        "reason",
    ]
    add_columns = ["reason"]
    search_columns = ["status", "channel", "received_on", "institution"]
    search_filters = {
        "institution": [institution_text_filter(), CountyTextFilter],
        "received_on": [AgeAtLeastFilter, AgeAtMostFilter],
    }
    search_form_extra_fields = {
        "institution": StringField(_l("Institution")),
        "received_on": StringField(_l("Days waiting")),
        "status": SelectField(_l("Status"), choices=TicketStatus.choices()),
        "channel": SelectField(_l("Channel"), choices=TicketChannel.choices()),
    }
    order_columns = ["number", "received_on", "status"]
    # Oldest received first: the longest wait on top.
    base_order = ("received_on", "asc")
    label_columns = TICKET_LABELS
    formatters_columns = _formatters()
    export_columns = ["number", "received_on", "institution.nhi_code", "institution.name", "quitter.national_id",
                      "quitter.name", "channel", "status", "reason", "return_reason", "converted_at"]  # fmt: skip
    personal_id_columns = ["quitter.national_id"]
    export_labels = QUITTER_EXPORT_LABELS
    list_eager = ["institution", "quitter"]
    list_template = "corrections/list.html"

    def _can(self, permission: str, resource: str = CORRECTION) -> bool:
        return self.appbuilder.sm.has_access(f"can_{permission}", resource)

    def _get(self, pk):
        item = self.datamodel.get(pk)
        if item is None:
            abort(404)
        return item

    def _back(self, item):
        return redirect(url_for(".show", pk=item.id))

    # ------------------------------------------------------------- queue
    @staticmethod
    def open_only() -> bool:
        """The queue lists open tickets unless a filter or ?show=all asks for others."""
        if request.endpoint != "CorrectionTicketView.list" or request.args.get("show") == "all":
            return False
        return not any(arg.startswith("_flt_") for arg in request.args)

    def _get_list_widget(self, filters, **kwargs):
        # Added to a copy: self._filters is the view's, shared by every request.
        if self.open_only():
            filters = filters.copy().add_filter("status", OpenTicketFilter, "1")
        return super()._get_list_widget(filters, **kwargs)

    @expose("/list/")
    @has_access
    def list(self):
        self.update_redirect()
        widgets = self._list()
        scope = current_scope()
        return self.render_template(
            self.list_template,
            title=self.list_title,
            widgets=widgets,
            counts=status_counts(scope),
            statuses=list(TicketStatus),
            reminders=pending_reentries(scope),
            open_only=self.open_only(),
            showing_all=request.args.get("show") == "all",
            wait_amber=WAIT_AMBER_DAYS,
            wait_red=WAIT_RED_DAYS,
        )

    # -------------------------------------------------------------- show
    @expose("/show/<pk>", methods=["GET"])
    @has_access
    def show(self, pk):
        item = self._get(pk)
        audit = db.session.scalars(
            select(AuditLog)
            .where(AuditLog.reference == item.number, AuditLog.model == "Visit")
            .order_by(AuditLog.id)
        ).all()
        full_ids = can_see_full_ids()

        def iso_roc(value):
            """An ISO date of the audit trail shown as ROC (114/02/15)."""
            try:
                return to_roc(dt.date.fromisoformat(value)) if value else ""
            except (TypeError, ValueError):
                return value

        return self.render_template(
            "corrections/show.html",
            title=self.show_title,
            item=item,
            audit=audit,
            iso_roc=iso_roc,
            national_id=item.quitter.national_id
            if full_ids
            else mask_personal_id(item.quitter.national_id),
            record_label=Visit.__label__,
            can_review=self._can(CAN_REVIEW),
            can_file=self._can(CAN_CREATE),
            can_convert=self._can(CAN_CONVERT, CORRECTION_CONVERSION),
            S=TicketStatus,
        )

    # ------------------------------------------------------ intake/filing
    @expose("/add", methods=["GET", "POST"])
    @has_access
    def add(self):
        office = self._can(CAN_REVIEW)
        form = TicketForm()
        institutions = db.session.execute(
            select(Institution.id, Institution.nhi_code, Institution.name)
            .where(Institution.scope_clause(current_scope()), Institution.kind == InstitutionKind.MEDICAL.value)
            .order_by(Institution.nhi_code).limit(50)
        ).all()  # fmt: skip
        form.institution.choices = [(i.id, f"{i.nhi_code} {i.name}") for i in institutions]
        if request.method == "GET":
            self._prefill(form)
        if form.validate_on_submit():
            if office:
                code = (form.nhi_code.data or "").strip()
                institution_id = db.session.scalar(
                    select(Institution.id).where(Institution.nhi_code == code)
                )
                channel, received_on = form.channel.data, form.received_on.data or clock.today()
            else:
                institution_id = form.institution.data
                channel, received_on = TicketChannel.ONLINE.value, clock.today()
            attachments = [
                a for a in (
                    _read_upload(form.form_file, AttachmentKind.FORM.value),
                    _read_upload(form.case_record_file, AttachmentKind.CASE_RECORD.value),
                ) if a is not None
            ]  # fmt: skip
            command = FileTicket(
                institution_id=institution_id,
                quitter_national_id=form.quitter_national_id.data,
                channel=channel,
                received_on=received_on,
                reason=form.reason.data,
                lines=[
                    LineInput(
                        recorded_date=e.recorded_date.data,
                        corrected_date=e.corrected_date.data,
                        displaced=bool(e.displaced.data),
                    )
                    for e in form.lines.entries
                ],  # fmt: skip
                attachments=attachments,
            )
            with refusals_flashed():
                ticket = command.run()
                flash(
                    gettext("Correction request %(number)s has been filed.", number=ticket.number),
                    "success",
                )
                return self._back(ticket)
        return self.render_template(
            "corrections/add.html", title=self.add_title, form=form, office=office
        )

    def _prefill(self, form):
        """?visit=<id>: start a ticket for one of the user's own records (the placeholder)."""
        visit_id = request.args.get("visit", "")
        if not visit_id.isdigit():
            return
        visit = ScopedInterface(Visit).get(int(visit_id))
        if visit is None:
            return
        form.nhi_code.data = visit.institution.nhi_code
        form.institution.data = visit.institution_id
        form.quitter_national_id.data = visit.quitter.national_id
        form.lines.entries[0].recorded_date.data = visit.visit_date

    # -------------------------------------------------------- transitions
    def _step(self, pk, make_command, done_message):
        item = self._get(pk)
        with refusals_flashed():
            make_command(item).run()
            flash(done_message, "success")
        return self._back(item)

    @expose("/<int:pk>/review", methods=["POST"])
    @has_access
    def start_review(self, pk):
        return self._step(pk, StartReview, gettext("The ticket is now in review."))

    @expose("/<int:pk>/approve", methods=["POST"])
    @has_access
    def approve(self, pk):
        form = request.form
        return self._step(
            pk,
            lambda t: Approve(
                t,
                institution_seal=form.get("institution_seal") == "y",
                supervisor_seal=form.get("supervisor_seal") == "y",
            ),
            gettext("The ticket is approved and awaits conversion."),
        )

    @expose("/<int:pk>/return", methods=["POST"])
    @has_access
    def return_ticket(self, pk):
        reason = request.form.get("return_reason", "")
        return self._step(
            pk, lambda t: ReturnTicket(t, reason),
            gettext("The ticket has been returned and the institution informed."),
        )  # fmt: skip

    @expose("/<int:pk>/close", methods=["POST"])
    @has_access
    def close(self, pk):
        return self._step(pk, CloseTicket, gettext("The ticket is closed."))

    # -------------------------------------------------------- attachments
    @expose("/attachment/<int:attachment_id>")
    @has_access
    def attachment(self, attachment_id):
        """A scanned attachment, only if its ticket is in the user's scope."""
        return ATTACHMENTS.send(
            ScopedInterface(CorrectionAttachment).get(attachment_id),
            stored=lambda a: a.stored_name,
            name=lambda a: a.filename,
            mimetype=lambda a: a.mime_type,
        )


class CorrectionConversionView(ScopedReportView):
    """轉檔: the before/after preview of an approved ticket, then its conversion (own permission)."""

    route_base = "/correctionconversion"
    resource_label = _l("Conversion of correction requests")
    default_view = "preview"
    class_permission_name = CORRECTION_CONVERSION
    method_permission_name = {"preview": CAN_CONVERT, "convert": CAN_CONVERT}

    def _ticket(self, pk) -> CorrectionTicket:
        item = ScopedInterface(CorrectionTicket).get(pk)
        if item is None:
            abort(404)
        return item

    def _render(self, ticket, error=None):
        lines = ConvertTicket(ticket).preview()
        return self.render_template(
            "corrections/convert.html",
            title=gettext("Conversion preview"),
            item=ticket,
            lines=lines,
            error=error,
            ready=ticket.status == TicketStatus.APPROVED.value
            and not any(line.problem for line in lines),
        )

    @expose("/<int:pk>/", methods=["GET"])
    @has_access
    def preview(self, pk):
        return self._render(self._ticket(pk))

    @expose("/<int:pk>/", methods=["POST"])
    @has_access
    def convert(self, pk):
        ticket = self._ticket(pk)
        try:
            result = ConvertTicket(ticket).run()
        except CorrectionError as exc:  # not a flash: the preview shows why, answered 409
            db.session.rollback()
            db.session.expire_all()
            return self._render(self._ticket(pk), error=str(exc)), 409
        if result.changed:
            flash(
                gettext(
                    "Ticket %(number)s converted: %(n)d records re-dated.",
                    number=ticket.number,
                    n=len(result.lines),
                ),
                "success",
            )
        else:
            flash(
                gettext(
                    "Ticket %(number)s was already converted: nothing changed.",
                    number=ticket.number,
                ),
                "info",
            )
        return redirect(url_for("CorrectionTicketView.show", pk=ticket.id))


class CorrectionTicketApi(ScopedModelRestApi):
    """Correction tickets over REST, read-only."""

    resource_name = "correctionticket"
    datamodel = ScopedInterface(CorrectionTicket)
    class_permission_name = CORRECTION
    include_route_methods = {"get", "get_list", "info"}
    list_columns = show_columns = ["id", "number", "institution.nhi_code", "quitter.id", "channel",
                                   "received_on", "status", "return_reason", "converted_at"]  # fmt: skip
    search_columns = ["number", "status", "channel", "received_on"]
    order_columns = ["received_on", "number"]
    # Oldest received first: the longest wait on top.
    base_order = ("received_on", "asc")
    label_columns = TICKET_LABELS


class CorrectionLineApi(ScopedModelRestApi):
    """The lines of correction tickets over REST, read-only."""

    resource_name = "correctionline"
    datamodel = ScopedInterface(CorrectionLine)
    class_permission_name = CORRECTION
    include_route_methods = {"get", "get_list", "info"}
    list_columns = show_columns = ["id", "ticket.number", "visit.id", "recorded_date", "corrected_date",
                                   "displaced_date", "applied_at"]  # fmt: skip
    order_columns = ["id"]
    base_order = ("id", "asc")
