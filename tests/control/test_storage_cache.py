"""The model cache's size limit, with real archives unpacked into a real cache directory:
least recently used first, never a held model, a model over the whole limit still served,
sizes and last use read back after a restart, and fetches at once."""

from __future__ import annotations

import io
import logging
import os
import tarfile
import threading
import time
from pathlib import Path

import pytest

from modelport.control.storage import CacheIndex, ModelLease, Storage

KB = 1000


def model_archive(folder: Path, name: str, size: int) -> str:
    """A .tar.gz holding one ``size``-byte file; its URI (a local archive is cached)."""
    path = folder / f"{name}.tar.gz"
    data = name.encode() * (size // len(name)) + b"x" * (size % len(name))
    with tarfile.open(path, "w:gz") as tar:
        info = tarfile.TarInfo("model.bin")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return str(path)


def make_storage(root: Path, limit: int | None) -> Storage:
    return Storage(root / "cache", root / "volumes", max_cache_bytes=limit)


@pytest.fixture
def models(tmp_path: Path) -> Path:
    folder = tmp_path / "models"
    folder.mkdir()
    return folder


def use(storage: Storage, uri: str) -> Path:
    """Fetch ``uri`` for namespace default, serve it, and let it go (as a revision would)."""
    with storage.checkout(uri, namespace="default") as lease:
        assert (lease.path / "model.bin").is_file()
        return lease.path


def test_over_the_limit_the_least_recently_used_entry_is_pruned(
    tmp_path: Path, models: Path, caplog: pytest.LogCaptureFixture
) -> None:
    storage = make_storage(tmp_path, 250 * KB)
    a, b, c = (model_archive(models, n, 100 * KB) for n in ("a", "b", "c"))
    first = use(storage, a)
    second = use(storage, b)
    use(storage, a)  # a is used again: b is now the least recently used
    with caplog.at_level(logging.INFO, logger="modelport.storage"):
        third = use(storage, c)
    assert first.is_dir() and third.is_dir()
    assert not second.exists()
    assert storage.index.total_bytes == 200 * KB
    pruned = [r.getMessage() for r in caplog.records if "pruned" in r.getMessage()]
    assert len(pruned) == 1
    assert "b.tar.gz" in pruned[0] and f"({100 * KB} bytes)" in pruned[0]


def test_a_held_entry_is_never_pruned_even_when_it_is_the_oldest(
    tmp_path: Path, models: Path, caplog: pytest.LogCaptureFixture
) -> None:
    storage = make_storage(tmp_path, 150 * KB)
    a, b, c = (model_archive(models, n, 100 * KB) for n in ("a", "b", "c"))
    held = storage.checkout(a, namespace="default")  # a replica serves it
    second = use(storage, b)
    with caplog.at_level(logging.INFO, logger="modelport.storage"):
        third = use(storage, c)
    assert (held.path / "model.bin").is_file()
    assert not second.exists()
    # Still over: the rest is in use, and the log says so.
    assert third.is_dir() and storage.index.total_bytes == 200 * KB
    assert any("the rest is in use" in r.getMessage() for r in caplog.records)
    held.release()
    use(storage, b)
    assert not held.path.exists(), "released, a is the least recently used again"


def test_a_model_larger_than_the_whole_limit_is_served_and_logged(
    tmp_path: Path, models: Path, caplog: pytest.LogCaptureFixture
) -> None:
    storage = make_storage(tmp_path, 50 * KB)
    big, small = model_archive(models, "big", 120 * KB), model_archive(models, "small", 10 * KB)
    with caplog.at_level(logging.WARNING, logger="modelport.storage"):
        lease = storage.checkout(big, namespace="default")
    assert (lease.path / "model.bin").stat().st_size == 120 * KB
    warning = next(r.getMessage() for r in caplog.records if "more than" in r.getMessage())
    assert "big.tar.gz" in warning and f"({50 * KB} bytes)" in warning
    use(storage, small)
    assert lease.path.is_dir(), "held: never pruned"
    lease.release()
    use(storage, small)
    assert not lease.path.exists()
    assert storage.index.total_bytes == 10 * KB


def test_sizes_and_last_use_survive_a_restart(tmp_path: Path, models: Path) -> None:
    before = make_storage(tmp_path, None)
    a, b, c = (model_archive(models, n, 100 * KB) for n in ("a", "b", "c"))
    older, newer = use(before, a), use(before, b)
    # An hour apart, as the directories' mtimes record it.
    os.utime(older, (time.time() - 3600, time.time() - 3600))
    after = make_storage(tmp_path, 250 * KB)
    assert after.index.total_bytes == 200 * KB
    assert [e.path for e in after.index.entries()] == [older, newer]
    use(after, c)
    assert not older.exists() and newer.is_dir()


def test_a_prune_interrupted_by_a_stop_is_finished_at_the_next_start(
    tmp_path: Path, models: Path
) -> None:
    storage = make_storage(tmp_path, None)
    path = use(storage, model_archive(models, "a", 10 * KB))
    leftover = tmp_path / "cache" / ".tmp" / "evicted-0123"
    path.rename(leftover)
    make_storage(tmp_path, None)
    assert not leftover.exists()


def test_fetch_without_a_lease_keeps_its_entry_for_the_life_of_the_storage(
    tmp_path: Path, models: Path
) -> None:
    storage = make_storage(tmp_path, 150 * KB)
    a, b = model_archive(models, "a", 100 * KB), model_archive(models, "b", 100 * KB)
    kept = storage.fetch(a, namespace="default")
    use(storage, b)
    assert (kept / "model.bin").is_file()


def test_a_local_path_inside_the_cache_holds_its_entry(tmp_path: Path, models: Path) -> None:
    storage = make_storage(tmp_path, 150 * KB)
    a, b = model_archive(models, "a", 100 * KB), model_archive(models, "b", 100 * KB)
    entry = use(storage, a)
    inside = storage.checkout(str(entry / "model.bin"), namespace="default")
    use(storage, b)
    assert (entry / "model.bin").is_file()
    inside.release()
    use(storage, b)
    assert not entry.exists()


def test_a_path_outside_the_cache_is_leased_as_it_is(tmp_path: Path) -> None:
    storage = make_storage(tmp_path, 1)
    folder = tmp_path / "plain"
    folder.mkdir()
    lease = storage.checkout(str(folder), namespace="default")
    assert isinstance(lease, ModelLease) and lease.path == folder.resolve()
    lease.release()
    lease.release()  # idempotent
    assert folder.is_dir()


def test_fetches_at_once_each_get_a_whole_model_that_stays_while_held(
    tmp_path: Path, models: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # Room for two of six models, eight threads fetching and releasing: every model handed
    # out must be complete and stay so until released, whatever the others prune.
    storage = make_storage(tmp_path, 200 * KB)
    uris = [model_archive(models, f"m{i}", 100 * KB) for i in range(6)]
    failures: list[str] = []

    def worker(offset: int) -> None:
        for round_ in range(12):
            uri = uris[(offset + round_) % len(uris)]
            try:
                with storage.checkout(uri, namespace="default") as lease:
                    sizes = [(lease.path / "model.bin").stat().st_size]
                    time.sleep(0.002)
                    sizes.append((lease.path / "model.bin").stat().st_size)
                    if sizes != [100 * KB, 100 * KB]:
                        failures.append(f"{uri}: {sizes} bytes while held")
            except Exception as exc:  # collected, so the main thread reports every one
                failures.append(f"{uri}: {type(exc).__name__}: {exc}")

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    with caplog.at_level(logging.INFO, logger="modelport.storage"):
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
    assert failures == []
    assert any("pruned" in r.getMessage() for r in caplog.records), "nothing was pruned"
    # Nothing is held any more, so the last fetch's prune brought the cache within its limit.
    use(storage, uris[0])
    assert storage.index.total_bytes <= 200 * KB
    on_disk = sorted((tmp_path / "cache" / "default").glob("*/*"))
    assert sorted(e.path for e in storage.index.entries()) == on_disk


def test_a_negative_limit_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="at least 0 bytes"):
        CacheIndex(tmp_path, tmp_path, -1)
