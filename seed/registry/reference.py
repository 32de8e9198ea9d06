"""Reference data: the 22 counties/cities with their health bureaus, and institution levels."""

from __future__ import annotations

from core.extensions import db
from models.registry.reference import County, InstitutionLevel

#: (ISO 3166-2:TW code, county, health bureau), in the Ministry's usual order.
COUNTIES = [
    ("TPE", "臺北市", "臺北市政府衛生局"),
    ("NWT", "新北市", "新北市政府衛生局"),
    ("TAO", "桃園市", "桃園市政府衛生局"),
    ("TXG", "臺中市", "臺中市政府衛生局"),
    ("TNN", "臺南市", "臺南市政府衛生局"),
    ("KHH", "高雄市", "高雄市政府衛生局"),
    ("ILA", "宜蘭縣", "宜蘭縣政府衛生局"),
    ("HSQ", "新竹縣", "新竹縣政府衛生局"),
    ("MIA", "苗栗縣", "苗栗縣政府衛生局"),
    ("CHA", "彰化縣", "彰化縣衛生局"),
    ("NAN", "南投縣", "南投縣政府衛生局"),
    ("YUN", "雲林縣", "雲林縣衛生局"),
    ("CYQ", "嘉義縣", "嘉義縣衛生局"),
    ("PIF", "屏東縣", "屏東縣政府衛生局"),
    ("TTT", "臺東縣", "臺東縣衛生局"),
    ("HUA", "花蓮縣", "花蓮縣衛生局"),
    ("PEN", "澎湖縣", "澎湖縣政府衛生局"),
    ("KEE", "基隆市", "基隆市衛生局"),
    ("HSZ", "新竹市", "新竹市衛生局"),
    ("CYI", "嘉義市", "嘉義市政府衛生局"),
    ("KIN", "金門縣", "金門縣衛生局"),
    ("LIE", "連江縣", "連江縣衛生福利局"),
]

#: The bulletin's order of institution levels (every report lists them this way).
LEVELS = [
    ("medical_center", "醫學中心"),
    ("regional_hospital", "區域醫院"),
    ("district_hospital", "地區醫院"),
    ("clinic", "西醫診所"),
    ("health_station", "衛生所"),
    ("dental_clinic", "牙科診所"),
    ("pharmacy", "藥局"),
]


def seed_reference() -> dict[str, int]:
    """Insert or update counties and levels; running it twice changes nothing."""
    for order, (code, name, bureau) in enumerate(COUNTIES, start=1):
        county = County.query.filter_by(code=code).one_or_none() or County(code=code)
        county.name, county.bureau_name, county.sort_order = name, bureau, order
        db.session.add(county)
    for order, (code, name) in enumerate(LEVELS, start=1):
        level = InstitutionLevel.query.filter_by(code=code).one_or_none() or InstitutionLevel(
            code=code
        )
        level.name, level.sort_order = name, order
        db.session.add(level)
    db.session.commit()
    return {"counties": County.query.count(), "levels": InstitutionLevel.query.count()}
