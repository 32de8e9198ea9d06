"""The site's name follows the programmes a user's roles reach (A1: programme separation)."""

from __future__ import annotations

import re

from core.security.roles import ADMIN, BUREAU, FACILITY, TREATMENT
from core.web.branding import programme_names

CESSATION, ADDICTION = "戒菸服務管理系統", "藥酒癮醫療個案管理系統"


def _brand(html: str) -> str:
    brand = re.search(r'(?s)class="navbar-brand"[^>]*>(.*?)</a>', html).group(1)
    return re.sub(r"(?s)<[^>]+>", "", brand).strip()


def _title(html: str) -> str:
    return re.search(r"(?s)<title>(.*?)</title>", html).group(1).strip()


def test_a1_programme_names_by_roles():
    """A1: one programme's roles read its name; a mix, or admin's, reads both."""
    assert programme_names([TREATMENT]) == ("ADDICTION_APP_NAME",)
    assert programme_names([FACILITY]) == ("APP_NAME",)
    assert programme_names([BUREAU, TREATMENT]) == ("APP_NAME", "ADDICTION_APP_NAME")
    assert programme_names([ADMIN]) == ("APP_NAME", "ADDICTION_APP_NAME")


def test_a1_each_programme_user_reads_their_own_site_name(app, login_as):
    """A1: a psychotherapy-clinic psychologist never works in 「戒菸服務管理系統」, a cessation
    facility never in the addiction system; the admin and the login page read both names."""
    addiction_only = login_as("psy_clinic").get("/")
    assert _brand(addiction_only.text) == ADDICTION and CESSATION not in _title(addiction_only.text)
    assert "戒菸" not in addiction_only.text.split('id="scope"')[0].split("navbar-brand")[-1]  # the heading
    cessation_only = login_as("facility_tpe").get("/")
    assert _brand(cessation_only.text) == CESSATION and ADDICTION not in _title(cessation_only.text)
    admin = _brand(login_as("admin").get("/").text)
    assert CESSATION in admin and ADDICTION in admin
    login_page = app.test_client().get("/login/")
    assert CESSATION in _title(login_page.text) and ADDICTION in _title(login_page.text)
