"""The demo users can log in and land on a zh_TW start page that states their scope."""

import pytest

from tests.conftest import USERNAMES


@pytest.mark.parametrize("username", USERNAMES)
def test_every_demo_user_logs_in_and_sees_their_scope(login_as, username):
    client = login_as(username)
    response = client.get("/")
    assert response.status_code == 200
    assert 'id="scope"' in response.text


def test_bad_or_huge_page_arguments_do_not_break_the_list(login_as):
    client = login_as("office")
    assert client.get("/practitionerview/list/?psize_PractitionerView=abc").status_code == 400
    assert client.get("/practitionerview/list/?page_PractitionerView=-1").status_code == 400
    response = client.get("/practitionerview/list/?psize_PractitionerView=100000")
    assert response.status_code == 200
    assert response.text.count("/practitionerview/show/") <= 500


def test_api_still_refuses_a_malformed_rison_argument(api_as):
    """The cached schema validation (core/web/patches.py) must still reject bad arguments."""
    client, headers = api_as("office")
    assert client.get("/api/v1/institution/?q=(page_size:abc)", headers=headers).status_code == 400
    assert client.get("/api/v1/institution/?q=(page_size:5)", headers=headers).status_code == 200


def test_deep_pages_from_bookmarks_match_plain_offset_paging(app, db, monkeypatch):
    """Pages past the first bookmark seek to it; they must equal OFFSET paging exactly."""
    from sqlalchemy import select

    from core.data import datamodel as interface_module
    from core.data.datamodel import ScopedInterface
    from core.data.scope import SYSTEM_SCOPE
    from models.registry.practitioner import ServiceAssignment

    monkeypatch.setattr(interface_module, "current_scope", lambda: SYSTEM_SCOPE)

    interface = ScopedInterface(ServiceAssignment)
    interface.bookmark_step = 7  # tiny, so the test data spans many bookmarks
    with app.test_request_context():
        for direction in ("desc", "asc"):
            expected = db.session.scalars(
                select(ServiceAssignment.id).order_by(
                    *(c.desc() if direction == "desc" else c.asc()
                      for c in (ServiceAssignment.start_date, ServiceAssignment.id))
                )
            ).all()  # fmt: skip
            for page in (0, 1, 2, 5, 9, len(expected) // 10):
                _count, rows = interface.query(
                    order_column="start_date", order_direction=direction, page=page, page_size=10
                )
                assert [r.id for r in rows] == expected[page * 10 : page * 10 + 10], (
                    direction,
                    page,
                )


def _markup(html: str) -> str:
    """The page without what differs per request (nonces, CSRF) or is only whitespace."""
    import re

    html = re.sub(r'nonce="[^"]*"', "", html)
    html = re.sub(r'(csrf_token"?[^>]*value=")[^"]*', r"\1", html)
    html = re.sub(r"\s+", " ", html)
    return re.sub(r"\s*([<>])\s*", r"\1", html)


@pytest.mark.parametrize(
    "username, view_name, url",
    [
        ("office", "VisitView", "/visitview/list/"),
        ("facility_tpe", "VisitView", "/visitview/list/?_flt_1_visit_date=2020-01-01"),
        ("helpdesk", "AccountLookupView", "/accounts/list/"),
        ("bureau_tpe", "AccountApplicationView", "/accountapplicationview/list/"),
    ],
)
def test_fast_list_widget_renders_what_fab_list_widget_renders(app, login_as, username, view_name, url):
    """The rows built in Python (core/web/listrows.py, FastListWidget) give FAB's exact list
    markup: show, edit and delete links with their filters, the confirm dialog script, the
    action checkboxes, labels and every cell's formatted value. (The visit list's own widget
    also drops edit and delete on locked rows, tests/cessation/test_entry.py: compared here
    is the shared FastListWidget it builds on.)"""
    from flask_appbuilder.widgets import ListWidget

    from core.web.views import FastListWidget

    view = next(v for v in app.appbuilder.baseviews if type(v).__name__ == view_name)
    client = login_as(username)
    try:
        view.list_widget = FastListWidget
        fast = client.get(url).text
    finally:
        del view.list_widget
    base = url.split("/list/")[0]
    assert fast.count(f"{base}/show/") >= 1, url
    if username == "facility_tpe":
        assert fast.count("/visitview/edit/") >= 2 and "btn-delete-/visitview/delete/" in fast
    try:
        view.list_widget = ListWidget
        stock = client.get(url).text
    finally:
        del view.list_widget
    assert _markup(fast) == _markup(stock)


def test_list_rows_carry_fab_action_checkboxes_and_escape_every_value():
    """No view has a multi-row action yet: the checkbox cell still follows FAB's markup, and
    every value, label and URL is escaped (a name cannot inject markup into the list)."""
    from core.web.listrows import render_rows

    html = render_rows(
        [{"name": "<b>王</b>", "n": None}], [7], ["name", "n"], {"n": lambda v: v or ""},
        actions={"approve": object()}, show_url="/x/show/__pk__?a=1&b=2", edit_url=None,
        delete_url=None, nonce="",
        labels=dict.fromkeys(("show_title", "show_text", "edit_title", "edit_text",
                              "delete_title", "delete_text", "delete_question"), '"t"'),
    )  # fmt: skip
    assert _markup(html).startswith(
        '<tr><td><input id="7" class="action_check" name="rowid" value="7" type="checkbox"></td>'
    )
    assert 'href="/x/show/7?a=1&amp;b=2"' in html and 'title="&#34;t&#34;"' in html
    assert "<td>&lt;b&gt;王&lt;/b&gt;</td><td></td></tr>" in html
