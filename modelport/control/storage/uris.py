"""Storage URI syntax: which URIs are usable (checked without I/O), and how a URI is shown to
users without the secrets a presigned URL carries."""

from __future__ import annotations

from pathlib import Path, PurePosixPath
from urllib.parse import unquote, urlsplit, urlunsplit

SUPPORTED = "use a local path, file://, http(s)://, s3://, gs:// or pvc://"


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


def local_path(uri: str) -> Path | None:
    """The filesystem path a plain path or ``file://`` URI names (scheme in any case), as
    ``Storage.fetch`` reads it; None for every other scheme."""
    scheme, sep, rest = uri.partition("://")
    if not sep:
        return Path(uri)
    if scheme.lower() == "file":
        return Path(rest)
    return None


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
