"""Users and clients: creation, login checks with lockout, and Dex-config syncing."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor

import bcrypt
import pytest

from modelport.identity import users
from modelport.identity.db import User, make_engine, session_factory
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


def _checks_meet(monkeypatch, parties: int) -> None:
    """Make ``parties`` password checks wait for each other: all run at the same time."""
    barrier = threading.Barrier(parties, timeout=10)
    real = users.verify_password

    def verify(stored: str, password: str) -> bool:
        barrier.wait()
        return real(stored, password)

    monkeypatch.setattr(users, "verify_password", verify)


def test_concurrent_failures_are_all_counted(directory, monkeypatch):
    # Three wrong passwords checked at once: none of the counts may be lost (a
    # read-modify-write around the check would store 1), so the account locks.
    directory.add_user("a@example.com", "right-password")
    _checks_meet(monkeypatch, 3)
    with ThreadPoolExecutor(3) as threads:
        results = list(
            threads.map(lambda _: directory.authenticate("a@example.com", "wrong"), range(3))
        )
    assert results == [None, None, None]
    assert directory.is_locked("a@example.com")
    # reset to zero at the lock: the next window starts with all its attempts
    assert directory.get_user("a@example.com").failed_logins == 0


def test_right_password_checked_while_guesses_lock_the_account_is_refused(directory, monkeypatch):
    directory.add_user("a@example.com", "right-password")
    for _ in range(2):
        assert directory.authenticate("a@example.com", "wrong") is None
    right_started, locked = threading.Event(), threading.Event()
    real = users.verify_password

    def verify(stored: str, password: str) -> bool:
        if password == "right-password":
            right_started.set()
            assert locked.wait(10)
        return real(stored, password)

    monkeypatch.setattr(users, "verify_password", verify)
    with ThreadPoolExecutor(1) as threads:
        right = threads.submit(directory.authenticate, "a@example.com", "right-password")
        assert right_started.wait(10)  # read the account while it was still unlocked
        assert directory.authenticate("a@example.com", "wrong-again") is None  # the third
        assert directory.is_locked("a@example.com")
        locked.set()
        assert right.result(10) is None
    assert directory.is_locked("a@example.com")


def test_failure_ending_during_a_lock_does_not_count(directory):
    directory.add_user("a@example.com", "right-password")
    for _ in range(3):
        directory.authenticate("a@example.com", "wrong", now=1000)
    user = directory.get_user("a@example.com")
    directory._record_failure(user.user_id, 1001)  # a guess read before the lock, ending now
    after = directory.get_user("a@example.com")
    assert (after.failed_logins, after.locked_until) == (0, 1060)


def test_concurrent_right_passwords_all_succeed(directory, monkeypatch):
    # More logins of one user at once than max_failures: none is refused, nothing locks.
    directory.add_user("a@example.com", "right-password")
    _checks_meet(monkeypatch, 6)
    with ThreadPoolExecutor(6) as threads:
        results = list(
            threads.map(
                lambda _: directory.authenticate("a@example.com", "right-password"), range(6)
            )
        )
    assert all(r is not None for r in results)
    user = directory.get_user("a@example.com")
    assert (user.failed_logins, user.locked_until) == (0, 0.0)


def test_no_connection_is_held_during_the_check(tmp_path, monkeypatch):
    # One connection in the pool and none to spare: the check must give it back first.
    engine = make_engine(f"sqlite:///{tmp_path}/id.db")
    directory = Directory(session_factory(engine))
    directory.add_user("a@example.com", "right-password")
    real = users.verify_password

    def verify(stored: str, password: str) -> bool:
        assert engine.pool.checkedout() == 0
        return real(stored, password)

    monkeypatch.setattr(users, "verify_password", verify)
    assert directory.authenticate("a@example.com", "right-password") is not None
    assert directory.authenticate("a@example.com", "wrong-password") is None


def test_login_runs_on_the_hashing_pool(directory):
    directory.add_user("a@example.com", "right-password")
    user = asyncio.run(directory.login("a@example.com", "right-password"))
    assert user is not None and user.email == "a@example.com"
    assert asyncio.run(directory.login("a@example.com", "wrong-password")) is None


def test_upgrade_does_not_undo_a_password_change(directory, monkeypatch):
    # A bcrypt hash is upgraded to argon2id after a login, but only over the hash checked.
    directory.add_user("a@example.com", "first-password")
    user_id = directory.get_user("a@example.com").user_id
    old = bcrypt.hashpw(b"first-password", bcrypt.gensalt(4)).decode()
    changed = users.hash_password("second-password")
    with directory._sessions.begin() as db:
        db.get(User, user_id).password_hash = old
    real_hash = users.hash_password

    def hash_while_changed(password: str) -> str:
        with directory._sessions.begin() as db:  # an admin changes it mid-login
            db.get(User, user_id).password_hash = changed
        return real_hash(password)

    monkeypatch.setattr(users, "hash_password", hash_while_changed)
    assert directory.authenticate("a@example.com", "first-password") is not None
    monkeypatch.undo()
    assert directory.get_user("a@example.com").password_hash == changed
    assert directory.authenticate("a@example.com", "second-password") is not None


def test_bcrypt_hash_is_upgraded_after_login(directory):
    directory.add_user("a@example.com", "first-password")
    with directory._sessions.begin() as db:
        db.get(User, directory.get_user("a@example.com").user_id).password_hash = bcrypt.hashpw(
            b"first-password", bcrypt.gensalt(4)
        ).decode()
    assert directory.authenticate("a@example.com", "first-password") is not None
    assert directory.get_user("a@example.com").password_hash.startswith("$argon2id$")


def test_unknown_login_names_lock_like_accounts(directory):
    # Issue 9, finding 6: only real accounts used to lock, which told them apart.
    directory.add_user("a@example.com", "right-password")
    seen = {}
    for name in ("a@example.com", "Ghost@Example.com"):
        steps = []
        for now in (1000, 1001, 1002, 1003, 1030):  # the 4th and 5th fail while locked
            steps.append(directory.is_locked(name, now=now))
            assert directory.authenticate(name, "wrong-password", now=now) is None
        steps += [directory.is_locked(name, now=1062), directory.is_locked(name.upper(), now=1062)]
        # the count started again at the lock: two more failures do not lock
        for now in (1063, 1064):
            directory.authenticate(name, "wrong-password", now=now)
        steps.append(directory.is_locked(name, now=1065))
        seen[name] = steps
    assert seen["a@example.com"] == seen["Ghost@Example.com"]
    assert seen["a@example.com"] == [False, False, False, True, True, False, False, False]


def test_name_lockout_memory_is_bounded():
    from modelport.identity.lockout import NameLockout

    names = NameLockout(LockoutPolicy(max_failures=1, lock_seconds=60), max_names=10)
    for i in range(100):
        names.failed(f"user{i}@example.com", 1000)
    assert len(names._counts) == 10
    assert names.locked("user99@example.com", 1001)
    assert not names.locked("user0@example.com", 1001)  # the least recent went first


def _sync_bcrypt_user(directory: Directory, cost: int) -> str:
    hashed = bcrypt.hashpw(b"the-password", bcrypt.gensalt(cost)).decode().replace("$2b$", "$2y$")
    entry = {"email": "k@example.com", "hash": hashed, "userID": "1"}
    directory.sync_config(parse_dex_config({"staticPasswords": [entry]}))
    return hashed


def test_the_dummy_hash_follows_the_stored_kind(directory):
    assert directory.dummy_hash().startswith("$argon2id$")  # no users: our default
    _sync_bcrypt_user(directory, 5)
    assert directory.dummy_hash().startswith("$2b$05$")
    for i in range(2):
        directory.add_user(f"u{i}@example.com", "long-enough")
    assert directory.dummy_hash().startswith("$argon2id$v=19$m=65536,t=3,p=4$")


def _slowest_of_fastest(check, runs: int = 3) -> float:
    import time

    best = float("inf")
    for _ in range(runs):
        start = time.perf_counter()
        check()
        best = min(best, time.perf_counter() - start)
    return best


def test_unknown_names_cost_what_accounts_cost(tmp_path):
    # Kubeflow's example users are bcrypt, cost 12: the default argon2id dummy took half
    # the time of a wrong password for a real account.
    directory = Directory(session_factory(make_engine(f"sqlite:///{tmp_path}/id.db")))
    _sync_bcrypt_user(directory, 12)
    directory.authenticate("x@example.com", "warm-up")  # the dummy is made off the clock
    known = _slowest_of_fastest(lambda: directory.authenticate("k@example.com", "wrong-pass"))
    unknown = _slowest_of_fastest(lambda: directory.authenticate("x@example.com", "wrong-pass"))
    assert 0.67 < unknown / known < 1.5, (known, unknown)
