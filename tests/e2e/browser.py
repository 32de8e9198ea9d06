"""The browser journeys' shared helpers: a live server, Chromium, and `Journey`, one person's
session in the browser that checks every page it visits.

Every page a journey reaches through `goto`, `submit`, `click` or `check` is checked for:
- no JavaScript console error and no uncaught exception,
- no HTTP 5xx on any request of the page (documents, XHR, assets),
- no Simplified Chinese, mainland vocabulary or untranslated Flask-AppBuilder/English
  msgid in the page (tests/i18n_check.py, the checks of tests/platform/test_i18n.py),
and is saved as a full-page screenshot in tests/e2e/screenshots/ (gitignored).

A new journey (say, the office's correction tickets) is a test function taking `journey`:

    def test_office_converts_a_faxed_ticket(journey):
        person = journey("office_ticket")
        person.login("office")
        person.goto("/correctionticketview/add")
        ...
        person.finish()   # fails on anything the pages showed
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from tests.conftest import PASSWORD
from tests.i18n_check import page_problems

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = Path(__file__).resolve().parent / "screenshots"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
#: Debian's Chromium, never a downloaded build; a fresh profile per launch (Playwright
#: gives launch() its own temporary --user-data-dir).
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
E2E_SCALE = "0.03"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class LiveServer:
    """gunicorn (2 workers) on 127.0.0.1:<free port> over a freshly migrated, seeded SQLite
    database in its own instance folder: a real process, as people meet the app."""

    def __init__(self, instance: Path):
        self.instance = instance
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {
            **os.environ,
            "INSTANCE_DIR": str(instance),
            "DATABASE_URL": f"sqlite:///{instance / 'app.db'}",
            "MAIL_FOLDER": str(instance / "mail"),
            # The journeys sign in a dozen times a minute from one address.
            "AUTH_RATE_LIMIT": "200 per minute",
            "PYTHONUNBUFFERED": "1",
        }
        self.env.pop("TEST_DATABASE_URL", None)
        self.process = None
        self.log = instance / "server.log"

    def flask(self, *args: str) -> None:
        subprocess.run(
            [sys.executable, "-m", "flask", "--app", "app", *args],
            cwd=ROOT, env=self.env, check=True, stdout=subprocess.DEVNULL,
        )  # fmt: skip

    def start(self) -> LiveServer:
        self.flask("init")
        self.flask("seed", "reference")
        self.flask("seed", "demo", "--seed", "7", "--scale", E2E_SCALE)
        gunicorn = Path(sys.executable).with_name("gunicorn")
        self.process = subprocess.Popen(
            [str(gunicorn), "--workers", "2", "--bind", f"127.0.0.1:{self.port}",
             "--access-logfile", "-", "app:create_app()"],
            cwd=ROOT, env=self.env, stdout=self.log.open("w"), stderr=subprocess.STDOUT,
        )  # fmt: skip
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gunicorn exited:\n{self.log.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(f"{self.url}/login/", timeout=2) as response:
                    if response.status == 200:
                        return self
            except OSError:
                time.sleep(0.3)
        raise RuntimeError("gunicorn did not answer within 60 s")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()

    def errors_in_log(self) -> list[str]:
        """Tracebacks the server logged (a 500 the browser may not have seen)."""
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return [line for line in text.splitlines() if "Traceback" in line or "database is locked" in line]


def chromium_missing_message() -> str:
    return (
        f"Chromium not found at {CHROMIUM}: the browser journeys cannot run. "
        "Install it from Debian (apt-get install chromium fonts-noto-cjk; .ci/run does), "
        "or point CHROMIUM at it. Playwright must never download a browser."
    )


class Journey:
    """One person's browser session against the live server; checks every visited page."""

    def __init__(self, browser, server: LiveServer, name: str, *, folder: Path | None = None,
                 **context_options):
        """`context_options` go to Playwright's new_context (a phone's viewport, touch …);
        `folder` keeps the screenshots elsewhere than tests/e2e/screenshots/<name>."""
        self.server = server
        self.name = name
        options = {"viewport": {"width": 1280, "height": 900}, **context_options}
        self.context = browser.new_context(
            locale="zh-TW", timezone_id="Asia/Taipei", accept_downloads=True, **options,
        )  # fmt: skip
        self.context.set_default_timeout(15_000)
        self.page = self.context.new_page()
        self.problems: list[str] = []
        self.checked: list[str] = []
        #: URLs a journey opens expecting an error status (the browser logs those as errors).
        self.expected_status: set[str] = set()
        self._shots = 0
        self.page.on("console", self._console)
        self.page.on("pageerror", lambda exc: self.problems.append(f"{self.page.url}: JS error {exc}"))
        self.page.on("response", self._response)
        folder = folder or SCREENSHOTS / name
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True, exist_ok=True)
        self.folder = folder

    # ------------------------------------------------------------- listeners
    def _console(self, message) -> None:
        if message.type == "error":
            if "Failed to load resource" in message.text and message.location.get("url") in self.expected_status:
                return
            self.problems.append(f"{self.page.url}: console error {message.text}")

    def _response(self, response) -> None:
        if response.status >= 500:
            self.problems.append(f"HTTP {response.status} {response.request.method} {response.url}")

    # ------------------------------------------------------------- actions
    def url(self, path: str) -> str:
        return path if path.startswith("http") else f"{self.server.url}{path}"

    def goto(self, path: str, shot: str | None = None, expect_status: int | None = None):
        if expect_status is not None:
            self.expected_status.add(self.url(path))
        response = self.page.goto(self.url(path))
        if expect_status is not None:
            assert response.status == expect_status, f"{path}: {response.status}"
        self.check(shot or path)
        return response

    def click(self, selector: str, shot: str | None = None) -> None:
        with self.page.expect_navigation():
            self.page.click(selector)
        self.check(shot or selector)

    def submit(self, selector: str = "form [type=submit]", shot: str | None = None) -> None:
        self.click(selector, shot)

    def confirm_action(self, label: str, shot: str) -> None:
        """Click an action button (解除鎖定, 核准 …) and confirm it in FAB's dialog."""
        self.page.click(f".btn:has-text('{label}')")
        self.page.wait_for_selector("#modal-confirm-ok", state="visible")
        self.check(f"{shot} confirm")
        self.click("#modal-confirm-ok", shot)

    def download(self, selector: str) -> Path:
        """Click a download link; the file lands in the journey's folder."""
        with self.page.expect_download() as info:
            self.page.click(selector)
        download = info.value
        assert download.failure() is None, download.failure()
        target = self.folder / download.suggested_filename
        download.save_as(target)
        return target

    def login(self, username: str, password: str = PASSWORD, expect_ok: bool = True) -> None:
        self.goto("/login/", shot=f"login {username}")
        self.page.fill("input[name=username]", username)
        self.page.fill("input[name=password]", password)
        self.submit("form [type=submit]", shot=f"after login {username}")
        signed_in = "/login" not in self.page.url
        assert signed_in == expect_ok, f"{username}: signed in={signed_in} at {self.page.url}"

    def logout(self) -> None:
        self.goto("/logout/", shot="logout")

    def text(self, selector: str = "body") -> str:
        return self.page.inner_text(selector)

    def flashes(self) -> str:
        return " ".join(self.page.locator(".alert").all_inner_texts())

    # ------------------------------------------------------------- checks
    def check(self, label: str) -> None:
        """Check the page now shown, and keep a full-page screenshot of it."""
        self.page.wait_for_load_state("load")
        url = self.page.url
        for problem in page_problems(self._content()):
            self.problems.append(f"{url}: {problem}")
        self._shots += 1
        slug = re.sub(r"[^\w一-鿿-]+", "_", label).strip("_")[:60] or "page"
        self.page.screenshot(path=str(self.folder / f"{self._shots:02d}-{slug}.png"), full_page=True)
        self.checked.append(url)

    def _content(self) -> str:
        """The page's HTML once it has settled (a redirect may still be landing)."""
        from playwright.sync_api import Error

        for _attempt in range(20):
            try:
                return self.page.content()
            except Error as exc:
                if "navigating" not in str(exc):
                    raise
                self.page.wait_for_load_state("load")
                self.page.wait_for_timeout(100)
        return self.page.content()

    def finish(self) -> None:
        """Fail on anything wrong that any visited page showed (or the server logged)."""
        self.context.close()
        problems = self.problems + [f"server: {line}" for line in self.server.errors_in_log()]
        assert problems == [], f"{self.name}:\n" + "\n".join(problems)
