"""The demo users can log in and land on a zh_TW start page that states their scope."""

import pytest

from tests.conftest import USERNAMES


@pytest.mark.parametrize("username", USERNAMES)
def test_every_demo_user_logs_in_and_sees_their_scope(login_as, username):
    client = login_as(username)
    response = client.get("/")
    assert response.status_code == 200
    assert 'id="scope"' in response.text
