"""Namespaces, roles and API tokens (unit level, real SQLite file)."""

from __future__ import annotations

import pytest

from modelport.access.authz import Authorizer, AuthzError
from modelport.identity.db import make_engine


@pytest.fixture
def authz(tmp_path, clock):
    return Authorizer(make_engine(f"sqlite:///{tmp_path}/gw.db"), clock=clock)


def test_roles(authz):
    authz.create_namespace("team-a", "Owner@Example.com")
    authz.set_contributor("team-a", "viewer@example.com", "view")
    authz.set_contributor("team-a", "editor@example.com", "edit")
    assert authz.refusal("owner@example.com", "team-a", "edit") is None
    assert authz.refusal("editor@example.com", "team-a", "edit") is None
    assert authz.refusal("viewer@example.com", "team-a", "view") is None
    assert "only view" in authz.refusal("viewer@example.com", "team-a", "edit")
    assert "no access" in authz.refusal("stranger@example.com", "team-a", "view")
    assert authz.refusal("stranger@example.com", "team-a", "edit", admin=True) is None
    assert "does not exist" in authz.refusal("owner@example.com", "team-b", "view")
    authz.remove_contributor("team-a", "viewer@example.com")
    assert authz.refusal("viewer@example.com", "team-a", "view") is not None


@pytest.mark.parametrize("name", ["", "UPPER", "-lead", "trail-", "a" * 64, "dots.no", "x_y"])
def test_invalid_namespace_names(authz, name):
    with pytest.raises(AuthzError):
        authz.create_namespace(name, "o@example.com")


def test_tokens(authz):
    authz.create_namespace("team-a", "owner@example.com")
    authz.set_contributor("team-a", "viewer@example.com", "view")
    token = authz.create_token("owner@example.com", "team-a", "edit", ttl_s=60)
    grant = authz.verify_token(token)
    assert (grant.namespace, grant.role, grant.owner) == ("team-a", "edit", "owner@example.com")
    # a viewer cannot mint an edit token
    with pytest.raises(AuthzError):
        authz.create_token("viewer@example.com", "team-a", "edit")
    # tampering, unknown ids and garbage all fail
    assert authz.verify_token(token[:-2] + "xx") is None
    assert authz.verify_token("mpt_0000000000000000_abc") is None
    assert authz.verify_token("not-a-token") is None
    assert authz.verify_token("mpt_" + "a" * 300) is None
    # revocation
    authz.revoke_token(grant.token_id)
    assert authz.verify_token(token) is None
    # the stored row has no secret in clear
    (row,) = authz.list_tokens("owner@example.com")
    assert token.split("_", 2)[2] not in row.secret_sha256


def test_token_expiry_and_lost_access(authz, clock):
    authz.create_namespace("team-a", "owner@example.com")
    authz.set_contributor("team-a", "dev@example.com", "edit")
    short = authz.create_token("dev@example.com", "team-a", "view", ttl_s=60)
    clock.advance(60)
    assert authz.verify_token(short) is not None  # valid through its last second
    clock.advance(1)
    assert authz.verify_token(short) is None
    lasting = authz.create_token("dev@example.com", "team-a", "view")
    assert authz.verify_token(lasting) is not None
    authz.remove_contributor("team-a", "dev@example.com")
    assert authz.verify_token(lasting) is None


def test_roles_of_lists_every_namespace_of_a_user_in_one_go(authz):
    authz.create_namespace("mine", "ann@example.com")
    authz.create_namespace("theirs", "bob@example.com")
    authz.create_namespace("shared", "bob@example.com")
    authz.create_namespace("other", "bob@example.com")
    authz.set_contributor("shared", "Ann@Example.com", "view")
    authz.set_contributor("theirs", "ann@example.com", "edit")
    assert authz.roles_of("ANN@example.com") == {"mine": "edit", "shared": "view", "theirs": "edit"}
    assert authz.roles_of("nobody@example.com") == {}
