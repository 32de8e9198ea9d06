"""Usable on a phone (issue 15, item 6; seed 004 names 行動化服務 as a delivered feature).

One journey per main role at a 390 × 844 viewport (a current mid-size phone): the home page,
every page its menu offers and the forms it fills in most. On each: the page itself never
scrolls sideways (document.documentElement.scrollWidth <= 390: wide tables scroll inside
their own box), the navbar is collapsed behind its toggle, and a form's fields fit the
screen. Screenshots go to a temporary folder (PHONE_SCREENSHOTS, else pytest's tmp) to be
looked at; the journey's usual checks (no 5xx, no JS error, no Simplified Chinese) hold too.
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlparse

import pytest

from tests.e2e.browser import Journey

WIDTH, HEIGHT = 390, 844
PHONE = {
    "viewport": {"width": WIDTH, "height": HEIGHT},
    "device_scale_factor": 2,
    "is_mobile": True,
    "has_touch": True,
}
#: Forms each role fills in on the move, beside its menu's pages.
FORMS = {
    "facility_tpe": ["/visitview/add", "/practitionerview/join", "/corrections/add"],
    "office": ["/corrections/list/?_flt_0_status=received", "/cessationstats/?year=113"],
    "bureau_tpe": ["/contractperiodview/add", "/cessationstats/?year=113"],
    "psy_tpe": ["/caseview/add", "/treatmentrecord/add", "/trainingview/add"],
    "ministry": ["/cessationstats/?year=113", "/designationview/add"],
}
#: Links of a menu that are no page to look at (files, the language switch, signing out).
SKIP = ("/logout", "/lang/", "/export", "xlsx", "/download", "/swagger", "/api/")


@pytest.fixture(scope="module")
def shots(tmp_path_factory) -> Path:
    folder = os.environ.get("PHONE_SCREENSHOTS")
    path = Path(folder) if folder else tmp_path_factory.mktemp("phone")
    path.mkdir(parents=True, exist_ok=True)
    print(f"phone screenshots: {path}")
    return path


def _menu_paths(person: Journey) -> list[str]:
    """Every page the role's navbar links to, in menu order (the collapsed menu's hrefs)."""
    hrefs = person.page.eval_on_selector_all(
        ".navbar a[href]", "links => links.map(a => a.getAttribute('href'))"
    )
    paths = []
    for href in hrefs:
        if not href or href.startswith(("#", "javascript", "mailto")):
            continue
        path = urlparse(href).path + (f"?{urlparse(href).query}" if urlparse(href).query else "")
        if any(part in path for part in SKIP) or path in paths:
            continue
        paths.append(path)
    return paths


def _layout_problems(person: Journey) -> list[str]:
    """What does not fit the phone on the page now shown."""
    page, url = person.page, person.page.url
    found = []
    width = page.evaluate("document.documentElement.scrollWidth")
    if width > WIDTH:
        # Name the innermost offenders (no child of theirs sticks out), so a failure says
        # what to fix rather than every box around it.
        wide = page.evaluate(
            """w => { const out = e => e.getBoundingClientRect().right > w + 1;
                return Array.from(document.querySelectorAll('body *'))
                .filter(e => out(e) && !Array.from(e.children).some(out))
                .slice(0, 4).map(e => e.tagName.toLowerCase() + '.' + (e.className || '')
                                       + ' ' + Math.round(e.getBoundingClientRect().right)); }""",
            WIDTH,
        )
        found.append(f"{url}: page scrolls sideways (scrollWidth {width}): {wide}")
    toggle = page.locator(".navbar-toggle")
    if toggle.count() and not toggle.first.is_visible():
        found.append(f"{url}: the navbar is not collapsed (no toggle)")
    expanded = page.evaluate(
        "(() => { const m = document.querySelector('.navbar-collapse');"
        " return m ? m.getBoundingClientRect().height : 0; })()"
    )
    if expanded > 80:
        found.append(f"{url}: the collapsed menu takes {expanded}px")
    fields = page.evaluate(
        """w => Array.from(document.querySelectorAll('form input:not([type=hidden]), form select,'
                                                   + ' form textarea, .select2-container'))
            .filter(e => e.offsetParent !== null && e.getBoundingClientRect().right > w + 1)
            .map(e => (e.name || e.className) + ' ' + Math.round(e.getBoundingClientRect().right))""",
        WIDTH,
    )
    if fields:
        found.append(f"{url}: form fields wider than the screen: {fields[:4]}")
    return found


def _walk(browser, live_server, shots: Path, username: str) -> list[str]:
    person = Journey(browser, live_server, f"phone_{username}", folder=shots / username, **PHONE)
    problems: list[str] = []
    person.login(username)
    problems += _layout_problems(person)
    # The menu opens from its toggle and closes again: the way a phone reaches every page.
    person.page.click(".navbar-toggle")
    person.page.wait_for_selector(".navbar-collapse.in", state="visible")
    person.check(f"menu open {username}")
    paths = _menu_paths(person)
    assert len(paths) >= 3, f"{username}: the menu offers {paths}"
    for path in [*paths, *FORMS[username]]:
        person.goto(path)
        problems += _layout_problems(person)
    person.finish()
    return problems


@pytest.mark.parametrize("username", list(FORMS))
def test_every_main_page_fits_a_phone(browser, live_server, shots, username):
    """390 × 844: no sideways scroll of the page, the navbar collapsed, forms that fit."""
    problems = _walk(browser, live_server, shots, username)
    assert problems == [], "\n".join(problems)
