"""Pending auth and device requests: a bound per client (oldest go first) and purges."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from modelport.identity.db import AuthRequest, DeviceCode
from modelport.identity.oauth2.device import _device_code
from modelport.identity.provider import AUTH_REQUEST_TTL_S, Provider


@pytest.fixture()
def provider(provider: Provider) -> Provider:
    """The shared in-process provider (conftest.py), with a second client and a low bound."""
    provider.directory.upsert_client("other", secret="s", redirect_uris=["http://x/cb"])
    provider.max_pending_per_client = 5
    return provider


def _new(provider: Provider, client_id: str = "modelport-cli") -> str:
    req = provider.new_auth_request(client_id=client_id, redirect_uri="http://x/cb", scopes=[])
    return req.request_id


def test_a_clients_oldest_pending_requests_go_past_the_bound(provider):
    made = [_new(provider) for _ in range(8)]
    others = [_new(provider, "other") for _ in range(2)]
    with provider.sessions() as db:
        kept = set(db.scalars(select(AuthRequest.request_id)))
    assert kept == set(made[3:]) | set(others)


def test_device_requests_are_bounded_per_client(provider):
    for _ in range(7):
        assert _device_code(provider, "modelport-cli", "openid").status_code == 200
    with provider.sessions() as db:
        assert len(db.scalars(select(DeviceCode)).all()) == 5


def test_expired_pending_requests_are_purged(provider, clock):
    _new(provider, "other")
    clock.advance(AUTH_REQUEST_TTL_S + 1)  # expired, and the once-a-minute purge is due
    new = _new(provider)
    with provider.sessions() as db:
        assert set(db.scalars(select(AuthRequest.request_id))) == {new}
