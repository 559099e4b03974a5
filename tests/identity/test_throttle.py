"""Per-address throttling of failed logins (provider app in-process, real SQLite file)."""

from __future__ import annotations

from starlette.testclient import TestClient

from modelport.identity.app import create_app
from modelport.identity.clock import ManualClock
from modelport.identity.db import make_engine, session_factory
from modelport.identity.dex_config import parse_dex_config
from modelport.identity.provider import Provider
from modelport.identity.throttle import FailureThrottle
from tests.helpers.kubeflow import USER_EMAIL, USER_HASH, USER_PASSWORD


def test_throttle_counts_failures_only_and_forgets():
    clock = ManualClock()
    t = FailureThrottle(max_failures=3, window_s=300, clock=clock)
    for _ in range(3):
        assert not t.blocked("10.0.0.1")
        t.failed("10.0.0.1")
        clock.advance(200)  # each failure restarts the window: 600 s in all, still counted
    assert t.blocked("10.0.0.1") and not t.blocked("10.0.0.2")
    clock.advance(99)
    assert t.blocked("10.0.0.1")
    clock.advance(2)  # 301 s since the last failure
    assert not t.blocked("10.0.0.1")


def test_spraying_many_accounts_from_one_address_is_refused(tmp_path):
    config = parse_dex_config(
        {
            "staticPasswords": [{"email": f"u{i}@example.com", "hash": USER_HASH} for i in range(6)]
            + [{"email": USER_EMAIL, "hash": USER_HASH}]
        }
    )
    provider = Provider.create(
        "http://testserver/dex", session_factory(make_engine(f"sqlite:///{tmp_path}/id.db")), config
    )
    provider.throttle = FailureThrottle(max_failures=4, window_s=60)
    with TestClient(create_app(provider)) as c:

        def grant(user: str, password: str):
            return c.post(
                "/dex/token",
                data={
                    "grant_type": "password",
                    "username": user,
                    "password": password,
                    "scope": "openid",
                    "client_id": "modelport-cli",
                },
            )

        # one wrong guess per account: no account lockout, but the address is counted
        for i in range(4):
            assert grant(f"u{i}@example.com", "guess-123").status_code == 401
        blocked = grant("u5@example.com", "guess-123")
        assert blocked.status_code == 429
        # even a right password from that address waits until the window passes
        assert grant(USER_EMAIL, USER_PASSWORD).status_code == 429
