"""Downloading one file from an ``http(s)://`` URL; its version is the ETag or Last-Modified."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import httpx

from modelport.control.storage.errors import StorageError
from modelport.control.storage.types import Progress
from modelport.control.storage.uris import _display, _http_filename

HTTP_CHUNK = 2**20


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
