"""Platform screens: home, audit log, export progress."""

from flask_babel import lazy_gettext as _l


def register(appbuilder) -> None:
    """The audit log and announcements (權限管理 menu), the audit API and the export progress page."""
    from views.platform.announcements import AnnouncementView
    from views.platform.audit import AuditLogApi, AuditLogView
    from views.platform.exports import ExportJobView

    appbuilder.add_view(
        AuditLogView, "Audit log", label=_l("Audit log"), icon="fa-history",
        category="Security", category_label=_l("Security"),
    )  # fmt: skip
    appbuilder.add_view(
        AnnouncementView, "Announcements", label=_l("Announcements"), icon="fa-bullhorn",
        category="Security",
    )  # fmt: skip
    appbuilder.add_view_no_menu(ExportJobView)
    appbuilder.add_api(AuditLogApi)
