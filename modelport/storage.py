"""KServe's static storage API for model code: ``Storage.download(uri, out_dir=None)``.

KServe models fetch their files with ``from kserve_storage import Storage`` (KServe ≥ 0.15;
``from kserve.storage import Storage`` before). Here both become::

    from modelport.storage import Storage

    model_dir = Storage.download(self.model_dir)                 # a local path: used in place
    model_dir = Storage.download("s3://bucket/model", "/tmp/m")  # fetched into /tmp/m

Behaviour follows python/storage/kserve_storage/kserve_storage.py: a local path (or
``file://``) is returned as it is without ``out_dir``, else its entries are linked into
``out_dir`` (a single archive is unpacked there instead); a remote URI is downloaded into
``out_dir`` (a new temporary directory without one) and that directory returned; one
downloaded archive is unpacked. ``pvc://`` is refused, as KServe refuses a claim that the
storage initializer did not mount.

The fetching is the platform's own code (:mod:`modelport.control.storage`: http(s), s3, gs,
safe unpacking, size limits), run here without the platform. Layering: this module is a
façade for user code and imports the control plane's storage package, so it belongs with the
control plane; nothing in a lower plane (protocol, runtimes, server) may import it.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from pathlib import Path

from modelport.control.storage import Storage as _CacheStorage
from modelport.control.storage import StorageError, archive_kind, check_uri, local_path, unpack

__all__ = ["Storage", "StorageError"]

log = logging.getLogger("modelport.storage")


class Storage:
    """KServe's ``Storage``: static methods that make a storage URI a local directory."""

    @staticmethod
    def download(uri: str, out_dir: str | None = None) -> str:
        """Make ``uri`` available locally and return the path; raises StorageError."""
        if reason := check_uri(uri):
            raise StorageError(reason)
        log.info("Copying contents of %s to local", uri)
        path = local_path(uri)
        if path is not None:
            return _local(path, uri, out_dir)
        if uri.partition("://")[0].lower() == "pvc":
            raise StorageError(f"Cannot locate source uri {uri} for PVC")
        target = Path(out_dir) if out_dir else Path(tempfile.mkdtemp())
        target.mkdir(parents=True, exist_ok=True)
        _fetch_into(uri, target)
        log.info("Successfully copied %s to %s", uri, target)
        return str(target)

    @staticmethod
    def download_files(source_uris: list[str], out_dirs: list[str]) -> list[str]:
        """Download each URI into the directory at the same position (KServe's multi-URI
        form); returns the local paths in order."""
        if len(source_uris) != len(out_dirs):
            raise StorageError(
                f"{len(source_uris)} storage URIs but {len(out_dirs)} output directories"
            )
        return [Storage.download(uri, out) for uri, out in zip(source_uris, out_dirs, strict=True)]


def _local(path: Path, uri: str, out_dir: str | None) -> str:
    if not path.exists():
        raise StorageError(f"Local path {uri} does not exist.")
    if out_dir is None:
        return str(path)
    target = Path(out_dir)
    target.mkdir(parents=True, exist_ok=True)
    sources = sorted(path.iterdir()) if path.is_dir() else [path]
    if not sources:
        raise StorageError(f"Failed to fetch model. No model found in {uri}.")
    if len(sources) == 1 and sources[0].is_file() and archive_kind(sources[0].name):
        # KServe links the archive and unpacks the link away; the result is the same.
        unpack(sources[0], target)
        return str(target)
    for source in sources:
        link = target / source.name
        if not link.exists() and not link.is_symlink():
            # Absolute, so the link holds wherever out_dir is.
            link.symlink_to(source.resolve())
    return str(target)


def _fetch_into(uri: str, target: Path) -> None:
    # The platform's storage fetches into a cache; one made inside the target is on the same
    # filesystem, so moving the result out of it is a rename, then the cache goes.
    cache = Path(tempfile.mkdtemp(prefix=".modelport-download-", dir=target))
    try:
        fetched = _CacheStorage(cache, cache / "volumes").fetch(uri)
        for entry in fetched.iterdir():
            dest = target / entry.name
            if dest.is_dir() and not dest.is_symlink():
                shutil.rmtree(dest)
            elif dest.exists() or dest.is_symlink():
                dest.unlink()
            os.rename(entry, dest)
    finally:
        shutil.rmtree(cache, ignore_errors=True)
