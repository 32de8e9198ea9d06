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


def apply() -> None:
    """Install the patches (idempotent)."""
    import flask_appbuilder.api as fab_api

    if not isinstance(fab_api.jsonschema, CachedJsonSchema):
        fab_api.jsonschema = CachedJsonSchema()
