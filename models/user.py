"""The user account, extended with its data scope (national, one county, or institutions)."""

from __future__ import annotations

from flask_appbuilder.security.sqla.models import User
from sqlalchemy import Column, ForeignKey, Integer, String, Table, exists, false, or_, select, true
from sqlalchemy.orm import Mapped, mapped_column, relationship

from core.extensions import db
from core.scope import ScopeKind  # noqa: F401  (re-exported for models users)
from models.institution import Institution
from models.reference import County

user_institution = Table(
    "ab_user_institution",
    db.metadata,
    Column("user_id", Integer, ForeignKey("ab_user.id", ondelete="CASCADE"), primary_key=True),
    Column(
        "institution_id",
        Integer,
        ForeignKey("institution.id", ondelete="CASCADE"),
        primary_key=True,
        index=True,
    ),
)


class ScopedUser(User):
    """FAB's user row plus its scope; the security manager loads users as this class."""

    __tablename__ = "ab_user"
    __table_args__ = {"extend_existing": True}

    scope_kind: Mapped[str | None] = mapped_column(String(10))
    scope_county_id: Mapped[int | None] = mapped_column(ForeignKey("county.id"))

    scope_county: Mapped[County | None] = relationship(foreign_keys=[scope_county_id])
    scope_institutions: Mapped[list[Institution]] = relationship(
        secondary=user_institution, order_by=Institution.nhi_code
    )

    @classmethod
    def scope_clause(cls, scope):
        """Accounts a user may look up: all (national), their county's, or only themselves."""
        if scope.national:
            return true()
        if scope.county_ids:
            in_county = select(Institution.id).where(Institution.county_id.in_(sorted(scope.county_ids)))
            return or_(
                cls.scope_county_id.in_(sorted(scope.county_ids)),
                exists().where(
                    user_institution.c.user_id == cls.id,
                    user_institution.c.institution_id.in_(in_county),
                ),
            )
        if scope.user_id is not None and scope.has_any:
            return cls.id == scope.user_id
        return false()

    @classmethod
    def defines_scope(cls) -> bool:
        return True
