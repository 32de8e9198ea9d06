"""What the list pages cache between requests, and that none of it goes stale: the row
count (until a table it reads is written), the rendered navbar (per role set, name and
language) and the translations of the request."""

from __future__ import annotations

import json
import re

from sqlalchemy import event

from models.cessation.visit import Visit
from tests.conftest import post_form, visible_text
from tests.factories import _at, _form, _new_id, _setup, _visits


def _record_count(response) -> int:
    match = re.search(r"資料筆數\s*:?\s*([\d,]+)", visible_text(response.text))
    assert match, visible_text(response.text)[:600]
    return int(match.group(1).replace(",", ""))


class _Statements:
    def __init__(self, engine):
        self.engine, self.seen = engine, []

    def __enter__(self):
        event.listen(self.engine, "before_cursor_execute", self._record)
        return self.seen

    def __exit__(self, *exc):
        event.remove(self.engine, "before_cursor_execute", self._record)

    def _record(self, conn, cursor, statement, *args):
        self.seen.append(statement)


def _counts(statements):
    return [s for s in statements if s.lstrip().upper().startswith("SELECT COUNT(")]


def test_list_count_is_served_from_cache_until_a_visit_is_written(app, db, login_as):
    """A repeated list page runs no count(*); entering a visit shows in the next count."""
    institution_id, practitioner_id = _setup(db, "facility_tpe")
    client = login_as("facility_tpe")
    url = "/visitview/list/?_oc_VisitView=visit_date&_od_VisitView=desc"
    before = _record_count(client.get(url))
    with _Statements(db.engine) as statements:
        again = client.get(url)
    assert _record_count(again) == before
    assert _counts(statements) == [], statements

    national_id = _new_id()
    with _at(2025, 6, 3, 9, 0):
        response = post_form(app, client, "/visitview/add",
                             _form(institution_id, practitioner_id, national_id, "114/06/02"))  # fmt: skip
    assert response.status_code == 302
    with _Statements(db.engine) as statements:
        after = client.get(url)
    assert _record_count(after) == before + 1
    assert len(_counts(statements)) == 1

    # Deleting it counts too (and another user's list, in its own scope, is just as fresh).
    (visit,) = _visits(db, national_id)
    with _at(2025, 6, 3, 10, 0):
        post_form(app, client, f"/visitview/delete/{visit.id}", {})
    assert _record_count(client.get(url)) == before


def test_the_audit_logs_cached_count_follows_every_audited_write(app, db, login_as):
    """The audit trail is written on the session's connection, which no ORM event sees: its
    list count was cached under a table version that never moved (the admin's 稽核紀錄 said
    1,994 rows where 1,998 were stored). Every audited write now shows in the next count."""
    from sqlalchemy import func, select

    from models.platform.audit import AuditLog

    institution_id, practitioner_id = _setup(db, "facility_tpe")
    facility = login_as("facility_tpe")  # signed in before: a sign-in is itself an audit row
    db.session.commit()  # nothing pending in the session: counts are cached from here on
    admin = login_as("admin")
    before = _record_count(admin.get("/auditlogview/list/"))
    assert before == db.session.scalar(select(func.count()).select_from(AuditLog))
    with _Statements(db.engine) as statements:
        assert _record_count(admin.get("/auditlogview/list/")) == before
    assert _counts(statements) == [], "the count is not cached: this test would prove nothing"
    with _at(2025, 6, 3, 9, 0):
        response = post_form(app, facility, "/visitview/add",
                             _form(institution_id, practitioner_id, _new_id(), "114/06/02"))  # fmt: skip
    assert response.status_code == 302
    stored = db.session.scalar(select(func.count()).select_from(AuditLog))
    assert stored > before
    assert _record_count(admin.get("/auditlogview/list/")) == stored


def test_a_count_inside_an_uncommitted_write_is_not_cached(app, db):
    """A count taken by a session holding unflushed-then-rolled-back rows is nobody's count."""
    from sqlalchemy import func, select

    from core.data.counts import cached_count

    with app.test_request_context():
        statement = select(func.count()).select_from(Visit)
        committed = cached_count(db.session, statement, "test:all visits")
        first = db.session.query(Visit).first()
        clone = Visit(
            institution_id=first.institution_id, practitioner_id=first.practitioner_id,
            quitter_id=first.quitter_id, visit_date=first.visit_date,
            medication_days=7, entered_at=first.entered_at,
        )  # fmt: skip
        db.session.add(clone)
        db.session.flush()
        assert cached_count(db.session, statement, "test:all visits") == committed + 1
        db.session.rollback()
        assert cached_count(db.session, statement, "test:all visits") == committed


def test_navbar_follows_the_users_roles_and_name(app, db, login_as):
    """The cached navbar is per role set and name: a role granted later shows its menu at
    once (role changes bump the permission version), another user never sees this one's."""
    from models.platform.user import ScopedUser

    def navbar(client, url="/users/userinfo/"):
        return client.get(url).text.split("</header>")[0]

    office, helpdesk = login_as("office"), login_as("helpdesk")
    assert "/visitview/list/" in navbar(office, "/visitview/list/")
    assert "/visitview/list/" not in navbar(helpdesk)

    sm = app.appbuilder.sm
    user = db.session.query(ScopedUser).filter_by(username="helpdesk").one()
    name_before = user.first_name
    user.first_name = "值班"
    user.roles.append(sm.find_role("Office"))
    db.session.commit()
    try:
        mine = navbar(helpdesk)
        assert "值班" in mine and "/visitview/list/" in mine
        assert "值班" not in navbar(office, "/visitview/list/")
    finally:
        user = db.session.query(ScopedUser).filter_by(username="helpdesk").one()
        user.first_name = name_before
        user.roles = [role for role in user.roles if role.name != "Office"]
        db.session.commit()
    assert "/visitview/list/" not in navbar(helpdesk)


def test_switching_language_changes_the_cached_navbar_and_the_page(app, login_as):
    """The navbar is cached per language, and the request's translations follow a switch."""
    client = login_as("facility_tpe")
    assert "登出" in client.get("/visitview/list/").text
    client.get("/lang/en")
    try:
        page = client.get("/visitview/list/").text
        assert "Logout" in page and "登出" not in page
        assert "Record Count" in page and "資料筆數" not in page
    finally:
        client.get("/lang/zh_TW")
    page = client.get("/visitview/list/").text
    assert "登出" in page and "資料筆數" in page


def test_cached_search_fields_render_what_fab_renders_and_follow_new_rows(app, db, login_as):
    """The search form's fields come from a cache keyed by view, scope, language and the
    related tables' versions: same markup as FAB's widget, and a new level appears at once."""
    from flask_appbuilder.widgets import SearchWidget

    from models.registry.reference import InstitutionLevel
    from tests.platform.test_smoke import _markup

    view = next(v for v in app.appbuilder.baseviews if type(v).__name__ == "InstitutionView")
    url = "/institutionview/list/"
    for username in ("office", "bureau_khh", "facility_tpe"):
        client = login_as(username)
        client.get(url)
        cached = client.get(url).text
        try:
            view.search_widget = SearchWidget
            stock = client.get(url).text
        finally:
            del view.search_widget
        assert _markup(cached) == _markup(stock), username
    client = login_as("office")

    def offered(text, page):
        # The fields reach the page as JSON (FAB's tojson escapes non-ASCII characters).
        return json.dumps(text)[1:-1] in page.split('id="filter_form"')[1]

    level = InstitutionLevel(code="ZZ", name="測試層級甲", sort_order=99)
    db.session.add(level)
    db.session.commit()
    try:
        assert offered("測試層級甲", client.get(url).text)
        assert offered("臺北市", client.get(url).text)
        assert offered("測試層級甲", login_as("bureau_khh").get(url).text)
    finally:
        db.session.delete(level)
        db.session.commit()
    assert not offered("測試層級甲", client.get(url).text)


def test_cached_counts_are_per_scope_and_per_filter(app, db, login_as):
    """Every user's count is their own scope's, cached or not, and a filter has its own."""
    from tests.scope_oracle import user_view

    url = "/visitview/list/?_oc_VisitView=visit_date&_od_VisitView=desc"
    for username in ("bureau_khh", "facility_tpe", "facility_khh", "bureau_tpe"):
        ids = user_view(db, username).institution_ids
        expected = db.session.query(Visit).filter(Visit.institution_id.in_(ids)).count()
        client = login_as(username)
        for _ in range(2):  # computed, then cached
            assert _record_count(client.get(url)) == expected, username
    client = login_as("bureau_khh")
    ids = user_view(db, "bureau_khh").institution_ids
    one = min(ids, key=lambda i: -db.session.query(Visit).filter(Visit.institution_id == i).count())
    from models.registry.institution import Institution

    code = db.session.get(Institution, one).nhi_code
    expected = db.session.query(Visit).filter(Visit.institution_id == one).count()
    assert _record_count(client.get(f"{url}&_flt_0_institution={code}")) == expected


def test_institution_text_filter_ids_are_cached_until_the_institution_table_is_written(app, db):
    """A list filtered by an institution's code or name reads the matching institutions
    once, then from the shared cache; renaming an institution (a commit writing the table)
    makes the next lookup read them again and find it."""
    from flask import g
    from sqlalchemy import select

    from core.data.filters import _few_matching_ids
    from models.registry.institution import Institution

    def request():
        """A fresh request's memo (the test's app context outlives each request context)."""
        g.pop("_request_memo", None)
        return app.test_request_context()

    marker = "快取測試院所"
    matching = select(Institution.id).where(Institution.name.contains(marker))
    key = ("Institution", ("name",), marker, False)
    with _Statements(db.engine) as statements, request():
        assert _few_matching_ids(matching, key) == []
    assert any("FROM institution" in s for s in statements), statements
    with _Statements(db.engine) as statements, request():
        assert _few_matching_ids(matching, key) == []
    assert not any("FROM institution" in s for s in statements), statements

    institution = db.session.query(Institution).order_by(Institution.id).first()
    name = institution.name
    institution.name = f"{name}{marker}"
    db.session.commit()
    try:
        with _Statements(db.engine) as statements, request():
            assert _few_matching_ids(matching, key) == [institution.id]
        assert any("FROM institution" in s for s in statements), statements
    finally:
        institution.name = name
        db.session.commit()
    with request():
        assert _few_matching_ids(matching, key) == []


def test_a_cached_national_count_runs_no_max_id_either(app, db, login_as):
    """A national list whose count is cached runs neither count(*) nor the max(id) that
    stands for a count over millions of rows; a visit written shows in the next count."""
    client = login_as("office")
    url = "/visitview/list/"
    before = _record_count(client.get(url))
    with _Statements(db.engine) as statements:
        again = client.get(url)
    assert _record_count(again) == before
    assert _counts(statements) == [] and not [s for s in statements if "max(" in s.lower()]


def test_a_national_estimate_is_cached_like_a_count_and_follows_writes(
    app, db, login_as, monkeypatch
):
    """Above `estimate_count_above` rows the national count is max(id), asked on a cache
    miss only and invalidated by a write like any count."""
    from core.data.datamodel import ScopedInterface

    monkeypatch.setattr(ScopedInterface, "estimate_count_above", 0)
    institution_id, practitioner_id = _setup(db, "facility_tpe")
    client, facility = login_as("office"), login_as("facility_tpe")
    url = "/visitview/list/"
    for day in ("114/06/02", "114/06/03"):
        # Each write invalidates the cached count (an earlier test's exact one included).
        national_id = _new_id()
        with _at(2025, 6, 3, 9, 0):
            response = post_form(app, facility, "/visitview/add",
                                 _form(institution_id, practitioner_id, national_id, day))  # fmt: skip
        assert response.status_code == 302
        (visit,) = _visits(db, national_id)
        assert _record_count(client.get(url)) == visit.id
        with _Statements(db.engine) as statements:
            assert _record_count(client.get(url)) == visit.id
        assert not [s for s in statements if "max(" in s.lower()]
    # The estimate (max id, not the count: deleted visits leave gaps) is cached under the
    # visit table's token: a fresh token, so that later tests count exactly again.
    from core.data.versions import bump
    from core.extensions import cache

    bump("visit")
    cache.clear()


def test_pagination_and_page_size_links_are_fabs_own(app):
    """The list's page and page-size links (built once per request, core/web/listrows.py)
    are FAB's URLs byte for byte: with other arguments, an existing page argument, and a
    filter value that spells the link's own mark."""
    cases = [
        "/visitview/list/",
        "/visitview/list/?_flt_0_institution=0123456789&page_VisitView=4&psize_VisitView=50",
        "/visitview/list/?_flt_0_quitter=%26page_VisitView%3D0LISTLINK0&xpage_VisitView=0LISTLINK0",
        "/visitview/list/?_oc_VisitView=visit_date&_od_VisitView=desc&_flt_1_visit_date=114/01/01",
    ]
    for url in cases:
        with app.test_request_context(url):
            for name in ("link_page", "link_page_size"):
                fast = app.jinja_env.filters[name]
                for value in (0, 1, 3, 25, 100, 4000):
                    expected = fast.original(value, "VisitView")
                    assert fast(value, "VisitView") == expected, (url, name, value)
