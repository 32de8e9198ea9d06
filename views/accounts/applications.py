"""Accounts (rule A13): the public application form, approval by the bureau or the admin,
the one-time set-password page, and the helpdesk's account lookup."""

from __future__ import annotations

import io

from flask import abort, current_app, flash, jsonify, redirect, request, url_for
from flask_appbuilder import BaseView, expose
from flask_appbuilder.actions import action
from flask_appbuilder.security.decorators import has_access
from flask_appbuilder.utils.limit import Limit
from flask_babel import gettext
from flask_babel import lazy_gettext as _l
from flask_limiter.util import get_remote_address
from flask_wtf import FlaskForm
from flask_wtf.file import FileField
from markupsafe import Markup
from sqlalchemy import or_, select
from wtforms import PasswordField, SelectField, SelectMultipleField, StringField, TextAreaField
from wtforms.validators import (
    DataRequired,
    Email,
    EqualTo,
    Length,
    Optional,
    Regexp,
    ValidationError,
)

from core.data.datamodel import ScopedInterface
from core.data.filters import institution_text_filter
from core.data.rules import field_rules
from core.extensions import db
from core.files import PDF, FileStore, UploadRefused
from core.mail import mail_failed
from core.security.organisations import (
    EXCLUDED_ORGANISATIONS,
    ORGANISATION_TYPES,
    OrganisationAllowed,
)
from core.security.passwords import PasswordPolicy
from core.security.roles import role_label
from core.security.sessions import AccountError, account_events, find_token
from core.validators import normalize_id
from core.web.views import (
    CAN_EXPORT,
    CAN_READ,
    VIEW_METHOD_PERMISSIONS,
    ScopedModelView,
    refusals_flashed,
)
from domain.accounts.commands import (
    ApproveApplication,
    RejectApplication,
    SendPasswordReset,
    SetPassword,
    UnlockAccount,
)
from domain.accounts.grants import (
    ACCOUNT,
    APPLICATION,
    CAN_APPROVE,
    CAN_REJECT,
    CAN_SEND_RESET,
    CAN_UNLOCK,
)
from models.accounts.application import AccountApplication, ApplicationStatus, RequestedRole
from models.addiction.designation import Designation
from models.addiction.staff import StaffProfession
from models.platform.user import ScopedUser
from models.registry.institution import REGISTRY_CODE_PREFIX, Institution
from models.registry.practitioner import Practitioner
from models.registry.reference import County

APPLICATION_FOLDER = "applications"
APPLICATION_FORMS = FileStore(
    APPLICATION_FOLDER, {PDF: "pdf"}, "APPLICATION_MAX_BYTES", "application"
)


# ------------------------------------------------------------- the public form
def _limit_apply():
    return current_app.config["APPLY_RATE_LIMIT"]


def institution_by_code(code: str | None) -> Institution | None:
    """The institution of an NHI code, or of a registry code (A1: 'R' and 9 digits)."""
    code = (code or "").strip().upper()
    if len(code) != 10:
        return None
    if code.isdigit():
        return db.session.scalar(select(Institution).where(Institution.nhi_code == code))
    if code.startswith(REGISTRY_CODE_PREFIX) and code[1:].isdigit():
        return db.session.scalar(select(Institution).where(Institution.registry_code == code))
    return None


def is_designated(institution: Institution) -> bool:
    """Whether the institution holds a designation of the addiction programme (A1)."""
    return db.session.scalar(
        select(Designation.id).where(Designation.institution_id == institution.id).limit(1)
    ) is not None


#: Roles asked for with a county, and with an addiction treatment institution.
COUNTY_ROLES = {RequestedRole.BUREAU.value, RequestedRole.ADDICTION_BUREAU.value}
INSTITUTION_ROLES = {RequestedRole.FACILITY.value, RequestedRole.TREATMENT.value}
#: The staff profile's ID is checked as the practitioner registry checks it.
STAFF_ID_RULE = field_rules(Practitioner)["national_id"]


class ApplicationForm(FlaskForm):
    """線上帳號申請 — every field is checked before anything is stored."""

    applicant_name = StringField(_l("Applicant name"), validators=[DataRequired(), Length(max=50)])
    email = StringField(_l("E-mail"), validators=[DataRequired(), Email(), Length(max=120)])
    phone = StringField(
        _l("Phone"),
        validators=[
            DataRequired(),
            Regexp(r"^[0-9()#+\- ]{7,30}$", message=_l("Please enter a phone number, e.g. (02)2351-0120.")),
        ],
    )
    job_title = StringField(_l("Job title"), validators=[DataRequired(), Length(max=50)])
    # A1: prosecutors' offices and NGOs are refused here (core/security/organisations.py).
    organisation_type = SelectField(
        _l("Organisation type"), choices=ORGANISATION_TYPES, default=ORGANISATION_TYPES[0][0],
        validators=[OrganisationAllowed()],
    )
    requested_role = SelectField(_l("Requested role"), choices=RequestedRole.choices())
    # No Optional(): it would stop the chain before validate_national_id on a blank.
    national_id = StringField(
        _l("National ID / resident certificate no."),
        description=_l("Addiction treatment staff: links your account to your staff profile."),
    )
    professions = SelectMultipleField(_l("Professions"), choices=StaffProfession.choices())
    nhi_code = StringField(
        _l("NHI institution code"),
        validators=[Optional()],
        description=_l("Facility staff: the 10-digit code of your institution."),
    )
    county = SelectField(_l("Health bureau"), coerce=int, validators=[Optional()])
    supervisor_name = StringField(_l("Supervisor's name"), validators=[DataRequired(), Length(max=50)])
    form_file = FileField(
        _l("Signed application form (PDF)"),
        description=_l("The application form with the supervisor's signature and the institution's seal, as a PDF."),
    )
    # A honeypot instead of a CAPTCHA: people never see this field, form-filling robots do.
    website = StringField("Website")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        counties = db.session.execute(select(County.id, County.bureau_name).order_by(County.sort_order)).all()
        self.county.choices = [(0, gettext("(choose for bureau staff)"))] + [tuple(c) for c in counties]
        self.institution = None

    def validate_national_id(self, field):
        if self.requested_role.data != RequestedRole.TREATMENT.value:
            return
        message = STAFF_ID_RULE.error(normalize_id(field.data or "") or None)
        if message:
            raise ValidationError(message)

    def validate_professions(self, field):
        if self.requested_role.data == RequestedRole.TREATMENT.value and not field.data:
            raise ValidationError(gettext("Addiction treatment staff must choose their profession(s)."))

    def validate_nhi_code(self, field):
        if self.requested_role.data == RequestedRole.TREATMENT.value:
            self.institution = institution_by_code(field.data)
            if self.institution is None or not is_designated(self.institution):
                raise ValidationError(
                    gettext("No institution of the addiction programme has this NHI or registry code.")
                )
            return
        if self.requested_role.data != RequestedRole.FACILITY.value:
            return
        if not (field.data or "").strip():
            raise ValidationError(gettext("Facility staff must give the institution's NHI code."))
        self.institution = institution_by_code(field.data)
        if self.institution is None or not self.institution.nhi_code:
            raise ValidationError(gettext("No contracted institution has this NHI code."))

    def validate_county(self, field):
        if self.requested_role.data in COUNTY_ROLES and not field.data:
            raise ValidationError(gettext("Bureau staff must choose their health bureau."))

    def validate_form_file(self, field):
        data = APPLICATION_FORMS.read(field.data)
        if data is None:
            raise ValidationError(gettext("Please attach the signed application form."))
        try:
            APPLICATION_FORMS.check(data)
        except UploadRefused as refused:
            if refused.reason == UploadRefused.TOO_LARGE:
                raise ValidationError(
                    gettext("The file is larger than %(mb)d MB.", mb=refused.limit_mb)
                ) from None
            raise ValidationError(gettext("The file is not a PDF document.")) from None
        self.pdf_bytes = data


class ApplyView(BaseView):
    """線上申請帳號: the public page (no login), rate-limited per address."""

    route_base = "/apply"
    default_view = "apply"
    limits = [
        Limit(_limit_apply, key_func=get_remote_address, methods=("POST",)),
        Limit("60 per minute", key_func=get_remote_address, methods=("GET",)),
    ]

    @expose("/", methods=["GET", "POST"])
    def apply(self):
        form = ApplicationForm()
        if request.method == "POST" and form.website.data:
            return redirect(url_for(".done"))  # a robot: say thanks, keep nothing
        if form.validate_on_submit():
            stored = APPLICATION_FORMS.save(form.pdf_bytes, PDF)
            role = form.requested_role.data
            staff = role == RequestedRole.TREATMENT.value
            application = AccountApplication(
                applicant_name=form.applicant_name.data.strip(),
                email=form.email.data.strip().lower(),
                phone=form.phone.data.strip(),
                job_title=form.job_title.data.strip(),
                requested_role=role,
                institution=form.institution if role in INSTITUTION_ROLES else None,
                county_id=form.county.data if role in COUNTY_ROLES else None,
                national_id=normalize_id(form.national_id.data) if staff else None,
                professions=",".join(form.professions.data) if staff else None,
                supervisor_name=form.supervisor_name.data.strip(),
                form_file=stored,
                form_filename=(form.form_file.data.filename or "form.pdf")[:200],
                submitted_ip=request.remote_addr,
            )
            db.session.add(application)
            db.session.commit()
            return redirect(url_for(".done"))
        return self.render_template("accounts/apply.html", form=form, institution=form.institution)

    @expose("/institution")
    def institution(self):
        """The institution's name for an NHI code, so the applicant can confirm it."""
        found = institution_by_code(request.args.get("code"))
        if found is None:
            return jsonify(found=False, message=gettext("No contracted institution has this NHI code.")), 404
        return jsonify(found=True, name=found.name, county=found.county.name)

    @expose("/done")
    def done(self):
        return self.render_template("accounts/apply_done.html")

    @expose("/blank-form")
    def blank_form(self):
        """The blank application form to print, sign, seal and scan (帳號申請單.xlsx)."""
        from flask import send_file

        from views.accounts.blank_form import blank_application_form

        form = ApplicationForm(meta={"csrf": False})
        fields = []
        for field in form:
            if field.name in ("csrf_token", "website", "form_file"):
                continue
            # Organisations that never get an account (A1) are not offered on paper either.
            choices = [
                str(label) for value, label in (getattr(field, "choices", None) or [])
                if value and value not in EXCLUDED_ORGANISATIONS
            ]
            hint = "□ " + "　□ ".join(choices) if choices and len(choices) <= 8 else str(field.description or "")
            fields.append((str(field.label.text), hint))
        data = blank_application_form(fields)
        return send_file(
            io.BytesIO(data),
            as_attachment=True,
            download_name=gettext("Account application form") + ".xlsx",
            mimetype="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        )


# ------------------------------------------------------- the one-time link page
class SetPasswordForm(FlaskForm):
    """新密碼 and its confirmation, under the password policy."""

    password = PasswordField(_l("New password"), validators=[DataRequired(), PasswordPolicy()])
    confirm = PasswordField(
        _l("Confirm new password"),
        validators=[DataRequired(), EqualTo("password", message=_l("Passwords must match"))],
    )


class SetPasswordView(BaseView):
    """設定密碼: reached from the mailed one-time link (no login)."""

    route_base = "/account"
    default_view = "set_password"

    @expose("/set-password/<token>", methods=["GET", "POST"])
    def set_password(self, token):
        from flask import g

        try:
            record = find_token(token)
        except AccountError as exc:  # not a flash: a dead link has its own page, answered 410
            return self.render_template("accounts/link_invalid.html", message=str(exc)), 410
        user = db.session.get(ScopedUser, record.user_id)
        g.password_target_username = user.username
        form = SetPasswordForm()
        if form.validate_on_submit():
            with refusals_flashed():
                SetPassword(token, form.password.data).run()
                flash(gettext("Your password is set. Please sign in."), "success")
                return redirect(self.appbuilder.get_url_for_login)
        return self.render_template("accounts/set_password.html", form=form, username=user.username)


# ------------------------------------------------------------- review (bureau/admin)
APPLICATION_LABELS = {
    "created_on": _l("Applied on"),
    "applicant_name": _l("Applicant name"),
    "email": _l("E-mail"),
    "phone": _l("Phone"),
    "job_title": _l("Job title"),
    "requested_role": _l("Requested role"),
    "institution": _l("Institution"),
    "county": _l("Health bureau"),
    "supervisor_name": _l("Supervisor's name"),
    "form_filename": _l("Signed application form (PDF)"),
    "form_link": _l("Signed application form (PDF)"),
    "status": _l("Status"),
    "decided_at": _l("Decided on"),
    "reject_reason": _l("Reason for rejection"),
    "national_id": _l("National ID / resident certificate no."),
    "professions": _l("Professions"),
}


class RejectForm(FlaskForm):
    """The reason for returning an application (mailed to the applicant)."""

    reason = TextAreaField(_l("Reason for rejection"), validators=[DataRequired(), Length(min=4, max=1000)])


class AccountApplicationView(ScopedModelView):
    """帳號申請審核: facility staff go to their county's bureau, everyone else to the admin."""

    datamodel = ScopedInterface(AccountApplication)
    class_permission_name = APPLICATION
    method_permission_name = {
        **VIEW_METHOD_PERMISSIONS,
        "approve": CAN_APPROVE,
        "reject": CAN_REJECT,
        "reject_form": CAN_REJECT,
        "application_form": CAN_READ,
    }
    base_permissions = [f"can_{p}" for p in (CAN_READ, CAN_EXPORT, CAN_APPROVE, CAN_REJECT)]
    list_title = show_title = _l("Account applications")
    list_columns = ["created_on", "applicant_name", "email", "requested_role", "institution", "county", "status"]
    show_columns = [
        "created_on", "status", "applicant_name", "email", "phone", "job_title", "requested_role",
        "institution", "county", "national_id", "professions", "supervisor_name", "form_link",
        "decided_at", "reject_reason",
    ]  # fmt: skip
    personal_id_columns = ["national_id"]
    search_columns = ["status", "requested_role", "applicant_name", "email", "institution"]
    search_filters = {"institution": [institution_text_filter()]}
    search_form_extra_fields = {
        "institution": StringField(_l("Institution")),
        "status": SelectField(_l("Status"), choices=ApplicationStatus.choices()),
        "requested_role": SelectField(_l("Requested role"), choices=RequestedRole.choices()),
    }
    order_columns = ["created_on", "status"]
    base_order = ("created_on", "desc")
    label_columns = APPLICATION_LABELS
    formatters_columns = {
        "status": ApplicationStatus.label_of,
        "requested_role": RequestedRole.label_of,
        "professions": lambda v: "、".join(StaffProfession.label_of(p) for p in (v or "").split(",") if p),
    }
    export_columns = ["created_on", "applicant_name", "email", "requested_role", "institution", "status"]

    def _back(self, item):
        return redirect(url_for(".show", pk=item.id))

    @action("approve", _l("Approve"), _l("Open this account?"), "fa-check", multiple=False)
    def approve(self, item):
        user = ApproveApplication(item).run()  # a refusal: flashed by ScopedModelView.action
        if not mail_failed():  # else core.mail has said the mail could not be sent
            flash(gettext("Account %(username)s opened; the applicant has been mailed a link to set the password.", username=user.username), "success")
        return self._back(item)

    @action("reject", _l("Reject"), None, "fa-times", multiple=False)
    def reject(self, item):
        return redirect(url_for(".reject_form", pk=item.id))

    @expose("/reject/<int:pk>", methods=["GET", "POST"])
    @has_access
    def reject_form(self, pk):
        item = self.datamodel.get(pk)
        if item is None:
            abort(404)
        form = RejectForm()
        if form.validate_on_submit():
            with refusals_flashed():
                RejectApplication(item, form.reason.data).run()
                flash(gettext("The application has been rejected and the applicant informed."), "success")
                return self._back(item)
        return self.render_template(
            "accounts/reject.html", form=form, item=item, title=gettext("Reject application")
        )

    @expose("/form/<int:pk>")
    @has_access
    def application_form(self, pk):
        """The uploaded PDF, only for an application in the user's scope."""
        return APPLICATION_FORMS.send(
            self.datamodel.get(pk),
            stored=lambda a: a.form_file,
            name=lambda a: a.form_filename,
            as_attachment=False,  # the approver reads the form in the browser
        )


# -------------------------------------------------------------- helpdesk lookup
ACCOUNT_LABELS = {
    "username": _l("Username"),
    # One name field (姓名): accounts keep the whole name in first_name.
    "first_name": _l("Full name"),
    "full_name": _l("Full name"),
    "email": _l("E-mail"),
    "roles": _l("Role"),
    "scope_text": _l("Data scope"),
    "status_text": _l("Account status"),
    "last_login": _l("Last login"),
    "fail_login_count": _l("Consecutive failed logins"),
    "scope_institutions": _l("Institution"),
    "login_count": _l("Logins"),
}


EVENT_LABELS = {
    "login": _l("Signed in"),
    "login_failed": _l("Failed login"),
    "login_refused": _l("Login refused (locked)"),
    "locked": _l("Locked after failed logins"),
    "unlocked": _l("Unlocked"),
    "password_set": _l("Password set"),
    "password_reset": _l("Password reset"),
    "reset_link_sent": _l("Password-reset link sent"),
    "approved": _l("Application approved"),
    "rejected": _l("Application rejected"),
    "role_change": _l("Roles changed"),
    "scope_change": _l("Data scope changed"),
}


class AccountLookupView(ScopedModelView):
    """帳號查詢: who, which institution, role, active/locked/pending, last login (helpdesk)."""

    datamodel = ScopedInterface(ScopedUser)
    class_permission_name = ACCOUNT
    route_base = "/accounts"
    method_permission_name = {**VIEW_METHOD_PERMISSIONS, "unlock": CAN_UNLOCK, "send_reset": CAN_SEND_RESET}
    base_permissions = [f"can_{p}" for p in (CAN_READ, CAN_UNLOCK, CAN_SEND_RESET)]
    list_title = show_title = _l("Account lookup")
    list_columns = ["username", "full_name", "email", "roles", "scope_text", "status_text", "last_login", "fail_login_count"]
    show_columns = list_columns + ["login_count"]
    search_columns = ["username", "first_name", "email", "scope_institutions"]
    search_filters = {"scope_institutions": [institution_text_filter()]}
    search_form_extra_fields = {"scope_institutions": StringField(_l("Institution code or name"))}
    order_columns = ["username", "last_login"]
    base_order = ("username", "asc")
    label_columns = ACCOUNT_LABELS
    formatters_columns = {"roles": lambda roles: "、".join(role_label(r.name) for r in roles or [])}
    show_template = "accounts/account_show.html"
    list_eager = ["roles", "scope_county", "scope_institutions", "throttle"]

    @expose("/show/<pk>", methods=["GET"])
    @has_access
    def show(self, pk):
        item = self.datamodel.get(pk)
        if item is None:
            abort(404)
        widgets = self._show(pk)
        applications = db.session.scalars(
            select(AccountApplication)
            .where(or_(AccountApplication.user_id == item.id, AccountApplication.email == item.email))
            .order_by(AccountApplication.id.desc())
        ).all()
        return self.render_template(
            self.show_template,
            pk=pk,
            title=self.show_title,
            widgets=widgets,
            events=account_events(item.id),
            event_labels=EVENT_LABELS,
            applications=applications,
        )

    @action("unlock", _l("Unlock"), _l("Unlock this account?"), "fa-unlock", multiple=False)
    def unlock(self, item):
        UnlockAccount(item).run()  # a refusal: flashed by ScopedModelView.action
        flash(gettext("The account is unlocked."), "success")
        return redirect(url_for(".show", pk=item.id))

    @action("send_reset", _l("Send password-reset link"), _l("Mail a password-reset link to this account?"), "fa-envelope", multiple=False)
    def send_reset(self, item):
        SendPasswordReset(item).run()  # a refusal: flashed by ScopedModelView.action
        if not mail_failed():  # else core.mail has said the mail could not be sent
            flash(gettext("A password-reset link has been mailed to %(email)s.", email=item.email), "success")
        return redirect(url_for(".show", pk=item.id))


__all__ = ["Markup"]
