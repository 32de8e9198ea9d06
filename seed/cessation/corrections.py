"""Demo correction tickets (Appendix 9) for the demo facilities, in every state of the
workflow, made through the same commands the screens use; and a placeholder visit of
facility_tpe for the office to enter a faxed ticket against."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import func, select

from core import clock
from core.extensions import db
from core.validators import personal_id_check_digit
from domain.cessation.corrections import (
    Approve,
    AttachmentInput,
    CloseTicket,
    ConvertTicket,
    FileTicket,
    LineInput,
    ReturnTicket,
    StartReview,
)
from models.cessation.correction import AttachmentKind, CorrectionTicket, TicketChannel
from models.cessation.visit import Quitter, Visit, timeliness
from models.registry.practitioner import ServiceAssignment
from seed.documents import blank_pdf

#: The quitter of the placeholder visit waiting for the office's faxed ticket (README).
FAX_JOURNEY_ID_PREFIX = "F12345678"
REASON = "個案於 {real} 就診之資料漏未登錄，發現日 {found} 以發現日建檔，申請更正為實際就診日期。"


def _quitter(national_prefix: str, name: str) -> Quitter:
    national_id = national_prefix + personal_id_check_digit(national_prefix)
    quitter = db.session.scalar(select(Quitter).where(Quitter.national_id == national_id))
    if quitter is None:
        quitter = Quitter(national_id=national_id, name=name, sex="M" if national_id[1] == "1" else "F",
                          birth_date=dt.date(1968, 5, 1))  # fmt: skip
        db.session.add(quitter)
        db.session.flush()
    return quitter


def _visit(institution_id: int, quitter: Quitter, day: dt.date) -> Visit:
    practitioner_id = db.session.scalar(
        select(ServiceAssignment.practitioner_id)
        .where(ServiceAssignment.institution_id == institution_id, ServiceAssignment.start_date <= dt.date(2024, 1, 1))
        .order_by(ServiceAssignment.id).limit(1)
    )  # fmt: skip
    entered = dt.datetime.combine(day, dt.time(10, 0)) - dt.timedelta(hours=8)
    visit = Visit(institution_id=institution_id, practitioner_id=practitioner_id, quitter_id=quitter.id,
                  visit_date=day, medication_name="Varenicline", medication_days=14, education_minutes=20,
                  entered_at=entered, entry_timeliness=timeliness(day, entered).value)  # fmt: skip
    db.session.add(visit)
    db.session.flush()
    return visit


def _file(institution_id, quitter, found, real, channel, displaced=False, pdf=b"", received=None):
    """File a ticket received on `received` (default today) through the screens' command."""
    from core.dates import to_roc

    attachments = (
        [AttachmentInput("附錄九更正申請單.pdf", pdf, AttachmentKind.FORM.value)] if pdf else []
    )
    return FileTicket(
        institution_id=institution_id, quitter_national_id=quitter.national_id, channel=channel,
        received_on=received or clock.today(), reason=REASON.format(real=to_roc(real), found=to_roc(found)),
        lines=[LineInput(recorded_date=found, corrected_date=real, displaced=displaced)],
        attachments=attachments,
    ).run()  # fmt: skip


def seed_corrections(tpe_institution_id: int, khh_institution_id: int) -> int:
    """Tickets in each state for facility_tpe (one for facility_khh), once."""
    if db.session.scalar(select(func.count(CorrectionTicket.id))):
        return db.session.scalar(select(func.count(CorrectionTicket.id)))
    pdf = blank_pdf()
    today = clock.today()
    found, real = today - dt.timedelta(days=2), today - dt.timedelta(days=75)
    online, fax, email = (
        TicketChannel.ONLINE.value,
        TicketChannel.FAX.value,
        TicketChannel.EMAIL.value,
    )
    # Received over the last weeks, not all today, so that the office's queue shows waits
    # (issue 15): each ticket's placeholder record was found the day before it arrived.
    # 收件: filed online by the institution yesterday
    q = _quitter("A18800001", "張家豪")
    found = today - dt.timedelta(days=2)
    _visit(tpe_institution_id, q, found)
    _file(
        tpe_institution_id, q, found, real, online, pdf=pdf, received=today - dt.timedelta(days=1)
    )
    # 審核中: a faxed form the office is reviewing, received 9 days ago
    q = _quitter("B28800002", "李淑芬")
    found = today - dt.timedelta(days=10)
    _visit(tpe_institution_id, q, found)
    StartReview(
        _file(
            tpe_institution_id,
            q,
            found,
            real - dt.timedelta(days=3),
            fax,
            pdf=pdf,
            received=today - dt.timedelta(days=9),
        )
    ).run()
    # 核准待轉檔: approved, ready for the engineer's conversion, received 16 days ago
    q = _quitter("C18800003", "王建宏")
    found = today - dt.timedelta(days=17)
    _visit(tpe_institution_id, q, found)
    ticket = _file(
        tpe_institution_id,
        q,
        found,
        real - dt.timedelta(days=6),
        email,
        pdf=pdf,
        received=today - dt.timedelta(days=16),
    )
    StartReview(ticket).run()
    Approve(ticket, institution_seal=True, supervisor_seal=True).run()
    # 退件: returned, without the supervisor's seal, received 12 days ago
    q = _quitter("D28800004", "陳怡君")
    found = today - dt.timedelta(days=13)
    _visit(tpe_institution_id, q, found)
    ticket = _file(
        tpe_institution_id,
        q,
        found,
        real - dt.timedelta(days=9),
        online,
        pdf=pdf,
        received=today - dt.timedelta(days=12),
    )
    ReturnTicket(ticket, "申請單未用印業務主管簽章，請補正後重新申請。").run()
    # 已轉檔, swap case (C6): the record of `found` was rewritten; the visit must be re-entered
    q = _quitter("E18800005", "黃冠宇")
    found = today - dt.timedelta(days=24)
    _visit(tpe_institution_id, q, found)
    ticket = _file(
        tpe_institution_id,
        q,
        found,
        real - dt.timedelta(days=12),
        online,
        displaced=True,
        pdf=pdf,
        received=today - dt.timedelta(days=23),
    )
    StartReview(ticket).run()
    Approve(ticket, institution_seal=True, supervisor_seal=True).run()
    ConvertTicket(ticket).run()
    # 結案: converted and closed, received six weeks ago (the queue hides it by default)
    q = _quitter("F28800008", "周美玲")
    found = today - dt.timedelta(days=43)
    _visit(tpe_institution_id, q, found)
    ticket = _file(tpe_institution_id, q, found, real - dt.timedelta(days=15), fax, pdf=pdf,
                   received=today - dt.timedelta(days=42))
    StartReview(ticket).run()
    Approve(ticket, institution_seal=True, supervisor_seal=True).run()
    ConvertTicket(ticket).run()
    CloseTicket(ticket).run()
    # facility_khh: a ticket waiting 35 days (outside facility_tpe's and bureau_tpe's scope),
    # and one faxed yesterday
    q = _quitter("S18800006", "蔡育誠")
    found = today - dt.timedelta(days=36)
    _visit(khh_institution_id, q, found)
    _file(
        khh_institution_id, q, found, real, online, pdf=pdf, received=today - dt.timedelta(days=35)
    )
    q = _quitter("T28800007", "吳佩珊")
    found = today - dt.timedelta(days=2)
    _visit(khh_institution_id, q, found)
    StartReview(
        _file(
            khh_institution_id,
            q,
            found,
            real - dt.timedelta(days=4),
            fax,
            pdf=pdf,
            received=today - dt.timedelta(days=1),
        )
    ).run()
    found = today - dt.timedelta(days=2)
    # The office's journey: a placeholder visit of facility_tpe, no ticket yet.
    _visit(tpe_institution_id, _quitter(FAX_JOURNEY_ID_PREFIX, "林志明"), found)
    db.session.commit()
    return db.session.scalar(select(func.count(CorrectionTicket.id)))
