"""Error pages (issue 15): 403/404/405/413/500 answer in zh_TW inside the site's layout (the
navbar and a way back to the home page), for signed-in and anonymous users alike."""

from __future__ import annotations

import pytest
from werkzeug.exceptions import Forbidden

from tests.conftest import visible_text

#: What werkzeug's own English pages say; none of it may reach a user.
WERKZEUG = ("Forbidden", "Not Found", "Method Not Allowed", "Request Entity Too Large",
            "Internal Server Error", "The requested URL", "The server encountered")  # fmt: skip


def _assert_site_page(response, status: int) -> None:
    assert response.status_code == status
    html = response.text
    assert 'class="navbar' in html, "the error page has no navbar"
    assert 'href="/"' in html, "the error page offers no way back to the home page"
    text = visible_text(html)
    for english in WERKZEUG:
        assert english not in text, f"werkzeug's English text on the {status} page: {english}"
    assert "首頁" in text


def _raiser(exc):
    def view(*args, **kwargs):
        raise exc

    return view


@pytest.fixture
def client_of(app, login_as):
    """client_of(None) is anonymous; client_of('facility_tpe') is signed in."""
    return lambda username: login_as(username) if username else app.test_client()


@pytest.mark.parametrize("username", [None, "facility_tpe", "admin"])
def test_404_is_a_zh_tw_page_in_the_layout(client_of, username):
    response = client_of(username).get("/no-such-page/")
    _assert_site_page(response, 404)
    assert "找不到" in visible_text(response.text)


@pytest.mark.parametrize("username", [None, "office"])
def test_405_is_a_zh_tw_page_in_the_layout(client_of, username):
    response = client_of(username).delete("/apply/")
    _assert_site_page(response, 405)
    assert response.headers.get("Allow")


def test_403_of_fab_security_views_is_a_zh_tw_page(client_of):
    """FAB's own views (users, permissions) refuse a clinic with the site's page."""
    for url in ("/users/list/", "/roles/list/", "/users/show/1"):
        _assert_site_page(client_of("facility_tpe").get(url), 403)


@pytest.mark.parametrize("username", [None, "bureau_tpe"])
def test_403_raised_anywhere_is_a_zh_tw_page(app, client_of, monkeypatch, username):
    """An abort(403) in a view or a before_request hook answers the site's page."""
    monkeypatch.setitem(app.view_functions, "ApplyView.apply", _raiser(Forbidden()))
    response = client_of(username).get("/apply/")
    _assert_site_page(response, 403)
    assert "權限" in visible_text(response.text)


@pytest.mark.parametrize("username", [None, "facility_tpe"])
def test_413_is_a_zh_tw_page_in_the_layout(app, client_of, monkeypatch, username):
    monkeypatch.setitem(app.config, "MAX_CONTENT_LENGTH", 1024)
    response = client_of(username).post("/apply/", data={"x": "y" * 4096})
    _assert_site_page(response, 413)


@pytest.mark.parametrize("username", [None, "facility_tpe"])
def test_500_is_a_zh_tw_page_in_the_layout(app, client_of, monkeypatch, username):
    """A bug answers the site's page (the traceback goes to the log), never werkzeug's."""
    monkeypatch.setitem(app.config, "PROPAGATE_EXCEPTIONS", False)
    monkeypatch.setitem(app.view_functions, "ApplyView.apply", _raiser(RuntimeError("boom")))
    response = client_of(username).get("/apply/")
    _assert_site_page(response, 500)
    text = visible_text(response.text)
    assert "boom" not in text and "RuntimeError" not in text
    assert "系統發生錯誤" in text
