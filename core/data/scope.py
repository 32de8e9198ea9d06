"""The signed-in user's data scope, and the SQL clauses that restrict rows to it.

One definition serves reads (lists, show, exports, dropdowns, API) and writes (a row
written by a user must still be inside that user's scope after the flush).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from flask import has_request_context
from sqlalchemy import event, false, select, true

from core.actor import current_actor
from core.data.versions import request_memo
from core.extensions import db
from models.platform.user import ScopedUser, ScopeKind, user_institution
from models.registry.institution import Institution


@dataclass(frozen=True)
class Scope:
    """A resolved scope: national, a set of counties, or a set of institutions; else nothing."""

    kind: str | None = None
    county_ids: frozenset[int] = field(default_factory=frozenset)
    institution_ids: frozenset[int] = field(default_factory=frozenset)
    user_id: int | None = None

    @property
    def national(self) -> bool:
        return self.kind == ScopeKind.NATIONAL

    @property
    def has_any(self) -> bool:
        return (
            self.national
            or (self.kind == ScopeKind.COUNTY and bool(self.county_ids))
            or (self.kind == ScopeKind.FACILITY and bool(self.institution_ids))
        )

    def institution_filter(self, column):
        """Clause on a column holding an institution id."""
        if self.national:
            return true()
        if self.kind == ScopeKind.COUNTY and self.county_ids:
            return column.in_(
                select(Institution.id).where(Institution.county_id.in_(sorted(self.county_ids)))
            )
        if self.kind == ScopeKind.FACILITY and self.institution_ids:
            return column.in_(sorted(self.institution_ids))
        return false()

    def county_filter(self, column):
        """Clause on a column holding a county id."""
        if self.national:
            return true()
        if self.kind == ScopeKind.COUNTY and self.county_ids:
            return column.in_(sorted(self.county_ids))
        if self.kind == ScopeKind.FACILITY and self.institution_ids:
            return column.in_(
                select(Institution.county_id).where(Institution.id.in_(sorted(self.institution_ids)))
            )
        return false()


NO_SCOPE = Scope()
SYSTEM_SCOPE = Scope(kind=ScopeKind.NATIONAL)


def _current_user_id() -> int | None:
    # API-key logins load FAB's base User class (trap 2): only its id is trusted here,
    # the scope itself is always read from our own columns.
    return current_actor().id


def scope_for_user_id(user_id: int | None, loaded=None) -> Scope:
    """Read a user's scope from the database (no caching across requests).

    `loaded` is the request's own ScopedUser row when the login loaded one: its scope
    columns were read from the database moments ago, so they are used instead of a
    second SELECT of the same row.
    """
    if user_id is None:
        return NO_SCOPE
    loaded_ids = None
    if isinstance(loaded, ScopedUser) and loaded.id == user_id:
        row = (loaded.scope_kind, loaded.scope_county_id, loaded.active)
        # Its institutions' ids, read with it (manager.get_user_by_id), when it was loaded so.
        loaded_ids = loaded.__dict__.get(_LOADED_IDS)
    else:
        row = db.session.execute(
            select(ScopedUser.scope_kind, ScopedUser.scope_county_id, ScopedUser.active).where(
                ScopedUser.id == user_id
            )
        ).one_or_none()
    if row is None or not row[2]:
        return NO_SCOPE
    kind, county_id, _ = row
    if kind == ScopeKind.NATIONAL:
        return Scope(kind=kind, user_id=user_id)
    if kind == ScopeKind.COUNTY and county_id is not None:
        return Scope(kind=kind, county_ids=frozenset([county_id]), user_id=user_id)
    if kind == ScopeKind.FACILITY:
        if loaded_ids is not None:
            return Scope(kind=kind, institution_ids=loaded_ids, user_id=user_id)
        ids = db.session.scalars(
            select(user_institution.c.institution_id)
            .join(Institution, Institution.id == user_institution.c.institution_id)
            .where(user_institution.c.user_id == user_id)
        ).all()
        return Scope(kind=kind, institution_ids=frozenset(ids), user_id=user_id)
    return NO_SCOPE


_LOADED_IDS = "loaded_scope_institution_ids"


@event.listens_for(ScopedUser, "expire")
def _drop_loaded_ids(target, attrs):
    """Ids read with the user are as old as its columns: expired with them (every commit)."""
    target.__dict__.pop(_LOADED_IDS, None)
    target.__dict__.pop("loaded_session_row", None)


@event.listens_for(ScopedUser.scope_institutions, "append")
@event.listens_for(ScopedUser.scope_institutions, "remove")
@event.listens_for(ScopedUser.scope_institutions, "set")
def _drop_changed_ids(target, *args):
    """A scope changed in this session is read again, not taken from the user's load."""
    target.__dict__.pop(_LOADED_IDS, None)


def current_scope() -> Scope:
    """The scope of whoever makes the current request (memoised per request).

    Outside a request (CLI, seeding, background jobs) code runs with the system scope.
    """
    if not has_request_context():
        return SYSTEM_SCOPE
    from flask import current_app

    user_id = _current_user_id()
    return request_memo(
        ("scope", user_id),
        lambda: scope_for_user_id(user_id, current_app.appbuilder.sm.current_user),
    )
