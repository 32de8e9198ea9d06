"""Addiction-programme resources and what each of its roles may do (A1). No cessation role
is granted any of these, and these roles are granted no cessation resource (the scope matrix
proves both directions)."""

from __future__ import annotations

from core.security.permissions import (
    ALL,
    CAN_CREATE,
    CAN_DELETE,
    CAN_EDIT,
    PERSONAL_ID,
    READ,
    READ_EXPORT,
)
from core.security.roles import ADDICTION_BUREAU, ADDICTION_MINISTRY, HIS_INTERFACE, TREATMENT
from domain.registry.grants import ASSIGNMENT, INSTITUTION, PRACTITIONER, REFERENCE

DESIGNATION = "Designation"
PATIENT = "Patient"
CASE = "Case"
COURSE = "Course"
RECORD = "TreatmentRecord"
RECORD_FORM = "RecordForm"
STAFF_LICENCE = "StaffLicence"
TRAINING = "Training"
#: Staff short of their training hours or whose licence ends soon (A14), a report.
STAFF_SHORTFALL = "StaffShortfall"
#: The questionnaire designer (A4): an institution designs its own; the ministry shares
#: nationally; a bureau reads its county's shared ones.
QUESTIONNAIRE_DESIGN = "QuestionnaireDesign"
#: Assessments of a course (A3, A4): responses to an instrument, written through the engine.
ASSESSMENT = "Assessment"
#: Courses whose initial or follow-up assessment is due or overdue (A3), a report.
ASSESSMENT_DUE = "AssessmentDue"
#: Recording the licence of a built-in whose licence is not free (FTND): Admin only (edit is
#: granted to no role here; sync_roles gives Admin every permission); the Ministry reads it.
INSTRUMENT_LICENCE = "InstrumentLicence"
#: Informed consent to cross-hospital lookup (A12): recorded and revoked by the staff of an
#: institution where the person has a case (edit = revoke).
CONSENT = "Consent"
#: Who looked at a person's cross-hospital timeline (A12): the person's institutions and
#: their county bureaus read it; nobody changes it.
CONSENT_ACCESS = "ConsentAccess"
#: HIS orders of a case (A6): posted by the institution's HIS system account or uploaded.
HIS_ORDER = "HisOrder"
#: An institution's HIS order code → subsidy item mappings, and its unmapped codes (A6, Q9).
ORDER_MAPPING = "OrderCodeMapping"
#: Subsidy schemes and their items (A9, A10): the Ministry's central, a bureau's local ones.
SCHEME = "SubsidyScheme"
SCHEME_ITEM = "SchemeItem"
#: What can be claimed (A7–A9): an institution's unclaimed lines by month, a report.
CLAIMABLE = "Claimable"
#: Spending against budget per scheme, per county and nationally, a report.
SCHEME_SPENDING = "SchemeSpending"
#: 成癮醫療業務統計 (issue 19 part 5): the programme's yearly reports, in the reader's scope
#: (the Ministry nationally, a bureau its county, an institution its own cases).
ADDICTION_REPORT = "AddictionReport"
#: Subsidy claims (A11): an institution builds, signs off and submits its own (create = its
#: steps: build, leave lines out, correct, submit, print the package).
CLAIM = "Claim"
#: The same claims as the county bureau reviews them (edit = approve or return lines, decide);
#: the Ministry reads central-scheme claims nationally.
CLAIM_REVIEW = "ClaimReview"
#: Subsidy claimed, approved and returned against budget per scheme (a report and its API).
CLAIM_REPORT = "ClaimReport"

#: Each part of the programme adds its resources here with the views that declare them
#: (sync_roles refuses a grant on a resource no view declares).
GRANTS: dict[str, dict[str, set[str]]] = {
    # Their own institutions: cases, courses, records, their blank forms, their staff.
    TREATMENT: {
        **REFERENCE,
        INSTITUTION: READ_EXPORT,
        PRACTITIONER: READ_EXPORT | {CAN_CREATE},
        ASSIGNMENT: ALL,
        PERSONAL_ID: READ,
        STAFF_LICENCE: ALL,
        TRAINING: ALL,
        STAFF_SHORTFALL: READ_EXPORT,
        RECORD: READ_EXPORT | {CAN_CREATE, CAN_EDIT},
        RECORD_FORM: READ_EXPORT | {CAN_CREATE},
        # Cases and courses of their institutions (issue 14 items 3–4); no other addiction
        # role sees a patient in this issue.
        PATIENT: READ_EXPORT | {CAN_CREATE},
        CASE: READ_EXPORT | {CAN_CREATE, CAN_EDIT},
        COURSE: READ_EXPORT | {CAN_CREATE, CAN_EDIT},
        DESIGNATION: READ_EXPORT,
        QUESTIONNAIRE_DESIGN: READ | {CAN_CREATE, CAN_EDIT},
        # Their courses' assessments, and the courses whose assessments are due (A3, A4).
        ASSESSMENT: READ_EXPORT | {CAN_CREATE, CAN_EDIT},
        ASSESSMENT_DUE: READ_EXPORT,
        # A12: consents of their patients, the cross-hospital timeline on the case page, and
        # who looked at it.
        CONSENT: READ_EXPORT | {CAN_CREATE, CAN_EDIT},
        CONSENT_ACCESS: READ_EXPORT,
        # A6–A10: their orders (uploaded, or the case-management fee added), their code
        # mappings, the schemes they claim (read), what of them is claimable.
        HIS_ORDER: READ_EXPORT | {CAN_CREATE},
        ORDER_MAPPING: READ_EXPORT | {CAN_CREATE, CAN_EDIT},
        SCHEME: READ,
        SCHEME_ITEM: READ,
        CLAIMABLE: READ,
        # Their own institutions' yearly figures: counts of cases they already see row by row.
        ADDICTION_REPORT: READ_EXPORT,
        # A11: their claims — built, left-out lines, sign-off package, submitted, corrected.
        CLAIM: READ_EXPORT | {CAN_CREATE},
    },
    # The HIS system account of one institution: posts orders, reads what it posted (A6).
    HIS_INTERFACE: {
        HIS_ORDER: READ | {CAN_CREATE},
    },
    # Their county: designations of alcohol-treatment institutions, staff and training,
    # and (later issues) local schemes and claim approval. No record contents.
    ADDICTION_BUREAU: {
        **REFERENCE,
        INSTITUTION: READ_EXPORT,
        PRACTITIONER: READ_EXPORT,
        # Reads its county's designations; adds and changes only the alcohol-treatment ones
        # (domain/addiction/designations.py).
        DESIGNATION: READ_EXPORT | {CAN_CREATE, CAN_EDIT},
        STAFF_LICENCE: READ_EXPORT,
        TRAINING: READ_EXPORT,
        STAFF_SHORTFALL: READ_EXPORT,
        QUESTIONNAIRE_DESIGN: READ,
        # Which of their county's courses miss a required assessment (A3); no answers.
        ASSESSMENT_DUE: READ_EXPORT,
        # A12: who looked at the timeline of a person treated in their county.
        CONSENT_ACCESS: READ_EXPORT,
        # A10: their county's local schemes (the domain refuses central and other counties'
        # ones); spending against budget in their county.
        SCHEME: READ | {CAN_CREATE, CAN_EDIT},
        # An item of a draft version may be deleted (a published version is frozen).
        SCHEME_ITEM: READ | {CAN_CREATE, CAN_EDIT, CAN_DELETE},
        SCHEME_SPENDING: READ,
        ADDICTION_REPORT: READ_EXPORT,
        # A11: their county's claims, reviewed line by line and decided; claims against budget.
        CLAIM_REVIEW: READ_EXPORT | {CAN_EDIT},
        CLAIM_REPORT: READ,
    },
    # National: designations, every institution's blank record forms (seed Q15, no patient
    # data), staff and training; central schemes, their claims and the national reports.
    ADDICTION_MINISTRY: {
        **REFERENCE,
        INSTITUTION: READ_EXPORT,
        PRACTITIONER: READ_EXPORT,
        DESIGNATION: ALL,
        RECORD_FORM: READ_EXPORT,
        STAFF_LICENCE: READ_EXPORT,
        TRAINING: READ_EXPORT,
        STAFF_SHORTFALL: READ_EXPORT,
        # Reads every questionnaire; edits only their sharing (national).
        QUESTIONNAIRE_DESIGN: READ | {CAN_EDIT},
        ASSESSMENT_DUE: READ_EXPORT,
        # Which built-ins are licensed and enabled (recording a licence is the admin's).
        INSTRUMENT_LICENCE: READ,
        # A9: the central schemes (the domain refuses counties' local ones); national spending.
        SCHEME: READ | {CAN_CREATE, CAN_EDIT},
        # An item of a draft version may be deleted (a published version is frozen).
        SCHEME_ITEM: READ | {CAN_CREATE, CAN_EDIT, CAN_DELETE},
        SCHEME_SPENDING: READ,
        ADDICTION_REPORT: READ_EXPORT,
        # A11: every central-scheme claim (read; the county bureaus decide them), the national report.
        CLAIM_REVIEW: READ_EXPORT,
        CLAIM_REPORT: READ,
    },
}
