"""issue 12 class 8: no hostile input answers 500; a refused one answers 4xx with a zh_TW message.

Two parts:

- targeted tests, one per cause found by the attack on the served demo (each failed on the
  code before the fix);
- a hypothesis-driven fuzz that discovers the routes from the running app (app.url_map and
  app.appbuilder.baseviews), so a view, API or report added later is fuzzed without editing
  this file: every list view's page/size/order arguments and search filters, every by-key
  route, every add/edit form, the report screens' query arguments (read from their source)
  and the REST APIs' q= filters and paging.

The fuzz must not change the shared test database: while it runs, Session.commit only
flushes, and every request's session is rolled back when its app context ends (these tests
never hold an app context across requests). A final check compares the row counts.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import html as html_lib
import inspect
import logging
import re
import urllib.parse
from html.parser import HTMLParser

import prison
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from tests.conftest import csrf_token, visible_text

# ------------------------------------------------------------------ hostile values
MAX_INT4 = 2**31 - 1
HUGE_INTS = [str(2**31), str(2**63), "9" * 30, str(-(2**31) - 1), "-1", "0"]
UNICODE_DIGITS = ["²", "١٢", "１２", "٩٩٩٩٩٩٩٩٩", "߃", "৩", "12²"]
FORMAT_TEXTS = ["%", "%(x)s", "%s%s%s%n", "{0}", "{x.__class__}"]
ODD_TEXTS = ["\x00", "a\x00b", "x" * 10_000, "=1+1", "@SUM(A1)", "' OR '1'='1", "<script>x</script>",
             "../../etc/passwd", " ", "\u202e", "𠀀"]  # fmt: skip
DATES = ["9999-99-99", "999/13/40", "9999-12-31", "0001-01-01", "0/1/1", "114/02/30", "1140230",
         "99999/01/01", "114/²/01", "１１４/０１/０１", "-1/01/01", "2200-12-31", "2201-01-01",
         "1899-12-31", "114/4/1%"]  # fmt: skip
HOSTILE = HUGE_INTS + UNICODE_DIGITS + FORMAT_TEXTS + ODD_TEXTS + DATES

#: Keys that can never name a real row (the fuzz may post to by-key routes).
HOSTILE_KEYS = [str(2**31), str(MAX_INT4), str(2**63), "9" * 30, "0", "-1", "²", "١٢", "１２",
                "٩٩٩٩٩٩٩٩٩", "abc", "%", "%25", "1.5", "1e3", "null", "__label__", "x" * 300]  # fmt: skip

_no_surrogates = st.characters(blacklist_categories=("Cs",))
hostile_text = st.one_of(
    st.sampled_from(HOSTILE),
    st.text(_no_surrogates, max_size=12),
    st.integers(min_value=-(2**70), max_value=2**70).map(str),
    st.tuples(st.integers(-5, 99999), st.integers(-5, 99), st.integers(-5, 99)).map(
        lambda t: f"{t[0]}/{t[1]}/{t[2]}"
    ),
)
hostile_number = st.one_of(
    st.sampled_from(HUGE_INTS + UNICODE_DIGITS + ["%", "", "1.5", "-0"]),
    st.integers(min_value=-(2**70), max_value=2**70).map(str),
)

USERS_HTML = ("facility_tpe", "bureau_tpe", "office")
FUZZ = settings(
    derandomize=True,
    database=None,
    deadline=None,
    # No shrinking: every step is a round of requests, and a failure names its request anyway.
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

_CJK = re.compile(r"[\u4e00-\u9fff]")


def _werkzeug_descriptions() -> list[str]:
    """The English default texts of werkzeug's 4xx pages (a bare 'Bad Request' page)."""
    from werkzeug import exceptions

    texts = []
    for obj in vars(exceptions).values():
        if isinstance(obj, type) and issubclass(obj, exceptions.HTTPException):
            code = getattr(obj, "code", None)
            if code and 400 <= code < 500 and isinstance(obj.description, str):
                texts.append(obj.description[:40])
    return texts


WERKZEUG_TEXTS = _werkzeug_descriptions()


class Failure(AssertionError):
    pass


def request(client, method, url, **kwargs):
    """One request; a raised exception (TESTING propagates them) or a 5xx fails with the URL."""
    try:
        response = getattr(client, method)(url, **kwargs)
    except Exception as exc:  # noqa: BLE001 - any exception here is the bug being looked for
        raise Failure(f"{method.upper()} {url!r} {kwargs.get('data') or kwargs.get('json') or ''!r:.300}"
                      f" raised {type(exc).__name__}: {exc}") from exc  # fmt: skip
    assert response.status_code < 500, (method, url, kwargs.get("query_string"), kwargs.get("data") or kwargs.get("json"),
                                        response.status_code, response.get_data(as_text=True)[:300])  # fmt: skip
    if 400 <= response.status_code < 500:
        if url.startswith("/api/"):
            assert response.is_json, (method, url, response.status_code)
        elif response.mimetype == "text/html":
            assert_zh_tw_error(response, url)
    return response


def assert_zh_tw_error(response, url):
    """A 4xx HTML page says what went wrong in Traditional Chinese, not werkzeug's English."""
    body = response.get_data(as_text=True)
    text = visible_text(body)
    assert _CJK.search(text), (url, response.status_code, text[:200])
    for english in WERKZEUG_TEXTS:
        assert english not in text, (url, response.status_code, english)
    # The message itself (the navbar is Chinese anyway): the error page's, or an alert's.
    messages = re.findall(r'<(?:div|p|span)[^>]*(?:id="error-message"|class="[^"]*(?:alert|text-danger)[^"]*")'
                          r'[^>]*>(.*?)</', body, re.S)  # fmt: skip
    assert any(_CJK.search(html_lib.unescape(m)) for m in messages), (url, response.status_code, text[-300:])


# ------------------------------------------------------------ no data change
@pytest.fixture
def no_commits(app, monkeypatch):
    """While active, commits only flush; each request's session is rolled back at its end."""
    from sqlalchemy import func, select
    from sqlalchemy import inspect as sa_inspect
    from sqlalchemy.orm import Session

    from core.extensions import db

    def counts():
        with app.app_context():
            tables = [t for t in db.metadata.sorted_tables if t.name in sa_inspect(db.engine).get_table_names()]
            result = {t.name: db.session.scalar(select(func.count()).select_from(t)) for t in tables}
            db.session.remove()
            return result

    @contextlib.contextmanager
    def active():
        before = counts()
        monkeypatch.setattr(Session, "commit", lambda self: self.flush())
        try:
            yield
        finally:
            monkeypatch.undo()
        after = counts()
        changed = {k: (before[k], after.get(k)) for k in before if before[k] != after.get(k)}
        # Sessions and login bookkeeping are the only tables a request may write for real.
        changed = {k: v for k, v in changed.items() if k not in {"user_session", "ab_user"}}
        assert not changed, changed

    return active


# ------------------------------------------------------------------ discovery
def _rules(app):
    return [r for r in app.url_map.iter_rules() if not r.endpoint.endswith("static")]


def _endpoints(app) -> set[str]:
    return {r.endpoint for r in _rules(app)}


def list_views(app):
    """(view, list URL) of every model view with a list page."""
    from flask_appbuilder.baseviews import BaseCRUDView

    endpoints = _endpoints(app)
    views = []
    for view in app.appbuilder.baseviews:
        name = type(view).__name__
        if isinstance(view, BaseCRUDView) and f"{name}.list" in endpoints:
            views.append((view, f"{view.route_base}/list/"))
    assert len(views) >= 10, [type(v).__name__ for v, _ in views]
    return views


def search_filters(view) -> dict[str, int]:
    """column -> number of filters FAB offers for it (the n of ?_flt_<n>_<column>)."""
    return {col: len(flts) for col, flts in view._filters.get_search_filters().items()}


def keyed_routes(app):
    """(rule, method) of every route with a URL argument, except static files."""
    routes = []
    for rule in _rules(app):
        if not rule.arguments:
            continue
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            routes.append((rule, method))
    return routes


def report_views(app):
    """(view, [GET URLs], [query argument names]) of every screen that is not a model view.

    The argument names are read from the view's module source (request.args.get("…")),
    so a report that reads a new argument is fuzzed on it without editing this test."""
    from flask_appbuilder.baseviews import BaseModelView

    from core.web.views import ScopedReportView

    found = []
    for view in app.appbuilder.baseviews:
        if isinstance(view, BaseModelView) or not isinstance(view, ScopedReportView):
            continue
        source = inspect.getsource(inspect.getmodule(type(view)))
        args = sorted(set(re.findall(r"request\.args\.get\(\s*[\"'](\w+)[\"']", source)))
        name = type(view).__name__
        urls = [
            r.rule for r in _rules(app)
            if r.endpoint.startswith(name + ".") and not r.arguments and "GET" in r.methods
        ]  # fmt: skip
        if urls:
            found.append((view, urls, args))
    assert {type(v).__name__ for v, _, _ in found} >= {"SelfCheckView", "FeeDeductionView",
                                                     "CessationStatisticsView"}  # fmt: skip
    return found


def rest_apis(app):
    from flask_appbuilder.api import ModelRestApi

    apis = [a for a in app.appbuilder.baseviews if isinstance(a, ModelRestApi)]
    assert len(apis) >= 8
    return apis


class _FormParser(HTMLParser):
    """The fields of every POST form of a page: [{name: current value}]."""

    def __init__(self):
        super().__init__()
        self.forms: list[dict[str, str]] = []
        self.fields: dict[str, str] | None = None
        self._select = None
        self._selected = False
        self._textarea = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "form" and (attrs.get("method") or "get").lower() == "post":
            self.fields = {}
            self.forms.append(self.fields)
        if self.fields is None:
            return
        name = attrs.get("name")
        if tag == "input" and name and name != "csrf_token":
            kind = attrs.get("type", "text")
            if kind in ("submit", "button", "file") or (kind == "checkbox" and "checked" not in attrs):
                return
            self.fields[name] = attrs.get("value", "y" if kind == "checkbox" else "") or ""
        elif tag == "select" and name:
            self._select, self._selected = name, False
            self.fields[name] = ""
        elif tag == "option" and self._select:
            value = attrs.get("value", "")
            if "selected" in attrs or (not self._selected and value and not self.fields[self._select]):
                self.fields[self._select] = value
                self._selected = self._selected or "selected" in attrs
        elif tag == "textarea" and name:
            self._textarea = name
            self.fields[name] = ""

    def handle_endtag(self, tag):
        if tag == "select":
            self._select = None
        elif tag == "textarea":
            self._textarea = None
        elif tag == "form":
            self.fields = None

    def handle_data(self, data):
        if self._textarea and self.fields is not None:
            self.fields[self._textarea] += data


def form_fields(html: str) -> dict[str, str]:
    """The page's main POST form (the one with the most fields; FAB's hidden delete form aside)."""
    parser = _FormParser()
    parser.feed(html)
    forms = [f for f in parser.forms if set(f) != {"delete"}]
    return max(forms, key=len) if forms else {}


def forms_of(app, client) -> list[tuple[str, dict[str, str]]]:
    """(URL, current field values) of every add form and one edit form per model view the
    client may open (the edit form of the first row its list shows)."""
    found = []
    for view, list_url in list_views(app):
        base = view.route_base
        endpoints = _endpoints(app)
        name = type(view).__name__
        urls = []
        if f"{name}.add" in endpoints:
            urls.append(f"{base}/add")
        if f"{name}.edit" in endpoints:
            page = client.get(list_url)
            if page.status_code == 200:
                match = re.search(rf'href="{re.escape(base)}/edit/(\d+)', page.get_data(as_text=True))
                if match:
                    urls.append(f"{base}/edit/{match.group(1)}")
        for url in urls:
            response = client.get(url)
            if response.status_code != 200:
                continue
            fields = form_fields(response.get_data(as_text=True))
            if fields:
                found.append((url, fields))
    return found


# ================================================================ targeted tests
@pytest.mark.parametrize("pk", [str(2**31), str(2**63), "9" * 30, "١٢", "１２"])
@pytest.mark.parametrize("route", ["show", "edit", "delete", "action/no_such_action"])
def test_a_key_beyond_the_database_range_is_a_zh_tw_404(login_as, pk, route):
    """issue 12 class 8: /show/2**31 … was a 500 (an OverflowError on SQLite, a DataError on
    PostgreSQL); a key the database cannot hold, or written in other digits, names no row."""
    client = login_as("facility_tpe")
    for base in ("/visitview", "/quitterview", "/institutionview", "/corrections"):
        if base == "/corrections" and route in ("edit", "delete"):
            continue
        response = request(client, "get", f"{base}/{route}/{pk}")
        # 403: the user may not edit or delete there at all (FAB checks that first).
        assert response.status_code in (302, 403, 404), (base, route, pk, response.status_code)


def test_a_unicode_digit_key_does_not_name_the_row_of_its_ascii_value(app, login_as, db):
    """issue 12 class 8: int('١٢') is 12; a key must be written in ASCII digits."""
    from models.cessation.visit import Visit

    client = login_as("office")
    pk = db.session.query(Visit.id).order_by(Visit.id).first()[0]
    arabic = str(pk).translate(str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩"))
    assert client.get(f"/visitview/show/{pk}").status_code == 200
    assert request(client, "get", f"/visitview/show/{arabic}").status_code == 404


@pytest.mark.parametrize(
    "query",
    [
        "page_VisitView=" + "9" * 30,
        "page_VisitView=²",
        "psize_VisitView=١٢",
        "psize_VisitView=１２",
        "page_VisitView=-1",
        "page_QuitterView=²",  # another view's name: FAB int()s every page_* argument
        "psize_AnyView=²",
        "x_page_y=abc",  # FAB's re.findall("page_(.*)") matches anywhere in the name
        "_flt_٩_visit_date=114/01/01",  # \d in FAB's _flt_(\d)_ matches Arabic-Indic digits
        "_flt_9_visit_date=114/01/01",  # no 10th date filter: an IndexError
        "_flt_1_institution=x",  # the institution box has one filter
    ],
)
def test_bad_list_arguments_are_a_zh_tw_400(login_as, query):
    """issue 12 class 8: page/psize/filter arguments FAB int()s or indexes unchecked."""
    client = login_as("facility_tpe")
    response = request(client, "get", f"/visitview/list/?{query}")
    assert response.status_code == 400, (query, response.status_code)


def test_page_arguments_of_a_related_view_on_a_show_page_are_checked(login_as, db):
    """issue 12 class 8: a show page lists related views, each paged by its own name."""
    from models.cessation.visit import Quitter, Visit

    client = login_as("office")
    quitter_id = db.session.query(Visit.quitter_id).first()[0]
    assert db.session.get(Quitter, quitter_id) is not None
    for query in ("page_VisitView=²", "psize_VisitView=" + "9" * 30, "page_VisitView=" + "9" * 30):
        response = request(client, "get", f"/quitterview/show/{quitter_id}?{query}")
        assert response.status_code == 400, (query, response.status_code)
    assert client.get(f"/quitterview/show/{quitter_id}?page_VisitView=0").status_code == 200


def test_a_deep_page_number_is_refused_not_overflowed(login_as):
    """issue 12 class 8: page_VisitView=10**30 overflowed the OFFSET (a 500)."""
    client = login_as("office")
    assert request(client, "get", f"/visitview/list/?page_VisitView={2**31}").status_code == 400
    assert client.get("/visitview/list/?page_VisitView=3").status_code == 200


@pytest.mark.parametrize(
    "value", ["9" * 30, str(2**31), "9999-99-99", "9999-12-31", "999/13/40", "%", "%(x)s", "²"]
)
def test_hostile_filter_values_never_answer_500(login_as, value):
    """issue 12 class 8: every filter of the visit, quitter and institution lists."""
    client = login_as("office")
    for base in ("/visitview", "/quitterview", "/institutionview", "/auditlogview"):
        for n in range(4):
            for col in ("visit_date", "birth_date", "level", "county", "row_key", "at", "name"):
                request(client, "get", f"{base}/list/", query_string={f"_flt_{n}_{col}": value})


@pytest.mark.parametrize("month", ["9999/12", "99999/12", "8088/12", "2201/1", "114/13", "114/²", "%"])
def test_a_month_outside_the_calendar_is_a_message(login_as, month):
    """issue 12 class 8: ?month=9999/12 overflowed dt.date (self-check and fee deduction)."""
    client = login_as("office")
    for url in ("/selfcheck/", "/feededuction/", "/feededuction/export"):
        response = request(client, "get", url, query_string={"month": month})
        assert response.status_code == 200, (url, month, response.status_code)
        if url != "/feededuction/export":
            error = re.search(r'class="text-danger"[^>]*>(.*?)</', response.get_data(as_text=True), re.S)
            assert error and _CJK.search(error.group(1)), (url, month)


@pytest.mark.parametrize("month", ["0/1", "-5/3", "1/1", "001/01"])
def test_an_early_month_is_no_500(login_as, month):
    """issue 12 class 8: months before ROC 1 compute their first and last day without error."""
    client = login_as("office")
    for url in ("/selfcheck/", "/feededuction/"):
        assert request(client, "get", url, query_string={"month": month}).status_code == 200


@pytest.mark.parametrize("year", ["²", "١١٣", "１１３", "9" * 30, "9" * 5000, "%"])
def test_a_statistics_year_in_other_digits_is_a_message(login_as, api_as, year):
    """issue 12 class 8: '²'.isdigit() is True but int('²') raises (a 500)."""
    client = login_as("office")
    response = request(client, "get", "/cessationstats/", query_string={"year": year})
    assert response.status_code in (200, 400)
    request(client, "get", "/cessationstats/export", query_string={"year": year})
    api, headers = api_as("office")
    response = request(api, "get", "/api/v1/reports/cessation", query_string={"year": year}, headers=headers)
    assert response.status_code == 400 and response.is_json


def test_a_far_future_visit_date_is_refused_before_its_deadline_is_computed(app, db, api_as):
    """issue 12 class 8: entry_deadline(9999-12-31) overflowed before the date was refused."""
    from models.cessation.visit import Visit

    client, headers = api_as("facility_tpe")
    sample = db.session.get(Visit, client.get("/api/v1/visit/", headers=headers).json["ids"][0])
    before = db.session.query(Visit).count()
    original = sample.visit_date
    for date in ("9999-12-31", "9999-12-01", "0001-01-01"):
        body = {
            "institution": sample.institution_id,
            "practitioner": sample.practitioner_id,
            "quitter": sample.quitter_id,
            "visit_date": date,
            "medication_days": 7,
        }
        response = request(client, "post", "/api/v1/visit/", json=body, headers=headers)
        assert 400 <= response.status_code < 500, (date, response.status_code)
        response = request(client, "put", f"/api/v1/visit/{sample.id}", json={"visit_date": date},
                           headers=headers)  # fmt: skip
        assert 400 <= response.status_code < 500, (date, response.status_code)
    db.session.expire_all()
    assert db.session.query(Visit).count() == before
    assert db.session.get(Visit, sample.id).visit_date == original


@pytest.mark.parametrize("text", ["9999/12/31", "9999-12-31", "2201-01-01", "1899-12-31", "7999/01/01"])
def test_parse_date_refuses_dates_outside_the_supported_range(app, text):
    """issue 12 class 8: dates are accepted only from 1900-01-01 to 2200-12-31."""
    from core.dates import DateFormatError, parse_date

    with app.test_request_context():
        with pytest.raises(DateFormatError):
            parse_date(text)
        assert parse_date("2200-12-31") == dt.date(2200, 12, 31)
        assert parse_date("1900-01-01") == dt.date(1900, 1, 1)


@pytest.mark.parametrize("text", ["%", "114/4/1%", "%(value)s", "%s", "100%"])
def test_a_percent_sign_in_a_date_field_is_echoed_as_typed(app, login_as, text):
    """issue 12 class 8: the message echoed the typed text into %-formatting (a 500)."""
    client = login_as("facility_tpe")
    for url in ("/visitview/add", "/quitterview/add", "/contractperiodview/add"):
        page = client.get(url)
        if page.status_code != 200:
            continue
        fields = form_fields(page.get_data(as_text=True))
        dates = [k for k in fields if k.endswith("date") or k.endswith("_on")]
        assert dates, url
        data = {**fields, **{k: text for k in dates}}
        response = request(client, "post", url, data={**data, "csrf_token": csrf_token(client.application, client)})
        assert response.status_code == 200, (url, response.status_code)
        assert text in visible_text(response.get_data(as_text=True)), (url, text)


def test_the_converted_swap_case_ticket_shows_its_reentry_reminder(app, db, login_as):
    """issue 12 class 8: the ticket page passed a function to Jinja's map (a 500); the C6
    reminder links to it."""
    from models.cessation.correction import CorrectionTicket

    tickets = [t for t in db.session.query(CorrectionTicket).all() if t.reentry_pending]
    assert tickets, "the demo seeds a converted swap-case ticket"
    ticket = tickets[0]
    dates = [d for d in ticket.displaced_dates]
    for user in ("facility_tpe", "office"):
        client = login_as(user)
        response = request(client, "get", f"/corrections/show/{ticket.id}")
        if user == "facility_tpe" and response.status_code == 404:
            continue
        assert response.status_code == 200, (user, response.status_code)
        text = visible_text(response.get_data(as_text=True))
        from core.dates import to_roc

        for date in dates:
            assert to_roc(date) in text


def test_a_database_error_on_bad_input_is_a_400_after_a_rollback(app, db, login_as, api_as, monkeypatch, caplog):
    """issue 12 class 8: the safety net. A DataError / OverflowError / StatementError that bad
    input provokes answers 400 (HTML: a zh_TW page; API: JSON) after a rollback, and is logged."""
    from sqlalchemy.exc import DataError

    from views.registry.institutions import InstitutionView
    from views.registry.reference import CountyApi

    def boom(*args, **kwargs):
        raise DataError("SELECT 1", {}, Exception("value out of range for type integer"))

    monkeypatch.setattr(InstitutionView, "_list", boom)
    # Alembic's fileConfig (run in-process by the app fixture) disables existing loggers.
    monkeypatch.setattr(logging.getLogger("core.web.badinput"), "disabled", False)
    client = login_as("office")
    with caplog.at_level("WARNING"):
        response = request(client, "get", "/institutionview/list/")
    assert response.status_code == 400
    assert any(r.exc_info and "value out of range" in str(r.exc_info[1]) for r in caplog.records), [
        (r.name, r.getMessage()) for r in caplog.records]
    monkeypatch.setattr(CountyApi, "get_list_headless", lambda self, **kw: boom())
    api, headers = api_as("office")
    response = request(api, "get", "/api/v1/county/", headers=headers)
    assert response.status_code == 400 and response.is_json
    monkeypatch.undo()
    assert client.get("/institutionview/list/").status_code == 200


def test_a_medication_days_overflow_through_the_api_is_not_a_500(db, api_as):
    """issue 12 class 8 (the net under class 6): 10**30 medication days answer 4xx."""
    from models.cessation.visit import Visit

    client, headers = api_as("facility_tpe")
    sample = client.get("/api/v1/visit/", headers=headers).json["result"][0]
    before = db.session.query(Visit).count()
    response = request(client, "put", f"/api/v1/visit/{sample['id']}", json={"medication_days": 10**30},
                       headers=headers)  # fmt: skip
    assert 400 <= response.status_code < 500
    assert "Error" not in str(response.json), response.json  # no exception named
    db.session.expire_all()
    assert db.session.query(Visit).count() == before
    assert db.session.get(Visit, sample["id"]).medication_days == sample["medication_days"]


@pytest.mark.parametrize(
    "flt",
    [
        {"col": "name", "opr": "sw", "value": 2**31},
        {"col": "name", "opr": "ct", "value": True},
        {"col": "name", "opr": "in", "value": 5},
        {"col": "name", "opr": "sw", "value": [1]},
        {"col": "name", "opr": "sw", "value": None},
        {"col": "nhi_code", "opr": "eq", "value": 10**30},
        {"col": "level", "opr": "rel_o_m", "value": 10**30},
    ],
)
def test_an_api_filter_value_of_the_wrong_kind_is_no_500(api_as, flt):
    """issue 12 class 8: FAB passed q= values on as given (value + "%" was a TypeError)."""
    client, headers = api_as("facility_tpe")
    response = request(client, "get", "/api/v1/institution/", headers=headers,
                       query_string={"q": prison.dumps({"filters": [flt]})})  # fmt: skip
    assert response.status_code in (200, 400), (flt, response.status_code)
    assert "Error" not in str(response.json)


@pytest.mark.parametrize("paging", [{"page": 2**31, "page_size": 10}, {"page_size": 10**30}, {"page": -1}, {"page_size": "x"}])
def test_api_paging_beyond_the_range_is_no_500(api_as, paging):
    """issue 12 class 8: API page/page_size given huge or of the wrong kind."""
    client, headers = api_as("facility_tpe")
    response = request(client, "get", "/api/v1/visit/", headers=headers, query_string={"q": prison.dumps(paging)})
    assert response.status_code in (200, 400)


@pytest.mark.parametrize("q", ["6.46172113804693e+16", "(page:1e+5)", "(", "!x", "(filters:!((col:id,opr:eq,value:1e+1)))"])
@pytest.mark.parametrize("path", ["/api/v1/contract_period/1", "/api/v1/visit/", "/api/v1/treatmentrecord/_info"])
def test_api_rison_that_prison_cannot_read_is_a_400(api_as, path, q):
    """A ?q= prison fails on (it raises ValueError on `6.4e+16`, which FAB does not catch) is
    a zh_TW 400, never a 500 (found by schemathesis)."""
    client, headers = api_as("facility_tpe")
    response = request(client, "get", path, headers=headers, query_string={"q": q})
    assert response.status_code in (400, 404), (path, q, response.status_code)
    assert response.status_code == 404 or not response.json["message"].isascii()


@pytest.mark.parametrize("url", ["/visitview/show/" + "9" * 30, "/no/such/page", "/visitview/list/?page_VisitView=²"])
def test_html_4xx_pages_are_in_zh_tw(login_as, url):
    """issue 12 class 8: FAB renders werkzeug's English 'Not Found' / 'Bad Request' pages."""
    client = login_as("bureau_tpe")
    response = request(client, "get", url)
    assert response.status_code in (400, 404)
    assert_zh_tw_error(response, url)


# ===================================================================== the fuzz
@given(data=st.data())
@settings(FUZZ, max_examples=6)
@pytest.mark.parametrize("username", USERS_HTML)
def test_fuzz_list_arguments(app, login_as, no_commits, username, data):
    """issue 12 class 8: every list view's paging, ordering and search filters."""
    client = login_as(username)
    views = list_views(app)
    names = [type(v).__name__ for v, _ in views]
    with no_commits():
        for view, url in views:
            name = type(view).__name__
            args = {}
            kind = data.draw(st.sampled_from(["page", "psize", "order", "other", "filters"]))
            if kind == "page":
                args[f"page_{name}"] = data.draw(hostile_number)
            elif kind == "psize":
                args[f"psize_{name}"] = data.draw(hostile_number)
            elif kind == "order":
                args[f"_oc_{name}"] = data.draw(st.sampled_from(list(view.order_columns or ["x"]) + HOSTILE))
                args[f"_od_{name}"] = data.draw(st.sampled_from(["asc", "desc", "²", "%"]))
            elif kind == "other":
                other = data.draw(st.sampled_from(names))
                args[data.draw(st.sampled_from([f"page_{other}", f"psize_{other}", "xpage_", "_flt_²_x"]))] = (
                    data.draw(hostile_number)
                )
            for col, count in search_filters(view).items():
                n = data.draw(st.sampled_from(list(range(count)) + [count, 9]))
                args[f"_flt_{n}_{col}"] = data.draw(hostile_text)
                if kind != "filters":
                    break
            request(client, "get", url, query_string=args)


@given(data=st.data())
@settings(FUZZ, max_examples=1)
@pytest.mark.parametrize("username", ["facility_tpe"])  # test_fuzz_list_arguments runs all three
def test_fuzz_every_filter_and_page_argument(app, login_as, no_commits, username, data):
    """issue 12 class 8: every search filter of every list, each alone, with hostile values."""
    client = login_as(username)
    with no_commits():
        for view, url in list_views(app):
            name = type(view).__name__
            for col, count in search_filters(view).items():
                for n in range(count):
                    value = data.draw(hostile_text)
                    request(client, "get", url, query_string={f"_flt_{n}_{col}": value})
            for arg in (f"page_{name}", f"psize_{name}"):
                request(client, "get", url, query_string={arg: data.draw(hostile_number)})


@given(data=st.data())
@settings(FUZZ, max_examples=2)
@pytest.mark.parametrize("username", (*USERS_HTML, "admin"))  # admin: FAB's own security views
def test_fuzz_by_key_routes(app, login_as, no_commits, username, data):
    """issue 12 class 8: every route with a URL argument, with keys that name no row."""
    client = login_as(username)
    with no_commits():
        for rule, method in keyed_routes(app):
            if rule.rule.startswith("/api/"):
                continue
            values = {}
            for arg in rule.arguments:
                if arg == "name" and "/action/" in rule.rule:
                    # A real action's name, so that the key is what is fuzzed.
                    view = next(v for v in app.appbuilder.baseviews if rule.endpoint.startswith(type(v).__name__ + "."))
                    values[arg] = data.draw(st.sampled_from(list(getattr(view, "actions", {}) or {}) or ["x"]))
                else:
                    values[arg] = data.draw(st.sampled_from(HOSTILE_KEYS))
            url = rule.rule
            for arg, value in values.items():
                url = re.sub(rf"<(?:[^:<>]+:)?{arg}>", urllib.parse.quote(value, safe=""), url)
            if method == "GET":
                request(client, "get", url)
            else:
                request(client, method.lower(), url, data={"csrf_token": csrf_token(app, client)})


@given(data=st.data())
@settings(FUZZ, max_examples=1)
@pytest.mark.parametrize("username", ("facility_tpe", "office", "bureau_tpe", "admin"))
def test_fuzz_forms(app, login_as, no_commits, username, data):
    """issue 12 class 8: every add and edit form, one hostile field at a time, then all at once."""
    client = login_as(username)
    forms = forms_of(app, client)
    assert forms, username
    token = csrf_token(app, client)
    with no_commits():
        for url, fields in forms:
            statuses = set()
            for field in fields:
                value = data.draw(hostile_text)
                statuses.add(request(client, "post", url, data={**fields, field: value, "csrf_token": token}).status_code)
            hostile = {field: data.draw(hostile_text) for field in fields}
            statuses.add(request(client, "post", url, data={**hostile, "csrf_token": token}).status_code)
            # Some post reached the form's validation (a refused CSRF token would be 400 for all).
            assert statuses - {400}, (url, statuses)


@given(data=st.data())
@settings(FUZZ, max_examples=8)
@pytest.mark.parametrize("username", USERS_HTML)
def test_fuzz_report_arguments(app, login_as, no_commits, username, data):
    """issue 12 class 8: the report screens' query arguments (and their exports)."""
    client = login_as(username)
    with no_commits():
        for _view, urls, args in report_views(app):
            for url in urls:
                query = {arg: data.draw(hostile_text) for arg in args if data.draw(st.booleans())}
                request(client, "get", url, query_string=query)


@given(data=st.data())
@settings(FUZZ, max_examples=2)
def test_fuzz_api_filters_and_paging(app, api_as, no_commits, data):
    """issue 12 class 8: the REST APIs' q= filters and page arguments (as facility_tpe);
    schemathesis (tests/e2e/test_api_contract.py) covers the rest of the contract."""
    client, headers = api_as("facility_tpe")
    api_value = st.one_of(
        hostile_text,
        st.integers(min_value=-(2**70), max_value=2**70),
        st.sampled_from([2**31, -(2**31) - 1, 10**30, 1.5, True, None]),
    )
    with no_commits():
        for api in rest_apis(app):
            base = f"/api/v1/{api.resource_name}/"
            for col, flts in api._filters.get_search_filters().items():
                for flt in flts:
                    q = {"filters": [{"col": col, "opr": flt.arg_name, "value": data.draw(api_value)}]}
                    request(client, "get", base, query_string={"q": prison.dumps(q)}, headers=headers)
            paging = {
                "page": data.draw(api_value),
                "page_size": data.draw(api_value),
            }
            if data.draw(st.booleans()):
                paging["order_column"] = data.draw(st.sampled_from(list(api.order_columns or ["id"]) + ["²"]))
                paging["order_direction"] = data.draw(st.sampled_from(["asc", "desc", "%"]))
            q = prison.dumps(paging)
            request(client, "get", base, query_string={"q": q}, headers=headers)
            request(client, "get", base + data.draw(st.sampled_from(HOSTILE_KEYS)).replace("/", "%2F"),
                    headers=headers)  # fmt: skip

