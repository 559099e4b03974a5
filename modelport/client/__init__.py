"""Client side of the platform: logging in, stored credentials, authenticated HTTP clients.

In a notebook::

    from modelport.client import authenticated_client
    http = authenticated_client("http://localhost:8000")       # after `modelport login`
    http.post("/v2/models/sklearn-iris/infer", json={...})
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "CLI_CLIENT_ID",
    "LoginError",
    "authenticated_client",
    "login_with_device",
    "login_with_password",
    "revoke_saved",
    "valid_token",
]


def __getattr__(name: str) -> Any:
    # Imported on first use: the session module pulls in httpx (~60 ms), which commands that
    # only read saved credentials (`modelport get`) do without.
    if name in __all__:
        from modelport.client import session

        return getattr(session, name)
    raise AttributeError(name)
