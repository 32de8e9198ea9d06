"""Correction request tickets (資料更正申請單, Appendix 9): rules C5–C7, and the record of
every change a conversion (轉檔) made to a visit."""

from __future__ import annotations

import datetime as dt

from flask_appbuilder.models.sqla import Model
from flask_babel import lazy_gettext as _l
from sqlalchemy import (
    Boolean,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    select,
)  # fmt: skip
from sqlalchemy.orm import Mapped, mapped_column, relationship

from models.base import AppModel, AuditColumnsMixin, LabelledEnum, TransitionColumnsMixin
from models.cessation.visit import Quitter, Visit
from models.registry.institution import Institution


class TicketChannel(LabelledEnum):
    """How the form reached the office."""

    FAX = "fax", _l("Fax")
    EMAIL = "email", _l("E-mail")
    ONLINE = "online", _l("Online")


class TicketStatus(LabelledEnum):
    """Where a ticket stands: 收件 → 審核中 → 核准待轉檔 → 已轉檔 → 結案, or 退件."""

    RECEIVED = "received", _l("Received")
    IN_REVIEW = "in_review", _l("In review")
    APPROVED = "approved", _l("Approved, awaiting conversion")
    CONVERTED = "converted", _l("Converted")
    CLOSED = "closed", _l("Closed")
    RETURNED = "returned", _l("Returned")


class AttachmentKind(LabelledEnum):
    """What a scanned attachment is."""

    FORM = "form", _l("Stamped correction request form")
    CASE_RECORD = "case_record", _l("Case record form")
    OTHER = "other", _l("Other document")


class TicketCounter(Model):
    """The last ticket number of each ROC year; incremented in the filing transaction."""

    __tablename__ = "correction_ticket_counter"
    __table_args__ = {"extend_existing": True}

    year: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    last_number: Mapped[int] = mapped_column(Integer, nullable=False, default=0)


class CorrectionTicket(AuditColumnsMixin, AppModel):
    """One Appendix 9 form: an institution's request to re-date visit records of one quitter."""

    __tablename__ = "correction_ticket"
    __label__ = _l("Correction request")
    __table_args__ = (
        Index("ix_correction_ticket_status_received", "status", "received_on", "id"),
        Index("ix_correction_ticket_institution", "institution_id", "status"),
        {"extend_existing": True, "sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    #: ROC year and sequence, e.g. 114-000123.
    number: Mapped[str] = mapped_column(String(12), unique=True, nullable=False)
    institution_id: Mapped[int] = mapped_column(ForeignKey("institution.id"), nullable=False)
    quitter_id: Mapped[int] = mapped_column(ForeignKey("quitter.id"), nullable=False)
    channel: Mapped[str] = mapped_column(String(10), nullable=False)
    received_on: Mapped[dt.date] = mapped_column(Date, nullable=False)
    reason: Mapped[str] = mapped_column(Text, nullable=False, default="")
    institution_seal_checked: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    supervisor_seal_checked: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    status: Mapped[str] = mapped_column(
        String(12), nullable=False, default=TicketStatus.RECEIVED.value
    )
    return_reason: Mapped[str | None] = mapped_column(Text)
    converted_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    closed_at: Mapped[dt.datetime | None] = mapped_column(DateTime)

    institution: Mapped[Institution] = relationship()
    quitter: Mapped[Quitter] = relationship()
    lines: Mapped[list[CorrectionLine]] = relationship(
        back_populates="ticket", cascade="all, delete-orphan", order_by="CorrectionLine.position"
    )
    attachments: Mapped[list[CorrectionAttachment]] = relationship(
        back_populates="ticket", cascade="all, delete-orphan", order_by="CorrectionAttachment.id"
    )
    transitions: Mapped[list[TicketTransition]] = relationship(
        back_populates="ticket", cascade="all, delete-orphan", order_by="TicketTransition.id"
    )

    @classmethod
    def scope_clause(cls, scope):
        """Office: every ticket; a bureau its county's institutions; a facility its own."""
        return scope.institution_filter(cls.institution_id)

    @property
    def status_label(self) -> str:
        return TicketStatus.label_of(self.status)

    @property
    def channel_label(self) -> str:
        return TicketChannel.label_of(self.channel)

    @property
    def age_days(self) -> int:
        from core import clock

        return (clock.today() - self.received_on).days

    @property
    def displaced_dates(self) -> list[dt.date]:
        return [line.displaced_date for line in self.lines if line.displaced_date is not None]

    @property
    def reentry_pending(self) -> bool:
        """C6: converted, with a displaced visit the institution has still to re-enter."""
        return self.status == TicketStatus.CONVERTED.value and bool(self.displaced_dates)

    def __str__(self) -> str:
        return self.number


class CorrectionLine(AppModel):
    """One record the ticket re-dates: recorded date → the date it should have (C5/C6)."""

    __tablename__ = "correction_line"
    __label__ = _l("Correction line")
    __table_args__ = (
        UniqueConstraint("ticket_id", "visit_id", name="uq_correction_line_visit"),
        Index("ix_correction_line_visit", "visit_id"),
        {"extend_existing": True, "sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    ticket_id: Mapped[int] = mapped_column(
        ForeignKey("correction_ticket.id", ondelete="CASCADE"), nullable=False
    )
    position: Mapped[int] = mapped_column(Integer, nullable=False, default=1, info={"label": _l("Line number")})
    visit_id: Mapped[int] = mapped_column(ForeignKey("visit.id"), nullable=False)
    recorded_date: Mapped[dt.date] = mapped_column(Date, nullable=False, info={"label": _l("Date as recorded")})
    corrected_date: Mapped[dt.date] = mapped_column(Date, nullable=False, info={"label": _l("Corrected date")})
    #: C6: the record was overwritten; a real visit on this date must be re-entered.
    displaced_date: Mapped[dt.date | None] = mapped_column(Date, info={"label": _l("Date of the rewritten visit")})
    applied_at: Mapped[dt.datetime | None] = mapped_column(DateTime, info={"label": _l("Converted at")})

    ticket: Mapped[CorrectionTicket] = relationship(back_populates="lines")
    visit: Mapped[Visit] = relationship()

    @classmethod
    def scope_clause(cls, scope):
        return cls.ticket_id.in_(
            select(CorrectionTicket.id).where(CorrectionTicket.scope_clause(scope))
        )


class CorrectionAttachment(AuditColumnsMixin, AppModel):
    """A scanned document of a ticket (PDF, TIFF, JPEG or PNG), stored outside static/."""

    __tablename__ = "correction_attachment"
    __label__ = _l("Attachment")
    __table_args__ = (
        Index("ix_correction_attachment_ticket", "ticket_id"),
        {"extend_existing": True, "sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    ticket_id: Mapped[int] = mapped_column(
        ForeignKey("correction_ticket.id", ondelete="CASCADE"), nullable=False
    )
    kind: Mapped[str] = mapped_column(String(12), nullable=False, default=AttachmentKind.FORM.value, info={"label": _l("Attachment kind")})
    filename: Mapped[str] = mapped_column(String(200), nullable=False, info={"label": _l("File name")})
    stored_name: Mapped[str] = mapped_column(String(100), unique=True, nullable=False, info={"label": _l("Stored file name")})
    mime_type: Mapped[str] = mapped_column(String(40), nullable=False, info={"label": _l("File type")})
    size: Mapped[int] = mapped_column(Integer, nullable=False, info={"label": _l("File size (bytes)")})

    ticket: Mapped[CorrectionTicket] = relationship(back_populates="attachments")

    @classmethod
    def scope_clause(cls, scope):
        return cls.ticket_id.in_(
            select(CorrectionTicket.id).where(CorrectionTicket.scope_clause(scope))
        )

    @property
    def kind_label(self) -> str:
        return AttachmentKind.label_of(self.kind)


class TicketTransition(TransitionColumnsMixin, AppModel):
    """Who moved a ticket from one status to the next, and when (with a note)."""

    __tablename__ = "correction_transition"
    __label__ = _l("Ticket history")
    __table_args__ = (
        Index("ix_correction_transition_ticket", "ticket_id", "id"),
        {"extend_existing": True, "sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    ticket_id: Mapped[int] = mapped_column(
        ForeignKey("correction_ticket.id", ondelete="CASCADE"), nullable=False
    )

    ticket: Mapped[CorrectionTicket] = relationship(back_populates="transitions")

    @classmethod
    def scope_clause(cls, scope):
        return cls.ticket_id.in_(
            select(CorrectionTicket.id).where(CorrectionTicket.scope_clause(scope))
        )

    @property
    def to_label(self) -> str:
        return TicketStatus.label_of(self.to_status)
