"""The rendered navigation bar, cached per role set, user name and language.

FAB renders its navbar on every page: one permission check, one translated label and one
url_for per menu item, about a quarter of a list page's Python time. What it shows depends
only on the user's roles (menu visibility), display name and language, and on the
permission version (bumped on every role or permission change), so those are the key.
"""

from __future__ import annotations

import threading

from flask import current_app, g, render_template, session
from markupsafe import Markup

from core.security.manager import security_version

#: Distinct keys are few (role combinations × languages × names); the bound only stops a
#: process that has seen every user from holding every navbar.
MAX_ENTRIES = 2000
_lock = threading.Lock()


def _cache() -> dict[tuple, Markup]:
    # Per application: role ids and versions of one database mean nothing in another.
    return current_app.extensions.setdefault("navbar_cache", {})


def _key() -> tuple:
    sm = current_app.appbuilder.sm
    user = getattr(g, "user", None)
    if user is None or not getattr(user, "is_authenticated", False):
        return (security_version(), "anonymous", session.get("locale"))
    return (
        security_version(),
        sm._role_ids(user),
        session.get("locale"),
        user.get_full_name(),
    )


def cached_navbar() -> Markup:
    """The navbar's HTML for the current user (rendered by FAB's own template on a miss)."""
    key = _key()
    cache = _cache()
    html = cache.get(key)
    if html is None:
        html = Markup(
            render_template("appbuilder/navbar.html", appbuilder=current_app.appbuilder)
        )
        with _lock:
            if len(cache) >= MAX_ENTRIES:
                cache.clear()
            cache[key] = html
    return html


def clear() -> None:
    """Forget every cached navbar (tests; a deploy restarts the processes anyway)."""
    with _lock:
        _cache().clear()
