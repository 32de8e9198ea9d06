"""The one clock of the application, so that tests (and the demo) can move time.

Deadlines (C1–C3) depend on "now" in Asia/Taipei; every rule asks this module, never
datetime.now() directly. Tests use `frozen(...)`; production never sets an offset.
"""

from __future__ import annotations

import contextlib
import datetime as dt

from core.dates import TAIPEI

_frozen: dt.datetime | None = None


def now() -> dt.datetime:
    """The current time in Asia/Taipei (aware)."""
    if _frozen is not None:
        return _frozen
    return dt.datetime.now(TAIPEI)


def today() -> dt.date:
    return now().date()


def utc_naive() -> dt.datetime:
    """now() as naive UTC, the form datetimes are stored in."""
    return now().astimezone(dt.UTC).replace(tzinfo=None)


@contextlib.contextmanager
def frozen(moment: dt.datetime):
    """Within the block, now() is `moment` (naive values are read as Taipei time)."""
    global _frozen
    previous = _frozen
    _frozen = moment if moment.tzinfo else moment.replace(tzinfo=TAIPEI)
    try:
        yield _frozen
    finally:
        _frozen = previous
