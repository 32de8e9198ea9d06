"""UserError: the root of every refusal the application shows to a user.

A refusal is an expected answer (a rule says no), not a fault: it carries the zh_TW message
and the HTTP status it is answered with. The screens' base (core/web/views.py) turns one into
a flash message and the APIs' base into `{"message": ...}` with its status, so no view needs
its own try/except for it.
"""

from __future__ import annotations


class UserError(Exception):
    """A refused request; str() is the zh_TW message, `status` the HTTP answer (default 422)."""

    #: 422: the request was understood, its content refused. Subclasses set their own.
    status: int = 422

    def __init__(self, message: str = "", status: int | None = None):
        super().__init__(message)
        self.message = str(message)
        if status is not None:
            self.status = status

    def __str__(self) -> str:
        return self.message

    def answer(self):
        """What an API answers as `message`: the text (a field error answers per field)."""
        return self.message
