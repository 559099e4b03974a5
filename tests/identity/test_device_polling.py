"""The device grant's timing (RFC 8628 §3.5): the polling interval, approval, and expiry.

In process with a moved clock: the provider answers "slow_down" to a poll within
POLL_INTERVAL_S of the last, and "expired_token" once DEVICE_TTL_S have passed, which over
real sockets would mean waiting that long.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from starlette.testclient import TestClient

from modelport.identity.app import create_app
from modelport.identity.clock import ManualClock
from modelport.identity.db import make_engine, session_factory
from modelport.identity.oauth2.device import DEVICE_GRANT, DEVICE_TTL_S, POLL_INTERVAL_S
from modelport.identity.provider import Provider

EMAIL, PASSWORD = "device-owner@example.com", "device-owner-password"


@pytest.fixture
def http(tmp_path, clock: ManualClock) -> Iterator[TestClient]:
    sessions = session_factory(make_engine(f"sqlite:///{tmp_path}/id.db"))
    provider = Provider.create("http://testserver/dex", sessions, clock=clock)
    provider.skip_approval = True  # as Kubeflow's Dex config has it
    provider.directory.add_user(EMAIL, PASSWORD)
    with TestClient(create_app(provider), follow_redirects=False) as c:
        yield c


def start(c: TestClient) -> dict[str, str]:
    r = c.post("/dex/device/code", data={"client_id": "modelport-cli", "scope": "openid email"})
    assert r.status_code == 200, r.text
    return r.json()


def poll(c: TestClient, device: dict[str, str]) -> httpx.Response:
    data = {
        "grant_type": DEVICE_GRANT,
        "device_code": device["device_code"],
        "client_id": "modelport-cli",
    }
    return c.post("/dex/token", data=data)


def approve(c: TestClient, device: dict[str, str]) -> None:
    """The person's side: the user code, the password login, the provider's callback."""
    to_auth = c.post("/dex/device/auth/verify_code", data={"user_code": device["user_code"]})
    assert to_auth.status_code == 302, to_auth.text
    login_url = c.get(to_auth.headers["location"]).headers["location"]
    posted = c.post(login_url, data={"login": EMAIL, "password": PASSWORD})
    assert posted.status_code == 303, posted.text
    callback = c.get(posted.headers["location"]).headers["location"]
    done = c.get(callback)
    assert done.status_code == 200 and "Login Successful" in done.text


def error(r: httpx.Response) -> tuple[int, str]:
    return r.status_code, r.json()["error"]


def test_polling_faster_than_the_interval_is_told_to_slow_down(http, clock):
    device = start(http)
    assert int(device["interval"]) == POLL_INTERVAL_S
    assert error(poll(http, device)) == (401, "authorization_pending")
    clock.advance(POLL_INTERVAL_S - 0.1)
    assert error(poll(http, device)) == (400, "slow_down")
    # the interval counts from the last poll, the refused one included
    clock.advance(POLL_INTERVAL_S)
    assert error(poll(http, device)) == (401, "authorization_pending")


def test_an_approved_device_gets_its_tokens_once(http, clock):
    device = start(http)
    assert error(poll(http, device)) == (401, "authorization_pending")
    approve(http, device)
    tokens = poll(http, device)  # no interval to wait once approved
    assert tokens.status_code == 200, tokens.text
    assert "id_token" in tokens.json()
    clock.advance(POLL_INTERVAL_S)
    assert error(poll(http, device)) == (400, "invalid_request")


def test_a_device_code_expires(http, clock):
    device = start(http)
    assert int(device["expires_in"]) == DEVICE_TTL_S
    clock.advance(DEVICE_TTL_S - 1)
    assert error(poll(http, device)) == (401, "authorization_pending")
    clock.advance(2)
    assert error(poll(http, device)) == (400, "expired_token")
    # and the person can no longer approve it
    late = http.post("/dex/device/auth/verify_code", data={"user_code": device["user_code"]})
    assert late.status_code == 400 and "Invalid or Expired User Code" in late.text
