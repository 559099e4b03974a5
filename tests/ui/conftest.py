"""One real ``modelport up`` for the UI's route tests, the admin's and an outsider's
credentials, and reading a page's CSRF token."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from tests.conftest import password_grant
from tests.e2e.conftest import PlatformProcess, start_platform

OUTSIDER = "mallory@example.com"
OUTSIDER_PASSWORD = "outsider-password-123"
HTML = {"Accept": "text/html"}


@dataclass
class Ui:
    platform: PlatformProcess
    admin: dict[str, str]
    outsider: dict[str, str]

    def client(self, headers: dict[str, str]) -> httpx.Client:
        return httpx.Client(base_url=self.platform.url, headers={**HTML, **headers}, timeout=60)


@pytest.fixture(scope="module")
def ui(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Ui]:
    work = tmp_path_factory.mktemp("ui")
    platform = start_platform(work / "data", work / "config")
    try:
        platform.cli(
            "users", "add", OUTSIDER, "--password-stdin", "--data-dir", str(platform.data_dir),
            input=OUTSIDER_PASSWORD + "\n",
        )  # fmt: skip
        outsider = password_grant(platform.url, OUTSIDER, OUTSIDER_PASSWORD)
        admin = {"Authorization": f"Bearer {platform.token()}"}
        yield Ui(platform, admin, outsider)
    finally:
        platform.stop()


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([0-9a-f]+)"', html)
    assert found, "no CSRF token in the page"
    return found.group(1)
