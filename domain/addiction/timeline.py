"""The consent-gated cross-hospital timeline (A12), enforced in the data layer.

A12 without a valid consent an institution sees only its own rows; with one, another
    institution sees the person's courses and records at every institution as a timeline —
    date, institution, kind of treatment, profession — and never a record's content, except
    lab results (substance, result, date) when the consent includes them. No break-the-glass.

The timeline is a projection: its statements select those columns and nothing else (no
content, no author, and no id of another institution's row: the id column is NULL for them),
so what reaches the page or the API cannot carry more. Another institution's rows stay out of
scope everywhere else (TreatmentRecord, Course, Case and LabResult scope on their institution:
URL, REST, export, search and dropdowns answer 404 or leave them out).

The grant is read from the consent row on every view, in the statement before the timeline's,
never from a cache: a revocation committed by any process holds for the next view in every
other (tests/addiction/test_consent.py runs two app instances on one database). Every view
that shows rows of another institution writes one ConsentAccess row (who, when, from which
institution, which person, under which consent, how many rows).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from operator import itemgetter

from flask_babel import gettext
from sqlalchemy import Boolean, Date, Integer, bindparam, insert, or_, select
from sqlalchemy import case as when

from core import clock
from core.actor import current_actor
from core.data.counts import bump_tables
from core.data.scope import current_scope
from core.dates import to_roc, utcnow
from core.extensions import db
from models.addiction.case import Case
from models.addiction.consent import Consent, ConsentAccess
from models.addiction.course import Course
from models.addiction.record import LabResult, TreatmentKind, TreatmentRecord
from models.platform.user import ScopeKind
from models.registry.institution import Institution


@dataclass(frozen=True)
class Grant:
    """A valid consent that allows cross-hospital lookup, as the timeline uses it."""

    id: int
    signed_on: dt.date
    valid_until: dt.date | None
    lab_results: bool
    institution: str


@dataclass
class Timeline:
    """A person's timeline as one viewer may see it."""

    case_id: int
    patient_id: int
    grant: Grant | None
    #: (start_date, end_date, status, institution name, substance category, own, course id or None)
    courses: list = field(default_factory=list)
    #: (executed_on, kind, profession, institution name, own, record id or None)
    records: list = field(default_factory=list)
    #: (sampled_on, substance, outcome, value, institution name, own)
    labs: list = field(default_factory=list)
    #: Rows of other institutions shown (what the access log counts).
    others: int = 0
    #: Why no other institution's rows are shown (without a grant), or what is left out.
    reason: str = ""
    #: The access-log row this view wrote (None when nothing of another institution was shown).
    access_id: int | None = None


def _own(institution=Institution):
    """The row's institution is in the viewer's scope (Scope.institution_filter, with the
    scope's ids as parameters): national, one of the institutions, or in one of the counties."""
    return or_(
        bindparam("all_own", type_=Boolean),
        institution.id.in_(bindparam("own_institutions", expanding=True, type_=Integer)),
        institution.county_id.in_(bindparam("own_counties", expanding=True, type_=Integer)),
    )


def _own_values(scope) -> dict:
    """The parameters of _own() for a scope: the same rows as scope.institution_filter()."""
    county = scope.kind == ScopeKind.COUNTY
    facility = scope.kind == ScopeKind.FACILITY
    return {
        "all_own": scope.national,
        "own_institutions": sorted(scope.institution_ids) if facility and not scope.national else [],
        "own_counties": sorted(scope.county_ids) if county and not scope.national else [],
    }


def _statements():
    """The four statements of a view, built once with bound parameters: a statement built per
    view cost more than running it (construction and its cache key were 0.9 of 1.6 s under
    cProfile for 30 views, bench/timeline.py); built once, SQLAlchemy finds it compiled."""
    patient = bindparam("patient", type_=Integer)
    others = bindparam("others", type_=Boolean)  # a grant: other institutions' rows too
    other_labs = bindparam("other_labs", type_=Boolean)  # a grant including lab results
    today = bindparam("today", type_=Date)
    grant = (
        select(Consent.id, Consent.signed_on, Consent.valid_until, Consent.lab_results, Institution.name)
        .join(Institution, Institution.id == Consent.institution_id)
        .where(Consent.patient_id == patient, Consent.valid_clause(today))
    )  # fmt: skip
    cases_of_person = select(Case.id).where(Case.patient_id == patient).scalar_subquery()
    own = _own()
    courses = select(
        Course.start_date, Course.end_date, Course.status, Institution.name, Case.substance_category,
        own.label("own"), when((own, Course.id), else_=None).label("id"),
    ).join(Case, Case.id == Course.case_id).join(Institution, Institution.id == Course.institution_id).where(
        Case.patient_id == patient, or_(others, own)
    ).order_by(Course.start_date.desc(), Course.id.desc())  # fmt: skip
    records = select(
        TreatmentRecord.executed_on, TreatmentRecord.kind, TreatmentRecord.profession, Institution.name,
        own.label("own"), when((own, TreatmentRecord.id), else_=None).label("id"),
    ).join(Institution, Institution.id == TreatmentRecord.institution_id).where(
        TreatmentRecord.case_id.in_(cases_of_person), or_(others, own)
    ).order_by(TreatmentRecord.executed_on.desc(), TreatmentRecord.id.desc())  # fmt: skip
    labs = select(
        LabResult.sampled_on, LabResult.substance, LabResult.outcome, LabResult.value, Institution.name,
        own.label("own"),
    ).join(TreatmentRecord, TreatmentRecord.id == LabResult.record_id).join(
        Institution, Institution.id == TreatmentRecord.institution_id
    ).where(
        # Only lab tests hold results (domain/addiction/records.py): 100 probes of lab_result, not 1,000.
        TreatmentRecord.case_id.in_(cases_of_person), TreatmentRecord.kind == TreatmentKind.LAB_TEST.value,
        or_(other_labs, own),
    ).order_by(LabResult.sampled_on.desc(), LabResult.id.desc())  # fmt: skip
    return grant, courses, records, labs


_GRANT, _COURSES, _RECORDS, _LABS = _statements()
_LOG = insert(ConsentAccess.__table__)


def grant_for(patient_id: int, today: dt.date | None = None) -> Grant | None:
    """The person's consent that allows cross-hospital lookup today, read now (one statement)."""
    row = db.session.execute(_GRANT, {"patient": patient_id, "today": today or clock.today()}).first()
    return Grant(*row) if row is not None else None


def _why_not(patient_id: int) -> str:
    """The sentence under a timeline without other institutions' rows, from the latest consent
    the viewer may see (one recorded elsewhere and no longer valid is not theirs to know of)."""
    latest = db.session.execute(
        select(Consent.cross_hospital, Consent.revoked_on, Consent.valid_until, Consent.superseded_at)
        .where(Consent.patient_id == patient_id, Consent.scope_clause(current_scope()))
        .order_by(Consent.id.desc()).limit(1)
    ).first()  # fmt: skip
    own_only = gettext("Only your institution's courses and records are shown.")
    if latest is None:
        why = gettext("The patient has no informed consent to cross-hospital lookup on record.")
    elif latest.revoked_on is not None:
        why = gettext("The patient revoked the consent to cross-hospital lookup on %(date)s.",
                      date=to_roc(latest.revoked_on))  # fmt: skip
    elif not latest.cross_hospital:
        why = gettext("The patient did not agree to cross-hospital lookup.")
    elif latest.valid_until is not None and latest.valid_until < clock.today():
        why = gettext("The patient's consent to cross-hospital lookup ended on %(date)s.",
                      date=to_roc(latest.valid_until))  # fmt: skip
    else:
        why = gettext("The patient has no valid consent to cross-hospital lookup.")
    return f"{why}{own_only}"


def person_timeline(case: Case, channel: str = "page") -> Timeline:
    """The timeline of the case's person for the current user (who may see `case`), with
    the access-log row written and committed when it shows another institution's rows.

    The grant's read, the three projection statements and the log row run in one
    transaction on a connection of their own, committed before the page is sent: the log
    row names the very grant the rows were read under, and the request's session keeps
    what it has loaded (a commit there expired the case, patient and institution: 9 more
    statements on the case page). One connection, not the session's for the reads and
    another for the log: on PostgreSQL the second checkout and its statements were a third
    of the view (bench/timeline.py, 31.7 ms against SQLite's 14.1)."""
    scope = current_scope()
    timeline = Timeline(case.id, case.patient_id, None)
    params = {"patient": case.patient_id, "today": clock.today(), **_own_values(scope)}
    with db.engine.begin() as connection:
        run = connection.execute
        row = run(_GRANT, params).first()
        grant = timeline.grant = Grant(*row) if row is not None else None
        params["others"] = grant is not None
        params["other_labs"] = grant is not None and grant.lab_results
        # Core rows: the ORM's result processing cost as much again for 1,000 rows.
        timeline.courses = run(_COURSES, params).all()
        timeline.records = run(_RECORDS, params).all()
        timeline.labs = run(_LABS, params).all()
        # Counted in C (a generator over 1,100 rows was 0.8 ms of a 3 ms view).
        timeline.others = sum(len(rows) - sum(map(itemgetter(own), rows)) for rows, own in
                              ((timeline.courses, 5), (timeline.records, 4), (timeline.labs, 5)))  # fmt: skip
        if grant is not None and timeline.others:
            timeline.access_id = _log_access(connection, case, grant, channel, timeline.others)
    if timeline.access_id is not None:
        # Committed on a connection no session event sees: the log's cached list counts
        # move on now, as after any session's commit.
        bump_tables([ConsentAccess.__table__.name])
    if grant is None:
        timeline.reason = _why_not(case.patient_id)
    elif not grant.lab_results:
        timeline.reason = gettext("The consent does not include lab results: other institutions' lab results are not shown.")
    return timeline


def _log_access(connection, case: Case, grant: Grant, channel: str, rows: int) -> int:
    """Write one access-log row in the timeline's transaction: this user looked at the
    person's timeline now, under this grant, and saw `rows` rows of other institutions."""
    actor = current_actor()
    values = {
        "at": utcnow(), "user_id": actor.id, "username": actor.username, "institution_id": case.institution_id,
        "patient_id": case.patient_id, "case_id": case.id, "consent_id": grant.id, "channel": channel,
        "rows_shown": rows, "source_ip": actor.ip,
    }  # fmt: skip
    return connection.execute(_LOG, values).inserted_primary_key[0]
