"""The audit trail: one append-only table for every change to an application row."""

from __future__ import annotations

import datetime as dt

from flask_appbuilder.models.sqla import Model
from flask_babel import lazy_gettext as _l
from sqlalchemy import JSON, DateTime, Index, Integer, String, false, true
from sqlalchemy.orm import Mapped, mapped_column, relationship

from core.dates import utcnow


class AuditLog(Model):
    """Who changed which row of which model, when, with the values before and after."""

    __tablename__ = "audit_log"
    __label__ = _l("Audit log")
    __audited__ = False
    __table_args__ = (
        Index("ix_audit_model_key", "model", "row_key", "id"),
        Index("ix_audit_at", "at", "id"),
        Index("ix_audit_user", "user_id", "id"),
        Index("ix_audit_institution", "institution_id", "id"),
        {"extend_existing": True},
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow, nullable=False)
    # No foreign key: the trail must outlive the user row it names.
    user_id: Mapped[int | None] = mapped_column(Integer)
    username: Mapped[str | None] = mapped_column(String(100))
    action: Mapped[str] = mapped_column(String(30), nullable=False)
    model: Mapped[str] = mapped_column(String(60), nullable=False)
    row_key: Mapped[str] = mapped_column(String(60), nullable=False)
    before: Mapped[dict | None] = mapped_column(JSON)
    after: Mapped[dict | None] = mapped_column(JSON)
    source_ip: Mapped[str | None] = mapped_column(String(45))
    reference: Mapped[str | None] = mapped_column(String(60))
    #: The institution the changed row belongs to (the trail is filtered by it). No foreign
    #: key, like user_id: the entry outlives the institution.
    institution_id: Mapped[int | None] = mapped_column(Integer)
    institution = relationship(
        "Institution", primaryjoin="foreign(AuditLog.institution_id) == Institution.id",
        viewonly=True, lazy="select",
    )  # fmt: skip

    def changes(self) -> AuditLog:
        """The entry itself, for the show page's table of changed fields (a formatter renders it)."""
        return self

    @classmethod
    def scope_clause(cls, scope):
        # Only national users (the admin, by permission) read the trail.
        return true() if scope.national else false()

    @classmethod
    def defines_scope(cls) -> bool:
        return True
