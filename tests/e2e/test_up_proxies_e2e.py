"""`modelport up` trusts X-Forwarded-For only from a --trusted-proxy (issue 9, finding 9d)."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.e2e.conftest import ADMIN, ADMIN_PASSWORD, start_platform

THROTTLE_AFTER = 20  # identity/throttle.py: FailureThrottle.max_failures


def _login(url: str, username: str, password: str, forwarded_for: str) -> int:
    r = httpx.post(
        f"{url}/dex/token",
        data={
            "grant_type": "password",
            "username": username,
            "password": password,
            "client_id": "modelport-cli",
            "scope": "openid",
        },
        headers={"X-Forwarded-For": forwarded_for},
        timeout=30,
    )
    return r.status_code


def test_up_counts_the_peer_not_its_claimed_address(tmp_path: Path):
    platform = start_platform(tmp_path / "data", tmp_path / "config")
    try:
        for i in range(THROTTLE_AFTER):
            status = _login(platform.url, f"guess{i}@example.com", "wrong", f"198.51.100.{i}")
            assert status == 401
        assert _login(platform.url, ADMIN, ADMIN_PASSWORD, "198.51.100.250") == 429
    finally:
        platform.stop()
    with pytest.raises(RuntimeError, match="--trusted-proxy '\\*': give an IP address"):
        start_platform(tmp_path / "data2", tmp_path / "config2", args=("--trusted-proxy", "*"))
