"""Menus, views and APIs of the application, one `register(appbuilder)` per domain, called
here in menu order; the scope-matrix test walks whatever they register."""

from views import accounts, addiction, cessation, platform, registry


def register(appbuilder) -> None:
    """Add every domain's views and APIs (the menu shows them in this order)."""
    for domain in (cessation, addiction, registry, platform, accounts):
        domain.register(appbuilder)
