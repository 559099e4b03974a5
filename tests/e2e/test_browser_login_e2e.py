"""Logging in from a real browser (Playwright driving Debian's chromium) while the browser
also loads other things from the platform: an image, another tab starting its own login.
Each pending login keeps its own state cookie, so both logins complete; subresources get
401 and start none; the browser lands on the page first asked for (issue 10, bug 2)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.conftest import (
    ADMIN,
    ADMIN_PASSWORD,
    PlatformProcess,
    isvc_yaml,
    start_platform,
    wait_ready,
)

CHROMIUM = "/usr/bin/chromium"
pytestmark = pytest.mark.skipif(
    shutil.which(CHROMIUM) is None, reason="Debian's chromium is not installed"
)
# The flags this machine's closed network needs (no background connections to Google).
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory, iris_dir: Path) -> Iterator[PlatformProcess]:
    work = tmp_path_factory.mktemp("browser")
    running = start_platform(work / "data", work / "config")
    running.cli("apply", "-f", "-", input=isvc_yaml("sklearn-iris", str(iris_dir)))
    wait_ready(running, "sklearn-iris")
    yield running
    running.stop()


def test_browser_login_with_parallel_requests(platform: PlatformProcess, tmp_path: Path):
    from playwright.sync_api import sync_playwright

    model = "/serving/default/sklearn-iris/v1/models/sklearn-iris"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        context = browser.new_context()

        def state_cookies() -> int:
            return sum(c["name"].startswith("oidc_state_csrf") for c in context.cookies())

        first = context.new_page()
        first.goto(f"{platform.url}/")
        assert first.locator("#login").is_visible()  # Dex's login form
        assert state_cookies() == 1
        # While this login is under way: an image from the platform (as a favicon is) and a
        # script's fetch get 401 and start no login of their own...
        loaded = first.evaluate(
            "new Promise(done => { const i = new Image(); i.onerror = () => done('error');"
            " i.onload = () => done('loaded'); i.src = '/favicon.ico'; })"
        )
        assert loaded == "error"
        assert first.evaluate("fetch('/favicon.ico').then(r => r.status)") == 401
        assert state_cookies() == 1
        # ...while another tab starts a login of its own, beside the first one.
        second = context.new_page()
        second.goto(f"{platform.url}{model}?tab=2")
        assert second.locator("#login").is_visible()
        assert state_cookies() == 2  # one per pending login, neither overwritten

        first.fill("#login", ADMIN)
        first.fill("#password", ADMIN_PASSWORD)
        first.click("#submit-login")
        first.wait_for_url(f"{platform.url}/")
        first.locator("#services").wait_for()
        assert "sklearn-iris" in first.inner_text("#services")
        assert "Ready" in first.inner_text("thead") and "True" in first.inner_text("tbody")
        first.screenshot(path=str(tmp_path / "home.png"), full_page=True)

        # The other tab's login still completes, back to what it asked for.
        second.fill("#login", ADMIN)
        second.fill("#password", ADMIN_PASSWORD)
        second.click("#submit-login")
        second.wait_for_url(f"{platform.url}{model}?tab=2")
        assert '"name":"sklearn-iris"' in second.content().replace(" ", "")
        assert state_cookies() == 0  # each callback cleared its own
        browser.close()
