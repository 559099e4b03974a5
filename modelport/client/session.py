"""Password login against a platform's /dex/token, silent refresh, and an httpx client that
sends ``Authorization: Bearer`` with a valid token."""

from __future__ import annotations

import time
from collections.abc import Callable, Generator
from typing import Any

import httpx

from modelport.client import credentials
from modelport.client.errors import LoginError

CLI_CLIENT_ID = "modelport-cli"
SCOPES = "openid email groups profile offline_access"
# Refresh a little before expiry so a token is never sent in its last seconds.
EXPIRY_MARGIN_S = 60


def _token_request(url: str, data: dict[str, str]) -> dict[str, Any]:
    try:
        response = httpx.post(f"{url.rstrip('/')}/dex/token", data=data, timeout=30)
    except httpx.HTTPError as exc:
        raise LoginError(f"cannot reach {url}: {type(exc).__name__}") from None
    try:
        body = response.json()
    except ValueError:
        raise LoginError(f"{url} answered {response.status_code} without JSON") from None
    if not isinstance(body, dict):
        raise LoginError(f"{url} answered {response.status_code} without a JSON object")
    if response.status_code != 200:
        raise LoginError(body.get("error_description") or body.get("error") or "login refused")
    return body


def _entry(body: dict[str, Any], previous: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "id_token": body["id_token"],
        "access_token": body["access_token"],
        "refresh_token": body.get("refresh_token") or (previous or {}).get("refresh_token"),
        "expires_at": time.time() + float(body.get("expires_in", 0)),
    }


def login_with_password(
    url: str, username: str, password: str, *, save: bool = True
) -> dict[str, Any]:
    """Log in with the password grant; saves the tokens for `url` unless told not to."""
    body = _token_request(
        url,
        {
            "grant_type": "password",
            "username": username,
            "password": password,
            "scope": SCOPES,
            "client_id": CLI_CLIENT_ID,
        },
    )
    entry = _entry(body)
    if save:
        credentials.save(url, entry)
    return entry


def login_with_device(
    url: str, show: Callable[[str, str], None], *, timeout_s: float = 300.0, save: bool = True
) -> dict[str, Any]:
    """Device flow: ``show(verification_url, user_code)`` tells the person where to go; then
    poll until they approve in a browser (or the code expires)."""
    base = url.rstrip("/")
    try:
        start = httpx.post(
            f"{base}/dex/device/code",
            timeout=30,
            data={"client_id": CLI_CLIENT_ID, "scope": SCOPES},
        ).json()
    except (httpx.HTTPError, ValueError) as exc:
        raise LoginError(f"cannot start a device login at {url}: {type(exc).__name__}") from None
    if "device_code" not in start:
        raise LoginError(
            start.get("error_description") or start.get("error") or "device login refused"
        )
    show(start["verification_uri_complete"], start["user_code"])
    interval = float(start.get("interval", 5))
    deadline = time.monotonic() + min(timeout_s, float(start.get("expires_in", 300)))
    while time.monotonic() < deadline:
        time.sleep(interval)
        response = httpx.post(
            f"{base}/dex/token",
            timeout=30,
            data={
                "grant_type": "urn:ietf:params:oauth:grant-type:device_code",
                "device_code": start["device_code"],
                "client_id": CLI_CLIENT_ID,
            },
        )
        body = response.json()
        if response.status_code == 200:
            entry = _entry(body)
            if save:
                credentials.save(url, entry)
            return entry
        error = body.get("error")
        if error == "slow_down":
            interval += 5
        elif error != "authorization_pending":
            raise LoginError(body.get("error_description") or error or "device login refused")
    raise LoginError("the device code expired before the login was approved")


def refresh(url: str, entry: dict[str, Any]) -> dict[str, Any]:
    """New tokens from the refresh token (which rotates); saved for `url`."""
    token = entry.get("refresh_token")
    if not token:
        raise LoginError("the saved login cannot be refreshed; run `modelport login` again")
    body = _token_request(
        url, {"grant_type": "refresh_token", "refresh_token": token, "client_id": CLI_CLIENT_ID}
    )
    fresh = _entry(body, entry)
    credentials.save(url, fresh)
    return fresh


def revoke_saved(url: str) -> None:
    """Ask the platform to revoke the saved refresh token (best effort: offline is fine)."""
    entry = credentials.load(url)
    token = (entry or {}).get("refresh_token")
    if not token:
        return
    try:
        httpx.post(
            f"{url.rstrip('/')}/dex/token/revoke",
            timeout=10,
            data={"token": token, "token_type_hint": "refresh_token", "client_id": CLI_CLIENT_ID},
        )
    except httpx.HTTPError:
        pass


def valid_token(url: str) -> str:
    """A token for `url` that is valid now, refreshing the saved login if needed."""
    entry = credentials.load(url)
    if entry is None:
        raise LoginError(f"not logged in to {url}; run `modelport login {url}`")
    if entry.get("expires_at", 0) - EXPIRY_MARGIN_S < time.time():
        entry = refresh(url, entry)
    return str(entry["id_token"])


class BearerAuth(httpx.Auth):
    """httpx auth that always sends a valid token for one platform."""

    def __init__(self, url: str) -> None:
        self.url = url

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = f"Bearer {valid_token(self.url)}"
        yield request


def authenticated_client(url: str, *, timeout: float = 60.0) -> httpx.Client:
    """An ``httpx.Client`` for `url` that authenticates with the saved login."""
    return httpx.Client(base_url=url, auth=BearerAuth(url), timeout=timeout)
