"""Demo claims (issue 19, A11): claims of the 高雄市 demo hospital (cm_khh's) in each state —
草稿, 已送出, 審核中, 退回, 再送出, 部分核准, 核准 — so that bureau_khh has a queue and the
reports have figures. Built with the domain's commands (their checks and history), without
their mail."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import func, select

from core import clock
from core.extensions import db
from domain.addiction.claims import (
    BuildClaim,
    CorrectLine,
    DecideClaim,
    ReviewLines,
    SubmitClaim,
    claimable_schemes,
)
from models.addiction.claim import Claim
from seed.addiction.registry import demo_addiction_institution

#: The states to show, in the order the months are given them.
STATES = ("approved", "partial", "returned", "resubmitted", "in_review", "submitted", "draft")


def _do(command):
    """The command's checks and work in the seed's transaction (no mail: nobody asked)."""
    command.validate()
    result = command.execute()
    db.session.flush()
    return result


def _included(claim):
    return [ln.id for ln in claim.lines if ln.included]


def _advance(claim: Claim, state: str) -> None:
    if state == "draft":
        return
    _do(SubmitClaim(claim))
    if state == "submitted":
        return
    ids = _included(claim)
    if state == "in_review":
        _do(ReviewLines(claim, ids[:1], "approved"))
        return
    if state == "approved":
        _do(ReviewLines(claim, ids, "approved"))
        _do(DecideClaim(claim))
        return
    returned = ids[:1]
    _do(ReviewLines(claim, returned, "returned", "no_record", "治療紀錄未簽名"))
    if ids[1:]:
        _do(ReviewLines(claim, ids[1:], "approved"))
    if state == "partial" and ids[1:]:
        _do(DecideClaim(claim, close=True, note="其餘核准"))
        return
    _do(DecideClaim(claim))
    if state == "resubmitted":
        db.session.refresh(claim)
        _do(CorrectLine(claim, returned[0], "已補齊醫師簽名之治療紀錄"))
        _do(SubmitClaim(claim))


def seed_claims_demo() -> dict[str, int]:
    """Once: one claim per month of the latest year with claimable lines, each in the next state."""
    if db.session.scalar(select(func.count(Claim.id))):
        return {"subsidy claims": db.session.scalar(select(func.count(Claim.id)))}
    institution = demo_addiction_institution("hospital_khh")
    today = clock.today()
    states = list(STATES)
    for year in (today.year - 1, today.year):
        for scheme in claimable_schemes(institution, year):
            for month in range(1, 13):
                if not states or dt.date(year, month, 1) > today:
                    break
                build = BuildClaim(institution.id, scheme.code, year, month, today=today)
                try:
                    build.validate()
                except Exception:  # a quarterly scheme, a period already claimed: the next
                    continue
                claim = build.execute()
                db.session.flush()
                db.session.refresh(claim)
                if len(claim.lines) < 2:
                    db.session.delete(claim)
                    db.session.flush()
                    continue
                _advance(claim, states.pop(0))
    db.session.commit()
    return {"subsidy claims": db.session.scalar(select(func.count(Claim.id)))}
