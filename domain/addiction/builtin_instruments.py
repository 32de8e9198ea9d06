"""The instruments the system ships (A3): the programme's 初次評估表 and 追蹤評估表, and the
validated scales with their published scoring and cut-offs. Each records its source and
licence; one whose licence does not allow free use ships disabled until an admin records a
licence (FTND).

The initial and follow-up forms are this system's own design, from what addiction services
record at intake and follow-up (the domains of the Addiction Severity Index and the
Treatment Outcomes Profile: substances used in the last 30 days and how often, route,
injecting, treatment goals, employment, housing, legal status); they carry no total score.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Builtin:
    """One shipped instrument: code, title, purpose (initial / follow_up / None), source,
    licence, whether it may be used freely, and its definition (domain/addiction/scoring.py)."""

    code: str
    title: str
    purpose: str | None
    source: str
    licence: str
    free_use: bool
    definition: dict


def _options(*pairs) -> list[dict]:
    return [{"code": str(code), "display": display, "weight": weight} for code, display, weight in pairs]


def _likert(prefix: str, texts: list[str], scale: str, required: bool = True) -> list[dict]:
    return [{"linkId": f"{prefix}{n}", "type": "likert", "text": text, "scale": scale, "required": required}
            for n, text in enumerate(texts, start=1)]  # fmt: skip


def _yes_no(prefix: str, texts: list[str], scored_on_no: tuple[int, ...] = ()) -> list[dict]:
    items = []
    for n, text in enumerate(texts, start=1):
        yes, no = (0, 1) if n in scored_on_no else (1, 0)
        items.append({"linkId": f"{prefix}{n}", "type": "boolean", "text": text, "required": True,
                      "options": _options(("Y", "是", yes), ("N", "否", no))})  # fmt: skip
    return items


# ------------------------------------------------------------------ BSRS-5
BSRS5 = Builtin(
    code="BSRS5",
    title="簡式健康量表（BSRS-5，心情溫度計）",
    purpose=None,
    source="李明濱等（1990）簡式健康量表；全國自殺防治中心／臺灣自殺防治學會推廣之心情溫度計",
    licence="公開供醫療與公共衛生使用，免費",
    free_use=True,
    definition={
        "scales": {"bsrs": _options((0, "完全沒有", 0), (1, "輕微", 1), (2, "中等程度", 2), (3, "厲害", 3),
                                    (4, "非常厲害", 4))},  # fmt: skip
        "items": [
            {"linkId": "intro", "type": "display", "text": "請您仔細回想在最近一星期中（包括今天），這些問題使您感到困擾或苦惱的程度。"},
            *_likert("b", ["睡眠困難，譬如難以入睡、易醒或早醒", "感覺緊張或不安", "覺得容易苦惱或動怒",
                           "感覺憂鬱、心情低落", "覺得比不上別人"], "bsrs"),  # fmt: skip
            {"linkId": "b6", "type": "likert", "text": "有自殺的想法（附加題）", "scale": "bsrs", "required": True},
        ],
        "scoring": {
            "scores": [{"name": "total", "label": "總分（前 5 題）", "method": "sum",
                        "items": ["b1", "b2", "b3", "b4", "b5"], "missing": "refuse",
                        "bands": [{"min": 0, "max": 5, "label": "一般正常範圍"},
                                  {"min": 6, "max": 9, "label": "輕度情緒困擾"},
                                  {"min": 10, "max": 14, "label": "中度情緒困擾"},
                                  {"min": 15, "max": 20, "label": "重度情緒困擾"}]}],  # fmt: skip
            # The suicidal-ideation item is scored apart: 2 or more refers whatever the total.
            "flags": [{"name": "suicide", "label": "自殺想法 ≥ 2 分：建議轉介精神科或自殺防治關懷",
                       "item": "b6", "operator": ">=", "value": 2},
                      {"name": "severe", "label": "總分 ≥ 15：建議轉介精神科治療",
                       "score": "total", "operator": ">=", "value": 15}],  # fmt: skip
        },
    },
)

# ------------------------------------------------------------------ AUDIT / AUDIT-C
_FREQ = _options((0, "從未", 0), (1, "少於每月 1 次", 1), (2, "每月 1 次", 2), (3, "每週 1 次", 3),
                 (4, "每天或幾乎每天", 4))  # fmt: skip
_AUDIT_C_ITEMS = [
    {"linkId": "a1", "type": "choice", "text": "您多久喝一次含酒精的飲料？", "required": True,
     "options": _options((0, "從未", 0), (1, "每月 1 次或更少", 1), (2, "每月 2 至 4 次", 2),
                         (3, "每週 2 至 3 次", 3), (4, "每週 4 次或以上", 4))},
    {"linkId": "a2", "type": "choice", "text": "您喝酒時，通常一天喝多少標準杯？", "required": True,
     "options": _options((0, "1 或 2 杯", 0), (1, "3 或 4 杯", 1), (2, "5 或 6 杯", 2), (3, "7 至 9 杯", 3),
                         (4, "10 杯或以上", 4))},
    {"linkId": "a3", "type": "choice", "text": "您多久會有一次喝 6 標準杯或以上？", "required": True,
     "scale": "freq"},
]  # fmt: skip
_AUDIT_MORE = [
    *[{"linkId": f"a{n}", "type": "choice", "text": text, "required": True, "scale": "freq"}
      for n, text in enumerate(["過去一年中，您發現一旦開始喝酒就無法停止的情形有多常見？",
                                "過去一年中，您因為喝酒而無法做到平常該做的事的情形有多常見？",
                                "過去一年中，您在大量喝酒後，早上需要喝一杯才能振作起來的情形有多常見？",
                                "過去一年中，您在喝酒後感到愧疚或後悔的情形有多常見？",
                                "過去一年中，您因為喝酒而想不起前一晚發生的事的情形有多常見？"], start=4)],
    {"linkId": "a9", "type": "choice", "text": "您或其他人曾因為您喝酒而受傷嗎？", "required": True,
     "options": _options((0, "沒有", 0), (2, "有，但不是在過去一年", 2), (4, "有，在過去一年內", 4))},
    {"linkId": "a10", "type": "choice", "text": "您的親友、醫師或其他醫療人員曾關心您的喝酒情形，或建議您少喝一點嗎？",
     "required": True,
     "options": _options((0, "沒有", 0), (2, "有，但不是在過去一年", 2), (4, "有，在過去一年內", 4))},
]  # fmt: skip

AUDIT = Builtin(
    code="AUDIT",
    title="酒精使用疾患確認檢測（AUDIT）",
    purpose=None,
    source="World Health Organization. AUDIT: The Alcohol Use Disorders Identification Test, 2nd ed. (2001)",
    licence="WHO 公開，免費使用",
    free_use=True,
    definition={
        "scales": {"freq": _FREQ},
        "items": [*_AUDIT_C_ITEMS, *_AUDIT_MORE],
        "scoring": {"scores": [{"name": "total", "label": "總分", "method": "sum",
                                "items": [f"a{n}" for n in range(1, 11)], "missing": "refuse",
                                "bands": [{"min": 0, "max": 7, "label": "低風險飲酒（第一區）"},
                                          {"min": 8, "max": 15, "label": "危險飲酒（第二區）"},
                                          {"min": 16, "max": 19, "label": "有害飲酒（第三區）"},
                                          {"min": 20, "max": 40, "label": "可能酒精依賴（第四區）"}]}]},
    },
)  # fmt: skip

AUDIT_C = Builtin(
    code="AUDIT-C",
    title="酒精使用疾患確認檢測簡式版（AUDIT-C）",
    purpose=None,
    source="Bush K, et al. The AUDIT alcohol consumption questions (AUDIT-C). Arch Intern Med 1998;158:1789-95",
    licence="公開，免費使用",
    free_use=True,
    definition={
        "scales": {"freq": _FREQ},
        "items": list(_AUDIT_C_ITEMS),
        # Published cut-offs: 4 or more for men, 3 or more for women.
        "scoring": {"scores": [{"name": "total", "label": "總分", "method": "sum",
                                "items": ["a1", "a2", "a3"], "missing": "refuse",
                                "bands": [{"min": 0, "max": 2, "label": "篩檢陰性"},
                                          {"min": 3, "max": 3, "label": "女性篩檢陽性（男性陰性）"},
                                          {"min": 4, "max": 12, "label": "篩檢陽性"}]}]},
    },
)  # fmt: skip

# ------------------------------------------------------------------ DAST-10
DAST10 = Builtin(
    code="DAST-10",
    title="藥物濫用篩檢量表（DAST-10）",
    purpose=None,
    source="Skinner HA. The Drug Abuse Screening Test. Addict Behav 1982;7(4):363-71（10 題版）",
    licence="© 1982 Harvey A. Skinner；非商業之臨床與研究使用免費",
    free_use=True,
    definition={
        "items": [
            {"linkId": "intro", "type": "display", "text": "以下問題指過去 12 個月內，非醫療需要而使用藥物（不含酒精與菸品）的情形。"},
            # Item 3 is scored on 否: always able to stop is the healthy answer.
            *_yes_no("d", ["除了醫療需要之外，您是否使用過藥物？", "您是否同時使用一種以上的藥物？",
                           "當您想停止使用藥物時，是否總是能夠停止？",
                           "您是否曾因使用藥物而出現意識空白或記憶中斷（flashback）？",
                           "您是否曾因使用藥物而感到難過或有罪惡感？", "您的配偶或父母是否曾抱怨您使用藥物？",
                           "您是否曾因使用藥物而疏忽了家庭？", "您是否曾為了取得藥物而從事違法的活動？",
                           "停止使用藥物時，您是否曾出現戒斷症狀（感到身體不適）？",
                           "您是否曾因使用藥物而產生醫療問題（如記憶喪失、肝炎、抽搐、出血等）？"],
                     scored_on_no=(3,)),
        ],
        "scoring": {"scores": [{"name": "total", "label": "總分", "method": "sum",
                                "items": [f"d{n}" for n in range(1, 11)], "missing": "refuse",
                                "bands": [{"min": 0, "max": 0, "label": "無藥物問題"},
                                          {"min": 1, "max": 2, "label": "低度"},
                                          {"min": 3, "max": 5, "label": "中度"},
                                          {"min": 6, "max": 8, "label": "顯著"},
                                          {"min": 9, "max": 10, "label": "嚴重"}]}]},
    },
)  # fmt: skip

# ------------------------------------------------------------------ CAGE
CAGE = Builtin(
    code="CAGE",
    title="CAGE 酒癮篩檢問卷",
    purpose=None,
    source="Ewing JA. Detecting alcoholism: the CAGE questionnaire. JAMA 1984;252(14):1905-7",
    licence="公開，免費使用",
    free_use=True,
    definition={
        "items": _yes_no("c", ["您是否曾覺得應該減少喝酒？（Cut down）",
                               "您是否曾因別人批評您喝酒而感到惱怒？（Annoyed）",
                               "您是否曾對自己喝酒感到不好或有罪惡感？（Guilty）",
                               "您是否曾一早起床就先喝酒來穩定情緒或擺脫宿醉？（Eye-opener）"]),
        "scoring": {"scores": [{"name": "total", "label": "總分", "method": "sum",
                                "items": ["c1", "c2", "c3", "c4"], "missing": "refuse",
                                "bands": [{"min": 0, "max": 1, "label": "篩檢陰性"},
                                          {"min": 2, "max": 4, "label": "篩檢陽性（臨床上有意義）"}]}]},
    },
)  # fmt: skip

# ------------------------------------------------------------------ PHQ-9
PHQ9 = Builtin(
    code="PHQ-9",
    title="病人健康問卷（PHQ-9）",
    purpose=None,
    source="Kroenke K, Spitzer RL, Williams JB. The PHQ-9. J Gen Intern Med 2001;16(9):606-13",
    licence="Pfizer 公開，使用不需授權",
    free_use=True,
    definition={
        "scales": {"phq": _options((0, "完全沒有", 0), (1, "有幾天", 1), (2, "一半以上的天數", 2),
                                   (3, "幾乎每天", 3))},
        "items": [
            {"linkId": "intro", "type": "display", "text": "過去兩個星期，您有多常受到以下問題困擾？"},
            *_likert("p", ["做事時提不起勁或沒有樂趣", "感到心情低落、沮喪或絕望", "入睡困難、睡不安穩或睡眠過多",
                           "感覺疲倦或沒有活力", "食慾不振或吃太多",
                           "覺得自己很糟，或覺得自己很失敗，或讓自己或家人失望",
                           "對事物專注有困難，例如閱讀報紙或看電視時",
                           "動作或說話速度緩慢到別人已經察覺，或正好相反，煩躁或坐立不安",
                           "有不如死掉或用某種方式傷害自己的念頭"], "phq"),
        ],
        "scoring": {"scores": [{"name": "total", "label": "總分", "method": "sum",
                                "items": [f"p{n}" for n in range(1, 10)], "missing": "refuse",
                                "bands": [{"min": 0, "max": 4, "label": "極輕微"}, {"min": 5, "max": 9, "label": "輕度"},
                                          {"min": 10, "max": 14, "label": "中度"},
                                          {"min": 15, "max": 19, "label": "中重度"},
                                          {"min": 20, "max": 27, "label": "重度"}]}],
                    "flags": [{"name": "self_harm", "label": "第 9 題 > 0：有自傷意念，須進一步評估",
                               "item": "p9", "operator": ">", "value": 0}]},
    },
)  # fmt: skip

# ------------------------------------------------------------------ FTND (disabled)
FTND = Builtin(
    code="FTND",
    title="尼古丁依賴度測試（FTND）",
    purpose=None,
    source="Heatherton TF, Kozlowski LT, Frecker RC, Fagerström KO. Br J Addict 1991;86:1119-27",
    licence="著作權人保留權利；機構取得授權並由系統管理者登錄後方可啟用",
    free_use=False,
    definition={
        "items": [
            {"linkId": "f1", "type": "choice", "text": "起床後多久抽第一支菸？", "required": True,
             "options": _options(("a", "5 分鐘內", 3), ("b", "6 至 30 分鐘", 2), ("c", "31 至 60 分鐘", 1),
                                 ("d", "60 分鐘以後", 0))},
            {"linkId": "f2", "type": "boolean", "text": "在禁菸場所忍住不抽菸，您覺得困難嗎？", "required": True},
            {"linkId": "f3", "type": "choice", "text": "哪一支菸您最不願意放棄？", "required": True,
             "options": _options(("first", "早上第一支", 1), ("other", "其他", 0))},
            {"linkId": "f4", "type": "choice", "text": "您一天抽幾支菸？", "required": True,
             "options": _options(("a", "10 支或以下", 0), ("b", "11 至 20 支", 1), ("c", "21 至 30 支", 2),
                                 ("d", "31 支或以上", 3))},
            {"linkId": "f5", "type": "boolean", "text": "起床後幾小時內抽的菸比其他時間多嗎？", "required": True},
            {"linkId": "f6", "type": "boolean", "text": "生病臥床時您仍會抽菸嗎？", "required": True},
        ],
        "scoring": {"scores": [{"name": "total", "label": "總分", "method": "sum",
                                "items": [f"f{n}" for n in range(1, 7)], "missing": "refuse",
                                "bands": [{"min": 0, "max": 3, "label": "低度依賴"},
                                          {"min": 4, "max": 6, "label": "中度依賴"},
                                          {"min": 7, "max": 10, "label": "高度依賴"}]}]},
    },
)  # fmt: skip

# ------------------------------------------------------------------ the programme's own forms
_SUBSTANCES = [("heroin", "海洛因"), ("meth", "（甲基）安非他命"), ("ketamine", "愷他命"), ("mdma", "MDMA（搖頭丸）"),
               ("cannabis", "大麻"), ("opioid", "其他鴉片類"), ("sedative", "鎮靜安眠藥"), ("nps", "新興影響精神物質"),
               ("alcohol", "酒精"), ("other", "其他")]  # fmt: skip


def _choices(pairs) -> list[dict]:
    return [{"code": code, "display": display} for code, display in pairs]


def _use_items(period: str) -> list[dict]:
    return [
        {"linkId": "sec_use", "type": "group", "text": "物質使用"},
        {"linkId": "substances", "type": "multi", "text": f"{period}使用的物質（可複選）", "required": True,
         "options": _choices([("none", "未使用"), *_SUBSTANCES])},
        {"linkId": "substance_other", "type": "string", "text": "其他物質名稱",
         "enableWhen": [{"question": "substances", "operator": "=", "answer": "other"}], "required": True},
        {"linkId": "days_used", "type": "integer", "text": f"{period}使用天數", "required": True, "min": 0, "max": 30,
         "message": "請填 0 到 30 天"},
        {"linkId": "frequency", "type": "choice", "text": "使用頻率", "required": True,
         "options": _choices([("0", "未使用"), ("1", "每週少於 1 次"), ("2", "每週 1 至 2 次"), ("3", "每週 3 至 6 次"),
                              ("4", "每天")])},
        {"linkId": "route", "type": "multi", "text": "使用方式（可複選）",
         "enableWhen": [{"question": "frequency", "operator": "!=", "answer": "0"}],
         "options": _choices([("oral", "口服"), ("smoke", "吸食（煙吸、燙吸）"), ("snort", "鼻吸"), ("inject", "注射"),
                              ("other", "其他")])},
        {"linkId": "shared_needles", "type": "boolean", "text": "是否共用針具或稀釋液",
         "enableWhen": [{"question": "route", "operator": "=", "answer": "inject"}], "required": True},
    ]  # fmt: skip


_SOCIAL = [
    {"linkId": "sec_social", "type": "group", "text": "社會功能與法律狀態"},
    {"linkId": "employment", "type": "choice", "text": "就業狀況", "required": True,
     "options": _choices([("full", "全職工作"), ("part", "兼職或臨時工"), ("seeking", "失業，求職中"),
                          ("none", "無業，未求職"), ("student", "學生"), ("home", "家管"), ("retired", "退休"),
                          ("other", "其他")])},
    {"linkId": "housing", "type": "choice", "text": "居住狀況", "required": True,
     "options": _choices([("own", "自有或租屋，穩定居住"), ("family", "與家人同住"), ("friends", "借住親友處"),
                          ("institution", "機構安置"), ("homeless", "無固定住所")])},
    {"linkId": "legal", "type": "choice", "text": "司法狀態", "required": True,
     "options": _choices([("none", "無司法案件"), ("deferred", "緩起訴附命戒癮治療中"), ("probation", "保護管束中"),
                          ("pending", "偵查或審理中"), ("parole", "假釋中"), ("other", "其他")])},
]  # fmt: skip

INITIAL = Builtin(
    code="INITIAL",
    title="初次評估表",
    purpose="initial",
    source="本系統依成癮治療常用紀錄項目設計（參考成癮嚴重度指標 ASI 與治療成果量表 TOP 之向度）",
    licence="本系統自行設計，免費使用",
    free_use=True,
    definition={
        "items": [
            *_use_items("過去 30 天"),
            {"linkId": "age_first", "type": "integer", "text": "第一次使用的年齡", "min": 5, "max": 100},
            *_SOCIAL,
            {"linkId": "sec_goal", "type": "group", "text": "治療目標"},
            {"linkId": "goals", "type": "multi", "text": "個案的治療目標（可複選）", "required": True,
             "options": _choices([("stop", "完全停止使用"), ("reduce", "減少使用"), ("health", "改善身體健康"),
                                  ("mood", "改善情緒"), ("family", "改善家庭關係"), ("work", "就業或就學"),
                                  ("court", "完成緩起訴或司法處遇條件"), ("other", "其他")])},
            {"linkId": "readiness", "type": "integer", "text": "改變的準備程度（0 到 10）", "min": 0, "max": 10},
            {"linkId": "goal_note", "type": "text", "text": "治療目標說明"},
        ],
    },
)  # fmt: skip

FOLLOW_UP = Builtin(
    code="FOLLOW_UP",
    title="追蹤評估表",
    purpose="follow_up",
    source=INITIAL.source,
    licence=INITIAL.licence,
    free_use=True,
    definition={
        "items": [
            *_use_items("過去 30 天"),
            *_SOCIAL,
            {"linkId": "sec_goal", "type": "group", "text": "治療目標"},
            {"linkId": "goal_progress", "type": "choice", "text": "初次評估所訂目標的達成情形", "required": True,
             "options": _choices([("met", "已達成"), ("partly", "部分達成"), ("not", "未達成")])},
            {"linkId": "goal_note", "type": "text", "text": "追蹤說明"},
        ],
    },
)  # fmt: skip

BUILTINS: tuple[Builtin, ...] = (INITIAL, FOLLOW_UP, BSRS5, AUDIT, AUDIT_C, DAST10, CAGE, PHQ9, FTND)
