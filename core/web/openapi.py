"""The OpenAPI document says what the APIs really answer (schemathesis holds them to it)."""

from __future__ import annotations


def _error_response(description: str) -> dict:
    """400/422 bodies: `message` is a text, or per-field lists of texts (marshmallow)."""
    message = {"oneOf": [{"type": "string"}, {"type": "object", "additionalProperties": True}]}
    return {
        "description": description,
        "content": {
            "application/json": {"schema": {"type": "object", "properties": {"message": message}}}
        },
    }


def fix_operation_spec(spec: dict, path: str) -> None:
    """Make FAB's generated operation say what the API really answers.

    - every protected operation may answer 401 (no or a forged token) and 403 (no
      permission, or a write out of scope) and 404 (the other programme's API), and every
      operation on one row 404 (no such row in the user's scope);
    - 400/422 carry per-field messages as an object, not only a string;
    - ids are integers (FAB documents strings); `_info` add/edit columns are lists.
    """
    responses = spec.setdefault("responses", {})
    for code in [c for c in responses if not isinstance(c, str)]:
        responses[str(code)] = responses.pop(code)
    if spec.get("security"):
        responses.setdefault("401", {"$ref": "#/components/responses/401"})
        responses.setdefault("403", {"$ref": "#/components/responses/403"})
        # The other programme's API answers 404, as if it did not exist (A1,
        # core/security/programmes.py): any protected operation may.
        responses.setdefault("404", {"$ref": "#/components/responses/404"})
    if "{pk}" in path:
        responses.setdefault("404", {"$ref": "#/components/responses/404"})
    for code, description in (("400", "Bad request"), ("422", "Could not process entity")):
        if code in responses:
            responses[code] = _error_response(description)
    for code in ("200", "201"):
        schema = (
            responses.get(code, {}).get("content", {}).get("application/json", {}).get("schema", {})
        )
        props = schema.get("properties") or {}
        if "ids" in props:
            props["ids"] = {"type": "array", "items": {"type": "integer"}}
        if "id" in props:
            props["id"] = {"type": "integer", "description": "The item id"}
        for key in ("add_columns", "edit_columns"):
            if key in props:
                props[key] = {"type": "array", "items": {"type": "object"}}
