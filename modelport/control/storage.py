"""Storage initializer: make an InferenceService's ``storageUri`` available as a local path.

Follows KServe's storage initializer (``python/storage/kserve_storage/kserve_storage.py``):

- a local path or ``file://`` is used where it is; ``pvc://CLAIM/sub/path`` maps to
  ``pvc_root/CLAIM/sub/path``;
- ``http(s)://`` downloads one file; ``s3://bucket/key`` downloads the object if ``key`` is
  one, else every object under the prefix ``key/`` with its relative path; ``gs://`` likewise
  through gcsfs;
- a download that is exactly one ``.tar``/``.tar.gz``/``.tgz``/``.zip`` file is unpacked and
  the archive removed. A local archive is unpacked into the cache, never next to itself.

Differences from KServe, on purpose: an S3 prefix is a directory (``s3://b/model`` never
picks up ``model2/...``), empty objects are kept (``__init__.py``), ``Content-Type`` is not
checked, and archives are unpacked with size and path limits.

Every remote fetch returns a directory, also when it holds a single file, so the model
server always gets a model directory; local paths are returned as they are (file or
directory).

Cache layout, keyed by (URI, version) where the version is the ETag (or Last-Modified)::

    cache_dir/<sha(uri)>/<sha(version)>/   a complete download, never modified once in place
    cache_dir/<sha(uri)>/unversioned/      the last download of a URI that has no version
    cache_dir/.tmp/<random>/               downloads in progress, renamed into place when done
"""

from __future__ import annotations

import gzip
import hashlib
import http
import json
import logging
import lzma
import os
import shutil
import stat
import tarfile
import tempfile
import threading
import time
import zipfile
import zlib
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, Protocol
from urllib.parse import unquote, urlsplit, urlunsplit

import httpx
from fsspec.callbacks import Callback

from modelport.errors import ModelportError

log = logging.getLogger("modelport.storage")

Progress = Callable[[int, int | None], None]
"""Called with (bytes done, total bytes or None), from a worker thread."""

SUPPORTED = "use a local path, file://, http(s)://, s3://, gs:// or pvc://"
DEFAULT_MAX_UNPACKED_BYTES = 20 * 2**30
TAR_SUFFIXES = (".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tar.xz", ".txz")
ZIP_SUFFIXES = (".zip",)
HTTP_CHUNK = 2**20
S3_PARALLEL_FILES = 4  # KServe's S3_MAX_FILE_CONCURRENCY default
STALE_TMP_S = 24 * 3600
UNVERSIONED = "unversioned"


class StorageError(ModelportError):
    """A model could not be fetched from its storage URI; the message is one user-facing line."""


# ---- URI syntax ------------------------------------------------------------------------------


def check_uri(uri: str) -> str | None:
    """Return None if ``uri`` is a usable storage URI, else why not (syntax only, no I/O)."""
    if not uri.strip():
        return "storage URI is empty"
    scheme, sep, rest = uri.partition("://")
    if not sep:
        return None  # a local path
    scheme = scheme.lower()
    if scheme == "file":
        return None if rest else "file:// URI has no path"
    parts = urlsplit(uri)
    if scheme == "pvc":
        if parts.netloc in ("", ".", ".."):
            return f"pvc:// URI needs a claim name: pvc://CLAIM/path, got {uri}"
        if ".." in PurePosixPath(parts.path).parts:
            return f"pvc:// URI may not contain '..': {uri}"
        return None
    if scheme in ("http", "https"):
        if not parts.netloc:
            return f"{scheme}:// URI has no host: {_display(uri)}"
        if not _http_filename(uri):
            return f"{scheme}:// URI must name a file: {_display(uri)}"
        return None
    if scheme in ("s3", "gs"):
        return None if parts.netloc else f"{scheme}:// URI has no bucket: {uri}"
    return f"storage URI scheme {scheme!r} is not supported ({SUPPORTED})"


def _display(uri: str) -> str:
    """The URI without userinfo, query or fragment: presigned URLs carry secrets there."""
    parts = urlsplit(uri)
    if parts.scheme.lower() not in ("http", "https"):
        return uri
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def _http_filename(uri: str) -> str:
    name = PurePosixPath(unquote(urlsplit(uri).path)).name
    return "" if name in ("", ".", "..") else name


# ---- the initializer -------------------------------------------------------------------------


class Storage:
    """Fetches models by storage URI into a content cache; safe to call from many threads."""

    def __init__(
        self,
        cache_dir: Path,
        pvc_root: Path,
        env: Mapping[str, str] | None = None,
        *,
        max_unpacked_bytes: int = DEFAULT_MAX_UNPACKED_BYTES,
        http_timeout_s: float = 30.0,
    ) -> None:
        self.cache_dir = Path(cache_dir)
        self.pvc_root = Path(pvc_root)
        self.env = dict(os.environ if env is None else env)
        self.s3 = S3Settings.from_env(self.env)
        self.max_unpacked_bytes = max_unpacked_bytes
        self.http_timeout_s = http_timeout_s
        self._tmp = self.cache_dir / ".tmp"
        self._tmp.mkdir(parents=True, exist_ok=True)
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()
        self._filesystems: dict[str, Any] = {}
        self._remove_stale_downloads()

    def fetch(self, uri: str, progress: Progress | None = None) -> Path:
        """Make the model at ``uri`` available locally and return a local path.

        Local paths (plain, ``file://``, ``pvc://``) come back resolved, file or directory;
        a local archive is unpacked into the cache. Remote URIs come back as a cache
        directory, also when it holds one file. Raises StorageError.
        """
        if reason := check_uri(uri):
            raise StorageError(reason)
        scheme = uri.partition("://")[0].lower() if "://" in uri else ""
        if scheme in ("", "file"):
            raw = uri[len("file://") :] if scheme else uri
            return self._local(Path(raw), uri, progress)
        if scheme == "pvc":
            return self._local(self._pvc_path(uri), uri, progress)
        return self._remote(uri, self._source(uri, scheme), progress)

    # -- local ---------------------------------------------------------------------------------

    def _local(self, path: Path, uri: str, progress: Progress | None) -> Path:
        if not path.exists():
            raise StorageError(f"storage path {_display(uri)} does not exist")
        path = path.resolve()
        if path.is_file() and archive_kind(path.name):
            return self._remote(f"local://{path}", LocalArchiveSource(path), progress)
        return path

    def _pvc_path(self, uri: str) -> Path:
        parts = urlsplit(uri)
        claim_root = (self.pvc_root / parts.netloc).resolve()
        path = (claim_root / parts.path.lstrip("/")).resolve()
        # check_uri refused '..'; this catches symlinks inside the volume that lead out of it.
        if path != claim_root and claim_root not in path.parents:
            raise StorageError(f"storage path {uri} leads outside volume {parts.netloc!r}")
        return path

    # -- remote --------------------------------------------------------------------------------

    def _source(self, uri: str, scheme: str) -> Source:
        if scheme in ("http", "https"):
            return HttpSource(uri, self._http_headers(uri), self.http_timeout_s)
        return ObjectStoreSource(uri, self._filesystem(scheme))

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

    def _remote(self, uri: str, source: Source, progress: Progress | None) -> Path:
        key = _digest(uri)
        try:
            with self._lock(key):
                version = source.probe()
                if version is not None and (entry := self._entry(key, version)).is_dir():
                    log.info("storage: %s is cached (version unchanged)", _display(uri))
                    return entry
                log.info("storage: downloading %s", _display(uri))
                with self._staging() as staging:
                    version = source.download(staging / "download", progress)
                    content = self._unpack_single_archive(staging)
                    return self._install(content, self._entry(key, version), staging)
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
        entry.parent.mkdir(parents=True, exist_ok=True)
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

    def _entry(self, key: str, version: str | None) -> Path:
        return self.cache_dir / key / (UNVERSIONED if version is None else _digest(version))

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


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:32]


# ---- S3 settings -----------------------------------------------------------------------------


@dataclass(frozen=True)
class S3Settings:
    """S3 client settings from KServe's environment variables (see its s3_secret.go)."""

    endpoint_url: str | None = None
    key: str | None = None
    secret: str | None = None
    token: str | None = None
    region: str | None = None
    verify: bool | str = True
    anonymous: bool = False
    virtual_hosted: bool = False
    connect_timeout_s: int = 15
    read_timeout_s: int = 30
    max_attempts: int = 3

    def __repr__(self) -> str:
        # Keeps the secret out of logs and tracebacks that print locals.
        return f"S3Settings(endpoint_url={self.endpoint_url!r}, region={self.region!r})"

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> S3Settings:
        """Read AWS_*/S3_* variables as KServe's storage initializer does."""
        verify: bool | str = True
        if env.get("S3_VERIFY_SSL", "").lower() in ("0", "false"):
            verify = False
        elif env.get("AWS_CA_BUNDLE"):
            verify = env["AWS_CA_BUNDLE"]
        anonymous = env.get("AWS_ANONYMOUS_CREDENTIAL") or env.get("awsAnonymousCredential")
        return cls(
            endpoint_url=env.get("AWS_ENDPOINT_URL")
            or _endpoint_url(env.get("S3_ENDPOINT", ""), env.get("S3_USE_HTTPS", "")),
            key=env.get("AWS_ACCESS_KEY_ID") or None,
            secret=env.get("AWS_SECRET_ACCESS_KEY") or None,
            token=env.get("AWS_SESSION_TOKEN") or None,
            region=env.get("AWS_DEFAULT_REGION") or env.get("AWS_REGION") or None,
            verify=verify,
            anonymous=(anonymous or "").lower() in ("true", "1"),
            virtual_hosted=env.get("S3_USER_VIRTUAL_BUCKET", "").lower() == "true",
            connect_timeout_s=_int_env(env, "S3_CONNECT_TIMEOUT", 15),
            read_timeout_s=_int_env(env, "S3_READ_TIMEOUT", 30),
            max_attempts=_int_env(env, "S3_MAX_ATTEMPTS", 3),
        )

    def filesystem_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``s3fs.S3FileSystem``."""
        client: dict[str, Any] = {"verify": self.verify}
        if self.region:
            client["region_name"] = self.region
        config: dict[str, Any] = {
            "connect_timeout": self.connect_timeout_s,
            "read_timeout": self.read_timeout_s,
            "retries": {"max_attempts": self.max_attempts, "mode": "standard"},
        }
        if self.virtual_hosted:
            config["s3"] = {"addressing_style": "virtual"}
        kwargs: dict[str, Any] = {
            "anon": self.anonymous,
            "client_kwargs": client,
            "config_kwargs": config,
            # Each Storage has its own credentials, and every probe must see fresh listings.
            "skip_instance_cache": True,
            "use_listings_cache": False,
        }
        if self.endpoint_url:
            kwargs["endpoint_url"] = self.endpoint_url
        if self.key and not self.anonymous:
            kwargs.update(key=self.key, secret=self.secret, token=self.token)
        return kwargs


def _endpoint_url(endpoint: str, use_https: str) -> str | None:
    # KServe's getEndpointConfiguration: a scheme in S3_ENDPOINT wins, else S3_USE_HTTPS=0 → http.
    endpoint = endpoint.strip()
    if not endpoint:
        return None
    if endpoint.lower().startswith(("http://", "https://")):
        return endpoint
    scheme = "http" if use_https.strip().lower() in ("0", "false") else "https"
    return f"{scheme}://{endpoint}"


def _int_env(env: Mapping[str, str], name: str, default: int) -> int:
    value = env.get(name, "").strip()
    if not value:
        return default
    try:
        return int(value)
    except ValueError:
        raise StorageError(f"{name} must be an integer, got {value!r}") from None


# ---- sources ---------------------------------------------------------------------------------


class Source(Protocol):
    """One remote model: what version it is now, and how to download it."""

    def probe(self) -> str | None:
        """The current version (cheap: HEAD or listing), or None if it has none."""

    def download(self, dest: Path, progress: Progress | None) -> str | None:
        """Write the model's files under ``dest``; return the version actually downloaded."""

    def close(self) -> None:
        """Release connections."""


class HttpSource:
    """A single file behind an http(s) URL; its version is the ETag or Last-Modified."""

    def __init__(self, uri: str, headers: Mapping[str, str], timeout_s: float) -> None:
        self.uri = uri
        self.client = httpx.Client(follow_redirects=True, timeout=timeout_s, headers=headers)

    def probe(self) -> str | None:
        try:
            response = self.client.head(self.uri)
        except httpx.TransportError as exc:
            raise _unreachable(self.uri, exc) from None
        # Some servers refuse HEAD (presigned GET-only URLs); the GET reports real errors.
        return _http_version(response.headers) if response.is_success else None

    def download(self, dest: Path, progress: Progress | None) -> str | None:
        dest.mkdir(parents=True, exist_ok=True)
        try:
            with self.client.stream("GET", self.uri) as response:
                if not response.is_success:
                    raise StorageError(
                        f"storage download failed: {response.status_code} "
                        f"{response.reason_phrase} from {_display(self.uri)}"
                    )
                total = _content_length(response.headers)
                with open(dest / _http_filename(self.uri), "wb") as out:
                    for chunk in response.iter_bytes(HTTP_CHUNK):
                        out.write(chunk)
                        if progress:
                            progress(response.num_bytes_downloaded, total)
                return _http_version(response.headers)
        except httpx.TransportError as exc:
            raise _unreachable(self.uri, exc) from None
        except httpx.HTTPError as exc:  # bad encoding, redirect loop
            raise StorageError(
                f"storage download failed: {type(exc).__name__}: {exc} from {_display(self.uri)}"
            ) from None

    def close(self) -> None:
        self.client.close()


def _http_version(headers: httpx.Headers) -> str | None:
    if etag := headers.get("etag"):
        return f"etag:{etag}"
    if modified := headers.get("last-modified"):
        return f"last-modified:{modified}"
    return None


def _content_length(headers: httpx.Headers) -> int | None:
    # With Content-Encoding the length counts encoded bytes; num_bytes_downloaded does too.
    value = headers.get("content-length", "")
    return int(value) if value.isdigit() else None


def _unreachable(uri: str, exc: Exception) -> StorageError:
    return StorageError(f"storage download failed: cannot reach {_display(uri)}: {exc}")


class ObjectStoreSource:
    """An object or a prefix in a bucket, through an fsspec filesystem (s3fs, gcsfs)."""

    def __init__(self, uri: str, fs: Any) -> None:
        self.uri = uri
        self.fs = fs
        parts = urlsplit(uri)
        self.path = f"{parts.netloc}/{parts.path.strip('/')}".rstrip("/")
        self.objects: dict[PurePosixPath, dict[str, Any]] = {}
        self.version: str | None = None

    def probe(self) -> str | None:
        try:
            self.objects = self._list()
        except StorageError:
            raise
        except Exception as exc:
            raise _object_store_error(self.uri, exc) from None
        if not self.objects:
            raise StorageError(f"storage download failed: no objects found at {self.uri}")
        self.version = _listing_version(self.objects)
        return self.version

    def _list(self) -> dict[PurePosixPath, dict[str, Any]]:
        denied: PermissionError | None = None
        if "/" in self.path and not self.uri.endswith("/"):
            info: dict[str, Any] = {}
            try:
                info = self.fs.info(self.path)
            except FileNotFoundError:
                pass  # maybe a prefix; the listing below reports a missing bucket
            except PermissionError as exc:
                # A HEAD 403 has no body; the listing's error says why (AccessDenied, ...).
                denied = exc
            if info.get("type") == "file":
                # KServe: an exact key wins over a prefix of the same name.
                return {PurePosixPath(PurePosixPath(self.path).name): info}
        found = self.fs.find(self.path + "/", detail=True, withdirs=False)
        if not found and denied:
            raise denied
        return {
            _safe_relative(name[len(self.path) + 1 :], self.uri): info
            for name, info in found.items()
            if not name.endswith("/")  # "folder" marker objects
        }

    def download(self, dest: Path, progress: Progress | None) -> str | None:
        if not self.objects:
            self.probe()
        total = sum(int(info.get("size") or 0) for info in self.objects.values())
        counter = _ByteCounter(total, progress)

        def get(item: tuple[PurePosixPath, dict[str, Any]]) -> None:
            rel, info = item
            target = dest / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            self.fs.get_file(info["name"], str(target), callback=counter.callback())

        dest.mkdir(parents=True, exist_ok=True)
        try:
            with ThreadPoolExecutor(S3_PARALLEL_FILES) as pool:
                list(pool.map(get, self.objects.items()))
        except Exception as exc:
            raise _object_store_error(self.uri, exc) from None
        return self.version

    def close(self) -> None:
        pass


def _listing_version(objects: Mapping[PurePosixPath, Mapping[str, Any]]) -> str | None:
    # Any object without a validator makes the whole prefix uncacheable.
    versions = sorted(f"{rel}\0{_object_version(info)}" for rel, info in objects.items())
    if any(v.endswith("\0") for v in versions):
        return None
    return "objects:" + hashlib.sha256("\n".join(versions).encode()).hexdigest()


def _object_version(info: Mapping[str, Any]) -> str:
    for field in ("ETag", "etag", "md5Hash", "generation", "LastModified", "updated"):
        if info.get(field):
            return f"{info[field]}:{info.get('size')}"
    return ""


class _ByteCounter:
    """Sums bytes over several concurrent file downloads into one progress report."""

    def __init__(self, total: int, progress: Progress | None) -> None:
        self.total = total
        self.done = 0
        self.progress = progress
        self.lock = threading.Lock()

    def add(self, n: int) -> None:
        with self.lock:
            self.done += n
            done = self.done
        if self.progress:
            self.progress(done, self.total)

    def callback(self) -> Callback:
        """An fsspec callback for one file that feeds this counter."""
        return _ForwardBytes(self)


class _ForwardBytes(Callback):  # type: ignore[misc]
    def __init__(self, counter: _ByteCounter) -> None:
        super().__init__()
        self.counter = counter

    def relative_update(self, inc: int = 1) -> None:
        self.counter.add(inc)


def _object_store_error(uri: str, exc: BaseException) -> StorageError:
    response = _client_error_response(exc)
    if response is not None:
        status = int(response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
        code = str(response.get("Error", {}).get("Code") or "")
        phrase = _phrase(status)
        detail = f" ({code})" if code and code != str(status) else ""
        hint = ""
        if status == 403:
            hint = "; check AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY and the bucket's policy"
        return StorageError(f"storage download failed: {status} {phrase}{detail} from {uri}{hint}")
    name = type(exc).__name__
    if name == "NoCredentialsError":
        return StorageError(
            f"storage download failed: no credentials for {uri} (set AWS_ACCESS_KEY_ID and "
            "AWS_SECRET_ACCESS_KEY, or AWS_ANONYMOUS_CREDENTIAL=true for a public bucket)"
        )
    if "ConnectionError" in name or "ConnectTimeout" in name:
        return StorageError(f"storage download failed: cannot reach the endpoint for {uri}: {exc}")
    if isinstance(exc, FileNotFoundError):
        return StorageError(f"storage download failed: 404 Not Found from {uri}")
    if isinstance(exc, PermissionError):
        return StorageError(f"storage download failed: 403 Forbidden from {uri}")
    return StorageError(f"storage download failed: {name}: {exc} from {uri}")


def _client_error_response(exc: BaseException | None) -> dict[str, Any] | None:
    # s3fs re-raises botocore's ClientError as an OSError; the response stays on the cause.
    seen = 0
    while exc is not None and seen < 10:
        response = getattr(exc, "response", None)
        if isinstance(response, dict) and "Error" in response:
            return response
        exc = exc.__cause__ or exc.__context__
        seen += 1
    return None


def _phrase(status: int) -> str:
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return "Error"


class LocalArchiveSource:
    """A local archive file; its version is its size and modification time."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def probe(self) -> str | None:
        st = self.path.stat()
        return f"local:{st.st_size}:{st.st_mtime_ns}"

    def download(self, dest: Path, progress: Progress | None) -> str | None:
        # A link is enough: unpacking reads through it, and removing the staging directory
        # removes the link, never the user's archive.
        dest.mkdir(parents=True, exist_ok=True)
        (dest / self.path.name).symlink_to(self.path)
        return self.probe()

    def close(self) -> None:
        pass


# ---- archives --------------------------------------------------------------------------------


def archive_kind(name: str) -> str | None:
    """Which archive KServe would unpack ("tar" or "zip") the file name says, or None."""
    lower = name.lower()
    if lower.endswith(TAR_SUFFIXES):
        return "tar"
    if lower.endswith(ZIP_SUFFIXES):
        return "zip"
    return None


def unpack(archive: Path, dest: Path, *, max_bytes: int = DEFAULT_MAX_UNPACKED_BYTES) -> None:
    """Unpack a tar or zip archive into ``dest``, refusing entries that would escape it."""
    kind = archive_kind(archive.name)
    if kind is None:
        raise StorageError(f"{archive.name} is not a tar or zip archive")
    dest.mkdir(parents=True, exist_ok=True)
    try:
        if kind == "zip":
            _unpack_zip(archive, dest, max_bytes)
        else:
            _unpack_tar(archive, dest, max_bytes)
    except tarfile.FilterError as exc:
        raise StorageError(f"refusing to unpack {archive.name}: {exc}") from None
    except (
        tarfile.TarError,
        zipfile.BadZipFile,
        EOFError,
        gzip.BadGzipFile,
        zlib.error,
        lzma.LZMAError,
    ) as exc:
        raise StorageError(f"cannot unpack {archive.name}: not a valid archive ({exc})") from None


def _unpack_tar(archive: Path, dest: Path, max_bytes: int) -> None:
    with tarfile.open(archive) as tar:
        members = tar.getmembers()
        total = 0
        for member in members:
            name = _safe_relative(member.name, archive.name)
            if member.isdev() or member.isfifo():
                raise StorageError(f"refusing to unpack {archive.name}: {name} is a device file")
            if member.issym():
                _check_link(name.parent / member.linkname, member.linkname, archive.name)
            elif member.islnk():
                _check_link(PurePosixPath(member.linkname), member.linkname, archive.name)
            total += member.size if member.isreg() else 0
            _check_budget(total, max_bytes, archive.name)
        # The data filter re-checks every path after following links already extracted.
        tar.extractall(dest, members=members, filter="data")


def _unpack_zip(archive: Path, dest: Path, max_bytes: int) -> None:
    root = dest.resolve()
    with zipfile.ZipFile(archive) as zf:
        infos = zf.infolist()
        # Declared sizes are enough: zipfile stops reading an entry at its declared size and
        # fails its CRC check if more data was there.
        _check_budget(sum(i.file_size for i in infos), max_bytes, archive.name)
        for info in infos:
            name = _safe_relative(info.filename, archive.name)
            target = dest / name
            mode = info.external_attr >> 16
            if info.is_dir():
                target.mkdir(parents=True, exist_ok=True)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            _check_inside(root, target.resolve(), info.filename, archive.name)
            if stat.S_ISLNK(mode):
                link = zf.read(info).decode()
                _check_link(name.parent / link, link, archive.name)
                target.symlink_to(link)
                _check_inside(root, target.resolve(), info.filename, archive.name)
                continue
            # Writers that store only permission bits leave the file type 0: a regular file.
            if stat.S_IFMT(mode) not in (0, stat.S_IFREG):
                raise StorageError(f"refusing to unpack {archive.name}: {name} is a device file")
            with zf.open(info) as src, open(target, "wb") as out:
                shutil.copyfileobj(src, out, HTTP_CHUNK)


def _safe_relative(name: str, origin: str) -> PurePosixPath:
    """A relative path from an archive entry or object key; absolute or '..' paths refused."""
    # Backslashes and drive letters count too: the archive may come from Windows.
    parts = name.replace("\\", "/")
    path = PurePosixPath(parts)
    if path.is_absolute() or (len(parts) > 1 and parts[1] == ":"):
        raise StorageError(f"refusing unsafe entry {name!r} in {origin}: absolute path")
    if ".." in path.parts:
        raise StorageError(f"refusing unsafe entry {name!r} in {origin}: it climbs out with '..'")
    return path


def _check_link(target: PurePosixPath, linkname: str, origin: str) -> None:
    normal = os.path.normpath(str(target))
    if linkname.startswith("/") or normal == ".." or normal.startswith("../"):
        raise StorageError(
            f"refusing to unpack {origin}: link to {linkname!r} points outside the archive"
        )


def _check_inside(root: Path, resolved: Path, name: str, origin: str) -> None:
    if resolved != root and root not in resolved.parents:
        raise StorageError(f"refusing to unpack {origin}: entry {name!r} points outside it")


def _check_budget(total: int, max_bytes: int, origin: str) -> None:
    if total > max_bytes:
        raise StorageError(
            f"refusing to unpack {origin}: it unpacks to more than {max_bytes} bytes"
        )
