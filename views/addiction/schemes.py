"""Subsidy schemes (A9, A10): schemes and their items, publish and new versions; spending
against budget per county and nationally (table and chart); an institution's unclaimed
lines by month (A7–A9)."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict

from flask import abort, flash, redirect, request, url_for
from flask_appbuilder import expose
from flask_appbuilder.api import safe
from flask_appbuilder.fieldwidgets import BS3TextFieldWidget
from flask_appbuilder.security.decorators import has_access, protect
from flask_babel import gettext
from flask_babel import lazy_gettext as _l
from markupsafe import Markup, escape
from sqlalchemy import select
from wtforms import BooleanField, IntegerField, SelectField, SelectMultipleField, StringField
from wtforms.validators import DataRequired
from wtforms.validators import Optional as OptionalValidator

from core import clock
from core.data.datamodel import ScopedInterface
from core.data.scope import current_scope
from core.dates import roc_year
from core.errors import UserError
from core.extensions import db
from core.web.views import (
    VIEW_METHOD_PERMISSIONS,
    ScopedModelRestApi,
    ScopedModelView,
    ScopedReportView,
    flash_refusal,
    valid_pk,
)
from core.web.workqueue import cached_value, scope_key
from domain.addiction.claimable import REASONS, compute_territory, spending
from domain.addiction.grants import CLAIMABLE, SCHEME, SCHEME_ITEM, SCHEME_SPENDING
from domain.addiction.schemes import (
    DeleteItem,
    NewSchemeVersion,
    PublishScheme,
    SaveItem,
    SaveScheme,
    may_own,
)
from models.addiction.case import EligibilityCategory
from models.addiction.record import TreatmentKind
from models.addiction.scheme import SchemeItem, SchemeStatus, SchemeSubstance, SubsidyScheme
from models.addiction.staff import StaffProfession
from models.registry.institution import Institution
from models.registry.reference import County
from views.addiction.cases import CommandForms, enum_formatter

SCHEME_LABELS = {
    "code": _l("Scheme code"),
    "name": _l("Scheme name"),
    "county": _l("Owner"),
    "substance": _l("Substance category"),
    "year": _l("Subsidy year"),
    "version": _l("Version"),
    "effective_from": _l("Applies from"),
    "status": _l("Status"),
    "cap_adult": _l("Annual cap per person (NT$)"),
    "cap_minor": _l("Annual cap per minor (NT$)"),
    "minor_age": _l("Age of majority"),
    "budget": _l("Budget (NT$)"),
}
ITEM_LABELS = {
    "scheme": _l("Subsidy scheme"),
    "code": _l("Subsidy item code"),
    "name": _l("Item name"),
    "unit_amount": _l("Unit amount (NT$)"),
    "within_cap": _l("Counts toward the cap"),
    "case_management_fee": _l("Case-management service fee"),
    "kinds": _l("Treatment kinds that justify it"),
    "professions": _l("Professions"),
    "categories": _l("Eligible categories"),
}
#: The tables the claimable computation reads: its cached figures change with any of them.
CLAIM_TABLES = ("his_order", "order_code_mapping", "treatment_record", "course", "addiction_case", "patient",
                "subsidy_scheme", "scheme_item")  # fmt: skip


class CodesField(SelectMultipleField):
    """Several codes of an enum, stored comma-separated."""

    def process_data(self, value):
        if isinstance(value, str):
            value = [v for v in value.split(",") if v]
        super().process_data(value)

    def pre_validate(self, form):
        values = {str(v) for v, _ in self.choices}
        if any(v not in values for v in self.data or []):
            from wtforms.validators import ValidationError

            raise ValidationError(gettext("Choose from the list."))

    def populate_obj(self, obj, name):
        setattr(obj, name, ",".join(self.data or []) or None)


def _year_label(year) -> str:
    return str(roc_year(year)) if isinstance(year, int) else ""


def _owner_label(county) -> str:
    return county.name if county is not None else gettext("Ministry of Health and Welfare (central)")


class SchemeView(CommandForms, ScopedModelView):
    """補助方案 (A9, A10): the Ministry's central schemes, each bureau's local ones."""

    route_base = "/subsidyscheme"
    datamodel = ScopedInterface(SubsidyScheme)
    class_permission_name = SCHEME
    method_permission_name = {**VIEW_METHOD_PERMISSIONS, "publish": "edit", "new_version": "edit"}
    base_permissions = ["can_read", "can_create", "can_edit"]
    list_title = show_title = _l("Subsidy schemes")
    add_title = _l("New subsidy scheme")
    edit_title = _l("Edit subsidy scheme")
    show_template = "addiction/scheme_show.html"
    list_columns = ["year", "name", "county", "version", "effective_from", "status", "cap_adult", "cap_minor",
                    "budget"]  # fmt: skip
    show_columns = ["code", "name", "county", "substance", "year", "version", "effective_from", "status",
                    "cap_adult", "cap_minor", "minor_age", "budget"]  # fmt: skip
    add_columns = ["code", "name", "substance", "year", "cap_adult", "cap_minor", "minor_age", "budget"]
    edit_columns = ["name", "cap_adult", "cap_minor", "minor_age", "budget"]
    search_columns = ["year", "code", "name"]
    order_columns = ["year", "name", "version"]
    base_order = ("year", "desc")
    label_columns = dict(SCHEME_LABELS)
    list_eager = ["county"]
    formatters_columns = {
        "year": _year_label, "county": _owner_label, "status": enum_formatter(SchemeStatus),
        "substance": enum_formatter(SchemeSubstance),
    }  # fmt: skip
    add_form_extra_fields = {
        "code": StringField(SCHEME_LABELS["code"], validators=[DataRequired()], widget=BS3TextFieldWidget()),
        "name": StringField(SCHEME_LABELS["name"], validators=[DataRequired()], widget=BS3TextFieldWidget()),
        "substance": SelectField(SCHEME_LABELS["substance"], choices=SchemeSubstance.choices()),
        "year": StringField(SCHEME_LABELS["year"], validators=[DataRequired()], description=_l("ROC year, e.g. 114"),
                            widget=BS3TextFieldWidget()),
        "cap_adult": StringField(SCHEME_LABELS["cap_adult"], validators=[DataRequired()], widget=BS3TextFieldWidget()),
        "cap_minor": StringField(SCHEME_LABELS["cap_minor"], validators=[OptionalValidator()],
                                 description=_l("Leave empty for the same cap as adults."), widget=BS3TextFieldWidget()),
        "minor_age": StringField(SCHEME_LABELS["minor_age"], validators=[OptionalValidator()], default="18", widget=BS3TextFieldWidget()),
        "budget": StringField(SCHEME_LABELS["budget"], validators=[DataRequired()], widget=BS3TextFieldWidget()),
    }
    edit_form_extra_fields = dict(add_form_extra_fields)

    def add_command(self, form):
        return SaveScheme({k: form[k].data for k in self.add_columns})

    def edit_command(self, item, form):
        values = {"code": item.code, "substance": item.substance, "year": item.year}
        values.update({k: form[k].data for k in self.edit_columns})
        # The form's changes are not on the row: the command checks the frozen state first.
        db.session.expire(item)
        return SaveScheme(values, scheme=item)

    def _scheme(self, pk) -> SubsidyScheme:
        scheme = self.datamodel.get(int(pk), self._base_filters) if valid_pk(pk) else None
        if scheme is None:
            abort(404)
        return scheme

    @expose("/show/<pk>", methods=["GET"])
    @has_access
    def show(self, pk):
        scheme = self._scheme(pk)
        versions = db.session.scalars(
            select(SubsidyScheme).where(SubsidyScheme.code == scheme.code, SubsidyScheme.year == scheme.year,
                                        SubsidyScheme.scope_clause(current_scope()))
            .order_by(SubsidyScheme.version)
        ).all()  # fmt: skip
        sm = self.appbuilder.sm
        return self.render_template(
            self.show_template, title=self.show_title, item=scheme, versions=versions, labels=SCHEME_LABELS,
            item_labels=ITEM_LABELS, owner=_owner_label(scheme.county), kinds=_labels(TreatmentKind),
            professions=_labels(StaffProfession), categories=_labels(EligibilityCategory),
            can_change=may_own(scheme.county_id) and sm.has_access("can_edit", SCHEME),
            can_add_item=may_own(scheme.county_id) and sm.has_access("can_create", SCHEME_ITEM),
            can_delete_item=may_own(scheme.county_id) and sm.has_access("can_delete", SCHEME_ITEM),
            SchemeSubstance=SchemeSubstance, SchemeStatus=SchemeStatus, enum_label=enum_formatter,
        )  # fmt: skip

    @expose("/publish/<pk>", methods=["POST"])
    @has_access
    def publish(self, pk):
        scheme = self._scheme(pk)
        try:
            PublishScheme(scheme).run()
        except UserError as exc:
            flash_refusal(exc)
        else:
            flash(gettext("Version %(v)d is published; it is frozen from now on.", v=scheme.version), "success")
        return redirect(url_for(".show", pk=scheme.id))

    @expose("/newversion/<pk>", methods=["POST"])
    @has_access
    def new_version(self, pk):
        scheme = self._scheme(pk)
        try:
            new = NewSchemeVersion(scheme, request.form.get("effective_from", "")).run()
        except UserError as exc:
            flash_refusal(exc)
            return redirect(url_for(".show", pk=scheme.id))
        flash(gettext("Version %(v)d is drafted: change it, then publish it.", v=new.version), "success")
        return redirect(url_for(".show", pk=new.id))


def _labels(enum) -> dict:
    return {m.value: str(m.label) for m in enum}


def _codes_formatter(enum):
    labels = {m.value: m.label for m in enum}

    def format_codes(value):
        return "、".join(str(labels.get(v, v)) for v in SchemeItem.split(value)) or gettext("All")

    return format_codes


class SchemeItemView(CommandForms, ScopedModelView):
    """補助項目: the items of a draft scheme version (a published one is frozen)."""

    route_base = "/schemeitem"
    datamodel = ScopedInterface(SchemeItem)
    class_permission_name = SCHEME_ITEM
    base_permissions = ["can_read", "can_create", "can_edit", "can_delete"]
    list_title = show_title = _l("Subsidy items")
    add_title = _l("New subsidy item")
    edit_title = _l("Edit subsidy item")
    list_columns = ["scheme", "code", "name", "unit_amount", "within_cap", "case_management_fee", "kinds"]
    show_columns = ["scheme", "code", "name", "unit_amount", "within_cap", "case_management_fee", "kinds",
                    "professions", "categories"]  # fmt: skip
    add_columns = show_columns
    edit_columns = ["code", "name", "unit_amount", "within_cap", "case_management_fee", "kinds", "professions",
                    "categories"]  # fmt: skip
    search_columns = ["scheme", "code", "name"]
    order_columns = ["code"]
    base_order = ("code", "asc")
    label_columns = dict(ITEM_LABELS)
    list_eager = ["scheme"]
    formatters_columns = {
        "kinds": _codes_formatter(TreatmentKind), "professions": _codes_formatter(StaffProfession),
        "categories": _codes_formatter(EligibilityCategory),
    }  # fmt: skip
    add_form_extra_fields = {
        "code": StringField(ITEM_LABELS["code"], validators=[DataRequired()], widget=BS3TextFieldWidget()),
        "name": StringField(ITEM_LABELS["name"], validators=[DataRequired()], widget=BS3TextFieldWidget()),
        "unit_amount": IntegerField(ITEM_LABELS["unit_amount"], validators=[DataRequired()]),
        "within_cap": BooleanField(ITEM_LABELS["within_cap"], default=True),
        "case_management_fee": BooleanField(ITEM_LABELS["case_management_fee"],
                                            description=_l("Never counts toward the cap; institutions may add it without an order.")),
        "kinds": CodesField(ITEM_LABELS["kinds"], choices=TreatmentKind.choices()),
        "professions": CodesField(ITEM_LABELS["professions"], choices=StaffProfession.choices(),
                                  description=_l("Leave empty for any profession that signed the record.")),
        "categories": CodesField(ITEM_LABELS["categories"], choices=EligibilityCategory.choices(),
                                 description=_l("Leave empty for every category.")),
    }  # fmt: skip
    edit_form_extra_fields = dict(add_form_extra_fields)

    def _values(self, form):
        return {k: form[k].data for k in self.edit_columns}

    def add_command(self, form):
        scheme = form.scheme.data
        if scheme is None:
            raise UserError(gettext("Choose the scheme."))
        return SaveItem(scheme, self._values(form))

    def edit_command(self, item, form):
        values = self._values(form)
        db.session.expire(item)
        return SaveItem(item.scheme, values, item=item)

    def _get_add_widget(self, form, exclude_cols=None, widgets=None):
        if request.method == "GET" and valid_pk(request.args.get("scheme", "")):
            scheme = ScopedInterface(SubsidyScheme).get(int(request.args["scheme"]))
            if scheme is not None:
                form.scheme.data = scheme
        return super()._get_add_widget(form, exclude_cols=exclude_cols, widgets=widgets)

    def post_add_redirect(self):
        return redirect(url_for("SchemeView.show", pk=self._saved.scheme_id))

    def post_edit_redirect(self):
        return redirect(url_for("SchemeView.show", pk=self._saved.scheme_id))

    def _delete(self, pk):
        """Only an item of a draft version, by its scheme's owner (DeleteItem)."""
        item = self.datamodel.get(pk, self._base_filters)
        if item is None:
            abort(404)
        self._scheme_id = item.scheme_id
        try:
            DeleteItem(item).run()
        except UserError as exc:
            flash_refusal(exc)
        else:
            flash(gettext("The item is removed from the draft version."), "success")

    def post_delete_redirect(self):
        scheme_id = getattr(self, "_scheme_id", None)
        if scheme_id is None:
            return super().post_delete_redirect()
        return redirect(url_for("SchemeView.show", pk=scheme_id))


# ------------------------------------------------------------------ REST
SCHEME_API_COLUMNS = ["id", "code", "name", "county_id", "substance", "year", "version", "effective_from", "status",
                      "cap_adult", "cap_minor", "minor_age", "budget"]  # fmt: skip
ITEM_API_COLUMNS = ["id", "scheme_id", "code", "name", "unit_amount", "within_cap", "case_management_fee", "kinds",
                    "professions", "categories"]  # fmt: skip


def _json_body():
    body = request.get_json(silent=True)
    return body if isinstance(body, dict) else None


class SchemeApi(ScopedModelRestApi):
    """Subsidy schemes over REST (A9, A10): read by everyone whose scope holds them (central
    ones and their county's); written only by their owner — the Ministry the central ones,
    a bureau its county's — through the same commands as the screens. A published version
    is frozen: `POST /<pk>/new_version` drafts the next, `POST /<pk>/publish` publishes."""

    resource_name = "subsidy_scheme"
    datamodel = ScopedInterface(SubsidyScheme)
    class_permission_name = SCHEME
    include_route_methods = {"get", "get_list", "info", "post", "put", "publish", "new_version"}
    method_permission_name = {**ScopedModelRestApi.method_permission_name, "publish": "edit", "new_version": "edit"}
    list_columns = show_columns = SCHEME_API_COLUMNS
    add_columns = ["code", "name", "substance", "year", "cap_adult", "cap_minor", "minor_age", "budget"]
    edit_columns = ["name", "cap_adult", "cap_minor", "minor_age", "budget"]
    search_columns = ["year", "code", "name", "status"]
    order_columns = ["year", "code", "version", "id"]
    base_order = ("id", "asc")
    label_columns = dict(SCHEME_LABELS)

    def _answer(self, scheme, status):
        return self.response(status, id=scheme.id, result=self.show_model_schema.dump(scheme))

    def _scheme(self, pk):
        return self.datamodel.get(int(pk)) if valid_pk(pk) else None

    def post_headless(self):
        body = _json_body()
        if body is None:
            return self.response_400(message=gettext("A value in the request is not valid."))
        values = {k: body.get(k) for k in self.add_columns}
        return self._guarded(lambda: self._answer(SaveScheme(values).run(), 201))

    def put_headless(self, pk):
        scheme = self._scheme(pk)
        if scheme is None:
            return self.response_404()
        body = _json_body()
        if body is None:
            return self.response_400(message=gettext("A value in the request is not valid."))
        values = {"code": scheme.code, "substance": scheme.substance, "year": scheme.year}
        values.update({k: body.get(k, getattr(scheme, k)) for k in self.edit_columns})
        return self._guarded(lambda: self._answer(SaveScheme(values, scheme=scheme).run(), 200))

    @expose("/<pk>/publish", methods=["POST"])
    @protect()
    @safe
    def publish(self, pk):
        """Publish a draft version (then it is frozen).
        ---
        post:
          summary: Publish a draft scheme version
          parameters:
          - in: path
            schema: {type: integer}
            name: pk
          responses:
            200: {description: The published version}
            403: {$ref: '#/components/responses/403'}
            404: {$ref: '#/components/responses/404'}
            422: {$ref: '#/components/responses/422'}
        """
        scheme = self._scheme(pk)
        if scheme is None:
            return self.response_404()
        return self._guarded(lambda: self._answer(PublishScheme(scheme).run(), 200))

    @expose("/<pk>/new_version", methods=["POST"])
    @protect()
    @safe
    def new_version(self, pk):
        """Draft the next version of a published one, applying from a later date of its year.
        ---
        post:
          summary: Draft the next version of a scheme
          parameters:
          - in: path
            schema: {type: integer}
            name: pk
          requestBody:
            content:
              application/json:
                schema:
                  type: object
                  properties:
                    effective_from: {type: string, description: "2025-07-01 or 114/07/01"}
          responses:
            201: {description: The new draft version}
            403: {$ref: '#/components/responses/403'}
            404: {$ref: '#/components/responses/404'}
            422: {$ref: '#/components/responses/422'}
        """
        scheme = self._scheme(pk)
        if scheme is None:
            return self.response_404()
        body = _json_body() or {}
        effective = body.get("effective_from")
        return self._guarded(lambda: self._answer(NewSchemeVersion(scheme, effective if isinstance(effective, str) else "").run(), 201))


class SchemeItemApi(ScopedModelRestApi):
    """Subsidy items over REST: read in scope; added, changed and deleted only in a draft
    version, by its scheme's owner (the commands SaveItem and DeleteItem)."""

    resource_name = "scheme_item"
    datamodel = ScopedInterface(SchemeItem)
    class_permission_name = SCHEME_ITEM
    include_route_methods = {"get", "get_list", "info", "post", "put", "delete"}
    list_columns = show_columns = ITEM_API_COLUMNS
    add_columns = ["scheme", "code", "name", "unit_amount", "within_cap", "case_management_fee", "kinds",
                   "professions", "categories"]  # fmt: skip
    edit_columns = ["code", "name", "unit_amount", "within_cap", "case_management_fee", "kinds", "professions",
                    "categories"]  # fmt: skip
    search_columns = ["scheme", "code", "name"]
    order_columns = ["code", "id"]
    base_order = ("id", "asc")
    label_columns = dict(ITEM_LABELS)

    def _answer(self, item, status):
        return self.response(status, id=item.id, result=self.show_model_schema.dump(item))

    def post_headless(self):
        body = _json_body()
        if body is None:
            return self.response_400(message=gettext("A value in the request is not valid."))
        errors = self._relation_errors(self.add_columns)
        if errors:
            return self.response_422(message=errors)
        scheme = ScopedInterface(SubsidyScheme).get(int(body["scheme"])) if body.get("scheme") is not None else None
        if scheme is None:
            return self.response_422(message={"scheme": [gettext("Choose the scheme.")]})
        values = {k: body.get(k) for k in self.edit_columns}
        return self._guarded(lambda: self._answer(SaveItem(scheme, values).run(), 201))

    def put_headless(self, pk):
        item = self.datamodel.get(int(pk)) if valid_pk(pk) else None
        if item is None:
            return self.response_404()
        body = _json_body()
        if body is None:
            return self.response_400(message=gettext("A value in the request is not valid."))
        values = {k: body.get(k, getattr(item, k)) for k in self.edit_columns}
        return self._guarded(lambda: self._answer(SaveItem(item.scheme, values, item=item).run(), 200))

    def delete_headless(self, pk):
        item = self.datamodel.get(int(pk)) if valid_pk(pk) else None
        if item is None:
            return self.response_404()

        def delete():
            DeleteItem(item).run()
            return self.response(200, message=gettext("The item is removed from the draft version."))

        return self._guarded(delete)


# ------------------------------------------------------------------ figures
def spending_cached(year: int, county_id: int | None, today: dt.date) -> dict:
    """Spending per scheme over a territory (nationally, or one county's institutions), and
    per county of it; cached under the versions of every table the computation reads."""

    def compute():
        clause = Institution.county_id == county_id if county_id is not None else None
        territory = compute_territory(year, clause, today)
        counties = {c for c in territory.county_of.values()} if county_id is None else {county_id}
        return {
            "rows": spending(territory, county_id),
            "per_county": {c: spending(territory, c) for c in sorted(counties)},
        }

    return cached_value(f"claims:{year}:{county_id}:{today}", CLAIM_TABLES, compute)


def remaining_budgets(year: int, codes) -> dict:
    """scheme code -> its remaining budget of the year (over its whole territory)."""
    today = clock.today()
    owners = dict(db.session.execute(
        select(SubsidyScheme.code, SubsidyScheme.county_id)
        .where(SubsidyScheme.year == year, SubsidyScheme.code.in_(sorted(codes)))
    ).all())  # fmt: skip
    result = {}
    for code in sorted(codes):
        for row in spending_cached(year, owners.get(code), today)["rows"]:
            if row.code == code:
                result[code] = row.remaining
    return result


def spending_chart(rows, title: str) -> Markup:
    """Horizontal bars of spending against budget per scheme, as inline SVG (no network)."""
    bar_x, bar_width, height = 230, 320, 26
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" id="spending-chart" role="img" width="640" '
        f'height="{len(rows) * height + 34}" aria-label="{escape(title)}">',
        f"<title>{escape(title)}</title>",
    ]
    for n, row in enumerate(rows):
        y = n * height + 5
        width = min(int(row.share * bar_width), bar_width)  # past the budget: full and red
        colour = "#d9534f" if row.share > 1 else "#337ab7"
        parts.append(f'<text x="0" y="{y + 15}" font-size="13">{escape(row.name[:16])}</text>')
        parts.append(f'<rect x="{bar_x}" y="{y}" width="{bar_width}" height="{height - 8}" fill="#eee"></rect>')
        parts.append(
            f'<rect class="bar" data-scheme="{escape(row.code)}" x="{bar_x}" y="{y}" width="{width}" '
            f'height="{height - 8}" fill="{colour}"></rect>'
        )
        parts.append(f'<text x="{bar_x + min(width, bar_width) + 5}" y="{y + 15}" font-size="12">'
                     f"{row.share * 100:.1f}%</text>")  # fmt: skip
    axis_y = len(rows) * height + 8
    parts.append(f'<line x1="{bar_x}" y1="{axis_y}" x2="{bar_x + bar_width}" y2="{axis_y}" stroke="#999"></line>')
    for pct in (0, 50, 100):
        parts.append(f'<text x="{bar_x + pct * bar_width // 100 - 8}" y="{axis_y + 16}" font-size="11">{pct}%</text>')
    parts.append("</svg>")
    return Markup("".join(parts))


def _year_arg() -> int:
    text = request.args.get("year", "")
    if text.isdigit() and text.isascii():
        year = int(text)
        year = year + 1911 if year < 1000 else year
        if 2000 <= year <= 2200:
            return year
    return clock.today().year


class SchemeSpendingView(ScopedReportView):
    """補助經費執行 (A9, A10): per scheme, spending against budget — nationally with each
    county's share for the Ministry, a county's own for its bureau; a table and a chart."""

    route_base = "/schemespending"
    default_view = "index"
    class_permission_name = SCHEME_SPENDING
    method_permission_name = {"index": "read"}

    @expose("/")
    @has_access
    def index(self):
        year, today, scope = _year_arg(), clock.today(), current_scope()
        counties = dict(db.session.execute(
            select(County.id, County.name).where(scope.county_filter(County.id)).order_by(County.code)
        ).all())  # fmt: skip
        if scope.national:
            figures = spending_cached(year, None, today)
            rows = figures["rows"]
            per_county = [(counties.get(c, ""), row) for c, county_rows in figures["per_county"].items()
                          for row in county_rows if row.lines]  # fmt: skip
            heading = gettext("National")
            held = {}
        elif scope.kind == "county" and len(scope.county_ids) == 1:
            county_id = next(iter(scope.county_ids))
            rows = spending_cached(year, county_id, today)["rows"]
            per_county = []
            heading = counties.get(county_id, "")
            # A central scheme's budget is held nationally (the model keeps no county share):
            # beside this county's spending, its budget against its national spending.
            held = {r.code: r for r in spending_cached(year, None, today)["rows"] if r.county_id is None}
        else:
            abort(404)
        title = gettext("Subsidy spending against budget")
        return self.render_template(
            "addiction/scheme_spending.html", title=title, heading=heading, year=year, roc_year=roc_year(year),
            rows=[budget_row(r, held.get(r.code), counties, scope.national) for r in rows],
            per_county=per_county, national=scope.national,
            # A county's chart shows its own schemes: a central one's budget is national.
            chart=spending_chart(rows if scope.national else [r for r in rows if r.county_id], title),
        )  # fmt: skip


def budget_row(row, national_row, counties: dict, national_view: bool) -> dict:
    """One line of the spending table: the budget at the level it is held (全國預算 for a
    central scheme, the county's for a local one), its spending at that level, and, on a
    bureau's page, what the county's institutions spent of it."""
    level = row if national_row is None else national_row
    if row.county_id is None:
        owner, level_label = gettext("Central"), gettext("National budget")
    else:
        owner = counties.get(row.county_id, "")
        level_label = gettext("%(county)s budget", county=owner)
    return {
        "code": row.code, "name": row.name, "owner": owner, "level": level_label, "central": row.county_id is None,
        "budget": level.budget, "spent": level.spent, "remaining": level.remaining, "share": level.share,
        "county_spent": None if national_view else row.spent, "lines": row.lines,
        "over_budget_lines": row.over_budget_lines,
    }  # fmt: skip


class UnclaimedView(ScopedReportView):
    """未能申請補助明細 (A7–A9): the institution's lines that cannot be claimed (or only in
    part), by month and reason — what to fix (a record missing, a code unmapped …)."""

    route_base = "/unclaimed"
    default_view = "index"
    class_permission_name = CLAIMABLE
    method_permission_name = {"index": "read"}

    @expose("/")
    @has_access
    def index(self):
        year, today, scope = _year_arg(), clock.today(), current_scope()
        if not scope.has_any:
            abort(404)

        def compute():
            territory = compute_territory(year, Institution.scope_clause(scope), today)
            mine = set(db.session.scalars(select(Institution.id).where(Institution.scope_clause(scope))))
            by_month = defaultdict(lambda: defaultdict(lambda: [0, 0]))
            for line in territory.lines:
                if line.institution_id not in mine or (line.reason is None and not line.over_budget):
                    continue
                reason = line.reason or "over_budget"
                cell = by_month[line.executed_on.month][reason]
                cell[0] += 1
                cell[1] += max(line.unit_amount - line.amount, 0)
            return {m: dict(v) for m, v in by_month.items()}

        by_month = cached_value(f"unclaimed:{year}:{scope_key(scope)}:{today}", CLAIM_TABLES, compute)
        months = sorted(by_month)
        reasons = [r for r in REASONS if any(r in by_month[m] for m in months)]
        return self.render_template(
            "addiction/unclaimed.html", title=gettext("Unclaimed lines by month"), year=year,
            roc_year=roc_year(year), months=months, reasons=reasons, by_month=by_month,
            labels={r: str(REASONS[r]) for r in REASONS},
        )  # fmt: skip


def register(appbuilder, category, category_label, category_icon) -> None:
    menu = {"category": category, "category_label": category_label, "category_icon": category_icon}
    appbuilder.add_view(SchemeView, "Subsidy schemes", label=_l("Subsidy schemes"), icon="fa-money", **menu)
    appbuilder.add_view(SchemeItemView, "Subsidy items", label=_l("Subsidy items"), icon="fa-list", **menu)
    appbuilder.add_api(SchemeApi)
    appbuilder.add_api(SchemeItemApi)
    appbuilder.add_view(SchemeSpendingView, "Subsidy spending against budget",
                        label=_l("Subsidy spending against budget"), icon="fa-bar-chart", **menu)  # fmt: skip
    appbuilder.add_view(UnclaimedView, "Unclaimed lines by month", label=_l("Unclaimed lines by month"),
                        icon="fa-exclamation-triangle", **menu)  # fmt: skip


__all__ = ["SchemeApi", "SchemeItemApi", "SchemeView", "SchemeItemView", "SchemeSpendingView", "UnclaimedView", "remaining_budgets"]
