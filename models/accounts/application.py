"""Accounts: online applications (A13), login throttling, server-side sessions, one-time links."""

from __future__ import annotations

import datetime as dt

from flask_babel import lazy_gettext as _l
from sqlalchemy import DateTime, ForeignKey, Index, Integer, String, Text, and_, false, true
from sqlalchemy.orm import Mapped, mapped_column, relationship

from models.base import AppModel, AuditColumnsMixin, LabelledEnum
from models.registry.institution import Institution
from models.registry.reference import County


class ApplicationStatus(LabelledEnum):
    """Where an account application stands."""

    PENDING = "pending", _l("Pending review")
    APPROVED = "approved", _l("Approved")
    REJECTED = "rejected", _l("Rejected")


class RequestedRole(LabelledEnum):
    """The role an applicant asks for; maps to a role of core/security/roles.py."""

    FACILITY = "facility", _l("Facility staff")
    BUREAU = "bureau", _l("Health bureau staff")
    OFFICE = "office", _l("Cessation management office")
    MINISTRY = "ministry", _l("Ministry of Health and Welfare")
    #: The addiction programme's roles (A1).
    TREATMENT = "treatment", _l("Addiction treatment institution staff")
    ADDICTION_BUREAU = "addiction_bureau", _l("County bureau / drug-prevention centre (addiction)")
    ADDICTION_MINISTRY = "addiction_ministry", _l("Ministry of Health and Welfare (addiction)")


class AccountApplication(AuditColumnsMixin, AppModel):
    """An online application for an account, approved by the bureau or the admin (A13)."""

    __tablename__ = "account_application"
    __label__ = _l("Account application")
    __table_args__ = (
        Index("ix_application_status_created", "status", "created_on"),
        Index("ix_application_institution", "institution_id"),
        Index("ix_application_email", "email"),
        {"extend_existing": True, "sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    applicant_name: Mapped[str] = mapped_column(String(50), nullable=False)
    email: Mapped[str] = mapped_column(String(120), nullable=False)
    phone: Mapped[str] = mapped_column(String(30), nullable=False)
    job_title: Mapped[str] = mapped_column(String(50), nullable=False)
    requested_role: Mapped[str] = mapped_column(String(20), nullable=False)
    institution_id: Mapped[int | None] = mapped_column(ForeignKey("institution.id"))
    county_id: Mapped[int | None] = mapped_column(ForeignKey("county.id"))
    supervisor_name: Mapped[str] = mapped_column(String(50), nullable=False)
    form_file: Mapped[str] = mapped_column(String(100), nullable=False, info={"label": _l("Application form file")})
    form_filename: Mapped[str] = mapped_column(String(200), nullable=False)
    status: Mapped[str] = mapped_column(
        String(10), nullable=False, default=ApplicationStatus.PENDING.value, index=True
    )
    decided_by_id: Mapped[int | None] = mapped_column(ForeignKey("ab_user.id", ondelete="SET NULL"), info={"label": _l("Decided by")})
    decided_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    reject_reason: Mapped[str | None] = mapped_column(Text)
    user_id: Mapped[int | None] = mapped_column(
        ForeignKey("ab_user.id", ondelete="SET NULL"), index=True
    )
    submitted_ip: Mapped[str | None] = mapped_column(String(45), info={"label": _l("Submitted from IP")})
    #: Addiction treatment staff (A1, A14): whose staff profile the approved account links
    #: to (found or registered by this ID), and their professions (comma-separated values).
    national_id: Mapped[str | None] = mapped_column(String(10))
    professions: Mapped[str | None] = mapped_column(String(200))

    institution: Mapped[Institution | None] = relationship()
    county: Mapped[County | None] = relationship()

    @classmethod
    def scope_clause(cls, scope):
        """National (the admin) sees every application; a bureau its county's facility staff."""
        if scope.national:
            return true()
        if scope.county_ids:
            return and_(
                cls.requested_role == RequestedRole.FACILITY.value,
                scope.institution_filter(cls.institution_id),
            )
        return false()

    @property
    def form_link(self):
        """A link to the uploaded PDF (served only within scope, by the review view)."""
        from flask import url_for
        from markupsafe import Markup

        url = url_for("AccountApplicationView.application_form", pk=self.id)
        return Markup('<a href="{}" target="_blank">{}</a>').format(url, self.form_filename)

    @property
    def status_label(self) -> str:
        return ApplicationStatus.label_of(self.status)

    @property
    def requested_role_label(self) -> str:
        return RequestedRole.label_of(self.requested_role)

    def __str__(self) -> str:
        return f"{self.applicant_name} <{self.email}>"
