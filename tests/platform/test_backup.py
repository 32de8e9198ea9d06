"""core/backup.py (issue 20 part 5): `flask backup` during a write load, `flask restore` into a
fresh instance: every row and audit entry of the backup's manifest present, files intact, the
restored app serving a signed-in list page; a non-empty target refused without --force.

On SQLite by default; with TEST_DATABASE_URL (scripts/with-postgres.sh) the source and the
target are two fresh databases of that PostgreSQL server, backed up with pg_dump."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import tarfile
import threading
import time
import uuid
from pathlib import Path

import pytest
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.engine import make_url

from tests.conftest import PASSWORD

SCALE = 0.02  # a moderate demo world: every county, ~55 institutions, a few thousand rows


def _fresh_database(tmp_path: Path, name: str) -> tuple[str, callable]:
    """A new empty database URL and a function that drops it."""
    import os

    server = os.environ.get("TEST_DATABASE_URL")
    if not server:
        return f"sqlite:///{tmp_path / f'{name}.db'}", lambda: None
    database = f"backup_{name}_{uuid.uuid4().hex[:8]}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{database}"'))
    url = make_url(server).set(database=database).render_as_string(hide_password=False)

    def drop():
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))
        admin.dispose()

    return url, drop


def _app(url: str, folder: Path):
    from app import create_app

    return create_app({
        "TESTING": True, "SQLALCHEMY_DATABASE_URI": url, "CACHE_TYPE": "SimpleCache",
        "UPLOAD_FOLDER": str(folder / "uploads"), "INSTANCE_DIR": str(folder), "MAIL_FOLDER": str(folder / "mail"),
        "SECRET_KEY": "backup-test-secret-0123456789-abcdef", "DEMO_PASSWORD": PASSWORD,
        "RATELIMIT_STORAGE_URI": f"sqlitefile://{folder / 'ratelimit.db'}", "STORAGE_BACKEND": "local",
        "AUTH_RATE_LIMIT": "10000 per minute",
    })  # fmt: skip


@pytest.fixture
def databases(tmp_path):
    source, drop_source = _fresh_database(tmp_path, "source")
    target, drop_target = _fresh_database(tmp_path, "target")
    yield source, target
    drop_source()  # WITH (FORCE): this process's pooled connections do not hold it
    drop_target()


def _writer(app, stop: threading.Event, written: list[int]):
    """Audited rows, one commit each, until told to stop (the write load)."""
    from core.extensions import db
    from models.platform.announcement import Announcement

    with app.app_context():
        while not stop.is_set():
            row = Announcement(title=f"負載公告 {len(written) + 1}", body="備份期間寫入的公告。",
                               start_date=dt.date(2025, 1, 1))  # fmt: skip
            db.session.add(row)
            db.session.commit()
            written.append(row.id)
        db.session.remove()


def _rows(app, table: str, key: str = "id") -> dict:
    from core.extensions import db

    with app.app_context():
        return {
            row[0]: tuple(row)
            for row in db.session.execute(text(f'SELECT * FROM "{table}" ORDER BY {key}'))
        }


def test_backup_during_writes_restores_every_row_and_audit_entry_into_a_fresh_instance(
    tmp_path, databases
):
    from flask_migrate import upgrade

    from core.backup import read_manifest
    from core.extensions import db
    from core.security.permissions import sync_roles
    from domain.roles import ROLE_GRANTS
    from models.platform.announcement import Announcement
    from models.platform.audit import AuditLog
    from seed.demo import seed_demo
    from seed.testing import login, reset_database

    source_url, target_url = databases
    source = _app(source_url, tmp_path / "source")
    with source.app_context():
        reset_database(db)
        upgrade()
        sync_roles(source.appbuilder, ROLE_GRANTS)
        seed_demo(seed=7, scale=SCALE)
        db.session.remove()
        seeded = db.session.scalar(select(func.count(Announcement.id)))
        db.session.remove()
    stored = sorted(p for p in (tmp_path / "source" / "uploads").rglob("*") if p.is_file())
    assert stored, "the demo world stores files (application PDFs, consent scans)"

    stop, written = threading.Event(), []
    writer = threading.Thread(target=_writer, args=(source, stop, written))
    writer.start()
    try:
        while len(written) < 20:  # the load is running before the backup starts
            time.sleep(0.01)
        at_start = len(written)
        result = source.test_cli_runner().invoke(args=["backup", "--to", str(tmp_path / "backups")])
        after_backup = len(written)
        while len(written) < after_backup + 20:  # and goes on after it
            time.sleep(0.01)
    finally:
        stop.set()
        writer.join()
    assert result.exit_code == 0, result.output
    (archive,) = (tmp_path / "backups").glob("backup-*.tar.gz")
    manifest = read_manifest(archive)
    assert manifest["dialect"] == make_url(source_url).get_backend_name()
    in_backup = manifest["tables"]["announcement"] - seeded
    assert at_start <= in_backup <= after_backup, (at_start, in_backup, after_backup)
    assert len(manifest["files"]) == len(stored)

    target = _app(target_url, tmp_path / "target")
    result = target.test_cli_runner().invoke(args=["restore", str(archive)])
    assert result.exit_code == 0, result.output

    # Every table holds exactly the manifest's rows (restore checks it; checked again here).
    with target.app_context():
        counts = {
            t: db.session.scalar(text(f'SELECT count(*) FROM "{t}"')) for t in manifest["tables"]
        }
        db.session.remove()
    assert counts == manifest["tables"]
    # The rows are the source's rows as of the backup: the first N announcements and the first M
    # audit entries, identical; nothing written after the copy, nothing missing before it.
    restored, original = _rows(target, "announcement"), _rows(source, "announcement")
    assert restored == {k: v for k, v in original.items() if k <= max(restored)}
    restored_audit, original_audit = _rows(target, "audit_log"), _rows(source, "audit_log")
    assert restored_audit == {k: v for k, v in original_audit.items() if k <= max(restored_audit)}
    with target.app_context():  # every restored announcement has its audit insert entry
        audited = set(db.session.scalars(select(AuditLog.row_key).where(
            AuditLog.model == "Announcement", AuditLog.action == "insert")))  # fmt: skip
        ids = {str(i) for i in db.session.scalars(select(Announcement.id))}
        assert ids <= audited and db.session.scalar(select(func.count(Announcement.id))) == len(
            restored
        )
        db.session.remove()
    # The files, byte for byte.
    for path in stored:
        name = path.relative_to(tmp_path / "source" / "uploads")
        copy = tmp_path / "target" / "uploads" / name
        assert (
            hashlib.sha256(copy.read_bytes()).hexdigest()
            == manifest["files"][name.as_posix()]["sha256"]
        )

    # The restored instance serves a signed-in list page, and a stored file through its row.
    client = target.test_client()
    assert login(target, client, "admin").status_code == 302
    page = client.get("/announcements/list/")
    assert page.status_code == 200 and "負載公告" in page.text

    # A non-empty target is refused; --force replaces it.
    again = target.test_cli_runner().invoke(args=["restore", str(archive)])
    assert again.exit_code != 0 and "not empty" in again.output
    forced = target.test_cli_runner().invoke(args=["restore", "--force", str(archive)])
    assert forced.exit_code == 0, forced.output


def test_restore_refuses_an_archive_whose_checksums_do_not_match(tmp_path):
    """A changed byte in any part: refused before anything is written."""
    from core.backup import BackupError, restore

    work = tmp_path / "parts"
    work.mkdir()
    (work / "database.sqlite3").write_bytes(b"not the database that was backed up")
    manifest = {"format": 1, "dialect": "sqlite", "created_at": "x", "storage_backend": "local", "files": {},
                "tables": {}, "database": {"name": "database.sqlite3", "sha256": "0" * 64, "size": 1}}  # fmt: skip
    (work / "manifest.json").write_text(json.dumps(manifest))
    archive = tmp_path / "bad.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(work / "manifest.json", arcname="manifest.json")
        tar.add(work / "database.sqlite3", arcname="database.sqlite3")
    target = tmp_path / "target.db"
    config = {
        "SQLALCHEMY_DATABASE_URI": f"sqlite:///{target}",
        "UPLOAD_FOLDER": str(tmp_path / "up"),
    }
    with pytest.raises(BackupError, match="checksum"):
        restore(config, archive)
    assert not target.exists() or target.stat().st_size == 0
