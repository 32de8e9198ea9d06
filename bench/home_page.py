"""The home page per role: p50 ms and SQL statements, the work queue beside today's page.

    DATABASE_URL=sqlite:///instance/app.db .venv/bin/python bench/home_page.py [--repeat N]

Reads the database DATABASE_URL names (seed it with `flask --app app seed demo` first; the
bench writes nothing but the sign-in sessions). For each demo role it measures, after two
warm-up requests, GET / as it is now (work queue, announcements, previous sign-in) and
the home page as it was before issue 15 (role and scope only: the old view and template,
copied below as the baseline), and prints p50, min and statements per request. Cold is
the first request after the counts' tables were written (every count recomputed). The
target is ≤ 30 ms p50 for the new page.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from sqlalchemy import event  # noqa: E402

ROLES = ["facility_tpe", "office", "bureau_tpe", "admin", "helpdesk", "dr_tpe", "ministry"]

OLD_TEMPLATE = """{% extends "appbuilder/base.html" %}
{% block content %}
<div class="jumbotron" style="padding: 24px">
  <h2>{{ appbuilder.app_name }}</h2>
  <p>{{ _("Signed in as %(name)s", name=user.username) }}（{{ roles|join("、") }}）</p>
  <p id="scope">{% if scope.national %}{{ _("Data scope: national") }}
  {% elif counties %}{{ counties|map(attribute="bureau_name")|join("、") }}
  {% elif institutions %}{{ institutions|map(attribute="name")|join("、") }}{% endif %}</p>
</div>
{% endblock %}"""


def old_home():
    """The home view before issue 15 (views/platform/index.py at main 4569942)."""
    from flask import current_app, g, render_template_string

    from core.data.scope import current_scope
    from core.security.roles import role_label
    from models.registry.institution import Institution
    from models.registry.reference import County

    scope = current_scope()
    user = g.user
    counties = County.query.filter(County.id.in_(scope.county_ids)).all() if scope.county_ids else []
    institutions = (
        Institution.query.filter(Institution.id.in_(scope.institution_ids)).order_by(Institution.nhi_code).all()
        if scope.institution_ids else []
    )  # fmt: skip
    return render_template_string(
        OLD_TEMPLATE, appbuilder=current_app.appbuilder, scope=scope, user=user,
        roles=[role_label(r.name) for r in user.roles], counties=counties, institutions=institutions,
        base_template=current_app.appbuilder.base_template,
    )  # fmt: skip


def run(client, url, counter, repeat):
    """(p50 ms, min ms, statements) of `repeat` GETs after two warm-ups."""
    for _ in range(2):
        assert client.get(url).status_code == 200
    times, statements = [], []
    for _ in range(repeat):
        counter[0] = 0
        started = time.perf_counter()
        response = client.get(url)
        times.append((time.perf_counter() - started) * 1000)
        statements.append(counter[0])
        assert response.status_code == 200
    return statistics.median(times), min(times), statistics.median(statements)


def cold(app, client, counter):
    """ms and statements of the first request after every count's tables were written."""
    from core.data.counts import bump_tables

    with app.app_context():
        bump_tables(["visit", "quitter", "correction_ticket", "correction_line", "account_application",
                     "institution", "contract_period", "announcement", "service_assignment",
                     "staff_licence", "training", "practitioner"])  # fmt: skip
    counter[0] = 0
    started = time.perf_counter()
    assert client.get("/").status_code == 200
    return (time.perf_counter() - started) * 1000, counter[0]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=30)
    args = parser.parse_args()
    from app import create_app
    from core.extensions import db
    from seed.testing import login

    app = create_app({"WTF_CSRF_ENABLED": True})
    app.add_url_rule("/bench-old-home", "bench_old_home", old_home)
    counter = [0]
    with app.app_context():
        event.listen(db.engine, "before_cursor_execute", lambda *a: counter.__setitem__(0, counter[0] + 1))
        print(f"database: {db.engine.url.render_as_string(hide_password=True)}")
    print(f"{'role':<14} {'old p50':>8} {'old min':>8} {'old SQL':>8} | {'new p50':>8} {'new min':>8}"
          f" {'new SQL':>8} | {'cold ms':>8} {'cold SQL':>8}")  # fmt: skip
    password = app.config["DEMO_PASSWORD"]
    for username in ROLES:
        client = app.test_client()
        response = login(app, client, username, password)
        if response.status_code != 302:
            print(f"{username}: login failed ({response.status_code})")
            continue
        old = run(client, "/bench-old-home", counter, args.repeat)
        new = run(client, "/", counter, args.repeat)
        cold_ms, cold_sql = cold(app, client, counter)
        print(f"{username:<14} {old[0]:>8.1f} {old[1]:>8.1f} {old[2]:>8.0f} | {new[0]:>8.1f} {new[1]:>8.1f}"
              f" {new[2]:>8.0f} | {cold_ms:>8.1f} {cold_sql:>8}")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
