"""Backup and restore (issue 20): `flask backup [--to DIR]`, `flask restore ARCHIVE [--force]`.

One archive (backup-<UTC time>.tar.gz) holds:

- ``database.sqlite3`` (SQLite: the sqlite3 online backup API, a consistent copy while the app
  keeps writing) or ``database.dump`` (PostgreSQL: pg_dump's custom format);
- ``files/…``: the stored files when STORAGE_BACKEND=local (the UPLOAD_FOLDER tree); on the
  database backend the files are rows of stored_file and are in the database part already;
- ``manifest.json``: the row count of every table *as of the copy* and the SHA-256 and size of
  the database part and of every file.

The counts describe exactly what the copy holds: on SQLite they are read from the copy; on
PostgreSQL they are read in a REPEATABLE READ transaction whose snapshot pg_dump is handed
(``--snapshot``), so the dump and the counts are the same instant while writes go on.

Restore goes into an empty database and upload folder only (``--force`` replaces a non-empty
one), verifies every checksum before it writes anything, and after writing compares the
restored row counts with the manifest. Files on disk are copied after the database: a file
written during the backup may be in the archive without its row (harmless, never served), and
a row committed after the copy has no file in it — the database backend has neither gap.
"""

from __future__ import annotations

import datetime as dt
import glob
import hashlib
import io
import json
import os
import shutil
import sqlite3
import subprocess
import tarfile
import tempfile
from pathlib import Path

from sqlalchemy import create_engine, inspect, text
from sqlalchemy.engine import make_url

MANIFEST = "manifest.json"
FORMAT = 1


class BackupError(Exception):
    """A backup or restore that cannot go on; the message says why (the CLI prints it)."""


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1024 * 1024), b""):
            digest.update(chunk)
    return digest.hexdigest()


def pg_tool(name: str, config=None) -> str:
    """The path of pg_dump / pg_restore: PG_BIN_DIR, then PATH, then the newest Debian install."""
    folder = (config or {}).get("PG_BIN_DIR") or os.environ.get("PG_BIN_DIR")
    if folder and (Path(folder) / name).is_file():
        return str(Path(folder) / name)
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(
        glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), key=lambda p: int(p.split("/")[4])
    )
    if not candidates:
        raise BackupError(f"{name} not found: install postgresql-client or set PG_BIN_DIR")
    return candidates[-1]


def _pg_env(url) -> dict:
    """libpq's environment for a SQLAlchemy URL (the password never on a command line)."""
    env = dict(os.environ)
    for key, value in (("PGHOST", url.host), ("PGPORT", url.port), ("PGUSER", url.username),
                       ("PGPASSWORD", url.password), ("PGDATABASE", url.database)):  # fmt: skip
        if value is not None:
            env[key] = str(value)
    return env


def _quoted(engine, table: str) -> str:
    return engine.dialect.identifier_preparer.quote(table)


def table_counts(connection) -> dict[str, int]:
    """Rows per table, of every table the connection sees (its snapshot)."""
    names = sorted(inspect(connection).get_table_names())
    quote = connection.dialect.identifier_preparer.quote
    return {
        name: int(connection.execute(text(f"SELECT count(*) FROM {quote(name)}")).scalar())
        for name in names
    }


def _sqlite_path(url) -> Path:
    if not url.database or url.database == ":memory:":
        raise BackupError("an in-memory SQLite database cannot be backed up")
    return Path(url.database)


def _backup_sqlite(url, target: Path) -> dict[str, int]:
    source = sqlite3.connect(str(_sqlite_path(url)), timeout=30)
    copy = sqlite3.connect(str(target))
    try:
        with copy:
            source.backup(copy, pages=0)  # one step: a consistent snapshot even under writes
    finally:
        source.close()
        copy.close()
    engine = create_engine(f"sqlite:///{target}")
    try:
        with engine.connect() as connection:
            return table_counts(connection)
    finally:
        engine.dispose()


def _backup_postgres(url, target: Path, config) -> dict[str, int]:
    engine = create_engine(
        url.render_as_string(hide_password=False), isolation_level="REPEATABLE READ"
    )
    try:
        with engine.connect() as connection:
            snapshot = connection.execute(text("SELECT pg_export_snapshot()")).scalar()
            counts = table_counts(connection)
            done = subprocess.run(
                [pg_tool("pg_dump", config), "--format=custom", "--no-owner", "--no-privileges",
                 f"--snapshot={snapshot}", f"--file={target}"],
                env=_pg_env(url), capture_output=True, text=True,
            )  # fmt: skip
            connection.rollback()
    finally:
        engine.dispose()
    if done.returncode != 0:
        raise BackupError(f"pg_dump failed: {done.stderr.strip()[:500]}")
    return counts


def backup(config, to: str | os.PathLike | None = None, now: dt.datetime | None = None) -> Path:
    """Write one archive of the database (and files on disk) into `to`; its path."""
    url = make_url(config["SQLALCHEMY_DATABASE_URI"])
    instance = Path(config.get("INSTANCE_DIR") or Path(config["UPLOAD_FOLDER"]).parent)
    folder = Path(to) if to else instance / "backups"
    folder.mkdir(parents=True, exist_ok=True)
    now = now or dt.datetime.now(dt.UTC)
    archive = folder / f"backup-{now:%Y%m%dT%H%M%S%fZ}.tar.gz"
    with tempfile.TemporaryDirectory(dir=folder) as work:
        work = Path(work)
        if url.get_backend_name() == "sqlite":
            part = work / "database.sqlite3"
            counts = _backup_sqlite(url, part)
        elif url.get_backend_name() == "postgresql":
            part = work / "database.dump"
            counts = _backup_postgres(url, part, config)
        else:
            raise BackupError(f"no backup for {url.get_backend_name()}")
        files: dict[str, dict] = {}
        uploads = Path(config["UPLOAD_FOLDER"])
        local = str(config.get("STORAGE_BACKEND") or "local").lower() == "local"
        if local and uploads.is_dir():
            for path in sorted(p for p in uploads.rglob("*") if p.is_file()):
                files[path.relative_to(uploads).as_posix()] = {
                    "sha256": _sha256_file(path),
                    "size": path.stat().st_size,
                }
        manifest = {
            "format": FORMAT, "created_at": now.isoformat(), "dialect": url.get_backend_name(),
            "storage_backend": "local" if local else "database",
            "database": {"name": part.name, "sha256": _sha256_file(part), "size": part.stat().st_size},
            "tables": counts, "files": files,
        }  # fmt: skip
        partial = archive.with_suffix(".partial")
        # gzip level 1: the demo world at scale 0.02 (11 MB database, 13 files) took 12.7 s at
        # tarfile's default level 9 (11.3 s of it compressing), 1.9 s at level 1; 2.2 MB, not 1.8.
        with tarfile.open(partial, "w:gz", compresslevel=1) as tar:
            data = json.dumps(manifest, ensure_ascii=False, indent=1, sort_keys=True).encode()
            info = tarfile.TarInfo(MANIFEST)
            info.size, info.mtime = len(data), int(now.timestamp())
            tar.addfile(info, io.BytesIO(data))
            tar.add(part, arcname=part.name)
            for name in files:
                tar.add(uploads / name, arcname=f"files/{name}")
        partial.replace(archive)  # never a half-written archive under the final name
    return archive


def read_manifest(archive: str | os.PathLike) -> dict:
    with tarfile.open(archive, "r:gz") as tar:
        member = tar.extractfile(MANIFEST)
        if member is None:
            raise BackupError("not a backup archive: no manifest")
        return json.loads(member.read())


def _extract_verified(archive: Path, work: Path) -> dict:
    """Unpack into `work` and check every checksum of the manifest; the manifest."""
    with tarfile.open(archive, "r:gz") as tar:
        tar.extractall(work, filter="data")  # no absolute paths, links or devices
    try:
        manifest = json.loads((work / MANIFEST).read_text())
    except (OSError, ValueError) as exc:
        raise BackupError(f"not a backup archive: {exc}") from None
    if manifest.get("format") != FORMAT:
        raise BackupError(f"unknown archive format {manifest.get('format')!r}")
    part = work / manifest["database"]["name"]
    if not part.is_file() or _sha256_file(part) != manifest["database"]["sha256"]:
        raise BackupError(f"{part.name}: checksum does not match the manifest")
    for name, meta in manifest["files"].items():
        path = work / "files" / name
        if not path.is_file() or _sha256_file(path) != meta["sha256"]:
            raise BackupError(f"files/{name}: checksum does not match the manifest")
    return manifest


def _non_empty(engine) -> list[str]:
    with engine.connect() as connection:
        counts = table_counts(connection)
    return [name for name, count in counts.items() if count]


def restore(config, archive: str | os.PathLike, force: bool = False) -> dict:
    """Restore `archive` into the configured database and upload folder; the manifest.

    Refuses (BackupError) a database with any row, or an upload folder with any file, unless
    `force`; refuses an archive whose checksums or dialect do not match before writing."""
    archive = Path(archive)
    url = make_url(config["SQLALCHEMY_DATABASE_URI"])
    uploads = Path(config["UPLOAD_FOLDER"])
    with tempfile.TemporaryDirectory() as work:
        work = Path(work)
        manifest = _extract_verified(archive, work)
        if manifest["dialect"] != url.get_backend_name():
            raise BackupError(
                f"the archive is of {manifest['dialect']}, the database is {url.get_backend_name()}"
            )
        engine = create_engine(url.render_as_string(hide_password=False))
        try:
            busy = _non_empty(engine)
            has_files = uploads.is_dir() and any(p.is_file() for p in uploads.rglob("*"))
            if (busy or (has_files and manifest["files"])) and not force:
                what = f"tables with rows: {', '.join(busy[:5])}" if busy else f"files in {uploads}"
                raise BackupError(f"the target is not empty ({what}); use --force to replace it")
        finally:
            engine.dispose()
        part = work / manifest["database"]["name"]
        if manifest["dialect"] == "sqlite":
            target = _sqlite_path(url)
            target.parent.mkdir(parents=True, exist_ok=True)
            source, copy = sqlite3.connect(str(part)), sqlite3.connect(str(target), timeout=30)
            try:
                with copy:
                    source.backup(copy)  # page by page into the target, its WAL included
            finally:
                source.close()
                copy.close()
        else:
            done = subprocess.run(
                [pg_tool("pg_restore", config), "--no-owner", "--no-privileges", "--exit-on-error",
                 *(["--clean", "--if-exists"] if force else []), f"--dbname={url.database}", str(part)],
                env=_pg_env(url), capture_output=True, text=True,
            )  # fmt: skip
            if done.returncode != 0:
                raise BackupError(f"pg_restore failed: {done.stderr.strip()[:500]}")
        if manifest["files"]:
            if force and uploads.is_dir():
                shutil.rmtree(uploads)
            for name in manifest["files"]:
                destination = uploads / name
                destination.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(work / "files" / name, destination)
    engine = create_engine(url.render_as_string(hide_password=False))
    try:
        with engine.connect() as connection:
            restored = table_counts(connection)
    finally:
        engine.dispose()
    wrong = {t: (n, restored.get(t)) for t, n in manifest["tables"].items() if restored.get(t) != n}
    if wrong:
        raise BackupError(f"restored row counts differ from the manifest: {wrong}")
    return manifest
