"""Storage URI syntax: which URIs are usable (checked without I/O), and how a URI is shown to
users without the secrets a presigned URL carries. Also the namespace names that may key the
cache."""

from __future__ import annotations

import re
from pathlib import Path, PurePosixPath
from urllib.parse import unquote, urlsplit, urlunsplit

SUPPORTED = "use a local path, file://, http(s)://, s3://, gs:// or pvc://"
# RFC 1123 label, as Kubernetes namespaces are; fullmatch, so no trailing newline slips by.
_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")


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


def check_namespace(namespace: str) -> str | None:
    """Return None if ``namespace`` may name a directory of the cache, else why not."""
    if _DNS_LABEL.fullmatch(namespace):
        return None
    return (
        f"namespace {namespace!r} is not a DNS label (at most 63 lowercase letters, digits "
        "and '-', starting and ending with a letter or digit)"
    )


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
