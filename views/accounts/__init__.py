"""Account screens: application, approval, set password, helpdesk lookup."""

from flask_babel import lazy_gettext as _l


def register(appbuilder) -> None:
    """The 帳號管理 menu, the public application form and the set-password page."""
    from views.accounts.applications import (
        AccountApplicationView,
        AccountLookupView,
        ApplyView,
        SetPasswordView,
    )

    accounts = _l("Accounts")
    appbuilder.add_view(
        AccountApplicationView, "Account applications", label=_l("Account applications"),
        icon="fa-id-card-o", category="Accounts", category_label=accounts, category_icon="fa-users",
    )  # fmt: skip
    appbuilder.add_view(
        AccountLookupView, "Account lookup", label=_l("Account lookup"), icon="fa-search",
        category="Accounts",
    )  # fmt: skip
    appbuilder.add_view_no_menu(ApplyView)
    appbuilder.add_view_no_menu(SetPasswordView)
    from core.web import workqueue
    from domain.accounts.workqueue import PROVIDERS

    for provider in PROVIDERS:
        workqueue.register(provider, order=5)  # a decision someone waits for: first
