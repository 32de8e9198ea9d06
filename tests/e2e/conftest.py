"""End-to-end suite (browser journeys, API contract): run once by `make test-e2e`, never by
the plain `pytest` of the SQLite and PostgreSQL passes (pyproject: norecursedirs)."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _schemathesis_node_id(request):
    """schemathesis 4.32's lazy (fixture) schemas read `node._nodeid`, which pytest 9 keeps
    as `node._id`: give them the attribute they read (it only labels the report)."""
    if not hasattr(request.node, "_nodeid"):
        request.node._nodeid = request.node.nodeid


@pytest.fixture(scope="session")
def live_server(tmp_path_factory):
    """gunicorn over its own freshly seeded database (tests/e2e/browser.py: LiveServer)."""
    from tests.e2e.browser import LiveServer

    server = LiveServer(tmp_path_factory.mktemp("live")).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def browser():
    """Debian's /usr/bin/chromium, headless. Missing Chromium FAILS (never skips)."""
    import os

    from tests.e2e.browser import CHROMIUM, CHROMIUM_ARGS, chromium_missing_message

    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(chromium_missing_message())
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        yield chromium
        chromium.close()


@pytest.fixture
def journey(browser, live_server):
    """journey("name") -> a Journey (tests/e2e/browser.py); call .finish() at the end."""
    from tests.e2e.browser import Journey

    started = []

    def _start(name: str) -> Journey:
        person = Journey(browser, live_server, name)
        started.append(person)
        return person

    yield _start
