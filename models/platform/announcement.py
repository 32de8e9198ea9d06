"""Announcements (公告) the admin publishes on every user's home page for a period."""

from __future__ import annotations

import datetime as dt

from flask_babel import lazy_gettext as _l
from sqlalchemy import CheckConstraint, Index, Integer, String, Text, false, true
from sqlalchemy.orm import Mapped, mapped_column

from core.data import rules
from models.base import AppModel, AuditColumnsMixin, DateRangeMixin

ANNOUNCEMENT_RULES = {
    "title": rules.text(_l("Announcement title"), required=True, max_length=100),
    "start_date": rules.date(_l("Shown from"), required=True),
    "end_date": rules.date(_l("Shown until")),
}


class Announcement(DateRangeMixin, AuditColumnsMixin, AppModel):
    """A notice shown on the home page from `start_date` to `end_date` (open end: until removed)."""

    __tablename__ = "announcement"
    __label__ = _l("Announcement")
    __field_rules__ = ANNOUNCEMENT_RULES
    __record_rules__ = (rules.DatesInOrder("start_date", "end_date"),)
    __table_args__ = (
        Index("ix_announcement_period", "start_date", "end_date"),
        DateRangeMixin.range_check("ck_announcement_range"),
        # The body is several lines (a text rule refuses line breaks): only its length is ruled.
        CheckConstraint("length(body) BETWEEN 1 AND 2000", name="ck_announcement_body"),
        *rules.check_constraints("announcement", ANNOUNCEMENT_RULES),
        {"extend_existing": True, "sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    title: Mapped[str] = mapped_column(String(100), nullable=False)
    body: Mapped[str] = mapped_column(Text, nullable=False)

    @classmethod
    def scope_clause(cls, scope):
        """Addressed to everyone: any user with a data scope reads every announcement."""
        return true() if scope.has_any else false()

    @classmethod
    def shown_on(cls, day: dt.date):
        """Clause: announcements in their period on `day`."""
        return cls.covering(day)

    def __str__(self) -> str:
        return self.title
