"""HIS orders (A6): the Web API `POST /api/v1/his/orders`, the CSV/XLSX upload, the order
list, the code mappings with their unmapped-codes queue, and the case page's panel of what
can be claimed (A7–A9)."""

from __future__ import annotations

import io
import json

from flask import abort, current_app, flash, redirect, request, send_file, url_for
from flask_appbuilder import BaseView, expose
from flask_appbuilder.api import BaseApi
from flask_appbuilder.fieldwidgets import BS3TextFieldWidget
from flask_appbuilder.security.decorators import has_access, protect
from flask_babel import gettext
from flask_babel import lazy_gettext as _l
from markupsafe import Markup
from wtforms import StringField
from wtforms.validators import DataRequired

from core import clock
from core.data.datamodel import ScopedInterface
from core.data.scope import current_scope
from core.dates import parse_date
from core.errors import UserError
from core.extensions import db
from core.imports import ErrorReports, bound
from core.web.openapi import fix_operation_spec
from core.web.views import (
    ScopedModelRestApi,
    ScopedModelView,
    ScopedReportView,
    flash_refusal,
    valid_pk,
)
from domain.addiction.claimable import REASONS, AddCaseManagementFee, case_year
from domain.addiction.grants import CLAIMABLE, HIS_ORDER, ORDER_MAPPING
from domain.addiction.his import (
    HisBatchError,
    ImportOrders,
    import_file,
    max_bytes,
    orders_of_case,
    parse_batch,
    spreadsheet,
)
from domain.addiction.mapping import SaveMapping, unmapped_codes
from models.addiction.case import Case
from models.addiction.his import HisOrder, OrderCodeMapping, OrderSource
from views.addiction.cases import CommandForms, enum_formatter

ORDER_LABELS = {
    "institution": _l("Treatment institution"),
    "his_order_id": _l("HIS order id"),
    "line": _l("Line"),
    "case": _l("Case"),
    "patient": _l("Patient"),
    "order_code": _l("Order code"),
    "order_date": _l("Order date"),
    "executed_on": _l("Execution date"),
    "quantity": _l("Quantity"),
    "order_set_code": _l("Order-set code"),
    "source": _l("Source"),
    "item_code": _l("Subsidy item code"),
}
MAPPING_LABELS = {
    "institution": _l("Treatment institution"),
    "order_code": _l("Order code"),
    "item_code": _l("Subsidy item code"),
    "start_date": _l("Effective from"),
    "end_date": _l("Effective to"),
}


class HisOrderView(ScopedModelView):
    """醫令: the institution's imported orders (read-only; they never create a record)."""

    route_base = "/hisorder"
    datamodel = ScopedInterface(HisOrder)
    class_permission_name = HIS_ORDER
    base_permissions = ["can_read", "can_export"]
    list_title = show_title = _l("HIS orders")
    list_columns = ["executed_on", "case", "his_order_id", "line", "order_code", "order_set_code", "quantity",
                    "order_date", "source"]  # fmt: skip
    show_columns = ["institution", "case", "his_order_id", "line", "order_code", "order_set_code", "quantity",
                    "order_date", "executed_on", "source", "item_code"]  # fmt: skip
    search_columns = ["executed_on", "order_code", "his_order_id"]
    order_columns = ["executed_on", "order_code"]
    base_order = ("executed_on", "desc")
    label_columns = dict(ORDER_LABELS)
    list_eager = ["case", "case.patient"]
    export_columns = ["institution.nhi_code", "institution.name", "his_order_id", "line", "order_code",
                      "order_set_code", "quantity", "order_date", "executed_on", "source"]  # fmt: skip
    formatters_columns = {"source": enum_formatter(OrderSource)}


class HisOrderApi(ScopedModelRestApi):
    """The orders over REST (read); posting is `POST /api/v1/his/orders`."""

    resource_name = "his_order"
    datamodel = ScopedInterface(HisOrder)
    class_permission_name = HIS_ORDER
    include_route_methods = {"get", "get_list", "info"}
    list_columns = show_columns = ["id", "institution_id", "his_order_id", "line", "case_id", "order_code",
                                   "order_date", "executed_on", "quantity", "order_set_code", "source"]  # fmt: skip
    search_columns = ["executed_on", "order_code", "his_order_id"]
    order_columns = ["executed_on", "id"]
    base_order = ("executed_on", "desc")
    label_columns = dict(ORDER_LABELS)


class HisImportApi(BaseApi):
    """`POST /api/v1/his/orders`: an institution's HIS posts a batch of orders (A6)."""

    resource_name = "his"
    class_permission_name = HIS_ORDER
    method_permission_name = {"post_orders": "create"}
    allow_browser_login = True
    openapi_spec_tag = "HIS orders"

    def operation_helper(self, path=None, operations=None, methods=None, func=None, **kwargs):
        """The operation as it really answers (404 for the other programme's users, A1)."""
        super().operation_helper(path=path, operations=operations, methods=methods, func=func, **kwargs)
        for spec in operations.values():
            fix_operation_spec(spec, path or "")

    @expose("/orders", methods=["POST"])
    @protect()
    def post_orders(self):
        """Import a batch of HIS orders, idempotent on (institution, HIS order id, line).
        ---
        post:
          summary: Import a batch of HIS orders (an order set as its member orders)
          requestBody:
            required: true
            content:
              application/json:
                schema:
                  type: object
                  required: [orders]
                  properties:
                    institution:
                      description: The institution's NHI or registry code (or id); optional for an account of one institution.
                      oneOf: [{type: string}, {type: integer}]
                    orders:
                      type: array
                      items:
                        type: object
                        required: [his_order_id, person_id, order_date, executed_on]
                        properties:
                          his_order_id: {type: string, maxLength: 40}
                          line: {type: integer, minimum: 0}
                          person_id: {type: string, maxLength: 20}
                          order_code: {type: string, maxLength: 30}
                          order_date: {type: string, description: "2025-04-01 or 114/04/01"}
                          executed_on: {type: string, description: "2025-04-01 or 114/04/01"}
                          quantity: {type: integer, minimum: 1, maximum: 9999}
                          order_set_code: {type: string, maxLength: 30}
                          members:
                            type: array
                            items:
                              type: object
                              required: [line, order_code]
                              properties:
                                line: {type: integer, minimum: 0}
                                order_code: {type: string, maxLength: 30}
                                quantity: {type: integer, minimum: 1, maximum: 9999}
          responses:
            200:
              description: The receipt (accepted, duplicate and rejected lines with reasons)
              content:
                application/json:
                  schema:
                    type: object
                    properties:
                      accepted: {type: integer}
                      duplicate: {type: integer}
                      rejected: {type: integer}
                      duplicates: {type: array, items: {type: object}}
                      rejections: {type: array, items: {type: object}}
            400:
              $ref: '#/components/responses/400'
            401:
              $ref: '#/components/responses/401'
            403:
              $ref: '#/components/responses/403'
            413:
              description: More lines or bytes than a batch may have
            422:
              $ref: '#/components/responses/422'
        """
        limit = max_bytes()
        if request.content_length is not None and request.content_length > limit:
            return self.response(413, message=gettext("A batch may have at most %(mb)s MB: split it.",
                                                      mb=f"{limit / 1048576:.1f}"))  # fmt: skip
        raw = request.get_data(cache=False)[: limit + 1]
        if len(raw) > limit:
            return self.response(413, message=gettext("A batch may have at most %(mb)s MB: split it.",
                                                      mb=f"{limit / 1048576:.1f}"))  # fmt: skip
        try:
            body = json.loads(raw)
        except (ValueError, UnicodeDecodeError, RecursionError):
            return self.response_400(message=gettext("The batch is not JSON."))
        try:
            institution, lines = parse_batch(body)
            receipt = ImportOrders(institution, lines).run()
        except HisBatchError as exc:
            db.session.rollback()
            return self.response(exc.status, message=exc.answer())
        except UserError as exc:
            db.session.rollback()
            return self.response(exc.status, message=exc.answer())
        return self.response(200, **receipt.as_json())


#: The marked copies of refused uploads (core/imports.py ErrorReports), for their uploader only.
REPORTS = ErrorReports("his-reports")


class HisUploadView(BaseView):
    """醫令批次上傳 (A6) for institutions without an HIS interface: CSV or XLSX, all or nothing."""

    route_base = "/hisupload"
    default_view = "index"
    class_permission_name = HIS_ORDER
    method_permission_name = {"index": "create", "template": "create", "report": "create"}

    @expose("/", methods=["GET", "POST"])
    @has_access
    def index(self):
        errors, report, receipt = [], None, None
        if request.method == "POST":
            upload = request.files.get("file")
            data = upload.read(bound("BATCH_MAX_BYTES") + 1) if upload else b""
            if not data:
                flash(gettext("Please choose the file to upload."), "danger")
            else:
                try:
                    outcome, receipt = import_file(data)
                except UserError as exc:
                    flash_refusal(exc)
                    outcome = None
                if outcome is not None and outcome.failed:
                    errors = outcome.failed
                    report = REPORTS.save(spreadsheet(), outcome.rows)
                    flash(gettext("%(n)d rows have errors; nothing was imported. Download the marked file, "
                                  "correct it and upload it again.", n=len(errors)), "danger")  # fmt: skip
                elif outcome is not None:
                    flash(gettext("%(a)d orders imported, %(d)d already stored.", a=len(receipt.accepted),
                                  d=len(receipt.duplicate)), "success")  # fmt: skip
                    return redirect(url_for("HisOrderView.list"))
        return self.render_template("addiction/his_upload.html", errors=errors[:100], report=report,
                                    title=gettext("Upload HIS orders"))  # fmt: skip

    @expose("/template")
    @has_access
    def template(self):
        buffer = io.BytesIO()
        spreadsheet().write_template(buffer)
        buffer.seek(0)
        return send_file(buffer, as_attachment=True, download_name="his-orders-template.xlsx")

    @expose("/report/<name>")
    @has_access
    def report(self, name):
        return REPORTS.send(name, "his-orders-errors.xlsx")


class OrderCodeMappingView(CommandForms, ScopedModelView):
    """醫令代碼對照 (A6): the institution's order code → subsidy item, with effective dates."""

    route_base = "/ordercodemapping"
    datamodel = ScopedInterface(OrderCodeMapping)
    class_permission_name = ORDER_MAPPING
    base_permissions = ["can_read", "can_export", "can_create", "can_edit"]
    list_title = show_title = _l("Order code mappings")
    add_title = _l("Map an order code")
    edit_title = _l("Edit order code mapping")
    list_columns = ["institution", "order_code", "item_code", "start_date", "end_date"]
    show_columns = list_columns
    add_columns = ["institution", "order_code", "item_code", "start_date", "end_date"]
    edit_columns = ["item_code", "start_date", "end_date"]
    search_columns = ["order_code", "item_code", "start_date"]
    order_columns = ["order_code", "start_date"]
    base_order = ("order_code", "asc")
    label_columns = dict(MAPPING_LABELS)
    list_eager = ["institution"]
    export_columns = ["institution.nhi_code", "institution.name", "order_code", "item_code", "start_date", "end_date"]
    add_form_extra_fields = {
        "order_code": StringField(MAPPING_LABELS["order_code"], validators=[DataRequired()], widget=BS3TextFieldWidget()),
        "item_code": StringField(MAPPING_LABELS["item_code"], validators=[DataRequired()], widget=BS3TextFieldWidget(),
                                 description=_l("The code of the item in the subsidy scheme, e.g. PSY (see the scheme's items).")),
    }
    edit_form_extra_fields = {"item_code": add_form_extra_fields["item_code"]}

    def add_command(self, form):
        institution = form.institution.data
        return SaveMapping(institution.id if institution is not None else None, form.order_code.data,
                           form.item_code.data, form.start_date.data, form.end_date.data)  # fmt: skip

    def edit_command(self, item, form):
        return SaveMapping(item.institution_id, item.order_code, form.item_code.data, form.start_date.data,
                           form.end_date.data, mapping=item)  # fmt: skip

    def _get_add_widget(self, form, exclude_cols=None, widgets=None):
        # From the unmapped-codes queue: the code to map is filled in.
        if request.method == "GET" and not form.order_code.data:
            form.order_code.data = request.args.get("order_code", "")[:30]
        return super()._get_add_widget(form, exclude_cols=exclude_cols, widgets=widgets)


class UnmappedCodesView(ScopedReportView):
    """未對照醫令代碼 (A6, Q9): codes with orders no mapping covers, never silently dropped."""

    route_base = "/unmappedcodes"
    default_view = "index"
    class_permission_name = ORDER_MAPPING
    method_permission_name = {"index": "read"}

    @expose("/")
    @has_access
    def index(self):
        rows = unmapped_codes(current_scope())
        return self.render_template(
            "addiction/unmapped_codes.html", title=gettext("Unmapped order codes"), rows=rows,
            can_map=self.appbuilder.sm.has_access("can_add", ORDER_MAPPING)
            or self.appbuilder.sm.has_access("can_create", ORDER_MAPPING),
        )  # fmt: skip


class CaseClaimsView(BaseView):
    """The case page's panel actions: add the case-management fee without an order (A9)."""

    route_base = "/caseclaims"
    class_permission_name = HIS_ORDER
    method_permission_name = {"add_fee": "create"}

    @expose("/<pk>/fee", methods=["POST"])
    @has_access
    def add_fee(self, pk):
        case = ScopedInterface(Case).get(int(pk)) if valid_pk(pk) else None
        if case is None:
            abort(404)
        try:
            day = parse_date(request.form.get("executed_on", "")[:40])
            AddCaseManagementFee(case, day).run()
        except UserError as exc:
            flash_refusal(exc)
        else:
            flash(gettext("The case-management fee is added."), "success")
        return redirect(url_for("CaseView.show", pk=case.id) + "#his-panel")


def his_panel(case) -> Markup:
    """The case page's panel (its own template include): this year's claimable amount, the
    person's remaining cap per scheme, each scheme's remaining budget, the lines with their
    reasons, and the case's HIS orders beside the treatment records."""
    sm = current_app.appbuilder.sm
    if not sm.has_access("can_read", HIS_ORDER):
        return Markup("")
    from flask import render_template

    from views.addiction.schemes import remaining_budgets

    year = int(request.args.get("claim_year", "0") or 0) if str(request.args.get("claim_year", "")).isdigit() else 0
    today = clock.today()
    year = year if 2000 <= year <= 2200 else today.year
    lines, caps = case_year(case, year, today)
    show_claims = sm.has_access("can_read", CLAIMABLE)
    return Markup(render_template(
        "addiction/his_panel.html", case=case, year=year, lines=lines, caps=caps,
        total=sum(line.amount for line in lines), orders=orders_of_case(case.id, year),
        refused=sum(1 for line in lines if line.reason and not line.amount), years=(year - 1, year + 1),
        budgets=remaining_budgets(year, caps["remaining"].keys()) if show_claims else {},
        show_claims=show_claims, can_add_fee=sm.has_access("can_create", HIS_ORDER), reasons=REASONS,
        OrderSource=OrderSource,
    ))  # fmt: skip


def register(appbuilder, category, category_label, category_icon) -> None:
    """The HIS screens and APIs under the addiction menu; the case page's panel."""
    menu = {"category": category, "category_label": category_label, "category_icon": category_icon}
    appbuilder.add_view(HisOrderView, "HIS orders", label=_l("HIS orders"), icon="fa-list-alt", **menu)
    appbuilder.add_view(HisUploadView, "Upload HIS orders", label=_l("Upload HIS orders"), icon="fa-upload", **menu)
    appbuilder.add_view(OrderCodeMappingView, "Order code mappings", label=_l("Order code mappings"),
                        icon="fa-exchange", **menu)  # fmt: skip
    appbuilder.add_view(UnmappedCodesView, "Unmapped order codes", label=_l("Unmapped order codes"),
                        icon="fa-question-circle", **menu)  # fmt: skip
    appbuilder.add_view_no_menu(CaseClaimsView)
    appbuilder.add_api(HisOrderApi)
    appbuilder.add_api(HisImportApi)
    current_app.jinja_env.globals["his_panel"] = his_panel


__all__ = ["HisImportApi", "HisOrderApi", "HisOrderView", "HisUploadView", "OrderCodeMappingView", "his_panel"]
