"""Bounds on the request parameters the provider stores for callers nobody has authenticated.

``/auth`` keeps ``state``, ``nonce``, ``redirect_uri`` and the scopes of every request for up
to a day, and ``/device/code`` keeps the scopes of every device request; Dex bounds none of
them. The clients Dex serves send far less: ``state`` is a random token (oidc-authservice,
go-oidc, authlib: under 100 bytes), or oauth2-proxy's ``nonce:return-URL`` (base64url with
``--encode-state``), which is why ``state`` gets twice the room of ``nonce``, a random token
everywhere. Longer values are refused as ``invalid_request``, the way Dex reports any other
malformed request.
"""

from __future__ import annotations

MAX_STATE_BYTES = 2048
MAX_NONCE_BYTES = 1024
# Registered URIs are compared exactly; only public clients' loopback URIs vary.
MAX_REDIRECT_URI_BYTES = 2048
# Every scope Dex knows, and a few cross-client audiences, fit many times over.
MAX_SCOPE_BYTES = 2048

_LIMITS = {
    "state": MAX_STATE_BYTES,
    "nonce": MAX_NONCE_BYTES,
    "redirect_uri": MAX_REDIRECT_URI_BYTES,
    "scope": MAX_SCOPE_BYTES,
}


def too_long(name: str, value: str) -> bool:
    """Whether ``value`` of parameter ``name`` is over its bound (UTF-8 bytes)."""
    limit = _LIMITS[name]
    # Cheap first: a str's UTF-8 form is at least as long as the str, at most 4 times.
    if len(value) > limit:
        return True
    return len(value) * 4 > limit and len(value.encode(errors="surrogatepass")) > limit


def oversized(**values: str) -> str | None:
    """An ``error_description`` naming the first parameter over its bound, or None."""
    for name, value in values.items():
        if too_long(name, value):
            return f"Parameter {name} is too long (at most {_LIMITS[name]} bytes)."
    return None


def scope_list(raw: str) -> list[str]:
    """The scopes of a ``scope`` parameter in order, each once (repeats grant nothing more)."""
    return list(dict.fromkeys(raw.split()))
