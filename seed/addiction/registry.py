"""The addiction programme's named demo institutions, their designations and the staff of the
demo users (A1, A14), built deterministically and idempotently (a re-seed changes nothing).

- a 臺北市 指定藥癮戒治機構 (the first 區域醫院 of 臺北市 by code, so it also holds the cessation
  programme's contract: one institution in both programmes), also the county's 酒癮治療服務執行機構;
- a 高雄市 指定藥癮戒治機構 (the first 區域醫院 of 高雄市 by code);
- a 臺北市 心理治療所 and a 臺北市 社工師事務所, without NHI codes (the system gives them registry codes).

seed/demo.py calls `seed_addiction_registry()` before it creates the demo users; the bulk
addiction demo data (seed/addiction/demo.py) runs after it and can build on
`demo_addiction_institution(key)`.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from core.extensions import db
from core.validators import personal_id_check_digit
from models.addiction.designation import Designation, DesignationKind
from models.addiction.staff import StaffLicence, StaffProfession
from models.registry.institution import Institution, InstitutionKind
from models.registry.practitioner import Practitioner, Profession, ServiceAssignment
from models.registry.reference import County, InstitutionLevel

#: Licences are valid since 2020; the demo staff serve from 2025 on, after the reference year
#: of the cessation bulletin (their assignments must not change its table 2).
SINCE = dt.date(2020, 1, 1)
SERVING_SINCE = dt.date(2025, 1, 1)

#: key -> (county code, institution kind, name, address, phone) of the non-hospital institutions.
NON_HOSPITAL = {
    "clinic_tpe": ("TPE", InstitutionKind.PSYCHOTHERAPY_CLINIC, "心晴心理治療所",
                   "臺北市大安區復興南路一段100號", "(02)2700-1234"),
    "office_tpe": ("TPE", InstitutionKind.SOCIAL_WORK_OFFICE, "安心社會工作師事務所",
                   "臺北市中山區民生東路二段50號", "(02)2500-5678"),
}  # fmt: skip
#: key -> designations (kind, document number); alcohol ones are the county bureau's.
DESIGNATIONS = {
    "hospital_tpe": [(DesignationKind.DRUG_TREATMENT, "衛部心字第1130000001號"),
                     (DesignationKind.ALCOHOL_TREATMENT, "北市衛心字第1130000002號")],
    "hospital_khh": [(DesignationKind.DRUG_TREATMENT, "衛部心字第1130000003號")],
    "clinic_tpe": [(DesignationKind.PSYCHOTHERAPY_CLINIC, "衛部心字第1130000004號")],
    "office_tpe": [(DesignationKind.SOCIAL_WORK_OFFICE, "衛部心字第1130000005號")],
}  # fmt: skip
#: username -> (institution key, national-ID prefix, name, staff profession, registry profession).
DEMO_STAFF = {
    "dr_tpe": ("hospital_tpe", "A12345670", "林醫師", StaffProfession.PHYSICIAN, Profession.PHYSICIAN),
    "psy_tpe": ("hospital_tpe", "A22345671", "陳心理師", StaffProfession.PSYCHOLOGIST, Profession.PSYCHOLOGIST),
    "rn_tpe": ("hospital_tpe", "A22345675", "李護理師", StaffProfession.NURSE, Profession.NURSE),
    "cm_khh": ("hospital_khh", "E22345672", "黃個管師", StaffProfession.CASE_MANAGER, Profession.OTHER),
    "psy_clinic": ("clinic_tpe", "A12345673", "張心理師", StaffProfession.PSYCHOLOGIST, Profession.PSYCHOLOGIST),
    "sw_office": ("office_tpe", "A22345674", "吳社工師", StaffProfession.SOCIAL_WORKER, Profession.SOCIAL_WORKER),
}  # fmt: skip


def demo_addiction_institution(key: str) -> Institution:
    """One of the named demo institutions (hospital_tpe, hospital_khh, clinic_tpe, office_tpe)."""
    if key.startswith("hospital_"):
        county_code = key.split("_")[1].upper()
        return db.session.scalar(
            select(Institution)
            .join(County, County.id == Institution.county_id)
            .join(InstitutionLevel, InstitutionLevel.id == Institution.level_id)
            .where(County.code == county_code, InstitutionLevel.code == "regional_hospital")
            .order_by(Institution.nhi_code)
            .limit(1)
        ) or db.session.scalar(
            select(Institution)
            .join(County, County.id == Institution.county_id)
            .join(InstitutionLevel, InstitutionLevel.id == Institution.level_id)
            .where(County.code == county_code, InstitutionLevel.code != "district_hospital")
            .order_by(Institution.nhi_code)
            .limit(1)
        )
    county_code, kind, name, _, _ = NON_HOSPITAL[key]
    return db.session.scalar(
        select(Institution).where(Institution.kind == kind.value, Institution.name == name)
    )


def seed_addiction_registry() -> dict[str, int]:
    """Create what is missing of the named institutions, designations and demo staff."""
    counties = {c.code: c for c in db.session.scalars(select(County))}
    for key, (county_code, kind, name, address, phone) in NON_HOSPITAL.items():
        if demo_addiction_institution(key) is None:
            # No NHI code: the registry code is given on insert (models/registry/institution.py).
            db.session.add(
                Institution(kind=kind.value, name=name, county=counties[county_code],
                            address=address, phone=phone)
            )  # fmt: skip
    db.session.flush()
    designations = 0
    for key, wanted in DESIGNATIONS.items():
        institution = demo_addiction_institution(key)
        have = set(
            db.session.scalars(
                select(Designation.kind).where(Designation.institution_id == institution.id)
            )
        )
        for kind, number in wanted:
            if kind.value in have:
                continue
            alcohol = kind == DesignationKind.ALCOHOL_TREATMENT
            db.session.add(
                Designation(institution=institution, kind=kind.value, document_number=number,
                            start_date=SINCE, county=institution.county if alcohol else None)
            )  # fmt: skip
            designations += 1
    for username in DEMO_STAFF:
        demo_staff(username)
    db.session.commit()
    return {"addiction institutions": len(DESIGNATIONS), "designations added": designations}


def demo_staff(username: str) -> Practitioner:
    """The staff profile of an addiction demo user: a practitioner serving at the user's
    institution since 2025, with a licence of their profession valid today (A14)."""
    key, prefix, name, staff_profession, profession = DEMO_STAFF[username]
    national_id = prefix + personal_id_check_digit(prefix)
    institution = demo_addiction_institution(key)
    person = db.session.scalar(select(Practitioner).where(Practitioner.national_id == national_id))
    if person is None:
        person = Practitioner(
            national_id=national_id, name=name, profession=profession.value,
            licence_number=f"{staff_profession.value[:3].upper()}-{prefix[-4:]}",
        )  # fmt: skip
        db.session.add(person)
        db.session.flush()
    if not any(a.institution_id == institution.id for a in person.assignments):
        person.assignments.append(
            ServiceAssignment(institution=institution, start_date=SERVING_SINCE)
        )
    licensed = db.session.scalar(
        select(StaffLicence.id).where(
            StaffLicence.practitioner_id == person.id,
            StaffLicence.profession == staff_profession.value,
        )
    )
    if licensed is None:
        db.session.add(
            StaffLicence(practitioner=person, profession=staff_profession.value,
                         licence_number=person.licence_number, start_date=SINCE)
        )  # fmt: skip
    db.session.flush()
    return person
