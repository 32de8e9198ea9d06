"""Programme designations of institutions (A1): which institutions take part in the addiction
programme, as what, designated by whom, for which period."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from sqlalchemy import CheckConstraint, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from core.data import rules
from models.base import AppModel, AuditColumnsMixin, DateRangeMixin, LabelledEnum
from models.registry.institution import Institution
from models.registry.reference import County


class DesignationKind(LabelledEnum):
    """The seed's kinds of addiction-programme institution (A1)."""

    DRUG_TREATMENT = "drug_treatment", _l("Designated drug-addiction treatment institution")
    ALCOHOL_TREATMENT = "alcohol_treatment", _l("Alcohol-addiction treatment service institution")
    PSYCHOTHERAPY_CLINIC = "psychotherapy_clinic", _l("Approved psychotherapy clinic")
    SOCIAL_WORK_OFFICE = "social_work_office", _l("Approved social-worker office")


#: Who designates each kind: the Ministry nationally, a county bureau for its own county.
DESIGNATED_BY_COUNTY = {DesignationKind.ALCOHOL_TREATMENT.value}

DESIGNATION_RULES = {
    "kind": rules.enum(_l("Designation"), DesignationKind),
    "document_number": rules.text(_l("Designation document no."), max_length=50),
    "start_date": rules.date(_l("Start date"), required=True),
    "end_date": rules.date(_l("End date")),
}


class Designation(DateRangeMixin, AuditColumnsMixin, AppModel):
    """An institution designated for the addiction programme as one kind, for a period (A1).

    An alcohol-treatment designation is a county bureau's, for that county (`county_id`);
    the others are the Ministry's (`county_id` empty)."""

    __tablename__ = "designation"
    __label__ = _l("Programme designation")
    __field_rules__ = DESIGNATION_RULES
    __record_rules__ = (rules.DatesInOrder("start_date", "end_date"),)
    __table_args__ = (
        DateRangeMixin.range_check("ck_designation_dates"),
        *rules.check_constraints("designation", DESIGNATION_RULES),
        CheckConstraint(
            "(kind = 'alcohol_treatment') = (county_id IS NOT NULL)", name="ck_designation_county"
        ),
        Index("ix_designation_institution", "institution_id", "start_date"),
        Index("ix_designation_county", "county_id", "kind"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    institution_id: Mapped[int] = mapped_column(
        ForeignKey("institution.id", ondelete="CASCADE"), nullable=False
    )
    kind: Mapped[str] = mapped_column(String(30), nullable=False)
    #: The designating county (alcohol treatment only); none: designated by the Ministry.
    county_id: Mapped[int | None] = mapped_column(ForeignKey("county.id"))
    document_number: Mapped[str | None] = mapped_column(String(50))

    institution: Mapped[Institution] = relationship()
    county: Mapped[County | None] = relationship()

    @classmethod
    def scope_clause(cls, scope):
        return scope.institution_filter(cls.institution_id)

    @property
    def kind_label(self) -> str:
        return rules.enum_label(DesignationKind, self.kind)

    def __str__(self) -> str:
        return f"{self.institution} {self.kind_label}"
