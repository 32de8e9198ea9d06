"""SQLite under concurrent writers (issue 7, bench/load.py): every connection runs in WAL mode
with a busy timeout, so a second writer waits for the first instead of failing with
`database is locked`. Independent of TEST_DATABASE_URL: these build their own SQLite file."""

from __future__ import annotations

import threading
import time

from sqlalchemy import create_engine, text

import app  # noqa: F401  (registers the connect listener that sets the pragmas)


def test_sqlite_connections_use_wal_and_a_busy_timeout(tmp_path):
    engine = create_engine(f"sqlite:///{tmp_path / 'pragmas.db'}")
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() >= 5000
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1


def test_a_second_writer_waits_instead_of_database_is_locked(tmp_path):
    # timeout=0: Python's own 5 s default would hide a missing busy_timeout pragma.
    engine = create_engine(f"sqlite:///{tmp_path / 'writers.db'}", connect_args={"timeout": 0})
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE visit_like (id INTEGER PRIMARY KEY, who TEXT)"))
    holding = threading.Event()
    errors: list[Exception] = []

    def first_writer():
        with engine.connect() as conn:
            conn.exec_driver_sql("BEGIN IMMEDIATE")
            conn.execute(text("INSERT INTO visit_like (who) VALUES ('first')"))
            holding.set()
            time.sleep(0.6)  # a long write transaction, as a big batch upload is
            conn.exec_driver_sql("COMMIT")

    thread = threading.Thread(target=first_writer)
    thread.start()
    holding.wait(5)
    try:
        with engine.begin() as conn:  # would raise "database is locked" without the timeout
            conn.execute(text("INSERT INTO visit_like (who) VALUES ('second')"))
    except Exception as exc:  # noqa: BLE001  (recorded, asserted below)
        errors.append(exc)
    thread.join()
    assert errors == []
    with engine.connect() as conn:
        assert sorted(r[0] for r in conn.execute(text("SELECT who FROM visit_like"))) == ["first", "second"]


def test_sqlite_reads_through_mmap_except_inside_a_streaming_export(tmp_path):
    """Requests read the file through mmap; a whole-table export turns it off for its own
    duration (mapped pages would count in the exporting process's memory) and back on."""
    from sqlalchemy.orm import Session

    from core.extensions import SQLITE_MMAP_BYTES, without_sqlite_mmap

    engine = create_engine(f"sqlite:///{tmp_path / 'mmap.db'}")
    with Session(engine) as session:
        mmap = lambda: session.connection().exec_driver_sql("PRAGMA mmap_size").scalar()  # noqa: E731
        assert mmap() == SQLITE_MMAP_BYTES
        with without_sqlite_mmap(session):
            assert mmap() == 0
        assert mmap() == SQLITE_MMAP_BYTES
