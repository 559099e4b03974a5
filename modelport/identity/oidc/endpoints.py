"""Discovery, JWKS and userinfo, shaped like Dex's (docs/compat/dex-authservice-facts.md §1, §5)."""

from __future__ import annotations

from joserfc.jwk import KeySetSerialization
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from modelport.identity.provider import Provider
from modelport.identity.tokens import InvalidToken


async def discovery(request: Request) -> Response:
    """GET /.well-known/openid-configuration."""
    provider: Provider = request.app.state.provider
    base = provider.issuer
    grants = [
        "authorization_code",
        "client_credentials",
        "refresh_token",
        "urn:ietf:params:oauth:grant-type:device_code",
    ]
    if provider.password_grant:
        grants.append("password")
    return JSONResponse(
        {
            "issuer": base,
            "authorization_endpoint": f"{base}/auth",
            "token_endpoint": f"{base}/token",
            "jwks_uri": f"{base}/keys",
            "userinfo_endpoint": f"{base}/userinfo",
            "device_authorization_endpoint": f"{base}/device/code",
            "revocation_endpoint": f"{base}/token/revoke",
            "grant_types_supported": sorted(grants),
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": list(provider.tokens.keys.algs),
            "code_challenge_methods_supported": ["S256", "plain"],
            "scopes_supported": ["openid", "email", "groups", "profile", "offline_access"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
            "claims_supported": [
                "iss",
                "sub",
                "aud",
                "iat",
                "exp",
                "email",
                "email_verified",
                "locale",
                "name",
                "preferred_username",
                "at_hash",
            ],
        }
    )


async def keys(request: Request) -> Response:
    """GET /keys: the JWKS, cacheable until the next key change (at least two minutes)."""
    provider: Provider = request.app.state.provider
    # Keys are re-read from the database (and rotated) now and then: not on the loop.
    jwks, until_rotation = await run_in_threadpool(_published, provider)
    max_age = max(120, int(until_rotation))
    return JSONResponse(jwks, headers={"Cache-Control": f"max-age={max_age}, must-revalidate"})


def _published(provider: Provider) -> tuple[KeySetSerialization, float]:
    return provider.tokens.keys.jwks(), provider.tokens.keys.seconds_until_rotation()


async def userinfo(request: Request) -> Response:
    """GET/POST /userinfo: the claims of a valid access or ID token we issued."""
    provider: Provider = request.app.state.provider
    header = request.headers.get("authorization", "")
    if header[:7].lower() != "bearer " or not header[7:].strip():
        return JSONResponse(
            {"error": "access_denied", "error_description": "Invalid bearer token."},
            status_code=401,
            headers={"WWW-Authenticate": "Bearer"},
        )
    try:
        claims = await run_in_threadpool(provider.tokens.verify, header[7:].strip())
    except InvalidToken as exc:
        return JSONResponse(
            {"error": "access_denied", "error_description": str(exc)}, status_code=403
        )
    return JSONResponse(claims)
