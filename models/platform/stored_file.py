"""Stored files of the database storage backend (core/storage.py DatabaseStorage): one row per file."""

from __future__ import annotations

import datetime as dt

from flask_appbuilder.models.sqla import Model
from sqlalchemy import DateTime, Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, deferred, mapped_column

from core.dates import utcnow


class StoredFile(Model):
    """One stored file's bytes, read only through the scoped row that names its key.

    No view lists this table and no user reads it directly: a correction attachment, a
    consent scan, an export job (… each audited and scoped) holds the key, and the download
    goes through that row. So it has no audit columns of its own (its writes are the owning
    row's, which the audit trail records) and no scope clause (it is never a row of a view)."""

    __tablename__ = "stored_file"
    __table_args__ = {"extend_existing": True}

    #: "<kind>/<name>": the kind (folder) and the random stored name the owning row keeps.
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    kind: Mapped[str] = mapped_column(String(40), nullable=False, index=True)
    #: The bytes (PostgreSQL bytea, SQLite BLOB); deferred so a listing of files loads none.
    content: Mapped[bytes] = deferred(mapped_column(LargeBinary, nullable=False))
    size: Mapped[int] = mapped_column(Integer, nullable=False)
    sha256: Mapped[str] = mapped_column(String(64), nullable=False)
    content_type: Mapped[str | None] = mapped_column(String(100))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, nullable=False, default=utcnow)
