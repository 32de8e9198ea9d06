"""core/data/versions.py: version tokens shared through the cache, and per-request memos."""

from __future__ import annotations

import pytest
from flask import Flask

from core.data import versions as versions_module
from core.data.versions import bump, request_memo, version, versions
from core.extensions import cache


def _app(cache_dir) -> Flask:
    """A bare app on a file cache in `cache_dir`, as a gunicorn worker has."""
    app = Flask(__name__)
    app.config.update(CACHE_TYPE="FileSystemCache", CACHE_DIR=str(cache_dir))
    cache.init_app(app)
    return app


@pytest.fixture
def two_workers(tmp_path):
    """Two app instances sharing one file cache (two processes on one server)."""
    return _app(tmp_path), _app(tmp_path)


def test_a_bump_changes_the_token_another_instance_reads(two_workers):
    one, two = two_workers
    with one.app_context():
        before = version("things")
    with two.app_context():
        assert version("things") == before  # the first read stored it for everyone
        bump("things")
        after = version("things")
    assert after != before
    with one.app_context():
        assert version("things") == after
        assert version("other") == version("other")  # untouched names keep their token


def test_a_lost_token_comes_back_fresh(two_workers):
    one, _ = two_workers
    with one.app_context():
        seen = {version("things")}
        for _ in range(3):
            cache.delete("things")  # evicted
            token = version("things")
            assert token not in seen
            seen.add(token)


def test_a_bump_outside_an_app_context_is_applied_on_the_next_read(two_workers):
    one, two = two_workers
    with one.app_context():
        before = version("things")
    bump("things")  # a script writing on a bare engine
    with two.app_context():
        after = version("things")
        assert after != before
        assert version("things") == after  # applied once
    assert not versions_module._missed


def test_a_token_is_read_once_per_request_and_a_bump_in_it_is_seen(two_workers):
    one, two = two_workers
    with one.test_request_context():
        first = versions("a", "b")
        with two.app_context():
            bump("a")  # another worker
        assert versions("a", "b") == first  # still this request's token
        bump("b")  # this request's own write
        assert versions("a", "b")[0] == first[0]
        assert versions("a", "b")[1] != first[1]
    with one.test_request_context():
        assert versions("a", "b")[0] != first[0]  # the next request reads it afresh


def test_a_memo_is_computed_once_per_request_and_not_shared():
    app = Flask(__name__)
    computed = []

    def factory():
        """Counts its calls."""
        computed.append(1)
        return len(computed)

    @app.route("/")
    def page():
        """Asks the memo twice in one request."""
        return str([request_memo("key", factory), request_memo("key", factory)])

    client = app.test_client()
    assert client.get("/").text == "[1, 1]"
    assert client.get("/").text == "[2, 2]"
    with app.app_context():  # outside a request: nothing to tie the value to
        assert [request_memo("key", factory), request_memo("key", factory)] == [3, 4]
