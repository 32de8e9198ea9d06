"""The name of a data scope as reports print it (the cessation statistics, the addiction reports)."""

from __future__ import annotations

from flask_babel import gettext
from sqlalchemy import select

from core.data.scope import Scope, ScopeKind
from core.extensions import db
from models.registry.institution import Institution


def scope_label(scope: Scope, county) -> str:
    """Whose figures these are: 全國, a county, or the user's institutions."""
    if scope.national:
        return gettext("National")
    if county is not None:
        return county.name
    if scope.kind == ScopeKind.FACILITY:
        names = db.session.scalars(
            select(Institution.name)
            .where(Institution.id.in_(sorted(scope.institution_ids)))
            .order_by(Institution.nhi_code, Institution.id)
        ).all()
        return "、".join(names)
    return ""
