"""Stored files, one interface for every host (issue 20): correction scans, application PDFs,
batch error reports, exports, treatment records, consent scans — every file the app keeps.

    put(kind, data, filename, content_type) -> key      open(key) / read(key)
    delete(key)                                         exists(key)

A key is "<kind>/<filename>": the kind is the folder of one use (FileStore.folder, "exports",
"batch-reports"…), the filename the random name its owning row keeps. Files are never
served by path or by key from a URL: the views find the owning row through the scoped
datamodel first and only then read its key (core/files.py FileStore.send).

Two backends, chosen by STORAGE_BACKEND:

- ``local`` (the default, as before): files under UPLOAD_FOLDER/<kind>/<filename>. One host,
  or several hosts sharing that folder over a network file system.
- ``database``: a row of the stored_file table (bytes in a LargeBinary column: bytea on
  PostgreSQL, a BLOB on SQLite) with its size, SHA-256 and type. Every host that reaches the
  database sees every file with nothing more to run or to share, and one database backup
  (``flask backup``, pg_dump) holds the rows and their files together, consistent with each
  other — no second store to back up at the same instant. Chosen over an S3-compatible store
  for that reason: the files are small scans and spreadsheets (≤ 5 MB uploads; exports are
  the big ones), and an object store would be one more service to run, secure and back up.

The database backend writes in the caller's session: a file saved inside a command is
committed with the command's rows and vanishes with them on rollback. Callers outside a
command (error reports, finished exports) commit themselves.
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
from pathlib import Path
from typing import BinaryIO, Protocol

#: The backends STORAGE_BACKEND may name.
BACKENDS = ("local", "database")


def storage_key(kind: str, filename: str) -> str:
    """The key of a file of `kind` stored as `filename` ("" kind: the key is the name)."""
    return f"{kind}/{filename}" if kind else filename


def _bytes(data: bytes | BinaryIO) -> bytes:
    return data if isinstance(data, bytes | bytearray) else data.read()


class Storage(Protocol):
    """What every backend offers."""

    name: str

    def put(
        self, kind: str, data: bytes | BinaryIO, filename: str, content_type: str | None = None
    ) -> str: ...

    def open(self, key: str) -> BinaryIO | None: ...

    def read(self, key: str) -> bytes | None: ...

    def delete(self, key: str) -> None: ...

    def exists(self, key: str) -> bool: ...


class LocalStorage:
    """Files in folders under one root (UPLOAD_FOLDER), as the app always kept them."""

    name = "local"

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)

    def path(self, key: str | None) -> Path | None:
        """The file of a key, or None if the key is empty or leads out of the root."""
        if not key:
            return None
        root = os.path.realpath(self.root)
        path = os.path.realpath(os.path.join(root, key))
        return Path(path) if path.startswith(root + os.sep) else None

    def put(self, kind, data, filename, content_type=None) -> str:
        key = storage_key(kind, filename)
        path = self.path(key)
        if path is None or os.sep in filename or filename in ("", ".", ".."):
            raise ValueError(f"not a stored file name: {filename!r}")
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(data, bytes | bytearray):
            path.write_bytes(data)
        else:
            with path.open("wb") as target:
                shutil.copyfileobj(data, target, 1024 * 1024)
        return key

    def open(self, key):
        path = self.path(key)
        return path.open("rb") if path is not None and path.is_file() else None

    def read(self, key):
        path = self.path(key)
        return path.read_bytes() if path is not None and path.is_file() else None

    def delete(self, key):
        path = self.path(key)
        if path is not None:
            path.unlink(missing_ok=True)

    def exists(self, key):
        path = self.path(key)
        return path is not None and path.is_file()


class DatabaseStorage:
    """Files as rows of stored_file, in the current session's transaction (see the module)."""

    name = "database"

    def put(self, kind, data, filename, content_type=None) -> str:
        from sqlalchemy import delete, insert

        from core.dates import utcnow
        from core.extensions import db
        from models.platform.stored_file import StoredFile

        if not filename or "/" in filename:
            raise ValueError(f"not a stored file name: {filename!r}")
        content = _bytes(data)
        key = storage_key(kind, filename)
        db.session.execute(delete(StoredFile).where(StoredFile.key == key))  # put replaces
        db.session.execute(
            insert(StoredFile).values(
                key=key, kind=kind, content=content, size=len(content),
                sha256=hashlib.sha256(content).hexdigest(), content_type=content_type, created_at=utcnow(),
            )
        )  # fmt: skip
        return key

    def open(self, key):
        content = self.read(key)
        return io.BytesIO(content) if content is not None else None

    def read(self, key):
        from sqlalchemy import select

        from core.extensions import db
        from models.platform.stored_file import StoredFile

        if not key:
            return None
        return db.session.scalar(select(StoredFile.content).where(StoredFile.key == key))

    def delete(self, key):
        from sqlalchemy import delete

        from core.extensions import db
        from models.platform.stored_file import StoredFile

        if key:
            db.session.execute(delete(StoredFile).where(StoredFile.key == key))

    def exists(self, key):
        from sqlalchemy import select

        from core.extensions import db
        from models.platform.stored_file import StoredFile

        return (
            bool(key)
            and db.session.scalar(select(StoredFile.key).where(StoredFile.key == key)) is not None
        )


def backend_name(config) -> str:
    """STORAGE_BACKEND of a config, checked (create_app refuses to start on another value)."""
    name = str(config.get("STORAGE_BACKEND") or "local").strip().lower()
    if name not in BACKENDS:
        raise ValueError(f"STORAGE_BACKEND must be one of {', '.join(BACKENDS)}, not {name!r}")
    return name


def storage() -> Storage:
    """The backend of the current app, read from its config at each use (tests switch it)."""
    from flask import current_app

    if backend_name(current_app.config) == "database":
        return DatabaseStorage()
    return LocalStorage(current_app.config["UPLOAD_FOLDER"])


def send_stored(
    key: str | None, download_name: str, mimetype: str | None = None, as_attachment: bool = True
):
    """A response with the stored file of `key` (found through a row in scope); 404 if it is gone."""
    from flask import abort, send_file

    backend = storage()
    if isinstance(backend, LocalStorage):  # streamed from disk, with its size and mtime
        path = backend.path(key)
        if path is None or not path.is_file():
            abort(404)
        return send_file(
            path, mimetype=mimetype, download_name=download_name, as_attachment=as_attachment
        )
    content = backend.read(key) if key else None
    if content is None:
        abort(404)
    return send_file(
        io.BytesIO(content),
        mimetype=mimetype,
        download_name=download_name,
        as_attachment=as_attachment,
    )
