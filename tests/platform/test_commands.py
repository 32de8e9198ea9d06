"""core/commands.py: validate() changes nothing, run() owns the transaction, after_commit()
runs only once the work is committed and after_rollback() only when it was not."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from core.commands import Command
from core.errors import UserError
from models.registry.reference import County


class AddCounty(Command):
    """Adds one county; records which hooks ran."""

    def __init__(self, code, refuse=False, fail=False):
        self.code, self.refuse, self.fail = code, refuse, fail
        self.ran: list[str] = []

    def validate(self):
        self.ran.append("validate")
        if self.refuse:
            raise UserError("不可新增。")

    def execute(self):
        from core.extensions import db

        county = County(code=self.code, name=f"縣{self.code}", bureau_name="局", sort_order=90)
        db.session.add(county)
        db.session.flush()
        if self.fail:
            raise RuntimeError("the work failed after writing")
        return county

    def after_commit(self):
        self.ran.append("after_commit")

    def after_rollback(self):
        self.ran.append("after_rollback")


def _count(db, code):
    db.session.expire_all()
    return db.session.scalar(select(func.count()).where(County.code == code))


def test_run_commits_then_runs_after_commit(app, db):
    command = AddCounty("ZY1")
    county = command.run()
    try:
        assert county.code == "ZY1" and _count(db, "ZY1") == 1
        assert command.ran == ["validate", "after_commit"]
    finally:
        db.session.delete(db.session.get(County, county.id))
        db.session.commit()


def test_a_refused_command_changes_nothing_and_mails_no_one(app, db):
    command = AddCounty("ZY2", refuse=True)
    with pytest.raises(UserError):
        command.run()
    assert _count(db, "ZY2") == 0
    assert command.ran == ["validate", "after_rollback"]


def test_a_failing_command_rolls_back_and_skips_after_commit(app, db):
    command = AddCounty("ZY3", fail=True)
    with pytest.raises(RuntimeError):
        command.run()
    assert _count(db, "ZY3") == 0
    assert "after_commit" not in command.ran and command.ran[-1] == "after_rollback"


def test_a_failing_commit_skips_after_commit(app, db):
    command = AddCounty("ZY4")
    command.execute = lambda: db.session.add(County(code="ZY4", name=None, bureau_name="局", sort_order=1))
    with pytest.raises(IntegrityError):  # the NOT NULL refusal of the database at commit
        command.run()
    assert _count(db, "ZY4") == 0 and "after_commit" not in command.ran


def test_a_command_must_say_what_it_does():
    with pytest.raises(NotImplementedError):
        Command().execute()
