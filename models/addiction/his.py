"""HIS orders (醫令, A6) imported from an institution's hospital information system, and each
institution's mapping of its order codes to subsidy items, with effective dates.

An order set (組套) is stored as its single orders. An order never creates a treatment record;
whether it can be claimed is computed (domain/addiction/claimable.py)."""

from __future__ import annotations

import datetime as dt

from flask_babel import lazy_gettext as _l
from sqlalchemy import CheckConstraint, Date, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from core.dates import to_roc
from models.addiction.case import Case, Patient
from models.base import AppModel, AuditColumnsMixin, DateRangeMixin, LabelledEnum
from models.registry.institution import Institution


class OrderSource(LabelledEnum):
    """How an order reached the system."""

    API = "api", _l("HIS Web API")
    UPLOAD = "upload", _l("File upload")
    #: A case-management fee the institution added itself, without an HIS order (A9).
    MANUAL = "manual", _l("Added by the institution")


class HisOrder(AuditColumnsMixin, AppModel):
    """One single HIS order line of a case, idempotent on (institution, HIS order id, line)."""

    __tablename__ = "his_order"
    __label__ = _l("HIS order")
    __table_args__ = (
        UniqueConstraint("institution_id", "his_order_id", "line", name="uq_his_order_line"),
        CheckConstraint("quantity >= 1 AND quantity <= 9999", name="ck_his_order_quantity"),
        CheckConstraint("line >= 0", name="ck_his_order_line"),
        Index("ix_his_order_case_date", "case_id", "executed_on"),
        Index("ix_his_order_patient_date", "patient_id", "executed_on"),
        Index("ix_his_order_institution_code", "institution_id", "order_code", "executed_on"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    institution_id: Mapped[int] = mapped_column(ForeignKey("institution.id"), nullable=False)
    #: The HIS's own order number and line; with the institution, the import's idempotency key.
    his_order_id: Mapped[str] = mapped_column(String(40), nullable=False)
    line: Mapped[int] = mapped_column(Integer, nullable=False)
    #: The case (at this institution, open on the execution date) and its patient, found from
    #: the person ID the order names; the patient repeats the case's for the per-person cap.
    case_id: Mapped[int] = mapped_column(ForeignKey("addiction_case.id"), nullable=False)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patient.id"), nullable=False)
    order_code: Mapped[str] = mapped_column(String(30), nullable=False)
    order_date: Mapped[dt.date] = mapped_column(Date, nullable=False)
    executed_on: Mapped[dt.date] = mapped_column(Date, nullable=False)
    quantity: Mapped[int] = mapped_column(Integer, nullable=False, default=1)
    #: The order set (組套) this single order came in, if any.
    order_set_code: Mapped[str | None] = mapped_column(String(30))
    source: Mapped[str] = mapped_column(String(10), nullable=False, default=OrderSource.API.value)
    #: Only for a manually added line: the subsidy item it claims (no mapping involved).
    item_code: Mapped[str | None] = mapped_column(String(30))

    institution: Mapped[Institution] = relationship()
    case: Mapped[Case] = relationship()
    patient: Mapped[Patient] = relationship()

    @classmethod
    def scope_clause(cls, scope):
        return scope.institution_filter(cls.institution_id)

    def __str__(self) -> str:
        return f"{self.his_order_id}-{self.line} {self.order_code} {to_roc(self.executed_on)}"


class OrderCodeMapping(DateRangeMixin, AuditColumnsMixin, AppModel):
    """An institution's HIS order code → a subsidy item code, from a date to an optional date.
    Two mappings of one code of one institution never overlap (domain/addiction/mapping.py)."""

    __tablename__ = "order_code_mapping"
    __label__ = _l("Order code mapping")
    __table_args__ = (
        DateRangeMixin.range_check("ck_order_code_mapping_dates"),
        Index("ix_order_code_mapping_code", "institution_id", "order_code", "start_date"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    institution_id: Mapped[int] = mapped_column(ForeignKey("institution.id"), nullable=False)
    order_code: Mapped[str] = mapped_column(String(30), nullable=False)
    item_code: Mapped[str] = mapped_column(String(30), nullable=False)

    institution: Mapped[Institution] = relationship()

    @classmethod
    def scope_clause(cls, scope):
        return scope.institution_filter(cls.institution_id)

    def __str__(self) -> str:
        end = to_roc(self.end_date) if self.end_date else ""
        return f"{self.order_code} → {self.item_code}（{to_roc(self.start_date)}–{end}）"
