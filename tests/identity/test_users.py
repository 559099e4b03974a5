"""Users and clients: creation, login checks with lockout, and Dex-config syncing."""

from __future__ import annotations

import pytest

from modelport.identity.db import make_engine, session_factory
from modelport.identity.dex_config import parse_dex_config
from modelport.identity.passwords import WeakPassword
from modelport.identity.users import Directory, LockoutPolicy, UserError

DEX_HASH_PASSWORD = "$2a$10$2b2cU8CPhOTaGrs1HRQuAueS7JTT5ZHsHSzYiFPm1leZck7Mc8T4W"  # "password"


@pytest.fixture
def directory(tmp_path):
    sessions = session_factory(make_engine(f"sqlite:///{tmp_path}/id.db"))
    return Directory(sessions, LockoutPolicy(max_failures=3, lock_seconds=60))


def test_add_and_authenticate(directory):
    user = directory.add_user("Alice@Example.com", "s3cret-pass", groups=["ml"])
    assert user.email == "alice@example.com"
    assert directory.authenticate("ALICE@example.com", "s3cret-pass").user_id == user.user_id
    assert directory.authenticate("alice@example.com", "wrong-pass") is None
    assert directory.authenticate("nobody@example.com", "s3cret-pass") is None
    with pytest.raises(UserError):
        directory.add_user("alice@example.com", "another-pass")
    with pytest.raises(WeakPassword):
        directory.add_user("bob@example.com", "short")
    with pytest.raises(UserError):
        directory.add_user("not-an-email", "long-enough")


def test_lockout_after_repeated_failures(directory):
    directory.add_user("a@example.com", "right-password")
    for _ in range(3):
        assert directory.authenticate("a@example.com", "wrong", now=1000) is None
    assert directory.is_locked("a@example.com", now=1001)
    # even the right password is refused while locked
    assert directory.authenticate("a@example.com", "right-password", now=1001) is None
    assert directory.authenticate("a@example.com", "right-password", now=1061) is not None


def test_password_change_and_delete(directory):
    directory.add_user("a@example.com", "first-password")
    directory.set_password("a@example.com", "second-password")
    assert directory.authenticate("a@example.com", "first-password") is None
    assert directory.authenticate("a@example.com", "second-password") is not None
    directory.delete_user("a@example.com")
    assert directory.get_user("a@example.com") is None
    with pytest.raises(UserError):
        directory.delete_user("a@example.com")


def test_dex_config_users_and_clients_sync(directory):
    cfg = parse_dex_config(
        {
            "staticPasswords": [
                {
                    "email": "admin@example.com",
                    "hash": DEX_HASH_PASSWORD,
                    "username": "admin",
                    "userID": "08a8684b-db88-4b73-90a9-3cd1661f5466",
                }
            ],
            "staticClients": [
                {"id": "app", "secret": "app-secret", "redirectURIs": ["http://x/cb"]}
            ],
        }
    )
    directory.sync_config(cfg)
    user = directory.authenticate("admin@example.com", "password")
    assert user is not None and user.user_id == "08a8684b-db88-4b73-90a9-3cd1661f5466"
    client = directory.get_client("app")
    assert client.redirect_uris == ["http://x/cb"]
    assert directory.client_secret_ok(client, "app-secret")
    assert not directory.client_secret_ok(client, "app-secreT")
    assert not directory.client_secret_ok(client, None)
    # removing them from the file removes them here; CLI users are left alone
    directory.add_user("cli@example.com", "cli-password")
    directory.sync_config(parse_dex_config({}))
    assert directory.get_user("admin@example.com") is None
    assert directory.get_client("app") is None
    assert directory.get_user("cli@example.com") is not None


def test_config_user_cannot_take_over_cli_user(directory):
    directory.add_user("a@example.com", "cli-password")
    cfg = parse_dex_config(
        {"staticPasswords": [{"email": "a@example.com", "hash": DEX_HASH_PASSWORD}]}
    )
    with pytest.raises(UserError):
        directory.sync_config(cfg)
