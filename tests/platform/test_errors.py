"""core/errors.py: every refusal is a UserError with its status, and the two bases answer it
once — a screen with a flash message (nothing kept), an API with {"message": ...} and the status."""

from __future__ import annotations

import pytest
from flask import get_flashed_messages
from sqlalchemy import func, select

from core.data.datamodel import ScopeViolation
from core.data.rules import RuleError
from core.dates import DateFormatError
from core.errors import UserError
from core.security.passwords import PasswordPolicyError
from core.security.sessions import AccountError
from core.web.views import ScopedModelRestApi, refusals_flashed
from core.workflow import TransitionRefused
from domain.cessation.batch import BatchError
from domain.cessation.corrections import (
    AttachmentError,
    LineError,
)
from domain.cessation.statistics import StatisticsForbidden, StatisticsRequestError
from domain.cessation.tickets import CorrectionError, TransitionError
from domain.cessation.visits import VisitRuleError
from domain.registry.persons import MergeError
from models.platform.session import OneTimeToken
from models.platform.user import ScopedUser
from models.registry.reference import County
from tests.conftest import csrf_token


def test_a_user_error_is_its_message_with_a_status():
    error = UserError("此申請單已結案。")
    assert str(error) == error.message == error.answer() == "此申請單已結案。"
    assert error.status == 422
    assert UserError("x", status=409).status == 409
    assert UserError.status == 422  # the override is the instance's only


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (ScopeViolation("x"), 403),
        (RuleError("name", "x"), 422),
        (DateFormatError("x"), 400),
        (PasswordPolicyError("x"), 422),
        (AccountError("x"), 422),
        (BatchError("x"), 400),
        (StatisticsRequestError("x"), 400),
        (StatisticsForbidden("x"), 403),
        (VisitRuleError("x"), 422),
        (MergeError("x"), 422),
        (CorrectionError("x"), 422),
        (AttachmentError("x"), 422),
        (LineError(2, "x"), 422),
        (TransitionError("x"), 409),
        (TransitionRefused("x"), 409),
    ],
    ids=lambda v: type(v).__name__ if isinstance(v, Exception) else str(v),
)
def test_every_refusal_of_the_app_is_a_user_error_with_the_status_it_answers(error, status):
    assert isinstance(error, UserError)
    assert error.status == status
    assert str(error)


def test_a_rule_error_answers_per_field():
    assert RuleError("national_id", "格式錯誤").answer() == {"national_id": ["格式錯誤"]}


def test_refusals_flashed_flashes_rolls_back_and_goes_on(app, db):
    with app.test_request_context("/"):
        db.session.add(County(code="ZZ9", name="測試縣", bureau_name="測試局", sort_order=99))
        went_on = False
        with refusals_flashed():
            db.session.flush()
            raise AccountError("此申請已處理。")
        went_on = True
        assert went_on  # the page goes on after the block (re-renders what was typed)
        assert get_flashed_messages(with_categories=True) == [("danger", "此申請已處理。")]
        assert db.session.scalar(select(func.count()).where(County.code == "ZZ9")) == 0


def test_refusals_flashed_lets_any_other_error_through(app, db):
    with app.test_request_context("/"), pytest.raises(KeyError), refusals_flashed():
        raise KeyError("a fault, not a refusal")


def test_the_api_base_answers_a_refusal_with_its_message_and_status(app, db):
    api = next(v for v in app.appbuilder.baseviews if isinstance(v, ScopedModelRestApi))

    def refuse():
        raise TransitionRefused("已被他人變更。")

    def refuse_field():
        raise RuleError("name", "不可空白。")

    with app.test_request_context("/"):
        response = api._guarded(refuse)
        assert response.status_code == 409 and response.json == {"message": "已被他人變更。"}
        response = api._guarded(refuse_field)
        assert response.status_code == 422 and response.json == {"message": {"name": ["不可空白。"]}}


def test_a_refused_action_is_flashed_on_the_rows_page_and_changes_nothing(
    app, db, login_as, monkeypatch
):
    from domain.accounts.commands import SendPasswordReset

    def refuse(self):
        raise AccountError("此帳號沒有電子郵件地址。")

    monkeypatch.setattr(SendPasswordReset, "validate", refuse)
    user = db.session.scalar(select(ScopedUser).where(ScopedUser.username == "facility_tpe"))
    tokens = select(func.count(OneTimeToken.id)).where(OneTimeToken.user_id == user.id)
    before = db.session.scalar(tokens)
    helpdesk = login_as("helpdesk")
    response = helpdesk.post(
        f"/accounts/action/send_reset/{user.id}", data={"csrf_token": csrf_token(app, helpdesk)}
    )
    assert response.status_code == 302
    assert response.headers["Location"].endswith(f"/accounts/show/{user.id}")
    with helpdesk.session_transaction() as session:
        assert ("danger", "此帳號沒有電子郵件地址。") in session["_flashes"]
    db.session.expire_all()
    assert db.session.scalar(tokens) == before
