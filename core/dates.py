"""ROC (民國) calendar helpers: Taiwan's forms show 114/04/01 for 2025-04-01."""

from __future__ import annotations

import datetime as dt
import functools
import re
from zoneinfo import ZoneInfo

from core.errors import UserError

TAIPEI = ZoneInfo("Asia/Taipei")
ROC_OFFSET = 1911

_ROC_RE = re.compile(r"^\s*(\d{2,3})\s*[/.\-]\s*(\d{1,2})\s*[/.\-]\s*(\d{1,2})\s*$")
_ISO_RE = re.compile(r"^\s*(\d{4})-(\d{1,2})-(\d{1,2})\s*$")
_ROC_COMPACT_RE = re.compile(r"^\s*(\d{3})(\d{2})(\d{2})\s*$")


def roc_year(year: int) -> int:
    """The ROC year of a Gregorian year (2025 → 114): the one place the offset is applied."""
    return year - ROC_OFFSET


def gregorian_year(year: int) -> int:
    """A year as typed: below 1000 it is an ROC year (114 → 2025), else Gregorian."""
    return year + ROC_OFFSET if year < 1000 else year


def roc_month(year: int, month: int) -> str:
    """114/05 for May 2025."""
    return f"{roc_year(year)}/{month:02d}"


class DateFormatError(UserError, ValueError):
    """Raised for text that is neither an ROC nor an ISO date; the message is user-facing."""

    status = 400


#: The dates the system accepts: a far-future date would overflow the deadline arithmetic
#: (9999-12-31 + one month) before any rule refused it (issue 12 class 8).
MIN_DATE = dt.date(1900, 1, 1)
MAX_DATE = dt.date(2200, 12, 31)


def in_range(value: dt.date) -> bool:
    return MIN_DATE <= value <= MAX_DATE


def out_of_range_message() -> str:
    from flask_babel import gettext

    return gettext(
        "The date must lie between %(first)s and %(last)s.",
        first=MIN_DATE.isoformat(),
        last=MAX_DATE.isoformat(),
    )


_TAIPEI_OFFSET = dt.timedelta(hours=8)  # no daylight saving in Taiwan since 1980


def to_roc(value: dt.date | dt.datetime | None) -> str:
    """Format a date as ROC 'YYY/MM/DD'; a datetime also gets ' HH:MM', in Taipei time."""
    if value is None:
        return ""
    if isinstance(value, dt.datetime):
        # Naive datetimes are UTC throughout the app (utcnow); people read Taipei time.
        if value.tzinfo is None and value.year >= 1980:
            value = value + _TAIPEI_OFFSET  # exports format millions of these: skip tz math
        else:
            value = (value if value.tzinfo else value.replace(tzinfo=dt.UTC)).astimezone(TAIPEI)
        return f"{value.year - ROC_OFFSET}/{value.month:02d}/{value.day:02d} {value.hour:02d}:{value.minute:02d}"
    return _roc_date(value)


@functools.lru_cache(maxsize=8192)
def _roc_date(value: dt.date) -> str:
    return f"{value.year - ROC_OFFSET}/{value.month:02d}/{value.day:02d}"


def parse_date(text: str) -> dt.date:
    """Parse ROC (114/4/1, 114/04/01, 1140401) or ISO (2025-04-01) text into a date."""
    from flask_babel import gettext

    if text is None or not str(text).strip():
        raise DateFormatError(gettext("Please enter a date."))
    text = str(text)
    iso = _ISO_RE.match(text)
    if iso:
        year, month, day = (int(g) for g in iso.groups())
    else:
        roc = _ROC_RE.match(text) or _ROC_COMPACT_RE.match(text)
        if not roc:
            raise DateFormatError(
                gettext(
                    "“%(value)s” is not a valid date. Use the ROC form 114/04/01 or 114/4/1, "
                    "or ISO 2025-04-01.",
                    value=text.strip(),
                )
            )
        roc_year, month, day = (int(g) for g in roc.groups())
        if roc_year < 1:
            raise DateFormatError(gettext("The ROC year must be 1 or later."))
        year = roc_year + ROC_OFFSET
    if not MIN_DATE.year <= year <= MAX_DATE.year:
        raise DateFormatError(out_of_range_message())
    try:
        return dt.date(year, month, day)
    except ValueError:
        raise DateFormatError(
            gettext("“%(value)s” is not a date on the calendar.", value=text.strip())
        ) from None


def taipei_now() -> dt.datetime:
    """The current time in Asia/Taipei (the one clock later issues will make movable)."""
    return dt.datetime.now(TAIPEI)


def utcnow() -> dt.datetime:
    """Naive UTC now, for audit timestamps stored without a zone."""
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)
