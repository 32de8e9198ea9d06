"""Addiction-programme demo data shaped like 2024–2025, deterministic for a seed.

At scale 1: the hospitals of the demo registry designated for drug treatment (by the
Ministry) and alcohol treatment (by their county), a health station in every county that
has no designated hospital; their staff (the practitioners serving there, with a licence in
their profession, and case-manager certificates for some nurses and social workers);
~15,000 cases of ~14,300 patients (some treated at two institutions); one or two courses
per case starting in 2024–2025 (end = start + 1 year, A2), some completed or interrupted
with their history; ~600,000 treatment records, each by a staff member of the course's
institution holding the kind's profession with a licence valid that day (A5, A14), dated
inside its course; lab results for the lab-test records.

Non-hospital institutions (psychotherapy clinics, social-worker offices) are not created
here: the registry has no code column for them yet (seed/addiction/registry.py adds them).
Everything is written with Core executemany in chunks (on SQLite straight through the
driver, values already in SQLAlchemy's storage format): fast, and not audited (the audit
hooks see ORM writes only), like the cessation visits.
"""

from __future__ import annotations

import datetime as dt
import json
import random

from dateutil.relativedelta import relativedelta
from sqlalchemy import func, select

from core import clock
from core.dates import utcnow
from core.extensions import db
from core.validators import personal_id_check_digit
from models.addiction.case import Case, CaseStatus, IdKind, Patient
from models.addiction.course import Course, CourseStatus, CourseTransition
from models.addiction.designation import Designation, DesignationKind
from models.addiction.instrument import AssessmentResponse, Instrument
from models.addiction.record import LabResult, TreatmentKind, TreatmentRecord
from models.addiction.staff import StaffLicence, StaffProfession, Training, TrainingCategory
from models.registry.institution import Institution
from models.registry.practitioner import Practitioner, Profession, ServiceAssignment
from models.registry.reference import County, InstitutionLevel

#: Cases and treatment records at scale 1 (the issue's ~15,000 and ~600,000). On SQLite the
#: addiction demo is seeded while a second process plans the cessation visits (seed/demo.py),
#: so its ~15 s are hidden behind theirs.
CASES = 15_000
RECORDS = 600_000
#: Share of patients with a second case at another institution (same person, A1 scope).
SECOND_CASE = 0.05
HOSPITAL_LEVELS = ("medical_center", "regional_hospital", "district_hospital")

#: The registry profession of a practitioner -> the licence they hold in the programme.
STAFF_OF = {
    Profession.PHYSICIAN.value: StaffProfession.PHYSICIAN.value,
    Profession.NURSE.value: StaffProfession.NURSE.value,
    Profession.PSYCHOLOGIST.value: StaffProfession.PSYCHOLOGIST.value,
    Profession.SOCIAL_WORKER.value: StaffProfession.SOCIAL_WORKER.value,
    # The registry has no occupational therapists: they are its "other" practitioners.
    Profession.OTHER.value: StaffProfession.OCCUPATIONAL_THERAPIST.value,
}
LICENCE_PREFIX = {
    StaffProfession.PHYSICIAN.value: "醫字第",
    StaffProfession.PSYCHOLOGIST.value: "心理師字第",
    StaffProfession.SOCIAL_WORKER.value: "社工師字第",
    StaffProfession.NURSE.value: "護字第",
    StaffProfession.OCCUPATIONAL_THERAPIST.value: "職治字第",
    StaffProfession.CASE_MANAGER.value: "個管證字第",
}
#: Each kind of record, the profession that signs it in the demo, its weight, its minutes.
KINDS = [
    (TreatmentKind.OUTPATIENT, StaffProfession.PHYSICIAN, 30, (10, 15, 20)),
    (TreatmentKind.INDIVIDUAL_PSYCHOTHERAPY, StaffProfession.PSYCHOLOGIST, 12, (50, 60)),
    (TreatmentKind.GROUP_PSYCHOTHERAPY, StaffProfession.PSYCHOLOGIST, 6, (90, 120)),
    (TreatmentKind.FAMILY_THERAPY, StaffProfession.SOCIAL_WORKER, 3, (60, 90)),
    (TreatmentKind.SOCIAL_WORK, StaffProfession.SOCIAL_WORKER, 10, (30, 45, 60)),
    (TreatmentKind.NURSING_EDUCATION, StaffProfession.NURSE, 12, (15, 20, 30)),
    (TreatmentKind.OCCUPATIONAL_THERAPY, StaffProfession.OCCUPATIONAL_THERAPIST, 4, (50, 60)),
    (TreatmentKind.CASE_MANAGEMENT, StaffProfession.CASE_MANAGER, 15, (15, 30)),
    (TreatmentKind.LAB_TEST, StaffProfession.PHYSICIAN, 8, (10,)),
]
NOTES = {
    TreatmentKind.OUTPATIENT: ["門診評估，續開藥物", "戒斷症狀穩定", "調整美沙冬劑量", "追蹤睡眠與情緒"],
    TreatmentKind.INDIVIDUAL_PSYCHOTHERAPY: ["動機式晤談", "復發預防練習", "情緒調節訓練"],
    TreatmentKind.GROUP_PSYCHOTHERAPY: ["團體分享渴求經驗", "拒絕技巧演練"],
    TreatmentKind.FAMILY_THERAPY: ["家庭溝通會談", "家屬支持衛教"],
    TreatmentKind.SOCIAL_WORK: ["就業資源轉介", "經濟補助評估", "家訪"],
    TreatmentKind.NURSING_EDUCATION: ["用藥衛教", "愛滋及肝炎防治衛教", "健康生活衛教"],
    TreatmentKind.OCCUPATIONAL_THERAPY: ["生活功能訓練", "職能評估"],
    TreatmentKind.CASE_MANAGEMENT: ["電話關懷", "療程進度追蹤", "協調就醫時間"],
    TreatmentKind.LAB_TEST: ["尿液毒物檢驗", "酒精呼氣檢測"],
}  # fmt: skip
SUBSTANCES = {
    "drug": ["海洛因", "安非他命", "愷他命", "大麻", "MDMA"],
    "alcohol": ["酒精"],
}
LAB_SUBSTANCES = {"drug": ["嗎啡", "安非他命", "愷他命", "大麻"], "alcohol": ["酒精"]}
REFERRALS = [("self", 30), ("deferred_prosecution", 40), ("domestic_violence", 8),
             ("drunk_driving", 15), ("other", 7)]  # fmt: skip
ELIGIBILITY = [("general", 70), ("low_income", 15), ("minor", 3), ("law_mandated_self_pay", 12)]
INTERRUPT_REASONS = ["失聯", "入監服刑", "個案拒絕繼續治療", "轉至他院", "搬遷"]
CLOSE_REASONS = ["療程完成", "個案失聯", "緩起訴期滿"]
SURNAMES = "陳林黃張李王吳劉蔡楊許鄭謝郭洪曾邱廖賴周徐蘇葉莊呂江何蕭羅高潘簡朱鍾游彭詹胡施沈余盧梁趙顏柯翁魏孫戴"
GIVEN = "志明俊傑家豪建宏冠宇承翰怡君雅婷淑芬美玲佳穎欣怡宗翰柏翰詩涵品妤思妤宜蓁子晴育誠文彥心怡惠雯國華政達"
FIRST_START, LAST_START = dt.date(2024, 1, 1), dt.date(2025, 12, 31)
CHUNK = 50_000
#: Trainings (A14): the yearly addiction-training courses staff attend. About one in five
#: staff falls short of their hours this year and a few licences end within 60 days, so the
#: reminder list shows a realistic few, not everyone.
TRAININGS = [("藥癮治療實務工作坊", "臺灣成癮科學學會"), ("酒癮治療與個案管理訓練", "衛生福利部心理健康司"),
             ("成癮者家庭支持與團體治療", "臺灣心理治療學會"), ("物質使用障礙診療指引研習", "臺灣精神醫學會"),
             ("緩起訴附命戒癮治療實務", "法務部")]  # fmt: skip
SHORT_OF_HOURS = 0.2
LICENCE_ENDING = 0.03


def seed_addiction_demo(seed: int, scale: float) -> dict[str, int]:
    """Insert the addiction demo once (in the session's transaction); returns its counts."""
    if db.session.scalar(select(Patient.id).limit(1)) is None:
        _Demo(db.session.connection(), random.Random(seed * 104_729 + 14), scale).run()
    return {
        "designations": _count(Designation),
        "staff licences": _count(StaffLicence),
        "patients": _count(Patient),
        "cases": _count(Case),
        "courses": _count(Course),
        "treatment records": _count(TreatmentRecord),
        "lab results": _count(LabResult),
        "assessments": _count(AssessmentResponse),
    }


def _count(model) -> int:
    return db.session.scalar(select(func.count()).select_from(model))


class _Writer:
    """Values in the form the connection's driver takes, and chunked executemany."""

    def __init__(self, connection):
        self.connection = connection
        self.raw = connection.dialect.name == "sqlite"
        self._days: dict[int, object] = {}
        self.now = self.datetime(utcnow())

    def day(self, ordinal: int):
        """A date from its ordinal (SQLite: its ISO text, as SQLAlchemy stores it)."""
        value = self._days.get(ordinal)
        if value is None:
            value = dt.date.fromordinal(ordinal)
            self._days[ordinal] = value = value.isoformat() if self.raw else value
        return value

    def days(self, first: dt.date, last: dt.date) -> dict[int, object]:
        """day() of every ordinal from `first` to `last`, for the hot loops."""
        return {n: self.day(n) for n in range(first.toordinal(), last.toordinal() + 1)}

    def datetime(self, value: dt.datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S.%f") if self.raw else value

    def json(self, value: dict):
        return json.dumps(value, ensure_ascii=False) if self.raw else value

    def drop_indexes(self, table) -> None:
        """On SQLite, drop the (empty) table's indexes: building them once after the load
        costs less than updating them row by row (600,000 records: 4.5 s CPU, not 6.4 s)."""
        if self.raw:
            for index in table.indexes:
                index.drop(self.connection)

    def rebuild_indexes(self, table) -> None:
        """Create again what drop_indexes dropped (same names and columns, from the model)."""
        if self.raw:
            for index in sorted(table.indexes, key=lambda i: i.name):
                index.create(self.connection)

    def insert(self, table, columns: list[str], rows: list[tuple]) -> None:
        """INSERT the rows (tuples in `columns` order) in chunks."""
        if self.raw:
            self.connection.exec_driver_sql("PRAGMA cache_size=-262144")
            sql = f"INSERT INTO {table.name} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"
            cursor = self.connection.connection.cursor()
            try:
                for start in range(0, len(rows), CHUNK):
                    cursor.executemany(sql, rows[start : start + CHUNK])
            finally:
                cursor.close()
            return
        for start in range(0, len(rows), CHUNK):
            self.connection.execute(
                table.insert(),
                [dict(zip(columns, row, strict=True)) for row in rows[start : start + CHUNK]],
            )


class _Demo:
    """Plans and writes the addiction demo over the demo registry."""

    def __init__(self, connection, rng: random.Random, scale: float):
        self.c, self.rng, self.scale = connection, rng, scale
        self.w = _Writer(connection)
        self.today = clock.today()

    def run(self) -> None:
        self.designate()
        self.license_staff()
        self.patients_and_cases()
        self.courses()
        self.records()
        # Drawn last, so adding them left every case and record as it was.
        self.trainings()
        self.assessments()

    # -- A1: designations ------------------------------------------------------------
    def designate(self) -> None:
        rng, c = self.rng, self.c
        rows = c.execute(
            select(Institution.id, Institution.county_id, InstitutionLevel.code)
            .outerjoin(InstitutionLevel, InstitutionLevel.id == Institution.level_id)
            .order_by(Institution.id)
        ).all()
        self.county_of = {i: county for i, county, _ in rows}
        existing: dict[int, set[str]] = {}
        for institution_id, kind in c.execute(select(Designation.institution_id, Designation.kind)):
            existing.setdefault(institution_id, set()).add(kind)
        wanted: dict[int, set[str]] = {}
        for institution_id, _, level in rows:
            if level not in HOSPITAL_LEVELS:
                continue
            kinds = set()
            if level != "district_hospital" or rng.random() < 0.55:
                kinds.add(DesignationKind.DRUG_TREATMENT.value)
            if rng.random() < 0.5:
                kinds.add(DesignationKind.ALCOHOL_TREATMENT.value)
            if kinds:
                wanted[institution_id] = kinds
        # Every county has a designated institution: its health station if no hospital is.
        covered = {self.county_of[i] for i in [*wanted, *existing]}
        for institution_id, county, level in rows:
            if level == "health_station" and county not in covered:
                wanted[institution_id] = {DesignationKind.ALCOHOL_TREATMENT.value}
                covered.add(county)
        counties = dict(c.execute(select(County.id, County.name)).all())
        designations = []
        for number, (institution_id, kinds) in enumerate(sorted(wanted.items()), start=1):
            for kind in sorted(kinds - existing.get(institution_id, set())):
                start = FIRST_START - dt.timedelta(days=rng.randrange(365, 12 * 365))
                by_county = kind == DesignationKind.ALCOHOL_TREATMENT.value
                county = self.county_of[institution_id] if by_county else None
                issuer = f"{counties[county][:2]}衛字第" if by_county else "衛部心字第"
                document = f"{issuer}{start.year - 1911}{number:07d}號"
                designations.append((institution_id, kind, county, document, self.w.day(start.toordinal()),
                                     None, self.w.now, self.w.now))  # fmt: skip
        self.w.insert(Designation.__table__, ["institution_id", "kind", "county_id", "document_number",
                                              "start_date", "end_date", "created_on", "changed_on"],
                      designations)  # fmt: skip
        self.kinds_of: dict[int, set[str]] = {}
        for institution_id, kind in c.execute(
            select(Designation.institution_id, Designation.kind).order_by(Designation.id)
        ):
            self.kinds_of.setdefault(institution_id, set()).add(kind)
        self.designated = sorted(self.kinds_of)

    # -- A14: staff and their licences -------------------------------------------------
    def license_staff(self) -> None:
        rng = self.rng
        #: (institution, staff profession) -> [(practitioner, first day they may sign)]
        self.staff: dict[tuple[int, str], list[tuple[int, int]]] = {}
        self.names: dict[int, str] = {}
        licences: dict[tuple[int, str], int] = {}  # (practitioner, profession) -> valid from
        rows = self.c.execute(
            select(ServiceAssignment.practitioner_id, ServiceAssignment.institution_id,
                   ServiceAssignment.start_date, Practitioner.profession, Practitioner.name)
            .join(Practitioner, Practitioner.id == ServiceAssignment.practitioner_id)
            .where(ServiceAssignment.institution_id.in_(self.designated),
                   ServiceAssignment.end_date.is_(None))
            .order_by(ServiceAssignment.id)
        ).all()  # fmt: skip
        for practitioner_id, institution_id, served_from, registry_profession, name in rows:
            profession = STAFF_OF.get(registry_profession)
            if profession is None:
                continue
            self.names[practitioner_id] = name
            professions = [profession]
            if profession in (
                StaffProfession.NURSE.value,
                StaffProfession.SOCIAL_WORKER.value,
            ) and (
                rng.random() < 0.35
                or not self.staff.get((institution_id, StaffProfession.CASE_MANAGER.value))
            ):
                professions.append(StaffProfession.CASE_MANAGER.value)
            for held in professions:
                key = (practitioner_id, held)
                if key not in licences:
                    # Professional licences date from before 2024; some case-manager
                    # certificates were earned during it, and sign only from then on.
                    if held == StaffProfession.CASE_MANAGER.value and rng.random() < 0.2:
                        licences[key] = FIRST_START.toordinal() + rng.randrange(300)
                    else:
                        licences[key] = dt.date(
                            rng.randrange(1995, 2024), rng.randrange(1, 13), 1
                        ).toordinal()
                signs_from = max(licences[key], served_from.toordinal())
                self.staff.setdefault((institution_id, held), []).append(
                    (practitioner_id, signs_from)
                )
        licence_rows = [
            (practitioner_id, profession, f"{LICENCE_PREFIX[profession]}{number:06d}號",
             self.w.day(start), None, self.w.now, self.w.now)
            for number, ((practitioner_id, profession), start) in enumerate(licences.items(), start=1)
        ]  # fmt: skip
        self.w.insert(StaffLicence.__table__, ["practitioner_id", "profession", "licence_number",
                                               "start_date", "end_date", "created_on", "changed_on"],
                      licence_rows)  # fmt: skip
        # Only institutions with a physician treat cases (every course has outpatient visits).
        physician = StaffProfession.PHYSICIAN.value
        self.treating = [i for i in self.designated if self.staff.get((i, physician))]

    # -- A14: trainings and licences ending soon ------------------------------------------------
    def trainings(self) -> None:
        rng, w, today = self.rng, self.w, self.today
        from flask import current_app

        required = current_app.config["ADDICTION_TRAINING_HOURS"]
        staff: dict[int, set[str]] = {}
        for (_, profession), people in sorted(self.staff.items()):
            for practitioner_id, _ in people:
                staff.setdefault(practitioner_id, set()).add(profession)
        rows = []
        for practitioner_id, professions in sorted(staff.items()):
            needed = max(required.get(p, 0) for p in professions)
            for year in (today.year - 1, today.year):
                short = year == today.year and rng.random() < SHORT_OF_HOURS
                goal = (
                    rng.randrange(0, max(1, int(needed))) if short else needed + rng.randrange(0, 5)
                )
                last = today if year == today.year else dt.date(year, 12, 31)
                first = dt.date(year, 1, 1).toordinal()
                while goal > 0:
                    hours = min(goal, rng.choice((2, 3, 3, 4, 6)))
                    course, organiser = rng.choice(TRAININGS)
                    day = dt.date.fromordinal(
                        first + rng.randrange(max(1, last.toordinal() - first + 1))
                    )
                    rows.append((practitioner_id, course, organiser, w.day(day.toordinal()), hours,
                                 TrainingCategory.ADDICTION.value, w.now, w.now))  # fmt: skip
                    goal -= hours
                if rng.random() < 0.3:  # other categories, which the yearly hours do not count
                    rows.append((practitioner_id, "醫療倫理與法規", "臺灣醫學會", w.day(first + rng.randrange(180)),
                                 2, TrainingCategory.LAW_ETHICS.value, w.now, w.now))  # fmt: skip
        w.insert(Training.__table__, ["practitioner_id", "course_name", "organiser", "held_on", "hours",
                                      "category", "created_on", "changed_on"], rows)  # fmt: skip
        licence = StaffLicence.__table__
        ids = self.c.execute(select(licence.c.id).order_by(licence.c.id)).scalars().all()
        for licence_id in rng.sample(ids, max(1, round(len(ids) * LICENCE_ENDING))) if ids else ():
            ends = today + dt.timedelta(days=rng.randrange(5, 90))
            self.c.execute(licence.update().where(licence.c.id == licence_id).values(end_date=ends))

    # -- patients and cases --------------------------------------------------------------
    def patients_and_cases(self) -> None:
        rng, w = self.rng, self.w
        cases = max(len(self.treating), round(CASES * self.scale))
        patients = max(1, round(cases / (1 + SECOND_CASE)))
        weights = [sum(len(v) for k, v in self.staff.items() if k[0] == i) for i in self.treating]
        used: set[str] = set()
        patient_rows = []
        for _ in range(patients):
            while True:
                prefix = (
                    rng.choice("ABCDEFGHJKLMNPQRSTUVXYWZ")
                    + rng.choice("1112")
                    + f"{rng.randrange(10**7):07d}"
                )
                national_id = prefix + personal_id_check_digit(prefix)
                if national_id not in used:
                    used.add(national_id)
                    break
            name = rng.choice(SURNAMES) + rng.choice(GIVEN[::2]) + rng.choice(GIVEN[1::2])
            birth = dt.date(rng.randrange(1955, 2008), rng.randrange(1, 13), rng.randrange(1, 29))
            patient_rows.append((IdKind.NATIONAL_ID.value, national_id, name, "M" if national_id[1] == "1" else "F",
                                 w.day(birth.toordinal()), "verified", w.now, w.now))  # fmt: skip
        w.insert(Patient.__table__, ["id_kind", "national_id", "name", "sex", "birth_date", "identity_status",
                                     "created_on", "changed_on"], patient_rows)  # fmt: skip
        ids = dict(self.c.execute(select(Patient.national_id, Patient.id)).all())
        patient_ids = [ids[row[1]] for row in patient_rows]
        # Every treating institution has a case; the rest by staff size.
        places = list(self.treating) + rng.choices(
            self.treating, weights, k=cases - len(self.treating)
        )
        owners = list(patient_ids) + rng.sample(
            patient_ids, min(len(patient_ids), cases - len(patient_ids))
        )
        rng.shuffle(owners)
        self.cases: list[dict] = []
        seen: set[tuple[int, int]] = set()
        for patient_id, institution_id in zip(owners, places, strict=True):
            if (patient_id, institution_id) in seen:  # a second case is at another institution
                continue
            seen.add((patient_id, institution_id))
            kinds = self.kinds_of[institution_id]
            if kinds == {DesignationKind.ALCOHOL_TREATMENT.value}:
                category = "alcohol"
            elif DesignationKind.ALCOHOL_TREATMENT.value in kinds:
                category = rng.choices(("drug", "alcohol", "both"), (6, 3, 1))[0]
            else:
                category = "drug"
            opened = FIRST_START.toordinal() + rng.randrange((LAST_START - FIRST_START).days - 30)
            opened = min(opened, self.today.toordinal())
            self.cases.append({"patient_id": patient_id, "institution_id": institution_id,
                               "opened": opened, "category": category})  # fmt: skip

    # -- A2: courses and their history ---------------------------------------------------
    def courses(self) -> None:
        rng, w, today = self.rng, self.w, self.today.toordinal()
        self.course_plans: list[dict] = []
        active = CourseStatus.ACTIVE.value
        neighbours: dict[int, list[int]] = {}
        for institution_id in self.treating:
            neighbours.setdefault(self.county_of[institution_id], []).append(institution_id)
        for case in self.cases:
            start = min(case["opened"] + rng.randrange(15), today)
            plans = []
            while not plans or (start <= min(LAST_START.toordinal(), today) and len(plans) < 3):
                end = (dt.date.fromordinal(start) + relativedelta(years=1)).toordinal()
                plan = {"case": case, "start": start, "end": end, "status": CourseStatus.ACTIVE.value,
                        "stopped": None, "reason": None}  # fmt: skip
                if rng.random() < 0.15:
                    stopped = start + rng.randrange(30, 300)
                    if stopped <= today:
                        plan.update(status=CourseStatus.INTERRUPTED.value, stopped=stopped,
                                    reason=rng.choice(INTERRUPT_REASONS))  # fmt: skip
                elif end < today:
                    plan.update(status=CourseStatus.COMPLETED.value, stopped=end)
                plan["last"] = min(plan["stopped"] or end, end, today)
                plans.append(plan)
                if plan["status"] == active or rng.random() < 0.7:
                    break
                start = plan["last"] + rng.randrange(7, 60)
            case["courses"] = plans
            last = plans[-1]
            case["status"], case["closed"], case["reason"], case["referred"] = (
                CaseStatus.OPEN.value,
                None,
                None,
                None,
            )
            if last["status"] != active and rng.random() < 0.5:
                same_county = [i for i in neighbours[self.county_of[case["institution_id"]]]
                               if i != case["institution_id"]]  # fmt: skip
                case["closed"] = last["last"]
                if same_county and rng.random() < 0.1:
                    case["status"], case["referred"] = (
                        CaseStatus.REFERRED.value,
                        rng.choice(same_county),
                    )
                    case["reason"] = "轉介他院治療"
                else:
                    case["status"], case["reason"] = (
                        CaseStatus.CLOSED.value,
                        rng.choice(CLOSE_REASONS),
                    )
            self.course_plans += plans
        substances = {**SUBSTANCES, "both": SUBSTANCES["drug"] + SUBSTANCES["alcohol"]}
        case_rows = []
        for case in self.cases:
            picked = "、".join(
                sorted(set(rng.choices(substances[case["category"]], k=rng.choice((1, 1, 2)))))
            )
            case_rows.append((case["patient_id"], case["institution_id"], w.day(case["opened"]), case["category"],
                              picked, rng.choices(*zip(*REFERRALS, strict=True))[0],
                              rng.choices(*zip(*ELIGIBILITY, strict=True))[0], case["status"],
                              w.day(case["closed"]) if case["closed"] else None, case["reason"],
                              case["referred"], w.now, w.now))  # fmt: skip
        w.insert(Case.__table__, ["patient_id", "institution_id", "opened_on", "substance_category", "substances",
                                  "referral_source", "eligibility", "status", "closed_on", "close_reason",
                                  "referred_to_id", "created_on", "changed_on"], case_rows)  # fmt: skip
        ids = {(p, i): case_id for case_id, p, i in self.c.execute(
            select(Case.id, Case.patient_id, Case.institution_id))}  # fmt: skip
        for case in self.cases:
            case["id"] = ids[(case["patient_id"], case["institution_id"])]
        w.insert(Course.__table__, ["case_id", "institution_id", "start_date", "end_date", "status",
                                    "interrupt_reason", "created_on", "changed_on"],
                 [(p["case"]["id"], p["case"]["institution_id"], w.day(p["start"]), w.day(p["end"]), p["status"],
                   p["reason"], w.now, w.now) for p in self.course_plans])  # fmt: skip
        ids = {(case_id, start): course_id for course_id, case_id, start in self.c.execute(
            select(Course.id, Course.case_id, Course.start_date))}  # fmt: skip
        transitions = []
        for plan in self.course_plans:
            plan["id"] = ids[(plan["case"]["id"], dt.date.fromordinal(plan["start"]))]
            staff = self.staff[(plan["case"]["institution_id"], StaffProfession.PHYSICIAN.value)]
            who = self.names[staff[0][0]]
            at = dt.datetime.combine(
                dt.date.fromordinal(plan["start"]), dt.time(1, 30)
            )  # 09:30 Taipei
            transitions.append(
                (plan["id"], None, CourseStatus.ACTIVE.value, w.datetime(at), who, "開案收治")
            )
            if plan["stopped"]:
                at = dt.datetime.combine(dt.date.fromordinal(plan["stopped"]), dt.time(8))
                transitions.append((plan["id"], CourseStatus.ACTIVE.value, plan["status"], w.datetime(at), who,
                                    plan["reason"] or "療程期滿"))  # fmt: skip
        w.insert(CourseTransition.__table__, ["course_id", "from_status", "to_status", "at", "username", "note"],
                 transitions)  # fmt: skip

    # -- A5: treatment records and lab results -----------------------------------------
    # -- A3: assessments -----------------------------------------------------------------
    def assessments(self) -> None:
        """A3: every course its initial assessment in its first two weeks; a follow-up, three
        months or more after the start, for every completed course and most others once due; a
        BSRS-5 for some. Every answer set is scored by the engine, as a save would."""
        from domain.addiction.assessments import ensure_builtins, published_version
        from domain.addiction.scoring import score_response

        ensure_builtins()
        rng, w = self.rng, self.w
        by_code = {i.code: i for i in db.session.scalars(select(Instrument).where(Instrument.institution_id.is_(None)))}
        versions = {code: published_version(i) for code, i in by_code.items()}
        rows = []
        professions = [StaffProfession.PHYSICIAN.value, StaffProfession.PSYCHOLOGIST.value,
                       StaffProfession.CASE_MANAGER.value, StaffProfession.SOCIAL_WORKER.value]  # fmt: skip

        def add(code: str, plan: dict, day: int) -> None:
            institution_id = plan["case"]["institution_id"]
            signers = [s for p in professions for s in self.staff.get((institution_id, p), ()) if s[1] <= day]
            if not signers:
                return
            version = versions[code]
            answers, scored = score_response(version.definition, random_answers(version.definition, rng))
            first = next(iter(scored.scores), None)
            rows.append((version.id, version.instrument_id, plan["id"], plan["case"]["id"], institution_id, w.day(day),
                         rng.choice(signers)[0], w.json(answers), w.json(scored.as_json()), scored.spec,
                         scored.scores.get(first) if first else None, scored.bands.get(first) if first else None,
                         w.now, w.now))  # fmt: skip

        for plan in self.course_plans:
            start, last = plan["start"], plan["last"]
            add("INITIAL", plan, min(start + rng.randrange(14), last))
            due = (dt.date.fromordinal(start) + relativedelta(months=3)).toordinal()
            done = plan["status"] == CourseStatus.COMPLETED.value or rng.random() < FOLLOW_UP_DONE
            if due <= last and done:
                add("FOLLOW_UP", plan, min(due + rng.randrange(21), last))
            if rng.random() < WITH_BSRS5:
                add("BSRS5", plan, start + rng.randrange(last - start + 1))
        w.insert(AssessmentResponse.__table__, ["version_id", "instrument_id", "course_id", "case_id", "institution_id",
                                                "answered_on", "author_id", "answers", "result", "spec", "total",
                                                "band", "created_on", "changed_on"], rows)  # fmt: skip

    def records(self) -> None:
        rng, w = self.rng, self.w
        total = round(RECORDS * self.scale)
        plans = self.course_plans
        # About 1% of courses are intensive (200+ records: the course page's big case).
        heavy = set(rng.sample(range(len(plans)), max(1, len(plans) // 100)))
        counts = [0] * len(plans)
        for n in heavy:
            counts[n] = 200 + rng.randrange(60)
        rest = [n for n in range(len(plans)) if n not in heavy]
        weights = [
            (plans[n]["last"] - plans[n]["start"] + 1) * (rng.random() ** 2 + 0.1) for n in rest
        ]
        left = max(len(rest), total - sum(counts))
        scale = left / (sum(weights) or 1)
        for n, weight in zip(rest, weights, strict=True):
            counts[n] = max(1, int(weight * scale))
        for n in (
            rng.choices(rest, weights, k=max(0, left - sum(counts[n] for n in rest)))
            if rest
            else []
        ):
            counts[n] += 1
        columns = ["course_id", "case_id", "institution_id", "executed_on", "author_id", "profession", "kind",
                   "minutes", "content", "created_on", "changed_on"]  # fmt: skip
        kind_values = [(k.value, p.value, weight, minutes, [w.json({"note": note}) for note in NOTES[k]])
                       for k, p, weight, minutes in KINDS]  # fmt: skip
        #: institution -> the kinds its staff can sign (with their signers), their weights,
        #: and the first day on which every one of those signers may sign.
        options: dict[int, tuple] = {}
        w.drop_indexes(TreatmentRecord.__table__)
        rows: list[tuple] = []
        labs: list[tuple[str, int]] = []  # per lab-test record, in insertion order
        now, lab_test, days = w.now, TreatmentKind.LAB_TEST.value, w.days(FIRST_START, self.today)
        random_ = rng.random
        for plan, count in zip(plans, counts, strict=True):
            institution_id = plan["case"]["institution_id"]
            if institution_id not in options:
                usable = [(kind, profession, self.staff[(institution_id, profession)], minutes, notes, weight)
                          for kind, profession, weight, minutes, notes in kind_values
                          if self.staff.get((institution_id, profession))]  # fmt: skip
                everyone_from = max(since for k in usable for _, since in k[2])
                options[institution_id] = (usable, [k[5] for k in usable], everyone_from)
            usable, weights, everyone_from = options[institution_id]
            start, span = plan["start"], plan["last"] - plan["start"] + 1
            if everyone_from > start:
                # Someone may sign only from a day inside the course (a new certificate):
                # the course's records are by those who may sign from its first day.
                usable = [(kind, profession, able, minutes, notes, weight)
                          for kind, profession, signers, minutes, notes, weight in usable
                          if (able := [s for s in signers if s[1] <= start])]  # fmt: skip
                weights = [k[5] for k in usable]
            course_id, case_id = plan["id"], plan["case"]["id"]
            picks = rng.choices(usable, weights, k=count)
            dates = sorted([start + int(random_() * span) for _ in range(count)])
            rows += [
                (course_id, case_id, institution_id, days[day], signers[int(random_() * len(signers))][0],
                 profession, kind, minutes[int(random_() * len(minutes))],
                 notes[int(random_() * len(notes))], now, now)
                for day, (kind, profession, signers, minutes, notes, _) in zip(dates, picks, strict=True)
            ]  # fmt: skip
            category = "alcohol" if plan["case"]["category"] == "alcohol" else "drug"
            labs += [
                (category, day) for day, k in zip(dates, picks, strict=True) if k[0] == lab_test
            ]
            if len(rows) >= CHUNK:
                w.insert(TreatmentRecord.__table__, columns, rows)
                rows = []
        w.insert(TreatmentRecord.__table__, columns, rows)
        w.rebuild_indexes(TreatmentRecord.__table__)
        lab_ids = self.c.execute(
            select(TreatmentRecord.id).where(TreatmentRecord.kind == TreatmentKind.LAB_TEST.value)
            .order_by(TreatmentRecord.id)
        ).scalars().all()  # fmt: skip
        results = []
        for record_id, (category, day) in zip(lab_ids, labs, strict=True):
            tested = LAB_SUBSTANCES[category]
            for substance in rng.sample(tested, 2 if len(tested) > 1 and rng.random() < 0.3 else 1):
                outcome = rng.choices(("negative", "positive", "inconclusive"), (80, 17, 3))[0]
                value = f"{rng.randrange(5, 40) / 100:.2f} mg/L" if category == "alcohol" else None
                results.append((record_id, substance, w.day(day), outcome, value, now))
        w.insert(LabResult.__table__, ["record_id", "substance", "sampled_on", "outcome", "value", "recorded_at"],
                 results)  # fmt: skip


#: Share of courses in progress whose due follow-up was done (the rest show as overdue, A3).
FOLLOW_UP_DONE = 0.85
#: Share of courses with a BSRS-5 besides the required assessments.
WITH_BSRS5 = 0.3


def random_answers(definition: dict, rng: random.Random) -> dict:
    """Answers a clinician might give: each shown item in order (branching honoured), an
    option, a number in range, or a short text where one is required."""
    from domain.addiction.scoring import NO_ANSWER, enabled, options_of

    answers: dict = {}
    visible: set[str] = set()
    for item in definition["items"]:
        if not enabled(item, answers, visible):
            continue
        visible.add(item["linkId"])
        if item["type"] in NO_ANSWER:
            continue
        if not item.get("required") and rng.random() < 0.3:
            continue
        kind, options = item["type"], options_of(definition, item)
        if kind == "multi":
            picks = [o["code"] for o in options if o["code"] not in ("none", "other")]
            answers[item["linkId"]] = sorted(rng.sample(picks, rng.choice((1, 1, 2))))
        elif options:
            # Low answers are the common ones on symptom scales.
            weights = [3 if n == 0 else 2 if n == 1 else 1 for n in range(len(options))]
            answers[item["linkId"]] = rng.choices(options, weights)[0]["code"]
        elif kind in ("integer", "decimal"):
            answers[item["linkId"]] = rng.randint(int(item.get("min", 0)), int(item.get("max", 30)))
        elif kind in ("string", "text"):
            answers[item["linkId"]] = rng.choice(("持續門診追蹤", "家屬陪同就診", "個案配合度佳"))
    return answers
