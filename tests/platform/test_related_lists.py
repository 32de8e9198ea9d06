"""issue 12 class 5: a related list on a show or edit page (FAB's `related_views`) is shown
only to a viewer who may read the related resource, and holds only rows in their scope
(FAB trap 9: FAB renders every related view for anyone who may read the parent).

Self-discovering: every registered ScopedModelView with related views, as every demo user.
"""

from __future__ import annotations

import re

import pytest
from sqlalchemy import func

from core.web.views import ScopedModelView
from tests.conftest import USERNAMES
from tests.platform.test_scope_matrix import can, registered
from tests.scope_oracle import expected_split, user_view


def _views_with_related(app):
    views = [v for v in registered(app, ScopedModelView) if v._related_views]
    assert views, "no registered view has related views"
    return views


def _related_rows(db, parent_view, related_view, parent_pk) -> set[int]:
    """Keys of the related view's rows that point at the parent row (many-to-one or m2m)."""
    model = related_view.datamodel.obj
    fk = related_view.datamodel.get_related_fk(parent_view.datamodel.obj)
    parent = db.session.get(parent_view.datamodel.obj, parent_pk)
    relation = getattr(model, fk)
    if related_view.datamodel.is_relation_many_to_many(fk):
        condition = relation.contains(parent)
    else:
        condition = relation == parent
    return {row[0] for row in db.session.query(model.id).filter(condition)}


def _busiest_parent(db, parent_view, user) -> int | None:
    """A parent row the user can see with as many related rows (of every kind) as there are."""
    visible, _ = expected_split(db, parent_view.datamodel.obj, user)
    if not visible:
        return None
    totals = dict.fromkeys(visible, 0)
    for related_view in parent_view._related_views:
        model = related_view.datamodel.obj
        fk = related_view.datamodel.get_related_fk(parent_view.datamodel.obj)
        if related_view.datamodel.is_relation_many_to_many(fk):
            continue
        (column,) = getattr(model, fk).property.local_columns
        for key, count in db.session.query(column, func.count()).group_by(column):
            if key in totals:
                totals[key] += min(count, 20)  # a bit of everything rather than much of one
    return max(sorted(totals), key=totals.get)


def _pane(html: str, name: str) -> str | None:
    """The tab pane FAB renders a related view in, or None."""
    start = html.find(f'<div id="{name}" class="tab-pane">')
    if start < 0:
        return None
    end = html.find('<div id="Home"', start)
    nxt = html.find('<div id="', start + 10)
    stops = [i for i in (end, nxt) if i > start]
    return html[start : min(stops) if stops else len(html)]


@pytest.mark.parametrize("username", USERNAMES)
def test_related_lists_follow_the_related_resource(app, db, login_as, username):
    """issue 12 class 5: a show (and edit) page holds no tab, header or row of a related view
    the user may not read (the helpdesk on an institution sees neither its contracts nor its
    service assignments); a user who may read it sees only the related rows in their scope."""
    client = login_as(username)
    user = user_view(db, username)
    problems, checked = [], 0
    for view in _views_with_related(app):
        name = type(view).__name__
        if not can(app, username, "read", view.class_permission_name):
            continue
        pk = _busiest_parent(db, view, user)
        if pk is None:
            continue
        pages = {"show": client.get(f"{view.route_base}/show/{pk}")}
        if can(app, username, "edit", view.class_permission_name):
            pages["edit"] = client.get(f"{view.route_base}/edit/{pk}")
        for page, response in pages.items():
            assert response.status_code == 200, f"{name} {page} {pk}: {response.status_code}"
            html = response.text
            for related in view._related_views:
                rname = type(related).__name__
                pane = _pane(html, rname)
                where = f"{name} {page} {pk} → {rname} as {username}"
                checked += 1
                if not can(app, username, "read", related.class_permission_name):
                    if pane is not None or f'href="#{rname}"' in html:
                        problems.append(f"{where}: shown without read permission")
                    if re.search(rf"{re.escape(related.route_base)}/(show|edit)/\d+", html):
                        problems.append(f"{where}: links to its rows")
                    continue
                if pane is None:
                    problems.append(f"{where}: missing for a user who may read it")
                    continue
                rows = {int(k) for k in re.findall(rf"{re.escape(related.route_base)}/show/(\d+)", pane)}
                visible, _ = expected_split(db, related.datamodel.obj, user)
                expected = _related_rows(db, view, related, pk) & visible
                if rows - expected:
                    problems.append(f"{where}: out-of-scope rows {sorted(rows - expected)[:5]}")
                if len(expected) <= related.page_size and rows != expected:
                    problems.append(f"{where}: misses rows {sorted(expected - rows)[:5]}")
    if username in ("helpdesk", "bureau_tpe", "office"):
        assert checked, f"no related list checked for {username}"
    assert not problems, "\n".join(problems)


def test_helpdesk_reads_no_contract_or_assignment_of_an_institution(app, db, login_as):
    """issue 12 class 5, the reported case: the helpdesk (institution read only) opens an
    institution with contracts and service assignments and sees neither."""
    from models.registry.institution import ContractPeriod
    from models.registry.practitioner import ServiceAssignment

    institution_id = (
        db.session.query(ServiceAssignment.institution_id)
        .join(ContractPeriod, ContractPeriod.institution_id == ServiceAssignment.institution_id)
        .limit(1)
        .scalar()
    )
    assert institution_id is not None
    html = login_as("helpdesk").get(f"/institutionview/show/{institution_id}").text
    for rname in ("ContractPeriodView", "ServiceAssignmentView"):
        assert _pane(html, rname) is None and f'href="#{rname}"' not in html
    # The institution's own details are still there.
    assert 'id="Home"' in html
