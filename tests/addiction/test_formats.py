"""Standard formats in and out (issue 16 item 7, A4), and the columns of an export across
versions with the classification of a version's changes (item 3): round trips of every
built-in through XLSForm and REDCap with the same scores on fixed answer sets, FHIR output
validated by fhir.resources, hostile files refused naming sheet/row/column."""

from __future__ import annotations

import copy
import csv
import io
import json

import pytest
import xlsxwriter
from openpyxl import Workbook, load_workbook

from domain.addiction.builtin_instruments import BSRS5, BUILTINS, DAST10, INITIAL, PHQ9
from domain.addiction.formats import FormatRefused, canonical
from domain.addiction.formats.columns import classify_changes, export_columns, row_values
from domain.addiction.formats.fhir import (
    ITEM_WEIGHT,
    questionnaire,
    questionnaire_response,
    validated,
)
from domain.addiction.formats.redcap import HEADERS, export_redcap, import_redcap, parse_choices
from domain.addiction.formats.xlsform import export_xlsform, import_xlsform
from domain.addiction.scoring import (
    DefinitionRefused,
    options_of,
    score_response,
    shown,
    spec_fingerprint,
)


@pytest.fixture(autouse=True)
def _context(app):
    """Every test inside a zh-TW request, so messages are in zh_TW."""
    with app.test_request_context(headers={"Accept-Language": "zh-TW"}):
        yield


# ---------------------------------------------------------------- fixed answer sets
def answer_sets(definition: dict) -> list[dict]:
    """Four fixed answer sets per definition: every shown item answered, choosing the first,
    the last, and alternating options, so every weight and every branch is met."""
    sets = []
    for seed in range(4):
        answers: dict = {}
        for n, item in enumerate(definition["items"]):
            if item["type"] in ("group", "display") or item["linkId"] not in shown(definition, answers):
                continue
            options = options_of(definition, item)
            pick = (0 if seed == 0 else -1 if seed == 1 else (n + seed)) % max(len(options), 1)
            if item["type"] == "multi":
                answers[item["linkId"]] = sorted({options[pick]["code"], options[-1]["code"]})
            elif options:
                answers[item["linkId"]] = options[pick]["code"]
            elif item["type"] in ("integer", "decimal"):
                low, high = item.get("min", 0), item.get("max", 40)
                answers[item["linkId"]] = [low, high, (low + high) // 2, low + 1][seed]
            elif item["type"] == "date":
                answers[item["linkId"]] = "2025-03-0" + str(seed + 1)
            else:
                answers[item["linkId"]] = f"回答 {seed}"
        sets.append(answers)
    return sets


def same_scores(original: dict, imported: dict) -> None:
    """The imported definition scores every fixed answer set exactly as the original does."""
    for answers in answer_sets(original):
        _, expected = score_response(original, answers)
        _, got = score_response(imported, answers)
        assert (got.scores, got.bands, got.flags, got.spec) == (expected.scores, expected.bands, expected.flags,
                                                                 expected.spec), answers  # fmt: skip


def test_a4_answer_sets_reach_every_branch_of_the_initial_form():
    """The fixed answers are not trivial: INITIAL's injecting branch is met in one of them."""
    assert any("shared_needles" in a for a in answer_sets(INITIAL.definition))
    assert len({json.dumps(score_response(BSRS5.definition, a)[1].scores) for a in answer_sets(BSRS5.definition)}) > 1


# ---------------------------------------------------------------- XLSForm
@pytest.mark.parametrize("builtin", BUILTINS, ids=lambda b: b.code)
def test_a4_xlsform_round_trip_of_every_builtin_keeps_definition_and_scores(builtin):
    """export → import gives the same definition (canonical form) and the same scores."""
    before = copy.deepcopy(builtin.definition)
    form = import_xlsform(export_xlsform(builtin.definition, builtin.title, builtin.code, "3"))
    assert builtin.definition == before  # the export changed nothing
    assert canonical(form.definition) == canonical(builtin.definition)
    assert spec_fingerprint(form.definition) == spec_fingerprint(builtin.definition)
    assert (form.title, form.code, form.version) == (builtin.title, builtin.code, "3")
    same_scores(builtin.definition, form.definition)


def test_a4_xlsform_sheets_carry_weights_in_a_score_column_and_the_scoring_sheet():
    """The workbook is XLSForm: survey/choices/settings, weights as `score`, plus our scoring sheet."""
    book = load_workbook(io.BytesIO(export_xlsform(DAST10.definition, DAST10.title, DAST10.code)), read_only=True)
    assert book.sheetnames == ["survey", "choices", "settings", "scoring"]
    choices = list(book["choices"].iter_rows(values_only=True))
    assert choices[0] == ("list_name", "name", "label", "score")
    assert ("d3", "Y", "是", 0) in choices and ("d3", "N", "否", 1) in choices  # item 3 scored on 否
    survey = list(book["survey"].iter_rows(values_only=True))
    assert ("select_one d3", "d3") == survey[4][:2]
    scoring = [r for r in book["scoring"].iter_rows(values_only=True)]
    assert scoring[1][:3] == ("score", "total", "總分") and scoring[2][0] == "band"


def _workbook(survey: list[list], choices: list[list] | None = None, scoring: list[list] | None = None,
              formula: tuple | None = None) -> bytes:  # fmt: skip
    """An .xlsx with the given sheets (and optionally one real formula cell)."""
    buffer = io.BytesIO()
    book = xlsxwriter.Workbook(buffer, {"in_memory": True, "strings_to_formulas": False})
    for name, rows in (("survey", survey), ("choices", choices), ("scoring", scoring)):
        if rows is None:
            continue
        sheet = book.add_worksheet(name)
        for r, row in enumerate(rows):
            for c, value in enumerate(row):
                if value is not None:
                    sheet.write(r, c, value)
        if formula and formula[0] == name:
            sheet.write_formula(formula[1], formula[2], formula[3])
    book.close()
    return buffer.getvalue()


SURVEY_HEAD = ["type", "name", "label", "required"]
LIKERT = [["list_name", "name", "label", "score"], ["agree", "1", "非常不同意", 1], ["agree", "2", "不同意", 2],
          ["agree", "3", "同意", 3]]  # fmt: skip


def _refused(data: bytes, importer=import_xlsform) -> str:
    """The message of the refusal the importer must raise."""
    with pytest.raises(FormatRefused) as refused:
        importer(data)
    return str(refused.value)


def test_a4_xlsform_a_custom_likert_questionnaire_imports_with_its_scores():
    """A workbook made elsewhere: a shared list, a reversed item and bands in the scoring sheet."""
    data = _workbook([SURVEY_HEAD, ["select_one agree", "q1", "我能控制自己", "yes"],
                      ["select_one agree", "q2", "我常想使用", "yes"], ["integer", "days", "天數", None]],
                     LIKERT, [["kind", "name", "label", "items", "reverse", "score", "min", "max"],
                              ["score", "total", "總分", "q1 q2", "q2"], ["band", None, "低", None, None, "total", 2, 3],
                              ["band", None, "高", None, None, "total", 4, 6]])  # fmt: skip
    form = import_xlsform(data)
    assert form.definition["scales"] == {"agree": [{"code": "1", "display": "非常不同意", "weight": 1},
                                                   {"code": "2", "display": "不同意", "weight": 2},
                                                   {"code": "3", "display": "同意", "weight": 3}]}  # fmt: skip
    _, scored = score_response(form.definition, {"q1": "3", "q2": "3"})
    assert scored.scores == {"total": 4} and scored.bands == {"total": "高"}  # 3 + (3 + 1 − 3)


@pytest.mark.parametrize(("survey", "choices", "where"), [
    ([SURVEY_HEAD, ["select_one agree", "q1", "一"], ["geopoint", "q2", "位置"]], LIKERT,
     ("survey", "第 3 列", "type（A）", "geopoint")),
    ([SURVEY_HEAD, ["select_one agree", "q1", "一"], ["select_one agree", "q1", "二"]], LIKERT,
     ("survey", "第 3 列", "name（B）", "第 2 列")),
    ([SURVEY_HEAD, ["select_one nolist", "q1", "一"]], LIKERT, ("survey", "第 2 列", "type（A）", "nolist")),
    ([SURVEY_HEAD, ["select_one agree", "1q", "一"]], LIKERT, ("survey", "第 2 列", "name（B）")),
    ([SURVEY_HEAD, ["select_one agree", "q1", "一", "maybe"]], LIKERT, ("survey", "第 2 列", "required（D）")),
    ([SURVEY_HEAD + ["relevant"], ["integer", "q1", "一", None, "${q2} = 1"], ["integer", "q2", "二"]], LIKERT,
     ("survey", "第 2 列", "relevant（E）")),
    ([SURVEY_HEAD + ["constraint"], ["integer", "q1", "一", None, ". > 3 or 1=1"]], LIKERT,
     ("survey", "第 2 列", "constraint（E）")),
    ([SURVEY_HEAD + ["choice_filter"], ["select_one agree", "q1", "一", None, "x=1"]], LIKERT,
     ("survey", "第 2 列", "choice_filter（E）")),
    ([SURVEY_HEAD, ["select_one agree", "q1", "一"]], LIKERT + [["agree", "2", "重複", 5]],
     ("choices", "第 5 列", "name（B）", "2")),
    ([SURVEY_HEAD, ["select_one agree", "q1", "一"]], LIKERT + [["agree", "4", "很多", "四分"]],
     ("choices", "第 5 列", "score（D）")),
    ([SURVEY_HEAD, ["begin_repeat", "r1", "重複"]], LIKERT, ("survey", "第 2 列", "type（A）")),
], ids=["unknown-type", "duplicate-name", "missing-list", "bad-name", "bad-required", "branch-forward",
        "bad-constraint", "unsupported-column", "duplicate-code", "score-not-number", "repeat"])  # fmt: skip
def test_a4_xlsform_hostile_workbooks_are_refused_naming_sheet_row_and_column(survey, choices, where):
    """Each fault is refused with a zh_TW message naming its sheet, row and column."""
    message = _refused(_workbook(survey, choices))
    assert message.startswith("工作表")
    for part in where:
        assert part in message, message


def test_a4_xlsform_formula_cells_are_refused_whether_written_as_formula_or_as_text():
    """A formula cell (openpyxl data type f) and a text cell starting with = are both refused."""
    real = _workbook([SURVEY_HEAD, ["integer", "q1", None]], None, formula=("survey", 1, 2, "=HYPERLINK(\"x\")"))
    message = _refused(real)
    assert "survey" in message and "第 2 列" in message and "label（C）" in message and "公式" in message
    book = Workbook()
    sheet = book.active
    sheet.title = "survey"
    sheet.append(SURVEY_HEAD)
    sheet.append(["integer", "q1", "=1+1"])
    buffer = io.BytesIO()
    book.save(buffer)
    assert "label（C）" in _refused(buffer.getvalue())


@pytest.mark.parametrize("calculation", ["${q1}.__class__", "${q1}.__class__.__bases__[0]", "__import__('os')",
                                         "'a' * 10", "q1 if q1 else ().__class__"])  # fmt: skip
def test_a4_xlsform_a_calculation_reaching_attributes_is_refused_naming_the_cell(calculation):
    """`__class__` and friends in a scoring calculation or a calculate row are refused at import."""
    data = _workbook([SURVEY_HEAD, ["select_one agree", "q1", "一"]], LIKERT,
                     [["kind", "name", "label", "calculation"], ["score", "s", "分數", calculation]])  # fmt: skip
    message = _refused(data)
    assert "scoring" in message and "第 2 列" in message and "calculation（D）" in message
    data = _workbook([SURVEY_HEAD + ["calculation"], ["select_one agree", "q1", "一"],
                      ["calculate", "s", "分數", None, calculation]], LIKERT)  # fmt: skip
    message = _refused(data)
    assert "survey" in message and "第 3 列" in message and "calculation（E）" in message


def test_a4_xlsform_a_plain_calculate_row_becomes_a_formula_score():
    """A calculate row of XLSForm is a score whose formula names items as ${x}."""
    form = import_xlsform(_workbook([SURVEY_HEAD + ["calculation"], ["select_one agree", "q1", "一"],
                                     ["calculate", "double", "兩倍", None, "${q1} * 2"]], LIKERT))  # fmt: skip
    assert form.definition["scoring"]["scores"] == [{"name": "double", "label": "兩倍", "formula": "q1 * 2"}]
    assert score_response(form.definition, {"q1": "3"})[1].scores == {"double": 6}


def test_a4_xlsform_huge_and_foreign_files_are_refused_before_parsing():
    """Too many rows (by the sheet's declared size), too many bytes, not a workbook at all."""
    rows = [SURVEY_HEAD] + [["integer", f"q{n}", "題"] for n in range(7000)]
    assert "6000" in _refused(_workbook(rows))
    assert "MB" in _refused(b"PK" + b"\x00" * (3 * 1024 * 1024))
    assert "Excel" in _refused(b"type,name\ninteger,q1\n")
    assert "survey" in _refused(_only_sheet("其他"))


def _only_sheet(name: str) -> bytes:
    """A workbook with one sheet of the given name."""
    buffer = io.BytesIO()
    book = xlsxwriter.Workbook(buffer, {"in_memory": True})
    book.add_worksheet(name).write(0, 0, "type")
    book.close()
    return buffer.getvalue()


def test_a4_xlsform_import_still_checks_the_definition():
    """A workbook that parses but breaks a rule of the engine (a score over a text item) is refused."""
    data = _workbook([SURVEY_HEAD, ["text", "q1", "一"]], None,
                     [["kind", "name", "items"], ["score", "s", "q1"]])  # fmt: skip
    with pytest.raises(DefinitionRefused) as refused:
        import_xlsform(data)
    assert "q1" in str(refused.value)


# ---------------------------------------------------------------- REDCap
@pytest.mark.parametrize("builtin", BUILTINS, ids=lambda b: b.code)
def test_a4_redcap_round_trip_of_every_builtin_keeps_definition_and_scores(builtin):
    """export → import gives the same definition (canonical form) and the same scores."""
    before = copy.deepcopy(builtin.definition)
    text = export_redcap(builtin.definition, builtin.code)
    assert builtin.definition == before
    form = import_redcap(text.encode("utf-8-sig"))  # Excel's "CSV UTF-8" starts with a BOM
    assert canonical(form.definition) == canonical(builtin.definition)
    assert spec_fingerprint(form.definition) == spec_fingerprint(builtin.definition)
    same_scores(builtin.definition, form.definition)


def test_a4_redcap_dictionary_has_redcap_columns_a_matrix_for_likert_and_a_calc_redcap_can_show():
    """Columns are REDCap's; BSRS-5 is a matrix over its scale; the total is a calc field."""
    rows = list(csv.reader(io.StringIO(export_redcap(BSRS5.definition, "BSRS5"))))
    assert rows[0] == HEADERS
    by_name = {r[0]: dict(zip(HEADERS, r, strict=True)) for r in rows[1:]}
    assert by_name["b1"]["Field Type"] == "radio" and by_name["b1"]["Matrix Group Name"] == "bsrs"
    assert by_name["b1"]["Choices, Calculations, OR Slider Labels"].startswith("0, 完全沒有 | 1, 輕微")
    assert by_name["total"]["Field Type"] == "calc"
    assert "@Q-SCORE=" in by_name["total"]["Field Annotation"]
    assert "@Q-FLAG=" in by_name["b6"]["Field Annotation"]  # the suicide item's flag sits on it


def test_a4_redcap_choices_with_commas_in_labels_and_stray_pipes_are_parsed():
    """A label keeps its commas; an empty piece from a stray or doubled pipe is skipped."""
    assert parse_choices("1, 非常不同意, 完全不是 | | 2, 不同意 |  3,同意,，有時 |") == [
        {"code": "1", "display": "非常不同意, 完全不是"}, {"code": "2", "display": "不同意"},
        {"code": "3", "display": "同意,，有時"}]  # fmt: skip


def _dictionary(*rows: dict) -> bytes:
    """A REDCap data dictionary of the given fields."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(HEADERS)
    for row in rows:
        writer.writerow([row.get(h, "") for h in HEADERS])
    return out.getvalue().encode()


def _field(name, kind, label, choices="", **extra) -> dict:
    """One REDCap field; eN=value sets the column HEADERS[N]."""
    row = {"Variable / Field Name": name, "Form Name": "mine", "Field Type": kind, "Field Label": label,
           "Choices, Calculations, OR Slider Labels": choices}  # fmt: skip
    row.update({HEADERS[int(k[1:])]: v for k, v in extra.items()})
    return row


CHOICES_COLUMN = "Choices, Calculations, OR Slider Labels（F）"


@pytest.mark.parametrize(("rows", "where"), [
    ([_field("q1", "radio", "一", "1, 非常不同意 | 2 不同意")], ("第 2 列", CHOICES_COLUMN, "2 不同意")),
    ([_field("q1", "radio", "一", "1, a"), _field("q2", "radio", "二", "1, a | 1, b")], ("第 3 列", CHOICES_COLUMN, "1")),
    ([_field("q1", "radio", "一", " | ")], ("第 2 列", CHOICES_COLUMN)),
    ([_field("q1", "radio", "一", "a b, 有空白")], ("第 2 列", CHOICES_COLUMN)),
    ([_field("q1", "slider", "一")], ("第 2 列", "Field Type（D）", "slider")),
    ([_field("q1", "text", "一"), _field("q1", "text", "二")], ("第 3 列", "Variable / Field Name（A）", "第 2 列")),
    ([_field("q1", "text", "一", e7="email")], ("第 2 列", "Text Validation Type OR Show Slider Number（H）")),
    ([_field("q1", "text", "=cmd|' /C calc'!A0")], ("第 2 列", "Field Label（E）", "公式")),
    ([_field("q1", "radio", "一", "1, a"), _field("t", "calc", "總", "[q1].__class__")], ("第 3 列", CHOICES_COLUMN)),
    ([_field("q1", "radio", "一", "1, a", e11="[q2] = '1'"), _field("q2", "radio", "二", "1, a")],
     ("第 2 列", "Branching Logic (Show field only if...)（L）")),
    ([_field("q1", "radio", "一", "1, a", e17="@Q-WEIGHTS={1: 2}")], ("第 2 列", "Field Annotation（R）")),
    ([_field("q1", "text", "一", e12="maybe")], ("第 2 列", "Required Field?（M）")),
], ids=["no-comma", "duplicate-code", "only-pipes", "bad-code", "unsupported-type", "duplicate-name",
        "unsupported-validation", "formula-label", "calc-attribute", "branch-forward", "bad-weights-json",
        "bad-required"])  # fmt: skip
def test_a4_redcap_broken_dictionaries_are_refused_naming_row_and_column(rows, where):
    """Each fault (a broken choices string first) is refused naming its row and column."""
    message = _refused(_dictionary(*rows), import_redcap)
    assert message.startswith("檔案「REDCap 資料字典」"), message
    for part in where:
        assert part in message, message


def test_a4_redcap_files_that_are_not_dictionaries_are_refused():
    """Foreign header, not UTF-8, too large, too many rows, no rows."""
    assert "Colour（A）" in _refused(b"Colour,Form Name\nq1,x\n", import_redcap)
    assert "UTF-8" in _refused(_dictionary(_field("q1", "text", "一")).decode().encode("utf-16"), import_redcap)
    assert "MB" in _refused(b"x" * (3 * 1024 * 1024), import_redcap)
    many = _dictionary(*[_field(f"q{n}", "text", "題") for n in range(6100)])
    assert "6000" in _refused(many, import_redcap)
    assert _refused(_dictionary(), import_redcap)


@pytest.mark.parametrize("change", [
    lambda d: d["items"][0].update(linkId="Q1"),
    lambda d: d["scales"]["agree"][0].update(code="1,5"),
    lambda d: d["scales"]["agree"][0].update(display="不同意 | 很不同意"),
], ids=["uppercase-name", "comma-in-code", "pipe-in-label"])  # fmt: skip
def test_a4_redcap_export_refuses_what_redcap_cannot_carry_naming_the_item(change):
    """Rather than a dictionary that reads back wrong, the export names the item REDCap cannot carry."""
    definition = copy.deepcopy(V1)
    change(definition)
    definition["scoring"]["scores"][0]["items"] = ["q2"] if definition["items"][0]["linkId"] == "Q1" else ["q1", "q2"]
    with pytest.raises(FormatRefused) as refused:
        export_redcap(definition)
    assert ("Q1" if definition["items"][0]["linkId"] == "Q1" else "q1") in str(refused.value)


def test_a4_redcap_weights_are_the_codes_when_numeric_and_a_plain_sum_is_read_as_a_sum():
    """REDCap's own convention: a numeric code is its weight; sum([a],[b]) counts blanks as 0."""
    form = import_redcap(_dictionary(
        _field("q1", "radio", "一", "1, 從不 | 2, 有時 | 3, 常常"), _field("q2", "radio", "二", "1, 從不 | 2, 有時 | 3, 常常"),
        _field("total", "calc", "總分", "sum([q1],[q2])")))  # fmt: skip
    assert [o["weight"] for o in form.definition["items"][0]["options"]] == [1, 2, 3]
    assert form.definition["scoring"]["scores"][0] == {"name": "total", "label": "總分", "method": "sum",
                                                       "items": ["q1", "q2"], "missing": "zero"}  # fmt: skip
    assert score_response(form.definition, {"q1": "3"})[1].scores == {"total": 3}
    yes_no = import_redcap(_dictionary(_field("q1", "yesno", "是否")))
    assert yes_no.definition["items"][0]["type"] == "boolean"


# ---------------------------------------------------------------- FHIR
def _link_ids(items: list[dict]) -> set[str]:
    """Every linkId of a FHIR item tree."""
    found = set()
    for item in items:
        found.add(item["linkId"])
        found |= _link_ids(item.get("item", []))
    return found


@pytest.mark.parametrize("builtin", BUILTINS, ids=lambda b: b.code)
def test_a4_fhir_questionnaire_of_every_builtin_validates_with_weights_and_branching(builtin):
    """Validated by fhir.resources R4B; every weight is an itemWeight; every item and enableWhen is there."""
    from fhir.resources.R4B.questionnaire import Questionnaire

    resource = questionnaire(builtin.definition, builtin.code, "2", builtin.title)
    model = Questionnaire.model_validate(json.loads(json.dumps(resource)))
    assert model.version == "2" and model.title == builtin.title
    ids = _link_ids(resource["item"])
    assert {i["linkId"] for i in builtin.definition["items"]} <= ids
    weights = [o for o in _options(resource["item"]) if o.get("extension")]
    expected = sum(1 for i in builtin.definition["items"] if i["type"] in ("likert", "choice", "multi", "boolean")
                   for o in options_of(builtin.definition, i) if o.get("weight") is not None)  # fmt: skip
    assert len(weights) == expected
    assert all(o["extension"][0]["url"] == ITEM_WEIGHT for o in weights)
    conditions = sum(len(i.get("enableWhen") or []) for i in builtin.definition["items"])
    assert sum(len(i.get("enableWhen", [])) for i in _all(resource["item"])) == conditions


def _all(items):
    """Every node of a FHIR item tree."""
    for item in items:
        yield item
        yield from _all(item.get("item", []))


def _options(items):
    """Every answerOption of a FHIR item tree."""
    for item in _all(items):
        yield from item.get("answerOption", [])


@pytest.mark.parametrize("builtin", [BSRS5, PHQ9, INITIAL, DAST10], ids=lambda b: b.code)
def test_a4_fhir_questionnaire_response_carries_answers_and_scores_and_validates(builtin):
    """Each fixed answer set as a QuestionnaireResponse: valid, linkIds of the Questionnaire, the scores."""
    from fhir.resources.R4B.questionnaireresponse import QuestionnaireResponse

    q_ids = _link_ids(questionnaire(builtin.definition, builtin.code)["item"])
    for answers in answer_sets(builtin.definition):
        clean, scored = score_response(builtin.definition, answers)
        resource = questionnaire_response(builtin.definition, clean, scored, builtin.code, identifier="r1",
                                          subject="Patient/7")  # fmt: skip
        QuestionnaireResponse.model_validate(json.loads(json.dumps(resource)))
        assert _link_ids(resource["item"]) <= q_ids
        got = {i["linkId"]: i["answer"][0] for i in _all(resource["item"]) if i.get("answer")}
        for name, value in scored.scores.items():
            assert got[f"score:{name}"] == {"valueDecimal": value}
        for link, value in clean.items():
            answer = next(iter(got[link].values()))
            answer = answer["code"] if isinstance(answer, dict) else answer
            assert answer in (value if isinstance(value, list) else [value])


def test_a4_fhir_bsrs5_suicide_flag_is_in_the_response_whatever_the_total():
    """The flag scored apart travels as its own answer."""
    clean, scored = score_response(BSRS5.definition, dict(b1="0", b2="0", b3="0", b4="0", b5="0", b6="2"))
    resource = questionnaire_response(BSRS5.definition, clean, scored, "BSRS5")
    flags = {i["linkId"]: i["answer"][0]["valueBoolean"] for i in _all(resource["item"]) if i["linkId"].startswith("flag:")}
    assert flags == {"flag:suicide": True, "flag:severe": False}


def test_a4_fhir_an_invalid_resource_is_refused_not_emitted():
    """What fhir.resources refuses (an item without its linkId, a field FHIR does not have) is not handed out."""
    for resource in ({"resourceType": "Questionnaire", "status": "active", "item": [{"type": "group"}]},
                     {"resourceType": "QuestionnaireResponse", "status": "completed", "score": 3}):
        with pytest.raises(FormatRefused) as refused:
            validated(resource)
        assert "FHIR" in str(refused.value)


# ---------------------------------------------------------------- version changes (item 3)
V1 = {
    "scales": {"agree": [{"code": "1", "display": "不同意", "weight": 1}, {"code": "2", "display": "同意", "weight": 2}]},
    "items": [
        {"linkId": "q1", "type": "likert", "text": "我睡得好", "scale": "agree", "required": True},
        {"linkId": "q2", "type": "choice", "text": "頻率", "options": [
            {"code": "a", "display": "從不", "weight": 0}, {"code": "b", "display": "有時", "weight": 1},
            {"code": "c", "display": "常常", "weight": 2}]},
        {"linkId": "used", "type": "multi", "text": "使用的物質", "options": [
            {"code": "alcohol", "display": "酒精"}, {"code": "meth", "display": "安非他命"},
            {"code": "k", "display": "愷他命"}]},
        {"linkId": "note", "type": "text", "text": "備註"},
    ],
    "scoring": {"scores": [{"name": "total", "label": "總分", "items": ["q1", "q2"]}]},
}  # fmt: skip


def _v2(**changes):
    """A copy of V1 with the changes applied."""
    definition = copy.deepcopy(V1)
    for change in changes.values():
        change(definition)
    return definition


def _items(definition):
    """A definition's items by linkId."""
    return {i["linkId"]: i for i in definition["items"]}


@pytest.mark.parametrize(("change", "kind", "safe"), [
    (lambda d: _items(d)["q1"].update(text="我睡得很好"), "label", True),
    (lambda d: _items(d)["q1"].update(help="指過去一週"), "help", True),
    (lambda d: d["items"].append({"linkId": "q9", "type": "integer", "text": "新題"}), "added", True),
    (lambda d: d["items"].append({"linkId": "q9", "type": "integer", "text": "新題", "required": True}),
     "added_required", False),
    (lambda d: d["items"].pop(3), "removed", False),
    (lambda d: _items(d)["q2"]["options"].pop(1), "choice_removed", False),
    (lambda d: _items(d)["q2"]["options"][2].update(code="z"), "choice_recoded", False),
    (lambda d: _items(d)["q2"]["options"][2].update(weight=3), "weight", False),
    (lambda d: _items(d)["q2"]["options"][2].update(display="經常"), "choice_label", True),
    (lambda d: _items(d)["note"].update(type="string"), "type", False),
    (lambda d: d["scoring"]["scores"][0].update(reverse=["q1"]), "scoring", False),
    (lambda d: d["scoring"]["scores"][0].update(label="合計"), "score_label", True),
    (lambda d: d["scales"]["agree"][1].update(weight=3), "weight", False),
    (lambda d: _items(d)["note"].update(required=True), "required", False),
    (lambda d: _items(d)["q2"].update(enableWhen=[{"question": "q1", "operator": "=", "answer": "2"}]),
     "branching", False),
], ids=["label", "help", "new-optional", "new-required", "removed-item", "removed-choice", "recoded-choice",
        "weight", "choice-label", "type", "scoring", "score-label", "scale-weight", "now-required",
        "branching"])  # fmt: skip
def test_a4_classify_changes_safe_and_breaking(change, kind, safe):
    """Label/help: safe; new optional: safe; new required, removed item, recoded or removed choice,
    changed type or weight, changed scoring: breaking — each with a zh_TW description."""
    changes = classify_changes(V1, _v2(c=change))
    assert [(c.kind, c.safe) for c in changes] == [(kind, safe)], changes
    assert changes[0].link_id in changes[0].description or "總分" in changes[0].description or \
        "合計" in changes[0].description


def test_a4_classify_a_renamed_scale_with_the_same_options_is_no_change():
    """Options are compared as the items see them: a scale's new name alone changes nothing."""
    renamed = _v2(c=lambda d: (d["scales"].update(yes=d["scales"].pop("agree")), _items(d)["q1"].update(scale="yes")))
    assert classify_changes(V1, renamed) == []
    assert classify_changes(V1, copy.deepcopy(V1)) == []


def test_a4_cross_version_columns_keep_every_answer_in_its_own_column():
    """v2 removes a multi's choice and recodes another (and a single choice): every answer of
    v1 and v2 lands in the column of its own code; no answer moves into another's column."""
    v2 = _v2(c=lambda d: _items(d)["used"]["options"].pop(1),  # 安非他命 removed
             r=lambda d: _items(d)["used"]["options"][1].update(code="ketamine"),  # 愷他命 recoded k → ketamine
             s=lambda d: _items(d)["q2"]["options"][2].update(code="often"))  # 常常 recoded c → often
    columns = export_columns([V1, v2])
    assert [c.key for c in columns] == ["q1", "q2", "used:alcohol", "used:meth", "used:k", "used:ketamine", "note",
                                        "score:total"]  # fmt: skip
    header = {c.key: c.header for c in columns}
    assert header["used:meth"] == "使用的物質：安非他命（舊版才有）" and columns[3].current is False
    assert header["used:ketamine"] == "使用的物質：愷他命" and columns[5].current is True
    old = row_values(V1, {"q1": "2", "q2": "c", "used": ["meth", "k"]}, columns, {"total": 4})
    new = row_values(v2, {"q1": "1", "q2": "often", "used": ["ketamine"]}, columns, {"total": 3})
    assert old == ["2", "c", 0, 1, 1, None, None, 4]
    assert new == ["1", "often", 0, None, None, 1, None, 3]
    # Labels come from each response's own version, so the recoded 常常 reads the same in both.
    assert row_values(V1, {"q2": "c"}, columns, labels=True)[1] == row_values(v2, {"q2": "often"}, columns,
                                                                               labels=True)[1] == "常常"  # fmt: skip
    kinds = {(c.link_id, c.kind) for c in classify_changes(V1, v2)}
    assert {("used", "choice_removed"), ("used", "choice_recoded"), ("q2", "choice_recoded")} <= kinds


def test_a4_cross_version_columns_are_stable_when_a_version_adds_items_in_the_middle():
    """A new item takes its place after the item it follows; earlier columns keep their order."""
    v2 = _v2(c=lambda d: d["items"].insert(1, {"linkId": "q1b", "type": "integer", "text": "新"}))
    v3 = _v2(c=lambda d: d["items"].pop(0))
    keys = [c.key for c in export_columns([V1, v2, v3])]
    assert keys == ["q1", "q1b", "q2", "used:alcohol", "used:meth", "used:k", "note", "score:total"]


# ---------------------------------------------------------------- never a 500
HOSTILE = ["", "=1+1", "%", "%(x)s", "１２", "٣", "1e999", "-0", "NaN", "x" * 5000, "a|b|,|", "[b1].__class__",
           "@Q-SCORE={\"items\": 5}", "@Q-SCORE={\"weights\": [1]}", "@Q-FLAG={\"label\": \"x\", \"item\": [\"a\"]}",
           "@Q-WEIGHTS=" + "[" * 3000, "@Q-SCORE={\"bands\": [{\"min\": 1e308, \"max\": \"x\", \"label\": 1}]}",
           "sum([b1],[nope])", "${b1}.__class__", "selected(${b1}, 'x') and or", "regex(., '(')", ". >= 1e400",
           "\u202e\u0000", "begin_repeat", "select_one", "select_one bsrs extra"]  # fmt: skip


def test_a4_hostile_cells_anywhere_in_a_redcap_dictionary_are_refused_never_a_500():
    """Every cell of an exported dictionary replaced in turn by hostile values: each import
    succeeds or refuses with a zh_TW UserError; nothing else escapes."""
    rows = list(csv.reader(io.StringIO(export_redcap(BSRS5.definition, "BSRS5"))))
    outcomes = set()
    for r in range(1, len(rows)):
        for c in range(len(HEADERS)):
            for value in HOSTILE[(r + c) % 5::5]:
                mutated = [list(row) for row in rows]
                mutated[r][c] = value
                out = io.StringIO()
                csv.writer(out).writerows(mutated)
                try:
                    import_redcap(out.getvalue().encode())
                    outcomes.add("ok")
                except (FormatRefused, DefinitionRefused) as refusal:
                    assert str(refusal)
                    outcomes.add("refused")
    assert outcomes == {"ok", "refused"}


def test_a4_hostile_cells_anywhere_in_an_xlsform_workbook_are_refused_never_a_500():
    """The same for every cell of an exported workbook's survey, choices and scoring sheets."""
    book = load_workbook(io.BytesIO(export_xlsform(BSRS5.definition, BSRS5.title, BSRS5.code)))
    sheets = {s.title: [list(r) for r in s.iter_rows(values_only=True)] for s in book.worksheets}
    outcomes = set()
    for name in ("survey", "choices", "scoring"):
        for r in range(1, len(sheets[name])):
            for c in range(len(sheets[name][0])):
                value = HOSTILE[(r * 7 + c) % len(HOSTILE)]
                mutated = {k: [list(row) for row in v] for k, v in sheets.items()}
                mutated[name][r][c] = value
                buffer = io.BytesIO()
                out = xlsxwriter.Workbook(buffer, {"in_memory": True, "strings_to_formulas": False})
                for title, rows in mutated.items():
                    sheet = out.add_worksheet(title)
                    for i, row in enumerate(rows):
                        for j, cell in enumerate(row):
                            if cell is not None:
                                sheet.write_string(i, j, str(cell)) if isinstance(cell, str) else sheet.write(i, j, cell)
                out.close()
                try:
                    import_xlsform(buffer.getvalue())
                    outcomes.add("ok")
                except (FormatRefused, DefinitionRefused) as refusal:
                    assert str(refusal)
                    outcomes.add("refused")
    assert outcomes == {"ok", "refused"}


def test_a4_numbers_in_files_read_unicode_digits_and_refuse_the_absurd():
    """１２ reads as 12; 1e999 (which would overflow a score) is refused naming its cell."""
    form = import_xlsform(_workbook([SURVEY_HEAD + ["constraint"], ["integer", "q1", "一", None, ". <= 30"]],
                                    None))  # fmt: skip
    assert form.definition["items"][0]["max"] == 30
    data = _workbook([SURVEY_HEAD, ["select_one agree", "q1", "一"]],
                     [["list_name", "name", "label", "score"], ["agree", "1", "一", "１２"], ["agree", "2", "二", "1e999"]])
    assert "score（D）" in _refused(data) and "第 3 列" in _refused(data)
