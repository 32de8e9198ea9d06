"""Command: the one shape of every change a user asks for (after Superset's BaseCommand).

A view or API builds a command from the request and calls `run()`:

- `validate()` raises a UserError (core/errors.py) and changes nothing;
- `execute()` does the work; `run()` owns the transaction around both: commit on success,
  rollback on any exception (then `after_rollback()` undoes what is not in the database,
  such as files written);
- `after_commit()` holds the side effects (mail) that must happen only once the change is
  committed: a refused or failed command never mails anyone.
"""

from __future__ import annotations

from typing import Any

from core.extensions import db


class Command:
    """One user-requested change: validate, execute in one transaction, then side effects."""

    def validate(self) -> None:
        """Raise a UserError if the command cannot run; change nothing."""

    def execute(self) -> Any:
        """The work, inside the transaction `run()` commits; returns the command's result."""
        raise NotImplementedError(f"{type(self).__name__} must define execute()")

    def after_commit(self) -> None:
        """Side effects once the change is committed (mail); nothing by default."""

    def after_rollback(self) -> None:
        """Undo what the rollback cannot (files written); nothing by default."""

    def run(self) -> Any:
        """Validate, execute and commit; on any exception roll back and re-raise."""
        try:
            self.validate()
            result = self.execute()
            db.session.commit()
        except Exception:
            db.session.rollback()
            self.after_rollback()
            raise
        self.after_commit()
        return result
