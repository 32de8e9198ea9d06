"""Hardened bases for every model view and REST API of the application.

Scope comes from the datamodel (core/data/datamodel.py). These bases add what the datamodel
cannot see: FAB endpoints that bypass it (actions, file downloads), ROC dates in forms and
lists, masked personal IDs, and the one Excel export path shared by every list.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools

from flask import (
    abort,
    current_app,
    flash,
    g,
    redirect,
    request,
    url_for,
)
from flask_appbuilder import BaseView, ModelRestApi, ModelView, expose
from flask_appbuilder.security.decorators import has_access
from flask_appbuilder.urltools import (
    get_filter_args,
    get_order_args,
    get_page_args,
    get_page_size_args,
)
from flask_appbuilder.widgets import ListWidget, SearchWidget
from flask_babel import gettext
from flask_babel import lazy_gettext as _l
from marshmallow import fields as ma_fields
from sqlalchemy import inspect, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import aliased

from core.data.datamodel import ScopedInterface
from core.data.filters import (
    is_personal_id,
    masked_search_operators,
    personal_id_filters,
    register_personal_id_columns,
    sees_ids_masked,
)
from core.data.labels import column_label, model_label, prettified
from core.data.scope import current_scope
from core.dates import parse_date, to_roc
from core.errors import UserError
from core.export.xlsx import export_file_name, send_xlsx, write_xlsx
from core.extensions import db, without_sqlite_mmap
from core.files import FileStore
from core.security.permissions import (
    CAN_CREATE,
    CAN_DELETE,
    CAN_EDIT,
    CAN_EXPORT,
    CAN_READ,
    can_see_full_ids,
)
from core.validators import mask_personal_id
from core.web.badinput import api_bad_input, coerce_api_filters
from core.web.fields import RocDateField
from core.web.openapi import fix_operation_spec

VIEW_METHOD_PERMISSIONS = {
    "list": CAN_READ,
    "show": CAN_READ,
    "download": CAN_READ,
    "api_read": CAN_READ,
    "api_get": CAN_READ,
    "api_column_add": CAN_CREATE,
    "api_column_edit": CAN_EDIT,
    "api_readvalues": CAN_READ,
    "add": CAN_CREATE,
    "api_create": CAN_CREATE,
    "edit": CAN_EDIT,
    "api_update": CAN_EDIT,
    "delete": CAN_DELETE,
    "api_delete": CAN_DELETE,
    "export_xlsx": CAN_EXPORT,
}
API_METHOD_PERMISSIONS = {
    "get": CAN_READ,
    "get_list": CAN_READ,
    "info": CAN_READ,
    "post": CAN_CREATE,
    "put": CAN_EDIT,
    "delete": CAN_DELETE,
}
#: Headers for the related registry columns that exports add; a view adds its own domain's
#: in `export_labels` (a visit list's quitter ID …).
RELATED_EXPORT_LABELS = {
    "institution.nhi_code": _l("NHI institution code"),
    "institution.name": _l("Institution name"),
    "practitioner.name": _l("Practitioner"),
}
#: FAB's own file and image columns: FAB stores them at the top of UPLOAD_FOLDER, sized by
#: MAX_CONTENT_LENGTH; the base view only serves them, through a row in scope.
FAB_FILES = FileStore("", {}, "MAX_CONTENT_LENGTH")


def _date_columns(datamodel, columns):
    return [c for c in columns if c in datamodel.list_columns and datamodel.is_date(c)]


def _datetime_columns(datamodel, columns):
    return [c for c in columns if c in datamodel.list_columns and datamodel.is_datetime(c)]


class FastListWidget(ListWidget):
    """FAB's list widget, rendering each row's buttons from per-page URLs and labels."""

    template = "scoped/list_widget.html"

    def __init__(self, **kwargs):
        # No sort link on a column the viewer sees masked (ordering by it is ignored).
        filters, order = kwargs.get("filters"), kwargs.get("order_columns")
        if filters is not None and order and sees_ids_masked():
            model = filters.datamodel.obj
            kwargs["order_columns"] = [c for c in order if not is_personal_id(model, c)]
        super().__init__(**kwargs)


class _LazyForm:
    """A form built at its first use (FAB builds the list's search form on every request)."""

    def __init__(self, build):
        self._build, self._form = build, None

    def _get(self):
        if self._form is None:
            self._form = self._build()
        return self._form

    def __getitem__(self, name):
        return self._get()[name]

    def __getattr__(self, name):
        return getattr(self._get(), name)

    def __iter__(self):
        return iter(self._get())

    def __contains__(self, name):
        return name in self._get()


class CachedSearchWidget(SearchWidget):
    """FAB's search widget, reusing the rendered search fields between requests.

    FAB renders every search field on every list page, and a dropdown field first queries
    its related table (an institution list's 22 counties and 4 levels: a fifth of the
    page). The empty fields depend only on the view, the user's scope (which rows the
    dropdowns offer), the language and the contents of the related tables, so those are
    the key; a table's version (core/data/counts.py) changes with every commit that writes it.
    """

    MAX_ENTRIES = 1000

    def __call__(self, **kwargs):
        from flask_babel import get_locale

        from core.data.counts import table_versions
        from core.data.scope import current_scope

        form, columns = self.template_args["form"], self.template_args["include_cols"]
        datamodel = self.filters.datamodel
        related = sorted(
            datamodel.get_related_model(col).__table__.name
            for col in columns
            if datamodel.is_relation(col)
        )
        scope = current_scope()
        key = (
            self.template_args.get("route_base"),
            tuple(columns),
            scope.kind,
            tuple(sorted(scope.county_ids)),
            tuple(sorted(scope.institution_ids)),
            str(get_locale()),
            tuple(zip(related, table_versions(related), strict=True)),
        )
        cache = current_app.extensions.setdefault("search_fields_cache", {})
        cached = cache.get(key)
        if cached is None:
            # The form (a lazy one, ScopedModelView._list) is built only here, on a miss:
            # constructing FAB's WTForms search form on every list page cost 0.5-0.7 ms
            # CPU of a 21-33 ms case or record list (demo scale, SQLite, loaded machine).
            cached = (
                {col: form[col]() for col in columns},
                {col: str(form[col].label.text) for col in columns},
            )
            if len(cache) >= self.MAX_ENTRIES:
                cache.clear()
            cache[key] = cached
        fields, labels = cached
        dict_filters = self.filters.get_search_filters()
        kwargs["label_columns"] = dict(labels)
        kwargs["form_fields"] = fields
        kwargs["search_filters"] = {
            col: [str(flt.name) for flt in dict_filters[col]] for col in columns
        }
        kwargs["active_filters"] = self.filters.get_filters_values_tojson()
        _offer_masked_columns_exactly(kwargs, datamodel, dict_filters, columns)
        # RenderTemplateWidget's own __call__, not SearchWidget's (which renders the fields).
        return super(SearchWidget, self).__call__(**kwargs)


class ScopedModelView(ModelView):
    """Base of every application ModelView: scoped, ROC dates, masked IDs, Excel export."""

    #: Checks its own action names, row keys and downloads (core/web/badinput.py skips it).
    checks_its_arguments = True
    #: Export headers of related columns beyond the registry's (RELATED_EXPORT_LABELS).
    export_labels: dict = {}

    #: Resource name shared with the matching ScopedModelRestApi (set in subclasses).
    class_permission_name: str | None = None
    method_permission_name = VIEW_METHOD_PERMISSIONS
    #: Columns holding a 身分證字號 / 居留證號, masked for users without FULL_ID_PERMISSION.
    personal_id_columns: list[str] = []
    #: Columns of the Excel export (default: the list columns).
    export_columns: list[str] | None = None
    #: Relations the list's computed columns read, loaded with the page (no N+1).
    list_eager: list[str] = []
    #: Columns a list page never reads (a record's JSON body): not loaded (nor decoded) with
    #: the page's rows. Only a column no list cell, formatter or str() reads, or each row
    #: would load it with a statement of its own.
    list_defer: list[str] = []
    page_size = 25
    list_template = "scoped/list.html"
    list_widget = FastListWidget
    search_widget = CachedSearchWidget
    #: Filters for a column searched through a text box (FAB's ModelView has no such hook).
    search_filters: dict | None = None
    #: Query arguments under which a list that hides some rows by default (a queue's closed
    #: tickets) lists every row in scope; the scope matrix lists with them.
    list_all_args: dict[str, str] = {}

    def __init__(self, **kwargs):
        if not isinstance(self.datamodel, ScopedInterface):
            raise TypeError(f"{type(self).__name__}.datamodel must be a ScopedInterface")
        if not self.class_permission_name:
            raise TypeError(f"{type(self).__name__} must name its resource")
        self._install_field_rules()
        self._install_roc_dates()
        self._install_masking()
        super().__init__(**kwargs)
        self.extra_args = {**(self.extra_args or {}), "resource_name": self.class_permission_name}
        self._text_search_replaces_relation_filters()
        self.datamodel._list_columns_hint = list(self.list_columns) + list(self.list_eager)
        self.datamodel._list_defer_hint = list(self.list_defer)
        register_personal_id_columns(self.datamodel.obj, self.personal_id_columns)
        personal_id_filters(self._filters)

    def _text_search_replaces_relation_filters(self):
        """A relation searched through a text box offers only its text filters.

        FAB appends custom filters after the relation's own "equal to <pk>" filters, which
        make no sense for text typed into the box.
        """
        for col, custom in (self.search_filters or {}).items():
            instances = [flt(col, self.datamodel) for flt in custom]
            # Offered in the search form (_search_filters) and applied from ?_flt_ (_all_filters).
            self._filters._search_filters[col] = instances
            self._filters._all_filters[col] = instances

    def fresh_filters(self):
        """Filters for this request only (the view's own _filters is shared by requests)."""
        filters = self.datamodel.get_filters(self.search_columns)
        filters._search_filters = dict(self._filters._search_filters)
        filters._all_filters = dict(self._filters._all_filters)
        return personal_id_filters(filters)

    # ---------------------------------------------------------------- rules
    def _install_field_rules(self):
        """Every form field of a ruled column runs its rule first (core/data/rules.py)."""
        from core.data.rules import field_rules, form_validators, with_validators

        model = self.datamodel.obj
        columns = set(field_rules(model)) | {r.end for r in getattr(model, "__record_rules__", ())}
        validators = dict(self.validators_columns or {})
        for col in columns:
            validators[col] = [*form_validators(model, col), *validators.get(col, [])]
        self.validators_columns = validators
        for attr in ("add_form_extra_fields", "edit_form_extra_fields"):
            extra = dict(getattr(self, attr) or {})
            for col in columns & set(extra):
                extra[col] = with_validators(extra[col], form_validators(model, col))
            setattr(self, attr, extra)

    # ---------------------------------------------------------------- dates
    def _install_roc_dates(self):
        cols = (
            set(self.add_columns or [])
            | set(self.edit_columns or [])
            | set(self.datamodel.get_columns_list())
        )
        add_extra = dict(self.add_form_extra_fields or {})
        edit_extra = dict(self.edit_form_extra_fields or {})
        for col in _date_columns(self.datamodel, cols):
            label = (self.label_columns or {}).get(col, col)
            description = (self.description_columns or {}).get(col, "")
            validators = list((self.validators_columns or {}).get(col, []))
            if not self.datamodel.is_nullable(col):
                from wtforms.validators import InputRequired

                validators.insert(0, InputRequired())
            else:
                from wtforms.validators import Optional

                validators.insert(0, Optional())
            for extra in (add_extra, edit_extra):
                extra.setdefault(
                    col, RocDateField(label, validators=validators, description=description)
                )
        self.add_form_extra_fields = add_extra
        self.edit_form_extra_fields = edit_extra
        search_extra = dict(self.search_form_extra_fields or {})
        for col in _date_columns(self.datamodel, self.search_columns or []):
            label = (self.label_columns or {}).get(col, col)
            search_extra.setdefault(col, RocDateField(label))
        self.search_form_extra_fields = search_extra
        formatters = dict(self.formatters_columns or {})
        for col in _date_columns(self.datamodel, self.datamodel.get_columns_list()):
            formatters.setdefault(col, to_roc)
        for col in _datetime_columns(self.datamodel, self.datamodel.get_columns_list()):
            formatters.setdefault(col, to_roc)
        self.formatters_columns = formatters

    def _install_masking(self):
        formatters = dict(self.formatters_columns or {})
        for col in self.personal_id_columns:
            formatters[col] = lambda v: v if can_see_full_ids() else mask_personal_id(v)
        # FAB prints an empty value as "None".
        for col in {*(self.list_columns or []), *(self.show_columns or [])} - set(formatters):
            formatters[col] = _blank_none
        self.formatters_columns = formatters

    # ------------------------------------------- masked IDs, related lists
    def order_hidden(self, column: str) -> bool:
        """Ordering by a personal ID the viewer sees masked would reveal it: not done."""
        return bool(column) and is_personal_id(self.datamodel.obj, column) and sees_ids_masked()

    def _get_list_widget(self, filters, order_column="", order_direction="", **kwargs):
        # The list's own order (and its related lists'): ?_oc_<View>= by a masked column is
        # ignored, the view's default order is used.
        if self.order_hidden(order_column):
            order_column, order_direction = "", ""
        return super()._get_list_widget(
            filters, order_column=order_column, order_direction=order_direction, **kwargs
        )

    def readable_related_views(self) -> list:
        """The related views whose resource the viewer may read (FAB renders them all, trap 9)."""
        sm = self.appbuilder.sm
        return [
            view for view in self._related_views
            if sm.has_access(f"can_{CAN_READ}", view.class_permission_name)
        ]  # fmt: skip

    def _get_related_views_widgets(self, item, orders=None, pages=None, page_sizes=None,
                                   widgets=None, **args):  # fmt: skip
        widgets = widgets or {}
        widgets["related_views"] = []
        orders, pages, page_sizes = orders or {}, pages or {}, page_sizes or {}
        for view in self.readable_related_views():
            name = view.__class__.__name__
            order_column, order_direction = orders.get(name) or ("", "")
            widgets["related_views"].append(
                self._get_related_view_widget(
                    item, view, order_column, order_direction,
                    page=pages.get(name), page_size=page_sizes.get(name),
                )  # fmt: skip
            )
        return widgets

    def render_template(self, template, **kwargs):
        # FAB's show and edit pass every related view; the widgets hold only the readable ones.
        if kwargs.get("related_views"):
            kwargs["related_views"] = self.readable_related_views()
        return super().render_template(template, **kwargs)

    # ----------------------------------------------------------------- list
    def _list(self, **kwargs):
        # FAB int()s these arguments unchecked: a typo would be a 500, a huge page a DoS.
        for arg, value in request.args.items():
            if arg.startswith(("psize_", "page_")) and not value.isdigit():
                abort(400)
        # FAB's BaseCRUDView._list, but its search form is built only if the search widget
        # renders its fields (CachedSearchWidget: on a cache miss).
        name = self.__class__.__name__
        order_column, order_direction = get_order_args().get(name) or ("", "")
        get_filter_args(self._filters)
        widgets = self._get_list_widget(
            filters=self._filters,
            order_column=order_column,
            order_direction=order_direction,
            page=get_page_args().get(name),
            page_size=get_page_size_args().get(name),
            **kwargs,
        )
        self.update_redirect()
        return self._get_search_widget(form=_LazyForm(self.search_form.refresh), widgets=widgets)

    # ----------------------------------------- FAB endpoints that skip filters
    @expose("/action/<string:name>/<pk>", methods=["GET", "POST"])
    def action(self, name, pk):
        """FAB fetches the row unscoped here (trap 1): fetch it through the datamodel."""
        if name not in self.actions:
            abort(404)
        if not self.is_get_mutation_allowed():
            flash(gettext("Access is Denied"), "danger")
            return redirect(self.get_redirect())
        permission_name = self.get_action_permission_name(name)
        if not self.appbuilder.sm.has_access(permission_name, self.class_permission_name):
            flash(gettext("Access is Denied"), "danger")
            return redirect(".")
        item = self.datamodel.get(self._deserialize_pk_if_composite(pk), self._base_filters)
        if item is None:
            abort(404)
        try:
            return self.actions[name].func(item)
        except UserError as exc:  # a refused action: its message, back on the row's page
            flash_refusal(exc)
            return redirect(url_for(".show", pk=pk))

    @expose("/action_post", methods=["POST"])
    def action_post(self):
        """Multiple-row actions: every selected row must be in scope, or nothing happens."""
        name = request.form.get("action", "")
        if name not in self.actions:
            abort(404)
        permission_name = self.get_action_permission_name(name)
        if not self.appbuilder.sm.has_access(permission_name, self.class_permission_name):
            flash(gettext("Access is Denied"), "danger")
            return redirect(".")
        items = []
        for pk in request.form.getlist("rowid"):
            item = self.datamodel.get(self._deserialize_pk_if_composite(pk), self._base_filters)
            if item is None:
                abort(404)
            items.append(item)
        return self.actions[name].func(items)

    @expose("/download/<string:filename>")
    @has_access
    def download(self, filename):
        """Serve an uploaded file only if a row in the user's scope refers to it."""
        file_columns = (
            self.datamodel.get_file_column_list() + self.datamodel.get_image_column_list()
        )
        if not file_columns:
            abort(404)
        from flask_appbuilder.filemanager import uuid_originalname
        from sqlalchemy import or_

        query = self.datamodel.scoped_query().filter(
            or_(*(getattr(self.datamodel.obj, c) == filename for c in file_columns))
        )
        return FAB_FILES.send(
            query.first(), stored=lambda _: filename, name=lambda _: uuid_originalname(filename)
        )

    # -------------------------------------------------------------- writes
    def pre_add(self, item):
        self._enforce(item)

    def pre_update(self, item):
        self._enforce(item)

    def _enforce(self, item):
        # Flushing here turns a scope violation into a flash message on the form path,
        # before FAB's add()/edit() commit; the datamodel checks again regardless.
        # FAB's _add/_edit flash str() of what pre_add/pre_update raise and re-render the
        # form with what was typed, but do not roll back: that is done here.
        try:
            self.datamodel.enforce_scope([item])
        except UserError:  # out of scope, or a record rule
            db.session.rollback()
            raise
        except Exception as exc:  # integrity errors: keep the session usable
            db.session.rollback()
            raise UserError(_integrity_message(exc)) from exc

    # -------------------------------------------------------------- export
    def export_column_names(self) -> list[str]:
        return list(self.export_columns or self.list_columns)

    @expose("/export/xlsx")
    @has_access
    def export_xlsx(self):
        """The list as .xlsx: same scope, filters and order, never more rows than the list.

        Above EXPORT_ASYNC_THRESHOLD rows the export runs as a background job with a progress
        page; the file is offered to the requesting user only.
        """
        filters = self.fresh_filters()
        get_filter_args(filters)
        total = self.datamodel.count(filters)
        if total > current_app.config["EXPORT_ASYNC_THRESHOLD"]:
            from core.export.background import queue_export

            job = queue_export(self, total, request.query_string.decode(), g.user.id)
            return redirect(url_for("ExportJobView.progress", job_id=job.id))
        path, _count, name = self.write_export()
        return send_xlsx(path, name)

    def write_export(self, progress=None) -> tuple[str, int, str]:
        """Stream the filtered, scoped rows of this request into a temporary .xlsx."""
        filters = self.fresh_filters()
        get_filter_args(filters)
        query = self.datamodel.filtered_query(filters)
        query = self._base_filters.apply_all(query) if self._base_filters else query
        headers, exprs, formatters = [], [], []
        joined: dict[str, object] = {}
        for col in self.export_column_names():
            expr, query = self._export_expr(col, query, joined)
            headers.append(self.export_header(col))
            exprs.append(expr)
            formatters.append(self._export_formatter(col))
        # The list's order: the one asked for, else the view's base order, else the key.
        order = get_order_args().get(self.__class__.__name__)
        order = (None if order and self.order_hidden(order[0]) else order) or self.base_order
        pk = self.datamodel.get_pk()
        if order and order[0] in self.datamodel.list_columns:
            column = getattr(self.datamodel.obj, order[0])
            query = query.order_by(column.desc() if order[1] == "desc" else column.asc(), pk)
        else:
            query = query.order_by(pk)
        stmt = query.with_entities(*exprs).statement
        with without_sqlite_mmap(db.session):
            rows = db.session.execute(stmt.execution_options(yield_per=2000))
            path, count = write_xlsx(
                headers,
                (tuple(r) for r in rows),
                formatters,
                sheet_name=self.export_title(),
                max_rows=current_app.config.get("EXPORT_MAX_ROWS"),
                progress=progress,
                title=self.export_heading(filters),
            )
        return path, count, export_file_name(self.export_title())

    def export_title(self) -> str:
        """The list's zh_TW title (the file's name and its sheet's)."""
        return str(self.list_title or model_label(self.datamodel.obj))

    def export_header(self, col: str) -> str:
        """A column's header: the view's own label, its export label, else the model's
        (core/data/labels.py); never FAB's made-up English ("Institution Nhi Code")."""
        label = self.label_columns.get(col)
        if label is not None and str(label) != prettified(col):
            return str(label)
        labels = {**RELATED_EXPORT_LABELS, **self.export_labels}
        if col in labels:
            return str(labels[col])
        return column_label(self.datamodel.obj, col)

    def export_heading(self, filters) -> str:
        """The title row: the list, then each active filter as a person reads it
        (就醫日期 115/11, 層級：西醫診所), values shown as the list shows them."""
        parts, ranges = [], {}
        for flt, value in filters.get_filters_values():
            column, values = flt.column_name, value if isinstance(value, list) else [value]
            if flt.arg_name in ("gt", "lt") and self.datamodel.is_date(column) and len(values) == 1:
                day = _parsed_date(values[0])
                if day is not None:
                    ranges.setdefault(column, {})[flt.arg_name] = day
                    continue
            texts = "、".join(self._filter_value_text(column, v, flt.arg_name) for v in values)
            if flt.arg_name in _EQUALITY_FILTERS:  # 層級：西醫診所, not 層級 關聯為 4
                parts.append(f"{self.export_header(column)}：{texts}")
            else:
                parts.append(f"{self.export_header(column)} {flt.name} {texts}")
        for column, bounds in ranges.items():
            parts.insert(0, f"{self.export_header(column)} {_date_range_text(bounds)}")
        title = self.export_title()
        return f"{title}（{'；'.join(parts)}）" if parts else title

    def _filter_value_text(self, column: str, value, arg_name: str = "") -> str:
        """A filter's value for people: a related row by name, a date in ROC, an ID masked."""
        text = "" if value is None else str(value)[:100]
        if is_personal_id(self.datamodel.obj, column) and sees_ids_masked():
            return mask_personal_id(text)
        if self.datamodel.is_relation(column) and arg_name in _RELATION_FILTERS:
            target = self.datamodel.get_related_model(column)
            if not text.isascii() or not text.isdigit() or len(text) > 18:
                return text
            # Named only if the viewer may read it (the filter names an id anyone can type).
            stmt = select(target).where(target.id == int(text))
            if hasattr(target, "scope_clause"):
                stmt = stmt.where(target.scope_clause(current_scope()))
            row = db.session.scalar(stmt)
            return str(getattr(row, "name", None) or row) if row is not None else text
        if self.datamodel.is_date(column) or self.datamodel.is_datetime(column):
            day = _parsed_date(text)
            return to_roc(day) if day is not None else text
        formatter = self.formatters_columns.get(column)
        if formatter is not None and formatter is not _blank_none:
            try:  # as the list shows it (an audit entry's model by its zh_TW name)
                return str(formatter(text))
            except Exception:  # a formatter written for the row's object, not typed text
                return text
        return text

    def _export_expr(self, col, query, joined):
        model = self.datamodel.obj
        root, _, leaf = col.partition(".")
        if self.datamodel.is_relation(root):
            rel = inspect(model).relationships[root]
            target = rel.mapper.class_
            if root not in joined:
                alias = aliased(target)
                query = query.outerjoin(alias, getattr(model, root))
                joined[root] = alias
            alias = joined[root]
            leaf = leaf or getattr(target, "__export_column__", "name")
            return getattr(alias, leaf).label(col), query
        return getattr(model, col).label(col), query

    def _export_formatter(self, col):
        if col in self.personal_id_columns:
            full = can_see_full_ids()
            return (lambda v: v) if full else mask_personal_id
        formatter = self.formatters_columns.get(col)
        if (
            formatter is not None
            and formatter is not _blank_none
            and col in self.datamodel.list_columns
        ):
            return formatter
        return None


def _parsed_date(text):
    try:
        return parse_date(str(text)[:40])
    except UserError:
        return None


def _date_range_text(bounds: dict) -> str:
    """FAB's strict 大於/小於 pair as the days it keeps: 115/11 for a whole month,
    115/11/03 至 115/11/20 otherwise, or an open end (115/11/03 起, 至 115/11/20)."""
    first = bounds["gt"] + dt.timedelta(days=1) if "gt" in bounds else None
    last = bounds["lt"] - dt.timedelta(days=1) if "lt" in bounds else None
    if first and last and first.day == 1 and (last + dt.timedelta(days=1)).day == 1 \
            and (first.year, first.month) == (last.year, last.month):  # fmt: skip
        return f"{first.year - 1911}/{first.month:02d}"
    if first and last:
        return gettext("%(first)s to %(last)s", first=to_roc(first), last=to_roc(last))
    if first:
        return gettext("from %(first)s", first=to_roc(first))
    return gettext("up to %(last)s", last=to_roc(last))


#: FAB filters that compare a related row by its key, and those that read as "field: value".
_RELATION_FILTERS = {"rel_o_m", "nrel_o_m", "rel_m_m"}
_EQUALITY_FILTERS = {"eq", "rel_o_m", "rel_m_m", "eqf"}


def _offer_masked_columns_exactly(kwargs, datamodel, dict_filters, columns) -> None:
    """The search form of a viewer who sees a column masked offers it "equal to" only."""
    for col in columns:
        offered = masked_search_operators(datamodel, col, dict_filters.get(col))
        if offered is None:
            continue
        kwargs["search_filters"][col] = [str(flt.name) for flt in offered]
        # An active filter shows as the one operator offered (it was applied as exact).
        kwargs["active_filters"] = [
            (c, str(offered[0].name) if c == col and offered else name, value)
            for c, name, value in kwargs["active_filters"]
        ]


def _blank_none(value):
    return "" if value is None else value


def _integrity_message(exc) -> str:
    text = str(getattr(exc, "orig", exc)).lower()
    if "unique" in text or "duplicate" in text:
        return gettext("A record with the same value already exists.")
    if "foreign key" in text or "violates foreign" in text:
        return gettext(
            "The record could not be saved: it refers to a record that does not exist, "
            "or other records still refer to it."
        )
    if "not null" in text or "null value" in text:
        return gettext("The record could not be saved: a required value is missing.")
    return gettext("The record could not be saved because it conflicts with data already stored.")


def flash_refusal(exc: UserError) -> None:
    """The screens' one answer to a refusal: nothing of it is kept, its message is flashed."""
    db.session.rollback()
    flash(str(exc), "danger")


@contextlib.contextmanager
def refusals_flashed():
    """A UserError raised inside becomes a flash message and the page goes on: a form page
    re-renders with what the user typed, a step redirects where it would have anyway."""
    try:
        yield
    except UserError as exc:
        flash_refusal(exc)


class ScopedReportView(BaseView):
    """Base of report screens: every query they run is filtered by a model's scope_clause()
    for `current_scope()`. The scope matrix treats them as scoped; each report's own tests
    prove its rows stay in scope."""

    class_permission_name: str | None = None


#: Largest primary key the schema can hold (PostgreSQL integer).
MAX_PK = 2**31 - 1


def valid_pk(pk) -> bool:
    """A primary key as a URL or a body gives it: a positive integer the database can hold."""
    if isinstance(pk, bool) or not isinstance(pk, int | str):
        return False
    text = str(pk)
    return text.isdigit() and text.isascii() and 0 < int(text) <= MAX_PK


class UtcDateTime(ma_fields.DateTime):
    """Naive datetimes are UTC throughout the app: the API says so with the offset, as an
    OpenAPI date-time (RFC 3339) must ("2025-04-01T02:00:00+00:00")."""

    def _serialize(self, value, attr, obj, **kwargs):
        if isinstance(value, dt.datetime) and value.tzinfo is None:
            value = value.replace(tzinfo=dt.UTC)
        return super()._serialize(value, attr, obj, **kwargs)


def _utc_datetimes(schema) -> None:
    for field in schema.fields.values():
        if isinstance(field, ma_fields.Nested):
            _utc_datetimes(field.schema)
        elif type(field) is ma_fields.DateTime:
            field.__class__ = UtcDateTime


def _get_any_pk(self, pk, **kwargs):
    return ModelRestApi.get(self, pk, **kwargs)


# FAB routes GET /<int:pk> but PUT and DELETE /<pk>: GET /api/v1/county/abc matched only the
# write rules and answered 405, a status the spec does not give (schemathesis). GET takes any
# key like the others, and get_headless answers 404 for one that is not a valid id.
functools.update_wrapper(_get_any_pk, ModelRestApi.get)
_get_any_pk._urls = [("/<pk>", ["GET"])]


class ScopedModelRestApi(ModelRestApi):
    """Base of every application REST API: scoped datamodel, shared permissions, masked IDs."""

    get = _get_any_pk

    class_permission_name: str | None = None
    method_permission_name = API_METHOD_PERMISSIONS
    personal_id_columns: list[str] = []
    allow_browser_login = True
    page_size = 25

    def __init__(self):
        if not isinstance(self.datamodel, ScopedInterface):
            raise TypeError(f"{type(self).__name__}.datamodel must be a ScopedInterface")
        if not self.class_permission_name:
            raise TypeError(f"{type(self).__name__} must name its resource")
        super().__init__()
        # Here, not where the OpenAPI document is built: there they took effect only once
        # someone had asked for /api/v1/_openapi, and until then a masked ID was found by
        # its prefix through the API (`national_id sw A` answered 258 quitters).
        register_personal_id_columns(self.datamodel.obj, self.personal_id_columns)
        personal_id_filters(self._filters)

    def add_apispec_components(self, api_spec) -> None:
        """A related row whose foreign key may be empty is documented as nullable (an
        institution of the addiction programme may have no level): FAB documents every
        nested relation as an object, and schemathesis holds the API to the document."""
        super().add_apispec_components(api_spec)
        relations = inspect(self.datamodel.obj).relationships
        prefix = f"{type(self).__name__}."
        for name, schema in api_spec.components.schemas.items():
            if not name.startswith(prefix) or not isinstance(schema, dict):
                continue
            for prop, spec in list((schema.get("properties") or {}).items()):
                relation = relations.get(prop)
                if (isinstance(spec, dict) and "$ref" in spec and relation is not None
                        and any(column.nullable for column in relation.local_columns)):
                    schema["properties"][prop] = {"allOf": [{"$ref": spec["$ref"]}], "nullable": True}

    def _init_model_schemas(self) -> None:
        super()._init_model_schemas()
        for schema in (self.list_model_schema, self.show_model_schema):
            _utc_datetimes(schema)
        from core.data.rules import install_marshmallow_rules

        for schema in (self.add_model_schema, self.edit_model_schema):
            install_marshmallow_rules(schema, self.datamodel.obj)

    def operation_helper(self, path=None, operations=None, methods=None, func=None, **kwargs):
        """The OpenAPI operations as the API really answers (schemathesis holds us to it)."""
        super().operation_helper(
            path=path, operations=operations, methods=methods, func=func, **kwargs
        )
        for spec in operations.values():
            fix_operation_spec(spec, path or "")

    # ---------------------------------------------------------- masked IDs
    def _handle_order_args(self, rison_args):
        order_column, order_direction = super()._handle_order_args(rison_args)
        if order_column and is_personal_id(self.datamodel.obj, order_column) and sees_ids_masked():
            from flask_appbuilder.exceptions import InvalidOrderByColumnFABException

            raise InvalidOrderByColumnFABException(
                gettext("The list cannot be ordered by %(column)s: you see it masked.", column=order_column)
            )
        return order_column, order_direction

    def set_response_key_mappings(self, response, func, rison_args, **kwargs) -> None:
        # FAB's merge functions are bound at class definition: amend what they answered.
        super().set_response_key_mappings(response, func, rison_args, **kwargs)
        if "filters" in response:
            self._offer_masked_columns_exactly(response)

    def _offer_masked_columns_exactly(self, response) -> None:
        """`_info` offers a column the viewer sees masked as "equal to" only."""
        dict_filters = self._filters.get_search_filters()
        for col in list(response.get("filters", {})):
            offered = masked_search_operators(self.datamodel, col, dict_filters.get(col))
            if offered is not None:
                response["filters"][col] = [
                    {"name": str(flt.name), "operator": flt.arg_name} for flt in offered
                ]

    # ------------------------------------------------------------ answers
    # FAB passes <pk> to the database unchecked: "null" or 10**30 was a 500 (a DataError on
    # PostgreSQL, an OverflowError on SQLite). No such row is a 404.
    def get_headless(self, pk, **kwargs):
        if not valid_pk(pk):
            return self.response_404()
        return super().get_headless(int(pk), **kwargs)

    def post_headless(self):
        self._normalise_body(self.add_columns)
        errors = self._relation_errors(self.add_columns)
        if errors:
            return self.response_422(message=errors)
        return self._guarded(super().post_headless)

    def put_headless(self, pk):
        if not valid_pk(pk):
            return self.response_404()
        self._normalise_body(self.edit_columns)
        errors = self._relation_errors(self.edit_columns)
        if errors:
            return self.response_422(message=errors)
        return self._guarded(super().put_headless, pk)

    def _normalise_body(self, columns) -> None:
        """The body's ruled text values as they will be stored (an ID in upper case …),
        before FAB loads it: a lookup by national ID then finds the existing person."""
        from core.data.rules import normalise_json

        normalise_json(self.datamodel.obj, request.get_json(silent=True), columns)

    def _handle_filters_args(self, rison_args):
        """q= filter values fitted to their columns first (core/web/badinput.py): no 500."""
        coerce_api_filters(self.datamodel, rison_args.get("filters"))
        return super()._handle_filters_args(rison_args)

    def response_500(self, message=None):
        """FAB's @safe answers any exception 500; bad input's database errors are a 400."""
        return api_bad_input(self) or super().response_500(message)

    def _relation_errors(self, columns) -> dict:
        """A related row is given by its id. marshmallow-sqlalchemy would build a new row
        from an object (`{"x": 1}` was a TypeError, a 500) and look a huge id up unchecked."""
        data = request.get_json(silent=True)
        if not isinstance(data, dict):
            return {}
        errors = {}
        for column in columns or []:
            if column in data and self.datamodel.is_relation(column):
                value = data[column]
                if value is not None and (isinstance(value, bool) or not valid_pk(value)):
                    errors[column] = [gettext("Give the id (a number) of an existing record.")]
                elif value is not None and not self._referable(column, int(value)):
                    # A row the writer cannot read is answered exactly like one that does
                    # not exist: a write never grants sight, nor tells what exists (FAB trap 10).
                    related = self.datamodel.get_related_model(column)
                    errors[column] = [gettext(
                        "The selected %(what)s does not exist or is outside your data scope.",
                        what=str(getattr(related, "__label__", related.__name__)),
                    )]  # fmt: skip
        return errors

    def _referable(self, column: str, pk: int) -> bool:
        """Whether the writer may point `column` at row `pk`: it can read the row now."""
        return self.datamodel.get_related_interface(column).get(pk) is not None

    def delete_headless(self, pk):
        if not valid_pk(pk):
            return self.response_404()
        return self._guarded(super().delete_headless, pk)

    def _guarded(self, call, *args):
        """A refusal (a write out of scope 403, a record or visit rule 422 …) is answered
        `{"message": ...}` with its status; one the database refuses (a duplicate national
        ID) a 422 with the zh_TW message, never a 500; either way nothing is kept."""
        try:
            return call(*args)
        except UserError as exc:
            db.session.rollback()
            return self.response(exc.status, message=exc.answer())
        except IntegrityError as exc:
            db.session.rollback()
            return self.response_422(message=_integrity_message(exc))

    def _get_field_info(self, field, filter_rel_field, page=None, page_size=None):
        info = super()._get_field_info(field, filter_rel_field, page=page, page_size=page_size)
        # gettext("") is the catalog's header ("Project-Id-Version: …"), not an empty text.
        for key, source in (
            ("label", self.label_columns),
            ("description", self.description_columns),
        ):
            if not source.get(field.name):
                info[key] = ""
        return info

    def _mask(self, record: dict) -> None:
        for col in self.personal_id_columns:
            if col in record and record[col]:
                record[col] = mask_personal_id(record[col])

    def pre_get(self, data):
        if self.personal_id_columns and not can_see_full_ids():
            self._mask(data.get("result", {}))

    def pre_get_list(self, data):
        if self.personal_id_columns and not can_see_full_ids():
            for record in data.get("result", []):
                self._mask(record)


__all__ = [
    "ScopedModelView",
    "ScopedModelRestApi",
    "CAN_READ",
    "CAN_CREATE",
    "CAN_EDIT",
    "CAN_DELETE",
    "CAN_EXPORT",
    "_l",
]
