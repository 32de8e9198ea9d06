"""National persons (quitters, practitioners): their REST creation and the office's
reconciliation of identity conflicts, one path for every person model."""

from __future__ import annotations

from flask import flash, redirect, url_for
from flask_appbuilder.actions import action
from flask_appbuilder.models.sqla.filters import FilterEqual
from flask_babel import gettext
from flask_babel import lazy_gettext as _l

from core.extensions import db
from core.web.views import VIEW_METHOD_PERMISSIONS, ScopedModelView
from domain.registry.persons import (
    merge_into_verified,
    register_person,
    registering_institutions,
)
from models.registry.person import IdentityStatus


class PersonIdentityView(ScopedModelView):
    """Base of 身分資料待核對: registrations of an ID whose identity data differ from its
    national record, for the office to correct (on the person's own page) or merge. Office
    and admin only: to anyone else, that an ID has another record is what must not show."""

    method_permission_name = {**VIEW_METHOD_PERMISSIONS, "merge": "merge"}
    base_permissions = ["can_read", "can_merge"]
    base_filters = [["identity_status", FilterEqual, IdentityStatus.CONFLICT.value]]
    search_columns = ["national_id", "name"]
    order_columns = ["national_id", "created_on"]
    base_order = ("created_on", "asc")
    label_columns = {"national_record": _l("National record"), "created_on": _l("Registered on"),
                     "linked_institutions": _l("Registered by")}  # fmt: skip
    personal_id_columns = ["national_id"]

    @action("merge", _l("Merge into the national record"),
            _l("Move this registration's visits and tickets to the national record and delete it?"),
            "fa-compress", multiple=False)  # fmt: skip
    def merge(self, item):
        # A MergeError: flashed by ScopedModelView.action, back on the row's page.
        verified = merge_into_verified(self.datamodel.obj, item)
        db.session.commit()
        flash(gettext("Merged into the national record %(person)s.", person=str(verified)), "success")
        return redirect(url_for(".list"))


def person_post(api, model):
    """POST of a person: found by ID and identity data, linked, or registered (domain/registry/persons.py).

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
