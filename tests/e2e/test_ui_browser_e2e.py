"""The web UI in a real browser (Playwright driving Debian's chromium) against a real
``modelport up``: login from "/" → list → details → Try it → create from the form → canary
→ logs → delete; an outsider sees no other namespace's services; a parallel /favicon.ico
request during the login does not spoil it. Screenshots at 1280 and 390 px wide go to
tests/e2e/artifacts/ui/ (ignored by git), printed at the end."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import ROOT
from tests.e2e.conftest import (
    ADMIN,
    ADMIN_PASSWORD,
    PlatformProcess,
    isvc_yaml,
    start_platform,
    wait_ready,
)

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ARTIFACTS = ROOT / "tests" / "e2e" / "artifacts" / "ui"
OUTSIDER = "mallory@example.com"
OUTSIDER_PASSWORD = "outsider-password-123"
GRAPH_YAML = """apiVersion: serving.kserve.io/v1alpha1
kind: InferenceGraph
metadata: {name: chain, namespace: default}
spec:
  nodes:
    root:
      routerType: Sequence
      steps:
      - {serviceName: sklearn-iris, name: classify}
      - {nodeName: split, name: again, data: $response}
    split:
      routerType: Splitter
      steps:
      - {serviceName: sklearn-iris, weight: 80}
      - {serviceName: sklearn-iris, weight: 20}
"""
STEP_MS = 30_000  # the longest any one browser step may take
pytestmark = [
    pytest.mark.skipif(shutil.which(CHROMIUM) is None, reason="Debian's chromium is not installed"),
    pytest.mark.timeout(420),
]


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory, iris_dir: Path) -> Iterator[PlatformProcess]:
    work = tmp_path_factory.mktemp("ui-browser")
    running = start_platform(work / "data", work / "config")
    try:
        running.cli("apply", "-f", "-", input=isvc_yaml("sklearn-iris", str(iris_dir)))
        wait_ready(running, "sklearn-iris")
        running.cli(
            "users", "add", OUTSIDER, "--password-stdin", "--data-dir", str(running.data_dir),
            input=OUTSIDER_PASSWORD + "\n",
        )  # fmt: skip
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield launched
        launched.close()
    print(f"\nUI screenshots: {ARTIFACTS}")


class Shots:
    """Screenshots of the page at both widths."""

    def __init__(self, page: object, prefix: str) -> None:
        self.page = page
        self.prefix = prefix

    def take(self, name: str) -> None:
        page = self.page
        for width in (1280, 390):
            page.set_viewport_size({"width": width, "height": 900})  # type: ignore[attr-defined]
            path = ARTIFACTS / f"{self.prefix}-{name}-{width}.png"
            page.screenshot(path=str(path), full_page=True)  # type: ignore[attr-defined]
        page.set_viewport_size({"width": 1280, "height": 900})  # type: ignore[attr-defined]


def log_in(page, url: str, email: str, password: str) -> None:
    page.goto(f"{url}/")
    page.locator("#login").wait_for()
    # A parallel request while the login is under way (a favicon, as browsers send one)
    # gets 401 and starts no login of its own; the login below still lands on "/".
    assert page.evaluate("fetch('/favicon.ico').then(r => r.status)") == 401
    page.fill("#login", email)
    page.fill("#password", password)
    page.click("#submit-login")
    page.wait_for_url(f"{url}/")


def test_admin_journey(platform: PlatformProcess, browser, iris_dir: Path, tmp_path: Path):
    url = platform.url
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(STEP_MS)
    page = context.new_page()
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if "Content Security" in m.text else None)
    shots = Shots(page, "admin")
    try:
        # Login from "/", which is the list.
        log_in(page, url, ADMIN, ADMIN_PASSWORD)
        row = page.locator("#services tr[data-service='default/sklearn-iris']")
        row.wait_for()
        assert row.locator("[data-ready]").inner_text() == "True"
        assert "kserve-sklearnserver" in row.inner_text()
        shots.take("01-list")

        # Details, by its link; the overview names both URLs.
        row.get_by_role("link", name="sklearn-iris", exact=True).click()
        page.wait_for_url(f"{url}/ui/ns/default/services/sklearn-iris")
        overview = page.locator("#tab-overview").inner_text()
        assert "http://sklearn-iris.default.example.com" in overview
        assert f"{url}/serving/default/sklearn-iris" in overview
        shots.take("02-details")

        # Try it: the request is built from the model's metadata (4 inputs), and sent.
        page.get_by_role("link", name="Try it").click()
        page.wait_for_url("**tab=try")
        page.locator("#try-meta", has_text="input-0").wait_for()
        assert page.input_value("#try-body") == '{"instances":[[0,0,0,0]]}'
        page.fill("#try-body", '{"instances": [[6.8, 2.8, 4.8, 1.4]]}')
        page.click("#try-send")
        page.locator("#try-latency", has_text="HTTP 200").wait_for()
        assert '"predictions"' in page.inner_text("#try-response")
        assert "$(modelport token)" in page.inner_text("#try-curl")
        page.select_option("#try-protocol", "v2")
        assert '"inputs"' in page.input_value("#try-body")
        page.click("#try-send")
        page.locator("#try-latency", has_text="HTTP 200").wait_for()
        assert '"outputs"' in page.inner_text("#try-response")
        assert page.locator("#chat").is_hidden()  # not an OpenAI-style model
        assert "/v2/models/sklearn-iris/infer" in page.inner_text("#try-curl")
        shots.take("03-try-it")

        # Create from the form: first with a mistake, shown next to its field.
        page.get_by_role("link", name="New service").first.click()
        page.wait_for_url(f"{url}/ui/new")
        page.fill("#f-name", "Iris_2")
        page.fill("#f-storage", str(iris_dir))
        page.click("#create-submit")
        page.locator("#name-error").wait_for()
        assert "lower case" in page.inner_text("#name-error")
        assert page.get_attribute("#f-name", "aria-invalid") == "true"
        shots.take("04-create-error")
        page.fill("#f-name", "iris-two")
        page.fill("#f-min", "1")
        page.click("#create-submit")
        page.wait_for_url(f"{url}/ui/ns/default/services/iris-two?applied=iris-two")
        # The status changes to Ready without a reload (server-sent events).
        page.locator("#ready", has_text="Ready: True").wait_for(timeout=90_000)
        shots.take("05-created")

        # Canary: a new revision (another copy of the model) at 30 %, then promoted.
        second = tmp_path / "iris-v2"
        shutil.copytree(iris_dir, second)
        page.get_by_role("link", name="Canary").click()
        page.wait_for_url("**tab=canary")
        page.locator("#canary-percent").fill("30")
        assert page.inner_text("#canary-output") == "30"
        page.fill("#canary-uri", str(second))
        page.click("#canary-form button[type=submit]")
        page.wait_for_url("**tab=canary&applied=*")
        assert "canary at 30 %" in page.inner_text(".flash")
        wait_for_traffic(platform, "iris-two", {"iris-two-predictor-00002": 30})
        page.reload()
        assert "iris-two-predictor-00002" in page.inner_text("#traffic")
        shots.take("06-canary")
        page.click("#promote")
        page.wait_for_url("**tab=canary&applied=*")
        wait_for_traffic(platform, "iris-two", {"iris-two-predictor-00002": 100})

        # Metrics, drawn in the page while requests come in.
        page.get_by_role("link", name="Metrics").click()
        page.wait_for_url("**tab=metrics")
        replicas = page.locator("figure[data-series=replicas] [data-latest]")
        replicas.wait_for()
        rate = page.locator("figure[data-series=rps] [data-latest]")
        send_until(platform, "iris-two", lambda: rate.inner_text() not in ("—", "0 req/s"))
        assert page.inner_text("figure[data-series=replicas] [data-latest]") in ("1", "2")
        assert "ms" in page.inner_text("figure[data-series=latency] [data-latest]")
        shots.take("07-metrics")

        # Logs of the predictor, followed live.
        page.get_by_role("link", name="Logs").click()
        page.wait_for_url("**tab=logs")
        assert "==> iris-two-predictor-" in page.inner_text("#logs")
        page.locator("#logs-state", has_text="Following the logs live").wait_for()
        shots.take("08-logs")

        # Events: both revisions, created and ready.
        page.get_by_role("link", name="Status & events").click()
        page.wait_for_url("**tab=events")
        events = page.inner_text("#events")
        assert "RevisionReady" in events and "iris-two-predictor-00002" in events
        shots.take("08b-events")

        # Delete, with its confirmation.
        page.get_by_role("link", name="Delete").first.click()
        page.wait_for_url(f"{url}/ui/ns/default/services/iris-two/delete")
        shots.take("09-delete-confirm")
        page.click("#confirm-delete")
        page.wait_for_url(f"{url}/ui/ns/default/services?deleted=iris-two")
        assert "Deleted iris-two" in page.inner_text(".flash")
        assert page.locator("tr[data-service='default/iris-two']").count() == 0
        shots.take("10-deleted")

        # An InferenceGraph from the YAML form, and its drawing.
        page.goto(f"{url}/ui/new/yaml")
        page.fill("#y-text", GRAPH_YAML)
        page.click("#yaml-submit")
        page.locator("#yaml-results", has_text="InferenceGraph default/chain: created").wait_for()
        page.get_by_role("link", name="Graphs").click()
        page.wait_for_url(f"{url}/ui/graphs")
        page.get_by_role("link", name="chain", exact=True).click()
        page.wait_for_url(f"{url}/ui/ns/default/graphs/chain")
        assert "root · Sequence" in page.locator("#graph-drawing").text_content()
        shots.take("11-graph")

        # Access: a new API token is shown once, and works.
        page.get_by_role("link", name="Access").click()
        page.wait_for_url(f"{url}/ui/access")
        page.fill("#t-description", "ci")
        page.click("#token-create")
        value = page.inner_text("#token-value").strip()
        assert value.startswith("mpt_")
        shots.take("12-access-token")
        page.goto(f"{url}/ui/access")
        assert value not in page.content()
        bearer = {"Authorization": f"Bearer {value}"}
        r = httpx.get(f"{url}/api/v1/namespaces/default/inferenceservices", headers=bearer)
        assert r.status_code == 200
        assert problems == []  # nothing the page does breaks its own CSP
    finally:
        context.close()


def test_outsider_sees_only_their_own(platform: PlatformProcess, browser):
    url = platform.url
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(STEP_MS)
    page = context.new_page()
    shots = Shots(page, "outsider")
    try:
        log_in(page, url, OUTSIDER, OUTSIDER_PASSWORD)
        page.locator("main h1").wait_for()
        main = page.inner_text("main")
        assert "sklearn-iris" not in main
        assert "No namespaces yet" in main
        shots.take("01-empty")
        # A bookmark into another namespace answers in words, not with its services.
        page.goto(f"{url}/ui/ns/default/services/sklearn-iris")
        assert "You may not do that here" in page.inner_text("main")
        assert "kserve-sklearnserver" not in page.inner_text("main")
        shots.take("02-forbidden")
    finally:
        context.close()


def send_until(platform: PlatformProcess, name: str, done) -> None:
    """Requests to the model, a few a second, until ``done()`` (the page shows them)."""
    import time

    deadline = time.monotonic() + 60
    path = f"/serving/default/{name}/v1/models/{name}:predict"
    with platform.client() as c:
        while time.monotonic() < deadline:
            for _ in range(5):
                c.post(path, json={"instances": [[6.8, 2.8, 4.8, 1.4]]})
            if done():
                return
            time.sleep(0.5)
    raise AssertionError("the page never showed the requests")


def wait_for_traffic(platform: PlatformProcess, name: str, wanted: dict[str, int]) -> None:
    import time

    deadline = time.monotonic() + 90
    with platform.client() as c:
        while time.monotonic() < deadline:
            item = c.get(f"/api/v1/namespaces/default/inferenceservices/{name}").json()
            traffic = item["status"]["components"]["predictor"].get("traffic") or []
            found = {t["revisionName"]: t["percent"] for t in traffic}
            if all(found.get(k) == v for k, v in wanted.items()):
                return
            time.sleep(0.3)
    raise AssertionError(f"traffic of {name} never became {wanted}: {found}")


def test_chat_with_an_openai_model(platform: PlatformProcess, browser):
    echo = ROOT / "tests" / "openai" / "models" / "echo_model.py"
    doc = (
        "apiVersion: serving.kserve.io/v1beta1\nkind: InferenceService\n"
        "metadata: {name: echo, namespace: default}\nspec:\n  predictor:\n    model:\n"
        f"      modelFormat: {{name: custom}}\n      storageUri: {echo}\n"
    )
    platform.cli("apply", "-f", "-", input=doc)
    wait_ready(platform, "echo")
    url = platform.url
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(STEP_MS)
    page = context.new_page()
    try:
        log_in(page, url, ADMIN, ADMIN_PASSWORD)
        page.goto(f"{url}/ui/ns/default/services/echo?tab=try")
        page.locator("#chat").wait_for()  # shown: the model answers OpenAI's API
        page.fill("#chat-input", "hello <b>there</b>")
        page.click("#chat-send")
        reply = page.locator("#chat-log li.assistant")
        reply.wait_for()
        assert reply.inner_text() == "you said: hello <b>there</b>"  # text, not markup
        assert "HTTP 200" in page.inner_text("#chat-latency")
        assert "/openai/v1/chat/completions" in page.inner_text("#chat-curl")
        Shots(page, "chat").take("01-chat")
    finally:
        context.close()


def tab_to(page, selector: str, limit: int = 60) -> None:
    """Press Tab until ``selector`` has the focus, as someone without a mouse would."""
    for _ in range(limit):
        page.keyboard.press("Tab")
        if page.evaluate("(s) => document.activeElement.matches(s)", selector):
            return
    raise AssertionError(f"{selector} is not reachable with Tab")


def test_keyboard_only(platform: PlatformProcess, browser, iris_dir: Path):
    doc = isvc_yaml("keyboard", str(iris_dir), minReplicas=0)
    platform.cli("apply", "-f", "-", input=doc)
    url = platform.url
    context = browser.new_context(viewport={"width": 390, "height": 900})
    context.set_default_timeout(STEP_MS)
    page = context.new_page()
    try:
        log_in(page, url, ADMIN, ADMIN_PASSWORD)
        page.goto(f"{url}/ui/ns/default/services")
        # The first Tab reaches the skip link; it moves the focus to the content.
        page.keyboard.press("Tab")
        assert page.evaluate("document.activeElement.textContent") == "Skip to content"
        page.keyboard.press("Enter")
        assert page.evaluate("document.activeElement.id") == "main"
        tab_to(page, "a[aria-label='Delete keyboard']")
        page.keyboard.press("Enter")
        page.wait_for_url(f"{url}/ui/ns/default/services/keyboard/delete")
        tab_to(page, "#confirm-delete")
        page.keyboard.press("Enter")
        page.wait_for_url(f"{url}/ui/ns/default/services?deleted=keyboard")
        # The details tabs are links: Tab to one and Enter opens it.
        tab_to(page, "a[href$='/services/sklearn-iris']")
        page.keyboard.press("Enter")
        page.wait_for_url(f"{url}/ui/ns/default/services/sklearn-iris")
        tab_to(page, "a[href$='?tab=yaml']")
        page.keyboard.press("Enter")
        page.wait_for_url("**tab=yaml")
    finally:
        context.close()
