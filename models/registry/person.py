"""Persons shared across institutions: identity status, and the explicit person–institution link.

A person (a quitter, a practitioner, later an addiction case's patient) is national: one row
per national ID. Scope is per institution, so what an institution may see of a person is
decided by one relation, `PersonLink`: an institution sees a person because it serves them
(a visit, a service assignment, a registration it made after matching the identity data),
never because it knows an internal id.
"""

from __future__ import annotations

import datetime as dt

from flask_babel import lazy_gettext as _l
from sqlalchemy import (
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
    select,
)
from sqlalchemy.orm import Mapped, declared_attr, mapped_column

from core.dates import utcnow
from models.base import AppModel, LabelledEnum
from models.registry.institution import Institution


class IdentityStatus(LabelledEnum):
    """Whether a person row is the national record of its ID or a registration that did not match it."""

    VERIFIED = "verified", _l("Verified")
    #: Registered by an institution with identity data that differ from the national record
    #: of the same ID. Kept apart (the institution sees what it typed, nothing of the other
    #: record) until the office reconciles the two.
    CONFLICT = "conflict", _l("Identity data differ from the national record")


class PersonKind(LabelledEnum):
    """Which national person table a link points into."""

    QUITTER = "quitter", _l("Quitter")
    PRACTITIONER = "practitioner", _l("Practitioner")
    PATIENT = "patient", _l("Patient")


class PersonLink(AppModel):
    """An institution serves (or served) a person: the one relation person scope reads."""

    __tablename__ = "person_link"
    __label__ = _l("Person–institution link")
    #: Written by the session hook on every visit/assignment; the audit trail would double
    #: every visit entry without telling anything the visit's own audit row does not.
    __audited__ = False
    __table_args__ = (
        UniqueConstraint("person_kind", "person_id", "institution_id", name="uq_person_link"),
        Index("ix_person_link_scope", "person_kind", "institution_id", "person_id"),
        CheckConstraint(
            "person_kind IN ('quitter', 'practitioner', 'patient')", name="ck_person_link_kind"
        ),
        {"extend_existing": True},
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    person_kind: Mapped[str] = mapped_column(String(20), nullable=False)
    person_id: Mapped[int] = mapped_column(Integer, nullable=False)
    institution_id: Mapped[int] = mapped_column(
        ForeignKey("institution.id", ondelete="CASCADE"), nullable=False
    )
    #: visit / assignment / registration: what made the institution serve the person.
    source: Mapped[str] = mapped_column(String(20), nullable=False)
    created_on: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow, nullable=False)

    @classmethod
    def scope_clause(cls, scope):
        return scope.institution_filter(cls.institution_id)


class PersonMixin:
    """Identity columns and rules shared by every national person table.

    `__person_kind__` names the table in person links; `__identity_fields__` are the data an
    institution must give, besides the national ID, to be linked to an existing person.
    """

    __person_kind__: str = ""
    __identity_fields__: tuple[str, ...] = ("name",)

    @declared_attr
    def identity_status(cls) -> Mapped[str]:
        return mapped_column(
            String(10), nullable=False, default=IdentityStatus.VERIFIED.value,
            server_default=IdentityStatus.VERIFIED.value, info={"label": _l("Identity status")},
        )  # fmt: skip

    @classmethod
    def person_table_args(cls, table: str) -> tuple:
        """National ID unique among verified rows; conflict rows may repeat it (see IdentityStatus)."""
        return (
            Index(f"ix_{table}_national_id", "national_id"),
            Index(
                f"uq_{table}_national_id_verified", "national_id", unique=True,
                sqlite_where=_verified_only(), postgresql_where=_verified_only(),
            ),  # fmt: skip
            CheckConstraint(
                "identity_status IN ('verified', 'conflict')", name=f"ck_{table}_identity_status"
            ),
        )

    @property
    def national_record(self) -> str:
        """The verified record of the same ID, as the office compares it with a conflict row."""
        from core.extensions import db

        if self.identity_status == IdentityStatus.VERIFIED.value:
            return ""
        cls = type(self)
        other = db.session.scalar(
            select(cls).where(
                cls.national_id == self.national_id,
                cls.identity_status == IdentityStatus.VERIFIED.value,
            )
        )
        if other is None:
            return ""
        return " ".join(other.identity_text(f) for f in cls.__identity_fields__)

    def identity_text(self, field: str) -> str:
        """One identity field as people read it (ROC dates, enum labels)."""
        from core.dates import to_roc

        value = getattr(self, field)
        enum = getattr(type(self), "__identity_enums__", {}).get(field)
        if enum is not None:
            try:
                return str(enum(value).label)
            except ValueError:
                return str(value)
        return to_roc(value) if hasattr(value, "year") else str(value or "")

    @property
    def linked_institutions(self) -> str:
        """The institutions that serve (or registered) this person: the office's view only."""
        from core.extensions import db

        names = db.session.scalars(
            select(Institution.name)
            .join(PersonLink, PersonLink.institution_id == Institution.id)
            .where(PersonLink.person_kind == type(self).__person_kind__,
                   PersonLink.person_id == self.id)
            .order_by(Institution.name)
        ).all()  # fmt: skip
        return "、".join(names)

    @classmethod
    def linked_in_scope(cls, scope):
        """`id IN (persons linked to an institution in scope)`, read from ix_person_link_scope."""
        return cls.id.in_(
            select(PersonLink.person_id).where(
                PersonLink.person_kind == cls.__person_kind__,
                scope.institution_filter(PersonLink.institution_id),
            )
        )


def _verified_only():
    from sqlalchemy import text

    return text("identity_status = 'verified'")


# ---------------------------------------------------------------- links kept by the session
def _link_models():
    """Mapped classes that declare `__person_links__`: (kind, person FK attr, institution FK attr)."""
    return [
        mapper.class_
        for mapper in AppModel.registry.mappers
        if getattr(mapper.class_, "__person_links__", None)
    ]


def _insert_links(connection, rows: list[dict]) -> None:
    """INSERT the links that do not exist yet (ON CONFLICT DO NOTHING on both databases)."""
    if not rows:
        return
    if connection.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    now = utcnow()
    for row in rows:
        row.setdefault("created_on", now)
    stmt = insert(PersonLink.__table__).on_conflict_do_nothing(
        index_elements=["person_kind", "person_id", "institution_id"]
    )
    connection.execute(stmt, rows)


def link_person(session, kind: str, person_id: int, institution_ids, source: str) -> None:
    """Record that these institutions serve the person (idempotent; part of the transaction)."""
    rows = [
        {"person_kind": kind, "person_id": person_id, "institution_id": i, "source": source}
        for i in sorted(set(institution_ids))
    ]
    _insert_links(session.connection(), rows)


def _links_after_flush(session, flush_context):
    rows, seen = [], set()
    for obj in list(session.new) + list(session.dirty):
        for kind, person_attr, institution_attr in getattr(type(obj), "__person_links__", ()):
            key = (kind, getattr(obj, person_attr, None), getattr(obj, institution_attr, None))
            if None in key or key in seen:
                continue
            seen.add(key)
            rows.append({"person_kind": kind, "person_id": key[1], "institution_id": key[2],
                         "source": type(obj).__tablename__})  # fmt: skip
    _insert_links(session.connection(), rows)
    gone = [(type(o).__person_kind__, o.id) for o in session.deleted
            if getattr(type(o), "__person_kind__", "")]  # fmt: skip
    for kind, person_id in gone:
        session.connection().execute(
            PersonLink.__table__.delete().where(
                PersonLink.person_kind == kind, PersonLink.person_id == person_id
            )
        )


def install_person_links(session) -> None:
    """Every ORM write of a visit or an assignment links its person to its institution."""
    from sqlalchemy import event

    if not event.contains(session, "after_flush", _links_after_flush):
        event.listen(session, "after_flush", _links_after_flush)


def backfill_person_links(connection) -> None:
    """Links for rows written past the ORM (bulk seeding, migrations): one INSERT … SELECT each."""
    from sqlalchemy import and_, exists, insert, literal

    now = utcnow()
    for model in _link_models():
        for kind, person_attr, institution_attr in model.__person_links__:
            person = getattr(model, person_attr)
            institution = getattr(model, institution_attr)
            missing = ~exists().where(and_(
                PersonLink.person_kind == kind, PersonLink.person_id == person,
                PersonLink.institution_id == institution,
            ))  # fmt: skip
            source = (
                select(literal(kind), person, institution, literal(model.__tablename__), literal(now))
                .where(missing)
                .distinct()
            )
            connection.execute(
                insert(PersonLink.__table__).from_select(
                    ["person_kind", "person_id", "institution_id", "source", "created_on"], source
                )
            )
