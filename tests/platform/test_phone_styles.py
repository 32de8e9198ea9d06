"""The phone layout's stylesheet (issue 15, item 6) is the app's own: every page links it
from this server, it is served as CSS, and no page loads a style from the internet."""

from __future__ import annotations

import re


def test_every_page_links_the_apps_own_stylesheet_served_from_here(login_as):
    """/static/css/app.css on the home page and a form, answered 200 text/css; no CDN link."""
    client = login_as("facility_tpe")
    for url in ("/", "/visitview/add", "/practitionerview/join"):
        page = client.get(url).text
        links = re.findall(r'<link[^>]+href="([^"]+)"', page)
        assert "/static/css/app.css" in links, url
        assert not [h for h in links if h.startswith(("http:", "https:", "//"))], url
    css = client.get("/static/css/app.css")
    assert css.status_code == 200 and css.mimetype == "text/css"
    # The rules the phone journey relies on: forms stack, charts shrink.
    assert "@media (max-width: 767px)" in css.text and "svg.scalable-chart" in css.text


def test_the_login_page_links_it_too(app):
    """Before sign-in (a phone's first page) the layout is the same."""
    page = app.test_client().get("/login/").text
    assert "/static/css/app.css" in page
