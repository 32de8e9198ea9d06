"""The instrument engine (A3, A4): golden scoring of every built-in on fixed answer sets, the
definition check (hostile formulas refused at save time), answer checks naming the item,
branching, reverse items, missing-answer rules, subscales, bands and flags."""

from __future__ import annotations

import pytest

from domain.addiction.builtin_instruments import (
    AUDIT,
    AUDIT_C,
    BSRS5,
    BUILTINS,
    CAGE,
    DAST10,
    FTND,
    PHQ9,
)
from domain.addiction.scoring import (
    AnswersRefused,
    DefinitionRefused,
    check_definition,
    clean_answers,
    score_response,
    spec_fingerprint,
)


@pytest.fixture(autouse=True)
def _context(app):
    with app.test_request_context(headers={"Accept-Language": "zh-TW"}):
        yield


def _scored(builtin, answers):
    return score_response(builtin.definition, answers)[1]


@pytest.mark.parametrize("builtin", BUILTINS, ids=lambda b: b.code)
def test_a3_every_builtin_definition_passes_the_check_and_records_source_and_licence(builtin):
    assert check_definition(builtin.definition) is builtin.definition
    assert builtin.source and builtin.licence
    assert builtin.free_use is (builtin.code != "FTND")


# ---------------------------------------------------------------- golden scoring
def test_a3_bsrs5_total_bands_and_the_suicide_item_scored_apart():
    calm = dict(b1="0", b2="1", b3="1", b4="1", b5="2", b6="0")
    result = _scored(BSRS5, calm)
    assert result.scores == {"total": 5} and result.bands == {"total": "一般正常範圍"} and result.flags == []
    mild = dict(calm, b5="3")  # 6
    assert _scored(BSRS5, mild).bands["total"] == "輕度情緒困擾"
    assert _scored(BSRS5, dict(calm, b1="4", b2="4", b3="2")).bands["total"] == "中度情緒困擾"  # 4+4+2+1+2 = 13
    severe = {f"b{n}": "3" for n in range(1, 6)} | {"b6": "0"}
    result = _scored(BSRS5, severe)
    assert result.scores["total"] == 15 and result.bands["total"] == "重度情緒困擾"
    assert [f["name"] for f in result.flags] == ["severe"]
    # The suicidal-ideation item is not in the total, and 2 or more refers whatever the total.
    refer = dict(calm, b1="0", b2="0", b3="0", b4="0", b5="0", b6="2")
    result = _scored(BSRS5, refer)
    assert result.scores["total"] == 0 and [f["name"] for f in result.flags] == ["suicide"]
    assert _scored(BSRS5, dict(refer, b6="1")).flags == []


def test_a3_audit_weights_items_9_and_10_as_0_2_4_and_the_who_zones():
    answers = {f"a{n}": "0" for n in range(1, 9)} | {"a9": "0", "a10": "0"}
    assert _scored(AUDIT, answers).scores["total"] == 0
    answers.update(a1="4", a2="2", a3="1", a9="2")  # 4+2+1+2 = 9
    result = _scored(AUDIT, answers)
    assert result.scores["total"] == 9 and result.bands["total"] == "危險飲酒（第二區）"
    worst = {f"a{n}": "4" for n in range(1, 11)}
    result = _scored(AUDIT, worst)
    assert result.scores["total"] == 40 and result.bands["total"] == "可能酒精依賴（第四區）"
    with pytest.raises(AnswersRefused) as refused:
        score_response(AUDIT.definition, dict(worst, a9="1"))  # 1 is no option of item 9
    assert "a9" in refused.value.errors


def test_a3_audit_c_cut_offs_three_for_women_four_for_men():
    assert _scored(AUDIT_C, {"a1": "1", "a2": "1", "a3": "0"}).bands["total"] == "篩檢陰性"
    assert _scored(AUDIT_C, {"a1": "2", "a2": "1", "a3": "0"}).bands["total"] == "女性篩檢陽性（男性陰性）"
    assert _scored(AUDIT_C, {"a1": "4", "a2": "4", "a3": "4"}).scores["total"] == 12


def test_a3_dast10_item_3_is_scored_on_no():
    no_problem = {f"d{n}": "N" for n in range(1, 11)} | {"d3": "Y"}
    assert _scored(DAST10, no_problem).scores["total"] == 0
    assert _scored(DAST10, dict(no_problem, d3="N")).scores["total"] == 1
    everything = {f"d{n}": "Y" for n in range(1, 11)} | {"d3": "N"}
    result = _scored(DAST10, everything)
    assert result.scores["total"] == 10 and result.bands["total"] == "嚴重"
    assert _scored(DAST10, dict(no_problem, d1="Y", d2="Y", d5="Y")).bands["total"] == "中度"


def test_a3_cage_two_or_more_is_clinically_significant():
    answers = {"c1": "Y", "c2": "N", "c3": "N", "c4": "N"}
    assert _scored(CAGE, answers).bands["total"] == "篩檢陰性"
    assert _scored(CAGE, dict(answers, c4="Y")).bands["total"] == "篩檢陽性（臨床上有意義）"


def test_a3_phq9_bands_and_item_9_flags_whatever_the_total():
    answers = {f"p{n}": "0" for n in range(1, 10)}
    assert _scored(PHQ9, answers).bands["total"] == "極輕微"
    result = _scored(PHQ9, dict(answers, p9="1"))
    assert result.scores["total"] == 1 and [f["name"] for f in result.flags] == ["self_harm"]
    result = _scored(PHQ9, {f"p{n}": "3" for n in range(1, 10)})
    assert result.scores["total"] == 27 and result.bands["total"] == "重度"
    assert _scored(PHQ9, dict(answers, p1="3", p2="3", p3="3", p4="1")).bands["total"] == "中度"  # 10


def test_a3_ftnd_scoring_though_it_ships_disabled():
    answers = {"f1": "a", "f2": "Y", "f3": "first", "f4": "d", "f5": "Y", "f6": "Y"}
    assert _scored(FTND, answers).scores["total"] == 10
    assert _scored(FTND, dict(answers, f1="d", f4="a", f2="N")).bands["total"] == "低度依賴"  # 0+0+1+0+1+1


# ---------------------------------------------------------------- answers
def test_a4_answers_are_checked_per_item_and_unicode_digits_read_as_digits():
    definition = {"items": [
        {"linkId": "age", "type": "integer", "text": "年齡", "min": 12, "max": 100, "required": True},
        {"linkId": "when", "type": "date", "text": "日期"},
        {"linkId": "code", "type": "string", "text": "代碼", "pattern": "[A-Z]{2}[0-9]{2}", "message": "兩個英文字母加兩個數字"},
    ]}  # fmt: skip
    check_definition(definition)
    assert clean_answers(definition, {"age": "４２"}) == {"age": 42}
    with pytest.raises(AnswersRefused) as refused:
        clean_answers(definition, {"age": "1e400", "when": "2025-02-30", "code": "=1+1", "ghost": 1})
    errors = refused.value.errors
    assert set(errors) == {"age", "when", "code", "ghost"}
    assert "年齡" in errors["age"] and "兩個英文字母加兩個數字" in errors["code"]
    with pytest.raises(AnswersRefused) as refused:
        clean_answers(definition, {"age": 7})
    assert "12" in refused.value.errors["age"]
    with pytest.raises(AnswersRefused) as refused:
        clean_answers(definition, {})
    assert list(refused.value.errors) == ["age"]  # required
    with pytest.raises(AnswersRefused):
        clean_answers(definition, ["not", "a", "dict"])


def test_a4_an_answer_to_a_hidden_item_is_refused_and_a_hidden_required_item_is_not_missing():
    from domain.addiction.builtin_instruments import INITIAL

    base = {"substances": ["heroin"], "days_used": "12", "frequency": "3", "route": ["smoke"],
            "employment": "part", "housing": "family", "legal": "deferred", "goals": ["stop"]}  # fmt: skip
    assert clean_answers(INITIAL.definition, base)["days_used"] == 12
    with pytest.raises(AnswersRefused) as refused:
        clean_answers(INITIAL.definition, dict(base, shared_needles="Y"))  # not injecting
    assert list(refused.value.errors) == ["shared_needles"]
    with pytest.raises(AnswersRefused) as refused:
        clean_answers(INITIAL.definition, dict(base, route=["inject"]))  # now it is asked
    assert list(refused.value.errors) == ["shared_needles"]
    with pytest.raises(AnswersRefused) as refused:
        clean_answers(INITIAL.definition, dict(base, days_used="31"))
    assert "請填 0 到 30 天" in refused.value.errors["days_used"]


# ---------------------------------------------------------------- scores of custom questionnaires
LIKERT = {"scales": {"agree": [{"code": str(n), "display": label, "weight": n}
                               for n, label in enumerate(["非常不同意", "不同意", "普通", "同意", "非常同意"], start=1)]},
          "items": [{"linkId": f"q{n}", "type": "likert", "scale": "agree", "text": f"第{n}題"} for n in range(1, 6)],
          "scoring": {"scores": [
              {"name": "total", "label": "總分", "method": "sum", "items": ["q1", "q2", "q3", "q4", "q5"],
               "reverse": ["q5"], "missing": "prorate", "max_missing": 1,
               "bands": [{"min": 5, "max": 12, "label": "低"}, {"min": 13, "max": 25, "label": "高"}]},
              {"name": "first", "label": "前兩題", "method": "mean", "items": ["q1", "q2"], "missing": "zero"},
              {"name": "scaled", "label": "百分制", "formula": "round((total - 5) / 20 * 100)"}],
              "flags": [{"name": "low", "label": "第 1 題非常不同意", "item": "q1", "operator": "<=", "value": 1}]}}  # fmt: skip


def test_a4_reverse_items_subscales_formula_bands_and_flags():
    check_definition(LIKERT)
    result = score_response(LIKERT, {"q1": "5", "q2": "4", "q3": "3", "q4": "2", "q5": "1"})[1]
    # q5 reversed: 1 → 5; total 5+4+3+2+5 = 19
    assert result.scores == {"total": 19, "first": 4.5, "scaled": 70}
    assert result.bands == {"total": "高"} and result.flags == []
    low = score_response(LIKERT, {"q1": "1", "q2": "1", "q3": "1", "q4": "1", "q5": "5"})[1]
    assert low.scores["total"] == 5 and low.bands == {"total": "低"} and low.flags[0]["name"] == "low"


def test_a4_missing_answers_follow_the_scores_explicit_rule():
    # prorate, one missing allowed: (5+4+3+2) * 5/4 = 17.5
    result = score_response(LIKERT, {"q1": "5", "q2": "4", "q3": "3", "q4": "2"})[1]
    assert result.scores["total"] == 17.5
    # two missing: refused, naming the items
    with pytest.raises(AnswersRefused) as refused:
        score_response(LIKERT, {"q1": "5", "q2": "4", "q3": "3"})
    assert "q4" in refused.value.errors["total"] and "q5" in refused.value.errors["total"]
    # zero: a missing item counts 0 in the mean
    assert score_response(LIKERT, {"q1": "5", "q3": "3", "q4": "2", "q5": "1"})[1].scores["first"] == 2.5


def test_a4_the_spec_fingerprint_changes_with_a_weight_not_with_a_label():
    import copy

    relabelled = copy.deepcopy(LIKERT)
    relabelled["items"][0]["text"] = "新的題目文字"
    reweighted = copy.deepcopy(LIKERT)
    reweighted["scales"]["agree"][0]["weight"] = 0
    assert spec_fingerprint(relabelled) == spec_fingerprint(LIKERT) != spec_fingerprint(reweighted)


# ---------------------------------------------------------------- hostile definitions
@pytest.mark.parametrize("formula", [
    "total.__class__", "__import__('os').system('id')", "().__class__.__bases__[0]", "open('/etc/passwd')",
    "'a' * 10", "[x for x in (1, 2)]", "lambda: 1", "total[0]", "unknown + 1", "9 ** 9 ** 9 if 0 else {}",
    "", "1 +", "x" * 600,
])  # fmt: skip
def test_a4_a_formula_reaching_attributes_builtins_or_strings_is_refused_at_save_time(formula):
    definition = {"items": LIKERT["items"], "scales": LIKERT["scales"],
                  "scoring": {"scores": [{"name": "total", "items": ["q1"]}, {"name": "bad", "formula": formula}]}}
    with pytest.raises(DefinitionRefused):
        check_definition(definition)


@pytest.mark.parametrize("definition", [
    None, [], {"items": []}, {"items": "x"}, {"items": [{"linkId": "1bad", "type": "string"}]},
    {"items": [{"linkId": "a", "type": "string"}, {"linkId": "a", "type": "string"}]},
    {"items": [{"linkId": "a", "type": "slider"}]},
    {"items": [{"linkId": "a", "type": "choice"}]},
    {"items": [{"linkId": "a", "type": "choice", "options": [{"code": "1"}, {"code": "1"}]}]},
    {"items": [{"linkId": "a", "type": "choice", "options": [{"code": "1", "weight": "=1+1"}]}]},
    {"items": [{"linkId": "a", "type": "integer", "min": 5, "max": 1}]},
    {"items": [{"linkId": "a", "type": "string", "pattern": "("}]},
    {"items": [{"linkId": "a", "type": "string", "enableWhen": [{"question": "b", "operator": "="}]},
               {"linkId": "b", "type": "string"}]},
    {"items": [{"linkId": "a", "type": "string"}], "scoring": {"scores": [{"name": "s", "items": ["a"]}]}},
    {"items": [{"linkId": f"q{n}", "type": "string"} for n in range(501)]},
])  # fmt: skip
def test_a4_malformed_definitions_are_refused_with_a_message(definition):
    with pytest.raises(DefinitionRefused) as refused:
        check_definition(definition)
    assert str(refused.value)
