"""The demo users can log in and land on a zh_TW start page that states their scope."""

import pytest

from tests.conftest import USERNAMES


@pytest.mark.parametrize("username", USERNAMES)
def test_every_demo_user_logs_in_and_sees_their_scope(login_as, username):
    client = login_as(username)
    response = client.get("/")
    assert response.status_code == 200
    assert 'id="scope"' in response.text


def test_bad_or_huge_page_arguments_do_not_break_the_list(login_as):
    client = login_as("office")
    assert client.get("/practitionerview/list/?psize_PractitionerView=abc").status_code == 400
    assert client.get("/practitionerview/list/?page_PractitionerView=-1").status_code == 400
    response = client.get("/practitionerview/list/?psize_PractitionerView=100000")
    assert response.status_code == 200
    assert response.text.count("/practitionerview/show/") <= 500


def test_api_still_refuses_a_malformed_rison_argument(api_as):
    """The cached schema validation (core/patches.py) must still reject bad arguments."""
    client, headers = api_as("office")
    assert client.get("/api/v1/institution/?q=(page_size:abc)", headers=headers).status_code == 400
    assert client.get("/api/v1/institution/?q=(page_size:5)", headers=headers).status_code == 200
