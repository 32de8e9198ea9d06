"""Quitters (戒菸者) and their visit records (就醫資料), rules C1–C4 and C8."""

from __future__ import annotations

import datetime as dt

from flask_babel import lazy_gettext as _l
from sqlalchemy import (
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    true,
)  # fmt: skip
from sqlalchemy.orm import Mapped, mapped_column, relationship

from core.data import rules
from core.dates import TAIPEI
from core.validators import mask_personal_id
from models.base import AppModel, AuditColumnsMixin, LabelledEnum
from models.registry.institution import Institution
from models.registry.person import PersonKind, PersonMixin
from models.registry.practitioner import Practitioner

#: C1: a visit is entered by the 20th of the month after the visit month, 23:59:59 Taipei.
#: The calendar arithmetic lives with the table because a stored column (entry_timeliness)
#: takes its values and every screen shows it; the rules acting on it are in
#: domain/cessation/visits.py.
DEADLINE_DAY = 20


class Timeliness(LabelledEnum):
    """How promptly a visit was entered (C1, C8)."""

    WITHIN_24H = "within_24h", _l("Within 24 hours")
    BEFORE_DEADLINE = "before_deadline", _l("Late, within the deadline")
    AFTER_DEADLINE = "after_deadline", _l("After the deadline")


def entry_deadline(visit_date: dt.date) -> dt.datetime:
    """The 20th of the month after the visit month, 23:59:59 Asia/Taipei (C1)."""
    first_of_next = (visit_date.replace(day=1) + dt.timedelta(days=32)).replace(day=1)
    return dt.datetime.combine(
        first_of_next.replace(day=DEADLINE_DAY), dt.time(23, 59, 59), tzinfo=TAIPEI
    )


def month_deadline(year: int, month: int) -> dt.datetime:
    return entry_deadline(dt.date(year, month, 1))


def entry_open(visit_date: dt.date, at: dt.datetime | None = None) -> bool:
    """The institution may still add, change or delete a visit of this date itself (C2/C3)."""
    from core import clock

    return (at or clock.now()) <= entry_deadline(visit_date)


class LockState(LabelledEnum):
    """Whether a record may still be changed by its institution (C2), or why not (C3, C5)."""

    OPEN = "open", _l("Open for changes")
    LOCKED = "locked", _l("Locked")
    CORRECTED = "corrected", _l("Corrected")


class LockStatus:
    """A record's lock state as every screen shows it: a badge, and whether edit is offered."""

    __slots__ = ("state", "until")

    def __init__(self, state: LockState, until: dt.datetime | None = None):
        self.state, self.until = state, until

    @property
    def editable(self) -> bool:
        """Edit and delete are offered (the server checks again on every write)."""
        return self.state is LockState.OPEN

    def __str__(self) -> str:
        from flask_babel import gettext

        from core.dates import to_roc

        if self.state is LockState.OPEN:
            return gettext("Open for changes until %(date)s", date=to_roc(self.until.date()))
        return str(self.state.label)

    def __html__(self) -> str:
        from markupsafe import escape

        css = {"open": "label-success", "locked": "label-default", "corrected": "label-info"}[self.state.value]
        return f'<span class="label {css} lock-status lock-{self.state.value}">{escape(str(self))}</span>'


def _aware(entered_at: dt.datetime) -> dt.datetime:
    return entered_at if entered_at.tzinfo else entered_at.replace(tzinfo=dt.UTC)


def timeliness(visit_date: dt.date, entered_at: dt.datetime) -> Timeliness:
    """Within 24 h (by the end of the next day), late but within the deadline, or after it."""
    entered = _aware(entered_at).astimezone(TAIPEI)
    next_day_end = dt.datetime.combine(visit_date + dt.timedelta(days=1), dt.time(23, 59, 59), tzinfo=TAIPEI)
    if entered <= next_day_end:
        return Timeliness.WITHIN_24H
    if entered <= entry_deadline(visit_date):
        return Timeliness.BEFORE_DEADLINE
    return Timeliness.AFTER_DEADLINE


class Sex(LabelledEnum):
    """Sex as recorded on the national ID."""

    MALE = "M", _l("Male")
    FEMALE = "F", _l("Female")


QUITTER_RULES = {
    "national_id": rules.personal_id(_l("National ID / resident certificate no.")),
    "name": rules.text(_l("Full name"), required=True, max_length=50),
    "sex": rules.enum(_l("Sex"), Sex),
    "birth_date": rules.date(_l("Birth date"), required=True, max_date=rules.today),
}


class Quitter(PersonMixin, AuditColumnsMixin, AppModel):
    """A person in cessation treatment; one verified row per national ID, nationwide."""

    __tablename__ = "quitter"
    __label__ = _l("Quitter")
    __person_kind__ = PersonKind.QUITTER.value
    #: Besides the ID, what an institution must know to be linked to an existing quitter.
    __identity_fields__ = ("name", "sex", "birth_date")
    __identity_enums__ = {"sex": Sex}
    #: What every path accepts (core/data/rules.py); the CHECK constraints below back it.
    __field_rules__ = QUITTER_RULES
    __table_args__ = (
        Index("ix_quitter_name", "name"),
        Index("ix_quitter_created_by", "created_by_id"),
        *PersonMixin.person_table_args("quitter"),
        *rules.check_constraints("quitter", QUITTER_RULES),
        {"extend_existing": True, "sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    national_id: Mapped[str] = mapped_column(String(10), nullable=False)
    name: Mapped[str] = mapped_column(String(50), nullable=False)
    sex: Mapped[str] = mapped_column(String(1), nullable=False)
    birth_date: Mapped[dt.date] = mapped_column(Date, nullable=False)
    #: Touched by every visit entry: locking this row serialises the 5-day check (C4).
    last_entry_at: Mapped[dt.datetime | None] = mapped_column(DateTime, info={"label": _l("Last entry at")})

    @classmethod
    def scope_clause(cls, scope):
        """Quitters linked to an institution in scope (a visit there, or registered there)."""
        if scope.national:
            return true()
        # `id IN (links of the scope's institutions)`: one range of ix_person_link_scope,
        # smaller than the visits it replaces (one row per quitter and institution).
        return cls.linked_in_scope(scope)

    @property
    def national_id_masked(self) -> str:
        return mask_personal_id(self.national_id)

    @property
    def sex_label(self) -> str:
        return rules.enum_label(Sex, self.sex)

    def __str__(self) -> str:
        return f"{self.name}（{self.national_id_masked}）"


class Medication(LabelledEnum):
    """The programme's cessation medicines. The codes are the English names stored before the
    list existed, so stored rows, exports and the API keep their values; people see zh_TW."""

    VARENICLINE = "Varenicline", _l("Varenicline")
    BUPROPION = "Bupropion", _l("Bupropion")
    NICOTINE_PATCH = "Nicotine patch", _l("Nicotine patch")
    NICOTINE_GUM = "Nicotine gum", _l("Nicotine gum")
    NICOTINE_LOZENGE = "Nicotine lozenge", _l("Nicotine lozenge")
    NICOTINE_INHALER = "Nicotine inhaler", _l("Nicotine inhaler")
    NICOTINE_SPRAY = "Nicotine oral spray", _l("Nicotine oral spray")


def medication_code(value):
    """The code of a medication given as its code, its zh_TW label or its English name, in
    any case and width (a batch file or an API caller may write either); else the value."""
    import unicodedata

    if not isinstance(value, str):
        return value
    text = " ".join(unicodedata.normalize("NFKC", value).split())
    if not text:
        return None
    names = _medication_names()
    found = names.get(text.casefold())
    if found is None and text.endswith(")") and "(" in text:
        # 尼古丁貼片 (Nicotine patch): the name, or the bracketed one, names the medicine.
        outer, inner = text[:-1].split("(", 1)
        found = names.get(outer.strip().casefold()) or names.get(inner.strip().casefold())
    return found or text


def _medication_names() -> dict[str, str]:
    """Every accepted spelling (casefolded) → code: codes, zh_TW labels, labels without the
    bracketed English name (戒必適 for 戒必適 (Varenicline))."""
    import unicodedata

    from flask_babel import force_locale

    names = {m.value.casefold(): m.value for m in Medication}
    try:
        with force_locale("zh_TW"):
            labels = {m.value: unicodedata.normalize("NFKC", str(m.label)) for m in Medication}
    except RuntimeError:  # outside an app context there is no catalog to read
        return names
    for code, label in labels.items():
        names.setdefault(label.casefold(), code)
        names.setdefault(label.split("(")[0].strip().casefold(), code)
    return names


def _medication_rule():
    from dataclasses import replace

    return replace(rules.enum(_l("Medication"), Medication, required=False), normalise=medication_code)


VISIT_RULES = {
    "visit_date": rules.date(_l("Visit date"), required=True),
    "medication_name": _medication_rule(),
    "medication_days": rules.integer(_l("Medication days"), 1, 365),
    "education_minutes": rules.integer(_l("Education minutes"), 1, 600),
}


class Visit(AuditColumnsMixin, AppModel):
    """One visit: medication (藥品, 天數) and/or education (衛教, minutes)."""

    __tablename__ = "visit"
    __label__ = _l("Visit record")
    __field_rules__ = VISIT_RULES
    __table_args__ = (
        CheckConstraint(
            "medication_days IS NOT NULL OR education_minutes IS NOT NULL", name="ck_visit_service"
        ),
        *rules.check_constraints("visit", VISIT_RULES),
        CheckConstraint(
            "entry_timeliness IN ('within_24h', 'before_deadline', 'after_deadline')",
            name="ck_visit_entry_timeliness",
        ),
        Index("ix_visit_institution_date", "institution_id", "visit_date", "id"),
        Index("ix_visit_date", "visit_date", "id"),
        #: Covers the yearly statistics (C9): a year's visits are read from the index alone.
        Index(
            "ix_visit_statistics", "visit_date", "institution_id", "quitter_id", "practitioner_id",
            "medication_days", "education_minutes",
        ),  # fmt: skip
        Index("ix_visit_quitter_date", "quitter_id", "visit_date"),
        Index("ix_visit_practitioner_date", "practitioner_id", "visit_date"),
        Index("ix_visit_institution_entered", "institution_id", "entered_at"),
        # The quitters of a scope's institutions (Quitter.scope_clause), read from the index.
        Index("ix_visit_institution_quitter", "institution_id", "quitter_id"),
        Index("ix_visit_timeliness", "entry_timeliness", "institution_id", "visit_date"),
        {"extend_existing": True, "sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    institution_id: Mapped[int] = mapped_column(ForeignKey("institution.id"), nullable=False)
    practitioner_id: Mapped[int] = mapped_column(ForeignKey("practitioner.id"), nullable=False)
    quitter_id: Mapped[int] = mapped_column(ForeignKey("quitter.id"), nullable=False)
    #: active_history: a change loads the date it replaces, so the statistics cache (C9)
    #: knows both years a re-dated visit touches.
    visit_date: Mapped[dt.date] = mapped_column(Date, nullable=False, active_history=True)
    medication_name: Mapped[str | None] = mapped_column(String(50))
    medication_days: Mapped[int | None] = mapped_column(Integer)
    education_minutes: Mapped[int | None] = mapped_column(Integer)
    #: Server time (UTC) of entry; with the deadline it decides timeliness and C8.
    entered_at: Mapped[dt.datetime] = mapped_column(DateTime, nullable=False)
    entered_by_id: Mapped[int | None] = mapped_column(ForeignKey("ab_user.id", ondelete="SET NULL"), info={"label": _l("Entered by")})
    #: within_24h / before_deadline / after_deadline, fixed when the record is written, so
    #: the fee-deduction list (C8) is an index lookup rather than date arithmetic per row.
    entry_timeliness: Mapped[str] = mapped_column(String(16), nullable=False, default="within_24h", info={"label": _l("Entry timeliness"), "enum": Timeliness})
    #: The date first recorded, kept when a correction ticket re-dates the record (C5/C6).
    original_date: Mapped[dt.date | None] = mapped_column(Date)
    #: The correction ticket whose conversion last re-dated this record.
    corrected_by_ticket_id: Mapped[int | None] = mapped_column(
        ForeignKey("correction_ticket.id", ondelete="SET NULL", name="fk_visit_corrected_by_ticket"),
        index=True,
    )

    institution: Mapped[Institution] = relationship()
    practitioner: Mapped[Practitioner] = relationship()
    quitter: Mapped[Quitter] = relationship()
    #: Named, not imported: the ticket model imports this one (a ticket lists its visits).
    corrected_by_ticket = relationship("CorrectionTicket", viewonly=True)

    #: A visit links its quitter to its institution (models/registry/person.py).
    __person_links__ = ((PersonKind.QUITTER.value, "quitter_id", "institution_id"),)

    @classmethod
    def scope_clause(cls, scope):
        return scope.institution_filter(cls.institution_id)

    @property
    def entry_deadline(self) -> dt.datetime:
        return entry_deadline(self.visit_date)

    @property
    def lock_status(self) -> LockStatus:
        """開放修改至… until the deadline (C2); then 已更正 if a ticket re-dated it, else 已鎖定 (C3)."""
        if entry_open(self.visit_date):
            return LockStatus(LockState.OPEN, entry_deadline(self.visit_date))
        if self.corrected_by_ticket_id is not None:
            return LockStatus(LockState.CORRECTED)
        return LockStatus(LockState.LOCKED)

    @property
    def medication_label(self) -> str:
        """The medication in zh_TW (a value from before the list shows as invalid, never raises)."""
        return rules.enum_label(Medication, self.medication_name)

    @property
    def timeliness(self):
        if self.corrected_by_ticket_id is not None:
            # A converted record keeps the classification the conversion gave it (C8).
            return Timeliness(self.entry_timeliness)
        return timeliness(self.visit_date, self.entered_at)

    @property
    def timeliness_label(self) -> str:
        if self.corrected_by_ticket_id is not None:
            return rules.enum_label(Timeliness, self.entry_timeliness)
        return str(self.timeliness.label)

    @property
    def corrected_by_number(self) -> str:
        """The number of the correction ticket that re-dated this record, if any."""
        if self.corrected_by_ticket_id is None:
            return ""
        return self.corrected_by_ticket.number

    @property
    def services_text(self) -> str:
        from flask_babel import gettext

        parts = []
        if self.medication_days is not None:
            parts.append(gettext("Medication %(name)s %(days)d days", name=self.medication_label, days=self.medication_days))
        if self.education_minutes is not None:
            parts.append(gettext("Education %(minutes)d min", minutes=self.education_minutes))
        return "、".join(parts)

    @property
    def has_medication(self) -> bool:
        return self.medication_days is not None

    @property
    def has_education(self) -> bool:
        return self.education_minutes is not None

    def __str__(self) -> str:
        from core.dates import to_roc

        return f"{to_roc(self.visit_date)} {self.quitter}"
