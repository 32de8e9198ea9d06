"""The background-job worker's entry point: `huey_consumer worker.huey` (make run starts it).

It hands core/jobs.py the app factory, so the framework never imports app.py.
"""

from app import create_app
from core.export import background  # noqa: F401  (registers the export task)
from core.jobs import huey, set_app_factory

set_app_factory(create_app)

__all__ = ["huey"]
