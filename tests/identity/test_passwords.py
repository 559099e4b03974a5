"""Password hashing: bcrypt hashes from Dex configs verify; new hashes are argon2id."""

from __future__ import annotations

import bcrypt
import pytest

from modelport.identity.passwords import (
    WeakPassword,
    check_strength,
    hash_password,
    needs_rehash,
    verify_password,
)


def test_argon2_round_trip():
    stored = hash_password("correct horse")
    assert stored.startswith("$argon2id$")
    assert verify_password(stored, "correct horse")
    assert not verify_password(stored, "correct horsE")
    assert not needs_rehash(stored)


def test_dex_bcrypt_hash_verifies_and_asks_for_upgrade():
    # The hash Dex's example config ships for the password "password".
    dex_hash = "$2a$10$2b2cU8CPhOTaGrs1HRQuAueS7JTT5ZHsHSzYiFPm1leZck7Mc8T4W"
    assert verify_password(dex_hash, "password")
    assert not verify_password(dex_hash, "Password")
    assert needs_rehash(dex_hash)


def test_bcrypt_ignores_nothing_past_72_bytes():
    long = "a" * 80
    stored = bcrypt.hashpw(long[:72].encode(), bcrypt.gensalt(rounds=4)).decode()
    # bcrypt itself would accept the 80-byte password; we refuse it instead of truncating.
    assert not verify_password(stored, long)


@pytest.mark.parametrize("stored", ["", "plain-text", "$2b$garbage", "$argon2id$nonsense"])
def test_garbage_hashes_never_verify(stored):
    assert not verify_password(stored, "anything")


def test_strength_rules():
    check_strength("eight888")
    with pytest.raises(WeakPassword):
        check_strength("short")
    with pytest.raises(WeakPassword):
        check_strength("é" * 40)  # 80 bytes


def test_hash_pool_runs_a_few_at_a_time_in_order_of_arrival():
    import asyncio
    import threading

    from modelport.identity.passwords import HashPool

    pool = HashPool(workers=2)
    running, most, started = [0], [0], []
    lock = threading.Lock()
    # Each job waits until a second one runs beside it: with two workers jobs run in
    # pairs (0, 1), (2, 3), ...; with one worker the barrier would time out and fail.
    pair = threading.Barrier(2, timeout=10)

    def job(i: int) -> int:
        with lock:
            started.append(i)
            running[0] += 1
            most[0] = max(most[0], running[0])
        pair.wait()
        with lock:
            running[0] -= 1
        return i

    async def burst() -> list[int]:
        return await asyncio.gather(*(pool.run(job, i) for i in range(10)))

    try:
        assert asyncio.run(burst()) == list(range(10))
    finally:
        pool.close()
    assert most[0] == 2
    # in order of arrival: a pair starts only after the one before it has met
    assert [sorted(started[i : i + 2]) for i in range(0, 10, 2)] == [
        [i, i + 1] for i in range(0, 10, 2)
    ]


def test_hash_pool_drops_jobs_whose_caller_gave_up():
    import asyncio
    import contextlib
    import threading

    from modelport.identity.passwords import HashPool

    pool = HashPool(workers=1)
    holding, gate, ran = threading.Event(), threading.Event(), []

    def hold() -> None:
        holding.set()
        gate.wait(10)

    async def scenario() -> None:
        first = asyncio.ensure_future(pool.run(hold))
        second = asyncio.ensure_future(pool.run(ran.append, "second"))
        # Both tasks are submitted before the loop gets to this thread's result; once the
        # first job runs, the second waits in the queue behind it.
        assert await asyncio.to_thread(holding.wait, 10)
        assert not second.done()
        second.cancel()  # e.g. the client disconnected while queued
        # Once the task has taken its cancellation, the queued job is cancelled too; only
        # then may the worker move on.
        with contextlib.suppress(asyncio.CancelledError):
            await second
        gate.set()
        await first
        await pool.run(ran.append, "third")

    try:
        asyncio.run(scenario())
    finally:
        pool.close()
    assert ran == ["third"]
