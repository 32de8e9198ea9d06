"""A12 demo: persons treated at the 臺北市 demo hospital and then at the 高雄市 one, so that the
cross-hospital timeline can be walked with the demo logins (cm_khh opens them; psy_tpe,
dr_tpe and bureau_tpe read who looked). Deterministic and idempotent (fixed IDs; a re-seed
adds nothing); a handful of ORM rows, so it costs `make run` nothing measurable.

- 王大明: consented at 臺北 (cross-hospital lookup and lab results), with an outpatient visit, a
  psychotherapy session (its note must never reach 高雄), urine tests at 臺北 and a
  case-management contact at 高雄;
- 李小華: the same two institutions, no consent (高雄 sees only its own rows, and why);
- 陳志強: consented at 臺北 and revoked it (the history at 臺北; nothing of 臺北 at 高雄).
"""

from __future__ import annotations

import datetime as dt

from dateutil.relativedelta import relativedelta
from sqlalchemy import select

from core.extensions import db
from core.files import PDF, sha256
from core.validators import personal_id_check_digit
from domain.addiction.consent import CONSENT_FILES, consent_form_pdf
from models.addiction.case import Case, Patient
from models.addiction.consent import Consent
from models.addiction.course import Course, CourseTransition
from models.addiction.record import LabResult, TreatmentRecord
from models.platform.user import ScopedUser
from seed.addiction.registry import demo_addiction_institution, demo_staff

#: national-ID prefix -> (name, sex, birth date, consent: None / "granted" / "revoked")
PERSONS = {
    "A18800001": ("王大明", "M", dt.date(1988, 6, 12), "granted"),
    "B28800002": ("李小華", "F", dt.date(1992, 2, 3), None),
    "E18800003": ("陳志強", "M", dt.date(1979, 11, 21), "revoked"),
}
TPE_START, KHH_START = dt.date(2025, 3, 3), dt.date(2025, 10, 1)
#: The psychotherapy note of the demo: the journey checks it never shows at 高雄.
PSYCHOTHERAPY_NOTE = "討論復發高風險情境與家庭衝突"


def demo_national_id(prefix: str) -> str:
    return prefix + personal_id_check_digit(prefix)


def seed_consent_demo() -> dict[str, int]:
    """Create the A12 demo persons (once); returns how many were added."""
    tpe, khh = demo_addiction_institution("hospital_tpe"), demo_addiction_institution("hospital_khh")
    if tpe is None or khh is None:
        return {"consent demo persons": 0}
    dr, psy, cm = demo_staff("dr_tpe"), demo_staff("psy_tpe"), demo_staff("cm_khh")
    recorder = db.session.scalar(select(ScopedUser).where(ScopedUser.username == "psy_tpe"))
    added = 0
    for prefix, (name, sex, birth, consent) in PERSONS.items():
        national_id = demo_national_id(prefix)
        if db.session.scalar(select(Patient.id).where(Patient.national_id == national_id)) is not None:
            continue
        added += 1
        patient = Patient(id_kind="national_id", national_id=national_id, name=name, sex=sex, birth_date=birth)
        db.session.add(patient)
        db.session.flush()
        tpe_case = _case(patient, tpe, TPE_START, "self")
        khh_case = _case(patient, khh, KHH_START, "deferred_prosecution")
        tpe_course = _course(tpe_case, TPE_START, "interrupted", "轉至他院")
        khh_course = _course(khh_case, KHH_START, "active", None)
        _record(tpe_course, TPE_START + dt.timedelta(days=2), dr, "physician", "outpatient", 20,
                {"assessment": "安非他命使用三年，戒斷症狀輕微", "medication": "", "plan": "門診追蹤"})  # fmt: skip
        _record(tpe_course, TPE_START + dt.timedelta(days=9), psy, "psychologist", "individual_psychotherapy", 50,
                {"topic": "動機式晤談", "interventions": PSYCHOTHERAPY_NOTE, "response": "願意配合", "plan": "每週一次"})  # fmt: skip
        for days, outcome in ((16, "negative"), (100, "positive")):
            lab = _record(tpe_course, TPE_START + dt.timedelta(days=days), dr, "physician", "lab_test", 10,
                          {"note": "尿液毒物檢驗"})  # fmt: skip
            db.session.add(LabResult(record=lab, substance="安非他命", sampled_on=lab.executed_on, outcome=outcome))
        _record(khh_course, KHH_START + dt.timedelta(days=1), cm, "case_manager", "case_management", 30,
                {"summary": "轉介至本院，建立個管關係", "plan": "每月電話關懷"})  # fmt: skip
        if consent:
            _consent(tpe_case, recorder, revoked=consent == "revoked")
    db.session.flush()
    return {"consent demo persons": added}


def _case(patient, institution, opened, referral) -> Case:
    case = Case(patient_id=patient.id, institution_id=institution.id, opened_on=opened, substance_category="drug",
                substances="安非他命", referral_source=referral, eligibility="general", status="open")  # fmt: skip
    db.session.add(case)
    db.session.flush()
    return case


#: When the 臺北 courses were interrupted (the person moved south): after their last record.
INTERRUPTED_AT = dt.datetime(2025, 9, 20, 2, 0)


def _course(case, start, status, reason) -> Course:
    """A course of `case` from `start`, a year long (A2), with its history (started; interrupted)."""
    course = Course(case_id=case.id, institution_id=case.institution_id, start_date=start,
                    end_date=start + relativedelta(years=1), status=status, interrupt_reason=reason)  # fmt: skip
    db.session.add(course)
    db.session.flush()
    db.session.add(CourseTransition(course_id=course.id, from_status=None, to_status="active",
                                    at=dt.datetime.combine(start, dt.time(1, 0))))  # fmt: skip
    if status != "active":
        db.session.add(CourseTransition(course_id=course.id, from_status="active", to_status=status,
                                        at=INTERRUPTED_AT, note=reason))  # fmt: skip
    return course


def _record(course, day, author, profession, kind, minutes, content) -> TreatmentRecord:
    record = TreatmentRecord(course_id=course.id, case_id=course.case_id, institution_id=course.institution_id,
                             executed_on=day, author_id=author.id, profession=profession, kind=kind,
                             minutes=minutes, content=content)  # fmt: skip
    db.session.add(record)
    db.session.flush()
    return record


def _consent(case, recorder, revoked: bool) -> None:
    signed_on = TPE_START + dt.timedelta(days=1)
    scan = consent_form_pdf(case, signed={"boxes": {0, 1}, "names": [case.patient.name, "", "陳心理師",
                                                                     signed_on.isoformat()]})  # fmt: skip
    stored = CONSENT_FILES.save(scan, PDF)
    consent = Consent(
        patient_id=case.patient_id, institution_id=case.institution_id, case_id=case.id,
        recorded_by_id=recorder.id if recorder else None, recorded_by_name="psy_tpe", signed_on=signed_on,
        cross_hospital=True, lab_results=True, scan_name=stored, scan_mime=PDF, scan_size=len(scan),
        scan_sha256=sha256(scan),
    )  # fmt: skip
    if revoked:
        consent.revoked_on = signed_on + dt.timedelta(days=120)
        consent.revoked_reason = "個案表示不再同意跨院查詢"
        consent.revoked_at = dt.datetime.combine(consent.revoked_on, dt.time(2, 0))
        consent.revoked_by_name = "psy_tpe"
    db.session.add(consent)
