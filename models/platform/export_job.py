"""Background export jobs: who asked, what, how far along, and the file."""

from __future__ import annotations

import datetime as dt

from flask_appbuilder.models.sqla import Model
from flask_babel import lazy_gettext as _l
from sqlalchemy import DateTime, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from core.dates import utcnow
from models.base import LabelledEnum


class ExportStatus(LabelledEnum):
    """Where an export job stands."""

    QUEUED = "queued", _l("Queued")
    RUNNING = "running", _l("Running")
    DONE = "done", _l("Done")
    FAILED = "failed", _l("Failed")


class ExportJob(Model):
    """One requested export; only its requester may see or download it."""

    __tablename__ = "export_job"
    __table_args__ = {"extend_existing": True}

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("ab_user.id", ondelete="CASCADE"), nullable=False, index=True)
    view: Mapped[str] = mapped_column(String(80), nullable=False)
    query_string: Mapped[str] = mapped_column(Text, nullable=False, default="")
    status: Mapped[str] = mapped_column(String(10), nullable=False)
    total_rows: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    done_rows: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    file_name: Mapped[str | None] = mapped_column(String(200))
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, nullable=False, default=utcnow)
    finished_at: Mapped[dt.datetime | None] = mapped_column(DateTime)

    @property
    def percent(self) -> int:
        if self.status == ExportStatus.DONE.value:
            return 100
        return min(99, int(100 * self.done_rows / self.total_rows)) if self.total_rows else 0
