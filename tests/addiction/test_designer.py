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
