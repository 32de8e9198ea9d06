"""A `limits` storage in a SQLite file: rate limits shared by all workers without Redis.

Flask-Limiter's memory storage is per process, so with two gunicorn workers every limit
would be doubled. URI: sqlitefile:///absolute/path.db (Redis is used when REDIS_URL is set).
"""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

from limits.storage import Storage


class SQLiteFileStorage(Storage):
    """Fixed-window counters in one small table, updated in IMMEDIATE transactions."""

    STORAGE_SCHEME = ["sqlitefile"]

    def __init__(self, uri: str, wrap_exceptions: bool = False, **options):
        super().__init__(uri, wrap_exceptions=wrap_exceptions, **options)
        self.path = uri.split("://", 1)[1]
        Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        with self._connect() as conn:
            conn.execute(
                "CREATE TABLE IF NOT EXISTS ratelimit (key TEXT PRIMARY KEY, count INTEGER, expiry REAL)"
            )

    def _connect(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=10, isolation_level=None)
            conn.execute("PRAGMA journal_mode=WAL")
            self._local.conn = conn
        return conn

    @property
    def base_exceptions(self):
        return sqlite3.Error

    def incr(self, key: str, expiry: int, amount: int = 1) -> int:
        conn = self._connect()
        now = time.time()
        conn.execute("BEGIN IMMEDIATE")
        try:
            row = conn.execute("SELECT count, expiry FROM ratelimit WHERE key = ?", (key,)).fetchone()
            if row is None or row[1] <= now:
                count = amount
                conn.execute(
                    "INSERT OR REPLACE INTO ratelimit (key, count, expiry) VALUES (?, ?, ?)",
                    (key, count, now + expiry),
                )
            else:
                count = row[0] + amount
                conn.execute("UPDATE ratelimit SET count = ? WHERE key = ?", (count, key))
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        return count

    def get(self, key: str) -> int:
        row = self._connect().execute(
            "SELECT count FROM ratelimit WHERE key = ? AND expiry > ?", (key, time.time())
        ).fetchone()
        return row[0] if row else 0

    def get_expiry(self, key: str) -> float:
        row = self._connect().execute("SELECT expiry FROM ratelimit WHERE key = ?", (key,)).fetchone()
        return row[0] if row else time.time()

    def check(self) -> bool:
        try:
            self._connect().execute("SELECT 1")
            return True
        except sqlite3.Error:
            return False

    def reset(self) -> int | None:
        conn = self._connect()
        count = conn.execute("SELECT count(*) FROM ratelimit").fetchone()[0]
        conn.execute("DELETE FROM ratelimit")
        return count

    def clear(self, key: str) -> None:
        self._connect().execute("DELETE FROM ratelimit WHERE key = ?", (key,))
