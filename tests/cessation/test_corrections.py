"""Correction request tickets (Appendix 9), rules C5–C8: the seed's two worked examples end to
end through the screens, C7 approval, conversion (one transaction, 5-day rule, idempotent),
the workflow's illegal steps, scope, attachments checked by content, mail and C8."""

from __future__ import annotations

import datetime as dt
import io

import pytest
from openpyxl import load_workbook
from sqlalchemy import func, select

from core import clock
from core.dates import TAIPEI
from core.mail import read_mails
from domain.cessation.corrections import (
    Approve,
    AttachmentError,
    CloseTicket,
    ConvertTicket,
    FileTicket,
    LineError,
    LineInput,
    ReturnTicket,
    StartReview,
    allocate_number,
)
from domain.cessation.tickets import CorrectionError, TransitionError
from models.cessation.correction import CorrectionAttachment, CorrectionTicket, TicketStatus
from models.cessation.visit import Quitter, Timeliness, Visit, timeliness
from models.platform.audit import AuditLog
from models.registry.institution import Institution
from seed.documents import blank_pdf
from tests.conftest import post_form, visible_text
from tests.factories import _form, _new_id, _setup
from tests.scope_oracle import user_view

D = dt.date


def scan(fmt: str) -> bytes:
    """A small real image (issue 12 class 9: images must decode fully, not just start right)."""
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.new("L", (8, 8), 200).save(buffer, format=fmt)
    return buffer.getvalue()


PNG = scan("PNG")


def _at(*args):
    return clock.frozen(dt.datetime(*args, tzinfo=TAIPEI))


def _visit(db, national_id, day=None) -> Visit | None:
    db.session.expire_all()
    query = db.session.query(Visit).join(Quitter).filter(Quitter.national_id == national_id)
    if day is not None:
        query = query.filter(Visit.visit_date == day)
    return query.order_by(Visit.visit_date).first()


def _ticket(db, number=None, pk=None) -> CorrectionTicket:
    db.session.expire_all()
    if pk is not None:
        return db.session.get(CorrectionTicket, pk)
    return db.session.scalar(select(CorrectionTicket).where(CorrectionTicket.number == number))


def _latest_ticket(db) -> CorrectionTicket:
    db.session.expire_all()
    return db.session.scalar(select(CorrectionTicket).order_by(CorrectionTicket.id.desc()).limit(1))


def _insert_visit(db, institution_id, practitioner_id, quitter_id, day, entered_taipei=None):
    entered = (entered_taipei or dt.datetime.combine(day, dt.time(10))).replace(tzinfo=TAIPEI)
    entered = entered.astimezone(dt.UTC).replace(tzinfo=None)
    visit = Visit(institution_id=institution_id, practitioner_id=practitioner_id, quitter_id=quitter_id,
                  visit_date=day, medication_name="Varenicline", medication_days=14, entered_at=entered,
                  entry_timeliness=timeliness(day, entered).value)  # fmt: skip
    db.session.add(visit)
    db.session.commit()
    return visit


def _quitter(db) -> Quitter:
    quitter = Quitter(national_id=_new_id("T"), name="許志明", sex="M", birth_date=D(1970, 1, 1))
    db.session.add(quitter)
    db.session.commit()
    return quitter


FOUND, REAL = D(2025, 4, 1), D(2025, 2, 15)


def _approved_ticket(db, found=FOUND, real=REAL, displaced=False):
    """A placeholder visit at `found` and an approved ticket found → real (command level)."""
    institution_id, practitioner_id = _setup(db, "facility_tpe")
    quitter = _quitter(db)
    visit = _insert_visit(db, institution_id, practitioner_id, quitter.id, found)
    with _at(found.year, found.month, found.day, 15, 0):
        ticket = FileTicket(
            institution_id=institution_id, quitter_national_id=quitter.national_id, channel="fax",
            received_on=found, reason="漏登 114/02/15 就診資料，以發現日建檔，申請更正日期。",
            lines=[LineInput(recorded_date=found, corrected_date=real, displaced=displaced)],
        ).run()  # fmt: skip
        StartReview(ticket).run()
        Approve(ticket, institution_seal=True, supervisor_seal=True).run()
    return ticket, visit, quitter


def _facility_files_online(app, client, institution_id, national_id, recorded, corrected, displaced=False,
                           data=None, filename="附錄九.pdf"):  # fmt: skip
    form = {
        "institution": str(institution_id),
        "quitter_national_id": national_id,
        "lines-0-recorded_date": recorded,
        "lines-0-corrected_date": corrected,
        "reason": "個案 114/02/15 就診資料漏未登錄，已以發現日建檔，申請更正就診日期。",
        "form_file": (io.BytesIO(blank_pdf() if data is None else data), filename),
    }
    if displaced:
        form["lines-0-displaced"] = "y"
    return post_form(app, client, "/corrections/add", form, content_type="multipart/form-data")


def _office_reviews_and_converts(app, office, ticket_id):
    post_form(app, office, f"/corrections/{ticket_id}/review", {})
    post_form(
        app,
        office,
        f"/corrections/{ticket_id}/approve",
        {"institution_seal": "y", "supervisor_seal": "y"},
    )
    preview = office.get(f"/correctionconversion/{ticket_id}/")
    assert preview.status_code == 200
    converted = post_form(app, office, f"/correctionconversion/{ticket_id}/", {})
    assert converted.status_code == 302, visible_text(converted.text)[-500:]
    return preview


def _fee_row(client, code, month):
    """(after deadline, after 24 h) of one institution and month on the fee-deduction list."""
    text = visible_text(client.get(f"/feededuction/?month={month}").text)
    if code not in text:
        return 0, 0
    row = text.split(code, 1)[1].split(month, 1)[1].split()
    return int(row[0]), int(row[1])


# ------------------------------------------------------------- worked examples
def test_c5_worked_example_a_office_enters_faxed_ticket_and_converts(app, db, login_as):
    """Seed example (a): discovered 114/4/1, missing 114/2/15 → placeholder 114/4/1 → the
    office enters the faxed form 114/4/1 → 114/2/15 in one screen, approves, previews and
    converts; the record's audit trail names the ticket; C8 puts it on the fee list."""
    institution_id, practitioner_id = _setup(db, "facility_tpe")
    code = db.session.get(Institution, institution_id).nhi_code
    national_id = _new_id()
    facility, office = login_as("facility_tpe"), login_as("office")
    with _at(2025, 4, 1, 9, 0):  # the placeholder under the discovery date
        response = post_form(
            app,
            facility,
            "/visitview/add",
            _form(institution_id, practitioner_id, national_id, "114/04/01"),
        )
        assert response.status_code == 302
        # the missing visit itself can no longer be entered (C3): hence the form
        refused = post_form(
            app,
            facility,
            "/visitview/add",
            _form(institution_id, practitioner_id, _new_id(), "114/02/15"),
        )
        assert refused.status_code == 200 and "附錄九" in visible_text(refused.text)
    fee_before = _fee_row(office, code, "114/02")
    with _at(2025, 4, 2, 10, 0):
        page = office.get("/corrections/add")
        assert page.status_code == 200 and "lines-0-corrected_date" in page.text
        response = post_form(app, office, "/corrections/add", {
            "nhi_code": code, "channel": "fax", "received_on": "114/04/02",
            "quitter_national_id": national_id,
            "lines-0-recorded_date": "114/04/01", "lines-0-corrected_date": "114/02/15",
            "reason": "個案 114/02/15 就診資料漏未登錄，發現日 114/04/01 建檔，申請更正。",
        })  # fmt: skip
        assert response.status_code == 302, visible_text(response.text)[-500:]
        ticket = _latest_ticket(db)
        assert ticket.number.startswith("114-") and len(ticket.number) == 10
        assert ticket.status == TicketStatus.RECEIVED.value and ticket.channel == "fax"
        assert [(x.recorded_date, x.corrected_date) for x in ticket.lines] == [
            (D(2025, 4, 1), D(2025, 2, 15))
        ]
        preview = _office_reviews_and_converts(app, office, ticket.id)
    text = visible_text(preview.text)
    assert "114/04/01" in text and "114/02/15" in text
    visit = _visit(db, national_id)
    ticket = _ticket(db, pk=ticket.id)
    assert visit.visit_date == D(2025, 2, 15) and visit.original_date == D(2025, 4, 1)
    assert visit.corrected_by_ticket_id == ticket.id
    assert ticket.status == TicketStatus.CONVERTED.value
    assert [t.to_status for t in ticket.transitions] == [
        "received",
        "in_review",
        "approved",
        "converted",
    ]
    assert all(t.username == "office" for t in ticket.transitions)
    audit = db.session.scalars(
        select(AuditLog).where(
            AuditLog.model == "Visit",
            AuditLog.row_key == str(visit.id),
            AuditLog.reference == ticket.number,
        )
    ).all()
    assert (
        len(audit) == 1
        and audit[0].after["visit_date"] == "2025-02-15"
        and audit[0].before["visit_date"] == "2025-04-01"
    )
    show = visible_text(office.get(f"/corrections/show/{ticket.id}").text)
    audit_section = show.split("稽核", 1)[1]
    assert ticket.number in audit_section and "114/04/01 114/02/15" in audit_section
    assert ticket.number in visible_text(office.get(f"/visitview/show/{visit.id}").text)
    # C8: the converted record was entered after 114/02's deadline
    assert visit.entry_timeliness == Timeliness.AFTER_DEADLINE.value
    after, _ = _fee_row(office, code, "114/02")
    assert after == fee_before[0] + 1


def test_c6_worked_example_b_swap_case_reminder_and_reentry_closes_ticket(app, db, login_as):
    """Seed example (b): 114/3/31 present, placeholder 114/4/1 refused by the 5-day rule →
    the 114/3/31 record rewritten → ticket 114/3/31 → 114/2/15 filed online → converted →
    reminder (self-check, ticket list) → 114/3/31 re-entered past its deadline → closed."""
    institution_id, practitioner_id = _setup(db, "facility_tpe")
    national_id = _new_id()
    facility, office = login_as("facility_tpe"), login_as("office")
    with _at(2025, 3, 31, 16, 0):
        assert (
            post_form(
                app,
                facility,
                "/visitview/add",
                _form(institution_id, practitioner_id, national_id, "114/03/31"),
            ).status_code
            == 302
        )
    with _at(2025, 4, 1, 9, 0):
        refused = post_form(
            app,
            facility,
            "/visitview/add",
            _form(institution_id, practitioner_id, national_id, "114/04/01"),
        )
        assert refused.status_code == 200 and "114/03/31" in visible_text(refused.text)
        record = _visit(db, national_id)
        assert record.visit_date == D(2025, 3, 31)
        rewritten = post_form(app, facility, f"/visitview/edit/{record.id}", {
            "practitioner": str(practitioner_id), "visit_date": "114/03/31", "medication_name": "Nicotine patch",
            "medication_days": "28", "education_minutes": "30",
        })  # fmt: skip
        assert rewritten.status_code == 302
        response = _facility_files_online(
            app, facility, institution_id, national_id, "114/03/31", "114/02/15", displaced=True
        )
        assert response.status_code == 302, visible_text(response.text)[-500:]
        ticket = _latest_ticket(db)
        assert ticket.channel == "online" and ticket.lines[0].displaced_date == D(2025, 3, 31)
        assert len(ticket.attachments) == 1
    with _at(2025, 4, 3, 10, 0):
        _office_reviews_and_converts(app, office, ticket.id)
    record = _visit(db, national_id)
    assert record.visit_date == D(2025, 2, 15) and record.medication_days == 28
    assert _ticket(db, pk=ticket.id).status == TicketStatus.CONVERTED.value
    with _at(2025, 4, 25, 9, 0):  # 114/03/31's deadline (114/04/20) has passed
        for page in ("/selfcheck/", "/corrections/list/"):
            reminder = visible_text(facility.get(page).text)
            assert ticket.number in reminder and "114/03/31" in reminder, page
        # only that one date is reopened: another late date stays locked
        late = post_form(
            app,
            facility,
            "/visitview/add",
            _form(institution_id, practitioner_id, national_id, "114/03/20"),
        )
        assert late.status_code == 200 and "附錄九" in visible_text(late.text)
        again = post_form(
            app,
            facility,
            "/visitview/add",
            _form(institution_id, practitioner_id, national_id, "114/03/31"),
        )
        assert again.status_code == 302, visible_text(again.text)[-500:]
        ticket = _ticket(db, pk=ticket.id)
        assert ticket.status == TicketStatus.CLOSED.value
        assert ticket.transitions[-1].username == "facility_tpe"
        assert ticket.number not in visible_text(facility.get("/selfcheck/").text)
        # the reminder is closed: the date is locked again
        other = post_form(
            app,
            facility,
            "/visitview/add",
            _form(institution_id, practitioner_id, _new_id(), "114/03/31"),
        )
        assert other.status_code == 200
    reentered = _visit(db, national_id, D(2025, 3, 31))
    assert reentered is not None and reentered.entry_timeliness == Timeliness.AFTER_DEADLINE.value


# ------------------------------------------------------------------------ C7
def test_c7_approval_refused_without_seals_or_reason(app, db):
    institution_id, practitioner_id = _setup(db, "facility_tpe")
    quitter = _quitter(db)
    _insert_visit(db, institution_id, practitioner_id, quitter.id, D(2025, 4, 1))
    with _at(2025, 4, 2, 10, 0):
        ticket = FileTicket(
            institution_id=institution_id, quitter_national_id=quitter.national_id, channel="fax",
            received_on=D(2025, 4, 2), reason="", lines=[LineInput(D(2025, 4, 1), D(2025, 2, 15))],
        ).run()  # fmt: skip
        StartReview(ticket).run()
        for institution_seal, supervisor_seal in (
            (False, False),
            (True, False),
            (False, True),
            (True, True),
        ):
            with pytest.raises(CorrectionError) as refused:
                Approve(
                    ticket, institution_seal=institution_seal, supervisor_seal=supervisor_seal
                ).run()
            assert "才有效" in str(refused.value)  # C7: the form is not valid without them
            ticket = _ticket(db, pk=ticket.id)
            assert ticket.status == TicketStatus.IN_REVIEW.value
            assert not ticket.institution_seal_checked and not ticket.supervisor_seal_checked
        ticket.reason = "漏登 114/02/15 就診資料，以 114/04/01 建檔。"
        db.session.commit()
        with pytest.raises(CorrectionError):
            Approve(ticket, institution_seal=True, supervisor_seal=False).run()
        Approve(ticket, institution_seal=True, supervisor_seal=True).run()
    assert _ticket(db, pk=ticket.id).status == TicketStatus.APPROVED.value


def test_c7_approval_refused_on_the_review_screen(app, db, login_as):
    ticket, _, _ = _approved_ticket(db)
    ticket = _ticket(db, pk=ticket.id)
    ticket.status = TicketStatus.IN_REVIEW.value
    ticket.institution_seal_checked = ticket.supervisor_seal_checked = False
    db.session.commit()
    office = login_as("office")
    response = post_form(
        app,
        office,
        f"/corrections/{ticket.id}/approve",
        {"institution_seal": "y"},
        follow_redirects=True,
    )
    assert "申請單須有" in visible_text(response.text)  # C7, named in words, not by number
    assert _ticket(db, pk=ticket.id).status == TicketStatus.IN_REVIEW.value


# ---------------------------------------------------------------- conversion
def test_c4_conversion_that_would_break_the_5_day_rule_changes_nothing(app, db, login_as):
    ticket, visit, quitter = _approved_ticket(db)
    # meanwhile another institution entered a visit of the quitter two days from 114/02/15
    other_institution = db.session.scalar(
        select(Institution.id).where(Institution.id != visit.institution_id)
    )
    _insert_visit(db, other_institution, visit.practitioner_id, quitter.id, D(2025, 2, 13))
    audit_before = db.session.scalar(select(func.count(AuditLog.id)))
    preview = ConvertTicket(_ticket(db, pk=ticket.id)).preview()
    assert preview[0].problem and "114/02/13" in preview[0].problem
    with _at(2025, 4, 3, 10, 0), pytest.raises(LineError) as refused:
        ConvertTicket(_ticket(db, pk=ticket.id)).run()
    assert refused.value.position == 1 and "114/02/13" in str(refused.value)
    unchanged = db.session.get(Visit, visit.id)
    db.session.refresh(unchanged)
    assert unchanged.visit_date == D(2025, 4, 1) and unchanged.original_date is None
    assert unchanged.corrected_by_ticket_id is None
    ticket = _ticket(db, pk=ticket.id)
    assert ticket.status == TicketStatus.APPROVED.value and ticket.lines[0].applied_at is None
    assert db.session.scalar(select(func.count(AuditLog.id))) == audit_before
    # the engineer sees why on the screen
    office = login_as("office")
    with _at(2025, 4, 3, 10, 0):
        response = post_form(app, office, f"/correctionconversion/{ticket.id}/", {})
    assert response.status_code == 409 and "114/02/13" in visible_text(response.text)
    assert db.session.get(Visit, visit.id).visit_date == D(2025, 4, 1)


def test_conversion_applied_twice_changes_nothing_the_second_time(app, db, login_as):
    ticket, visit, _ = _approved_ticket(db)
    with _at(2025, 4, 3, 10, 0):
        first = ConvertTicket(_ticket(db, pk=ticket.id)).run()
        audit_after_first = db.session.scalar(select(func.count(AuditLog.id)))
        second = ConvertTicket(_ticket(db, pk=ticket.id)).run()
        response = post_form(
            app,
            login_as("office"),
            f"/correctionconversion/{ticket.id}/",
            {},
            follow_redirects=True,
        )
    assert first.changed and not second.changed
    assert "未變更任何資料" in visible_text(response.text)
    assert db.session.scalar(select(func.count(AuditLog.id))) == audit_after_first
    ticket = _ticket(db, pk=ticket.id)
    assert [t.to_status for t in ticket.transitions].count("converted") == 1
    assert db.session.get(Visit, visit.id).visit_date == D(2025, 2, 15)


def test_c3_conversion_is_the_only_path_past_the_deadline(app, db, login_as):
    """The converted record (now dated 114/02/15) is locked for the institution (C3)."""
    ticket, visit, _ = _approved_ticket(db)
    with _at(2025, 4, 3, 10, 0):
        ConvertTicket(_ticket(db, pk=ticket.id)).run()
        facility = login_as("facility_tpe")
        response = post_form(app, facility, f"/visitview/edit/{visit.id}", {
            "practitioner": str(visit.practitioner_id), "visit_date": "114/02/16", "medication_name": "X",
            "medication_days": "7", "education_minutes": "",
        })  # fmt: skip
        assert response.status_code in (200, 302)
        page = visible_text(facility.get(f"/visitview/show/{visit.id}").text)
    db.session.expire_all()
    assert db.session.get(Visit, visit.id).visit_date == D(2025, 2, 15)
    assert ticket.number in page and "114/04/01" in page  # corrected by, original date


LEGAL = {
    "start_review": {"received"},
    "approve": {"in_review"},
    "return": {"received", "in_review"},
    "convert": {"approved"},
    "close": {"converted"},
}
COMMANDS = {
    "start_review": StartReview,
    "approve": lambda t: Approve(t, institution_seal=True, supervisor_seal=True),
    "return": lambda t: ReturnTicket(t, "缺業務主管簽章"),
    "convert": ConvertTicket,
    "close": CloseTicket,
}


@pytest.mark.parametrize("step", sorted(COMMANDS))
def test_every_illegal_transition_is_refused(app, db, step):
    ticket, visit, _ = _approved_ticket(db)
    for status in TicketStatus:
        if status.value in LEGAL[step]:
            continue
        ticket = _ticket(db, pk=ticket.id)
        ticket.status = status.value
        db.session.commit()
        history = len(ticket.transitions)
        with _at(2025, 4, 3, 10, 0), pytest.raises(TransitionError) as refused:
            COMMANDS[step](ticket).run()
        assert ticket.status_label in str(refused.value)
        ticket = _ticket(db, pk=ticket.id)
        assert ticket.status == status.value and len(ticket.transitions) == history
        assert db.session.get(Visit, visit.id).visit_date == D(2025, 4, 1)


def test_illegal_transition_on_the_screen_shows_a_message(app, db, login_as):
    ticket, _, _ = _approved_ticket(db)
    office = login_as("office")
    response = post_form(app, office, f"/corrections/{ticket.id}/review", {}, follow_redirects=True)
    assert "狀態為「核准待轉檔」的申請單不能開始審核" in visible_text(response.text)
    assert _ticket(db, pk=ticket.id).status == TicketStatus.APPROVED.value


# ---------------------------------------------------------------- filing rules
def test_c5_a_line_must_point_at_a_record_of_that_institution_and_quitter(app, db, login_as):
    institution_id, practitioner_id = _setup(db, "facility_tpe")
    quitter = _quitter(db)
    _insert_visit(db, institution_id, practitioner_id, quitter.id, D(2025, 4, 1))
    count = db.session.scalar(select(func.count(CorrectionTicket.id)))
    with _at(2025, 4, 2, 10, 0):
        for line, message in (
            (LineInput(D(2025, 3, 30), D(2025, 2, 15)), "114/03/30"),  # no record that day
            (LineInput(D(2025, 4, 1), D(2025, 3, 28)), "自行修改"),  # C2: still open, no form needed
            (LineInput(D(2025, 4, 1), D(2025, 4, 9)), None),  # future
        ):
            with pytest.raises(LineError) as refused:
                FileTicket(institution_id=institution_id, quitter_national_id=quitter.national_id, channel="fax",
                           received_on=D(2025, 4, 2), reason="", lines=[line]).run()  # fmt: skip
            assert refused.value.position == 1
            if message:
                assert message in str(refused.value)
        khh = min(user_view(db, "facility_khh").institution_ids)
        with pytest.raises(CorrectionError):  # the quitter has no visit at that institution
            FileTicket(institution_id=khh, quitter_national_id=quitter.national_id, channel="fax",
                       received_on=D(2025, 4, 2), reason="", lines=[LineInput(D(2025, 4, 1), D(2025, 2, 15))]).run()  # fmt: skip
        # a facility cannot file for another institution's records
        facility = login_as("facility_tpe")
        response = _facility_files_online(
            app, facility, khh, quitter.national_id, "114/04/01", "114/02/15"
        )
        assert response.status_code == 200
    assert db.session.scalar(select(func.count(CorrectionTicket.id))) == count


def test_ticket_numbers_are_roc_year_and_sequence(app, db):
    with _at(2030, 1, 2, 9, 0):
        first, second = allocate_number(119), allocate_number(119)
        db.session.commit()
    assert first == "119-000001" and second == "119-000002"


# ---------------------------------------------------------------- attachments
@pytest.mark.usefixtures("storage_backend")  # issue 20: both storage backends
@pytest.mark.parametrize(
    "data, filename",
    [
        (b"%PDF-1.4\nthis is not really a PDF\n%%EOF", "form.pdf"),
        (b"MZ\x90\x00" + b"\x00" * 200, "form.pdf"),
        (b"<html><body>form</body></html>", "form.pdf"),
    ],
)
def test_a_fake_pdf_is_refused_and_nothing_is_stored(app, db, login_as, data, filename):
    institution_id, practitioner_id = _setup(db, "facility_tpe")
    national_id = _new_id()
    facility = login_as("facility_tpe")
    count = db.session.scalar(select(func.count(CorrectionTicket.id)))
    files = db.session.scalar(select(func.count(CorrectionAttachment.id)))
    with _at(2025, 4, 1, 9, 0):
        post_form(
            app,
            facility,
            "/visitview/add",
            _form(institution_id, practitioner_id, national_id, "114/04/01"),
        )
        response = _facility_files_online(app, facility, institution_id, national_id, "114/04/01", "114/02/15",
                                          data=data, filename=filename)  # fmt: skip
    assert response.status_code == 200
    assert "PDF" in visible_text(response.text)
    assert db.session.scalar(select(func.count(CorrectionTicket.id))) == count
    assert db.session.scalar(select(func.count(CorrectionAttachment.id))) == files


def test_attachments_are_checked_by_content_and_size(app, db):
    from domain.cessation.corrections import check_attachment

    assert check_attachment("scan.pdf", blank_pdf()) == "application/pdf"
    assert check_attachment("scan.pdf", PNG) == "image/png"  # the name does not matter
    assert check_attachment("scan.jpg", scan("JPEG")) == "image/jpeg"
    assert check_attachment("scan.tif", scan("TIFF")) == "image/tiff"
    with pytest.raises(AttachmentError):
        check_attachment("scan.gif", b"GIF89a" + b"\x00" * 64)
    limit = app.config["CORRECTION_ATTACHMENT_MAX_BYTES"]
    with pytest.raises(AttachmentError):
        check_attachment("big.png", PNG + b"\x00" * limit)


# ---------------------------------------------------------------------- scope
@pytest.mark.usefixtures("storage_backend")  # issue 20: both storage backends
def test_scope_on_tickets_lines_attachments_and_exports(app, db, login_as, api_as):
    institution_id, practitioner_id = _setup(db, "facility_tpe")
    national_id = _new_id()
    facility = login_as("facility_tpe")
    with _at(2025, 4, 1, 9, 0):
        post_form(
            app,
            facility,
            "/visitview/add",
            _form(institution_id, practitioner_id, national_id, "114/04/01"),
        )
        assert (
            _facility_files_online(
                app, facility, institution_id, national_id, "114/04/01", "114/02/15"
            ).status_code
            == 302
        )
    ticket = _latest_ticket(db)
    attachment = ticket.attachments[0]
    line = ticket.lines[0]
    own = facility.get(f"/corrections/attachment/{attachment.id}")
    assert own.status_code == 200 and own.data.startswith(b"%PDF")
    for username in ("facility_khh", "bureau_khh"):
        client = login_as(username)
        assert client.get(f"/corrections/show/{ticket.id}").status_code == 404
        assert client.get(f"/corrections/attachment/{attachment.id}").status_code == 404
        assert ticket.number not in client.get("/corrections/list/").text
        sheet = load_workbook(io.BytesIO(client.get("/corrections/export/xlsx").data)).active
        assert ticket.number not in [row[0] for row in sheet.iter_rows(values_only=True)]
        api, headers = api_as(username)
        assert api.get(f"/api/v1/correctionline/{line.id}", headers=headers).status_code == 404
        assert api.get(f"/api/v1/correctionticket/{ticket.id}", headers=headers).status_code == 404
    # the bureau of the county reads, exports and downloads, but may not act
    bureau = login_as("bureau_tpe")
    assert bureau.get(f"/corrections/show/{ticket.id}").status_code == 200
    assert bureau.get(f"/corrections/attachment/{attachment.id}").status_code == 200
    sheet = load_workbook(io.BytesIO(bureau.get("/corrections/export/xlsx").data)).active
    assert ticket.number in [row[0] for row in sheet.iter_rows(values_only=True)]
    for url in (f"/corrections/{ticket.id}/review", f"/corrections/{ticket.id}/return",
                f"/correctionconversion/{ticket.id}/"):  # fmt: skip
        assert post_form(app, bureau, url, {"return_reason": "測試退件原因"}).status_code in (
            302,
            403,
        )
    # the facility neither reviews nor converts its own ticket
    assert post_form(app, facility, f"/corrections/{ticket.id}/review", {}).status_code in (
        302,
        403,
    )
    assert facility.get(f"/correctionconversion/{ticket.id}/").status_code in (302, 403)
    assert _ticket(db, pk=ticket.id).status == TicketStatus.RECEIVED.value


def test_conversion_is_a_separate_permission_from_review(app):
    from domain.cessation.grants import CORRECTION, CORRECTION_CONVERSION
    from domain.roles import ROLE_GRANTS

    for role, grants in ROLE_GRANTS.items():
        reviews = "review" in grants.get(CORRECTION, set())
        converts = "convert" in grants.get(CORRECTION_CONVERSION, set())
        assert converts <= reviews, role  # nobody converts what they could not have seen approved
    assert CORRECTION != CORRECTION_CONVERSION
    assert "convert" not in ROLE_GRANTS["Bureau"].get(CORRECTION_CONVERSION, set())


# ------------------------------------------------------------------ the queue
def test_office_queue_filters_oldest_first_counts_and_export(app, db, login_as):
    ticket, _, _ = _approved_ticket(db)
    office = login_as("office")
    with _at(2025, 4, 30, 9, 0):
        page = office.get("/corrections/list/")
        assert page.status_code == 200
        assert 'id="status-counts"' in page.text
        approved = db.session.scalar(
            select(func.count(CorrectionTicket.id)).where(CorrectionTicket.status == "approved")
        )
        count_text = page.text.split('data-status="approved"', 1)[1].split("</a>", 1)[0]
        assert f'<span class="badge">{approved}</span>' in count_text
        received_dates = [r for r in db.session.scalars(select(CorrectionTicket.received_on))]
        listed = office.get(
            "/corrections/list/?_flt_0_status=approved&psize_CorrectionTicketView=500"
        ).text
        assert ticket.number in listed
        assert (
            ticket.number
            not in office.get(
                "/corrections/list/?_flt_0_status=received&psize_CorrectionTicketView=500"
            ).text
        )
        # age: received 114/04/01, 29 days before 114/04/30
        assert (
            ticket.number
            in office.get(
                "/corrections/list/?_flt_0_received_on=29&psize_CorrectionTicketView=500"
            ).text
        )
        assert (
            ticket.number
            not in office.get(
                "/corrections/list/?_flt_0_received_on=30&psize_CorrectionTicketView=500"
            ).text
        )
        assert (
            ticket.number
            in office.get(
                "/corrections/list/?_flt_1_received_on=29&psize_CorrectionTicketView=500"
            ).text
        )
        assert (
            ticket.number
            in office.get(
                "/corrections/list/?_flt_1_institution=台北&psize_CorrectionTicketView=500"
            ).text
        )
        assert (
            ticket.number
            not in office.get(
                "/corrections/list/?_flt_1_institution=高雄&psize_CorrectionTicketView=500"
            ).text
        )
        assert (
            ticket.number
            in office.get(
                "/corrections/list/?_flt_0_channel=fax&psize_CorrectionTicketView=500"
            ).text
        )
        assert (
            ticket.number
            not in office.get(
                "/corrections/list/?_flt_0_channel=email&psize_CorrectionTicketView=500"
            ).text
        )
        workbook = load_workbook(
            io.BytesIO(office.get("/corrections/export/xlsx?_flt_0_status=approved").data)
        )
    rows = list(workbook.active.iter_rows(values_only=True))[2:]  # below the title and headers
    assert ticket.number in [r[0] for r in rows]
    assert all(r[7] == str(TicketStatus.APPROVED.label) or r[7] == "核准待轉檔" for r in rows)
    # oldest first
    dates = [r[1] for r in rows]
    assert dates == sorted(dates)
    assert min(received_dates) <= ticket.received_on


# ---------------------------------------------------------------------- mail
def test_institution_is_mailed_when_a_ticket_is_returned_or_converted(app, db, login_as):
    ticket, _, _ = _approved_ticket(db)
    with _at(2025, 4, 3, 10, 0):
        ConvertTicket(_ticket(db, pk=ticket.id)).run()
    mails = [body for _, body in read_mails("facility_tpe@demo.invalid") if ticket.number in body]
    assert mails and "114/04/01 → 114/02/15" in mails[-1]
    other, _, _ = _approved_ticket(db, found=D(2025, 4, 10), real=D(2025, 2, 20))
    other = _ticket(db, pk=other.id)
    other.status = TicketStatus.IN_REVIEW.value
    db.session.commit()
    facility = login_as("facility_tpe")
    with _at(2025, 4, 11, 10, 0):
        response = post_form(app, login_as("office"), f"/corrections/{other.id}/return",
                             {"return_reason": "申請單缺機構章，請補正後重新申請。"})  # fmt: skip
    assert response.status_code == 302
    mails = [body for _, body in read_mails("facility_tpe@demo.invalid") if other.number in body]
    assert mails and "缺機構章" in mails[-1]
    # the institution sees it returned with the reason
    show = visible_text(facility.get(f"/corrections/show/{other.id}").text)
    assert "缺機構章" in show and "退件" in show


# ------------------------------------------------------------------------ C8
def test_c8_converted_record_counts_as_entered_after_the_deadline(app, db, login_as):
    """A swap-case record entered 114/03/18 (before 114/02's deadline 114/03/20) but re-dated
    to 114/02/15 by a ticket filed 114/03/21: its content came late, so it is on the list."""
    institution_id, practitioner_id = _setup(db, "facility_tpe")
    code = db.session.get(Institution, institution_id).nhi_code
    quitter = _quitter(db)
    visit = _insert_visit(db, institution_id, practitioner_id, quitter.id, D(2025, 3, 18))
    assert visit.entry_timeliness == Timeliness.WITHIN_24H.value
    office = login_as("office")
    before = _fee_row(office, code, "114/02")
    with _at(2025, 3, 21, 10, 0):
        ticket = FileTicket(
            institution_id=institution_id, quitter_national_id=quitter.national_id, channel="email",
            received_on=D(2025, 3, 21), reason="114/02/15 就診資料漏登，改寫 114/03/18 之資料。",
            lines=[LineInput(D(2025, 3, 18), D(2025, 2, 15), displaced=True)],
        ).run()  # fmt: skip
        StartReview(ticket).run()
        Approve(ticket, institution_seal=True, supervisor_seal=True).run()
        ConvertTicket(ticket).run()
    visit = db.session.get(Visit, visit.id)
    db.session.refresh(visit)
    assert visit.timeliness is Timeliness.AFTER_DEADLINE
    assert _fee_row(office, code, "114/02") == (before[0] + 1, before[1])


def test_demo_data_has_tickets_in_every_state_for_facility_tpe(app, db, login_as):
    tpe = min(user_view(db, "facility_tpe").institution_ids)
    statuses = set(
        db.session.scalars(
            select(CorrectionTicket.status).where(CorrectionTicket.institution_id == tpe)
        )
    )
    assert {"received", "in_review", "approved", "converted", "returned"} <= statuses
    page = visible_text(login_as("facility_tpe").get("/corrections/list/").text)
    assert "重新輸入" in page or "re-enter" in page


def test_ticket_numbers_stay_unique_under_concurrent_filing(app, db):
    """Two filings at once in a year that has no counter row yet: two different numbers."""
    import threading

    barrier = threading.Barrier(2)
    numbers, errors = [], []

    def allocate():
        from core.extensions import db as _db

        with app.app_context():
            barrier.wait()
            try:
                numbers.append(allocate_number(150))
                _db.session.commit()
            except Exception as exc:  # reported below
                errors.append(repr(exc))
                _db.session.rollback()
            finally:
                _db.session.remove()

    threads = [threading.Thread(target=allocate) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors
    assert sorted(numbers) == ["150-000001", "150-000002"]
