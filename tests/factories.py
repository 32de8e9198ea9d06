"""Test data helpers shared by the test modules: fresh national IDs, a facility's
institution with an assigned practitioner, the visit form's fields, the clock."""

from __future__ import annotations

import datetime as dt

from core import clock
from core.dates import TAIPEI
from core.validators import personal_id_check_digit
from models.cessation.visit import Quitter, Visit
from models.registry.institution import Institution
from models.registry.practitioner import Practitioner, ServiceAssignment
from tests.scope_oracle import user_view

_counter = iter(range(1_000_000, 9_999_999))


def _new_id(letter="Q") -> str:
    prefix = f"{letter}1{next(_counter):07d}"
    return prefix + personal_id_check_digit(prefix)


def _setup(db, username):
    """The user's institution and a practitioner assigned there (dates well before 2025)."""
    institution_id = min(user_view(db, username).institution_ids)
    practitioner = (
        db.session.query(Practitioner).join(ServiceAssignment)
        .filter(ServiceAssignment.institution_id == institution_id).first()
    )  # fmt: skip
    for assignment in practitioner.assignments:
        if assignment.institution_id == institution_id:
            assignment.start_date, assignment.end_date = dt.date(2020, 1, 1), None
    for contract in db.session.get(Institution, institution_id).contracts:
        contract.start_date, contract.end_date = dt.date(2010, 1, 1), None
    db.session.commit()
    return institution_id, practitioner.id


def _form(institution_id, practitioner_id, national_id, visit_date, **extra):
    data = {
        "institution": str(institution_id),
        "practitioner": str(practitioner_id),
        "quitter_national_id": national_id,
        "quitter_name": "吳宗翰",
        "quitter_sex": "M",
        "quitter_birth_date": "60/05/01",
        "visit_date": visit_date,
        "medication_name": "Varenicline",
        "medication_days": "14",
        "education_minutes": "",
    }
    data.update(extra)
    return data


def _visits(db, national_id):
    db.session.expire_all()
    return (
        db.session.query(Visit).join(Quitter).filter(Quitter.national_id == national_id)
        .order_by(Visit.visit_date).all()
    )  # fmt: skip


def _at(*args):
    return clock.frozen(dt.datetime(*args, tzinfo=TAIPEI))
