"""Two gateways (each with its identity provider) on one PostgreSQL database, as two
``modelport up`` instances with ``--database-url`` run them: whatever one issues or
changes, the other accepts or sees."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from modelport.access.authz import EDIT, VIEW
from modelport.access.caller import Identity
from modelport.gateway.app import Gateway
from modelport.gateway.server import build_gateway
from modelport.identity.db import make_engine, session_factory
from modelport.identity.keys import KeyRing
from tests.helpers.pgdatabase import fresh_database
from tests.pgserver import start_pg_server

ISSUER = "http://127.0.0.1:1/dex"


@pytest.fixture(scope="module")
def pg_url() -> Iterator[str]:
    server = start_pg_server()
    yield server.url
    server.stop()


@pytest.fixture
def pair(pg_url: str, tmp_path: Path) -> tuple[Gateway, Gateway]:
    url = fresh_database(pg_url)
    a, b = (tmp_path / "a", tmp_path / "b")
    a.mkdir()
    b.mkdir()
    return (
        build_gateway(a, ISSUER, "http://127.0.0.1:9", database_url=url),
        build_gateway(b, ISSUER, "http://127.0.0.1:9", database_url=url),
    )


def _scope(headers: dict[str, str]) -> dict:
    raw = [(k.lower().encode(), v.encode()) for k, v in headers.items()]
    return {"type": "http", "method": "GET", "path": "/", "headers": raw}


def test_nothing_is_kept_under_the_data_dirs(pair, tmp_path: Path):
    assert not list(tmp_path.glob("*/identity.db"))


def test_both_gateways_exchange_codes_with_one_client_secret(pair):
    a, b = pair
    assert a.config.client_secret == b.config.client_secret
    client = b.provider.directory.get_client(a.config.client_id)
    assert client is not None
    assert b.provider.directory.client_secret_ok(client, a.config.client_secret)


def test_a_token_issued_by_one_is_accepted_by_the_other(pair):
    a, b = pair
    user = a.provider.directory.add_user("ann@example.com", "a-long-password-1")
    access, _, _ = a.provider.tokens.issue(user, "modelport-cli", ["openid", "email"])
    identity, why = b.authn.authenticate(_scope({"Authorization": f"Bearer {access}"}))
    assert why == "" and identity is not None and identity.email == "ann@example.com"
    bad, why = b.authn.authenticate(_scope({"Authorization": f"Bearer {access[:-4]}AAAA"}))
    assert bad is None and why


def test_a_session_made_by_one_is_accepted_by_the_other_and_ended_by_it(pair):
    a, b = pair
    a.provider.directory.add_user("ann@example.com", "a-long-password-1")
    cookie = a.sessions.create(Identity("ann@example.com"))
    identity, _ = b.authn.authenticate(_scope({"Cookie": f"authservice_session={cookie}"}))
    assert identity is not None and identity.email == "ann@example.com"
    assert b.sessions.end(cookie)
    assert a.sessions.lookup(cookie) is None


def test_api_tokens_and_namespace_roles_are_shared(pair):
    a, b = pair
    a.authorizer.create_namespace("team", "ann@example.com")
    a.authorizer.set_contributor("team", "bob@example.com", VIEW)
    assert b.authorizer.role_of("bob@example.com", "team") == VIEW
    b.authorizer.set_contributor("team", "bob@example.com", EDIT)
    assert a.authorizer.role_of("bob@example.com", "team") == EDIT
    grant = b.authorizer.verify_token(a.authorizer.create_token("ann@example.com", "team", EDIT))
    assert grant is not None and grant.namespace == "team"


def test_a_key_made_later_by_the_other_is_read_when_its_token_arrives(pair):
    a, b = pair
    user = a.provider.directory.add_user("ann@example.com", "a-long-password-1")
    b.provider.tokens.verify(a.provider.tokens.issue(user, "modelport-cli", ["openid"])[0])
    a.provider.tokens.keys.rotate()  # b has the old keys cached for up to a minute
    access, _, _ = a.provider.tokens.issue(user, "modelport-cli", ["openid"])
    assert b.provider.tokens.verify(access)["sub"]


def test_instances_starting_together_make_one_signing_key(pg_url: str):
    url = fresh_database(pg_url)
    rings = [KeyRing(session_factory(make_engine(url))) for _ in range(4)]
    kids: list[str] = []
    start = threading.Barrier(len(rings))

    def first_key(ring: KeyRing) -> None:
        start.wait()
        kids.append(ring.signing_key().kid)

    threads = [threading.Thread(target=first_key, args=(r,)) for r in rings]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(kids) == len(rings) and len(set(kids)) == 1
    assert [k["kid"] for k in rings[0].jwks()["keys"]] == kids[:1]
