"""The identity provider as an ASGI app: every endpoint below the issuer's path (``/dex``)."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from modelport.identity.oauth2.authorize import approval, authorize, login
from modelport.identity.oauth2.device import device_callback, device_code, device_page, verify_code
from modelport.identity.oauth2.token import revocation, token
from modelport.identity.oidc.endpoints import discovery, keys, userinfo
from modelport.identity.provider import Provider


async def healthz(request: Request) -> Response:
    """GET /healthz: the provider can reach its database and sign."""
    provider: Provider = request.app.state.provider
    await run_in_threadpool(provider.tokens.keys.signing_key)
    return PlainTextResponse("Health check passed")


def create_app(provider: Provider) -> Starlette:
    """The provider's routes, mounted under its issuer path."""
    p = provider.path
    routes = [
        Route(f"{p}/.well-known/openid-configuration", discovery, methods=["GET"]),
        Route(f"{p}/keys", keys, methods=["GET"]),
        Route(f"{p}/auth", authorize, methods=["GET"]),
        Route(f"{p}/auth/local", login, methods=["GET", "POST"]),
        Route(f"{p}/auth/local/login", login, methods=["GET", "POST"]),
        Route(f"{p}/approval", approval, methods=["GET", "POST"]),
        Route(f"{p}/token", token, methods=["POST"]),
        Route(f"{p}/token/revoke", revocation, methods=["POST"]),
        Route(f"{p}/userinfo", userinfo, methods=["GET", "POST"]),
        Route(f"{p}/device/code", device_code, methods=["POST"]),
        Route(f"{p}/device", device_page, methods=["GET"]),
        Route(f"{p}/device/auth/verify_code", verify_code, methods=["POST"]),
        Route(f"{p}/device/callback", device_callback, methods=["GET"]),
        Route(f"{p}/healthz", healthz, methods=["GET"]),
    ]
    app = Starlette(routes=routes)
    app.state.provider = provider
    return app
