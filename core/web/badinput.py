"""No 500 on bad input (issue 12 class 8).

- FAB int()s request arguments it never checks: every `page_*` / `psize_*` argument of any
  view name (re.findall("page_(.*)") matches anywhere in the name) and the index of
  `_flt_<n>_<column>` (its `\\d` matches Arabic-Indic digits; an index beyond the column's
  filters is an IndexError); and it orders by any `_oc_<view>` text (a CompileError). They
  are checked before any view runs, for every HTML route, FAB's security views included.
- A database error that bad input provokes (a DataError: a value out of the column's range
  on PostgreSQL; an OverflowError: an integer SQLite cannot bind; a StatementError raised
  while binding a value) answers 400 after a rollback, never a 500, and is logged with its
  traceback so a genuine bug stays visible.
- 4xx answers of HTML pages say what went wrong in Traditional Chinese instead of
  werkzeug's English "Bad Request" page; under /api/ they are JSON.
"""

from __future__ import annotations

import logging
import re

from flask import Flask, current_app, jsonify, render_template, request
from flask_babel import gettext
from markupsafe import Markup, escape
from werkzeug.exceptions import BadRequest, HTTPException, NotFound

from core.validators import ascii_int

log = logging.getLogger(__name__)

#: Largest value of an integer column (PostgreSQL integer): keys, page numbers and sizes.
_PAGING = re.compile(r"(page|psize)_")
_FILTER = re.compile(r"_flt_(\d)_(.*)")  # FAB's own pattern (urltools.get_filter_args)
_ORDER = re.compile(r"_oc_(.*)")  # FAB's own pattern (urltools.get_order_args)


class BadInput(BadRequest):
    """A 400 whose description is a user-facing (translated) message."""


def _view_of_endpoint():
    function = current_app.view_functions.get(request.endpoint or "")
    return getattr(function, "__self__", None)


def _view_named(name: str):
    views = current_app.extensions.get("views_by_name")
    if views is None:
        views = {type(v).__name__: v for v in current_app.appbuilder.baseviews}
        current_app.extensions["views_by_name"] = views
    return views.get(name)


def check_fab_views() -> None:
    """FAB's own views (users, roles, groups, permissions) call `actions.get(name).func(row)`
    unchecked: an unknown action name, or a key that names no row, was an AttributeError;
    their /download/<name> (they hold no files) and the user statistics chart's
    /chart/<group_by> (an index into its definitions) an IndexError. Ours (core/web/views.py
    ScopedModelView) check all of this themselves."""
    from werkzeug.exceptions import NotFound


    endpoint = request.endpoint or ""
    if not endpoint.endswith((".action", ".action_post", ".download", ".chart")):
        return
    view = _view_of_endpoint()
    if view is None or getattr(view, "checks_its_arguments", False) or not hasattr(view, "datamodel"):
        return
    if endpoint.endswith(".download"):
        raise NotFound()
    if endpoint.endswith(".chart"):
        group_by = (request.view_args or {}).get("group_by")
        definitions = getattr(view, "definitions", None)
        if group_by is not None and definitions is not None:
            if ascii_int(group_by, high=len(definitions) - 1) is None:
                raise NotFound()
        return
    if endpoint.endswith(".action"):
        name, keys = (request.view_args or {}).get("name"), [(request.view_args or {}).get("pk")]
    else:
        name, keys = request.form.get("action"), request.form.getlist("rowid")
    if name not in (view.actions or {}):
        raise NotFound()
    for key in keys:
        if ascii_int(key, low=1) is None or view.datamodel.get(int(key)) is None:
            raise NotFound()


def check_no_nul() -> None:
    """A NUL character is no part of any text: PostgreSQL cannot store or compare it (psycopg
    raises ValueError, a 500), SQLite would store it. Refused in the address and the form."""
    values = [v for _, v in request.args.items(multi=True)]
    if request.method == "POST" and not request.is_json:
        values += [v for _, v in request.form.items(multi=True)]
    if any("\x00" in v for v in values):
        raise BadInput(gettext("A value in the request is not valid."))


def check_api_query() -> None:
    """An API's ?q= must be rison that prison can read: FAB catches prison's ParserException
    only, and a number like `6.4e+16` raises ValueError inside prison (a 500)."""
    if not request.path.startswith("/api/") or "q" not in request.args:
        return
    import prison

    try:
        prison.loads(request.args["q"])
    except Exception:  # noqa: BLE001 (any failure to read it is the caller's bad value)
        raise BadInput(gettext("A value in the request is not valid.")) from None


def check_list_arguments() -> None:
    """Refuse (400) the list arguments FAB would int() or index unchecked."""
    if request.path.startswith("/api/") or not request.args:
        return
    message = gettext("The address contains a page number or a search filter that is not valid.")
    view = None
    for arg, values in request.args.lists():
        order = _ORDER.search(arg)
        if order is not None:
            # FAB orders by any text given (a CompileError) unless it is one of the view's columns.
            named = _view_named(order.group(1))
            allowed = getattr(named, "order_columns", None)
            if allowed is not None and any(value not in allowed for value in values):
                raise BadInput(message)
        if _PAGING.search(arg):
            if any(ascii_int(value) is None for value in values):
                raise BadInput(message)
        match = _FILTER.search(arg)
        if match is None:
            continue
        index = ascii_int(match.group(1))
        if index is None:
            raise BadInput(message)
        view = view or _view_of_endpoint()
        filters = getattr(getattr(view, "_filters", None), "_all_filters", None) or {}
        if match.group(2) in filters and index >= len(filters[match.group(2)]):
            raise BadInput(message)


def _is_bad_input(exc: BaseException) -> bool:
    """A database error caused by a value, not by the database being unwell."""
    from sqlalchemy.exc import DataError, DBAPIError, StatementError

    if isinstance(exc, OverflowError | DataError):
        return True
    # psycopg refuses a NUL character in a text before it reaches PostgreSQL.
    if isinstance(exc, ValueError) and "NUL (0x00)" in str(exc):
        return True
    # A StatementError that is not a DBAPIError was raised while binding a parameter.
    if isinstance(exc, StatementError) and not isinstance(exc, DBAPIError):
        return isinstance(exc.orig, OverflowError | ValueError | TypeError)
    return False


def _refusal(exc: BaseException) -> str:
    """Roll back, log with the traceback (a bug, not a bad value, stays visible), and say why."""
    from sqlalchemy.exc import StatementError

    from core.extensions import db

    db.session.rollback()
    log.warning("bad input refused with 400: %s %s", request.method, request.full_path, exc_info=exc)
    if isinstance(exc, StatementError) and exc.orig is not None and not isinstance(exc.orig, OverflowError):
        return gettext("A value in the request is not valid.")
    return gettext("A value in the request is out of the range the system can store.")


def _bad_input(exc: BaseException):
    if not _is_bad_input(exc):
        raise exc
    return _answer(400, _refusal(exc))


def api_bad_input(api):
    """For a REST API's response_500: FAB's @safe turns every exception into a 500 (naming
    it); one that bad input provoked answers 400 with a message instead. None otherwise."""
    import sys

    exc = sys.exc_info()[1]
    if exc is None or not _is_bad_input(exc):
        return None
    return api.response_400(message=_refusal(exc))


def http_error(exc: HTTPException):
    """4xx: a zh_TW page (HTML) or JSON (API); other codes as werkzeug renders them."""
    code = exc.code or 500
    if not 400 <= code < 500:
        return exc
    if code == 403:
        from core.security.programmes import hides_request

        if hides_request():  # the other programme's page: as if it did not exist (A1)
            return _answer(404, _message(NotFound()))
    return _answer(code, _message(exc), exc)


def server_error(exc: BaseException):
    """500: the site's page in the user's language (the traceback goes to the log, not to
    the user), after a rollback so that the page itself can still read the database."""
    from core.extensions import db

    try:
        db.session.rollback()
    except Exception:  # a broken connection: the page renders without the database
        log.exception("rollback after a server error failed")
    original = getattr(exc, "original_exception", None) or exc
    if original is not exc or not isinstance(exc, HTTPException):
        log.error("server error: %s %s", request.method, request.full_path, exc_info=original)
    return _answer(500, gettext("Something went wrong in the system; what you sent may not have been saved. Please try again later, or contact the helpdesk if it happens again."))


def _message(exc: HTTPException) -> str:
    from flask_wtf.csrf import CSRFError

    if isinstance(exc, BadInput):
        return str(exc.description)
    if isinstance(exc, CSRFError):
        return gettext("The form has expired or was not sent from this site. Reload the page and try again.")
    messages = {
        400: gettext("The request could not be processed: a value in the address or the form is not valid."),
        403: gettext("You do not have permission to open this page."),
        404: gettext("The page or record was not found, or it is outside your data scope."),
        405: gettext("This page does not accept this kind of request."),
    }
    return messages.get(exc.code, gettext("The request could not be processed."))


def _answer(code: int, message: str, exc: HTTPException | None = None):
    if request.path.startswith("/api/"):
        response = jsonify(message=message)
        response.status_code = code
        return response
    try:
        appbuilder = current_app.appbuilder
        body = render_template(
            "errors/http.html",
            base_template=appbuilder.base_template,
            appbuilder=appbuilder,
            code=code,
            message=message,
            title=message,
        )
    except Exception:  # the page of an error must not itself fail (e.g. a broken session)
        log.exception("error page for %s could not be rendered", code)
        body = f'<!doctype html><meta charset="utf-8"><p id="error-message">{escape(message)}</p>'
    response = current_app.make_response((body, code))
    if exc is not None and getattr(exc, "valid_methods", None):
        response.headers["Allow"] = ", ".join(exc.valid_methods)
    return response


_LIST_OPERATIONS = ("in", "not_in", "inf")


def coerce_api_filters(datamodel, filters) -> None:
    """Make the values of an API's q=(filters:…) fit their column, in place.

    FAB passes a filter's JSON value on as it is: a number given to a text filter was a
    TypeError (value + "%"), and on PostgreSQL a number compared with a text column, or a
    boolean with a number column, is an "operator does not exist" error; a 500 either way.
    A scalar becomes the column's kind (a text unless the column holds numbers or booleans,
    or the filter takes a related row's id); a list is taken only by the list operations;
    anything else is refused with a 400."""
    from flask_appbuilder.exceptions import FABException

    if not isinstance(filters, list):
        return
    for item in filters:
        if not isinstance(item, dict) or "value" not in item or not isinstance(item.get("col"), str):
            continue
        col, opr, value = item["col"], str(item.get("opr")), item["value"]
        try:
            if opr in _LIST_OPERATIONS:
                values = value if isinstance(value, list) else [value]
                item["value"] = [_filter_scalar(datamodel, col, opr, v) for v in values]
            else:
                item["value"] = _filter_scalar(datamodel, col, opr, value)
        except ValueError:
            raise FABException(gettext("A search filter value does not fit its column.")) from None


def _filter_scalar(datamodel, col: str, opr: str, value):
    if value is None and opr in ("eq", "neq"):
        return None
    if value is None or isinstance(value, dict | list):
        raise ValueError(col)
    column = col in datamodel.list_columns
    if isinstance(value, bool):
        return value if column and datamodel.is_boolean(col) else str(value)
    if isinstance(value, int | float):
        numeric = column and (datamodel.is_integer(col) or datamodel.is_float(col) or datamodel.is_numeric(col))
        related = datamodel.is_relation(col) and opr.startswith(("rel_", "nrel_"))
        return value if numeric or related else str(value)
    return str(value)


def _literal_gettext(original):
    """Jinja's new-style gettext %-formats every string, even one given no variables, and
    FAB renders a form's field errors as {{ _(error) }}: a message that echoes a typed '%'
    ("“100%” is not a valid date") raised ValueError or KeyError (a 500), and a typed '%s'
    came out as '{}'. Without variables the translation is shown as it is (no template,
    ours or FAB's, writes '%%' in such a text); with variables it is formatted as before.

    Jinja also marks every gettext result safe HTML, so a typed "<b>" echoed in a field
    error reached the page as markup. A text the catalog does not know (the program's or
    the user's, already translated, not a template's literal) is escaped instead."""
    from jinja2 import pass_context

    @pass_context
    def gettext(__context, __string, **variables):
        if variables:
            return original(__context, __string, **variables)
        rv = __context.call(__context.environment.globals["_untranslated_gettext"], __string)
        if not __context.eval_ctx.autoescape:
            return rv
        return escape(rv) if rv is __string else Markup(rv)

    return gettext


def install(app: Flask) -> None:
    """Register the argument check, the safety net and the zh_TW error pages (once)."""
    from flask_babel import get_translations
    from sqlalchemy.exc import DataError, StatementError

    globals_ = app.jinja_env.globals
    if "_untranslated_gettext" not in globals_:
        globals_["_untranslated_gettext"] = lambda s: get_translations().ugettext(s)
        globals_["gettext"] = _literal_gettext(globals_["gettext"])
    app.before_request(check_no_nul)
    app.before_request(check_list_arguments)
    app.before_request(check_api_query)
    app.before_request(check_fab_views)
    for kind in (DataError, OverflowError, StatementError):
        app.register_error_handler(kind, _bad_input)
    app.register_error_handler(HTTPException, http_error)
    app.register_error_handler(500, server_error)
