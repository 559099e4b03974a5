"""Downloading one file from an ``http(s)://`` URL; its version is the ETag or Last-Modified.

The download limit counts the bytes written to disk, after any Content-Encoding is undone, so a
missing, understated or compressed Content-Length cannot get past it. Compression is not asked
for (model files rarely shrink); a server that gzips anyway is decoded a bounded piece at a
time, since httpx's decoders inflate a whole network read at once, and brotli or stacked codings
would turn kilobytes into gigabytes of memory before any limit could count them."""

from __future__ import annotations

import zlib
from collections.abc import Iterator, Mapping
from pathlib import Path

import httpx

from modelport.control.storage.errors import StorageError
from modelport.control.storage.limits import DEFAULT_MAX_DOWNLOAD_BYTES, DownloadBudget
from modelport.control.storage.types import Progress
from modelport.control.storage.uris import _display, _http_filename

HTTP_CHUNK = 2**20
_GZIP_OR_ZLIB = zlib.MAX_WBITS | 32  # zlib detects which header the stream has


class HttpSource:
    """A single file behind an http(s) URL; its version is the ETag or Last-Modified."""

    def __init__(
        self,
        uri: str,
        headers: Mapping[str, str],
        timeout_s: float,
        *,
        max_bytes: int = DEFAULT_MAX_DOWNLOAD_BYTES,
    ) -> None:
        self.uri = uri
        self.max_bytes = max_bytes
        # KServe's "<host>-headers" may still ask for compression; gzip and deflate are decoded.
        if not any(name.lower() == "accept-encoding" for name in headers):
            headers = {**headers, "Accept-Encoding": "identity"}
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
                budget = DownloadBudget(_display(self.uri), self.max_bytes)
                budget.declare(total)
                with open(dest / _http_filename(self.uri), "wb") as out:
                    for chunk in _decoded(response, self.uri):
                        budget.add(len(chunk))
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


def _decoded(response: httpx.Response, uri: str) -> Iterator[bytes]:
    """The body with its Content-Encoding undone, at most HTTP_CHUNK bytes per piece."""
    coding = response.headers.get("content-encoding", "").strip().lower()
    if coding in ("", "identity"):
        yield from response.iter_raw(HTTP_CHUNK)
        return
    if coding not in ("gzip", "x-gzip", "deflate"):
        raise StorageError(
            f"storage download failed: {_display(uri)} came with Content-Encoding {coding!r}; "
            "only gzip and deflate are decoded"
        )
    decoder = zlib.decompressobj(_GZIP_OR_ZLIB)
    try:
        for raw in response.iter_raw(HTTP_CHUNK):
            pending = raw
            while pending:
                if decoder.eof:  # another gzip member follows (gzip files may be concatenated)
                    decoder = zlib.decompressobj(_GZIP_OR_ZLIB)
                yield decoder.decompress(pending, HTTP_CHUNK)
                pending = decoder.unconsumed_tail or decoder.unused_data
        while not decoder.eof and (rest := decoder.decompress(b"", HTTP_CHUNK)):
            yield rest
    except zlib.error as exc:
        raise StorageError(
            f"storage download failed: {_display(uri)} is not valid {coding} ({exc})"
        ) from None
    if not decoder.eof:
        raise StorageError(f"storage download failed: {_display(uri)} ended mid-{coding} stream")


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
