"""Menus offer only what the role may open: every menu link a demo role is shown answers 200."""

from __future__ import annotations

import re

import pytest

from tests.conftest import USERNAMES


def _menu_urls(app) -> dict[str, str]:
    """Every registered menu item's address (self-discovered from FAB's menu), by item name."""
    urls = {}
    with app.test_request_context("/"):
        for category in app.appbuilder.menu.get_list():
            for item in category.childs or [category]:
                if item.name == "-":
                    continue
                url = item.get_url()
                if url and url.startswith("/"):
                    urls[item.name] = url
    return urls


@pytest.mark.parametrize("username", USERNAMES)
def test_every_menu_link_shown_to_a_role_opens(app, login_as, username):
    """A menu entry a role is shown never leads it to a 403, a 404 or a refusal (redirect)."""
    client = login_as(username)
    home = client.get("/")
    assert home.status_code == 200
    shown = set(re.findall(r'href="([^"#]+)"', home.text))
    links = {name: url for name, url in _menu_urls(app).items() if url in shown}
    assert links, f"{username} is shown no menu link at all"
    failed = {}
    for name, url in links.items():
        response = client.get(url)
        if response.status_code != 200:
            failed[name] = (url, response.status_code, response.headers.get("Location"))
    assert not failed, f"{username} is shown menu links it cannot open: {failed}"
