"""Device authorization grant (RFC 8628) in Dex's shape: ``/device/code`` for the device,
``/device`` + ``/device/auth/verify_code`` for the person, who then logs in through the
normal ``/auth`` hops with the provider's own ``/device/callback`` as redirect URI.

The callback approves a device only with a code issued for that device's own authorization
request, as Dex's does (server/device: the code's client and ``/device/callback`` redirect
must match the device request). Beyond Dex, that request carries a PKCE challenge whose
verifier never leaves the provider, so a code from any other login (a victim's, leaked) is
refused whatever its client, and scopes are those the code was approved for, never more
than the device asked for. Each device code is approved once.
"""

from __future__ import annotations

import secrets
from urllib.parse import urlencode

from sqlalchemy import delete, select
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response

from modelport.identity.db import AuthCode, DeviceCode
from modelport.identity.oauth2.authorize import error_page, page
from modelport.identity.oauth2.errors import NO_STORE, InvalidRequest, OAuthError, SlowDown
from modelport.identity.oauth2.params import oversized, scope_list
from modelport.identity.oauth2.pkce import S256, new_verifier, s256, verifier_matches
from modelport.identity.pending import keep_newest
from modelport.identity.provider import Provider, sha256_hex

DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
# Dex's alphabet for user codes: no vowels (no words), no look-alike characters.
USER_CODE_ALPHABET = "BCDFGHJKLMNPQRSTVWXZ"
DEVICE_TTL_S = 300
POLL_INTERVAL_S = 5


def _user_code() -> str:
    chars = [secrets.choice(USER_CODE_ALPHABET) for _ in range(8)]
    return "".join(chars[:4]) + "-" + "".join(chars[4:])


async def device_code(request: Request) -> Response:
    """POST /device/code: start a device login."""
    provider: Provider = request.app.state.provider
    form = await request.form()
    return await run_in_threadpool(
        _device_code, provider, str(form.get("client_id", "")), str(form.get("scope", "openid"))
    )


def _device_code(provider: Provider, client_id: str, scope: str) -> Response:
    client = provider.directory.get_client(client_id)
    if client is None:
        return InvalidRequest("Invalid client_id.").response()
    problem = oversized(scope=scope)
    if problem:
        return InvalidRequest(problem).response()
    scopes = scope_list(scope)
    problem = provider.scope_problem(client, scopes)
    if problem:
        return InvalidRequest(problem).response()
    code = secrets.token_urlsafe(32)
    user_code = _user_code()
    now = provider.clock.time()
    with provider.sessions.begin() as db:
        if provider.purge_due("device_codes", now):
            db.execute(delete(DeviceCode).where(DeviceCode.expires_at < now))
        db.add(
            DeviceCode(
                device_code_sha256=sha256_hex(code),
                user_code=user_code,
                client_id=client.client_id,
                scopes=scopes,
                expires_at=now + DEVICE_TTL_S,
                interval_s=POLL_INTERVAL_S,
                code_verifier=new_verifier(),
            )
        )
        db.flush()
        keep_newest(db, DeviceCode, client.client_id, provider.max_pending_per_client)
    base = provider.issuer
    return JSONResponse(
        {
            "device_code": code,
            "user_code": user_code,
            "verification_uri": f"{base}/device",
            "verification_uri_complete": f"{base}/device?user_code={user_code}",
            "expires_in": DEVICE_TTL_S,
            "interval": POLL_INTERVAL_S,
        },
        headers=NO_STORE,
    )


async def device_page(request: Request) -> Response:
    """GET /device: the page where the person types (or confirms) the user code."""
    provider: Provider = request.app.state.provider
    return page(
        provider,
        "device.html",
        user_code=request.query_params.get("user_code", ""),
        post_url=f"{provider.path}/device/auth/verify_code",
        error="",
    )


async def verify_code(request: Request) -> Response:
    """POST /device/auth/verify_code: check the user code, then send the person to log in."""
    provider: Provider = request.app.state.provider
    form = await request.form()
    user_code = str(form.get("user_code", "")).strip().upper()
    row = await run_in_threadpool(_device_row, provider, user_code)
    # A row from before device requests had a verifier cannot be bound: treat it as expired.
    if (
        row is None
        or row.expires_at < provider.clock.time()
        or row.user_id
        or not row.code_verifier
    ):
        return page(
            provider,
            "device.html",
            400,
            user_code=user_code,
            post_url=f"{provider.path}/device/auth/verify_code",
            error="Invalid or Expired User Code",
        )
    params = urlencode(
        {
            "client_id": row.client_id,
            "redirect_uri": f"{provider.path}/device/callback",
            "response_type": "code",
            "scope": " ".join(row.scopes),
            "state": row.user_code,
            "code_challenge": s256(row.code_verifier),
            "code_challenge_method": S256,
        }
    )
    return RedirectResponse(f"{provider.path}/auth?{params}", status_code=302)


def _device_row(provider: Provider, user_code: str) -> DeviceCode | None:
    with provider.sessions() as db:
        return db.scalar(select(DeviceCode).where(DeviceCode.user_code == user_code))


async def device_callback(request: Request) -> Response:
    """GET /device/callback: the login finished; mark the device code approved."""
    provider: Provider = request.app.state.provider
    code = request.query_params.get("code", "")
    user_code = request.query_params.get("state", "")
    valid = await run_in_threadpool(_approve_device, provider, code, user_code)
    if not valid:
        return error_page(provider, 400, "Bad Request", "Invalid or expired device login.")
    return page(
        provider,
        "error.html",
        title="Login Successful",
        message="Return to your device: it is now logged in.",
    )


def _approve_device(provider: Provider, code: str, user_code: str) -> bool:
    now = provider.clock.time()
    with provider.sessions.begin() as db:
        auth = db.get(AuthCode, sha256_hex(code)) if code else None
        row = db.scalar(select(DeviceCode).where(DeviceCode.user_code == user_code))
        if auth is None or row is None:
            return False
        # Single use, as at the token endpoint: a code shown here is spent even when refused.
        db.delete(auth)
        if not _bound(provider, auth, row, now):
            return False
        row.user_id = auth.user_id
        row.scopes = list(auth.scopes)
    return True


def _bound(provider: Provider, auth: AuthCode, row: DeviceCode, now: float) -> bool:
    """Whether ``auth`` was issued for this device's own, still pending, request."""
    return (
        not row.user_id
        and row.expires_at >= now
        and auth.expires_at >= now
        and auth.client_id == row.client_id
        and auth.redirect_uri == provider.device_callback
        and bool(row.code_verifier)
        and auth.code_challenge_method == S256
        and verifier_matches(S256, auth.code_challenge, row.code_verifier)
        # The person approved the code's scopes; the device gets no more than it asked for.
        and set(auth.scopes) <= set(row.scopes)
    )


class AuthorizationPending(OAuthError):
    error = "authorization_pending"
    status = 401  # Dex answers 401 here, not RFC 8628's 400


class ExpiredToken(OAuthError):
    error = "expired_token"


def poll(provider: Provider, client_id: str, device_code_value: str) -> tuple[str, list[str]]:
    """The token endpoint's device grant: (user_id, scopes) once approved, else an error."""
    now = provider.clock.time()
    # Errors are raised after the transaction commits (poll times and deletions must stick).
    failure: OAuthError
    with provider.sessions.begin() as db:
        row = db.get(DeviceCode, sha256_hex(device_code_value)) if device_code_value else None
        if row is None or row.client_id != client_id:
            failure = InvalidRequest("Invalid device code.")
        elif row.expires_at < now:
            db.delete(row)
            failure = ExpiredToken("The device code has expired.")
        elif not row.user_id:
            too_fast = now - row.last_poll_at < row.interval_s
            row.last_poll_at = now
            failure = SlowDown() if too_fast else AuthorizationPending()
        else:
            db.delete(row)
            return row.user_id, list(row.scopes)
    raise failure
