"""An independent oracle of what each user may see, computed in Python from the rows.

It deliberately does not reuse the models' scope_clause(): the matrix compares the app's
SQL scoping with this plain reading of DOMAIN.md's scope table. A model without an entry
here fails the matrix, so every new view must come with its oracle.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import selectinload

from models.accounts.application import AccountApplication
from models.addiction.case import Case, Patient
from models.addiction.claim import Claim, ClaimLine, ClaimReview, ClaimSubmission, ClaimTransition
from models.addiction.consent import Consent, ConsentAccess
from models.addiction.course import Course, CourseTransition
from models.addiction.designation import Designation
from models.addiction.his import HisOrder, OrderCodeMapping
from models.addiction.instrument import AssessmentResponse, Instrument, InstrumentVersion
from models.addiction.record import LabResult, RecordForm, TreatmentRecord
from models.addiction.scheme import SchemeItem, SubsidyScheme
from models.addiction.staff import StaffLicence, Training
from models.cessation.correction import (
    CorrectionAttachment,
    CorrectionLine,
    CorrectionTicket,
    TicketTransition,
)
from models.cessation.visit import Quitter, Visit
from models.platform.announcement import Announcement
from models.platform.audit import AuditLog
from models.platform.user import ScopedUser
from models.registry.institution import ContractPeriod, Institution
from models.registry.person import PersonLink
from models.registry.practitioner import Practitioner, ServiceAssignment
from models.registry.reference import County, InstitutionLevel


@dataclass
class UserView:
    """What the oracle knows of a user: their institutions (all, for national users)."""

    username: str
    national: bool
    has_scope: bool
    institution_ids: set[int]
    user_id: int = 0
    county_id: int | None = None
    #: model → (visible, hidden), when the caller froze the split (see user_view).
    splits: dict | None = None


def user_view(db, username: str, frozen: bool = False) -> UserView:
    """The oracle's view of a user. `frozen`: each model's split is computed once and reused
    for the rest of the caller's test. Only for tests that change no row while they look,
    and assert so (the scope matrix): there a view's related models came back for every
    dropdown, and one role's matrix spent 8 s reloading the same 18,000 records (cProfile:
    expected_split was 21 of a test's 25 s)."""
    user = db.session.query(ScopedUser).filter_by(username=username).one()
    institutions = db.session.query(Institution).all()
    if user.scope_kind == "national":
        ids = {i.id for i in institutions}
    elif user.scope_kind == "county":
        ids = {i.id for i in institutions if i.county_id == user.scope_county_id}
    elif user.scope_kind == "facility":
        ids = {i.id for i in user.scope_institutions}
    else:
        ids = set()
    county = user.scope_county_id if user.scope_kind == "county" else None
    return UserView(username, user.scope_kind == "national", bool(ids), ids, user.id, county,
                    {} if frozen else None)


def _account_visible(u: UserView, row: ScopedUser) -> bool:
    if u.national:
        return True
    if u.county_id is not None:
        return row.scope_county_id == u.county_id or any(
            i.id in u.institution_ids for i in row.scope_institutions
        )
    return u.has_scope and row.id == u.user_id


def _practitioner_visible(u: UserView, row: Practitioner) -> bool:
    """Linked to an institution in scope: registered there, or an assignment there."""
    return bool(_LINKED.get(("practitioner", row.id), set()) & u.institution_ids) or any(
        a.institution_id in u.institution_ids for a in row.assignments
    )


def _instrument_visible(u: UserView, row: Instrument) -> bool:
    """A4: built-ins for everyone with a scope; an institution's own there, in its county when
    shared with the county (the county of any institution the user sees), everywhere when
    shared nationally."""
    if not u.has_scope:
        return False
    if row.institution_id is None or u.national or row.sharing == "national":
        return True
    if row.institution_id in u.institution_ids:
        return True
    return row.sharing == "county" and row.institution.county_id in _COUNTIES_OF.get(u.username, set())


def _treated_here(u: UserView, patient_id: int) -> bool:
    """The person has a case at an institution the user sees (A12: the person's institutions)."""
    return bool(_CASES_AT.get(patient_id, set()) & u.institution_ids)


def _consent_visible(u: UserView, row: Consent) -> bool:
    """A12: a consent is seen where it was recorded (its whole history), and by the person's
    other institutions only while it allows cross-hospital lookup: current, not expired."""
    from core import clock

    today = clock.today()
    valid = (row.revoked_at is None and row.superseded_at is None and row.cross_hospital
             and row.signed_on <= today and (row.valid_until is None or row.valid_until >= today))  # fmt: skip
    return u.national or row.institution_id in u.institution_ids or (valid and _treated_here(u, row.patient_id))
def _scheme_visible(u: UserView, row: SubsidyScheme) -> bool:
    """A9/A10: central schemes for everyone with a scope; a county's local scheme to the
    users who see an institution of that county (its bureau, its institutions, national)."""
    if not u.has_scope:
        return False
    return u.national or row.county_id is None or row.county_id in _COUNTIES_OF.get(u.username, set())


def _claim_visible(u: UserView, claim: Claim) -> bool:
    """A11: an institution its own claims, a bureau its county's institutions'; national users
    (the Ministry) the claims of central schemes (a county's local scheme is the county's)."""
    if u.national:
        return claim.scheme.county_id is None
    return claim.institution_id in u.institution_ids


ORACLES = {
    Institution: lambda u, row: row.id in u.institution_ids,
    # A1: designations follow their institution (Ministry all, a bureau its county's, a
    # treatment institution its own); who may write which is the domain's, not scope.
    Designation: lambda u, row: row.institution_id in u.institution_ids,
    ContractPeriod: lambda u, row: row.institution_id in u.institution_ids,
    ServiceAssignment: lambda u, row: row.institution_id in u.institution_ids,
    # Persons: seen where they are linked (a visit or an assignment there, past or present,
    # or registered there by the institution's staff), read here row by row.
    Practitioner: lambda u, row: _practitioner_visible(u, row),
    # A14: a staff member's licences and trainings are seen wherever the staff member is.
    StaffLicence: lambda u, row: _practitioner_visible(u, row.practitioner),
    Training: lambda u, row: _practitioner_visible(u, row.practitioner),
    County: lambda u, row: u.has_scope,
    InstitutionLevel: lambda u, row: u.has_scope,
    AuditLog: lambda u, row: u.national,
    # Announcements are addressed to everyone with a scope (only the admin may open the list).
    Announcement: lambda u, row: u.has_scope,
    # Facility-staff applications go to the bureau of the institution's county; the rest
    # (and everything, for national users) to the admin.
    AccountApplication: lambda u, row: u.national
    or (u.county_id is not None and row.requested_role == "facility"
        and row.institution_id in u.institution_ids),
    ScopedUser: _account_visible,
    Visit: lambda u, row: row.institution_id in u.institution_ids,
    # Correction tickets follow their institution: office all, bureau its county, facility its own.
    CorrectionTicket: lambda u, row: row.institution_id in u.institution_ids,
    CorrectionLine: lambda u, row: row.ticket.institution_id in u.institution_ids,
    CorrectionAttachment: lambda u, row: row.ticket.institution_id in u.institution_ids,
    TicketTransition: lambda u, row: row.ticket.institution_id in u.institution_ids,
    # A5: records and lab results follow their institution; blank forms too, and national
    # users (the Ministry, seed Q15) see every institution's.
    TreatmentRecord: lambda u, row: row.institution_id in u.institution_ids,
    LabResult: lambda u, row: row.record.institution_id in u.institution_ids,
    RecordForm: lambda u, row: u.national or row.institution_id in u.institution_ids,
    Quitter: lambda u, row: u.national
    or bool(_VISITED.get(row.id, set()) & u.institution_ids)
    or bool(_LINKED.get(("quitter", row.id), set()) & u.institution_ids),
    # Addiction: a patient is seen where linked (a case there, or registered there), like a
    # quitter; cases and courses follow their institution, a course's history its course.
    Patient: lambda u, row: u.national or bool(_LINKED.get(("patient", row.id), set()) & u.institution_ids),
    Case: lambda u, row: row.institution_id in u.institution_ids,
    Course: lambda u, row: row.institution_id in u.institution_ids,
    CourseTransition: lambda u, row: row.course.institution_id in u.institution_ids,
    # A3/A4: instruments as above, their versions with them; responses follow their institution.
    Instrument: _instrument_visible,
    InstrumentVersion: lambda u, row: _instrument_visible(u, row.instrument),
    AssessmentResponse: lambda u, row: row.institution_id in u.institution_ids,
    # A12: consents as above; the lookup log is read by the person's institutions (a case
    # there) and their county bureaus. A consent changes nothing else: another institution's
    # cases, courses, records and lab results keep the oracles above (the timeline is a
    # projection of its own, domain/addiction/timeline.py).
    Consent: _consent_visible,
    ConsentAccess: lambda u, row: u.national or _treated_here(u, row.patient_id),
    # A6: orders and code mappings follow their institution.
    HisOrder: lambda u, row: row.institution_id in u.institution_ids,
    OrderCodeMapping: lambda u, row: row.institution_id in u.institution_ids,
    SubsidyScheme: _scheme_visible,
    SchemeItem: lambda u, row: _scheme_visible(u, row.scheme),
    Claim: _claim_visible,
    ClaimLine: lambda u, row: _claim_visible(u, row.claim),
    ClaimSubmission: lambda u, row: _claim_visible(u, row.claim),
    ClaimReview: lambda u, row: _claim_visible(u, _CLAIMS[row.claim_id]),
    ClaimTransition: lambda u, row: _claim_visible(u, row.claim),
}
#: The relations an oracle reads, loaded with the rows: read lazily they cost one statement
#: per row (a role's matrix spent 17 of its 25 oracle seconds on them). What is visible is
#: still decided in Python, row by row, by ORACLES above.
_LOADS = {
    Practitioner: [selectinload(Practitioner.assignments)],
    StaffLicence: [selectinload(StaffLicence.practitioner).selectinload(Practitioner.assignments)],
    Training: [selectinload(Training.practitioner).selectinload(Practitioner.assignments)],
    LabResult: [selectinload(LabResult.record)],
    CorrectionLine: [selectinload(CorrectionLine.ticket)],
    CorrectionAttachment: [selectinload(CorrectionAttachment.ticket)],
    TicketTransition: [selectinload(TicketTransition.ticket)],
    CourseTransition: [selectinload(CourseTransition.course)],
    Instrument: [selectinload(Instrument.institution)],
    InstrumentVersion: [selectinload(InstrumentVersion.instrument).selectinload(Instrument.institution)],
    ScopedUser: [selectinload(ScopedUser.scope_institutions)],
    SchemeItem: [selectinload(SchemeItem.scheme)],
    Claim: [selectinload(Claim.scheme)],
    ClaimLine: [selectinload(ClaimLine.claim).selectinload(Claim.scheme)],
    ClaimSubmission: [selectinload(ClaimSubmission.claim).selectinload(Claim.scheme)],
    ClaimTransition: [selectinload(ClaimTransition.claim).selectinload(Claim.scheme)],
}
#: claim id → claim (with its scheme), for the reviews' oracle; filled by expected_split.
_CLAIMS: dict[int, Claim] = {}
#: username → the counties of the institutions the user sees; filled by expected_split.
_COUNTIES_OF: dict[str, set[int]] = {}
#: quitter id → institutions they visited; filled by expected_split (one query, not N).
_VISITED: dict[int, set[int]] = {}
#: (person kind, id) → institutions linked to the person (models/registry/person.py PersonLink).
_LINKED: dict[tuple[str, int], set[int]] = {}
#: patient id → institutions where the patient has a case; filled by expected_split.
_CASES_AT: dict[int, set[int]] = {}


def expected_split(db, model, user: UserView) -> tuple[set[int], set[int]]:
    """(visible ids, hidden ids) of a model for a user."""
    if model not in ORACLES:
        raise AssertionError(
            f"no scope oracle for {model.__name__}: add one to tests/scope_oracle.py"
        )
    if user.splits is not None and model in user.splits:
        visible, hidden = user.splits[model]
        return set(visible), set(hidden)  # callers narrow their copy
    visible, hidden = set(), set()
    if model in (Quitter, Practitioner, Patient, StaffLicence, Training):
        _LINKED.clear()
        for kind, person_id, institution_id in db.session.query(
            PersonLink.person_kind, PersonLink.person_id, PersonLink.institution_id
        ):
            _LINKED.setdefault((kind, person_id), set()).add(institution_id)
    if model in (Instrument, InstrumentVersion, SubsidyScheme, SchemeItem):
        counties = dict(db.session.query(Institution.id, Institution.county_id))
        _COUNTIES_OF[user.username] = {counties[i] for i in user.institution_ids}
    if model in (Consent, ConsentAccess):
        _CASES_AT.clear()
        for patient_id, institution_id in db.session.query(Case.patient_id, Case.institution_id):
            _CASES_AT.setdefault(patient_id, set()).add(institution_id)
    if model is ClaimReview:
        _CLAIMS.clear()
        _CLAIMS.update({c.id: c for c in db.session.query(Claim).options(selectinload(Claim.scheme))})
    if model is Quitter:
        _VISITED.clear()
        for quitter_id, institution_id in db.session.query(Visit.quitter_id, Visit.institution_id):
            _VISITED.setdefault(quitter_id, set()).add(institution_id)
    for row in db.session.query(model).options(*_LOADS.get(model, ())).all():
        (visible if ORACLES[model](user, row) else hidden).add(row.id)
    if user.splits is not None:
        user.splits[model] = (frozenset(visible), frozenset(hidden))
    return visible, hidden
