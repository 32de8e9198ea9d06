"""Subsidy claims (A11): 補助金申請 for the institution (build, leave lines out, print the
sign-off package, submit, correct and resubmit), 補助金核覆 for the county bureau (review line
by line, return with a reason, decide; the Ministry reads central-scheme claims), and
補助經費核銷統計 — claimed, approved and returned against budget — as a table with a chart, an
Excel export and GET /api/v1/claimreport/subsidy?year=114."""

from __future__ import annotations

from flask import abort, flash, redirect, request, url_for
from flask_appbuilder import expose
from flask_appbuilder.api import BaseApi
from flask_appbuilder.models.sqla.filters import FilterNotEqual
from flask_appbuilder.security.decorators import has_access, protect
from flask_babel import gettext
from flask_babel import lazy_gettext as _l
from markupsafe import Markup
from wtforms import SelectField, StringField
from wtforms.validators import DataRequired

from core import clock
from core.data.datamodel import ScopedInterface
from core.data.scope import current_scope
from core.dates import roc_year, to_roc
from core.errors import UserError
from core.export.xlsx import export_file_name, send_xlsx, write_xlsx
from core.extensions import db
from core.files import safe_download_name
from core.web.views import (
    VIEW_METHOD_PERMISSIONS,
    ScopedModelView,
    ScopedReportView,
    flash_refusal,
    valid_pk,
)
from domain.addiction import claim_report
from domain.addiction.claim_package import package_pdf, package_xlsx
from domain.addiction.claims import (
    BuildClaim,
    CorrectLine,
    DecideClaim,
    FreezePackage,
    IncludeLines,
    RefreshClaim,
    ReviewLines,
    SubmitClaim,
    budget_remaining,
    claimable_schemes,
    may_prepare,
    may_review,
    snapshot_diff,
)
from domain.addiction.grants import CLAIM, CLAIM_REPORT, CLAIM_REVIEW
from models.addiction.claim import (
    Claim,
    ClaimPeriod,
    ClaimReview,
    ClaimStatus,
    ClaimSubmission,
    LineReview,
    ReturnReason,
    SnapshotKind,
)
from models.registry.institution import Institution
from views.addiction.cases import CommandForms, enum_formatter

LABELS = {
    "institution": _l("Institution"),
    "scheme": _l("Subsidy scheme"),
    "scheme_code": _l("Subsidy scheme"),
    "year": _l("Subsidy year"),
    "period_kind": _l("Claim period"),
    "period_start": _l("Period from"),
    "period_end": _l("Period to"),
    "period_label": _l("Claim period"),
    "status": _l("Claim status"),
    "claimed_amount": _l("Amount claimed (NT$)"),
    "approved_amount": _l("Amount approved (NT$)"),
    "returned_amount": _l("Amount returned (NT$)"),
    "submissions": _l("Submissions"),
    "waiting_since": _l("Waiting since"),
    "days_waiting": _l("Days waiting"),
    "period_number": _l("Month or quarter"),
}


def _money(value) -> str:
    return f"{value:,}" if isinstance(value, int) else ""


def _days_waiting(claim: Claim) -> int | None:
    if claim.waiting_since is None or claim.status not in ("submitted", "resubmitted", "in_review"):
        return None
    return (clock.utc_naive() - claim.waiting_since).days


class _ReviewInterface(ScopedInterface):
    """Claims sorted by waiting_since with NULLs (claims not waiting) last on every database:
    SQLite sorts NULLs first and PostgreSQL last, so the bureau's oldest claim led on one only."""

    def apply_order_by(self, query, order_column, order_direction, *args, **kwargs):
        if order_column != "waiting_since":
            return super().apply_order_by(query, order_column, order_direction, *args, **kwargs)
        key = Claim.waiting_since.desc() if order_direction == "desc" else Claim.waiting_since.asc()
        return query.order_by(key.nulls_last(), Claim.id)


class _ClaimBase(ScopedModelView):
    """What both claim screens share: the list, the claim's page, its package downloads."""

    datamodel = ScopedInterface(Claim)
    show_template = "addiction/claim_show.html"
    list_columns = ["institution", "scheme", "period_label", "status", "claimed_amount", "approved_amount",
                    "returned_amount", "submissions"]  # fmt: skip
    show_columns = list_columns
    export_columns = ["institution", "scheme", "period_start", "period_end", "status", "claimed_amount", "approved_amount",
                      "returned_amount", "submissions"]  # fmt: skip
    search_columns = ["status", "year", "scheme_code"]
    order_columns = ["claimed_amount", "approved_amount", "submissions"]
    label_columns = dict(LABELS)
    list_eager = ["institution", "scheme"]
    formatters_columns = {
        "status": enum_formatter(ClaimStatus), "claimed_amount": _money, "approved_amount": _money,
        "returned_amount": _money, "year": lambda y: str(roc_year(y)) if isinstance(y, int) else "",
    }  # fmt: skip
    page_size = 25

    def _claim(self, pk) -> Claim:
        claim = self.datamodel.get(int(pk), self._base_filters) if valid_pk(pk) else None
        if claim is None:
            abort(404)
        return claim

    @expose("/edit/<pk>", methods=["GET", "POST"])
    @has_access
    def edit(self, pk):
        """No generic edit form: every change is a step on the claim's page."""
        return redirect(url_for(".show", pk=self._claim(pk).id))

    @expose("/show/<pk>", methods=["GET"])
    @has_access
    def show(self, pk):
        claim = self._claim(pk)
        submissions = [s for s in claim.snapshots if s.kind == SnapshotKind.SUBMISSION.value]
        diff = snapshot_diff(submissions[-2], submissions[-1]) if len(submissions) >= 2 else None
        reviews = db.session.query(ClaimReview).filter(ClaimReview.claim_id == claim.id) \
            .order_by(ClaimReview.id).all()  # fmt: skip
        names = {}
        if claim.lines:
            from models.addiction.case import Case, Patient

            names = dict(db.session.query(Case.id, Patient.name).join(Patient, Patient.id == Case.patient_id)
                         .filter(Case.id.in_(sorted({ln.case_id for ln in claim.lines}))).all())  # fmt: skip
        sm = self.appbuilder.sm
        preparer = may_prepare(claim) and sm.has_access("can_create", CLAIM) and not current_scope().national
        reviewer = may_review(claim) and sm.has_access("can_edit", CLAIM_REVIEW) and not current_scope().national
        return self.render_template(
            self.show_template, title=self.show_title, claim=claim, lines=claim.lines, names=names,
            submissions=submissions, diff=diff, reviews=reviews, transitions=claim.transitions,
            preparer=preparer, reviewer=reviewer, endpoint=type(self).__name__,
            remaining=budget_remaining(claim.scheme_code, claim.year), reasons=ReturnReason.choices(),
            reason_label=ReturnReason.label_of, status_label=enum_formatter(ClaimStatus),
            review_label=enum_formatter(LineReview), to_roc=to_roc, LineReview=LineReview,
            days_waiting=_days_waiting(claim),
        )  # fmt: skip

    # ------------------------------------------------------------- the package
    @expose("/package/<pk>", methods=["POST"])
    @has_access
    def package(self, pk):
        """Freeze the claim (or take its last submission) and offer the PDF or the workbook."""
        claim = self._claim(pk)
        kind = request.form.get("format", "pdf")
        try:
            snap = FreezePackage(claim).run()
        except UserError as exc:
            flash_refusal(exc)
            return redirect(url_for(".show", pk=claim.id))
        return redirect(url_for(".package_file", snapshot=snap.id, fmt="xlsx" if kind == "xlsx" else "pdf"))

    @expose("/package/<snapshot>.<fmt>", methods=["GET"])
    @has_access
    def package_file(self, snapshot, fmt):
        """A snapshot's PDF or workbook, through a snapshot row in the reader's scope (404 else)."""
        snap = ScopedInterface(ClaimSubmission).get(int(snapshot)) if valid_pk(snapshot) else None
        if snap is None or fmt not in ("pdf", "xlsx") or self.datamodel.get(snap.claim_id, self._base_filters) is None:
            abort(404)
        claim = snap.claim
        name = f"{gettext('Subsidy claim')}-{claim.institution.name}-{claim.period_label}-{snap.sha256[:8]}"
        if fmt == "xlsx":
            return send_xlsx(package_xlsx(snap), safe_download_name(name, "claim", "xlsx"))
        from flask import Response

        response = Response(package_pdf(snap), mimetype="application/pdf")
        from urllib.parse import quote

        download = safe_download_name(name, "claim", "pdf")
        response.headers["Content-Disposition"] = (
            f"attachment; filename=\"claim-{snap.id}.pdf\"; filename*=UTF-8''{quote(download, safe='')}"
        )
        return response


class ClaimView(CommandForms, _ClaimBase):
    """補助金申請 (A11): the institution's claims — build one for a period, review and leave
    lines out, print the sign-off package, submit; correct and resubmit a returned one."""

    route_base = "/claim"
    class_permission_name = CLAIM
    method_permission_name = {**VIEW_METHOD_PERMISSIONS, "edit": "read", "package": "read", "package_file": "read",
                              "refresh": "create", "include": "create", "note": "create", "submit": "create"}  # fmt: skip
    base_permissions = ["can_read", "can_create", "can_export"]
    list_title = show_title = _l("Subsidy claims")
    add_title = _l("New subsidy claim")
    add_columns = ["institution", "scheme_code", "year", "period_number"]
    base_order = ("period_start", "desc")
    add_row_message = _l("The claim is drafted with its claimable lines: review them, then submit.")

    add_form_extra_fields = {
        "scheme_code": SelectField(LABELS["scheme"], choices=[], validate_choice=False),
        "year": StringField(LABELS["year"], validators=[DataRequired()], description=_l("ROC year, e.g. 114")),
        "period_number": StringField(LABELS["period_number"], validators=[DataRequired()],
                                   description=_l("Month 1–12; quarter 1–4 for a scheme claimed by quarter.")),
    }  # fmt: skip

    def _get_add_widget(self, form, exclude_cols=None, widgets=None):
        scope = current_scope()
        year = clock.today().year
        institutions = db.session.query(Institution).filter(Institution.scope_clause(scope)).all()
        choices = []
        for scheme in claimable_schemes(institutions[0], year) if institutions else []:
            period = ClaimPeriod.label_of(scheme.claim_period)
            choices.append((scheme.code, f"{scheme.name}（{period}）"))
        form.scheme_code.choices = choices
        if request.method == "GET":
            if len(institutions) == 1 and form.institution.data is None:
                form.institution.data = institutions[0]
            form.year.data = form.year.data or str(roc_year(year))
            last = clock.today().replace(day=1)
            form.period_number.data = form.period_number.data or str((last.month - 2) % 12 + 1)
        return super()._get_add_widget(form, exclude_cols=exclude_cols, widgets=widgets)

    def add_command(self, form):
        institution = form.institution.data
        return BuildClaim(institution.id if institution is not None else None, form.scheme_code.data,
                          form.year.data, form.period_number.data)  # fmt: skip

    def _step(self, pk, make, done: str):
        claim = self._claim(pk)
        try:
            result = make(claim).run()
        except UserError as exc:
            flash_refusal(exc)
        else:
            flash(done if not callable(done) else done(result), "success")
        return redirect(url_for(".show", pk=claim.id))

    @expose("/refresh/<pk>", methods=["POST"])
    @has_access
    def refresh(self, pk):
        return self._step(pk, RefreshClaim, lambda r: gettext(
            "Lines recomputed: %(added)d added, %(changed)d changed, %(dropped)d no longer claimable.", **r))

    @expose("/include/<pk>", methods=["POST"])
    @has_access
    def include(self, pk):
        include = request.form.get("included") == "1"
        ids = request.form.getlist("line")
        return self._step(pk, lambda c: IncludeLines(c, ids, include), lambda n: (
            gettext("%(n)d lines put back into the claim.", n=n) if include
            else gettext("%(n)d lines left out of the claim.", n=n)))  # fmt: skip

    @expose("/note/<pk>", methods=["POST"])
    @has_access
    def note(self, pk):
        line, text = request.form.get("line"), request.form.get("note")
        return self._step(pk, lambda c: CorrectLine(c, line, text), gettext("The correction note is saved."))

    @expose("/submit/<pk>", methods=["POST"])
    @has_access
    def submit(self, pk):
        return self._step(pk, SubmitClaim, lambda snap: gettext(
            "Submission %(n)d is sent to the bureau (SHA-256 %(hash)s).", n=snap.number, hash=snap.sha256[:12]))


class ClaimReviewView(_ClaimBase):
    """補助金核覆 (A11): the county's claims as the bureau reviews them, waiting ones first
    (oldest first); the Ministry reads every central-scheme claim."""

    route_base = "/claimreview"
    class_permission_name = CLAIM_REVIEW
    datamodel = _ReviewInterface(Claim)
    method_permission_name = {**VIEW_METHOD_PERMISSIONS, "edit": "read", "package": "read", "package_file": "read",
                              "review": "edit", "decide": "edit"}  # fmt: skip
    base_permissions = ["can_read", "can_edit", "can_export"]
    list_title = show_title = _l("Subsidy claim review")
    list_columns = ["institution", "scheme", "period_label", "status", "days_waiting", "claimed_amount",
                    "approved_amount", "returned_amount", "submissions"]  # fmt: skip
    base_order = ("waiting_since", "asc")  # NULLs (not waiting) last: _ReviewInterface
    # A draft is the institution's own until it is submitted.
    base_filters = [["status", FilterNotEqual, ClaimStatus.DRAFT.value]]
    formatters_columns = {**_ClaimBase.formatters_columns}

    @expose("/review/<pk>", methods=["POST"])
    @has_access
    def review(self, pk):
        claim = self._claim(pk)
        decision = request.form.get("decision", "")
        try:
            n = ReviewLines(claim, request.form.getlist("line"), decision, request.form.get("reason"),
                            request.form.get("comment")).run()  # fmt: skip
        except UserError as exc:
            flash_refusal(exc)
        else:
            flash(gettext("%(n)d lines approved.", n=n) if decision == LineReview.APPROVED.value
                  else gettext("%(n)d lines returned.", n=n), "success")  # fmt: skip
        return redirect(url_for(".show", pk=claim.id))

    @expose("/decide/<pk>", methods=["POST"])
    @has_access
    def decide(self, pk):
        claim = self._claim(pk)
        try:
            DecideClaim(claim, close=request.form.get("close") == "1", note=request.form.get("note")).run()
        except UserError as exc:
            flash_refusal(exc)
        else:
            flash(gettext("The claim is now %(status)s; the institution is told by e-mail.",
                          status=claim.status_label), "success")  # fmt: skip
        return redirect(url_for(".show", pk=claim.id))


Claim.days_waiting = property(_days_waiting)  # the bureau's list column


# ------------------------------------------------------------------ the report
def _year_arg() -> int | None:
    text = request.args.get("year", "")
    if not text:
        return clock.today().year
    if text.isdigit() and text.isascii() and len(text) <= 4:
        year = int(text)
        year = year + 1911 if year < 1000 else year
        if 2000 <= year <= 2200:
            return year
    return None


def _report_scope():
    scope = current_scope()
    if scope.national or (scope.kind == "county" and len(scope.county_ids) == 1):
        return scope
    return None


class ClaimReportView(ScopedReportView):
    """補助經費核銷統計: per scheme, claimed, approved and returned against budget — the
    Ministry's central schemes nationally, a bureau its county's claims."""

    route_base = "/claimreport"
    default_view = "index"
    class_permission_name = CLAIM_REPORT
    method_permission_name = {"index": "read", "export": "read"}

    def _figures(self):
        year, scope = _year_arg(), _report_scope()
        if scope is None:
            abort(404)
        if year is None:
            flash(gettext("Subsidy year: give a ROC year, e.g. %(year)d.", year=roc_year(clock.today().year)),
                  "danger")  # fmt: skip
            year = clock.today().year
        return year, scope, claim_report.subsidy_report(year, scope)

    @expose("/")
    @has_access
    def index(self):
        year, scope, rows = self._figures()
        title = gettext("Subsidy claims against budget")
        return self.render_template(
            "addiction/claim_report.html", title=title, year=year, roc_year=roc_year(year), rows=rows,
            national=scope.national, chart=Markup(claim_report.chart_svg(rows, title)),
        )  # fmt: skip

    @expose("/export")
    @has_access
    def export(self):
        year, scope, rows = self._figures()
        headers = [gettext("Subsidy scheme"), gettext("Budget (NT$)"), gettext("Claims"),
                   gettext("Amount claimed (NT$)"), gettext("Amount approved (NT$)"),
                   gettext("Amount returned (NT$)"), gettext("Remaining (NT$)"), gettext("Claims waiting")]  # fmt: skip
        data = [(r.name, r.budget, r.claims, r.claimed, r.approved, r.returned, r.remaining, r.waiting) for r in rows]
        title = f"{gettext('Subsidy claims against budget')} {roc_year(year)}"
        path, _ = write_xlsx(headers, data, sheet_name=str(roc_year(year)), title=title)
        return send_xlsx(path, export_file_name(title))


class ClaimReportApi(BaseApi):
    """GET /api/v1/claimreport/subsidy?year=114: the report's rows as JSON, in the caller's scope."""

    resource_name = "claimreport"
    class_permission_name = CLAIM_REPORT
    method_permission_name = {"subsidy": "read"}
    allow_browser_login = True
    openapi_spec_tag = "Reports"

    @expose("/subsidy", methods=["GET"])
    @protect()
    def subsidy(self):
        """Claimed, approved and returned against budget per scheme for ?year= (ROC or Gregorian).
        ---
        get:
          responses:
            200:
              description: one row per scheme
            400:
              description: bad year
            401:
              description: no token, or a forged or expired one
            404:
              description: a caller without a national or county scope
        """
        year, scope = _year_arg(), _report_scope()
        if year is None:
            return self.response(400, message=gettext("Subsidy year: give a ROC year, e.g. %(year)d.",
                                                      year=roc_year(clock.today().year)))  # fmt: skip
        if scope is None:
            return self.response_404()
        rows = claim_report.subsidy_report(year, scope)
        return self.response(200, year=roc_year(year), gregorian_year=year, national=scope.national,
                             schemes=[r.as_json() for r in rows])  # fmt: skip


def register(appbuilder, category, category_label, category_icon) -> None:
    menu = {"category": category, "category_label": category_label, "category_icon": category_icon}
    appbuilder.add_view(ClaimView, "Subsidy claims", label=_l("Subsidy claims"), icon="fa-file-text-o", **menu)
    appbuilder.add_view(ClaimReviewView, "Subsidy claim review", label=_l("Subsidy claim review"),
                        icon="fa-check-square-o", **menu)  # fmt: skip
    appbuilder.add_view(ClaimReportView, "Subsidy claims against budget", label=_l("Subsidy claims against budget"),
                        icon="fa-pie-chart", **menu)  # fmt: skip
    appbuilder.add_api(ClaimReportApi)


__all__ = ["ClaimReportApi", "ClaimReportView", "ClaimReviewView", "ClaimView"]
