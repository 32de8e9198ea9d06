"""REST creation of national persons (quitters, practitioners): one path for every person API."""

from __future__ import annotations

from core.extensions import db
from core.persons import register_person, registering_institutions


def person_post(api, model):
    """POST of a person: found by ID and identity data, linked, or registered (core/persons.py).

    Answers 201 with the id of the row the caller now sees, whichever of the three it was.
    """
    from flask import request
    from marshmallow import ValidationError

    errors = api._relation_errors(api.add_columns)
    if errors:
        return api.response_422(message=errors)
    if not request.is_json:
        return api.response_400(message="Request is not JSON")
    try:
        item = api.add_model_schema.load(request.json)
    except ValidationError as err:
        return api.response_422(message=err.messages)
    if item in db.session:
        db.session.expunge(item)
    identity = {f: getattr(item, f) for f in model.__identity_fields__}
    extra = {
        c: getattr(item, c) for c in api.add_columns
        if c != "national_id" and c not in identity and hasattr(item, c)
    }  # fmt: skip

    def save():
        person = register_person(
            model, item.national_id, identity, registering_institutions(), extra=extra
        )
        api.datamodel.enforce_scope([person])
        db.session.commit()
        return api.response(201, id=person.id, result=api.add_model_schema.dump(person, many=False))

    return api._guarded(save)
