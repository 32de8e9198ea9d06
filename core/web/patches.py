"""Narrow, measured fixes to Flask-AppBuilder internals, applied once at start-up."""

from __future__ import annotations

import jsonschema
from jsonschema.exceptions import best_match


class CachedJsonSchema:
    """`jsonschema` for FAB's API module, compiling each rison schema once.

    FAB calls `jsonschema.validate(instance, schema)` on every API request, which re-checks
    the whole schema against the meta-schema each time: about half of a list request
    (10 ms of 20 ms, measured with cProfile on /api/v1/service_assignment/).
    """

    ValidationError = jsonschema.ValidationError

    def __init__(self) -> None:
        self._validators: dict[int, jsonschema.protocols.Validator] = {}

    def validate(self, instance, schema) -> None:
        validator = self._validators.get(id(schema))
        if validator is None or validator.schema is not schema:
            cls = jsonschema.validators.validator_for(schema)
            cls.check_schema(schema)
            validator = cls(schema)
            self._validators[id(schema)] = validator
        error = best_match(validator.iter_errors(instance))
        if error is not None:
            raise error

    def __getattr__(self, name):
        return getattr(jsonschema, name)


def _babel_context():
    """flask_babel's per-request namespace, found through one context-variable read.

    flask_babel looks it up through three `g` proxy accesses on each of its calls, and a
    list page translates a few hundred strings (labels, buttons, each row's services).
    """
    from types import SimpleNamespace

    from flask.globals import _cv_app

    ctx = _cv_app.get(None)
    if ctx is None:
        return None
    namespace = ctx.g.__dict__.get("_flask_babel")
    if namespace is None:
        namespace = ctx.g._flask_babel = SimpleNamespace()
    return namespace


def _memoised_translations(original):
    """Domain.get_translations remembered for the request's locale object.

    The original formats the locale to a string for its cache key on every call;
    flask_babel.refresh() makes a new locale object, which misses this memo.
    """
    import flask_babel

    def get_translations(self):
        ctx = flask_babel._get_current_context()
        if ctx is None:
            return original(self)
        locale = flask_babel.get_locale()
        memo = ctx.__dict__.get("_translations_memo")
        if memo is not None and memo[0] is locale and memo[1] is self:
            return memo[2]
        translations = original(self)
        ctx._translations_memo = (locale, self, translations)
        return translations

    get_translations.patched = True
    return get_translations


_SHARED_FILTERS: dict = {}


def _converted_once(original):
    """Filters._get_filters remembered per datamodel and column list.

    FAB builds a Filters object, converting every column of the model into its filter
    classes, for each get(), copy() and joined filter: 180 conversions for one institution
    page with its contracts and assignments. Filter instances hold only their column and
    datamodel, so one conversion per datamodel serves every request; the lists are copied
    because FAB appends to them.
    """

    def _get_filters(self, cols):
        datamodel = self.datamodel
        if getattr(datamodel, "_session", None) is None and hasattr(datamodel, "obj"):
            # Every interface of one class over one model on the application's session
            # shares them: commands build a ScopedInterface(Course) per lookup, and each
            # converted all 12 of the model's columns again (6 a save, a third of its
            # Python time; bench/assessments.py).
            cache = _SHARED_FILTERS
            key = (type(datamodel), datamodel.obj, self.filter_converter, tuple(cols))
        else:
            cache = datamodel.__dict__.setdefault("_converted_filters", {})
            key = (self.filter_converter, tuple(cols))
        converted = cache.get(key)
        if converted is None:
            converted = cache[key] = original(self, cols)
        return {col: list(filters) for col, filters in converted.items()}

    _get_filters.patched = True
    return _get_filters


def _programme_403(original):
    """BaseApi.response_403 answering 404 for the other programme's API (A1): every API,
    ours or FAB's BaseApi, refuses through it, and a 403 would tell the API is there."""

    def response_403(self):
        from core.security.programmes import hides_request

        return self.response_404() if hides_request() else original(self)

    response_403.patched = True
    return response_403


def _wtforms_translations():
    """WTForms' own messages ("This field is required.") through the application's catalog:
    it holds them in zh_Hant_TW (babel/extract.sh scans WTForms), whereas Flask-WTF would load
    WTForms' catalog for zh_Hant_TW and fall back to Simplified zh. Every form, FAB's and
    ours, then carries its refusals translated in field.errors."""
    from flask import has_request_context
    from flask_babel import get_translations

    return get_translations() if has_request_context() else None


def apply() -> None:
    """Install the patches (idempotent)."""
    import flask_appbuilder.api as fab_api
    import flask_babel
    import flask_wtf.i18n
    from flask_appbuilder.models.filters import Filters

    if not getattr(fab_api.BaseApi.response_403, "patched", False):
        fab_api.BaseApi.response_403 = _programme_403(fab_api.BaseApi.response_403)
    if not getattr(Filters._get_filters, "patched", False):
        Filters._get_filters = _converted_once(Filters._get_filters)
    flask_babel._get_current_context = _babel_context
    if not getattr(flask_babel.Domain.get_translations, "patched", False):
        flask_babel.Domain.get_translations = _memoised_translations(
            flask_babel.Domain.get_translations
        )

    flask_wtf.i18n._get_translations = _wtforms_translations
    if not isinstance(fab_api.jsonschema, CachedJsonSchema):
        fab_api.jsonschema = CachedJsonSchema()
