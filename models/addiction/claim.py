"""Subsidy claims (補助金申請, A11): an institution's request to one scheme for one period, its
lines, the frozen snapshots it was printed and submitted as, the bureau's decision on each line
and the claim's status history (domain/addiction/claims.py)."""

from __future__ import annotations

import datetime as dt

from flask_babel import lazy_gettext as _l
from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    select,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from core.data import rules
from core.dates import to_roc, utcnow
from models.addiction.case import Case
from models.addiction.scheme import SubsidyScheme
from models.base import AppModel, AuditColumnsMixin, LabelledEnum, TransitionColumnsMixin
from models.registry.institution import Institution


class ClaimStatus(LabelledEnum):
    """Where a claim stands (A11): 草稿 → 已送出 → 審核中 → 核准 / 部分核准 / 退回 → 再送出."""

    DRAFT = "draft", _l("Draft")
    SUBMITTED = "submitted", _l("Submitted")
    IN_REVIEW = "in_review", _l("Under review")
    APPROVED = "approved", _l("Approved")
    PARTIAL = "partial", _l("Partially approved")
    RETURNED = "returned", _l("Returned for correction")
    RESUBMITTED = "resubmitted", _l("Resubmitted")


#: Statuses a bureau has the claim in hand (its queue); statuses that end a claim.
WAITING = (ClaimStatus.SUBMITTED.value, ClaimStatus.RESUBMITTED.value, ClaimStatus.IN_REVIEW.value)
DECIDED = (ClaimStatus.APPROVED.value, ClaimStatus.PARTIAL.value)


class ClaimPeriod(LabelledEnum):
    """A scheme's claim period (A11: a month, or a quarter where the scheme says so)."""

    MONTH = "month", _l("Monthly")
    QUARTER = "quarter", _l("Quarterly")


class LineReview(LabelledEnum):
    """The bureau's decision on one line."""

    PENDING = "pending", _l("Not yet reviewed")
    APPROVED = "approved", _l("Approved")
    RETURNED = "returned", _l("Returned for correction")


class ReturnReason(LabelledEnum):
    """Why the bureau returns a line (the reference list a return picks from)."""

    NO_RECORD = "no_record", _l("Treatment record missing or incomplete")
    NOT_ELIGIBLE = "not_eligible", _l("Case not eligible for this item")
    WRONG_AMOUNT = "wrong_amount", _l("Amount does not match the scheme")
    DUPLICATE = "duplicate", _l("Claimed twice")
    DOCUMENTS = "documents", _l("Supporting documents missing")
    OTHER = "other", _l("Other (see comment)")


CLAIM_RULES = {
    "status": rules.enum(_l("Claim status"), ClaimStatus),
    "period_kind": rules.enum(_l("Claim period"), ClaimPeriod),
}


class Claim(AuditColumnsMixin, AppModel):
    """One institution's claim to one scheme for one month or quarter, with its totals."""

    __tablename__ = "claim"
    __label__ = _l("Subsidy claim")
    __field_rules__ = CLAIM_RULES
    __table_args__ = (
        # One claim per institution, scheme and period: a second would claim the same lines.
        UniqueConstraint("institution_id", "scheme_code", "period_start", name="uq_claim_period"),
        CheckConstraint("period_end >= period_start", name="ck_claim_period"),
        CheckConstraint("claimed_amount >= 0 AND approved_amount >= 0 AND returned_amount >= 0",
                        name="ck_claim_amounts"),  # fmt: skip
        *rules.check_constraints("claim", CLAIM_RULES),
        Index("ix_claim_institution", "institution_id", "period_start"),
        Index("ix_claim_status_waiting", "status", "waiting_since"),
        Index("ix_claim_scheme_year", "scheme_code", "year", "status"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    institution_id: Mapped[int] = mapped_column(ForeignKey("institution.id"), nullable=False)
    #: The scheme claimed (its code: every version of the year pays its own lines).
    scheme_code: Mapped[str] = mapped_column(String(30), nullable=False)
    #: The scheme's version in force at the period's end (its name, owner and budget).
    scheme_id: Mapped[int] = mapped_column(ForeignKey("subsidy_scheme.id"), nullable=False)
    #: None: a central scheme; else the county owning the local scheme (scope reads it).
    scheme_county_id: Mapped[int | None] = mapped_column(ForeignKey("county.id"))
    year: Mapped[int] = mapped_column(Integer, nullable=False)
    period_kind: Mapped[str] = mapped_column(String(10), nullable=False, default=ClaimPeriod.MONTH.value)
    period_start: Mapped[dt.date] = mapped_column(Date, nullable=False)
    period_end: Mapped[dt.date] = mapped_column(Date, nullable=False)
    status: Mapped[str] = mapped_column(String(12), nullable=False, default=ClaimStatus.DRAFT.value)
    #: NT$ of the lines included; of the lines approved; of the lines returned.
    claimed_amount: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    approved_amount: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    returned_amount: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    #: How many times it was submitted (1 at the first 送出).
    submissions: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    #: When it last reached the bureau (送出 or 再送出): the queue's "days waiting".
    waiting_since: Mapped[dt.datetime | None] = mapped_column(DateTime)
    decided_at: Mapped[dt.datetime | None] = mapped_column(DateTime, info={"label": _l("Decided at")})

    institution: Mapped[Institution] = relationship()
    scheme: Mapped[SubsidyScheme] = relationship()
    lines: Mapped[list[ClaimLine]] = relationship(
        back_populates="claim", cascade="all, delete-orphan",
        order_by="(ClaimLine.executed_on, ClaimLine.case_id, ClaimLine.item_code)",
    )  # fmt: skip
    transitions: Mapped[list[ClaimTransition]] = relationship(
        back_populates="claim", cascade="all, delete-orphan", order_by="ClaimTransition.id"
    )
    snapshots: Mapped[list[ClaimSubmission]] = relationship(
        back_populates="claim", cascade="all, delete-orphan", order_by="ClaimSubmission.id"
    )

    @classmethod
    def scope_clause(cls, scope):
        """Institutions their own, a bureau its county's; national users the central schemes'."""
        if scope.national:
            return cls.scheme_county_id.is_(None)
        return scope.institution_filter(cls.institution_id)

    @property
    def status_label(self) -> str:
        return rules.enum_label(ClaimStatus, self.status)

    @property
    def period_label(self) -> str:
        from core.dates import roc_year

        if self.period_kind == ClaimPeriod.QUARTER.value:
            return f"{roc_year(self.year)}年第{(self.period_start.month - 1) // 3 + 1}季"
        return f"{roc_year(self.year)}年{self.period_start.month:02d}月"

    @property
    def editable(self) -> bool:
        return self.status in (ClaimStatus.DRAFT.value, ClaimStatus.RETURNED.value)

    def __str__(self) -> str:
        return f"{self.period_label} {self.scheme_code}"


class ClaimLine(AuditColumnsMixin, AppModel):
    """One claimable line (case, item, execution date) of a claim, and the bureau's decision."""

    __tablename__ = "claim_line"
    __label__ = _l("Claim line")
    __table_args__ = (
        # A line is claimed once, in one claim, whatever the claim's status (A10: never twice).
        UniqueConstraint("case_id", "item_code", "executed_on", name="uq_claim_line"),
        CheckConstraint("amount >= 0 AND approved_amount >= 0", name="ck_claim_line_amounts"),
        CheckConstraint("review IN ('pending', 'approved', 'returned')", name="ck_claim_line_review"),
        Index("ix_claim_line_claim", "claim_id", "executed_on"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    claim_id: Mapped[int] = mapped_column(ForeignKey("claim.id", ondelete="CASCADE"), nullable=False)
    #: The claim's institution, repeated so that scope reads one column.
    institution_id: Mapped[int] = mapped_column(ForeignKey("institution.id"), nullable=False)
    case_id: Mapped[int] = mapped_column(ForeignKey("addiction_case.id"), nullable=False)
    item_code: Mapped[str] = mapped_column(String(30), nullable=False, info={"label": _l("Item code")})
    item_name: Mapped[str] = mapped_column(String(100), nullable=False, info={"label": _l("Subsidy item")})
    executed_on: Mapped[dt.date] = mapped_column(Date, nullable=False, info={"label": _l("Execution date")})
    order_code: Mapped[str | None] = mapped_column(String(30), info={"label": _l("Order code")})
    unit_amount: Mapped[int] = mapped_column(Integer, nullable=False, info={"label": _l("Unit amount (NT$)")})
    #: What the engine allows (the cap may cut it below the unit amount).
    amount: Mapped[int] = mapped_column(Integer, nullable=False, info={"label": _l("Claimed amount (NT$)")})
    #: False: left out by the institution before submitting (kept, so it can be put back).
    included: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True, info={"label": _l("Included in the claim")})
    review: Mapped[str] = mapped_column(String(10), nullable=False, default=LineReview.PENDING.value, info={"label": _l("Review")})
    return_reason: Mapped[str | None] = mapped_column(String(20), info={"label": _l("Reason for return")})
    review_comment: Mapped[str | None] = mapped_column(Text, info={"label": _l("Review comment")})
    #: The institution's 補正說明 for a returned line.
    correction_note: Mapped[str | None] = mapped_column(Text, info={"label": _l("Correction note")})
    #: The line's fingerprint when it was returned: resubmitted unchanged, it is refused.
    returned_fingerprint: Mapped[str | None] = mapped_column(String(64), info={"label": _l("Line as returned (fingerprint)")})
    approved_amount: Mapped[int] = mapped_column(Integer, nullable=False, default=0, info={"label": _l("Approved amount (NT$)")})

    claim: Mapped[Claim] = relationship(back_populates="lines")
    case: Mapped[Case] = relationship()

    @classmethod
    def scope_clause(cls, scope):
        return cls.claim_id.in_(select(Claim.id).where(Claim.scope_clause(scope)))

    def fingerprint(self) -> str:
        """What the bureau decided on: the line's content and the institution's note."""
        import hashlib

        text = "|".join(str(v) for v in (self.case_id, self.item_code, self.executed_on.isoformat(), self.order_code,
                                         self.unit_amount, self.amount, (self.correction_note or "").strip()))  # fmt: skip
        return hashlib.sha256(text.encode()).hexdigest()

    def __str__(self) -> str:
        return f"{to_roc(self.executed_on)} {self.item_code}"


class SnapshotKind(LabelledEnum):
    """A snapshot printed for the institution's sign-off, or sent to the bureau."""

    PRINT = "print", _l("Printed for sign-off")
    SUBMISSION = "submission", _l("Submitted")


class ClaimSubmission(AppModel):
    """A frozen snapshot of a claim (its lines as JSON and their sha256), printed or submitted."""

    __tablename__ = "claim_submission"
    __label__ = _l("Claim snapshot")
    __table_args__ = (
        UniqueConstraint("claim_id", "kind", "number", name="uq_claim_submission"),
        CheckConstraint("kind IN ('print', 'submission')", name="ck_claim_submission_kind"),
        Index("ix_claim_submission_claim", "claim_id", "id"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    claim_id: Mapped[int] = mapped_column(ForeignKey("claim.id", ondelete="CASCADE"), nullable=False)
    kind: Mapped[str] = mapped_column(String(12), nullable=False, info={"label": _l("Snapshot kind")})
    #: 1, 2 …: the submission's number (or the print's, counted apart).
    number: Mapped[int] = mapped_column(Integer, nullable=False, info={"label": _l("Submission number")})
    at: Mapped[dt.datetime] = mapped_column(DateTime, nullable=False, default=utcnow, info={"label": _l("Time")})
    user_id: Mapped[int | None] = mapped_column(ForeignKey("ab_user.id", ondelete="SET NULL"))
    username: Mapped[str | None] = mapped_column(String(100), info={"label": _l("User")})
    #: The header and lines, canonical JSON (sorted keys, no spaces): what the hash covers.
    content: Mapped[str] = mapped_column(Text, nullable=False, info={"label": _l("Snapshot content")})
    sha256: Mapped[str] = mapped_column(String(64), nullable=False, info={"label": _l("Snapshot checksum (SHA-256)")})
    total: Mapped[int] = mapped_column(Integer, nullable=False, info={"label": _l("Total (NT$)")})
    lines: Mapped[int] = mapped_column(Integer, nullable=False, info={"label": _l("Lines")})

    claim: Mapped[Claim] = relationship(back_populates="snapshots")

    @classmethod
    def scope_clause(cls, scope):
        return cls.claim_id.in_(select(Claim.id).where(Claim.scope_clause(scope)))


class ClaimReview(AppModel):
    """The bureau's decision on one line in one round: approved, or returned with a reason."""

    __tablename__ = "claim_review"
    __label__ = _l("Claim line review")
    __table_args__ = (
        CheckConstraint("decision IN ('approved', 'returned')", name="ck_claim_review_decision"),
        Index("ix_claim_review_line", "line_id", "id"),
        Index("ix_claim_review_claim", "claim_id", "id"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    claim_id: Mapped[int] = mapped_column(ForeignKey("claim.id", ondelete="CASCADE"), nullable=False)
    line_id: Mapped[int] = mapped_column(ForeignKey("claim_line.id", ondelete="CASCADE"), nullable=False)
    #: The submission reviewed (1 for the first 送出).
    submission: Mapped[int] = mapped_column(Integer, nullable=False, info={"label": _l("Submission number")})
    decision: Mapped[str] = mapped_column(String(10), nullable=False, info={"label": _l("Decision")})
    reason: Mapped[str | None] = mapped_column(String(20), info={"label": _l("Reason for return")})
    comment: Mapped[str | None] = mapped_column(Text, info={"label": _l("Comment")})
    at: Mapped[dt.datetime] = mapped_column(DateTime, nullable=False, default=utcnow, info={"label": _l("Time")})
    user_id: Mapped[int | None] = mapped_column(ForeignKey("ab_user.id", ondelete="SET NULL"))
    username: Mapped[str | None] = mapped_column(String(100), info={"label": _l("User")})

    line: Mapped[ClaimLine] = relationship()

    @classmethod
    def scope_clause(cls, scope):
        return cls.claim_id.in_(select(Claim.id).where(Claim.scope_clause(scope)))


class ClaimTransition(TransitionColumnsMixin, AppModel):
    """Who moved a claim from one status to the next, and when (with a note)."""

    __tablename__ = "claim_transition"
    __label__ = _l("Claim history")
    __table_args__ = (Index("ix_claim_transition_claim", "claim_id", "id"), {"sqlite_autoincrement": True})

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    claim_id: Mapped[int] = mapped_column(ForeignKey("claim.id", ondelete="CASCADE"), nullable=False)

    claim: Mapped[Claim] = relationship(back_populates="transitions")

    @classmethod
    def scope_clause(cls, scope):
        return cls.claim_id.in_(select(Claim.id).where(Claim.scope_clause(scope)))


__all__ = ["Claim", "ClaimLine", "ClaimPeriod", "ClaimReview", "ClaimStatus", "ClaimSubmission", "ClaimTransition",
           "DECIDED", "LineReview", "ReturnReason", "SnapshotKind", "WAITING"]  # fmt: skip
