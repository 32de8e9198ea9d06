"""Reference data: counties with their health bureaus, and institution levels."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from sqlalchemy import Integer, String, true
from sqlalchemy.orm import Mapped, mapped_column

from models.base import AppModel


class _Reference(AppModel):
    """Reference rows are readable by every user who has any scope at all."""

    __abstract__ = True

    @classmethod
    def scope_clause(cls, scope):
        from sqlalchemy import false

        return true() if scope.has_any else false()


class County(_Reference):
    """One of the 22 counties/cities (縣市) and its health bureau (衛生局)."""

    __tablename__ = "county"
    __table_args__ = {"sqlite_autoincrement": True}  # audit keys never reused
    __label__ = _l("County")

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(3), unique=True, nullable=False)
    name: Mapped[str] = mapped_column(String(10), unique=True, nullable=False)
    bureau_name: Mapped[str] = mapped_column(String(40), nullable=False)
    sort_order: Mapped[int] = mapped_column(Integer, nullable=False, index=True)

    def __str__(self) -> str:
        return self.name


class InstitutionLevel(_Reference):
    """Institution level (層級), in the bulletin's order: 醫學中心 … 藥局."""

    __tablename__ = "institution_level"
    __table_args__ = {"sqlite_autoincrement": True}  # audit keys never reused
    __label__ = _l("Institution level")

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(20), unique=True, nullable=False)
    name: Mapped[str] = mapped_column(String(10), unique=True, nullable=False)
    sort_order: Mapped[int] = mapped_column(Integer, nullable=False, index=True)

    def __str__(self) -> str:
        return self.name
