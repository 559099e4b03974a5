"""Storage initializer: make an InferenceService's ``storageUri`` available as a local path.

Follows KServe's storage initializer (``python/storage/kserve_storage/kserve_storage.py``):

- a local path or ``file://`` is used where it is; ``pvc://CLAIM/sub/path`` maps to
  ``pvc_root/CLAIM/sub/path``, or ``pvc_root/<namespace>/CLAIM/sub/path`` for a fetch made for
  a namespace (whose remote models are cached apart from every other namespace's too);
- ``http(s)://`` downloads one file; ``s3://bucket/key`` downloads the object if ``key`` is
  one, else every object under the prefix ``key/`` with its relative path; ``gs://`` likewise
  through gcsfs;
- a download that is exactly one ``.tar``/``.tar.gz``/``.tgz``/``.zip`` file is unpacked and
  the archive removed. A local archive is unpacked into the cache, never next to itself.

Differences from KServe, on purpose: an S3 prefix is a directory (``s3://b/model`` never
picks up ``model2/...``), empty objects are kept (``__init__.py``), ``Content-Type`` is not
checked, and archives are unpacked with size and path limits and never through a link.
Downloads stop at ``max_download_bytes`` (20 GiB by default), counted as they are written.

Every remote fetch returns a directory, also when it holds a single file, so the model
server always gets a model directory; local paths are returned as they are (file or
directory).

The cache is kept under ``max_cache_bytes`` (50 GiB by default): after a fetch, the least
recently used entries that no :class:`ModelLease` holds are pruned (``Storage.checkout``
hands out leases; ``Storage.fetch`` holds its entry for the life of the Storage).

The modules: ``initializer`` (:class:`Storage`, its dispatch on the scheme and its cache),
``cache`` (sizes, last use, leases and pruning),
``uris`` (URI syntax), one module per remote source (``http``, ``object_store`` with ``s3``
for its settings), ``archives`` and ``tree`` (safe unpacking), ``limits`` (the download limit),
and ``types`` and ``errors`` beneath them.
"""

from __future__ import annotations

from modelport.control.storage.archives import (
    DEFAULT_MAX_UNPACKED_BYTES,
    TAR_SUFFIXES,
    ZIP_SUFFIXES,
    LocalArchiveSource,
    archive_kind,
    unpack,
)
from modelport.control.storage.cache import (
    DEFAULT_MAX_CACHE_BYTES,
    CachedModel,
    CacheIndex,
    ModelLease,
)
from modelport.control.storage.errors import StorageError
from modelport.control.storage.http_source import HTTP_CHUNK, HttpSource
from modelport.control.storage.initializer import STALE_TMP_S, UNVERSIONED, Storage
from modelport.control.storage.limits import DEFAULT_MAX_DOWNLOAD_BYTES
from modelport.control.storage.object_store import S3_PARALLEL_FILES, ObjectStoreSource
from modelport.control.storage.s3 import S3Settings
from modelport.control.storage.types import Progress, Source
from modelport.control.storage.uris import SUPPORTED, check_namespace, check_uri, local_path

__all__ = [
    "DEFAULT_MAX_CACHE_BYTES",
    "DEFAULT_MAX_DOWNLOAD_BYTES",
    "DEFAULT_MAX_UNPACKED_BYTES",
    "HTTP_CHUNK",
    "S3_PARALLEL_FILES",
    "STALE_TMP_S",
    "SUPPORTED",
    "TAR_SUFFIXES",
    "UNVERSIONED",
    "ZIP_SUFFIXES",
    "CacheIndex",
    "CachedModel",
    "HttpSource",
    "LocalArchiveSource",
    "ModelLease",
    "ObjectStoreSource",
    "Progress",
    "S3Settings",
    "Source",
    "Storage",
    "StorageError",
    "archive_kind",
    "check_namespace",
    "check_uri",
    "local_path",
    "unpack",
]
