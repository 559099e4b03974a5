"""X-Forwarded-For names the client only when a --trusted-proxy sent it (issue 9, finding 9d).

uvicorn's default trusts it from loopback, so a local client could give every failed login a
new address and never meet the per-address login throttle.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator

import httpx
import pytest

from tests.gateway.conftest import GatewayProcess, start_gateway
from tests.identity.conftest import (
    AUTHSERVICE_ID,
    AUTHSERVICE_SECRET,
    DEX_CONFIG,
    USER_EMAIL,
    USER_PASSWORD,
)

THROTTLE_AFTER = 20  # identity/throttle.py: FailureThrottle.max_failures


def _gateway(tmp_path_factory: pytest.TempPathFactory, *extra: str) -> Iterator[GatewayProcess]:
    work = tmp_path_factory.mktemp("proxies")
    config = work / "dex.yaml"
    config.write_text(DEX_CONFIG)
    gw = start_gateway(work / "data", "http://127.0.0.1:9", config, *extra)
    yield gw
    gw.proc.terminate()
    gw.proc.wait(10)


@pytest.fixture
def direct(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    yield from _gateway(tmp_path_factory)


@pytest.fixture
def proxied(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    yield from _gateway(tmp_path_factory, "--trusted-proxy", "127.0.0.1")


def _login(c: httpx.Client, username: str, password: str, forwarded_for: str) -> int:
    r = c.post(
        "/dex/token",
        data={
            "grant_type": "password",
            "username": username,
            "password": password,
            "scope": "openid",
        },
        auth=(AUTHSERVICE_ID, AUTHSERVICE_SECRET),
        headers={"X-Forwarded-For": forwarded_for},
    )
    return r.status_code


def test_a_client_cannot_choose_its_address(direct: GatewayProcess) -> None:
    with httpx.Client(base_url=direct.url, timeout=30) as c:
        for i in range(THROTTLE_AFTER):
            # a new account each time (no per-account lockout), a new "address" each time
            assert _login(c, f"guess{i}@example.com", "wrong", f"198.51.100.{i}") == 401
        # every failure counted against the real peer, 127.0.0.1
        assert _login(c, USER_EMAIL, USER_PASSWORD, "198.51.100.250") == 429


def test_a_trusted_proxy_names_the_client(proxied: GatewayProcess) -> None:
    with httpx.Client(base_url=proxied.url, timeout=30) as c:
        for i in range(THROTTLE_AFTER):
            assert _login(c, f"guess{i}@example.com", "wrong", "203.0.113.7") == 401
        assert _login(c, USER_EMAIL, USER_PASSWORD, "203.0.113.7") == 429
        assert _login(c, USER_EMAIL, USER_PASSWORD, "203.0.113.8") == 200


@pytest.mark.parametrize("value", ["*", "localhost", "10.0.0.0/33", "unix:/x"])
def test_trusted_proxy_values_are_checked(value: str, tmp_path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "modelport", "gateway", "--upstream", "http://127.0.0.1:9"]
        + ["--data-dir", str(tmp_path), "--port", "0", "--trusted-proxy", value],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert "--trusted-proxy" in proc.stderr and "IP address or network" in proc.stderr
