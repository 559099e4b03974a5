"""Where a finished login sends the browser back to: a path on this site, or ``/``.

Browsers resolve ``Location`` with the WHATWG URL parser, which removes TAB, CR and LF from
anywhere in a URL and leading/trailing C0 controls and spaces, and takes ``\\`` as ``/``;
so ``/\\t/evil.example`` and ``/\\evil.example`` both become ``//evil.example``, another
host. oauth2-proxy was bitten by exactly this (GHSA-j7px-6hwj-hpjg: ``%09``, ``%0a``,
``%0d`` between the slashes; GHSA-5m6c-jp6f-2vcv; hence its ``invalidRedirectRegex``); its
rule is the model here, made stricter: the return path is
printable ASCII as sent (still percent-encoded), and neither it nor its percent-decoded
form has a control character, a backslash, or ``//`` in the path.
"""

from __future__ import annotations

from urllib.parse import unquote_to_bytes

HOME = "/"
_PRINTABLE = frozenset(range(0x21, 0x7F))


def return_path(target: str) -> str:
    """``target`` (path and query as the client sent them) if it is safe to redirect to,
    else ``/``."""
    if not target.startswith("/") or not all(ord(c) in _PRINTABLE for c in target):
        return HOME
    path = target.partition("?")[0]
    decoded = unquote_to_bytes(target)
    if "\\" in target or b"\\" in decoded or any(b < 0x20 or b == 0x7F for b in decoded):
        return HOME
    if "//" in path or b"//" in unquote_to_bytes(path):
        return HOME
    return target
