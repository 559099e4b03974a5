"""The model cache's size limit: what each entry holds, when it was last used, who holds it,
and pruning the least recently used entries nobody holds once the cache is over its limit.

An entry is one installed model (``<uri key>/<version key>``, under its namespace's
directory). A :class:`ModelLease` holds an entry for as long as a revision may start replicas
from it; a held entry is never pruned, however old, and an entry larger than the whole limit
is still served. Last use is the entry directory's mtime, set on every fetch and release:
entries are never modified once in place, so it survives a restart and the next start reads
it back with the sizes (:meth:`CacheIndex.scan`).

Pruning renames an entry into the staging area under the index's lock, so a concurrent fetch
either leases it before (and it stays) or finds it gone (and downloads it again), and deletes
it after the lock is released.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import stat
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from types import TracebackType

from modelport.control.storage.limits import format_size

log = logging.getLogger("modelport.storage")

DEFAULT_MAX_CACHE_BYTES = 50 * 2**30
EVICTED_PREFIX = "evicted-"
# initializer._digest: the first 32 hex digits of a SHA-256.
_KEY = re.compile(r"[0-9a-f]{32}")
_UNVERSIONED = "unversioned"


@dataclass
class CachedModel:
    """One installed entry: its size in bytes, its last use (epoch seconds), its holders."""

    path: Path
    size: int
    last_used: float
    leases: int = 0
    # The storage URI as it may be shown (no credentials), when fetched since start.
    uri: str = ""


class ModelLease:
    """A fetched model's local path, kept in the cache until :meth:`release` (idempotent).

    Usable as a context manager. A lease on a path outside the cache holds nothing."""

    def __init__(self, path: Path, on_release: Callable[[], None] | None = None) -> None:
        self.path = path
        self._on_release = on_release
        self._lock = threading.Lock()

    def release(self) -> None:
        with self._lock:
            on_release, self._on_release = self._on_release, None
        if on_release is not None:
            on_release()

    def __enter__(self) -> ModelLease:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()


class CacheIndex:
    """The cache's entries with their sizes, last use and leases; safe across threads.

    ``max_bytes`` None means no limit (nothing is ever pruned)."""

    def __init__(self, cache_dir: Path, trash: Path, max_bytes: int | None) -> None:
        if max_bytes is not None and max_bytes < 0:
            raise ValueError(f"the model cache limit must be at least 0 bytes, was {max_bytes}")
        self.cache_dir = cache_dir
        self.trash = trash
        self.max_bytes = max_bytes
        self._entries: dict[Path, CachedModel] = {}
        self._lock = threading.Lock()

    @property
    def total_bytes(self) -> int:
        with self._lock:
            return sum(e.size for e in self._entries.values())

    def entries(self) -> list[CachedModel]:
        """A snapshot of the entries, least recently used first."""
        with self._lock:
            found = [replace(e) for e in self._entries.values()]
        return sorted(found, key=lambda e: e.last_used)

    def scan(self) -> None:
        """Read the entries already on disk (after a restart), and finish deleting what a
        previous run was pruning when it stopped."""
        for leftover in self.trash.glob(EVICTED_PREFIX + "*"):
            shutil.rmtree(leftover, ignore_errors=True)
        found = {}
        for entry in _installed_entries(self.cache_dir):
            try:
                last_used = entry.stat().st_mtime
                found[entry] = CachedModel(entry, tree_size(entry), last_used)
            except OSError:
                continue  # removed meanwhile
        with self._lock:
            self._entries.update(found)

    def lease_cached(self, entry: Path, uri: str) -> ModelLease | None:
        """A lease on ``entry`` if it is in the cache, else None (never installed, or just
        pruned: the caller downloads it again)."""
        with self._lock:
            model = self._entries.get(entry)
            if not entry.is_dir():
                if model is not None and model.leases == 0:
                    del self._entries[entry]  # deleted by hand: download it again
                return None
            if model is None:
                # Installed but never counted (by another process sharing the cache).
                model = self._entries[entry] = CachedModel(entry, tree_size(entry), 0.0)
            return self._lease(model, uri)

    def add(self, entry: Path, uri: str) -> ModelLease:
        """Count a newly installed ``entry`` and lease it. An entry installed again in place
        (an unversioned URI downloaded anew) keeps its holders."""
        size = tree_size(entry)
        with self._lock:
            model = self._entries.get(entry)
            if model is None:
                model = self._entries[entry] = CachedModel(entry, size, 0.0)
            model.size = size
            lease = self._lease(model, uri)
        if self.max_bytes is not None and size > self.max_bytes:
            log.warning(
                "storage: %s is %s, more than the whole model cache limit of %s; it is "
                "served, and pruned by the first fetch after no replica uses it",
                uri,
                format_size(size),
                format_size(self.max_bytes),
            )
        return lease

    def lease_containing(self, path: Path) -> ModelLease:
        """A lease on the entry ``path`` lies in (a local storage path inside the cache), or
        one that holds nothing when it lies in none."""
        with self._lock:
            for model in self._entries.values():
                if path == model.path or model.path in path.parents:
                    return self._lease(model, model.uri)
        return ModelLease(path)

    def _lease(self, model: CachedModel, uri: str) -> ModelLease:
        model.leases += 1
        model.last_used = time.time()
        model.uri = model.uri or uri
        _touch(model.path)
        return ModelLease(model.path, lambda: self._release(model))

    def _release(self, model: CachedModel) -> None:
        with self._lock:
            model.leases -= 1
            # Served until now: that is its last use.
            model.last_used = time.time()
        _touch(model.path)

    def prune(self) -> list[CachedModel]:
        """Delete the least recently used entries nobody holds until the cache is within its
        limit; the entries pruned, each logged with its size."""
        if self.max_bytes is None:
            return []
        limit = self.max_bytes
        with self._lock:
            total = sum(e.size for e in self._entries.values())
            if total <= limit:
                return []
            held = [e.path for e in self._entries.values() if e.leases > 0]
            idle = sorted(
                (
                    e
                    for e in self._entries.values()
                    if e.leases == 0 and not _overlaps(e.path, held)
                ),
                key=lambda e: e.last_used,
            )
            moved: list[tuple[CachedModel, Path]] = []
            for model in idle:
                if total <= limit:
                    break
                away = self.trash / f"{EVICTED_PREFIX}{uuid.uuid4().hex}"
                try:
                    os.rename(model.path, away)
                except OSError as exc:
                    log.warning("storage: could not prune %s: %s", self._name(model), exc)
                    continue
                del self._entries[model.path]
                total -= model.size
                moved.append((model, away))
        for model, away in moved:
            shutil.rmtree(away, ignore_errors=True)
            log.info(
                "storage: pruned %s (%s, last used %s) from the model cache",
                self._name(model),
                format_size(model.size),
                time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(model.last_used)),
            )
        if moved or total > limit:
            log.log(
                logging.WARNING if total > limit else logging.INFO,
                "storage: the model cache holds %s of its %s limit%s",
                format_size(total),
                format_size(limit),
                "; the rest is in use by replicas" if total > limit else "",
            )
        return [model for model, _ in moved]

    def _name(self, model: CachedModel) -> str:
        where = model.path.relative_to(self.cache_dir)
        return f"{model.uri} ({where})" if model.uri else str(where)


def tree_size(path: Path) -> int:
    """Bytes in the regular files under ``path``; links are not followed nor counted."""
    total = 0
    for folder, _dirs, files in os.walk(path):
        for name in files:
            try:
                info = os.lstat(os.path.join(folder, name))
            except OSError:
                continue
            if stat.S_ISREG(info.st_mode):
                total += info.st_size
    return total


def _installed_entries(cache_dir: Path) -> Iterable[Path]:
    """``<uri key>/<version>`` directories: at the top for fetches made for no namespace, one
    level down (under each namespace's directory) for the others. Other directories there
    (the staging area, copies made for isolation) are not entries."""
    for top in _subdirs(cache_dir):
        if top.name.startswith("."):
            continue
        uri_dirs = [top] if _KEY.fullmatch(top.name) else _subdirs(top)
        for uri_dir in uri_dirs:
            if not _KEY.fullmatch(uri_dir.name):
                continue
            for entry in _subdirs(uri_dir):
                if entry.name == _UNVERSIONED or _KEY.fullmatch(entry.name):
                    yield entry


def _subdirs(path: Path) -> list[Path]:
    try:
        return [p for p in path.iterdir() if p.is_dir() and not p.is_symlink()]
    except OSError:
        return []


def _overlaps(path: Path, held: list[Path]) -> bool:
    """Whether ``path`` is, holds or lies in a held entry: the scan cannot tell a namespace
    named like a URI key from a key, and a held model must never be deleted with it."""
    return any(path == h or path in h.parents or h in path.parents for h in held)


def _touch(path: Path) -> None:
    try:
        os.utime(path)
    except OSError:
        pass  # a missing last-use stamp costs nothing but LRU order after a restart
