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
