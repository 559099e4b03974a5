"""POST /token: authorization_code (with PKCE), refresh_token (rotating) and password grants.

Status codes and messages follow Dex (docs/compat/dex-authservice-facts.md §3). Beyond Dex:
PKCE is required of public clients, and presenting an already-rotated refresh token revokes
its whole family (OAuth 2.0 Security BCP §4.14), so a stolen token stops working for both.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote

from sqlalchemy import select, update
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from modelport.identity.db import AuthCode, Client, RefreshToken, User
from modelport.identity.oauth2.device import DEVICE_GRANT, poll
from modelport.identity.oauth2.errors import (
    NO_STORE,
    AccessDenied,
    InvalidClient,
    InvalidGrant,
    InvalidRequest,
    InvalidScope,
    OAuthError,
    TooManyFailures,
    UnauthorizedClient,
    UnsupportedGrantType,
)
from modelport.identity.oauth2.params import oversized, scope_list
from modelport.identity.oauth2.pkce import verifier_matches
from modelport.identity.provider import Provider, sha256_hex
from modelport.identity.revocation import issued_too_early
from modelport.identity.tokens import encode_subject

GRANT_CODE = "authorization_code"
GRANT_REFRESH = "refresh_token"
GRANT_PASSWORD = "password"
GRANT_CLIENT = "client_credentials"
# Service accounts (client_credentials) are subjects of this pseudo-connector.
CLIENT_CONNECTOR = "client"


async def token(request: Request) -> Response:
    """The token endpoint."""
    provider: Provider = request.app.state.provider
    try:
        form = await request.form()
        fields = {k: str(v) for k, v in form.items()}
        grant = fields.get("grant_type", "")
        handlers = {
            GRANT_CODE: _authorization_code,
            GRANT_REFRESH: _refresh,
            DEVICE_GRANT: _device,
            GRANT_CLIENT: _client_credentials,
        }
        if grant == GRANT_PASSWORD and not provider.password_grant:
            raise UnsupportedGrantType(f"Unsupported grant type ({grant}).")
        authorization = request.headers.get("authorization", "")
        # Every grant reads and writes the database (SQLite may wait on its write lock):
        # the work runs in the threadpool, and password checks on the hashing pool.
        if grant == GRANT_PASSWORD:
            address = request.client.host if request.client else ""
            body = await _password(provider, authorization, fields, address)
        else:
            handler = handlers.get(grant)
            if handler is None:
                raise UnsupportedGrantType(f"Unsupported grant type ({grant}).")
            body = await run_in_threadpool(_grant, provider, authorization, fields, handler)
    except OAuthError as exc:
        return exc.response()
    return JSONResponse(body, headers=NO_STORE)


def _grant(
    provider: Provider,
    authorization: str,
    fields: dict[str, str],
    handler: Callable[[Provider, Client, dict[str, str]], dict[str, Any]],
) -> dict[str, Any]:
    return handler(provider, _client(provider, authorization, fields), fields)


def _client(provider: Provider, authorization: str, fields: dict[str, str]) -> Client:
    client_id = fields.get("client_id")
    secret = fields.get("client_secret")
    if authorization[:6].lower() == "basic ":
        try:
            decoded = base64.b64decode(authorization[6:], validate=True).decode()
            raw_id, _, raw_secret = decoded.partition(":")
        except (ValueError, UnicodeDecodeError):
            raise InvalidRequest("client_id improperly encoded") from None
        client_id, secret = unquote(raw_id), unquote(raw_secret)
    client = provider.directory.get_client(client_id or "")
    if client is None:
        raise InvalidClient("Invalid client credentials.")
    if client.public:
        return client
    if not provider.directory.client_secret_ok(client, secret):
        raise InvalidClient("Invalid client credentials.")
    return client


def _tokens(
    provider: Provider,
    user: User,
    client: Client,
    scopes: list[str],
    nonce: str,
    *,
    code: str | None = None,
    refresh: str | None = None,
) -> dict[str, Any]:
    access, id_token, expires_in = provider.tokens.issue(
        user,
        client.client_id,
        scopes,
        nonce=nonce,
        code=code,
        audience=provider.audience(client.client_id, scopes),
    )
    body: dict[str, Any] = {
        "access_token": access,
        "token_type": "bearer",
        "expires_in": expires_in,
    }
    if refresh is None and "offline_access" in scopes:
        refresh = provider.new_refresh_token(client.client_id, user.user_id, scopes, nonce)
    if refresh is not None:
        body["refresh_token"] = refresh
    body["id_token"] = id_token
    return body


def _authorization_code(provider: Provider, client: Client, f: dict[str, str]) -> dict[str, Any]:
    code = f.get("code", "")
    if not code:
        raise InvalidRequest("Required param: code.")
    with provider.sessions.begin() as db:
        row = db.get(AuthCode, sha256_hex(code))
        # Single use: the code is gone whatever happens next.
        if row is not None:
            db.delete(row)
    if row is None or row.expires_at < provider.clock.time() or row.client_id != client.client_id:
        raise InvalidGrant("Invalid or expired code parameter.")
    if f.get("redirect_uri", "") != row.redirect_uri:
        raise InvalidRequest("redirect_uri did not match URI from initial request.")
    verifier = f.get("code_verifier", "")
    if row.code_challenge:
        if not verifier:
            raise InvalidGrant("Expecting parameter code_verifier in PKCE flow.")
        if not verifier_matches(row.code_challenge_method, row.code_challenge, verifier):
            raise InvalidGrant("Invalid code_verifier.")
    elif verifier:
        raise InvalidRequest("No PKCE flow started. Cannot check code_verifier.")
    user = provider.directory.get_user_by_id(row.user_id)
    if user is None:
        raise InvalidGrant("The user of this code no longer exists.")
    return _tokens(provider, user, client, list(row.scopes), row.nonce, code=code)


def _refresh(provider: Provider, client: Client, f: dict[str, str]) -> dict[str, Any]:
    presented = f.get("refresh_token", "")
    if not presented:
        raise InvalidRequest("No refresh token is found in request.")
    now = provider.clock.time()
    invalid = "Refresh token is invalid or has already been claimed by another client."
    # Errors are raised after the transaction commits: a reuse must stay recorded.
    failure: OAuthError | None = None
    user = None
    with provider.sessions.begin() as db:
        row = db.get(RefreshToken, sha256_hex(presented))
        if row is None or row.revoked:
            failure = InvalidRequest(invalid)
        elif row.client_id != client.client_id:
            failure = InvalidGrant(invalid)
        elif row.used:
            # A rotated token came back: someone holds a copy. End the whole family.
            db.execute(
                update(RefreshToken).where(RefreshToken.family == row.family).values(revoked=True)
            )
            failure = InvalidGrant(invalid)
        elif (provider.refresh_idle_s and now - row.last_used_at > provider.refresh_idle_s) or (
            provider.refresh_lifetime_s
            and now - row.family_created_at > provider.refresh_lifetime_s
        ):
            failure = InvalidRequest("Refresh token expired.")
        else:
            row.used = True
            row.last_used_at = now
            family, family_created, scopes, nonce = (
                row.family,
                row.family_created_at,
                list(row.scopes),
                row.nonce,
            )
            user = db.scalar(select(User).where(User.user_id == row.user_id))
    if failure is not None:
        raise failure
    if user is None:
        raise InvalidGrant("The user of this refresh token no longer exists.")
    if issued_too_early(family_created, user.tokens_valid_after):
        # Revoked with the password change; seen here if this refresh raced the revocation.
        raise InvalidGrant(invalid)
    wanted = scope_list(f.get("scope", ""))
    if wanted:
        extra = [s for s in wanted if s not in scopes]
        if extra:
            raise InvalidRequest(f"Requested scopes contain unauthorized scope(s): {extra}.")
        scopes = wanted
    new = provider.new_refresh_token(
        client.client_id,
        user.user_id,
        scopes,
        nonce,
        family=family,
        family_created_at=family_created,
    )
    return _tokens(provider, user, client, scopes, nonce, refresh=new)


def _device(provider: Provider, client: Client, f: dict[str, str]) -> dict[str, Any]:
    user_id, scopes = poll(provider, client.client_id, f.get("device_code", ""))
    user = provider.directory.get_user_by_id(user_id)
    if user is None:
        raise InvalidGrant("The user of this device code no longer exists.")
    return _tokens(provider, user, client, scopes, "")


def _client_credentials(provider: Provider, client: Client, f: dict[str, str]) -> dict[str, Any]:
    # RFC 6749 §4.4: confidential clients only, an access token only (no refresh, no ID token).
    if client.public:
        raise UnauthorizedClient("Public clients cannot use client_credentials.")
    scopes = f.get("scope", "openid").split()
    unknown = [s for s in scopes if s not in ("openid", "groups")]
    if unknown:
        raise InvalidScope(f"Unsupported scope(s) for a service account: {unknown}")
    now = int(provider.clock.time())
    ttl = int(provider.tokens.access_token_ttl_s)
    claims = {
        "iss": provider.issuer,
        "sub": encode_subject(client.client_id, CLIENT_CONNECTOR),
        "aud": client.client_id,
        "exp": now + ttl,
        "iat": now,
        "client_id": client.client_id,
    }
    return {"access_token": provider.tokens.sign(claims), "token_type": "bearer", "expires_in": ttl}


def revoke(provider: Provider, client: Client, token_value: str) -> None:
    """RFC 7009: end a refresh token (its whole family). JWTs expire on their own."""
    with provider.sessions.begin() as db:
        row = db.get(RefreshToken, sha256_hex(token_value)) if token_value else None
        if row is not None and row.client_id == client.client_id:
            db.execute(
                update(RefreshToken).where(RefreshToken.family == row.family).values(revoked=True)
            )


async def revocation(request: Request) -> Response:
    """POST /token/revoke (RFC 7009): always 200 for an authenticated client."""
    provider: Provider = request.app.state.provider
    try:
        form = await request.form()
        fields = {k: str(v) for k, v in form.items()}
        authorization = request.headers.get("authorization", "")
        await run_in_threadpool(_revoke, provider, authorization, fields)
    except OAuthError as exc:
        return exc.response()
    return Response(status_code=200, headers=NO_STORE)


def _revoke(provider: Provider, authorization: str, fields: dict[str, str]) -> None:
    revoke(provider, _client(provider, authorization, fields), fields.get("token", ""))


async def _password(
    provider: Provider, authorization: str, f: dict[str, str], address: str
) -> dict[str, Any]:
    client, scopes = await run_in_threadpool(_password_client, provider, authorization, f)
    if provider.throttle.blocked(address):
        raise TooManyFailures("Too many failed logins from this address; retry later.")
    user = await provider.directory.login(f.get("username", ""), f.get("password", ""))
    if user is None:
        provider.throttle.failed(address)
        raise AccessDenied("Invalid username or password")
    return await run_in_threadpool(_tokens, provider, user, client, scopes, f.get("nonce", ""))


def _password_client(
    provider: Provider, authorization: str, f: dict[str, str]
) -> tuple[Client, list[str]]:
    client = _client(provider, authorization, f)
    # The nonce is kept with the refresh token, so it is bounded as at /auth.
    problem = oversized(nonce=f.get("nonce", ""), scope=f.get("scope", ""))
    if problem:
        raise InvalidRequest(problem)
    scopes = scope_list(f.get("scope", ""))
    problem = provider.scope_problem(client, scopes)
    if problem:
        raise InvalidRequest(problem)
    return client, scopes
