"""Deterministic demo data shaped like the ROC 113 (2024) bulletin.

2,776 contracted institutions over the 22 counties and 7 levels, 11,477 practitioners
(1,442 of them serving at two institutions of different levels, so the per-level counts of
bulletin table 2 add up to 12,919), and one demo user per role.
"""

from __future__ import annotations

import datetime as dt
import random

from flask import current_app
from sqlalchemy import func, insert, select

from core.data.scope import ScopeKind
from core.extensions import db
from core.security import roles
from core.validators import personal_id_check_digit
from models.platform.user import ScopedUser, user_institution
from models.registry.institution import ContractPeriod, Institution
from models.registry.practitioner import Practitioner, Profession, ServiceAssignment
from models.registry.reference import County, InstitutionLevel
from seed.addiction.demo import seed_addiction_demo
from seed.addiction.his import seed_his_demo
from seed.addiction.registry import (
    DEMO_STAFF,
    demo_addiction_institution,
    demo_staff,
    seed_addiction_registry,
)
from seed.cessation.corrections import seed_corrections
from seed.cessation.visits import PendingVisits
from seed.documents import blank_pdf
from seed.registry.reference import COUNTIES, LEVELS, seed_reference

#: Bulletin table 1: contracted institutions at the end of ROC 113, per level.
INSTITUTIONS_PER_LEVEL = [24, 90, 200, 1375, 332, 148, 607]
#: Bulletin table 2: contracted practitioners per level (a person may count in two levels).
PRACTITIONERS_PER_LEVEL = [1848, 2296, 2031, 2635, 3194, 165, 750]
PRACTITIONERS_TOTAL = 11_477

#: Medical centres are where the big hospitals are.
MEDICAL_CENTRES = {"TPE": 8, "NWT": 2, "TAO": 2, "TXG": 4, "TNN": 2, "KHH": 4, "CHA": 1, "HUA": 1}
#: Rough population weights per county (in COUNTIES order).
COUNTY_WEIGHTS = [
    2.5, 4.0, 2.3, 2.8, 1.8, 2.7, 0.45, 0.58, 0.54, 1.25, 0.48, 0.66, 0.49, 0.8, 0.21,
    0.32, 0.11, 0.36, 0.45, 0.26, 0.14, 0.02,
]  # fmt: skip
DISTRICTS = {
    "TPE": [
        "中正區",
        "大同區",
        "中山區",
        "松山區",
        "大安區",
        "萬華區",
        "信義區",
        "士林區",
        "北投區",
        "內湖區",
        "南港區",
        "文山區",
    ],
    "NWT": [
        "板橋區",
        "三重區",
        "中和區",
        "永和區",
        "新莊區",
        "新店區",
        "土城區",
        "蘆洲區",
        "汐止區",
        "樹林區",
        "淡水區",
    ],
    "TAO": ["桃園區", "中壢區", "平鎮區", "八德區", "楊梅區", "蘆竹區", "龜山區", "龍潭區"],
    "TXG": [
        "中區",
        "東區",
        "西區",
        "南區",
        "北區",
        "西屯區",
        "南屯區",
        "北屯區",
        "豐原區",
        "大里區",
        "太平區",
    ],
    "TNN": ["中西區", "東區", "南區", "北區", "安平區", "安南區", "永康區", "新營區", "佳里區"],
    "KHH": [
        "新興區",
        "前金區",
        "苓雅區",
        "鹽埕區",
        "鼓山區",
        "前鎮區",
        "三民區",
        "左營區",
        "楠梓區",
        "鳳山區",
        "岡山區",
    ],
    "ILA": ["宜蘭市", "羅東鎮", "蘇澳鎮", "頭城鎮", "礁溪鄉"],
    "HSQ": ["竹北市", "竹東鎮", "新埔鎮", "關西鎮", "湖口鄉"],
    "MIA": ["苗栗市", "頭份市", "竹南鎮", "苑裡鎮", "通霄鎮"],
    "CHA": ["彰化市", "員林市", "和美鎮", "鹿港鎮", "溪湖鎮", "北斗鎮"],
    "NAN": ["南投市", "埔里鎮", "草屯鎮", "竹山鎮", "集集鎮"],
    "YUN": ["斗六市", "斗南鎮", "虎尾鎮", "西螺鎮", "北港鎮"],
    "CYQ": ["太保市", "朴子市", "布袋鎮", "大林鎮", "民雄鄉"],
    "PIF": ["屏東市", "潮州鎮", "東港鎮", "恆春鎮", "萬丹鄉"],
    "TTT": ["臺東市", "成功鎮", "關山鎮", "卑南鄉"],
    "HUA": ["花蓮市", "鳳林鎮", "玉里鎮", "吉安鄉", "新城鄉"],
    "PEN": ["馬公市", "湖西鄉", "白沙鄉", "西嶼鄉"],
    "KEE": ["仁愛區", "信義區", "中正區", "中山區", "安樂區", "暖暖區", "七堵區"],
    "HSZ": ["東區", "北區", "香山區"],
    "CYI": ["東區", "西區"],
    "KIN": ["金城鎮", "金湖鎮", "金沙鎮", "金寧鄉", "烈嶼鄉"],
    "LIE": ["南竿鄉", "北竿鄉", "莒光鄉", "東引鄉"],
}
ROADS = ["中山路", "中正路", "民生路", "民權路", "民族路", "復興路", "建國路", "仁愛路", "信義路",
         "和平路", "光復路", "自由路", "成功路", "忠孝路", "文化路", "公園路", "中華路", "大同路"]  # fmt: skip
AREA_CODES = {"TPE": "02", "NWT": "02", "KEE": "02", "TAO": "03", "HSZ": "03", "HSQ": "03",
              "ILA": "03", "HUA": "03", "MIA": "037", "TXG": "04", "CHA": "04", "NAN": "049",
              "YUN": "05", "CYI": "05", "CYQ": "05", "TNN": "06", "PEN": "06", "KHH": "07",
              "PIF": "08", "TTT": "089", "KIN": "082", "LIE": "0836"}  # fmt: skip
SURNAMES = "陳林黃張李王吳劉蔡楊許鄭謝郭洪曾邱廖賴周徐蘇葉莊呂江何蕭羅高潘簡朱鍾游彭詹胡施沈余盧梁趙顏柯翁魏孫戴"
GIVEN = "志明俊傑家豪建宏冠宇承翰怡君雅婷淑芬美玲佳穎欣怡宗翰柏翰詩涵品妤思妤宜蓁子晴育誠文彥心怡惠雯國華政達"
STEMS = ["仁愛", "博愛", "安康", "永和", "慈濟", "康寧", "新光", "長安", "中興", "光明", "同德", "惠民",
         "福安", "宏恩", "祥和", "德生", "健民", "建安", "信望", "怡康", "聖心", "明德", "佑民", "育德"]  # fmt: skip
CLINIC_KINDS = ["診所", "內科診所", "家庭醫學科診所", "耳鼻喉科診所", "小兒科診所", "聯合診所"]
#: Profession mix per level, in LEVELS order (pharmacies and dental clinics are obvious).
#: Hospitals also employ the addiction programme's psychologists, social workers and
#: occupational therapists ("other": seed/addiction/demo.py); the weights change who is
#: which profession, never how many serve where (one draw per person either way).
PROFESSION_MIX = [
    [(Profession.PHYSICIAN, 5), (Profession.NURSE, 3), (Profession.PHARMACIST, 2), (Profession.PSYCHOLOGIST, 1),
     (Profession.SOCIAL_WORKER, 1), (Profession.OTHER, 1)],
    [(Profession.PHYSICIAN, 5), (Profession.NURSE, 3), (Profession.PHARMACIST, 2), (Profession.PSYCHOLOGIST, 1),
     (Profession.SOCIAL_WORKER, 1), (Profession.OTHER, 1)],
    [(Profession.PHYSICIAN, 5), (Profession.NURSE, 3), (Profession.PHARMACIST, 2), (Profession.PSYCHOLOGIST, 1),
     (Profession.SOCIAL_WORKER, 1), (Profession.OTHER, 1)],
    [(Profession.PHYSICIAN, 7), (Profession.NURSE, 2)],
    [(Profession.PHYSICIAN, 3), (Profession.NURSE, 6), (Profession.SOCIAL_WORKER, 1)],
    [(Profession.DENTIST, 1)],
    [(Profession.PHARMACIST, 1)],
]  # fmt: skip
LEVEL_DIGIT = ["1", "1", "1", "3", "2", "4", "5"]

#: (username, roles, description) — README and `make run` print these. The county bureaus
#: and the Ministry run both programmes (county bureaus run the alcohol scheme), so they hold
#: a role of each; every other user holds one programme's role only.
DEMO_USERS = [
    ("admin", (roles.ADMIN,), "系統管理者（全國）"),
    ("office", (roles.OFFICE,), "戒菸管理窗口（全國）"),
    ("ministry", (roles.MINISTRY, roles.ADDICTION_MINISTRY), "衛福部（全國；戒菸與藥酒癮）"),
    ("bureau_tpe", (roles.BUREAU, roles.ADDICTION_BUREAU), "臺北市政府衛生局（戒菸與酒癮）"),
    ("bureau_khh", (roles.BUREAU, roles.ADDICTION_BUREAU), "高雄市政府衛生局（戒菸與酒癮）"),
    ("facility_tpe", (roles.FACILITY,), "臺北市的一家特約機構"),
    ("facility_khh", (roles.FACILITY,), "高雄市的一家特約機構"),
    ("helpdesk", (roles.HELPDESK,), "客服（帳號查詢）"),
    ("dr_tpe", (roles.TREATMENT,), "醫師，臺北市的指定藥癮戒治機構"),
    ("psy_tpe", (roles.TREATMENT,), "心理師，臺北市的指定藥癮戒治機構"),
    ("rn_tpe", (roles.TREATMENT,), "護理師，臺北市的指定藥癮戒治機構"),
    ("cm_khh", (roles.TREATMENT,), "個案管理師，高雄市的指定藥癮戒治機構"),
    ("psy_clinic", (roles.TREATMENT,), "心理師，臺北市的心理治療所（無醫事機構代碼）"),
    ("sw_office", (roles.TREATMENT,), "社工師，臺北市的社工師事務所（無醫事機構代碼）"),
]


def _scaled(counts: list[int], scale: float) -> list[int]:
    return [max(1, round(c * scale)) for c in counts]


def _person_name(rng: random.Random) -> str:
    return rng.choice(SURNAMES) + rng.choice(GIVEN[::2]) + rng.choice(GIVEN[1::2])


def _national_id(rng: random.Random, used: set[str]) -> str:
    while True:
        prefix = rng.choice("ABCDEFGHJKLMNPQRSTUVXYWZIO") + rng.choice("12")
        prefix += "".join(rng.choice("0123456789") for _ in range(7))
        value = prefix + personal_id_check_digit(prefix)
        if value not in used:
            used.add(value)
            return value


def _date_between(rng: random.Random, start: dt.date, end: dt.date) -> dt.date:
    return start + dt.timedelta(days=rng.randrange((end - start).days + 1))


def seed_demo(
    seed: int = 113, scale: float = 1.0, addiction_cases: bool = True
) -> dict[str, int | str]:
    """Build the demo registry (once) and the demo users (created or refreshed); without
    `addiction_cases`, the addiction programme's institutions and staff but no case data."""
    seed_reference()
    result: dict[str, int | str] = {}
    if db.session.scalar(select(func.count(Institution.id))) == 0:
        rng = random.Random(seed)
        institutions = _seed_institutions(rng, scale)
        _seed_practitioners(rng, scale, institutions)
    else:
        result["note"] = "registry already present; left as it is"
    demo_ids = [demo_institution(code).id for code in ("TPE", "KHH")]
    # The visits are planned from the registry as it is now (on SQLite in a second process,
    # on the other core) while the addiction programme is seeded; it leaves the cessation
    # data as it is (its staff serve from 2025 on, so the 2024 bulletin figures stay those
    # of the bulletin). Measured with `time flask setup` on a fresh SQLite database, 2 cores:
    # see seed/cessation/visits.py PendingVisits.
    visits = PendingVisits(seed, scale, demo_ids)
    result.update(seed_addiction_registry())  # before the users it staffs
    if addiction_cases:
        result.update(seed_addiction_demo(seed, scale))
        result.update(seed_his_demo(seed, scale))
    result["visits"] = visits.finish()
    result["correction tickets"] = seed_corrections(*demo_ids)
    _seed_users()
    _seed_applications()
    if addiction_cases:
        # A12: persons treated at both demo hospitals, one consenting (after the users: its
        # consent names the staff member who recorded it).
        from seed.addiction.consent import seed_consent_demo

        result.update(seed_consent_demo())
        from seed.addiction.claims import seed_claims_demo

        result.update(seed_claims_demo())
    # Bulk-inserted visits and assignments bypass the session's link hook.
    from models.registry.person import backfill_person_links

    backfill_person_links(db.session.connection())
    db.session.commit()
    from core.security.manager import bump_security_version

    bump_security_version()
    result["institutions"] = db.session.scalar(select(func.count(Institution.id)))
    result["practitioners"] = db.session.scalar(select(func.count(Practitioner.id)))
    result["service assignments"] = db.session.scalar(select(func.count(ServiceAssignment.id)))
    return result


def _seed_institutions(rng: random.Random, scale: float) -> list[list[tuple[int, str]]]:
    counties = {c.code: c for c in County.query.all()}
    levels = InstitutionLevel.query.order_by(InstitutionLevel.sort_order).all()
    codes = [code for code, _, _ in COUNTIES]
    per_level = _scaled(INSTITUTIONS_PER_LEVEL, scale)
    rows, contracts = [], []
    by_level: list[list[tuple[int, str]]] = [[] for _ in LEVELS]
    serial = 0
    for level_index, (level, count) in enumerate(zip(levels, per_level, strict=True)):
        if level_index == 0:
            placement = [c for c, n in MEDICAL_CENTRES.items() for _ in range(n)][:count]
            placement += rng.choices(codes, COUNTY_WEIGHTS, k=count - len(placement))
        elif level.code == "health_station":
            # Every county has at least one health station, whatever the scale.
            count = max(count, len(codes))
            placement = list(codes)
            placement += rng.choices(codes, COUNTY_WEIGHTS, k=count - len(placement))
        else:
            placement = rng.choices(codes, COUNTY_WEIGHTS, k=count)
        for county_code in placement:
            serial += 1
            county = counties[county_code]
            district = rng.choice(DISTRICTS[county_code])
            stem = rng.choice(STEMS)
            name = {
                "medical_center": f"{county.name[:2]}{stem}紀念醫院",
                "regional_hospital": f"{stem}綜合醫院",
                "district_hospital": f"{district[:-1]}{stem}醫院",
                "clinic": f"{stem}{rng.choice(CLINIC_KINDS)}",
                "health_station": f"{county.name}{district}衛生所",
                "dental_clinic": f"{stem}牙醫診所",
                "pharmacy": f"{stem}藥局",
            }[level.code]
            area_code = f"{codes.index(county_code) + 1:02d}"
            nhi_code = f"{area_code}{LEVEL_DIGIT[level_index]}{serial:06d}{rng.randrange(10)}"
            phone_area = AREA_CODES[county_code]
            rows.append(
                {
                    "nhi_code": nhi_code,
                    "name": name,
                    "level_id": level.id,
                    "county_id": county.id,
                    "address": f"{county.name}{district}{rng.choice(ROADS)}{rng.randrange(1, 400)}號",
                    "phone": f"({phone_area}){rng.randrange(2000, 9999)}-{rng.randrange(1000, 9999)}",
                }
            )
            by_level[level_index].append((nhi_code, county_code))
    db.session.execute(insert(Institution), rows)
    ids = dict(db.session.execute(select(Institution.nhi_code, Institution.id)).all())
    for row in rows:
        start = _date_between(rng, dt.date(2008, 1, 1), dt.date(2023, 12, 31))
        contracts.append(
            {"institution_id": ids[row["nhi_code"]], "start_date": start, "end_date": None}
        )
    db.session.execute(insert(ContractPeriod), contracts)
    db.session.commit()
    return [[(ids[code], county) for code, county in level] for level in by_level]


def _seed_practitioners(rng, scale, institutions_by_level) -> None:
    per_level = _scaled(PRACTITIONERS_PER_LEVEL, scale)
    total = max(len(per_level), round(PRACTITIONERS_TOTAL * scale))
    slots = [level for level, n in enumerate(per_level) for _ in range(n)]
    rng.shuffle(slots)
    primary, extra = slots[:total], slots[total:]
    people: list[list[int]] = [[level] for level in primary]
    single = list(range(len(people)))
    rng.shuffle(single)
    for level in extra:
        # The second level of a dual-level practitioner differs from the first.
        for index_pos in range(len(single)):
            person = single[index_pos]
            if people[person][0] != level:
                people[person].append(level)
                single.pop(index_pos)
                break
    used_ids: set[str] = set()
    practitioner_rows = []
    for number, levels in enumerate(people, start=1):
        profession = rng.choices(*zip(*PROFESSION_MIX[levels[0]], strict=True))[0]
        practitioner_rows.append(
            {
                "national_id": _national_id(rng, used_ids),
                "name": _person_name(rng),
                "profession": profession.value,
                "licence_number": f"{profession.value[:3].upper()}{number:06d}",
            }
        )
    db.session.execute(insert(Practitioner), practitioner_rows)
    ids = dict(db.session.execute(select(Practitioner.national_id, Practitioner.id)).all())
    # Every institution gets at least one practitioner of its level, the rest at random.
    queues = {level: [i for i, _ in insts] for level, insts in enumerate(institutions_by_level)}
    assignments = []
    for row, levels in zip(practitioner_rows, people, strict=True):
        for level in levels:
            queue = queues[level]
            institution_id = queue.pop() if queue else rng.choice(institutions_by_level[level])[0]
            start = _date_between(rng, dt.date(2012, 1, 1), dt.date(2023, 12, 31))
            assignments.append(
                {
                    "practitioner_id": ids[row["national_id"]],
                    "institution_id": institution_id,
                    "start_date": start,
                    "end_date": None,
                }
            )
    db.session.execute(insert(ServiceAssignment), assignments)
    db.session.commit()


#: Pending applications, so that the bureau and the admin have something to review.
DEMO_APPLICATIONS = [
    ("陳雅婷", "tpe.applicant@demo.invalid", "facility", "TPE", "護理師"),
    ("林志明", "khh.applicant@demo.invalid", "facility", "KHH", "藥師"),
    ("黃淑芬", "bureau.applicant@demo.invalid", "bureau", "TPE", "科員"),
]


def _seed_applications() -> None:
    """Create the demo applications once (their PDF goes to the storage's "applications" kind)."""
    from core.storage import storage
    from models.accounts.application import AccountApplication

    if db.session.scalar(select(func.count(AccountApplication.id))):
        return
    pdf = blank_pdf()
    county = {c.code: c for c in County.query.all()}
    for number, (name, email, role, county_code, title) in enumerate(DEMO_APPLICATIONS, start=1):
        stored = f"demo-application-{number}.pdf"
        storage().put("applications", pdf, stored, "application/pdf")
        institution = demo_institution(county_code) if role == "facility" else None
        db.session.add(
            AccountApplication(
                applicant_name=name, email=email, phone="(02)2351-0120", job_title=title,
                requested_role=role, institution=institution,
                county=county[county_code] if role == "bureau" else None,
                supervisor_name="王主任", form_file=stored, form_filename="申請表.pdf",
            )
        )  # fmt: skip
    db.session.commit()


def demo_institution(county_code: str) -> Institution:
    """The demo facility user's institution: the first 地區醫院 (by code) in that county."""
    return (
        Institution.query.join(County, County.id == Institution.county_id)
        .join(InstitutionLevel, InstitutionLevel.id == Institution.level_id)
        .filter(County.code == county_code, InstitutionLevel.code == "district_hospital")
        .order_by(Institution.nhi_code)
        .first()
        or Institution.query.join(County, County.id == Institution.county_id)
        .filter(County.code == county_code)
        .order_by(Institution.nhi_code)
        .first()
    )


def _seed_users() -> None:
    from core.security.passwords import demo_passwords_allowed

    with demo_passwords_allowed():
        _create_demo_users()


def _create_demo_users() -> None:
    sm = current_app.appbuilder.sm
    from werkzeug.security import generate_password_hash

    # One hash for every demo user: they share the published password anyway, and hashing
    # it per user (scrypt) was 2.5 s of `make run`.
    config = current_app.config
    hashed = generate_password_hash(
        config["DEMO_PASSWORD"], method=config.get("FAB_PASSWORD_HASH_METHOD", "scrypt"),
        salt_length=config.get("FAB_PASSWORD_HASH_SALT_LENGTH", 16),
    )  # fmt: skip
    county = {c.code: c for c in County.query.all()}
    for username, role_names, description in DEMO_USERS:
        user_roles = [sm.find_role(name) or sm.add_role(name) for name in role_names]
        user = sm.find_user(username=username)
        if user is None:
            user = sm.add_user(
                username, description, "示範帳號", f"{username}@demo.invalid", user_roles,
                hashed_password=hashed,
            )  # fmt: skip
            if not user:
                raise RuntimeError(f"could not create demo user {username}")
        user = db.session.get(ScopedUser, user.id)
        kind, county_row, institutions, staff = ScopeKind.NATIONAL, None, [], None
        if username in DEMO_STAFF:
            # Addiction staff: their institution, and their staff profile (A14).
            staff = demo_staff(username)
            kind = ScopeKind.FACILITY
            institutions = [demo_addiction_institution(DEMO_STAFF[username][0])]
        elif username.startswith("bureau_"):
            kind, county_row = ScopeKind.COUNTY, county[username.split("_")[1].upper()]
        elif username.startswith("facility_"):
            kind = ScopeKind.FACILITY
            institutions = [demo_institution(username.split("_")[1].upper())]
        # Assign only what differs, so a re-seed leaves no spurious role/scope events.
        if user.roles != user_roles:
            user.roles = user_roles
        if user.practitioner_id != (staff.id if staff else None):
            user.practitioner_id = staff.id if staff else None
        user.active = True
        if user.scope_kind != kind:
            user.scope_kind = kind
        if user.scope_county != county_row:
            user.scope_county = county_row
        if user.scope_institutions != institutions:
            user.scope_institutions = institutions
        db.session.commit()


__all__ = ["DEMO_USERS", "seed_demo", "user_institution"]
