"""The landing page: who you are and what your data scope is."""

from flask import g
from flask_appbuilder import IndexView, expose


class HomeView(IndexView):
    """Start page after login (zh_TW), showing the signed-in user's role and scope."""

    index_template = "home.html"

    @expose("/")
    def index(self):
        from core.data.scope import current_scope
        from models.registry.institution import Institution
        from models.registry.reference import County

        scope = current_scope()
        user = getattr(g, "user", None)
        counties, institutions = [], []
        if scope.county_ids:
            counties = County.query.filter(County.id.in_(scope.county_ids)).all()
        if scope.institution_ids:
            institutions = (
                Institution.query.filter(Institution.id.in_(scope.institution_ids))
                .order_by(Institution.nhi_code)
                .all()
            )
        from core.security.roles import role_label

        roles = [role_label(r.name) for r in getattr(user, "roles", None) or []]
        return self.render_template(
            self.index_template,
            appbuilder=self.appbuilder,
            scope=scope,
            user=user,
            roles=roles,
            counties=counties,
            institutions=institutions,
        )
