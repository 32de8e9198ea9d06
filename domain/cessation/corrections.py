"""Correction request tickets (資料更正申請單, Appendix 9), rules C5–C7 of the bulletin:

C5  a visit found missing after its deadline is entered under the discovery date (the
    placeholder); the form asks to move it to the real date (114/4/1 → 114/2/15);
C6  if the placeholder is refused by the 5-day rule, the nearby record (114/3/31) is
    rewritten and moved instead; after conversion the institution re-enters the
    displaced 114/3/31 visit, and the system reminds it to;
C7  a form is valid only with a detailed reason and both seals.

Commands are core.commands.Command: construct, `validate()` (raises CorrectionError with a
zh_TW message, changes nothing), `run()` (one transaction, mail only after its commit). The
statuses move through TICKET_FLOW (core/workflow.py). Conversion (轉檔) is the only path that
changes a visit after its entry deadline (C3).
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field

from flask_babel import gettext
from sqlalchemy import exists, func, select, update
from sqlalchemy.exc import IntegrityError

from core import clock, dates
from core.commands import Command
from core.data.audit import audit_reference
from core.data.scope import current_scope
from core.dates import to_roc
from core.extensions import db
from core.files import FileStore, UploadRefused
from core.mail import send_mail
from core.validators import normalize_id
from core.workflow import TransitionCommand
from domain.cessation.tickets import (
    TICKET_FLOW,
    CorrectionError,
    _close_if_reentered,
)
from domain.cessation.visits import (
    MIN_DAYS_APART,
    VisitRuleError,
    check_contract_and_assignment,
    check_five_days,
    is_open,
    lock_quitter,
)
from domain.registry.persons import same_person_ids
from models.cessation.correction import (
    AttachmentKind,
    CorrectionAttachment,
    CorrectionLine,
    CorrectionTicket,
    TicketChannel,
    TicketCounter,
    TicketStatus,
)
from models.cessation.visit import Quitter, Timeliness, Visit, entry_deadline
from models.registry.institution import Institution

log = logging.getLogger(__name__)

#: C7: a "detailed" reason has at least this many characters.
MIN_REASON_LENGTH = 10
MAX_REASON_LENGTH = 2000
MAX_LINES = 20
#: Accepted attachment types, decided by content (magic bytes), never by the file name.
ALLOWED_MIME = {
    "application/pdf": "pdf",
    "image/tiff": "tif",
    "image/jpeg": "jpg",
    "image/png": "png",
}
ATTACHMENT_FOLDER = "corrections"
ATTACHMENTS = FileStore(ATTACHMENT_FOLDER, ALLOWED_MIME, "CORRECTION_ATTACHMENT_MAX_BYTES", "attachment")
OPEN_STATUSES = (
    TicketStatus.RECEIVED.value,
    TicketStatus.IN_REVIEW.value,
    TicketStatus.APPROVED.value,
)


class AttachmentError(CorrectionError):
    """An attachment that is not a PDF, TIFF, JPEG or PNG, or is too large."""


class LineError(CorrectionError):
    """One line of a ticket is wrong; `position` is its 1-based number on the form."""

    def __init__(self, position: int, message: str):
        self.position = position
        self.detail = message
        super().__init__(gettext("Line %(n)d: %(message)s", n=position, message=message))


@dataclass
class LineInput:
    """One line as filed: the record's recorded date (or its id) and the date it should have."""

    recorded_date: dt.date | None = None
    corrected_date: dt.date | None = None
    #: C6: the record overwrote a real visit of its recorded date, to be re-entered later.
    displaced: bool = False
    visit_id: int | None = None


@dataclass
class AttachmentInput:
    """An uploaded file: its name as sent, its bytes, and what it is."""

    filename: str
    data: bytes
    kind: str = AttachmentKind.FORM.value


@dataclass
class PreviewLine:
    """Before/after of one record a conversion changes, and why it would fail (if it would)."""

    position: int
    visit_id: int
    before: dt.date
    after: dt.date
    original_date: dt.date | None
    displaced_date: dt.date | None
    applied: bool
    problem: str | None = None


@dataclass
class ConversionResult:
    """What a conversion did: whether anything changed, and the records it re-dated."""

    changed: bool
    lines: list[PreviewLine] = field(default_factory=list)




# ------------------------------------------------------------------ helpers


def roc_year(day: dt.date) -> int:
    return dates.roc_year(day.year)


def allocate_number(year: int) -> str:
    """The next number of an ROC year, e.g. 114-000123: one UPDATE of the year's counter row
    in the filing transaction (a row lock on PostgreSQL, the write lock on SQLite), so two
    filings at once never get the same number; the unique index on the number backs it up."""
    bump = (
        update(TicketCounter)
        .where(TicketCounter.year == year)
        .values(last_number=TicketCounter.last_number + 1)
    )
    if db.session.execute(bump).rowcount == 0:
        try:
            with db.session.begin_nested():
                db.session.add(TicketCounter(year=year, last_number=1))
        except IntegrityError:  # another filing created the year's row first
            db.session.execute(bump)
    last = db.session.scalar(select(TicketCounter.last_number).where(TicketCounter.year == year))
    return f"{year}-{last:06d}"


def check_attachment(filename: str, data: bytes) -> str:
    """The MIME type of an acceptable attachment, judged by its content; else AttachmentError."""
    try:
        return ATTACHMENTS.check(data)
    except UploadRefused as refused:
        if refused.reason == UploadRefused.EMPTY:
            message = gettext("The file %(name)s is empty.", name=filename)
        elif refused.reason == UploadRefused.TOO_LARGE:
            message = gettext(
                "The file %(name)s is larger than %(mb)d MB.", name=filename, mb=refused.limit_mb
            )
        else:
            message = gettext(
                "The file %(name)s is not a PDF, TIFF, JPEG or PNG document.", name=filename
            )
        raise AttachmentError(message) from None


def _institution_recipients(institution_id: int) -> list[str]:
    """E-mail addresses of the institution's active accounts (institutions have no own e-mail)."""
    from models.platform.user import ScopedUser, user_institution

    return sorted(
        set(
            db.session.scalars(
                select(ScopedUser.email)
                .join(user_institution, user_institution.c.user_id == ScopedUser.id)
                .where(
                    user_institution.c.institution_id == institution_id,
                    ScopedUser.active.is_(True),
                    ScopedUser.email.is_not(None),
                )
            )
        )
    )


def _notify(ticket: CorrectionTicket, subject: str, body: str) -> int:
    """Mail the institution; a mail failure never undoes the committed step."""
    sent = 0
    for address in _institution_recipients(ticket.institution_id):
        try:
            send_mail(address, subject, body)
            sent += 1
        except Exception:  # SMTP down: the ticket history still shows the step
            log.exception("could not mail %s about ticket %s", address, ticket.number)
    return sent


# --------------------------------------------------------------------- filing
class FileTicket(Command):
    """Intake of an Appendix 9 form: the office enters a faxed or e-mailed form, or the
    institution files online with the scanned stamped form. Lines must point at existing
    records of that institution and quitter."""

    def __init__(
        self,
        *,
        institution_id: int | None,
        quitter_national_id: str | None,
        channel: str,
        received_on: dt.date | None,
        reason: str | None,
        lines: list[LineInput],
        attachments: list[AttachmentInput] | tuple = (),
    ):
        self.institution_id = institution_id
        self.national_id = normalize_id(quitter_national_id)
        self.channel = channel
        self.received_on = received_on
        self.reason = (reason or "").strip()
        self.lines = [
            line for line in lines if line.recorded_date or line.corrected_date or line.visit_id
        ]
        self.attachments = list(attachments)
        self.institution: Institution | None = None
        self.quitter: Quitter | None = None
        self._visits: list[Visit] = []
        self._mimes: list[str] = []
        self._written: list[str] = []

    def validate(self) -> None:
        scope = current_scope()
        self.institution = (
            db.session.scalar(
                select(Institution).where(
                    Institution.id == self.institution_id, Institution.scope_clause(scope)
                )
            )
            if self.institution_id
            else None
        )
        if self.institution is None:
            raise CorrectionError(
                gettext("The institution does not exist or is outside your data scope.")
            )
        if self.channel not in {c.value for c in TicketChannel}:
            raise CorrectionError(gettext("Choose how the form was received."))
        if self.received_on is None:
            raise CorrectionError(gettext("Enter the date the form was received."))
        if self.received_on > clock.today():
            raise CorrectionError(gettext("The date received cannot be in the future."))
        if len(self.reason) > MAX_REASON_LENGTH:
            raise CorrectionError(gettext("The reason is too long."))
        online = self.channel == TicketChannel.ONLINE.value
        if online and len(self.reason) < MIN_REASON_LENGTH:
            raise CorrectionError(
                gettext(
                    "Explain the reason for the correction in detail (at least %(n)d characters).",
                    n=MIN_REASON_LENGTH,
                )
            )
        # The row of this ID that the institution's visits name (an ID may have a row
        # registered apart, domain/registry/persons.py).
        self.quitter = (
            db.session.scalar(
                select(Quitter)
                .where(
                    Quitter.national_id == self.national_id,
                    exists().where(
                        Visit.quitter_id == Quitter.id, Visit.institution_id == self.institution.id
                    ),
                )
                .order_by(Quitter.id)
                .limit(1)
            )
            if self.national_id
            else None
        )
        if self.quitter is None:
            raise CorrectionError(
                gettext("This institution has no visit record of a quitter with this national ID.")
            )
        if not self.lines:
            raise CorrectionError(gettext("A ticket needs at least one record to correct."))
        if len(self.lines) > MAX_LINES:
            raise CorrectionError(gettext("A ticket has at most %(n)d lines.", n=MAX_LINES))
        self._visits = [
            self._check_line(position, line) for position, line in enumerate(self.lines, start=1)
        ]
        if len({v.id for v in self._visits}) != len(self._visits):
            raise CorrectionError(gettext("The same record appears on two lines."))
        if online and not any(a.kind == AttachmentKind.FORM.value for a in self.attachments):
            raise AttachmentError(
                gettext("Attach the scanned correction request form with both seals.")
            )
        self._mimes = [check_attachment(a.filename, a.data) for a in self.attachments]

    def _check_line(self, position: int, line: LineInput) -> Visit:
        if line.visit_id is not None:
            visit = db.session.get(Visit, line.visit_id)
        elif line.recorded_date is not None:
            visit = db.session.scalar(
                select(Visit)
                .where(
                    Visit.institution_id == self.institution.id,
                    Visit.quitter_id == self.quitter.id,
                    Visit.visit_date == line.recorded_date,
                )
                .order_by(Visit.id)
                .limit(1)
            )
        else:
            raise LineError(position, gettext("Enter the date the record has now."))
        if (
            visit is None
            or visit.institution_id != self.institution.id
            or visit.quitter_id != self.quitter.id
        ):
            raise LineError(
                position,
                gettext("There is no record of this institution and quitter dated %(date)s.",
                        date=to_roc(line.recorded_date) if line.recorded_date else "?"),
            )  # fmt: skip
        if line.recorded_date is not None and visit.visit_date != line.recorded_date:
            raise LineError(
                position, gettext("The record is dated %(date)s.", date=to_roc(visit.visit_date))
            )
        corrected = line.corrected_date
        if corrected is None:
            raise LineError(position, gettext("Enter the date the record should have."))
        if corrected == visit.visit_date:
            raise LineError(
                position, gettext("The corrected date is the date the record already has.")
            )
        if corrected > clock.today():
            raise LineError(position, gettext("A visit cannot be dated in the future."))
        if is_open(corrected):
            raise LineError(
                position,
                gettext("Visits of %(date)s can still be corrected by the institution itself until %(deadline)s: no form is needed.",
                        date=to_roc(corrected), deadline=to_roc(entry_deadline(corrected))),
            )  # fmt: skip
        other = db.session.scalar(
            select(CorrectionTicket.number)
            .join(CorrectionLine, CorrectionLine.ticket_id == CorrectionTicket.id)
            .where(CorrectionLine.visit_id == visit.id, CorrectionTicket.status.in_(OPEN_STATUSES))
        )
        if other:
            raise LineError(
                position,
                gettext("This record is already on the open ticket %(number)s.", number=other),
            )
        return visit

    def execute(self) -> CorrectionTicket:
        ticket = CorrectionTicket(
            number=allocate_number(roc_year(clock.today())),
            institution_id=self.institution.id,
            quitter_id=self.quitter.id,
            channel=self.channel,
            received_on=self.received_on,
            reason=self.reason,
            status=TicketStatus.RECEIVED.value,
        )
        for position, (line, visit) in enumerate(
            zip(self.lines, self._visits, strict=True), start=1
        ):
            ticket.lines.append(
                CorrectionLine(
                    position=position, visit_id=visit.id, recorded_date=visit.visit_date,
                    corrected_date=line.corrected_date,
                    displaced_date=visit.visit_date if line.displaced else None,
                )
            )  # fmt: skip
        for upload, mime in zip(self.attachments, self._mimes, strict=True):
            stored = ATTACHMENTS.save(upload.data, mime)
            self._written.append(stored)
            ticket.attachments.append(
                CorrectionAttachment(
                    kind=upload.kind, filename=(upload.filename or stored)[-200:],
                    stored_name=stored, mime_type=mime, size=len(upload.data),
                )
            )  # fmt: skip
        TICKET_FLOW.record(ticket, None, TicketStatus.RECEIVED.value)
        db.session.add(ticket)
        return ticket

    def after_rollback(self) -> None:
        """The attachments of a ticket that was not filed are not kept either."""
        ATTACHMENTS.discard(self._written)



# ---------------------------------------------------------------- transitions
class _Transition(TransitionCommand):
    """One step of TICKET_FLOW; refused unless the ticket is in one of the step's sources."""

    workflow = TICKET_FLOW

    def __init__(self, ticket: CorrectionTicket):
        super().__init__(ticket)
        self.ticket = ticket


class StartReview(_Transition):
    """收件 → 審核中: a reviewer takes the ticket."""

    name = "review"


class Approve(_Transition):
    """審核中 → 核准待轉檔: only with a detailed reason and both seals checked (C7)."""

    name = "approve"

    def __init__(
        self, ticket, institution_seal: bool | None = None, supervisor_seal: bool | None = None
    ):
        super().__init__(ticket)
        self.institution_seal = (
            ticket.institution_seal_checked if institution_seal is None else institution_seal
        )
        self.supervisor_seal = (
            ticket.supervisor_seal_checked if supervisor_seal is None else supervisor_seal
        )

    def validate(self) -> None:
        super().validate()
        missing = []
        if len((self.ticket.reason or "").strip()) < MIN_REASON_LENGTH:
            missing.append(gettext("a detailed reason"))
        if not self.institution_seal:
            missing.append(gettext("the institution's seal"))
        if not self.supervisor_seal:
            missing.append(gettext("the supervisor's seal"))
        if missing:
            raise CorrectionError(
                gettext("The form is valid only with %(missing)s. Return it to the institution instead.",
                        missing="、".join(missing))
            )  # fmt: skip

    def apply(self) -> None:
        self.ticket.institution_seal_checked = True
        self.ticket.supervisor_seal_checked = True


class ReturnTicket(_Transition):
    """收件/審核中 → 退件, with a reason mailed to the institution (which may file again)."""

    name = "return"

    def __init__(self, ticket, reason: str | None):
        super().__init__(ticket)
        self.reason = (reason or "").strip()

    def validate(self) -> None:
        super().validate()
        if len(self.reason) < 4:
            raise CorrectionError(gettext("Give the reason for returning the ticket."))
        if len(self.reason) > MAX_REASON_LENGTH:
            raise CorrectionError(gettext("The reason is too long."))

    def note(self) -> str | None:
        return self.reason

    def apply(self) -> None:
        self.ticket.return_reason = self.reason

    def after_commit(self) -> None:
        ticket = self.ticket
        _notify(
            ticket,
            gettext("Correction request %(number)s was returned", number=ticket.number),
            gettext(
                "Your correction request %(number)s (received %(date)s) was returned, for this reason:\n"
                "%(reason)s\n\nPlease correct the form and file it again.\n",
                number=ticket.number, date=to_roc(ticket.received_on), reason=self.reason,
            ),
        )  # fmt: skip


class CloseTicket(_Transition):
    """已轉檔 → 結案 (the office closes a converted ticket)."""

    name = "close"

    def apply(self) -> None:
        self.ticket.closed_at = clock.utc_naive()



# ----------------------------------------------------------------- conversion
class ConvertTicket(Command):
    """轉檔: apply every line of an approved ticket in one transaction.

    Each record is re-dated, the 5-day rule re-checked at the new date (the record itself
    excluded), its first date kept in `original_date`, and it is marked as corrected by the
    ticket; the audit trail rows carry the ticket number. Any failing line changes nothing
    (LineError names it). Applying a converted ticket again changes nothing.
    """

    def __init__(self, ticket: CorrectionTicket):
        self.ticket = ticket

    def _lines(self) -> list[tuple[CorrectionLine, Visit]]:
        return [(line, db.session.get(Visit, line.visit_id)) for line in self.ticket.lines]

    def preview(self) -> list[PreviewLine]:
        """Before/after of every record, with the problem that would stop the conversion."""
        pairs = self._lines()
        ticket_visits = {visit.id for _, visit in pairs}
        finals = {visit.id: line.corrected_date for line, visit in pairs}
        result = []
        for line, visit in pairs:
            applied = (
                visit.corrected_by_ticket_id == self.ticket.id
                and visit.visit_date == line.corrected_date
            )
            item = PreviewLine(
                position=line.position, visit_id=visit.id, before=visit.visit_date, after=line.corrected_date,
                original_date=visit.original_date, displaced_date=line.displaced_date, applied=applied,
            )  # fmt: skip
            if not applied:
                item.problem = self._problem(line, visit, ticket_visits, finals)
            result.append(item)
        return result

    def _problem(self, line, visit, ticket_visits, finals) -> str | None:
        if visit.visit_date != line.recorded_date:
            return gettext(
                "The record is now dated %(now)s, not %(recorded)s as on the ticket.",
                now=to_roc(visit.visit_date), recorded=to_roc(line.recorded_date),
            )  # fmt: skip
        try:
            check_contract_and_assignment(
                visit.institution_id, visit.practitioner_id, line.corrected_date
            )
        except VisitRuleError as exc:
            return str(exc)
        window = dt.timedelta(days=MIN_DAYS_APART - 1)
        low, high = line.corrected_date - window, line.corrected_date + window
        # Other records of the quitter, outside this ticket, near the new date …
        other = db.session.scalar(
            select(Visit.visit_date).where(
                Visit.quitter_id.in_(same_person_ids(Quitter, visit.quitter_id)),
                Visit.visit_date.between(low, high),
                Visit.id.not_in(ticket_visits),
            ).limit(1)
        )  # fmt: skip
        # … and the other records of this ticket at their new dates.
        if other is None:
            other = next(
                (d for vid, d in finals.items() if vid != visit.id and low <= d <= high), None
            )
        if other is not None:
            return gettext(
                "Refused by the 5-day rule: this quitter already has a visit on %(date)s; "
                "two visits must be at least 5 days apart.",
                date=to_roc(other),
            )
        return None

    def validate(self) -> None:
        TICKET_FLOW.check(self.ticket, "convert")
        for item in self.preview():
            if item.problem:
                raise LineError(item.position, item.problem)

    def already_done(self) -> bool:
        return self.ticket.status in (
            TicketStatus.CONVERTED.value,
            TicketStatus.CLOSED.value,
        ) and all(line.applied_at is not None for line in self.ticket.lines)

    def run(self) -> ConversionResult:
        if self.already_done():
            return ConversionResult(changed=False, lines=self.preview())
        super().run()
        return ConversionResult(changed=True, lines=self.preview())

    def execute(self) -> None:
        ticket = self.ticket
        TICKET_FLOW.transition(ticket, "convert")
        lock_quitter(ticket.quitter_id)
        now = clock.utc_naive()
        with audit_reference(ticket.number):
            pairs = self._lines()
            for line, visit in pairs:
                if visit.visit_date != line.recorded_date:  # changed since the preview
                    raise LineError(
                        line.position,
                        gettext("The record is dated %(date)s.", date=to_roc(visit.visit_date)),
                    )
                if visit.original_date is None:
                    visit.original_date = visit.visit_date
                visit.visit_date = line.corrected_date
                # C8: the content of a converted record reached the system after the
                # deadline of its real date, whatever its entered_at says.
                visit.entry_timeliness = Timeliness.AFTER_DEADLINE.value
                visit.corrected_by_ticket_id = ticket.id
                line.applied_at = now
            db.session.flush()
            for line, visit in pairs:
                try:
                    check_five_days(
                        visit.quitter_id, visit.visit_date, exclude_visit_id=visit.id
                    )
                except VisitRuleError as exc:
                    raise LineError(line.position, str(exc)) from None
            ticket.converted_at = now
            # The audit trail reads its reference at flush: flush while it is the ticket's.
            db.session.flush()
        _close_if_reentered(ticket)

    def after_commit(self) -> None:
        """Mail the institution what was converted (and, C6, what to re-enter)."""
        ticket = self.ticket
        changes = "\n".join(
            f"  {to_roc(line.recorded_date)} → {to_roc(line.corrected_date)}"
            for line in ticket.lines
        )
        body = gettext(
            "Your correction request %(number)s has been converted:\n%(changes)s\n",
            number=ticket.number, changes=changes,
        )  # fmt: skip
        if ticket.displaced_dates:
            body += "\n" + gettext(
                "Please now re-enter the visit of %(dates)s that the corrected record had replaced.",
                dates="、".join(to_roc(d) for d in ticket.displaced_dates),
            )
        _notify(
            ticket,
            gettext("Correction request %(number)s has been converted", number=ticket.number),
            body,
        )


# --------------------------------------------------------------- C6 re-entry
def pending_reentries(scope=None) -> list[tuple[CorrectionTicket, dt.date]]:
    """(ticket, displaced date) reminders in the scope: visits the institution must re-enter."""
    scope = scope or current_scope()
    rows = db.session.execute(
        select(CorrectionTicket, CorrectionLine.displaced_date)
        .join(CorrectionLine, CorrectionLine.ticket_id == CorrectionTicket.id)
        .where(
            CorrectionTicket.status == TicketStatus.CONVERTED.value,
            CorrectionLine.displaced_date.is_not(None),
            CorrectionTicket.scope_clause(scope),
        )
        .order_by(CorrectionTicket.converted_at, CorrectionTicket.id)
    ).all()
    return [(ticket, day) for ticket, day in rows]


def status_counts(scope=None) -> dict[str, int]:
    """Tickets per status in the scope (the queue's header)."""
    scope = scope or current_scope()
    counts = dict(
        db.session.execute(
            select(CorrectionTicket.status, func.count())
            .where(CorrectionTicket.scope_clause(scope))
            .group_by(CorrectionTicket.status)
        ).all()
    )
    return {s.value: int(counts.get(s.value, 0)) for s in TicketStatus}
