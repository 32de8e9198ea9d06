"""The user account, extended with its data scope (national, one county, or institutions)."""

from __future__ import annotations

from flask_appbuilder.security.sqla.models import User
from flask_babel import gettext
from flask_babel import lazy_gettext as _l
from sqlalchemy import (
    Column,
    ForeignKey,
    Integer,
    String,
    Table,
    exists,
    false,
    func,
    or_,
    select,
    true,
)  # fmt: skip
from sqlalchemy.orm import Mapped, foreign, mapped_column, relationship

from core.dates import to_roc, utcnow
from core.extensions import db
from models.platform.session import LoginThrottle
from models.registry.institution import Institution
from models.registry.reference import County

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



class ScopeKind:
    """How far a user's data scope reaches (stored on the user row)."""

    NATIONAL = "national"
    COUNTY = "county"
    FACILITY = "facility"
    ALL = (NATIONAL, COUNTY, FACILITY)


class ScopedUser(User):
    """FAB's user row plus its scope; the security manager loads users as this class."""

    __tablename__ = "ab_user"
    __label__ = _l("User")
    __table_args__ = {"extend_existing": True, "sqlite_autoincrement": True}

    scope_kind: Mapped[str | None] = mapped_column(String(10))
    scope_county_id: Mapped[int | None] = mapped_column(ForeignKey("county.id"))

    scope_county: Mapped[County | None] = relationship(foreign_keys=[scope_county_id])
    #: The staff profile of an addiction-programme account (A14): its professions and
    #: licences are the practitioner's (models/addiction/staff.py).
    practitioner_id: Mapped[int | None] = mapped_column(
        ForeignKey("practitioner.id", ondelete="SET NULL"), index=True
    )
    scope_institutions: Mapped[list[Institution]] = relationship(
        secondary=user_institution, order_by=Institution.nhi_code
    )
    #: The lockout state of this username (failed logins are counted per lower-case name).
    throttle: Mapped[LoginThrottle | None] = relationship(
        LoginThrottle,
        primaryjoin=lambda: func.lower(ScopedUser.username) == foreign(LoginThrottle.username),
        viewonly=True,
        uselist=False,
    )

    @property
    def full_name(self) -> str:
        return f"{self.last_name or ''}{self.first_name or ''}"

    @property
    def is_locked(self) -> bool:
        state = self.throttle
        return bool(state and state.locked_until and state.locked_until > utcnow())

    @property
    def status_text(self) -> str:
        """正常 / 已鎖定 / 待設定密碼 / 停用, for the helpdesk."""
        if self.is_locked:
            return gettext("Locked until %(time)s", time=to_roc(self.throttle.locked_until))
        if not self.active:
            return gettext("Pending (password not set)") if self.last_login is None else gettext("Disabled")
        return gettext("Active")

    @property
    def scope_text(self) -> str:
        if self.scope_kind == ScopeKind.NATIONAL:
            return gettext("National")
        if self.scope_kind == ScopeKind.COUNTY and self.scope_county is not None:
            return self.scope_county.bureau_name
        if self.scope_kind == ScopeKind.FACILITY and self.scope_institutions:
            return "、".join(str(i) for i in self.scope_institutions)
        return gettext("No scope")

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
