"""Client side of the platform: logging in, stored credentials, authenticated HTTP clients.

In a notebook::

    from modelport.client import authenticated_client
    http = authenticated_client("http://localhost:8000")       # after `modelport login`
    http.post("/v2/models/sklearn-iris/infer", json={...})
"""

from modelport.client.session import (
    CLI_CLIENT_ID,
    LoginError,
    authenticated_client,
    login_with_device,
    login_with_password,
    revoke_saved,
    valid_token,
)

__all__ = [
    "CLI_CLIENT_ID",
    "LoginError",
    "authenticated_client",
    "login_with_device",
    "login_with_password",
    "revoke_saved",
    "valid_token",
]
