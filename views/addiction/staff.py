"""Addiction staff (A14): licences, training records with their certificates, and the list of
staff short of training hours or whose licence ends soon."""

from __future__ import annotations

from flask import g, request, url_for
from flask_appbuilder import expose
from flask_appbuilder.fieldwidgets import BS3TextFieldWidget
from flask_appbuilder.security.decorators import has_access
from flask_babel import gettext
from flask_babel import lazy_gettext as _l
from flask_wtf.file import FileField
from markupsafe import Markup, escape
from sqlalchemy import select
from wtforms import SelectField, StringField
from wtforms.validators import ValidationError

from core import clock
from core.data.datamodel import ScopedInterface
from core.data.filters import practitioner_text_filter
from core.data.rules import enum_label
from core.data.scope import current_scope
from core.dates import to_roc
from core.export.xlsx import export_file_name, send_xlsx, write_xlsx
from core.extensions import db
from core.web.views import (
    VIEW_METHOD_PERMISSIONS,
    ScopedModelRestApi,
    ScopedModelView,
    ScopedReportView,
    valid_pk,
)
from domain.addiction.grants import STAFF_LICENCE, STAFF_SHORTFALL, TRAINING
from domain.addiction.staff import (
    CERTIFICATES,
    SaveTraining,
    StaffRuleError,
    check_certificate,
    check_licence,
    check_training_date,
    enforce_licence,
    parse_hours,
    shortfall_rows,
)
from models.addiction.staff import StaffLicence, StaffProfession, Training, TrainingCategory
from models.registry.institution import Institution
from models.registry.reference import County

LICENCE_LABELS = {
    "practitioner": _l("Practitioner"),
    "profession": _l("Profession"),
    "licence_number": _l("Licence number"),
    "start_date": _l("Valid from"),
    "end_date": _l("Valid until"),
}
TRAINING_LABELS = {
    "practitioner": _l("Practitioner"),
    "course_name": _l("Course"),
    "organiser": _l("Organiser"),
    "held_on": _l("Date"),
    "hours": _l("Hours"),
    "category": _l("Training category"),
    "certificate": _l("Certificate"),
    "certificate_id": _l("Certificate"),
}


def _licence_pk() -> int | None:
    pk = (request.view_args or {}).get("pk")
    return int(pk) if valid_pk(pk) else None


class LicenceRules:
    """Form validator on the end date: no overlap with another licence, shown by the field."""

    def __call__(self, form, field):
        if form.errors or form.start_date.data is None:
            return
        pk = _licence_pk()
        existing = db.session.get(StaffLicence, pk) if pk else None
        practitioner = getattr(form, "practitioner", None)
        practitioner_id = (
            practitioner.data.id if practitioner is not None and practitioner.data is not None
            else getattr(existing, "practitioner_id", None)
        )  # fmt: skip
        profession = form.profession.data if hasattr(form, "profession") else None
        if practitioner_id is None or not profession:
            return
        try:
            check_licence(practitioner_id, profession, form.start_date.data, field.data, pk)
        except StaffRuleError as exc:
            raise ValidationError(str(exc)) from None


class StaffLicenceView(ScopedModelView):
    """人員證照: each staff member's licences by profession, with their validity (A14)."""

    datamodel = ScopedInterface(StaffLicence)
    class_permission_name = STAFF_LICENCE
    list_title = show_title = _l("Staff licences")
    add_title = _l("Add staff licence")
    edit_title = _l("Edit staff licence")
    list_columns = ["practitioner", "profession", "licence_number", "start_date", "end_date"]
    show_columns = list_columns
    add_columns = ["practitioner", "profession", "licence_number", "start_date", "end_date"]
    edit_columns = ["profession", "licence_number", "start_date", "end_date"]
    search_columns = ["practitioner", "profession", "licence_number", "start_date", "end_date"]
    search_filters = {"practitioner": [practitioner_text_filter()]}
    search_form_extra_fields = {"practitioner": StringField(_l("Practitioner"))}
    order_columns = ["licence_number", "start_date", "end_date"]
    base_order = ("end_date", "asc")
    label_columns = LICENCE_LABELS
    formatters_columns = {"profession": lambda v: enum_label(StaffProfession, v)}
    export_columns = ["practitioner.name", "profession", "licence_number", "start_date", "end_date"]
    list_eager = ["practitioner"]
    validators_columns = {"end_date": [LicenceRules()]}
    add_form_extra_fields = edit_form_extra_fields = {
        "profession": SelectField(_l("Profession"), choices=StaffProfession.choices()),
    }

    def pre_add(self, item):
        super().pre_add(item)
        _licence_or_rollback(item)

    def pre_update(self, item):
        super().pre_update(item)
        _licence_or_rollback(item)


def _licence_or_rollback(item):
    # FAB's _add/_edit flash what pre_add/pre_update raise but do not roll back.
    try:
        enforce_licence(item)
    except StaffRuleError:
        db.session.rollback()
        raise


class HoursRule:
    """Form validator of the hours field: ASCII digits, 0.5 to the maximum (domain rule)."""

    def __call__(self, form, field):
        try:
            parse_hours(field.data)
        except StaffRuleError as exc:
            raise ValidationError(str(exc)) from None


class HeldOnRule:
    """Form validator of the training date: not in the future."""

    def __call__(self, form, field):
        try:
            check_training_date(field.data)
        except StaffRuleError as exc:
            raise ValidationError(str(exc)) from None


class CertificateRule:
    """Form validator of the certificate upload: a PDF or image by content, within the limit.
    The checked bytes are kept on the field, so the upload is read once."""

    def __call__(self, form, field):
        field.checked = None
        data = CERTIFICATES.read(field.data)
        if data is None:
            return
        try:
            check_certificate(data)
        except StaffRuleError as exc:
            raise ValidationError(str(exc)) from None
        field.checked = data


_HOURS_FIELD = StringField(TRAINING_LABELS["hours"], validators=[HoursRule()], widget=BS3TextFieldWidget())
_CATEGORY_FIELD = SelectField(TRAINING_LABELS["category"], choices=TrainingCategory.choices())
_CERTIFICATE_FIELD = FileField(
    TRAINING_LABELS["certificate"], validators=[CertificateRule()],
    description=_l("PDF, PNG or JPEG, at most 5 MB."),
)  # fmt: skip


def _certificate_link(pk):
    if not pk:
        return ""
    url = url_for("TrainingView.certificate", pk=pk)
    return Markup('<a href="{}"><i class="fa fa-download"></i> {}</a>').format(
        url, escape(gettext("Download"))
    )


class TrainingView(ScopedModelView):
    """教育訓練紀錄: trainings attended, their hours and certificate (A14)."""

    datamodel = ScopedInterface(Training)
    class_permission_name = TRAINING
    method_permission_name = {**VIEW_METHOD_PERMISSIONS, "certificate": "read"}
    list_title = show_title = _l("Training records")
    add_title = _l("Add training record")
    edit_title = _l("Edit training record")
    list_columns = ["practitioner", "held_on", "course_name", "organiser", "category", "hours", "certificate_id"]
    show_columns = list_columns
    add_columns = ["practitioner", "course_name", "organiser", "held_on", "hours", "category", "certificate"]
    edit_columns = ["course_name", "organiser", "held_on", "hours", "category", "certificate"]
    search_columns = ["practitioner", "held_on", "course_name", "organiser", "category"]
    search_filters = {"practitioner": [practitioner_text_filter()]}
    search_form_extra_fields = {"practitioner": StringField(_l("Practitioner"))}
    order_columns = ["held_on", "course_name", "hours"]
    base_order = ("held_on", "desc")
    label_columns = TRAINING_LABELS
    formatters_columns = {
        "category": lambda v: enum_label(TrainingCategory, v),
        "hours": lambda v: float(v) if v is not None else "",
        "certificate_id": _certificate_link,
    }
    export_columns = ["practitioner.name", "held_on", "course_name", "organiser", "category", "hours"]
    list_eager = ["practitioner"]
    validators_columns = {"held_on": [HeldOnRule()]}
    add_form_extra_fields = edit_form_extra_fields = {
        "hours": _HOURS_FIELD, "category": _CATEGORY_FIELD, "certificate": _CERTIFICATE_FIELD,
    }  # fmt: skip

    def process_form(self, form, is_created):
        # The upload is not a column: its checked bytes wait on `g` for the command.
        g.training_certificate = getattr(form.certificate, "checked", None)
        del form.certificate
        form.hours.data = parse_hours(form.hours.data)  # validated: stored as a Decimal

    def pre_add(self, item):
        super().pre_add(item)
        g.training_command = SaveTraining(item, g.pop("training_certificate", None))
        g.training_command.prepare()

    def pre_update(self, item):
        super().pre_update(item)
        g.training_command = SaveTraining(item, g.pop("training_certificate", None))
        g.training_command.prepare()

    def post_add(self, item):
        g.pop("training_command").after_commit()

    post_update = post_add

    @expose("/certificate/<int:pk>")
    @has_access
    def certificate(self, pk):
        """A training certificate, only through a Training row in the viewer's scope."""
        row = self.datamodel.get(pk) if valid_pk(pk) else None
        return CERTIFICATES.send(
            row,
            stored=lambda t: t.certificate_name,
            name=lambda t: t.course_name,
            mimetype=lambda t: t.certificate_mime,
        )


# ---------------------------------------------------------------------- APIs
class StaffLicenceApi(ScopedModelRestApi):
    """Staff licences over REST; the same rules as the form (A14)."""

    resource_name = "staff_licence"
    datamodel = ScopedInterface(StaffLicence)
    class_permission_name = STAFF_LICENCE
    list_columns = show_columns = ["id", "practitioner.id", "practitioner.name", "profession",
                                   "licence_number", "start_date", "end_date"]  # fmt: skip
    add_columns = ["practitioner", "profession", "licence_number", "start_date", "end_date"]
    edit_columns = ["profession", "licence_number", "start_date", "end_date"]
    search_columns = ["practitioner", "profession", "licence_number", "start_date", "end_date"]
    order_columns = ["start_date", "end_date", "id"]
    base_order = ("start_date", "desc")
    label_columns = LICENCE_LABELS

    def pre_add(self, item):
        _licence_or_rollback(item)

    pre_update = pre_add


class TrainingApi(ScopedModelRestApi):
    """Training records over REST (the certificate is uploaded through the screen)."""

    resource_name = "training"
    datamodel = ScopedInterface(Training)
    class_permission_name = TRAINING
    list_columns = show_columns = ["id", "practitioner.id", "practitioner.name", "course_name",
                                   "organiser", "held_on", "hours", "category", "certificate_mime",
                                   "certificate_sha256"]  # fmt: skip
    add_columns = ["practitioner", "course_name", "organiser", "held_on", "hours", "category"]
    edit_columns = ["course_name", "organiser", "held_on", "hours", "category"]
    search_columns = ["practitioner", "held_on", "course_name", "organiser", "category"]
    order_columns = ["held_on", "hours", "id"]
    base_order = ("held_on", "desc")
    label_columns = TRAINING_LABELS

    def post_headless(self):
        return self._hours_checked() or super().post_headless()

    def put_headless(self, pk):
        return self._hours_checked() or super().put_headless(pk)

    def _hours_checked(self):
        """Hours as sent, before marshmallow reads "１２" or "1e2" as a number."""
        data = request.get_json(silent=True)
        if isinstance(data, dict) and "hours" in data:
            try:
                parse_hours(data["hours"])
            except StaffRuleError as exc:
                return self.response_422(message={"hours": [str(exc)]})
        return None

    def pre_add(self, item):
        self.datamodel.enforce_scope([item])  # before the command flushes it in
        SaveTraining(item).prepare()

    pre_update = pre_add


# -------------------------------------------------------------- the report
def _int_arg(name: str) -> int | None:
    value = request.args.get(name, "")
    return int(value) if valid_pk(value) else None


class StaffShortfallView(ScopedReportView):
    """人員訓練及證照提醒 (A14): staff short of this year's addiction-training hours, or whose
    licence ends soon, per institution and per county, in the user's scope."""

    route_base = "/staffshortfall"
    default_view = "index"
    class_permission_name = STAFF_SHORTFALL
    method_permission_name = {"index": "read", "export": "export"}

    def _rows(self):
        return shortfall_rows(
            current_scope(), clock.today(), county_id=_int_arg("county"),
            institution_id=_int_arg("institution"),
        )  # fmt: skip

    @staticmethod
    def headers() -> list[str]:
        """The columns of the screen and of the export, in order."""
        # A 心理治療所 has a registry code, not an NHI one (A1): the column holds either.
        return [gettext("County"), gettext("Institution code"), gettext("Institution name"),
                gettext("Practitioner"), gettext("Profession"), gettext("Licence number"),
                gettext("Valid until"), gettext("Training hours this year"),
                gettext("Required hours"), gettext("Hours missing"), gettext("Reminder")]  # fmt: skip

    @staticmethod
    def cells(row) -> list:
        """One row as the screen and the export show it."""
        reasons = []
        if row.hours_short:
            reasons.append(gettext("Short of training hours"))
        if row.licence_ending:
            reasons.append(gettext("Licence ending soon"))
        return [row.county, row.nhi_code, row.institution, row.practitioner, row.profession_label,
                row.licence_number, to_roc(row.licence_end) if row.licence_end else "",
                float(row.hours), float(row.required), float(row.missing), "、".join(reasons)]  # fmt: skip

    @expose("/")
    @has_access
    def index(self):
        rows = self._rows()
        per_county: dict[str, int] = {}
        per_institution: dict[tuple, int] = {}
        for row in rows:
            per_county[row.county] = per_county.get(row.county, 0) + 1
            key = (row.county, row.nhi_code, row.institution, row.institution_id)
            per_institution[key] = per_institution.get(key, 0) + 1
        scope = current_scope()
        counties = db.session.execute(
            select(County.id, County.name).where(scope.county_filter(County.id)).order_by(County.code)
        ).all()
        return self.render_template(
            "reports/staff_shortfall.html",
            title=gettext("Staff training and licence reminders"),
            headers=self.headers(),
            rows=[self.cells(r) for r in rows],
            per_county=sorted(per_county.items()),
            per_institution=list(per_institution.items()),
            counties=counties,
            county=_int_arg("county"),
            institution=db.session.scalar(
                select(Institution.name).where(
                    Institution.id == _int_arg("institution"), Institution.scope_clause(scope)
                )
            ) if _int_arg("institution") else None,
            year=clock.today().year - 1911,
            args={k: v for k, v in request.args.items() if k in ("county", "institution")},
        )  # fmt: skip

    @expose("/export")
    @has_access
    def export(self):
        name, as_of = gettext("Staff training and licence reminders"), gettext("As of")
        path, _ = write_xlsx(
            self.headers(), (self.cells(r) for r in self._rows()), sheet_name=name,
            title=f"{name}（{as_of} {to_roc(clock.today())}）",
        )  # fmt: skip
        return send_xlsx(path, export_file_name(name))


def register(appbuilder) -> None:
    """The staff screens under 藥酒癮個案管理, and their APIs (A14)."""
    from views.addiction import CATEGORY, CATEGORY_ICON, CATEGORY_LABEL

    menu = {"category": CATEGORY, "category_label": CATEGORY_LABEL, "category_icon": CATEGORY_ICON}
    appbuilder.add_view(
        StaffLicenceView, "Staff licences", label=_l("Staff licences"), icon="fa-id-badge", **menu
    )
    appbuilder.add_view(
        TrainingView, "Training records", label=_l("Training records"), icon="fa-graduation-cap", **menu
    )
    appbuilder.add_view(
        StaffShortfallView, "Staff training and licence reminders",
        label=_l("Staff training and licence reminders"), icon="fa-bell", **menu,
    )  # fmt: skip
    for api in (StaffLicenceApi, TrainingApi):
        appbuilder.add_api(api)
