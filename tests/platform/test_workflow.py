"""core/workflow.py on a probe table of its own (no ticket): allowed sources, the
compare-and-set claim that refuses a stale row, one history row per step, and the
after-commit hook of a TransitionCommand."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import DateTime, ForeignKey, Integer, String, select, update
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from core.workflow import TransitionCommand, TransitionRefused, Workflow


class ProbeBase(DeclarativeBase):
    """A metadata apart from the app's: these tables exist only for this module."""


class Thing(ProbeBase):
    """A row with a status."""

    __tablename__ = "workflow_probe_thing"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    state: Mapped[str] = mapped_column(String(10))


class ThingStep(ProbeBase):
    """One history row of a Thing."""

    __tablename__ = "workflow_probe_step"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    thing_id: Mapped[int] = mapped_column(ForeignKey("workflow_probe_thing.id"))
    from_status: Mapped[str | None] = mapped_column(String(10))
    to_status: Mapped[str] = mapped_column(String(10))
    at: Mapped[dt.datetime] = mapped_column(DateTime)
    user_id: Mapped[int | None] = mapped_column(Integer)
    username: Mapped[str | None] = mapped_column(String(100))
    note: Mapped[str | None] = mapped_column(String(100))


class ProbeRefused(TransitionRefused):
    """The probe's own refusal class."""


FLOW = Workflow(
    Thing,
    "state",
    lambda thing, **fields: ThingStep(thing_id=thing.id, **fields),
    {"open": (("new",), "open"), "finish": (("open", "paused"), "done")},
    refused=lambda thing, name: f"{thing.state} cannot {name}",
    stale=lambda: "changed meanwhile",
    error=ProbeRefused,
)
MAILS: list[str] = []


class Finish(TransitionCommand):
    """The probe's command: finish, and 'mail' after the commit."""

    workflow = FLOW
    name = "finish"

    def note(self):
        return "finished"

    def after_commit(self):
        MAILS.append(self.row.state)


@pytest.fixture
def things(app, db):
    ProbeBase.metadata.create_all(db.engine)
    yield
    db.session.rollback()
    ProbeBase.metadata.drop_all(db.engine)


def _thing(db, state):
    thing = Thing(state=state)
    db.session.add(thing)
    db.session.commit()
    return thing


def _steps(db, thing_id):
    return db.session.scalars(select(ThingStep).where(ThingStep.thing_id == thing_id)).all()


def _state_in_db(db, thing_id):
    db.session.expire_all()
    return db.session.scalar(select(Thing.state).where(Thing.id == thing_id))


def test_a_transition_moves_the_row_and_records_one_step(things, db):
    thing = _thing(db, "new")
    FLOW.transition(thing, "open", note="go")
    db.session.commit()
    assert _state_in_db(db, thing.id) == "open"
    [step] = _steps(db, thing.id)
    assert (step.from_status, step.to_status, step.note) == ("new", "open", "go")
    assert step.at is not None


def test_a_transition_from_a_wrong_source_raises_and_changes_nothing(things, db):
    thing = _thing(db, "done")
    assert not FLOW.allows(thing, "open")
    with pytest.raises(ProbeRefused) as refused:
        FLOW.transition(thing, "open")
    assert str(refused.value) == "done cannot open" and refused.value.status == 409
    db.session.commit()
    assert _state_in_db(db, thing.id) == "done" and _steps(db, thing.id) == []


def test_the_compare_and_set_refuses_a_stale_row(things, db):
    thing = _thing(db, "new")
    thing_id = thing.id
    assert thing.state == "new"  # what this session read …
    # … and another click moved it meanwhile, behind this session's back.
    db.session.execute(
        update(Thing).where(Thing.id == thing_id).values(state="open")
        .execution_options(synchronize_session=False)
    )  # fmt: skip
    assert thing.state == "new"
    with pytest.raises(ProbeRefused, match="changed meanwhile"):
        FLOW.transition(thing, "open")
    db.session.commit()
    assert _state_in_db(db, thing_id) == "open" and _steps(db, thing_id) == []


def test_a_transition_command_mails_only_after_its_commit(things, db):
    MAILS.clear()
    thing = _thing(db, "new")
    with pytest.raises(ProbeRefused):
        Finish(thing).run()  # "new" is not a source of finish
    assert MAILS == [] and _steps(db, thing.id) == []
    thing = db.session.get(Thing, thing.id)
    thing.state = "paused"
    db.session.commit()
    assert Finish(thing).run() is thing
    assert MAILS == ["done"] and _state_in_db(db, thing.id) == "done"
    [step] = _steps(db, thing.id)
    assert (step.from_status, step.to_status, step.note) == ("paused", "done", "finished")


def test_a_lost_race_in_a_command_rolls_back_and_mails_no_one(things, db, monkeypatch):
    MAILS.clear()
    thing = _thing(db, "open")
    monkeypatch.setattr(Finish, "apply", lambda self: (_ for _ in ()).throw(RuntimeError("x")))
    with pytest.raises(RuntimeError):
        Finish(thing).run()
    assert MAILS == [] and _state_in_db(db, thing.id) == "open" and _steps(db, thing.id) == []
