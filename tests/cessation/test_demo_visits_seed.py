"""The demo visits are the same rows whether a second process plans them (SQLite, `make
run`) or the seeding process does (PostgreSQL, or fork=False)."""

from __future__ import annotations

import tempfile

from sqlalchemy import select

from app import create_app


def _visit_rows(url, tmp_path, monkeypatch, fork: bool):
    from flask_migrate import upgrade

    import seed.demo
    from core.extensions import db
    from models.cessation.visit import Quitter, Visit
    from seed.cessation.visits import PendingVisits

    made = []

    def pending(*args):
        made.append(PendingVisits(*args, fork=fork))
        return made[-1]

    monkeypatch.setattr(seed.demo, "PendingVisits", pending)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    scratch = create_app({"SQLALCHEMY_DATABASE_URI": url, "CACHE_TYPE": "SimpleCache",
                          "UPLOAD_FOLDER": str(tmp_path / "up")})  # fmt: skip
    with scratch.app_context():
        upgrade()
        seed.demo.seed_demo(seed=7, scale=0.02, addiction_cases=False)
        rows = (
            db.session.execute(select(Quitter.id, Quitter.national_id, Quitter.name, Quitter.sex,
                                      Quitter.birth_date).order_by(Quitter.id)).all(),
            db.session.execute(select(Visit.id, Visit.institution_id, Visit.practitioner_id, Visit.quitter_id,
                                      Visit.visit_date, Visit.medication_name, Visit.medication_days,
                                      Visit.education_minutes, Visit.entered_at, Visit.entry_timeliness)
                               .order_by(Visit.id)).all(),
            db.session.scalars(select(Visit.created_on).limit(1)).all(),
        )  # fmt: skip
        db.session.remove()
        db.engine.dispose()
    assert [p.child is not None for p in made] == [fork]  # the path under test was taken
    assert not list(tmp_path.glob("demo-visits-*"))  # the scratch database is gone
    return rows


def test_c9_demo_visits_planned_in_a_second_process_are_the_same_rows(tmp_path, monkeypatch):
    """C9's bulletin-shaped visits: the forked planner gives exactly the inline rows, with
    real datetimes (not text) once read back."""
    forked = _visit_rows(f"sqlite:///{tmp_path / 'a.db'}", tmp_path, monkeypatch, fork=True)
    inline = _visit_rows(f"sqlite:///{tmp_path / 'b.db'}", tmp_path, monkeypatch, fork=False)
    quitters, visits, (created,) = forked
    assert len(visits) > 1000 and len(quitters) > 100
    assert forked[:2] == inline[:2]
    assert hasattr(created, "hour")
    # every visit points at a quitter that exists
    assert {v[3] for v in visits} <= {q[0] for q in quitters}
