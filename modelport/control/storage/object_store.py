"""Downloading an object or every object under a prefix from a bucket (``s3://``, ``gs://``)
through an fsspec filesystem, several files at a time; its version is a digest of the listing.
Client errors become one-line StorageErrors that name the status and the bucket's error code.

The download limit is checked against the listing, against each object's size when its GET
answers, and on every chunk written, since objects can change between listing and download."""

from __future__ import annotations

import hashlib
import http
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlsplit

from fsspec.callbacks import Callback

from modelport.control.storage.archives import _safe_relative
from modelport.control.storage.errors import StorageError
from modelport.control.storage.limits import DEFAULT_MAX_DOWNLOAD_BYTES, DownloadBudget
from modelport.control.storage.types import Progress

S3_PARALLEL_FILES = 4  # KServe's S3_MAX_FILE_CONCURRENCY default


class ObjectStoreSource:
    """An object or a prefix in a bucket, through an fsspec filesystem (s3fs, gcsfs)."""

    def __init__(self, uri: str, fs: Any, *, max_bytes: int = DEFAULT_MAX_DOWNLOAD_BYTES) -> None:
        self.uri = uri
        self.fs = fs
        self.max_bytes = max_bytes
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
        budget = DownloadBudget(self.uri, self.max_bytes, total=total, progress=progress)
        budget.declare(total)

        def get(item: tuple[PurePosixPath, dict[str, Any]]) -> None:
            if budget.exceeded:  # another file already failed the limit: start no more
                return
            rel, info = item
            target = dest / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            callback = _ForwardBytes(budget)
            self.fs.get_file(info["name"], str(target), callback=callback)
            # A filesystem that reports no progress is still held to the limit, if late.
            budget.add(max(0, target.stat().st_size - callback.seen))

        dest.mkdir(parents=True, exist_ok=True)
        pool = ThreadPoolExecutor(S3_PARALLEL_FILES)
        try:
            list(pool.map(get, self.objects.items()))
        except StorageError:
            raise
        except Exception as exc:
            raise _object_store_error(self.uri, exc) from None
        finally:
            pool.shutdown(cancel_futures=True)
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


class _ForwardBytes(Callback):  # type: ignore[misc]
    """fsspec's progress callback for one file, feeding the download's budget."""

    def __init__(self, budget: DownloadBudget) -> None:
        super().__init__()
        self.budget = budget
        self.seen = 0

    def set_size(self, size: int | None) -> None:
        # Called with the GET's Content-Length before the body is read (and before s3fs
        # preallocates the file for ranged downloads).
        self.budget.declare(size)

    def relative_update(self, inc: int = 1) -> None:
        self.seen += inc
        self.budget.add(inc)


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
