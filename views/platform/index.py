"""The landing page: who you are, your data scope, and your work queue (core/web/workqueue.py)."""

from flask import current_app, g
from flask_appbuilder import IndexView, expose
from sqlalchemy import select


def previous_login(user_id: int):
    """(time, address) of the user's sign-in before the current session, or None."""
    from core.extensions import db
    from core.security.sessions import current_session_key
    from models.platform.session import UserSession

    return db.session.execute(
        select(UserSession.created_at, UserSession.ip)
        .where(UserSession.user_id == user_id, UserSession.id != current_session_key())
        .order_by(UserSession.created_at.desc())
        .limit(1)
    ).first()


def current_announcements(scope):
    """Announcements in their period today (readable by anyone with a scope)."""
    from core import clock
    from core.extensions import db
    from core.web.workqueue import cached_value
    from models.platform.announcement import Announcement

    today = clock.today()

    def compute():
        return [
            (a.title, a.body, a.start_date)
            for a in db.session.scalars(
                select(Announcement)
                .where(Announcement.shown_on(today), Announcement.scope_clause(scope))
                .order_by(Announcement.start_date.desc(), Announcement.id.desc())
                .limit(10)
            )
        ]

    return cached_value(f"announcements:{scope.has_any}:{today}", ("announcement",), compute)


class HomeView(IndexView):
    """Start page after login (zh_TW): role and scope, the work queue, announcements, helpdesk."""

    index_template = "home.html"

    @expose("/")
    def index(self):
        from core.data.scope import current_scope
        from core.security.roles import role_label
        from core.web.workqueue import items_for
        from models.registry.institution import Institution
        from models.registry.reference import County

        scope = current_scope()
        user = getattr(g, "user", None)
        signed_in = bool(user and user.is_authenticated)
        counties, institutions, groups, announcements, last = [], [], {}, [], None
        if scope.county_ids:
            counties = County.query.filter(County.id.in_(scope.county_ids)).all()
        if scope.institution_ids:
            institutions = (
                Institution.query.filter(Institution.id.in_(scope.institution_ids))
                .order_by(Institution.nhi_code)
                .all()
            )
        if signed_in:
            for item in items_for(user, scope):
                groups.setdefault(item.group, []).append(item)
            announcements = current_announcements(scope)
            last = previous_login(user.id)
        roles = [role_label(r.name) for r in getattr(user, "roles", None) or []]
        return self.render_template(
            self.index_template,
            appbuilder=self.appbuilder,
            scope=scope,
            user=user,
            roles=roles,
            counties=counties,
            institutions=institutions,
            groups=groups,
            announcements=announcements,
            last_login=last,
            helpdesk=current_app.config.get("HELPDESK_CONTACT", ""),
        )
