"""Writes must stay in scope: a row may not be created in, moved to, or pointed at another
institution or county, through the forms or the REST API; a refusal changes nothing."""

from __future__ import annotations

import contextlib
import datetime as dt

import pytest

from models.registry.institution import ContractPeriod, Institution
from models.registry.practitioner import Practitioner, ServiceAssignment
from tests.conftest import institution_form, post_form
from tests.scope_oracle import expected_split, user_view


def _foreign_institution(db, user):
    return db.session.query(Institution).filter(~Institution.id.in_(user.institution_ids)).first()


def _count(db, model):
    db.session.expire_all()
    return db.session.query(model).count()


def test_api_post_into_another_institution_is_refused(db, api_as):
    client, headers = api_as("facility_tpe")
    user = user_view(db, "facility_tpe")
    own_practitioners, _ = expected_split(db, Practitioner, user)
    foreign = _foreign_institution(db, user)
    before = _count(db, ServiceAssignment)
    response = client.post(
        "/api/v1/service_assignment/",
        headers=headers,
        json={
            "practitioner": min(own_practitioners),
            "institution": foreign.id,
            "start_date": "2025-01-01",
        },
    )
    assert response.status_code in (403, 422), response.text
    assert _count(db, ServiceAssignment) == before


def test_api_put_moving_a_row_to_another_institution_is_refused(db, api_as):
    client, headers = api_as("facility_tpe")
    user = user_view(db, "facility_tpe")
    own, _ = expected_split(db, ServiceAssignment, user)
    pk = min(own)
    foreign = _foreign_institution(db, user)
    response = client.put(
        f"/api/v1/service_assignment/{pk}", headers=headers, json={"institution": foreign.id}
    )
    assert response.status_code in (403, 422), response.text
    db.session.expire_all()
    assert db.session.get(ServiceAssignment, pk).institution_id in user.institution_ids


def test_api_cannot_link_a_practitioner_of_another_institution(db, api_as):
    """A new assignment must not make a foreign practitioner visible and vouch for itself."""
    client, headers = api_as("facility_tpe")
    user = user_view(db, "facility_tpe")
    _, foreign_practitioners = expected_split(db, Practitioner, user)
    before = _count(db, ServiceAssignment)
    response = client.post(
        "/api/v1/service_assignment/",
        headers=headers,
        json={
            "practitioner": min(foreign_practitioners),
            "institution": min(user.institution_ids),
            "start_date": "2025-01-01",
        },
    )
    # Refused like a practitioner that does not exist (issue 12: no write grants sight).
    assert response.status_code == 422, response.text
    assert "practitioner" in response.json["message"]
    assert _count(db, ServiceAssignment) == before
    listed = client.get("/api/v1/practitioner/", headers=headers).json["ids"]
    assert min(foreign_practitioners) not in listed


def test_bureau_cannot_move_an_institution_to_another_county(app, db, login_as):
    client = login_as("bureau_tpe")
    user = user_view(db, "bureau_tpe")
    institution = db.session.get(Institution, min(user.institution_ids))
    other_county = next(
        c for c in db.session.query(Institution.county_id).distinct() if c[0] != institution.county_id
    )[0]
    response = post_form(
        app,
        client,
        f"/institutionview/edit/{institution.id}",
        institution_form(institution, county=other_county),
    )
    assert response.status_code in (200, 302)
    db.session.expire_all()
    assert db.session.get(Institution, institution.id).county_id == institution.county_id


def test_bureau_cannot_add_a_contract_for_another_county(app, db, login_as):
    client = login_as("bureau_khh")
    user = user_view(db, "bureau_khh")
    foreign = _foreign_institution(db, user)
    before = _count(db, ContractPeriod)
    response = post_form(
        app,
        client,
        "/contractperiodview/add",
        {"institution": str(foreign.id), "start_date": "114/01/01", "end_date": ""},
    )
    assert response.status_code in (200, 302)
    assert _count(db, ContractPeriod) == before


def test_facility_adds_a_practitioner_with_its_first_assignment(app, db, login_as):
    client = login_as("facility_khh")
    user = user_view(db, "facility_khh")
    institution_id = min(user.institution_ids)
    response = post_form(
        app,
        client,
        "/practitionerview/add",
        {
            "national_id": "M221234563",
            "name": "林怡君",
            "profession": "nurse",
            "licence_number": "護字第000123號",
            "institution": str(institution_id),
            "start_date": "114/3/1",
        },
    )
    assert response.status_code == 302, response.text
    db.session.expire_all()
    person = db.session.query(Practitioner).filter_by(national_id="M221234563").one()
    assert [(a.institution_id, a.start_date) for a in person.assignments] == [
        (institution_id, dt.date(2025, 3, 1))
    ]


def test_facility_cannot_add_a_practitioner_at_another_institution(app, db, login_as):
    client = login_as("facility_khh")
    user = user_view(db, "facility_khh")
    foreign = _foreign_institution(db, user)
    before = _count(db, Practitioner)
    post_form(
        app,
        client,
        "/practitionerview/add",
        {
            "national_id": "N126543217",
            "name": "王志明",
            "profession": "physician",
            "institution": str(foreign.id),
            "start_date": "114/3/1",
        },
    )
    assert _count(db, Practitioner) == before


# ------------------------------------------------------------------ rows read in scope
class _Counter:
    """Statements run on the engine while it is active."""

    def __init__(self, engine):
        from sqlalchemy import event

        self.engine, self.count = engine, 0
        event.listen(engine, "before_cursor_execute", self._seen)

    def _seen(self, *args):
        self.count += 1

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        from sqlalchemy import event

        event.remove(self.engine, "before_cursor_execute", self._seen)


@contextlib.contextmanager
def _signed_in(app, db, username):
    """A request context signed in as `username`; rolled back and emptied after."""
    from flask import g
    from flask_login import login_user
    from sqlalchemy import select

    from models.platform.user import ScopedUser

    user = db.session.scalar(select(ScopedUser).where(ScopedUser.username == username))
    with app.test_request_context():
        login_user(user)
        g.user = user  # what FAB's before_request sets for a signed-in request
        try:
            yield
        finally:
            db.session.rollback()
            for name in ("user", "_login_user", "_scope"):
                g.pop(name, None)


def test_a_row_found_in_scope_is_not_read_again_until_the_transaction_ends(app, db):
    """ScopedInterface.get() of a row it found in scope earlier in the same transaction (before
    any write) answers from the session without a statement; a new transaction reads it
    again."""
    from core.data.datamodel import ScopedInterface
    from models.registry.practitioner import Practitioner as P

    user = user_view(db, "facility_tpe")
    own, _ = expected_split(db, P, user)
    pk = min(own)
    with _Counter(db.engine) as counter, _signed_in(app, db, "facility_tpe"):
        first = ScopedInterface(P).get(pk)
        read = counter.count
        assert first is not None and read >= 1
        assert ScopedInterface(P).get(pk) is first
        assert counter.count == read  # no statement the second time
        db.session.commit()
        assert ScopedInterface(P).get(pk) is not None
        assert counter.count > read  # the next transaction proves it again


def test_a_row_read_after_a_write_in_the_same_transaction_still_cannot_vouch_for_itself(app, db):
    """The remembered reads are those made before the transaction wrote anything: a foreign
    practitioner made visible by an uncommitted assignment, then read through get(), is still
    refused as a reference (the committed-state check runs for it)."""
    from core.data.datamodel import ScopedInterface, ScopeViolation
    from models.registry.practitioner import Practitioner as P

    user = user_view(db, "facility_tpe")
    _, foreign = expected_split(db, P, user)
    pk = min(foreign)
    before = _count(db, ServiceAssignment)
    with _signed_in(app, db, "facility_tpe"):
        rows = ScopedInterface(ServiceAssignment)
        assert ScopedInterface(P).get(pk) is None  # not visible before the write
        link = ServiceAssignment(practitioner_id=pk, institution_id=min(user.institution_ids),
                                 start_date=dt.date(2025, 1, 1))  # fmt: skip
        db.session.add(link)
        db.session.flush()
        seen = ScopedInterface(P).get(pk)  # visible inside the transaction now
        with pytest.raises(ScopeViolation):
            rows.enforce_scope([link])
        assert seen is not None  # what the committed-state check must not take as proof
    assert _count(db, ServiceAssignment) == before


def test_a_row_changed_in_the_transaction_is_read_again(app, db):
    """A remembered row the transaction has since changed is looked up again, not answered
    from memory: moved out of scope, get() no longer finds it."""
    from core.data.datamodel import ScopedInterface

    user = user_view(db, "facility_tpe")
    own, _ = expected_split(db, ServiceAssignment, user)
    pk = min(own)
    foreign = _foreign_institution(db, user)
    with _signed_in(app, db, "facility_tpe"):
        rows = ScopedInterface(ServiceAssignment)
        row = rows.get(pk)
        assert row is not None
        row.institution_id = foreign.id  # not flushed: the session holds the change
        assert rows.get(pk) is None
    db.session.expire_all()
    assert db.session.get(ServiceAssignment, pk).institution_id in user.institution_ids
