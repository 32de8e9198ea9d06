"""Outgoing mail through Flask-Mail; without MAIL_SERVER it is written to MAIL_FOLDER.

The folder fallback makes the whole account flow work locally and in tests: every message
is a UTF-8 .eml file named by time, recipient and subject, readable in any mail program.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import smtplib
import uuid
from pathlib import Path

from flask import current_app, flash, has_request_context, request
from flask_babel import gettext
from flask_mail import Mail, Message

log = logging.getLogger(__name__)
mail = Mail()


def send_mail(to: str, subject: str, body: str) -> Path | bool | None:
    """Send (or, without an SMTP server, file) one plain-text message; returns the file.

    A message that cannot be sent (SMTP server down or refusing, mail folder not writable)
    never undoes or interrupts the action that sent it: callers send after their commit,
    the failure is logged, the user is told in zh_TW (a flashed warning naming the
    recipient) and False is returned.
    """
    try:
        return _deliver(to, subject, body)
    except (smtplib.SMTPException, OSError, UnicodeError, ValueError):
        log.exception("could not send mail to %s (%s)", to, subject)
        _tell_user(to)
        return False


def mail_failed() -> bool:
    """Whether a message of the current request could not be sent (so no "mailed" notice)."""
    return has_request_context() and bool(request.__dict__.get("_mail_failures"))


def _tell_user(to: str) -> None:
    if not has_request_context():
        return
    told = request.__dict__.setdefault("_mail_failures", set())  # once per request
    if to in told:
        return
    told.add(to)
    flash(
        gettext(
            "The change has been saved, but the e-mail to %(to)s could not be sent. "
            "Please try again later or let them know another way.",
            to=to,
        ),
        "warning",
    )


def _deliver(to: str, subject: str, body: str) -> Path | None:
    message = Message(subject=subject, recipients=[to], body=body)
    message.sender = current_app.config["MAIL_DEFAULT_SENDER"]
    if current_app.config.get("MAIL_SERVER"):
        mail.send(message)
        return None
    folder = Path(current_app.config["MAIL_FOLDER"])
    folder.mkdir(parents=True, exist_ok=True)
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    safe_to = re.sub(r"[^A-Za-z0-9@._-]", "_", to)
    path = folder / f"{stamp}-{safe_to}-{uuid.uuid4().hex[:8]}.eml"
    path.write_bytes(message.as_bytes())
    return path


def read_mails(to: str | None = None) -> list[tuple[Path, str]]:
    """Messages in the mail folder (newest last), decoded to text; for tests and the README."""
    import email
    from email import policy

    folder = Path(current_app.config["MAIL_FOLDER"])
    found = []
    for path in sorted(folder.glob("*.eml"), key=lambda p: p.stat().st_mtime_ns):
        parsed = email.message_from_bytes(path.read_bytes(), policy=policy.default)
        if to is None or to in str(parsed["To"]):
            found.append((path, parsed.get_body(("plain",)).get_content()))
    return found
