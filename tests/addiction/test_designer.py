"""A4: questionnaires an institution designs itself, through the designer screen's POSTs —
a Likert questionnaire with a reverse item designed, scored and published; published
versions never edited; breaking changes shown before publishing; hostile input refused with
the form kept and nothing stored; another institution's questionnaire a 404; bureau and
ministry read-only (the ministry shares nationally)."""

from __future__ import annotations

import itertools

from sqlalchemy import func, select

from domain.addiction.assessments import usable_instruments
from domain.addiction.scoring import score_response
from models.addiction.instrument import Instrument, InstrumentVersion
from tests.addiction.test_assessments import acting
from tests.conftest import post_form, visible_text

_codes = itertools.count(1)
LIKERT = ["我能拒絕別人遞來的酒", "我有可以求助的人", "我常想要使用藥物", "我知道壓力大時怎麼辦", "我對戒除有信心"]


def _create(app, client, title="因應自信量表") -> Instrument:
    """A new questionnaire through the list page's form; returns the stored row."""
    code = f"cope{next(_codes)}"
    response = post_form(app, client, "/questionnaire/create", {"code": code, "title": title})
    assert response.status_code == 302, visible_text(response.text)
    from core.extensions import db

    return db.session.scalar(select(Instrument).where(Instrument.code == code))


def _add_likert(app, client, pk, link, text):
    """One 5-point agreement item through the item editor."""
    return post_form(app, client, f"/questionnaire/{pk}/item", {
        "linkId": link, "type": "likert", "text": text, "required": "y", "scale": "agree5"})  # fmt: skip


def _design(app, db, client) -> Instrument:
    """The 5-item Likert questionnaire with q3 reversed, bands, designed through the screen."""
    instrument = _create(app, client)
    for number, text in enumerate(LIKERT, start=1):
        assert _add_likert(app, client, instrument.id, f"q{number}", text).status_code == 302
    response = post_form(app, client, f"/questionnaire/{instrument.id}/scoring", {
        "label": "總分", "method": "sum", "missing": "refuse", "items": [f"q{n}" for n in range(1, 6)],
        "reverse": ["q3"], "bands": "5-12 低\n13-19 中\n20-25 高", "flags": "q3 >= 4 需轉介"})  # fmt: skip
    assert response.status_code == 302, visible_text(response.text)
    db.session.expire_all()
    return instrument


def _publish(app, client, pk):
    """The publish page, then its confirmation."""
    page = client.get(f"/questionnaire/{pk}/publish")
    assert page.status_code == 200
    response = post_form(app, client, f"/questionnaire/{pk}/publish", {"confirm": "yes"})
    assert response.status_code == 302, visible_text(response.text)
    return page


def test_a4_likert_with_reverse_item_designed_published_and_scored(app, db, login_as):
    """A4: designed through the POSTs, published; score_response matches hand computation
    (q3 reversed: 6 − answer); the institution can now use it like a built-in."""
    client = login_as("psy_tpe")
    instrument = _design(app, db, client)
    preview = client.get(f"/questionnaire/{instrument.id}/preview")
    assert preview.status_code == 200 and "likert-matrix" in preview.text and "非常同意" in preview.text
    page = _publish(app, client, instrument.id)
    assert "第一個版本" in visible_text(page.text) or "first version" in page.text
    db.session.expire_all()
    version = db.session.scalar(select(InstrumentVersion).where(InstrumentVersion.instrument_id == instrument.id))
    assert version.status == "published" and version.published_at is not None and version.spec
    answers = {"q1": "4", "q2": "5", "q3": "2", "q4": "3", "q5": "4"}
    _clean, scored = score_response(version.definition, answers)
    assert scored.scores["total"] == 4 + 5 + (6 - 2) + 3 + 4 == 20
    assert scored.bands["total"] == "高" and scored.flags == []
    _clean, scored = score_response(version.definition, {**answers, "q3": "5"})
    assert scored.scores["total"] == 4 + 5 + 1 + 3 + 4 and scored.bands["total"] == "中"
    assert [f["label"] for f in scored.flags] == ["需轉介"]
    with acting(app, db, "psy_tpe"):
        assert instrument.id in {i.id for i in usable_instruments()}
    with acting(app, db, "cm_khh"):
        assert instrument.id not in {i.id for i in usable_instruments()}


def test_a4_editing_after_publishing_makes_v2_and_v1_stays(app, db, login_as):
    """A4: a published version is never edited; the first edit makes draft v2 copied from v1."""
    client = login_as("psy_tpe")
    instrument = _design(app, db, client)
    _publish(app, client, instrument.id)
    db.session.expire_all()
    v1 = db.session.scalar(select(InstrumentVersion).where(InstrumentVersion.instrument_id == instrument.id))
    before = (v1.definition, v1.spec, v1.published_at)
    response = post_form(app, client, f"/questionnaire/{instrument.id}/item?link=q1", {
        "link": "q1", "linkId": "q1", "type": "likert", "text": "我能拒絕朋友遞來的酒", "required": "y",
        "scale": "agree5"})  # fmt: skip
    assert response.status_code == 302
    db.session.expire_all()
    versions = db.session.scalars(select(InstrumentVersion).where(InstrumentVersion.instrument_id == instrument.id)
                                  .order_by(InstrumentVersion.number)).all()  # fmt: skip
    assert [(v.number, v.status) for v in versions] == [(1, "published"), (2, "draft")]
    assert (versions[0].definition, versions[0].spec, versions[0].published_at) == before
    assert versions[1].definition["items"][0]["text"] == "我能拒絕朋友遞來的酒"
    assert versions[0].definition["items"][0]["text"] == LIKERT[0]
    _publish(app, client, instrument.id)
    db.session.expire_all()
    v2 = db.session.get(InstrumentVersion, versions[1].id)
    assert v2.status == "published" and [c["kind"] for c in v2.changes] == ["label"]
    assert all(c["safe"] for c in v2.changes)


def test_a4_publish_lists_a_removed_choice_as_breaking(app, db, login_as):
    """A4: removing a choice is a breaking change, listed in words before publishing and kept on the version."""
    client = login_as("psy_tpe")
    instrument = _create(app, client)
    post_form(app, client, f"/questionnaire/{instrument.id}/item", {
        "linkId": "use", "type": "choice", "text": "過去30天使用頻率", "required": "y",
        "options": "0|沒有|0\n1|偶爾|1\n2|經常|2"})  # fmt: skip
    _publish(app, client, instrument.id)
    post_form(app, client, f"/questionnaire/{instrument.id}/item?link=use", {
        "link": "use", "linkId": "use", "type": "choice", "text": "過去30天使用頻率", "required": "y",
        "options": "0|沒有|0\n1|偶爾|1"})  # fmt: skip
    page = client.get(f"/questionnaire/{instrument.id}/publish")
    text = visible_text(page.text)
    assert "重大變更" in text and "經常" in text and "breaking-warning" in page.text
    _publish(app, client, instrument.id)
    db.session.expire_all()
    v2 = db.session.scalars(select(InstrumentVersion).where(InstrumentVersion.instrument_id == instrument.id)
                            .order_by(InstrumentVersion.number.desc())).first()  # fmt: skip
    assert v2.number == 2 and any(c["kind"] == "choice_removed" and not c["safe"] for c in v2.changes)


def _stored(db, pk):
    """The instrument's versions' definitions as stored now."""
    db.session.expire_all()
    return [v.definition for v in db.session.scalars(
        select(InstrumentVersion).where(InstrumentVersion.instrument_id == pk).order_by(InstrumentVersion.number))]


def test_a4_hostile_input_refused_form_kept_nothing_stored(app, db, login_as):
    """A4: a formula reaching __class__, 5,000-char text, %, Unicode digits in bands, a
    duplicate item code: a zh_TW message naming the item, the form as typed, nothing stored."""
    client = login_as("psy_tpe")
    instrument = _design(app, db, client)
    before = _stored(db, instrument.id)
    cases = [
        (f"/questionnaire/{instrument.id}/item", {"linkId": "q6", "type": "likert", "text": "=A1.__class__",
                                                  "scale": "agree5"}, "=A1.__class__"),
        (f"/questionnaire/{instrument.id}/item", {"linkId": "q6", "type": "text", "text": "長" * 5000}, "過長"),
        (f"/questionnaire/{instrument.id}/item", {"linkId": "q1", "type": "likert", "text": "重複 100%",
                                                  "scale": "agree5"}, "重複 100%"),
        (f"/questionnaire/{instrument.id}/item", {"linkId": "q6", "type": "choice", "text": "頻率 %s %(x)s",
                                                  "options": "0|從不|０"}, "頻率 %s %(x)s"),
        (f"/questionnaire/{instrument.id}/scoring", {"method": "sum", "missing": "refuse", "items": ["q1"],
                                                     "bands": "０-５ 低"}, "０-５ 低"),
        (f"/questionnaire/{instrument.id}/scoring", {"method": "sum", "missing": "refuse", "items": ["q1"],
                                                     "flags": "q1 >= 2 =cmd|' /C calc'!A0"}, "calc"),
    ]
    for url, data, kept in cases:
        response = post_form(app, client, url, data)
        assert response.status_code == 200, (url, data["text"][:20] if "text" in data else data)
        assert "alert-danger" in response.text
        assert kept in visible_text(response.text) or kept in response.text, kept
        assert _stored(db, instrument.id) == before
    duplicate = post_form(app, client, f"/questionnaire/{instrument.id}/item",
                          {"linkId": "q1", "type": "likert", "text": "另一題", "scale": "agree5"})
    assert "題目代碼 q1 重複" in visible_text(duplicate.text) and "另一題" in duplicate.text
    code_taken = post_form(app, client, "/questionnaire/create", {"code": instrument.code, "title": "同代碼"})
    assert code_taken.status_code == 200 and "同代碼" in code_taken.text
    assert db.session.scalar(select(func.count(Instrument.id)).where(Instrument.code == instrument.code)) == 1
    huge = post_form(app, client, "/questionnaire/create", {"code": "x" * 5000, "title": "t"})
    assert huge.status_code == 200 and "alert-danger" in huge.text


def test_a4_another_institutions_questionnaire_is_404(app, db, login_as):
    """A4 scope: cm_khh (another institution, another county) gets 404 for psy_tpe's
    questionnaire by URL and by POST, and changes nothing."""
    owner = login_as("psy_tpe")
    instrument = _design(app, db, owner)
    before = _stored(db, instrument.id)
    other = login_as("cm_khh")
    for url in ("", "/preview", "/scoring", "/item", "/publish", "/xlsform/1"):
        assert other.get(f"/questionnaire/{instrument.id}{url}").status_code == 404, url
    for url, data in (("/item", {"linkId": "q9", "type": "boolean", "text": "x"}), ("/move", {"link": "q1"}),
                      ("/delete_item", {"link": "q1"}), ("/publish", {"confirm": "yes"}),
                      ("/share", {"sharing": "county"}), ("/scoring", {"method": "sum"})):  # fmt: skip
        assert post_form(app, other, f"/questionnaire/{instrument.id}{url}", data).status_code == 404, url
    assert _stored(db, instrument.id) == before
    assert instrument.title not in other.get("/questionnaire/list").text


def test_a4_bureau_reads_county_shared_ministry_shares_nationally(app, db, login_as):
    """A4 sharing: the 臺北市 bureau reads its county's questionnaires (no edit), 高雄市 does
    not until it is shared nationally, which only the ministry does; the owner shares with
    the county."""
    owner = login_as("psy_tpe")
    instrument = _design(app, db, owner)
    _publish(app, owner, instrument.id)
    bureau = login_as("bureau_tpe")
    refused = post_form(app, owner, f"/questionnaire/{instrument.id}/share", {"sharing": "national"},
                        follow_redirects=True)  # fmt: skip
    assert "衛生福利部" in visible_text(refused.text) or "全國" in visible_text(refused.text)
    assert post_form(app, owner, f"/questionnaire/{instrument.id}/share", {"sharing": "county"}).status_code == 302
    page = bureau.get(f"/questionnaire/{instrument.id}")
    assert page.status_code == 200 and "add-item" not in page.text and "share-form" not in page.text
    assert post_form(app, bureau, f"/questionnaire/{instrument.id}/scoring", {"method": "sum"}).status_code == 403
    assert login_as("bureau_khh").get(f"/questionnaire/{instrument.id}").status_code == 404
    ministry = login_as("ministry")
    assert "share-form" in ministry.get(f"/questionnaire/{instrument.id}").text
    assert post_form(app, ministry, f"/questionnaire/{instrument.id}/share", {"sharing": "national"}).status_code == 302
    assert post_form(app, ministry, f"/questionnaire/{instrument.id}/item", {"linkId": "q9"}).status_code in (403, 404)
    db.session.expire_all()
    assert db.session.get(Instrument, instrument.id).sharing == "national"
    assert login_as("cm_khh").get(f"/questionnaire/{instrument.id}").status_code == 200
    assert login_as("bureau_khh").get(f"/questionnaire/{instrument.id}").status_code == 200
    assert "add-item" not in login_as("cm_khh").get(f"/questionnaire/{instrument.id}").text


def test_a4_xlsform_download_and_import_round_trip(app, db, login_as):
    """A4: 下載 XLSForm of v1 imported into another questionnaire's draft gives the same
    scores; a broken workbook is refused naming sheet, row and column."""
    import io

    from openpyxl import Workbook

    client = login_as("psy_tpe")
    instrument = _design(app, db, client)
    _publish(app, client, instrument.id)
    download = client.get(f"/questionnaire/{instrument.id}/xlsform/1")
    assert download.status_code == 200 and download.data[:2] == b"PK"
    target = _create(app, client, "匯入的問卷")
    response = client.post(f"/questionnaire/{target.id}/import", data={
        "file": (io.BytesIO(download.data), "form.xlsx"), "csrf_token": _csrf(app, client)},
        content_type="multipart/form-data")  # fmt: skip
    assert response.status_code == 302
    original, imported = _stored(db, instrument.id)[0], _stored(db, target.id)[0]
    answers = {"q1": "1", "q2": "2", "q3": "5", "q4": "4", "q5": "3"}
    assert score_response(original, answers)[1].scores == score_response(imported, answers)[1].scores
    book = Workbook()
    sheet = book.active
    sheet.title = "survey"
    sheet.append(["type", "name", "label"])
    sheet.append(["select_one nolist", "q1", "x"])
    data = io.BytesIO()
    book.save(data)
    refused = client.post(f"/questionnaire/{target.id}/import", data={
        "file": (io.BytesIO(data.getvalue()), "bad.xlsx"), "csrf_token": _csrf(app, client)},
        content_type="multipart/form-data", follow_redirects=True)  # fmt: skip
    text = visible_text(refused.text)
    assert "survey" in text and "2" in text and "alert-danger" in refused.text
    assert _stored(db, target.id)[0] == imported


def _csrf(app, client):
    """The session's CSRF token."""
    from tests.conftest import csrf_token

    return csrf_token(app, client)


def test_a4_move_delete_subscales_and_weighted_sum(app, db, login_as):
    """A4: 上移 reorders the draft; 刪除 drops the item from the total and its reverse list;
    a weighted total and a subscale score as computed by hand."""
    client = login_as("psy_tpe")
    instrument = _design(app, db, client)
    assert post_form(app, client, f"/questionnaire/{instrument.id}/move",
                     {"link": "q3", "direction": "up"}).status_code == 302  # fmt: skip
    assert [i["linkId"] for i in _stored(db, instrument.id)[-1]["items"]] == ["q1", "q3", "q2", "q4", "q5"]
    assert post_form(app, client, f"/questionnaire/{instrument.id}/delete_item", {"link": "q3"}).status_code == 302
    definition = _stored(db, instrument.id)[-1]
    total = definition["scoring"]["scores"][0]
    assert "q3" not in total["items"] and "q3" not in total.get("reverse", [])
    assert definition["scoring"].get("flags", []) == []  # the flag on q3 went with it
    response = post_form(app, client, f"/questionnaire/{instrument.id}/scoring", {
        "method": "weighted", "missing": "refuse", "items": ["q1", "q2", "q4", "q5"], "weights": "q1=2\nq2=0.5",
        "subscales": "support|支持|q2 q4"})  # fmt: skip
    assert response.status_code == 302, visible_text(response.text)
    definition = _stored(db, instrument.id)[-1]
    _clean, scored = score_response(definition, {"q1": "4", "q2": "2", "q4": "3", "q5": "5"})
    assert scored.scores == {"total": 4 * 2 + 2 * 0.5 + 3 + 5, "support": 2 + 3}


def test_a4_imported_formula_reaching_class_is_refused_naming_the_cell(app, db, login_as):
    """A4 hostile workbook: a scoring formula reaching __class__ is refused at import with
    sheet, row and column named, and the draft stays as it was."""
    import io

    from openpyxl import Workbook

    client = login_as("psy_tpe")
    instrument = _design(app, db, client)
    before = _stored(db, instrument.id)
    book = Workbook()
    survey = book.active
    survey.title = "survey"
    survey.append(["type", "name", "label"])
    survey.append(["integer", "q1", "天數"])
    scoring = book.create_sheet("scoring")
    scoring.append(["kind", "name", "label", "calculation"])
    scoring.append(["score", "hack", "駭", "${q1}.__class__"])
    data = io.BytesIO()
    book.save(data)
    response = client.post(f"/questionnaire/{instrument.id}/import", data={
        "file": (io.BytesIO(data.getvalue()), "hack.xlsx"), "csrf_token": _csrf(app, client)},
        content_type="multipart/form-data", follow_redirects=True)  # fmt: skip
    text = visible_text(response.text)
    assert "alert-danger" in response.text and "scoring" in text and "calculation" in text, text[-400:]
    assert _stored(db, instrument.id) == before


def test_a4_owner_keeps_or_withdraws_the_ministrys_national_sharing(app, db, login_as):
    """A4 sharing: once the ministry shared it nationally, the owner saving the form unchanged
    keeps it national, and choosing the county withdraws the national share."""
    owner = login_as("psy_tpe")
    instrument = _design(app, db, owner)
    assert post_form(app, login_as("ministry"), f"/questionnaire/{instrument.id}/share",
                     {"sharing": "national"}).status_code == 302  # fmt: skip
    kept = post_form(app, owner, f"/questionnaire/{instrument.id}/share", {"sharing": "national"},
                     follow_redirects=True)  # fmt: skip
    assert "分享設定已儲存" in visible_text(kept.text)
    assert post_form(app, owner, f"/questionnaire/{instrument.id}/share", {"sharing": "county"}).status_code == 302
    db.session.expire_all()
    assert db.session.get(Instrument, instrument.id).sharing == "county"


# ------------------------------------------------------------------ formula scores
def _scoring(app, client, pk, **extra):
    """The scoring form as _design filled it, with some fields added or changed."""
    data = {"label": "總分", "method": "sum", "missing": "refuse", "items": [f"q{n}" for n in range(1, 6)],
            "reverse": ["q3"], "bands": "5-12 低\n13-19 中\n20-25 高", **extra}  # fmt: skip
    return post_form(app, client, f"/questionnaire/{pk}/scoring", data)


def test_a4_formula_score_saved_shown_and_previewed(app, db, login_as):
    """A4 formula: a score 「名稱|標籤|公式|帶」 over the total and an item is saved, shown
    again in the form, and the preview's 試算 shows the value the server computed (nothing
    stored); a stored response carries it too."""
    client = login_as("psy_tpe")
    instrument = _design(app, db, client)
    response = _scoring(app, client, instrument.id,
                        formulas="pct|百分比|round(total / 25 * 100)|0-59 待加強; 60-100 良好\nboost|加權|q1 * 2 + max(q2, q5)")
    assert response.status_code == 302, visible_text(response.text)
    definition = _stored(db, instrument.id)[-1]
    assert [s["name"] for s in definition["scoring"]["scores"]] == ["total", "pct", "boost"]
    form = client.get(f"/questionnaire/{instrument.id}/scoring")
    assert "round(total / 25 * 100)|0-59 待加強; 60-100 良好" in form.text
    assert "公式" in visible_text(client.get(f"/questionnaire/{instrument.id}").text)
    before = _stored(db, instrument.id)
    answers = {"a_q1": "4", "a_q2": "5", "a_q3": "2", "a_q4": "3", "a_q5": "4"}
    preview = post_form(app, client, f"/questionnaire/{instrument.id}/preview", answers)
    assert preview.status_code == 200
    text = visible_text(preview.text)
    assert "preview-scores" in preview.text and "百分比 80 良好" in text and "加權 13" in text, text
    assert "總分 20 高" in text
    assert _stored(db, instrument.id) == before
    # an unanswered item: the preview names it, keeps the other answers, stores nothing
    partial = post_form(app, client, f"/questionnaire/{instrument.id}/preview", {"a_q1": "4"})
    assert "item-error" in partial.text and 'value="4" aria-label="我能拒絕別人遞來的酒：同意" checked' in partial.text


HOSTILE_FORMULAS = [
    "__class__", "().__class__", "total.__class__", "q1.__class__.__mro__", "import os", "__import__('os')",
    "lambda: 1", "(lambda x: x)(1)", "9**9**9", "2**q1", "10**100", "[1, 2][0]", "'abc'", "open('/etc/passwd')",
    "x" * 600, "unknown_name + 1", "total if total else q1.real", "99999999999 * 2", "min(*[1, 2])",
    "round(total, ndigits=1)", "True + 1",
]  # fmt: skip


def test_a4_formula_reaching_attributes_builtins_or_huge_powers_refused_at_save(app, db, login_as):
    """A4 formula: `__class__`, `().__class__`, import, lambda, a huge exponent `9**9**9`, a
    600-character formula, an unknown name, strings, subscripts, keyword arguments: each is
    refused when the scoring is saved, with a zh_TW message naming the score, the form kept
    as typed, and nothing stored."""
    client = login_as("psy_tpe")
    instrument = _design(app, db, client)
    before = _stored(db, instrument.id)
    for formula in HOSTILE_FORMULAS:
        response = _scoring(app, client, instrument.id, formulas=f"hack|駭客分數|{formula}")
        assert response.status_code == 200, formula
        assert "alert-danger" in response.text, formula
        alert = visible_text(response.text.split("alert-danger", 1)[1][:800])
        assert "駭客分數" in alert and "公式" in alert, (formula, alert)
        assert formula[:60] in visible_text(response.text) or formula[:60] in response.text, formula
        assert _stored(db, instrument.id) == before, formula


def test_a4_formula_engine_refuses_hostile_definitions_and_bounds_powers():
    """A4 formula, the engine itself (any path: designer, XLSForm, REDCap): check_definition
    refuses each hostile formula; the run-time evaluator bounds ** too, so a stored formula
    can never cost the server (9**9**9 gives no score, at once)."""
    import pytest

    from domain.addiction.scoring import DefinitionRefused, check_definition, evaluate_formula

    base = {"items": [{"linkId": "q1", "type": "integer", "text": "天數"}]}
    for formula in HOSTILE_FORMULAS:
        definition = {**base, "scoring": {"scores": [{"name": "hack", "label": "駭", "formula": formula}]}}
        with pytest.raises(DefinitionRefused):
            check_definition(definition)
    ok = {**base, "scoring": {"scores": [{"name": "s", "formula": "ceil(q1 / 7) + 2**3 - abs(-1)"}]}}
    assert check_definition(ok) is ok
    assert evaluate_formula("ceil(q1 / 7) + 2**3 - abs(-1)", {"q1": 10}) == 9
    assert evaluate_formula("9**9**9", {}) is None and evaluate_formula("q1 ** 50", {"q1": 3}) is None
    assert evaluate_formula("q1 / 0", {"q1": 1}) is None and evaluate_formula("q2 + 1", {}) is None


# ------------------------------------------------------------------ shared scales, subscale bands
def test_a4_shared_scale_made_and_used_subscale_bands_scored(app, db, login_as):
    """A4: the 共用量尺 page adds a 4-point frequency scale; two items on it are one matrix
    in the preview; a subscale with its own bands scores and bands as by hand; a scale still
    used by an item cannot be removed (the item named, nothing stored)."""
    client = login_as("psy_tpe")
    instrument = _create(app, client)
    page = client.get(f"/questionnaire/{instrument.id}/scales")
    assert page.status_code == 200 and "options_0" in page.text
    saved = post_form(app, client, f"/questionnaire/{instrument.id}/scales", {
        "name_0": "freq4", "options_0": "0|從不|0\n1|偶爾|1\n2|經常|2\n3|總是|3"})  # fmt: skip
    assert saved.status_code == 302, visible_text(saved.text)
    for link, text in (("f1", "想要使用"), ("f2", "難以拒絕")):
        response = post_form(app, client, f"/questionnaire/{instrument.id}/item", {
            "linkId": link, "type": "likert", "text": text, "required": "y", "scale": "freq4"})  # fmt: skip
        assert response.status_code == 302, visible_text(response.text)
    editor = client.get(f"/questionnaire/{instrument.id}/item")
    assert "freq4" in editor.text and "總是(3)" in editor.text
    preview = client.get(f"/questionnaire/{instrument.id}/preview")
    assert preview.text.count("likert-matrix\"") == 1 and "總是" in preview.text
    response = post_form(app, client, f"/questionnaire/{instrument.id}/scoring", {
        "method": "sum", "missing": "refuse", "items": ["f1", "f2"], "reverse": ["f2"],
        "subscales": "urge|渴求|f1|0-1 低; 2-3 高"})  # fmt: skip
    assert response.status_code == 302, visible_text(response.text)
    definition = _stored(db, instrument.id)[-1]
    _clean, scored = score_response(definition, {"f1": "2", "f2": "0"})
    assert scored.scores == {"total": 2 + 3, "urge": 2} and scored.bands == {"urge": "高"}
    assert "urge|渴求|f1|0-1 低; 2-3 高" in client.get(f"/questionnaire/{instrument.id}/scoring").text
    before = _stored(db, instrument.id)
    removed = post_form(app, client, f"/questionnaire/{instrument.id}/scales", {"name_0": "", "options_0": ""})
    assert removed.status_code == 200 and "f1" in visible_text(removed.text) and "freq4" in visible_text(removed.text)
    bad = post_form(app, client, f"/questionnaire/{instrument.id}/scales", {
        "name_0": "freq4", "options_0": "0|從不|０"})  # fmt: skip
    assert bad.status_code == 200 and "0|從不|０" in bad.text and "alert-danger" in bad.text
    assert _stored(db, instrument.id) == before
    assert login_as("cm_khh").get(f"/questionnaire/{instrument.id}/scales").status_code == 404


# ------------------------------------------------------------------ several institutions
def _serve_also_at(db, username, institution_id):
    """Give a demo user a second institution (undone by the returned function)."""
    from models.platform.user import ScopedUser, user_institution

    user = db.session.query(ScopedUser).filter_by(username=username).one()
    db.session.execute(user_institution.insert().values(user_id=user.id, institution_id=institution_id))
    db.session.commit()

    def undo():
        db.session.execute(user_institution.delete().where(user_institution.c.user_id == user.id,
                                                           user_institution.c.institution_id == institution_id))
        db.session.commit()

    return undo


def test_a4_staff_of_several_institutions_pick_the_owner_and_no_other(app, db, login_as):
    """A4 several institutions: psy_tpe, serving also at 心晴心理治療所, is asked which
    institution owns a new questionnaire; the one picked owns it; none picked is refused
    with the form kept; another institution's id in the form (or the URL) is a 404 and
    nothing is stored."""
    from seed.addiction.registry import demo_addiction_institution

    hospital = demo_addiction_institution("hospital_tpe")
    clinic = demo_addiction_institution("clinic_tpe")
    foreign = demo_addiction_institution("hospital_khh")
    undo = _serve_also_at(db, "psy_tpe", clinic.id)
    try:
        client = login_as("psy_tpe")
        page = client.get("/questionnaire/list")
        assert 'id="owner-institution"' in page.text and clinic.name in page.text and hospital.name in page.text
        count = db.session.scalar(select(func.count(Instrument.id)))
        missing = post_form(app, client, "/questionnaire/create", {"code": "multi1", "title": "兩院共用問卷"})
        assert missing.status_code == 200 and "請選擇" in visible_text(missing.text) and "兩院共用問卷" in missing.text
        for url, data in (("/questionnaire/create", {"institution": str(foreign.id)}),
                          (f"/questionnaire/create?institution={foreign.id}", {}),
                          ("/questionnaire/create", {"institution": "x1"}),
                          ("/questionnaire/create", {"institution": "99999999"})):  # fmt: skip
            refused = post_form(app, client, url, {"code": "multi1", "title": "兩院共用問卷", **data})
            assert refused.status_code == 404 and "資料權限範圍" in visible_text(refused.text), (url, data)
        db.session.expire_all()
        assert db.session.scalar(select(func.count(Instrument.id))) == count
        made = post_form(app, client, "/questionnaire/create",
                         {"code": "multi1", "title": "兩院共用問卷", "institution": str(clinic.id)})
        assert made.status_code == 302
        db.session.expire_all()
        instrument = db.session.scalar(select(Instrument).where(Instrument.code == "multi1"))
        assert instrument.institution_id == clinic.id
        # the same code is free at the other institution, taken at the same one
        again = post_form(app, client, "/questionnaire/create",
                          {"code": "multi1", "title": "第二份", "institution": str(clinic.id)})
        assert again.status_code == 200 and "multi1" in visible_text(again.text)
        other = post_form(app, client, "/questionnaire/create",
                          {"code": "multi1", "title": "醫院版", "institution": str(hospital.id)})
        assert other.status_code == 302
        assert login_as("psy_clinic").get(f"/questionnaire/{instrument.id}").status_code == 200
    finally:
        undo()
    assert login_as("psy_tpe").get(f"/questionnaire/{instrument.id}").status_code == 404


def test_a4_single_institution_staff_see_no_owner_choice(app, db, login_as):
    """A4: with one institution the form asks nothing; the questionnaire is that institution's."""
    client = login_as("psy_clinic")
    assert 'id="owner-institution"' not in client.get("/questionnaire/list").text
    instrument = _create(app, client, "單一機構問卷")
    from seed.addiction.registry import demo_addiction_institution

    assert instrument.institution_id == demo_addiction_institution("clinic_tpe").id


# ------------------------------------------------------------------ two saves at once
def test_a4_duplicate_code_saved_concurrently_gives_code_taken_not_500(app, db, login_as, monkeypatch):
    """A4 race: two saves of the same code at once both pass the friendly check; the second's
    insert hits the unique index (IntegrityError): the form says the code is already used,
    keeps what was typed, and one questionnaire exists."""
    from domain.addiction.instruments import CreateInstrument

    client = login_as("psy_tpe")
    first = _create(app, client, "先存的問卷")
    monkeypatch.setattr(CreateInstrument, "code_in_use", lambda self: False)  # the other save's check ran first
    response = post_form(app, client, "/questionnaire/create", {"code": first.code, "title": "同時存的問卷"})
    assert response.status_code == 200
    text = visible_text(response.text)
    assert f"已有代碼為 {first.code} 的問卷" in text and "同時存的問卷" in response.text, text[:600]
    db.session.expire_all()
    assert db.session.scalar(select(func.count(Instrument.id)).where(Instrument.code == first.code)) == 1
    assert client.get("/questionnaire/list").status_code == 200  # the session is usable again


# ------------------------------------------------------------------ rendering
def test_a4_batteries_on_one_scale_render_as_one_matrix(app, db):
    """A4 rendering: BSRS-5's six items (item 6, scored apart, included) are one matrix,
    PHQ-9's nine one matrix, AUDIT's frequency items a3–a8 one matrix while a1, a2, a9,
    a10 (own options) stay single; a lone choice item on a scale is no matrix."""
    from tests.addiction.test_assessments import _builtin
    from views.addiction.assessments import form_blocks

    def shape(code):
        definition = _builtin(db, code).versions[-1].definition
        return [(b["kind"], [r["link"] for r in b["rows"]]) if b["kind"] == "matrix" else (b["kind"], b["link"])
                for b in form_blocks(definition, {}, {})]  # fmt: skip

    assert ("matrix", [f"b{n}" for n in range(1, 7)]) in shape("BSRS5")
    assert ("matrix", [f"p{n}" for n in range(1, 10)]) in shape("PHQ-9")
    audit = shape("AUDIT")
    assert ("matrix", [f"a{n}" for n in range(3, 9)]) in audit
    assert ("choice", "a1") in audit and ("choice", "a10") in audit
    lone = {"scales": {"s": [{"code": "1", "display": "是"}]},
            "items": [{"linkId": "x", "type": "choice", "text": "單題", "scale": "s"}]}  # fmt: skip
    assert [b["kind"] for b in form_blocks(lone, {}, {})] == ["choice"]


# ------------------------------------------------------------------ sharing, every role
def _published_questionnaire(app, db, username, code, sharing=None):
    """A one-item questionnaire of the user's institution, published, shared as asked."""
    client = login_as_cached(app, username)
    response = post_form(app, client, "/questionnaire/create", {"code": code, "title": f"分享測試 {code}"})
    assert response.status_code == 302, visible_text(response.text)
    db.session.expire_all()
    instrument = db.session.scalar(select(Instrument).where(Instrument.code == code))
    post_form(app, client, f"/questionnaire/{instrument.id}/item",
              {"linkId": "q1", "type": "likert", "text": "我有信心", "required": "y", "scale": "agree5"})
    assert post_form(app, client, f"/questionnaire/{instrument.id}/publish", {"confirm": "yes"}).status_code == 302
    if sharing == "county":
        assert post_form(app, client, f"/questionnaire/{instrument.id}/share", {"sharing": "county"}).status_code == 302
    if sharing == "national":
        ministry = login_as_cached(app, "ministry")
        assert post_form(app, ministry, f"/questionnaire/{instrument.id}/share",
                         {"sharing": "national"}).status_code == 302  # fmt: skip
    db.session.expire_all()
    return db.session.get(Instrument, instrument.id)


def login_as_cached(app, username):
    """A fresh signed-in client (the fixture's cache is per test; this one is plain)."""
    from tests.conftest import login

    client = app.test_client()
    login(app, client, username)
    return client


def test_a4_sharing_every_role_reaches_exactly_the_oracles_questionnaires(app, db, login_as):
    """A4 sharing × scope, every demo role: a private questionnaire (臺北市 hospital), one
    its owner shared with the county (臺北市 clinic), one the ministry shared nationally
    (高雄市 hospital) and a private 高雄市 one. The designer's list, show and preview, and
    the fill form for the user's own course, answer exactly as tests/scope_oracle.py says
    (visible: 200, else 404); a questionnaire shared with someone is read-only for them
    (no edit, nothing stored)."""
    from domain.addiction.grants import QUESTIONNAIRE_DESIGN
    from tests.addiction.test_assessments import _fresh_course
    from tests.conftest import USERNAMES
    from tests.platform.test_scope_matrix import can
    from tests.scope_oracle import expected_split, user_view

    tag = next(_codes)
    made = [
        _published_questionnaire(app, db, "psy_tpe", f"priv_tpe{tag}"),
        _published_questionnaire(app, db, "psy_clinic", f"county_tpe{tag}", "county"),
        _published_questionnaire(app, db, "cm_khh", f"nation_khh{tag}", "national"),
        _published_questionnaire(app, db, "cm_khh", f"priv_khh{tag}"),
    ]
    assert [i.sharing for i in made] == ["private", "county", "national", "private"]
    problems = []
    for username in USERNAMES:
        client = login_as(username)
        visible, _hidden = expected_split(db, Instrument, user_view(db, username))
        readable = can(app, username, "read", QUESTIONNAIRE_DESIGN)
        listing = client.get("/questionnaire/list")
        for instrument in made:
            expected = 200 if readable and instrument.id in visible else 404
            for url in ("", "/preview"):
                status = client.get(f"/questionnaire/{instrument.id}{url}").status_code
                if status != expected and not (not readable and status in (302, 403)):
                    problems.append(f"{username} {instrument.code}{url}: {status}, expected {expected}")
            if readable and (instrument.code in listing.text) != (instrument.id in visible):
                problems.append(f"{username} list: {instrument.code} shown={instrument.code in listing.text}")
    assert not problems, "\n".join(problems)
    # the fill form of the user's own course: the shared ones are usable like a built-in
    for username in ("psy_tpe", "cm_khh"):
        client = login_as(username)
        visible, _hidden = expected_split(db, Instrument, user_view(db, username))
        course, _author = _fresh_course(app, db, username)
        for instrument in made:
            status = client.get(f"/assessment/add?course={course.id}&instrument={instrument.id}").status_code
            assert status == (200 if instrument.id in visible else 404), (username, instrument.code, status)
    # the course page's 新增評估 says whose a custom questionnaire is
    course, _author = _fresh_course(app, db, "psy_tpe")
    panel = visible_text(login_as("psy_tpe").get(f"/course/{course.id}").text)
    assert f"分享測試 priv_tpe{tag}（本機構自訂）" in panel and f"分享測試 county_tpe{tag}（他機構分享）" in panel
    # read-only for whom it is shared with: no edit, nothing stored
    county = made[1]
    before = _stored(db, county.id)
    psy_tpe = login_as("psy_tpe")
    assert "add-item" not in psy_tpe.get(f"/questionnaire/{county.id}").text
    for url, data in (("/item", {"linkId": "q9", "type": "boolean", "text": "x"}), ("/scales", {"name_0": "s"}),
                      ("/scoring", {"method": "sum"}), ("/publish", {"confirm": "yes"}),
                      ("/share", {"sharing": "private"})):  # fmt: skip
        assert post_form(app, psy_tpe, f"/questionnaire/{county.id}{url}", data).status_code in (302, 403, 404), url
    db.session.expire_all()
    assert _stored(db, county.id) == before and db.session.get(Instrument, county.id).sharing == "county"


def test_a4_save_and_add_the_next_item_keeps_the_battery_scale(app, db, login_as):
    """A4, no retyping: 儲存並新增下一題 opens the next item's editor with the next code and
    the previous item's type, scale and required mark already chosen."""
    client = login_as("psy_tpe")
    instrument = _create(app, client)
    post_form(app, client, f"/questionnaire/{instrument.id}/scales", {
        "name_0": "freq4", "options_0": "0|從不|0\n1|偶爾|1\n2|經常|2\n3|總是|3"})  # fmt: skip
    response = post_form(app, client, f"/questionnaire/{instrument.id}/item", {
        "linkId": "q1", "type": "likert", "text": "想要使用", "required": "y", "scale": "freq4", "next": "1"})  # fmt: skip
    assert response.status_code == 302 and response.headers["Location"].endswith(f"/questionnaire/{instrument.id}/item")
    editor = client.get(f"/questionnaire/{instrument.id}/item").text
    assert 'value="q2"' in editor and '<option value="freq4" selected>' in editor and 'name="required" value="y" checked' in editor
