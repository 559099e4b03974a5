"""The storage initializer: :class:`Storage` turns a storage URI into a local path, fetching
remote models into a content cache.

Cache layout, keyed by (URI, version) where the version is the ETag (or Last-Modified)::

    cache_dir/<sha(uri)>/<sha(version)>/   a complete download, never modified once in place
    cache_dir/<sha(uri)>/unversioned/      the last download of a URI that has no version
    cache_dir/<namespace>/<sha(uri)>/...   the same, for a fetch made for a namespace
    cache_dir/.tmp/<random>/               downloads in progress, renamed into place when done

The cache is kept under a size limit (``max_cache_bytes``): after each fetch, the least
recently used entries no lease holds are pruned until it fits (cache.py).

A namespace's replicas are handed only entries under its own directory, never one another
namespace fetched (even of the same URI and version): tenants share no files, and one cannot
learn what another deployed from cache hits. ``pvc://CLAIM/path`` is ``pvc_root/<namespace>/
CLAIM/path`` for the same reason, as claims are namespaced on Kubernetes. Everything in the
cache is owner-only (directories 0700, files 0600 or 0700).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from modelport.control.storage.archives import (
    DEFAULT_MAX_UNPACKED_BYTES,
    LocalArchiveSource,
    archive_kind,
    unpack,
)
from modelport.control.storage.cache import DEFAULT_MAX_CACHE_BYTES, CacheIndex, ModelLease
from modelport.control.storage.errors import StorageError
from modelport.control.storage.http_source import HttpSource
from modelport.control.storage.limits import DEFAULT_MAX_DOWNLOAD_BYTES
from modelport.control.storage.object_store import ObjectStoreSource
from modelport.control.storage.s3 import S3Settings
from modelport.control.storage.tree import DIR_MODE, make_private
from modelport.control.storage.types import Progress, Source
from modelport.control.storage.uris import _display, check_namespace, check_uri, local_path

log = logging.getLogger("modelport.storage")

STALE_TMP_S = 24 * 3600
UNVERSIONED = "unversioned"


class Storage:
    """Fetches models by storage URI into a content cache; safe to call from many threads."""

    def __init__(
        self,
        cache_dir: Path,
        pvc_root: Path,
        env: Mapping[str, str] | None = None,
        *,
        max_unpacked_bytes: int = DEFAULT_MAX_UNPACKED_BYTES,
        max_download_bytes: int = DEFAULT_MAX_DOWNLOAD_BYTES,
        http_timeout_s: float = 30.0,
        max_cache_bytes: int | None = DEFAULT_MAX_CACHE_BYTES,
    ) -> None:
        self.cache_dir = Path(cache_dir).resolve()
        self.pvc_root = Path(pvc_root).resolve()
        self.env = dict(os.environ if env is None else env)
        self.s3 = S3Settings.from_env(self.env)
        self.max_unpacked_bytes = max_unpacked_bytes
        self.max_download_bytes = max_download_bytes
        self.http_timeout_s = http_timeout_s
        self._tmp = self.cache_dir / ".tmp"
        self._tmp.mkdir(parents=True, exist_ok=True, mode=DIR_MODE)
        # Also when an older version made it readable: what is cached here is tenants' models.
        os.chmod(self.cache_dir, DIR_MODE)
        os.chmod(self._tmp, DIR_MODE)
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()
        self._filesystems: dict[str, Any] = {}
        self._remove_stale_downloads()
        # Sizes and last use of what earlier runs left, so the limit counts them too.
        self.index = CacheIndex(self.cache_dir, self._tmp, max_cache_bytes)
        self.index.scan()

    def fetch(
        self, uri: str, progress: Progress | None = None, *, namespace: str | None = None
    ) -> Path:
        """Make the model at ``uri`` available locally and return a local path.

        Local paths (plain, ``file://``, ``pvc://``) come back resolved, file or directory;
        a local archive is unpacked into the cache. Remote URIs come back as a cache
        directory, also when it holds one file. With a ``namespace`` (a DNS label), cache
        entries and volumes are that namespace's own. Raises StorageError.

        The cache entry returned is never pruned while this Storage lives, as the caller
        cannot say when it is done with it; callers that can use :meth:`checkout`.
        """
        return self.checkout(uri, progress, namespace=namespace).path

    def checkout(
        self, uri: str, progress: Progress | None = None, *, namespace: str | None = None
    ) -> ModelLease:
        """As :meth:`fetch`, with the path held in the cache until the lease is released:
        hold it while replicas may start from the model. Prunes the cache when it is over
        its limit, the model just fetched and every held one excepted."""
        lease = self._checkout(uri, progress, namespace)
        self.index.prune()
        return lease

    def _checkout(self, uri: str, progress: Progress | None, namespace: str | None) -> ModelLease:
        if reason := check_uri(uri):
            raise StorageError(reason)
        if namespace is not None and (reason := check_namespace(namespace)):
            raise StorageError(reason)
        scheme = uri.partition("://")[0].lower() if "://" in uri else ""
        path = local_path(uri)
        if path is not None:
            return self._local(path, uri, progress, namespace)
        if scheme == "pvc":
            return self._local(self._pvc_path(uri, namespace), uri, progress, namespace)
        return self._remote(uri, self._source(uri, scheme), progress, namespace)

    # -- local ---------------------------------------------------------------------------------

    def _local(
        self, path: Path, uri: str, progress: Progress | None, namespace: str | None
    ) -> ModelLease:
        if not path.exists():
            raise StorageError(f"storage path {_display(uri)} does not exist")
        path = path.resolve()
        if namespace is not None:
            self._check_own(path, uri, namespace)
        if path.is_file() and archive_kind(path.name):
            return self._remote(f"local://{path}", LocalArchiveSource(path), progress, namespace)
        # A path into the cache itself (the namespace's own part) holds its entry too.
        return self.index.lease_containing(path)

    def _check_own(self, path: Path, uri: str, namespace: str) -> None:
        # A local path is a path on the platform's host: for a namespace, the platform's own
        # cache and volumes are usable only where they are that namespace's.
        for root, what in ((self.cache_dir, "model cache"), (self.pvc_root, "volumes")):
            if path.is_relative_to(root) and not path.is_relative_to(root / namespace):
                raise StorageError(
                    f"storage path {_display(uri)} is in the platform's {what}, outside "
                    f"namespace {namespace!r}'s part of it"
                )

    def _pvc_path(self, uri: str, namespace: str | None) -> Path:
        parts = urlsplit(uri)
        volumes = self.pvc_root if namespace is None else self.pvc_root / namespace
        claim_root = (volumes / parts.netloc).resolve()
        path = (claim_root / parts.path.lstrip("/")).resolve()
        # check_uri refused '..'; this catches symlinks inside the volume that lead out of it.
        if path != claim_root and claim_root not in path.parents:
            raise StorageError(f"storage path {uri} leads outside volume {parts.netloc!r}")
        return path

    # -- remote --------------------------------------------------------------------------------

    def _source(self, uri: str, scheme: str) -> Source:
        if scheme in ("http", "https"):
            return HttpSource(
                uri,
                self._http_headers(uri),
                self.http_timeout_s,
                max_bytes=self.max_download_bytes,
            )
        return ObjectStoreSource(uri, self._filesystem(scheme), max_bytes=self.max_download_bytes)

    def _http_headers(self, uri: str) -> dict[str, str]:
        # KServe: extra request headers as JSON in the variable "<host>-headers".
        name = f"{urlsplit(uri).hostname}-headers"
        raw = self.env.get(name)
        if not raw:
            return {}
        try:
            headers = json.loads(raw)
        except ValueError:
            raise StorageError(f"{name} must be a JSON object of HTTP headers") from None
        if not isinstance(headers, dict):
            raise StorageError(f"{name} must be a JSON object of HTTP headers")
        return {str(k): str(v) for k, v in headers.items()}

    def _filesystem(self, scheme: str) -> Any:
        with self._guard:
            if scheme not in self._filesystems:
                self._filesystems[scheme] = self._new_filesystem(scheme)
            return self._filesystems[scheme]

    def _new_filesystem(self, scheme: str) -> Any:
        if scheme == "s3":
            try:
                import s3fs
            except ImportError:
                raise StorageError(
                    "s3:// needs s3fs: pip install 'modelport[s3]' (or pip install s3fs)"
                ) from None
            return s3fs.S3FileSystem(**self.s3.filesystem_kwargs())
        try:
            import gcsfs
        except ImportError:
            raise StorageError("gs:// needs gcsfs: pip install gcsfs") from None
        return gcsfs.GCSFileSystem(skip_instance_cache=True, use_listings_cache=False)

    def _remote(
        self, uri: str, source: Source, progress: Progress | None, namespace: str | None
    ) -> ModelLease:
        # A namespace name is a DNS label and a URI key 32 hex digits; were a namespace named
        # like a key, its entries would still sit one level deeper than that key's versions.
        root = self.cache_dir if namespace is None else self.cache_dir / namespace
        uri_dir = root / _digest(uri)
        try:
            with self._lock(str(uri_dir)):
                version = source.probe()
                if version is not None:
                    # Leased before anything can prune it; None if pruned since installed.
                    cached = self.index.lease_cached(_entry(uri_dir, version), _display(uri))
                    if cached is not None:
                        log.info("storage: %s is cached (version unchanged)", _display(uri))
                        return cached
                log.info("storage: downloading %s", _display(uri))
                with self._staging() as staging:
                    version = source.download(staging / "download", progress)
                    content = self._unpack_single_archive(staging)
                    make_private(content)
                    entry = self._install(content, _entry(uri_dir, version), staging)
                    return self.index.add(entry, _display(uri))
        except OSError as exc:
            # Our own disk (full, read-only cache); the sources already translated theirs.
            raise StorageError(f"storage download failed: {exc} ({_display(uri)})") from None
        finally:
            source.close()

    def _unpack_single_archive(self, staging: Path) -> Path:
        download = staging / "download"
        files = [p for p in download.rglob("*") if not p.is_dir()]
        if len(files) != 1 or not archive_kind(files[0].name):
            return download
        content = staging / "content"
        unpack(files[0], content, max_bytes=self.max_unpacked_bytes)
        return content

    def _install(self, content: Path, entry: Path, staging: Path) -> Path:
        for directory in reversed(entry.relative_to(self.cache_dir).parents[:-1]):
            (self.cache_dir / directory).mkdir(mode=DIR_MODE, exist_ok=True)
        if entry.name == UNVERSIONED and entry.exists():
            # Nothing tells an old unversioned copy from a new one: the new one replaces it.
            entry.rename(staging / "previous")
        try:
            content.rename(entry)
        except OSError:
            # Another process installed the same version first; its copy is as good as ours.
            if not entry.is_dir():
                raise
        return entry

    @contextmanager
    def _lock(self, key: str) -> Iterator[None]:
        with self._guard:
            lock = self._locks.setdefault(key, threading.Lock())
        with lock:
            yield

    @contextmanager
    def _staging(self) -> Iterator[Path]:
        # Inside cache_dir so that the final rename is atomic (same filesystem).
        staging = Path(tempfile.mkdtemp(dir=self._tmp))
        try:
            yield staging
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    def _remove_stale_downloads(self) -> None:
        # Left behind by a process killed mid-download; live ones are far younger.
        cutoff = time.time() - STALE_TMP_S
        for child in self._tmp.iterdir():
            try:
                if child.stat().st_mtime < cutoff:
                    shutil.rmtree(child, ignore_errors=True)
            except OSError:
                continue


def _entry(uri_dir: Path, version: str | None) -> Path:
    return uri_dir / (UNVERSIONED if version is None else _digest(version))


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:32]
