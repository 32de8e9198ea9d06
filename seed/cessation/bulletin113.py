"""The ROC 113 (2024) figures of bulletin section 肆 (seeds/000_51613210f4f79e57.txt), every cell.

The one copy of the bulletin's tables 1–3: the demo generator builds a dataset that
reproduces them and the tests compare the computed statistics with them, cell by cell.
Levels are in the bulletin's order (seed/registry/reference.py LEVELS).
"""

from __future__ import annotations

ROC_YEAR = 113
YEAR = 2024
LEVEL_CODES = [
    "medical_center", "regional_hospital", "district_hospital", "clinic", "health_station",
    "dental_clinic", "pharmacy",
]  # fmt: skip

#: 表 1、113年特約機構各層級戒菸服務合約及執行概況: (合約特約機構數, 執行特約機構數, 執行率)
TABLE1 = {
    "medical_center": (24, 24, "100.00"),
    "regional_hospital": (90, 88, "97.78"),
    "district_hospital": (200, 176, "88.00"),
    "clinic": (1_375, 1_031, "74.98"),
    "health_station": (332, 297, "89.46"),
    "dental_clinic": (148, 33, "22.30"),
    "pharmacy": (607, 402, "66.23"),
}
TABLE1_TOTAL = (2_776, 2_051, "73.88")

#: 表 2、113年服務人員各層級戒菸服務合約及執行概況: (合約服務人員數, 執行服務人員數, 執行率)
TABLE2 = {
    "medical_center": (1_848, 731, "39.56"),
    "regional_hospital": (2_296, 1_105, "48.13"),
    "district_hospital": (2_031, 972, "47.86"),
    "clinic": (2_635, 1_801, "68.35"),
    "health_station": (3_194, 1_781, "55.76"),
    "dental_clinic": (165, 40, "24.24"),
    "pharmacy": (750, 503, "67.07"),
}
#: 合計*註: people counted once (levels add up to more, see the footnote).
TABLE2_TOTAL = (11_477, 6_695, "58.33")

#: 表 3、113年各層級及服務人員用藥與衛教服務概況:
#: (用藥人次, 衛教人次, 平均每人給藥次數, 平均每人衛教次數)
TABLE3 = {
    "medical_center": (17_430, 39_426, "2.1", "2.0"),
    "regional_hospital": (35_579, 42_147, "2.4", "1.7"),
    "district_hospital": (20_468, 24_814, "2.4", "2.0"),
    "clinic": (73_322, 33_328, "2.9", "2.8"),
    "health_station": (18_260, 24_380, "2.2", "1.8"),
    "dental_clinic": (1_401, 729, "1.9", "2.2"),
    "pharmacy": (49_040, 48_194, "4.2", "4.1"),
}
TABLE3_TOTAL = (217_500, 213_018, "2.8", "2.3")
#: The published medication total is NOT the sum of the seven levels above (215,500): the
#: bulletin is 2,000 off in one of its cells. Tables computed from data (total = the levels'
#: sum) show 215,500; every other cell, the averages included, matches the bulletin.
TABLE3_LEVELS_MEDICATION = sum(row[0] for row in TABLE3.values())
assert TABLE3_LEVELS_MEDICATION == 215_500
