"""``/authz``: deciding for a proxy in front of the gateway (Envoy's ext_authz, nginx's
``auth_request``) with the same authentication, routing and authorization as the gateway's
own requests. 200 with identity headers means allowed; a request it cannot place in a
namespace is denied, never allowed."""

from __future__ import annotations

from urllib.parse import unquote

import orjson

from modelport.gateway.admission import Admission, Refused
from modelport.gateway.authn import Authenticator
from modelport.gateway.exchange import reply, request_headers
from modelport.gateway.login import LoginFlow
from modelport.gateway.paths import skips_auth
from modelport.gateway.proxy import Scope, Send

CHECK_PATH = "/authz"
NOT_PLACED = (
    b'{"error": "Cannot tell which namespace this request is for: address the model as '
    b'/serving/NAMESPACE/NAME/... or with Host: NAME.NAMESPACE.DOMAIN or an Istio authority."}'
)


class ExternalCheck:
    def __init__(
        self, authn: Authenticator, admission: Admission, login: LoginFlow, domain: str
    ) -> None:
        self.authn = authn
        self.admission = admission
        self.login = login
        self.domain = domain

    async def __call__(self, scope: Scope, send: Send) -> None:
        """Envoy's HTTP ext_authz sends the original request with ``/authz`` prepended to
        its path; nginx's ``auth_request`` sends a subrequest carrying ``X-Original-URI``
        and ``X-Original-Method``. nginx understands only 2xx/401/403, so browsers are sent
        to the login page (302) only in Envoy's case."""
        inner, browser_redirect = _original(scope)
        raw = inner["raw_path"]
        # The proxy routes by the same path and Host: decide on the namespace they name.
        route = self.admission.route(inner) if raw else Refused(403, NOT_PLACED)
        placed = not isinstance(route, Refused) and route.namespace is not None
        if not placed and skips_auth(raw, inner["path"]):
            await reply(send, 200, b"")
            return
        identity, bad_credentials = self.authn.authenticate(inner)
        if identity is None:
            if browser_redirect and not bad_credentials:
                await self.login.challenge(inner, send, bad_credentials)
            else:
                body = orjson.dumps({"error": bad_credentials or "Authentication required."})
                await reply(send, 401, body, [(b"www-authenticate", b"Bearer")])
            return
        if not placed:
            # The proxy forwards what we allow to a backend we cannot name: deny.
            why = route.body if isinstance(route, Refused) else NOT_PLACED
            await reply(send, 403, why.replace(b"DOMAIN", self.domain.encode()))
            return
        admitted = self.admission.admit(identity, route)
        if isinstance(admitted, Refused):
            await reply(send, admitted.status, admitted.body)
            return
        await reply(send, 200, b"", admitted.identity_headers)


def _original(scope: Scope) -> tuple[Scope, bool]:
    """The request the proxy asks about, and whether a browser may be sent to log in."""
    headers = request_headers(scope)
    original = headers.get("x-original-uri")
    if original is not None:
        target, _, query = original.partition("?")
        raw = target.encode("latin-1")
        method = headers.get("x-original-method", "GET").upper()
        browser_redirect = False
    else:
        raw = scope.get("raw_path") or scope["path"].encode()
        # "/authz" is literal in what Envoy sends; any other spelling names nothing.
        raw = (raw[len(CHECK_PATH) :] or b"/") if raw.startswith(CHECK_PATH.encode()) else b""
        query = scope.get("query_string", b"").decode("latin-1")
        method = scope["method"]
        browser_redirect = True
    path = unquote(raw.decode("latin-1"))  # as uvicorn decodes the paths it serves
    inner = {**scope, "path": path, "raw_path": raw, "method": method}
    inner["query_string"] = query.encode("latin-1")
    return inner, browser_redirect
