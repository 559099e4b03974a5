"""Which request paths skip authentication, decided on a canonical path only.

A path skips auth only if it is already canonical — no ``.``/``..`` segments, no empty
segments (``//``), no ``;`` parameters, no percent-encoded characters left after decoding,
no trailing-slash variants beyond the listed ones — and then matches the list exactly
(case-sensitive). Anything that merely *looks* like a skip path after some normalisation
is authenticated like every other path, so no spelling reaches a protected route unchecked.
"""

from __future__ import annotations

from urllib.parse import unquote_to_bytes

# Prefixes (with their trailing slash) and exact paths that need no credentials.
SKIP_PREFIXES = ("/dex/",)
SKIP_EXACT = frozenset({"/dex", "/healthz", "/v2/health/live", "/v2/health/ready"})


def is_canonical(path: str) -> bool:
    """True when the path has exactly one spelling (see module docstring)."""
    if not path.startswith("/") or "\\" in path or "\x00" in path or "%" in path:
        return False
    if ";" in path:
        return False
    segments = path[1:].split("/")
    for i, segment in enumerate(segments):
        if segment in (".", ".."):
            return False
        if segment == "" and i != len(segments) - 1:
            return False
    return True


def skips_auth(raw_path: bytes, path: str) -> bool:
    """Whether a request may pass without credentials.

    ``raw_path`` is the path as sent (percent-encoded), ``path`` the decoded one; both must
    be the same canonical path, so an encoded ``%2e%2e`` or ``%2f`` never qualifies.
    """
    try:
        raw = raw_path.decode("ascii")
    except UnicodeDecodeError:
        return False
    raw = raw.split("?", 1)[0]
    if raw != path or not is_canonical(path):
        return False
    return path in SKIP_EXACT or path.startswith(SKIP_PREFIXES)


# Percent-decoding passes of the widest reading: a proxy decodes once (nginx's $uri, Envoy's
# normalize_path for unreserved characters), an upstream framework perhaps once more.
_DECODE_PASSES = 3


def widest_reading(raw_path: bytes) -> str:
    """The path as the most permissive proxy or upstream in front of or behind us could route it.

    Every reading real proxies apply at once: percent-escapes decoded (nginx decodes all of
    them into ``$uri``; Envoy's ``normalize_path`` decodes unreserved ones, and with
    ``path_with_escaped_slashes_action: UNESCAPE_AND_FORWARD`` also ``%2F``/``%5C``),
    backslashes taken as slashes (the WHATWG/Chromium URL parser Envoy uses does), ``;``
    parameters dropped (Tomcat, Jetty), slashes merged (nginx ``merge_slashes``, Envoy
    ``merge_slashes``), dot segments removed (RFC 3986 §5.2.4) and case folded (Envoy's
    ``case_sensitive: false`` routes). Only used to ask whether *some* reading addresses a
    namespace; never forwarded.
    """
    data = raw_path
    for _ in range(_DECODE_PASSES):
        if b"%" not in data:
            break
        data = unquote_to_bytes(data)  # malformed escapes stay as they are
    text = data.decode("latin-1").replace("\\", "/").lower()
    out: list[str] = []
    for segment in text.split("/"):
        segment = segment.split(";", 1)[0]
        if segment in ("", "."):
            continue
        if segment == "..":
            if out:
                out.pop()
            continue
        out.append(segment)
    trailing = "/" if text.endswith(("/", "/.", "/..")) and out else ""
    return "/" + "/".join(out) + trailing
