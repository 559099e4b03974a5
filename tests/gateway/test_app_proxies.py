"""X-Forwarded-For names the client only when a --trusted-proxy sent it (issue 9, finding 9d).

uvicorn's default trusts it from loopback, so a local client could give every failed login a
new address and never meet the per-address login throttle.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator

import pytest

from tests.helpers.kubeflow import AS_AUTHSERVICE, DEX_CONFIG, USER_EMAIL, USER_PASSWORD
from tests.helpers.login import password_grant
from tests.helpers.servers import NO_UPSTREAM, CliServer, CliServers

THROTTLE_AFTER = 20  # identity/throttle.py: FailureThrottle.max_failures


@pytest.fixture
def direct(cli_servers: CliServers) -> Iterator[CliServer]:
    gw = cli_servers.gateway(DEX_CONFIG)
    yield gw
    gw.stop()  # each test counts failures from a fresh throttle


@pytest.fixture
def proxied(cli_servers: CliServers) -> Iterator[CliServer]:
    gw = cli_servers.gateway(DEX_CONFIG, "--trusted-proxy", "127.0.0.1")
    yield gw
    gw.stop()


def _login(gw: CliServer, username: str, password: str, forwarded_for: str) -> int:
    headers = {"X-Forwarded-For": forwarded_for}
    r = password_grant(
        gw, user=username, password=password, scope="openid", headers=headers, **AS_AUTHSERVICE
    )
    return r.status_code


def test_a_client_cannot_choose_its_address(direct: CliServer) -> None:
    for i in range(THROTTLE_AFTER):
        # a new account each time (no per-account lockout), a new "address" each time
        assert _login(direct, f"guess{i}@example.com", "wrong", f"198.51.100.{i}") == 401
    # every failure counted against the real peer, 127.0.0.1
    assert _login(direct, USER_EMAIL, USER_PASSWORD, "198.51.100.250") == 429


def test_a_trusted_proxy_names_the_client(proxied: CliServer) -> None:
    for i in range(THROTTLE_AFTER):
        assert _login(proxied, f"guess{i}@example.com", "wrong", "203.0.113.7") == 401
    assert _login(proxied, USER_EMAIL, USER_PASSWORD, "203.0.113.7") == 429
    assert _login(proxied, USER_EMAIL, USER_PASSWORD, "203.0.113.8") == 200


@pytest.mark.parametrize("value", ["*", "localhost", "10.0.0.0/33", "unix:/x"])
def test_trusted_proxy_values_are_checked(value: str, tmp_path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "modelport", "gateway", "--upstream", NO_UPSTREAM]
        + ["--data-dir", str(tmp_path), "--port", "0", "--trusted-proxy", value],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert "--trusted-proxy" in proc.stderr and "IP address or network" in proc.stderr
