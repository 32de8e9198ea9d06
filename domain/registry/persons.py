"""Finding and registering national persons by national ID *and* identity data.

One rule for every path that names a person (visit form, quitter and practitioner forms,
REST, batch upload):

- the national ID and the identity data (a quitter's name, sex and birth date; a
  practitioner's name) are given together; a row whose ID *and* data match is the person,
  and the institution is linked to it (it then sees the person: it has shown it knows them);
- an ID nobody holds yet makes a new, verified row;
- an ID held with other identity data makes a separate row marked `conflict`, holding what
  this institution typed, for the office to reconcile. The institution sees its own row and
  nothing of the other one.

All three answer alike (same status, same message, the same few statements), so no answer
tells whether an ID is registered anywhere outside the caller's scope (issue 12, class 3).
"""

from __future__ import annotations

import unicodedata

from blinker import Namespace
from sqlalchemy import inspect, select

from core.data.scope import ScopeKind, current_scope
from core.errors import UserError
from core.extensions import db
from core.validators import normalize_id
from models.registry.person import IdentityStatus, link_person

#: session.info key: (table, id) of existing persons this transaction matched by identity.
VERIFIED_REFERENCES = "identity_verified_references"


def _text(value) -> str:
    return " ".join(unicodedata.normalize("NFKC", str(value or "")).split())


def identity_matches(person, identity: dict) -> bool:
    """Whether the stored identity data equal the given ones (names compared as typed, NFKC)."""
    for field in type(person).__identity_fields__:
        stored, given = getattr(person, field), identity.get(field)
        if isinstance(stored, str) or isinstance(given, str):
            if _text(stored) != _text(given):
                return False
        elif stored != given:
            return False
    return True


def registering_institutions() -> list[int]:
    """The institutions a registration by the current user links to (a facility's own)."""
    scope = current_scope()
    return sorted(scope.institution_ids) if scope.kind == ScopeKind.FACILITY else []


def grant_reference(session, person) -> None:
    """Let this transaction's writes point at `person` (matched by identity, not guessed by id)."""
    key = (inspect(type(person)).local_table.name, person.id)
    session.info.setdefault(VERIFIED_REFERENCES, set()).add(key)


def register_person(model, national_id: str, identity: dict, institution_ids, *,
                    source: str = "registration", new=None, extra: dict | None = None):
    """The person with this ID and identity data, linked to `institution_ids` (see module doc).

    `new` is the transient row to insert when one is needed (a form's own item), else one is
    built from `identity` and `extra`. Flushes; the caller commits.
    """  # fmt: skip
    session = db.session
    national_id = normalize_id(national_id)
    identity = {field: identity.get(field) for field in model.__identity_fields__}
    if isinstance(identity.get("name"), str):
        identity["name"] = _text(identity["name"])
    with session.no_autoflush:
        rows = session.scalars(
            select(model).where(model.national_id == national_id).order_by(model.id)
        ).all()
    person = next((row for row in rows if row is not new and identity_matches(row, identity)), None)
    if person is None:
        verified_exists = any(
            row.identity_status == IdentityStatus.VERIFIED.value for row in rows if row is not new
        )
        person = new if new is not None else model(**(extra or {}))
        person.national_id = national_id
        for field, value in identity.items():
            setattr(person, field, value)
        person.identity_status = (
            IdentityStatus.CONFLICT.value if verified_exists else IdentityStatus.VERIFIED.value
        )
        session.add(person)
        session.flush()
    elif new is not None and new in session:
        session.expunge(new)
    if institution_ids:
        link_person(session, model.__person_kind__, person.id, institution_ids, source)
    grant_reference(session, person)
    return person


def same_person_ids(model, person_id: int):
    """SELECT of every row of `model` holding the national ID of row `person_id` (C4 spans them)."""
    national_id = select(model.national_id).where(model.id == person_id).scalar_subquery()
    return select(model.id).where(model.national_id == national_id)


#: Sent as (model, into=verified_row) after a conflict row has been folded into `into`.
person_merged = Namespace().signal("person-merged")


class MergeError(UserError, ValueError):
    """A conflict row that cannot be merged; str() is the zh_TW message."""


def merge_into_verified(model, row) -> object:
    """Fold a conflict row into the verified row of its ID: every reference (visits, tickets,
    links …, found from the schema's foreign keys, so a new table is covered) moves over,
    then the conflict row is deleted. The office's reconciliation; the caller commits."""
    from flask_babel import gettext
    from sqlalchemy import update

    from models.registry.person import PersonLink

    session = db.session
    if row.identity_status != IdentityStatus.CONFLICT.value:
        raise MergeError(gettext("Only a registration whose identity data differ can be merged."))
    verified = session.scalar(
        select(model).where(
            model.national_id == row.national_id,
            model.identity_status == IdentityStatus.VERIFIED.value,
        )
    )
    if verified is None:
        raise MergeError(gettext("There is no verified record of this national ID to merge into."))
    table = model.__table__
    for other in table.metadata.tables.values():
        for fk in other.foreign_keys:
            if fk.column is table.c.id and other is not table:
                session.execute(
                    update(other).where(fk.parent == row.id).values({fk.parent.name: verified.id})
                )
    kind = model.__person_kind__
    links = session.scalars(
        select(PersonLink.institution_id).where(
            PersonLink.person_kind == kind, PersonLink.person_id == row.id
        )
    ).all()
    link_person(session, kind, verified.id, links, "merge")
    session.delete(row)
    session.flush()
    # Figures that count distinct persons (C9's quitters per level) are another domain's:
    # it listens here rather than being imported by the registry.
    person_merged.send(model, into=verified)
    return verified
