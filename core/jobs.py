"""Background jobs (huey): SQLite storage by default, Redis when REDIS_URL is set.

Run the worker with `huey_consumer worker.huey` (`make run` starts it): the top-level
worker.py gives this module the app factory, so core/ never imports app.py. Tasks build the
app once per worker process and run inside a request context logged in as the user who
asked, so scope and permissions are exactly the web's. Tasks are defined where their work
is (core/export/background.py run_export); worker.py imports them.
"""

from __future__ import annotations

import os
from pathlib import Path

from huey import MemoryHuey, RedisHuey, SqliteHuey

import config

_app = None
#: Builds the worker's app; set by worker.py (the consumer's entry point) or by tests.
_factory = None


def _make_huey():
    immediate = os.environ.get("HUEY_IMMEDIATE", "").lower() in {"1", "true", "yes"}
    if os.environ.get("REDIS_URL"):
        # Immediate (tests with REDIS_URL): tasks run in-process, their results in Redis.
        return RedisHuey("backoffice", url=os.environ["REDIS_URL"], immediate=immediate,
                         immediate_use_memory=False)  # fmt: skip
    if immediate:
        return MemoryHuey("backoffice", immediate=True)  # tests: tasks run in-process
    Path(config.INSTANCE_DIR).mkdir(parents=True, exist_ok=True)
    return SqliteHuey("backoffice", filename=str(Path(config.INSTANCE_DIR) / "huey.db"))


huey = _make_huey()


def worker_app():
    """The Flask app of this worker process (created on first use)."""
    global _app
    if _app is None:
        if _factory is None:
            raise RuntimeError("no app factory: start the consumer as `huey_consumer worker.huey`")
        _app = _factory()
    return _app


def set_app_factory(factory) -> None:
    """The worker's entry point names the function that builds its app (worker.py)."""
    global _factory
    _factory = factory


def set_app(app) -> None:
    """Tests (immediate mode) run tasks in their own app."""
    global _app
    _app = app
