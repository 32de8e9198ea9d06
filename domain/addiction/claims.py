"""Subsidy claims (A11): built from the claimable lines, signed off on paper, submitted online
to the county bureau, reviewed line by line, approved or returned.

- A claim is one institution's request to one scheme for one period: a month, or a quarter
  where the scheme's `claim_period` says so. Its lines are the claimable lines of the period
  (domain/addiction/claimable.py, through its public functions), each claimed once across
  all claims (uq_claim_line); the institution leaves lines out, one by one, before submitting.
- The sign-off package (陳核用清冊) and every submission are frozen snapshots: canonical JSON
  of the header and included lines, and its sha256 (ClaimSubmission). Printing an unchanged
  claim twice reuses the same snapshot, so the lines and the hash are the same.
- States on the shared machine (core/workflow.py, compare-and-set on the status, history
  rows): 草稿 → 已送出 → 審核中 → 核准 / 部分核准 / 退回 → 再送出 → 審核中 … The institution
  submits to the bureau of its county, which reviews and decides — for central schemes too
  (seed Q5: 向衛生局申請撥付 … 由衛生局進行線上核覆); the Ministry reads central-scheme
  claims nationally and decides none.
- The bureau approves a line, or returns it with a reason from ReturnReason and a comment. A
  claim with returned lines goes back (退回), or is closed with the rest approved (部分核准).
  A returned line resubmitted unchanged (same content, no 補正說明) is refused.
- Approval writes the approved amount against the scheme-year's budget: remaining = the
  latest version's budget − what decided claims of the scheme-year approved (all counties, for
  a central scheme). A line, or a decision, beyond the remaining budget is refused; decisions
  on one scheme-year are serialised by a row lock on its scheme rows.
- Mail: the bureau's accounts when a claim is submitted; the institution's when it is returned
  or decided (after the commit only).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
from dataclasses import dataclass

from flask_babel import gettext
from sqlalchemy import func, select, update

from core import clock
from core.actor import current_actor
from core.commands import Command
from core.data.bulk import insert_rows
from core.data.scope import current_scope
from core.dates import roc_year, to_roc
from core.errors import UserError
from core.extensions import db
from core.mail import send_mail
from core.validators import mask_personal_id
from core.workflow import TransitionRefused, Workflow
from domain.addiction.claimable import compute_territory
from models.addiction.case import Case, Patient
from models.addiction.claim import (
    DECIDED,
    WAITING,
    Claim,
    ClaimLine,
    ClaimPeriod,
    ClaimReview,
    ClaimStatus,
    ClaimSubmission,
    ClaimTransition,
    LineReview,
    ReturnReason,
    SnapshotKind,
)
from models.addiction.scheme import SchemeStatus, SubsidyScheme
from models.registry.institution import Institution

log = logging.getLogger(__name__)


class ClaimRefused(UserError):
    """A claim step the rules refuse; str() is the zh_TW message."""


class ClaimStale(TransitionRefused):
    """Someone else changed the claim (or line) first: nothing was changed."""


def _not_found() -> ClaimRefused:
    return ClaimRefused(gettext("The selected %(what)s does not exist or is outside your data scope.",
                                what=gettext("Subsidy claim")), status=404)  # fmt: skip


# ------------------------------------------------------------------ who may do what
def _system(scope) -> bool:
    return scope.national and scope.user_id is None


def may_prepare(claim_or_institution_id, scope=None) -> bool:
    """The institution's own staff build, change and submit its claims (or the system, seeding)."""
    scope = scope or current_scope()
    inst = claim_or_institution_id.institution_id if isinstance(claim_or_institution_id, Claim) \
        else claim_or_institution_id  # fmt: skip
    return _system(scope) or (scope.kind == "facility" and inst in scope.institution_ids)


def may_review(claim: Claim, scope=None) -> bool:
    """The bureau of the claim's institution's county reviews and decides it (seed Q5)."""
    scope = scope or current_scope()
    if _system(scope):
        return True
    return scope.kind == "county" and claim.institution.county_id in scope.county_ids


# ------------------------------------------------------------------ periods
def period_bounds(kind: str, year: int, number: int) -> tuple[dt.date, dt.date]:
    """The first and last day of month `number` (1–12) or quarter `number` (1–4) of `year`."""
    if kind == ClaimPeriod.QUARTER.value:
        first = dt.date(year, 3 * (number - 1) + 1, 1)
        months = 3
    else:
        first = dt.date(year, number, 1)
        months = 1
    month = first.month + months
    after = dt.date(year + (month > 12), (month - 1) % 12 + 1, 1)
    return first, after - dt.timedelta(days=1)


def scheme_in_force(code: str, year: int, day: dt.date | None = None) -> SubsidyScheme | None:
    """The scheme-year's published version in force on `day` (default: its latest)."""
    stmt = select(SubsidyScheme).where(SubsidyScheme.code == code, SubsidyScheme.year == year,
                                       SubsidyScheme.status == SchemeStatus.PUBLISHED.value)  # fmt: skip
    if day is not None:
        stmt = stmt.where(SubsidyScheme.effective_from <= day)
    return db.session.scalars(stmt.order_by(SubsidyScheme.version.desc()).limit(1)).first()


def claimable_schemes(institution: Institution, year: int) -> list[SubsidyScheme]:
    """The published schemes of the year an institution may claim: central ones, its county's."""
    rows = db.session.scalars(
        select(SubsidyScheme).where(SubsidyScheme.year == year, SubsidyScheme.status == SchemeStatus.PUBLISHED.value,
                                    (SubsidyScheme.county_id.is_(None)) | (SubsidyScheme.county_id == institution.county_id))
        .order_by(SubsidyScheme.county_id.is_not(None), SubsidyScheme.code, SubsidyScheme.version.desc())
    ).all()  # fmt: skip
    latest = {}
    for row in rows:
        latest.setdefault(row.code, row)
    return list(latest.values())


# ------------------------------------------------------------------ budget
def budget_used(code: str, year: int) -> int:
    """NT$ approved by decided claims of the scheme-year (every county's, for a central one)."""
    return db.session.scalar(
        select(func.coalesce(func.sum(Claim.approved_amount), 0))
        .where(Claim.scheme_code == code, Claim.year == year, Claim.status.in_(DECIDED))
    )  # fmt: skip


def budget_remaining(code: str, year: int) -> int:
    scheme = scheme_in_force(code, year)
    return (scheme.budget if scheme else 0) - budget_used(code, year)


def _lock_scheme_year(code: str, year: int) -> None:
    """Serialise decisions on one scheme-year (a row lock on PostgreSQL, the write lock on SQLite)."""
    db.session.execute(
        update(SubsidyScheme).where(SubsidyScheme.code == code, SubsidyScheme.year == year)
        .values(budget=SubsidyScheme.budget).execution_options(synchronize_session=False)
    )  # fmt: skip


# ------------------------------------------------------------------ building the lines
@dataclass
class Built:
    """The claimable lines of an institution, scheme and period not yet in any claim."""

    lines: list
    already: int


def claimable_lines(institution_id: int, code: str, first: dt.date, last: dt.date, claim_id: int | None = None,
                    today: dt.date | None = None) -> Built:  # fmt: skip
    """The engine's claimable lines (amount > 0) of the institution for the scheme in the
    period, less those claimed in another claim (a line is claimed once)."""
    territory = compute_territory(first.year, Institution.id == institution_id, today)
    candidates = [ln for ln in territory.lines if ln.institution_id == institution_id and ln.scheme_code == code
                  and first <= ln.executed_on <= last and ln.amount > 0]  # fmt: skip
    taken_stmt = (
        select(ClaimLine.case_id, ClaimLine.item_code, ClaimLine.executed_on)
        .where(ClaimLine.institution_id == institution_id, ClaimLine.executed_on >= first,
               ClaimLine.executed_on <= last)
    )  # fmt: skip
    if claim_id is not None:
        taken_stmt = taken_stmt.where(ClaimLine.claim_id != claim_id)
    taken = set(db.session.execute(taken_stmt).all())
    lines = [ln for ln in candidates if (ln.case_id, ln.item_code, ln.executed_on) not in taken]
    return Built(lines, len(candidates) - len(lines))


def _line_values(claim_id: int, institution_id: int, line, now) -> dict:
    return {"claim_id": claim_id, "institution_id": institution_id, "case_id": line.case_id,
            "item_code": line.item_code, "item_name": line.item_name or line.item_code,
            "executed_on": line.executed_on, "order_code": line.order_code, "unit_amount": line.unit_amount,
            "amount": line.amount, "included": True, "review": LineReview.PENDING.value, "approved_amount": 0,
            "created_on": now, "changed_on": now}  # fmt: skip


def _retotal(claim: Claim) -> None:
    db.session.flush()
    claim.claimed_amount = db.session.scalar(
        select(func.coalesce(func.sum(ClaimLine.amount), 0)).where(ClaimLine.claim_id == claim.id,
                                                                   ClaimLine.included.is_(True))
    )  # fmt: skip


class BuildClaim(Command):
    """A draft claim of an institution to a scheme for a period, with every claimable line."""

    def __init__(self, institution_id, scheme_code, year, number, today: dt.date | None = None):
        self.institution_id, self.code, self.raw_year, self.raw_number = institution_id, scheme_code, year, number
        self.today = today

    def validate(self) -> None:
        from core.data.datamodel import ScopedInterface

        inst_id = self.institution_id
        valid = isinstance(inst_id, int) and not isinstance(inst_id, bool)
        self.institution = ScopedInterface(Institution).get(inst_id) if valid else None
        if self.institution is None or not may_prepare(self.institution.id):
            raise ClaimRefused(gettext("Only the institution's own staff can prepare its claims."), status=403)
        year = _int(self.raw_year)
        if year is None:
            raise ClaimRefused(gettext("Subsidy year: give a ROC year, e.g. %(year)d.", year=roc_year(clock.today().year)))
        year = year + 1911 if year < 1000 else year
        if not 2000 <= year <= 2200:
            raise ClaimRefused(gettext("Subsidy year: give a ROC year, e.g. %(year)d.", year=roc_year(clock.today().year)))
        schemes = {s.code: s for s in claimable_schemes(self.institution, year)}
        scheme = schemes.get(str(self.code or "").strip())
        if scheme is None:
            raise ClaimRefused(gettext("Choose a published scheme of %(year)d that your institution may claim.",
                                       year=roc_year(year)))  # fmt: skip
        kind = scheme.claim_period or ClaimPeriod.MONTH.value
        number = _int(self.raw_number)
        top = 4 if kind == ClaimPeriod.QUARTER.value else 12
        if number is None or not 1 <= number <= top:
            raise ClaimRefused(gettext("This scheme is claimed by quarter: give a quarter from 1 to 4.")
                               if top == 4 else gettext("Give a month from 1 to 12."))  # fmt: skip
        first, last = period_bounds(kind, year, number)
        if first > (self.today or clock.today()):
            raise ClaimRefused(gettext("A claim can be prepared only for a period that has begun."))
        existing = db.session.scalar(select(Claim.id).where(
            Claim.institution_id == self.institution.id, Claim.scheme_code == scheme.code, Claim.period_start == first))  # fmt: skip
        if existing is not None:
            raise ClaimRefused(gettext("Your institution already has a claim to this scheme for this period (no. %(id)d).",
                                       id=existing), status=409)  # fmt: skip
        self.scheme, self.kind, self.first, self.last, self.year = scheme, kind, first, last, year

    def execute(self) -> Claim:
        built = claimable_lines(self.institution.id, self.scheme.code, self.first, self.last, today=self.today)
        claim = Claim(institution_id=self.institution.id, scheme_code=self.scheme.code, scheme_id=self.scheme.id,
                      scheme_county_id=self.scheme.county_id, year=self.year, period_kind=self.kind,
                      period_start=self.first, period_end=self.last, status=ClaimStatus.DRAFT.value)  # fmt: skip
        db.session.add(claim)
        db.session.flush()
        now = clock.utc_naive()
        rows = [_line_values(claim.id, claim.institution_id, ln, now) for ln in built.lines]
        # Not the ORM's bulk insert: 20,000 lines took 15 s through the ORM (a parameter set
        # collected per row); core/data/bulk.py says what each database gets instead.
        insert_rows(ClaimLine.__table__, rows)
        claim.claimed_amount = sum(r["amount"] for r in rows)
        CLAIM_WORKFLOW.record(claim, None, ClaimStatus.DRAFT.value,
                              gettext("%(n)d lines", n=len(rows)))  # fmt: skip
        return claim


def _int(value) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    text = str(value or "").strip()
    return int(text) if text.isdigit() and text.isascii() and len(text) <= 6 else None


def _check_editable(claim: Claim, scope=None) -> None:
    if not may_prepare(claim, scope):
        raise ClaimRefused(gettext("Only the institution's own staff can change its claims."), status=403)
    if not claim.editable:
        raise ClaimRefused(gettext("This claim is %(status)s: only a draft or a returned claim can be changed.",
                                   status=claim.status_label), status=409)  # fmt: skip


def _lock_claim(claim: Claim) -> None:
    """Claim the row as it was read: a change racing a submission finds it moved and stops."""
    CLAIM_WORKFLOW.claim(claim, claim.status)


class RefreshClaim(Command):
    """Recompute a draft or returned claim's lines: new claimable lines are added, changed ones
    updated (amounts, order code), ones no longer claimable left out (kept, at NT$0)."""

    def __init__(self, claim: Claim, today: dt.date | None = None):
        self.claim, self.today = claim, today

    def validate(self) -> None:
        _check_editable(self.claim)

    def execute(self) -> dict:
        claim = self.claim
        _lock_claim(claim)
        built = claimable_lines(claim.institution_id, claim.scheme_code, claim.period_start, claim.period_end,
                                claim_id=claim.id, today=self.today)  # fmt: skip
        fresh = {(ln.case_id, ln.item_code, ln.executed_on): ln for ln in built.lines}
        added = changed = dropped = 0
        for line in claim.lines:
            new = fresh.pop((line.case_id, line.item_code, line.executed_on), None)
            if line.review == LineReview.APPROVED.value:
                continue
            if new is None:
                if line.amount:
                    line.amount, line.included, dropped = 0, False, dropped + 1
                continue
            values = (new.unit_amount, new.amount, new.order_code, new.item_name or new.item_code)
            if values != (line.unit_amount, line.amount, line.order_code, line.item_name):
                line.unit_amount, line.amount, line.order_code, line.item_name = values
                changed += 1
        now = clock.utc_naive()
        rows = [_line_values(claim.id, claim.institution_id, ln, now) for ln in fresh.values()]
        if rows:
            db.session.execute(ClaimLine.__table__.insert(), rows)
            added = len(rows)
        _retotal(claim)
        db.session.expire(claim, ["lines"])
        return {"added": added, "changed": changed, "dropped": dropped}


class IncludeLines(Command):
    """Leave lines out of (or put them back into) a draft or returned claim; approved lines stay."""

    def __init__(self, claim: Claim, line_ids, included: bool):
        self.claim, self.raw_ids, self.included = claim, line_ids, bool(included)

    def validate(self) -> None:
        _check_editable(self.claim)
        ids = {_int(v) for v in (self.raw_ids or [])}
        if not ids or None in ids:
            raise ClaimRefused(gettext("Choose the lines first."))
        lines = {ln.id: ln for ln in self.claim.lines}
        if ids - set(lines):
            raise ClaimRefused(gettext("A chosen line is not a line of this claim."), status=404)
        self.lines = [lines[i] for i in sorted(ids)]
        if any(ln.review == LineReview.APPROVED.value for ln in self.lines):
            raise ClaimRefused(gettext("A line the bureau approved stays in the claim."))
        if self.included and any(ln.amount <= 0 for ln in self.lines):
            raise ClaimRefused(gettext("A line no longer claimable (NT$0) cannot be put back."))

    def execute(self) -> int:
        _lock_claim(self.claim)
        for line in self.lines:
            line.included = self.included
        _retotal(self.claim)
        return len(self.lines)


class CorrectLine(Command):
    """The institution's 補正說明 on a line the bureau returned."""

    def __init__(self, claim: Claim, line_id, note):
        self.claim, self.line_id, self.note = claim, line_id, (note or "").strip()

    def validate(self) -> None:
        _check_editable(self.claim)
        self.line = next((ln for ln in self.claim.lines if ln.id == _int(self.line_id)), None)
        if self.line is None:
            raise ClaimRefused(gettext("A chosen line is not a line of this claim."), status=404)
        if self.line.review != LineReview.RETURNED.value:
            raise ClaimRefused(gettext("Only a returned line takes a correction note."))
        if not self.note:
            raise ClaimRefused(gettext("Please fill in %(field)s.", field=gettext("Correction note")))
        if len(self.note) > 500:
            raise ClaimRefused(gettext("%(field)s: at most %(n)d characters.", field=gettext("Correction note"), n=500))

    def execute(self) -> ClaimLine:
        _lock_claim(self.claim)
        self.line.correction_note = self.note
        return self.line


# ------------------------------------------------------------------ snapshots (the package)
def snapshot_content(claim: Claim) -> tuple[str, int, int]:
    """(canonical JSON, total NT$, line count) of the claim's header and included lines.

    Read with one Core statement (lines, cases, persons): the ORM's 20,000 line objects took
    22 s to load and read on the loaded bench machine (bench/claims.py)."""
    inst = claim.institution
    db.session.flush()
    rows = db.session.execute(
        select(ClaimLine.id, ClaimLine.case_id, Patient.name, Patient.national_id, ClaimLine.item_code,
               ClaimLine.item_name, ClaimLine.executed_on, ClaimLine.order_code, ClaimLine.unit_amount,
               ClaimLine.amount, ClaimLine.correction_note)
        .join(Case, Case.id == ClaimLine.case_id).join(Patient, Patient.id == Case.patient_id)
        .where(ClaimLine.claim_id == claim.id, ClaimLine.included.is_(True))
        .order_by(ClaimLine.executed_on, ClaimLine.case_id, ClaimLine.item_code)
    ).all()  # fmt: skip
    masks: dict[str, str] = {}
    lines = []
    for line_id, case_id, name, national_id, item, item_name, day, order, unit, amount, note in rows:
        masked = masks.get(national_id)
        if masked is None:
            masked = masks[national_id] = mask_personal_id(national_id)
        lines.append({"line": line_id, "case": case_id, "name": name, "id": masked, "item": item,
                      "item_name": item_name, "date": day.isoformat(), "roc": to_roc(day), "order": order or "",
                      "unit": unit, "amount": amount, "note": (note or "").strip()})  # fmt: skip
    total = sum(d["amount"] for d in lines)
    header = {"claim": claim.id, "institution": inst.name, "nhi_code": inst.nhi_code, "scheme": claim.scheme_code,
              "scheme_name": claim.scheme.name, "year": roc_year(claim.year), "period": claim.period_label,
              "from": to_roc(claim.period_start), "to": to_roc(claim.period_end),
              "cases": len({d["case"] for d in lines}), "total": total, "lines": len(lines)}  # fmt: skip
    text = json.dumps({"header": header, "lines": lines}, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return text, total, len(lines)


def _new_snapshot(claim: Claim, kind: str, text: str, total: int, count: int) -> ClaimSubmission:
    number = 1 + (db.session.scalar(select(func.max(ClaimSubmission.number)).where(
        ClaimSubmission.claim_id == claim.id, ClaimSubmission.kind == kind)) or 0)  # fmt: skip
    actor = current_actor()
    snap = ClaimSubmission(claim_id=claim.id, kind=kind, number=number, at=clock.utc_naive(), user_id=actor.id,
                           username=actor.username, content=text, sha256=hashlib.sha256(text.encode()).hexdigest(),
                           total=total, lines=count)  # fmt: skip
    db.session.add(snap)
    db.session.flush()
    return snap


def latest_snapshot(claim: Claim, kind: str | None = None) -> ClaimSubmission | None:
    stmt = select(ClaimSubmission).where(ClaimSubmission.claim_id == claim.id)
    if kind:
        stmt = stmt.where(ClaimSubmission.kind == kind)
    return db.session.scalars(stmt.order_by(ClaimSubmission.id.desc()).limit(1)).first()


class FreezePackage(Command):
    """The snapshot the sign-off package is printed from: a submitted claim's last submission;
    a draft's current lines, frozen (the same snapshot again while nothing changed)."""

    def __init__(self, claim: Claim):
        self.claim = claim

    def validate(self) -> None:
        if not (may_prepare(self.claim) or may_review(self.claim) or current_scope().national):
            raise _not_found()

    def execute(self) -> ClaimSubmission:
        claim = self.claim
        if not claim.editable:
            snap = latest_snapshot(claim, SnapshotKind.SUBMISSION.value)
            if snap is not None:
                return snap
        text, total, count = snapshot_content(claim)
        digest = hashlib.sha256(text.encode()).hexdigest()
        last = latest_snapshot(claim)
        if last is not None and last.sha256 == digest:
            return last
        return _new_snapshot(claim, SnapshotKind.PRINT.value, text, total, count)


def snapshot_data(snapshot: ClaimSubmission) -> dict:
    return json.loads(snapshot.content)


def snapshot_diff(older: ClaimSubmission | None, newer: ClaimSubmission) -> dict:
    """What changed between two submissions: lines added, removed, changed (field: old → new)."""
    def keyed(snap):
        return {(d["case"], d["item"], d["date"]): d for d in snapshot_data(snap)["lines"]} if snap else {}

    old, new = keyed(older), keyed(newer)
    changed = []
    for key in sorted(old.keys() & new.keys()):
        fields = {f: (old[key][f], new[key][f]) for f in ("unit", "amount", "order", "note")
                  if old[key][f] != new[key][f]}  # fmt: skip
        if fields:
            changed.append((new[key], fields))
    return {"added": [new[k] for k in sorted(new.keys() - old.keys())],
            "removed": [old[k] for k in sorted(old.keys() - new.keys())], "changed": changed}  # fmt: skip


# ------------------------------------------------------------------ the workflow
def _history(claim, **values) -> ClaimTransition:
    return ClaimTransition(claim=claim, **values)


CLAIM_WORKFLOW = Workflow(
    Claim, "status", _history,
    {
        "submit": ((ClaimStatus.DRAFT.value,), ClaimStatus.SUBMITTED.value),
        "resubmit": ((ClaimStatus.RETURNED.value,), ClaimStatus.RESUBMITTED.value),
        "review": ((ClaimStatus.SUBMITTED.value, ClaimStatus.RESUBMITTED.value), ClaimStatus.IN_REVIEW.value),
        "return": ((ClaimStatus.IN_REVIEW.value,), ClaimStatus.RETURNED.value),
        "approve": ((ClaimStatus.IN_REVIEW.value,), ClaimStatus.APPROVED.value),
        "approve_partly": ((ClaimStatus.IN_REVIEW.value,), ClaimStatus.PARTIAL.value),
    },
    refused=lambda row, name: gettext("This claim is %(status)s: that step is not possible now.",
                                      status=row.status_label),
    stale=lambda: gettext("Someone changed this claim first: nothing was changed. Reload the page to see it."),
    error=ClaimStale,
)  # fmt: skip


class SubmitClaim(Command):
    """送出 (a draft) or 再送出 (a returned claim, corrected): frozen as the next submission."""

    def __init__(self, claim: Claim):
        self.claim = claim

    def validate(self) -> None:
        claim = self.claim
        if not may_prepare(claim):
            raise ClaimRefused(gettext("Only the institution's own staff can submit its claims."), status=403)
        self.step = "resubmit" if claim.status == ClaimStatus.RETURNED.value else "submit"
        CLAIM_WORKFLOW.check(claim, self.step)
        included = [ln for ln in claim.lines if ln.included]
        if not included:
            raise ClaimRefused(gettext("The claim has no line to submit."))
        unchanged = [ln for ln in included if ln.review == LineReview.RETURNED.value
                     and ln.returned_fingerprint == ln.fingerprint()]  # fmt: skip
        if unchanged:
            first = unchanged[0]
            raise ClaimRefused(gettext(
                "%(n)d returned line(s) are unchanged (first: %(date)s %(item)s): correct them, add a correction "
                "note, or leave them out before resubmitting.", n=len(unchanged), date=to_roc(first.executed_on),
                item=first.item_name))  # fmt: skip

    def execute(self) -> ClaimSubmission:
        claim = self.claim
        CLAIM_WORKFLOW.transition(claim, self.step)
        for line in claim.lines:
            if line.included and line.review == LineReview.RETURNED.value:
                line.review = LineReview.PENDING.value  # reviewed again
        _retotal(claim)
        claim.returned_amount = 0
        claim.submissions += 1
        claim.waiting_since = clock.utc_naive()
        text, total, count = snapshot_content(claim)
        return _new_snapshot(claim, SnapshotKind.SUBMISSION.value, text, total, count)

    def after_commit(self) -> None:
        claim = self.claim
        subject = gettext("Subsidy claim submitted: %(inst)s %(period)s", inst=claim.institution.name,
                          period=claim.period_label)  # fmt: skip
        body = gettext("%(inst)s has submitted its claim to %(scheme)s for %(period)s (submission %(n)d): "
                       "%(lines)d lines, NT$%(total)s. Please review it in the system.",
                       inst=claim.institution.name, scheme=claim.scheme.name, period=claim.period_label,
                       n=claim.submissions, lines=sum(1 for ln in claim.lines if ln.included),
                       total=f"{claim.claimed_amount:,}")  # fmt: skip
        _mail(bureau_recipients(claim.institution.county_id), subject, body)


def _check_reviewer(claim: Claim) -> None:
    if not may_review(claim):
        raise ClaimRefused(gettext("Only the bureau of the institution's county can review this claim."), status=403)
    if claim.status not in WAITING:
        raise ClaimRefused(gettext("This claim is %(status)s: it is not waiting for review.",
                                   status=claim.status_label), status=409)  # fmt: skip


def _start_review(claim: Claim) -> None:
    """A submitted claim goes 審核中 at its first decision (claiming the row: one of two wins)."""
    if claim.status in (ClaimStatus.SUBMITTED.value, ClaimStatus.RESUBMITTED.value):
        CLAIM_WORKFLOW.transition(claim, "review")
    else:
        CLAIM_WORKFLOW.claim(claim, claim.status)


def _pending_approved(claim: Claim) -> int:
    return sum(ln.amount for ln in claim.lines if ln.included and ln.review == LineReview.APPROVED.value)


class ReviewLines(Command):
    """The bureau approves lines, or returns them with a reason from the list and a comment."""

    def __init__(self, claim: Claim, line_ids, decision: str, reason: str | None = None, comment: str | None = None):
        self.claim, self.raw_ids, self.decision = claim, line_ids, decision
        self.reason, self.comment = (reason or "").strip() or None, (comment or "").strip() or None

    def validate(self) -> None:
        claim = self.claim
        _check_reviewer(claim)
        if self.decision not in (LineReview.APPROVED.value, LineReview.RETURNED.value):
            raise ClaimRefused(gettext("Approve or return the line."))
        ids = {_int(v) for v in (self.raw_ids or [])}
        if not ids or None in ids:
            raise ClaimRefused(gettext("Choose the lines first."))
        lines = {ln.id: ln for ln in claim.lines if ln.included}
        if ids - set(lines):
            raise ClaimRefused(gettext("A chosen line is not a line of this claim."), status=404)
        self.lines = [lines[i] for i in sorted(ids)]
        if self.decision == LineReview.RETURNED.value:
            if self.reason not in {r.value for r in ReturnReason}:
                raise ClaimRefused(gettext("Choose the reason for returning the line from the list."))
            if self.reason == ReturnReason.OTHER.value and not self.comment:
                raise ClaimRefused(gettext("Please fill in %(field)s.", field=gettext("Comment")))
        if self.comment and len(self.comment) > 500:
            raise ClaimRefused(gettext("%(field)s: at most %(n)d characters.", field=gettext("Comment"), n=500))
        if self.decision == LineReview.APPROVED.value:
            adding = sum(ln.amount for ln in self.lines if ln.review != LineReview.APPROVED.value)
            remaining = budget_remaining(claim.scheme_code, claim.year) - _pending_approved(claim)
            if adding > remaining:
                raise ClaimRefused(gettext(
                    "Approving NT$%(amount)s would exceed the scheme's remaining budget of NT$%(remaining)s.",
                    amount=f"{adding:,}", remaining=f"{max(remaining, 0):,}"))  # fmt: skip

    def execute(self) -> int:
        claim = self.claim
        _start_review(claim)
        actor, now = current_actor(), clock.utc_naive()
        for line in self.lines:
            # Compare-and-set on the line: of two reviewers deciding it at once, one wins.
            result = db.session.execute(
                update(ClaimLine).where(ClaimLine.id == line.id, ClaimLine.review == line.review)
                .values(review=self.decision).execution_options(synchronize_session=False)
            )  # fmt: skip
            if result.rowcount != 1:
                raise ClaimStale(CLAIM_WORKFLOW.stale())
            approved = self.decision == LineReview.APPROVED.value
            line.review = self.decision
            line.approved_amount = line.amount if approved else 0
            line.return_reason = None if approved else self.reason
            line.review_comment = self.comment
            db.session.add(ClaimReview(claim_id=claim.id, line_id=line.id, submission=claim.submissions,
                                       decision=self.decision, reason=None if approved else self.reason,
                                       comment=self.comment, at=now, user_id=actor.id, username=actor.username))  # fmt: skip
        return len(self.lines)


class DecideClaim(Command):
    """The bureau's decision on a claim whose every line is reviewed: all approved → 核准;
    some returned → back to the institution (退回), or closed with the rest (部分核准)."""

    def __init__(self, claim: Claim, close: bool = False, note: str | None = None):
        self.claim, self.close, self.note = claim, bool(close), (note or "").strip() or None

    def validate(self) -> None:
        claim = self.claim
        _check_reviewer(claim)
        included = [ln for ln in claim.lines if ln.included]
        pending = [ln for ln in included if ln.review == LineReview.PENDING.value]
        if pending:
            raise ClaimRefused(gettext("%(n)d lines are not reviewed yet: approve or return every line first.",
                                       n=len(pending)))  # fmt: skip
        returned = [ln for ln in included if ln.review == LineReview.RETURNED.value]
        self.returned = returned
        if not returned:
            self.step = "approve"
        elif self.close:
            self.step = "approve_partly"
            if len(returned) == len(included):
                raise ClaimRefused(gettext("Every line is returned: return the claim to the institution."))
        else:
            self.step = "return"
        if claim.status != ClaimStatus.IN_REVIEW.value:
            CLAIM_WORKFLOW.check(claim, "review")

    def execute(self) -> Claim:
        claim = self.claim
        if claim.status != ClaimStatus.IN_REVIEW.value:
            CLAIM_WORKFLOW.transition(claim, "review")
        approved = _pending_approved(claim)
        returned = sum(ln.amount for ln in self.returned)
        if self.step != "return":
            _lock_scheme_year(claim.scheme_code, claim.year)
            remaining = budget_remaining(claim.scheme_code, claim.year)
            if approved > remaining:
                raise ClaimRefused(gettext(
                    "Approving NT$%(amount)s would exceed the scheme's remaining budget of NT$%(remaining)s.",
                    amount=f"{approved:,}", remaining=f"{max(remaining, 0):,}"))  # fmt: skip
        CLAIM_WORKFLOW.transition(claim, self.step, self.note)
        claim.returned_amount = returned
        # Returned or decided, the claim no longer waits for the bureau (再送出 sets it again).
        claim.waiting_since = None
        if self.step == "return":
            for line in self.returned:
                line.returned_fingerprint = line.fingerprint()
        else:
            claim.approved_amount = approved
            claim.decided_at = clock.utc_naive()
        return claim

    def after_commit(self) -> None:
        claim = self.claim
        label = claim.status_label
        subject = gettext("Subsidy claim %(status)s: %(scheme)s %(period)s", status=label, scheme=claim.scheme.name,
                          period=claim.period_label)  # fmt: skip
        if self.step == "return":
            reasons = "\n".join(f"- {to_roc(ln.executed_on)} {ln.item_name}: {ReturnReason.label_of(ln.return_reason)}"
                                f"{'（' + ln.review_comment + '）' if ln.review_comment else ''}"
                                for ln in self.returned)  # fmt: skip
            body = "\n".join((gettext("The bureau has returned your claim for %(period)s. Lines returned:",
                                       period=claim.period_label), reasons,
                               gettext("Correct them and resubmit the claim.")))  # fmt: skip
        else:
            body = gettext("The bureau has decided your claim for %(period)s: %(status)s, NT$%(amount)s approved.",
                           period=claim.period_label, status=label, amount=f"{claim.approved_amount:,}")  # fmt: skip
        _mail(institution_recipients(claim.institution_id), subject, body)


# ------------------------------------------------------------------ queues
def waiting_claims(scope) -> list[dict]:
    """The claims waiting for a bureau in its scope, oldest first, with days waiting and amount."""
    now = clock.utc_naive()
    rows = db.session.execute(
        select(Claim.id, Claim.waiting_since, Claim.claimed_amount)
        .where(Claim.scope_clause(scope), Claim.status.in_(WAITING)).order_by(Claim.waiting_since, Claim.id)
    ).all()  # fmt: skip
    return [{"id": r[0], "days": (now - r[1]).days if r[1] else 0, "amount": r[2]} for r in rows]


def institution_claim_summary(scope, today: dt.date) -> dict:
    """Drafts, returned claims and their reasons, and the claimable lines of past months (of
    this year) of the scope's institutions that are in no claim."""
    counts = dict(db.session.execute(
        select(Claim.status, func.count(Claim.id)).where(Claim.scope_clause(scope),
               Claim.status.in_((ClaimStatus.DRAFT.value, ClaimStatus.RETURNED.value))).group_by(Claim.status)
    ).all())  # fmt: skip
    reasons = db.session.scalars(
        select(ClaimLine.return_reason).join(Claim, Claim.id == ClaimLine.claim_id)
        .where(Claim.scope_clause(scope), Claim.status == ClaimStatus.RETURNED.value,
               ClaimLine.review == LineReview.RETURNED.value).distinct()
    ).all()  # fmt: skip
    first_of_month = today.replace(day=1)
    unclaimed = 0
    if first_of_month.month > 1:
        ids = sorted(scope.institution_ids)
        clause = Institution.id.in_(ids)
        territory = compute_territory(today.year, clause, today)
        taken = set(db.session.execute(
            select(ClaimLine.case_id, ClaimLine.item_code, ClaimLine.executed_on)
            .where(ClaimLine.institution_id.in_(ids), ClaimLine.executed_on >= dt.date(today.year, 1, 1))
        ).all())  # fmt: skip
        unclaimed = sum(1 for ln in territory.lines if ln.institution_id in scope.institution_ids and ln.amount > 0
                        and ln.executed_on < first_of_month
                        and (ln.case_id, ln.item_code, ln.executed_on) not in taken)  # fmt: skip
    return {"drafts": counts.get(ClaimStatus.DRAFT.value, 0), "returned": counts.get(ClaimStatus.RETURNED.value, 0),
            "reasons": sorted(r for r in reasons if r), "unclaimed": unclaimed}  # fmt: skip


# ------------------------------------------------------------------ mail
def institution_recipients(institution_id: int) -> list[str]:
    """The institution's active accounts with an e-mail address."""
    from models.platform.user import ScopedUser, user_institution

    return sorted(set(db.session.scalars(
        select(ScopedUser.email).join(user_institution, user_institution.c.user_id == ScopedUser.id)
        .where(user_institution.c.institution_id == institution_id, ScopedUser.active.is_(True),
               ScopedUser.email.is_not(None))
    )))  # fmt: skip


def bureau_recipients(county_id: int) -> list[str]:
    """The county's active addiction-bureau accounts with an e-mail address."""
    from core.security.roles import ADDICTION_BUREAU
    from models.platform.user import ScopedUser

    users = db.session.scalars(
        select(ScopedUser).where(ScopedUser.scope_kind == "county", ScopedUser.scope_county_id == county_id,
                                 ScopedUser.active.is_(True), ScopedUser.email.is_not(None))
    ).all()  # fmt: skip
    return sorted({u.email for u in users if any(r.name == ADDICTION_BUREAU for r in u.roles)})


def _mail(addresses, subject: str, body: str) -> None:
    for address in addresses:
        send_mail(address, subject, body)


__all__ = ["BuildClaim", "ClaimRefused", "ClaimStale", "CorrectLine", "DecideClaim", "FreezePackage", "IncludeLines",
           "RefreshClaim", "ReviewLines", "SubmitClaim", "budget_remaining", "claimable_lines", "period_bounds",
           "snapshot_diff"]  # fmt: skip
