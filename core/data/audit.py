"""Session hooks that write the audit trail and stamp audit columns.

Hooked on the session, not on views, so that every path that changes a row (forms,
REST API, CLI, batch jobs, later workflows) is recorded the same way.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import decimal
import enum

from flask import g, has_app_context
from sqlalchemy import event, inspect

from core.actor import current_actor
from core.data.counts import note_written
from core.dates import utcnow
from models.platform.audit import AuditLog
from models.platform.user import ScopedUser


class AuditImmutableError(RuntimeError):
    """Raised when code tries to change or delete an audit row."""


def _json_value(value):
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, bytes):
        return f"<{len(value)} bytes>"
    return value


def _row_key(obj) -> str:
    # In after_flush a new row has its primary key but not yet its identity key.
    values = inspect(obj).mapper.primary_key_from_instance(obj)
    return ",".join(str(v) for v in values)


def _column_attrs(obj):
    mapper = inspect(obj).mapper
    return [prop.key for prop in mapper.column_attrs]


def _values(obj) -> dict:
    return {key: _json_value(getattr(obj, key)) for key in _column_attrs(obj)}


def _changes(obj) -> tuple[dict, dict]:
    state = inspect(obj)
    before, after = {}, {}
    for key in _column_attrs(obj):
        hist = state.attrs[key].history
        if hist.has_changes():
            before[key] = _json_value(hist.deleted[0]) if hist.deleted else None
            after[key] = _json_value(hist.added[0]) if hist.added else None
    return before, after


def _actor() -> tuple[int | None, str | None, str | None]:
    actor = current_actor()
    return actor.id, actor.username, actor.ip


@contextlib.contextmanager
def audit_reference(reference: str):
    """Tag every audit row written inside the block (e.g. with a correction-ticket number)."""
    previous = g.get("audit_reference")
    g.audit_reference = reference
    try:
        yield
    finally:
        g.audit_reference = previous


def _institution_of(obj) -> int | None:
    """The institution a changed row belongs to (itself, for an institution)."""
    if getattr(obj, "__tablename__", None) == "institution":
        return obj.id
    value = getattr(obj, "institution_id", None)
    return value if isinstance(value, int) else None


def _audited(obj) -> bool:
    return getattr(obj, "__audited__", False)


def before_flush(session, flush_context, instances):
    for obj in list(session.dirty) + list(session.deleted):
        # The audit trail, and every other log a model declares append-only (__append_only__).
        if isinstance(obj, AuditLog) or getattr(obj, "__append_only__", False):
            raise AuditImmutableError(f"{type(obj).__name__} rows cannot be changed or deleted")
    user_id = _actor()[0]
    now = utcnow()
    for obj in session.new:
        if _audited(obj) and hasattr(obj, "created_by_id"):
            obj.created_by_id = obj.created_by_id or user_id
            obj.changed_by_id = user_id
    for obj in session.dirty:
        if _audited(obj) and hasattr(obj, "changed_by_id") and session.is_modified(obj):
            obj.changed_by_id = user_id
            obj.changed_on = now


def after_flush(session, flush_context):
    rows = []
    user_id, username, ip = _actor()
    reference = g.get("audit_reference") if has_app_context() else None
    now = utcnow()

    def add(action, obj, before, after):
        rows.append(
            {
                "at": now,
                "user_id": user_id,
                "username": username,
                "action": action,
                "model": type(obj).__name__,
                "row_key": _row_key(obj),
                "before": before,
                "after": after,
                "source_ip": ip,
                "reference": reference,
                "institution_id": _institution_of(obj),
            }
        )

    for obj in session.new:
        if _audited(obj):
            add("insert", obj, None, _values(obj))
    for obj in session.dirty:
        if _audited(obj) and session.is_modified(obj, include_collections=False):
            before, after = _changes(obj)
            if before or after:
                add("update", obj, before, after)
    for obj in session.deleted:
        if _audited(obj):
            add("delete", obj, _values(obj), None)
    rows.extend(_account_changes(session, now, user_id, username, ip))
    if rows:
        session.connection().execute(AuditLog.__table__.insert(), rows)
        # Written on the connection, so no ORM event notes the table: without this the audit
        # log's cached list count never moved (the admin's list said 1,994 of 1,998 rows).
        note_written(session, AuditLog.__table__.name)


#: Attributes of a user whose change is a security event ("role_change", "scope_change").
_WATCHED_USER_ATTRS = {
    "role_change": ("roles",),
    "scope_change": ("scope_kind", "scope_county_id", "scope_institutions"),
}


def _describe(values) -> object:
    if isinstance(values, list | tuple):
        return [getattr(v, "name", None) or str(v) for v in values]
    return _json_value(values)


def _account_changes(session, now, actor_id, actor_name, ip) -> list[dict]:
    """Role and scope changes of user accounts, from any path (admin forms, API, CLI)."""
    rows = []
    for obj in session.dirty:
        if not isinstance(obj, ScopedUser):
            continue
        state = inspect(obj)
        for action, attrs in _WATCHED_USER_ATTRS.items():
            before, after = {}, {}
            for key in attrs:
                hist = state.attrs[key].history
                if hist.has_changes():
                    before[key] = _describe(list(hist.unchanged) + list(hist.deleted)) if key in (
                        "roles", "scope_institutions") else _describe(hist.deleted[0] if hist.deleted else None)
                    after[key] = _describe(list(hist.unchanged) + list(hist.added)) if key in (
                        "roles", "scope_institutions") else _describe(hist.added[0] if hist.added else None)
            if after:
                rows.append({
                    "at": now, "user_id": actor_id, "username": actor_name, "action": action,
                    "model": "Account", "row_key": str(obj.id), "before": before,
                    "after": {"account": obj.username, **after}, "source_ip": ip, "reference": None,
                    "institution_id": None,
                })  # fmt: skip
    return rows


def install(session) -> None:
    """Attach the hooks to a session (the app's scoped session) once."""
    if not event.contains(session, "before_flush", before_flush):
        event.listen(session, "before_flush", before_flush)
        event.listen(session, "after_flush", after_flush)


def audit_bulk_insert(session, model, rows: list[dict]) -> None:
    """The audit rows of rows inserted in bulk: an insert through `session.execute(insert(...))`
    flushes no object, so after_flush never sees it. One "insert" row per inserted row, in the
    shape after_flush writes (every column, the row's key, its institution), in one statement;
    each of `rows` must hold every column, its primary key included."""
    if not rows:
        return
    user_id, username, ip = _actor()
    reference = g.get("audit_reference") if has_app_context() else None
    now = utcnow()
    keys = [prop.key for prop in inspect(model).column_attrs]
    pk = [column.key for column in inspect(model).primary_key]
    name = model.__name__
    entries = [
        {
            "at": now, "user_id": user_id, "username": username, "action": "insert", "model": name,
            "row_key": ",".join(str(row[k]) for k in pk), "before": None,
            "after": {k: _json_value(row.get(k)) for k in keys}, "source_ip": ip, "reference": reference,
            "institution_id": row.get("institution_id") if isinstance(row.get("institution_id"), int) else None,
        }  # fmt: skip
        for row in rows
    ]
    session.execute(AuditLog.__table__.insert(), entries)
