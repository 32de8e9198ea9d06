"""Workflow: a status machine over one column of one model, knowing nothing of what it moves.

Each named transition has the statuses it may start from and the status it leads to. A
transition is refused (a UserError, 409) unless the row is in one of its sources, and it
first claims the row with a compare-and-set `UPDATE ... WHERE status = <the status read>`:
of two concurrent clicks only one matches a row, the other is refused and changes nothing.
Every step writes a history row (who, when, from, to, note) through the model's own factory.
`TransitionCommand` runs one step as a core.commands.Command, so its side effects
(`after_commit`, e.g. mail) happen only once the step is committed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from sqlalchemy import inspect, update

from core import clock
from core.actor import current_actor
from core.commands import Command
from core.errors import UserError
from core.extensions import db


class TransitionRefused(UserError):
    """The row's status does not allow the step, or someone changed the row first."""

    status = 409


class Workflow:
    """Transitions {name: (sources, target)} of `model.<status_column>`, with a history row each.

    `history_factory(row, from_status=, to_status=, at=, user_id=, username=, note=)` builds
    (and attaches) the history row; `refused(row, name)` and `stale()` give the zh_TW messages
    of a wrong source and of a lost race; `error` is the TransitionRefused subclass raised.
    """

    def __init__(
        self,
        model,
        status_column: str,
        history_factory: Callable[..., Any],
        transitions: Mapping[str, tuple[tuple[str, ...], str]],
        *,
        refused: Callable[[Any, str], str],
        stale: Callable[[], str],
        error: type[TransitionRefused] = TransitionRefused,
    ):
        self.model, self.status_column = model, status_column
        self.history_factory = history_factory
        self.transitions = dict(transitions)
        self.refused, self.stale, self.error = refused, stale, error

    def status_of(self, row) -> str | None:
        """The row's status as this session read it."""
        return getattr(row, self.status_column)

    def allows(self, row, name: str) -> bool:
        """Whether the row's status is one the transition may start from."""
        sources, _target = self.transitions[name]
        return self.status_of(row) in sources

    def check(self, row, name: str) -> None:
        """Refuse the transition unless the row is in one of its sources; changes nothing."""
        if not self.allows(row, name):
            raise self.error(self.refused(row, name))

    def claim(self, row, expected: str) -> None:
        """Compare-and-set: the row still has `expected` in the database, and is now locked
        (a row lock on PostgreSQL, the write lock on SQLite) until the transaction ends."""
        mapper = inspect(self.model)
        identity = inspect(row).identity
        column = getattr(self.model, self.status_column)
        result = db.session.execute(
            update(self.model)
            .where(*(pk == value for pk, value in zip(mapper.primary_key, identity, strict=True)))
            .where(column == expected)
            # Writing the status it has is the guard; the column's onupdate stamps still apply.
            .values({self.status_column: expected})
            .execution_options(synchronize_session=False)
        )
        if result.rowcount != 1:
            raise self.error(self.stale())

    def record(self, row, from_status: str | None, to_status: str, note: str | None = None):
        """The history row of one step, by the current actor, now (added to the session)."""
        actor = current_actor()
        entry = self.history_factory(
            row, from_status=from_status, to_status=to_status, at=clock.utc_naive(),
            user_id=actor.id, username=actor.username, note=note,
        )  # fmt: skip
        db.session.add(entry)
        return entry

    def transition(self, row, name: str, note: str | None = None) -> None:
        """Check the source, claim the row, set its new status and record the step."""
        self.check(row, name)
        previous = self.status_of(row)
        self.claim(row, previous)
        target = self.transitions[name][1]
        setattr(row, self.status_column, target)
        self.record(row, previous, target, note)


class TransitionCommand(Command):
    """One named step of `workflow` on one row, as a Command: validate() checks the source,
    execute() claims and moves the row, then apply() makes the step's other changes."""

    workflow: Workflow
    name: str

    def __init__(self, row):
        self.row = row

    def validate(self) -> None:
        self.workflow.check(self.row, self.name)

    def note(self) -> str | None:
        """The history row's note (a reason); none by default."""
        return None

    def apply(self) -> None:
        """Changes to the row besides its status; none by default."""

    def execute(self):
        self.workflow.transition(self.row, self.name, self.note())
        self.apply()
        return self.row
