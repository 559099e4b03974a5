"""Where a request goes and whether its caller may send it there: the namespace it names
(``/serving/NS/NAME`` or the Host, see addressing.py), the role it needs (view to read and
infer, edit for the rest), the caller's grant in that namespace, and the identity headers
it then carries upstream."""

from __future__ import annotations

from dataclasses import dataclass

import orjson

from modelport.access.authz import EDIT, VIEW, Authorizer
from modelport.access.caller import Identity
from modelport.gateway.addressing import address
from modelport.gateway.authn import DecisionCache
from modelport.gateway.exchange import request_headers
from modelport.gateway.proxy import Scope
from modelport.gateway.sessions import COOKIE, STATE_COOKIE
from modelport.identity.provider import Provider

Header = tuple[bytes, bytes]
_READ_SUFFIXES = ("/infer", ":predict", ":explain", "/ready")
# The session cookie, and every pending login's state cookie (STATE_COOKIE_<suffix>).
_CREDENTIAL_COOKIES = (COOKIE + "=", STATE_COOKIE)


@dataclass(frozen=True, slots=True)
class Route:
    """The service a request names (both None: none), and the scope to forward."""

    namespace: str | None
    name: str | None
    scope: Scope


@dataclass(frozen=True, slots=True)
class Admitted:
    route: Route
    identity_headers: list[Header]


@dataclass(frozen=True, slots=True)
class Refused:
    """The answer instead: 400 for an address the gateway refuses, 403 for a caller
    without the role."""

    status: int
    body: bytes


class Admission:
    """Routes requests to namespaces and authorizes callers there."""

    def __init__(
        self, provider: Provider, authorizer: Authorizer, domain: str, cache: DecisionCache
    ) -> None:
        self.provider = provider
        self.authorizer = authorizer
        self.domain = domain
        self.cache = cache

    def route(self, scope: Scope) -> Route | Refused:
        """The namespace and name the request's path or Host names; 400 when its address is
        refused (a spelling some proxy would read otherwise, a path and Host that disagree)."""
        raw_path = scope.get("raw_path") or scope["path"].encode()
        host = request_headers(scope).get("host", "")
        found = address(raw_path, scope["path"], host, self.domain)
        if isinstance(found, str):
            return Refused(400, orjson.dumps({"error": found}))
        if found.raw_path is not raw_path:
            scope = {**scope, "path": found.path, "raw_path": found.raw_path}
        return Route(found.namespace, found.name, scope)

    def admit(self, identity: Identity, route: Route | Refused) -> Admitted | Refused:
        """The route with the identity headers it carries, or why it is refused."""
        if isinstance(route, Refused):
            return route
        denied = self.refusal(identity, route.namespace, route.scope)
        if denied is not None:
            return Refused(403, orjson.dumps({"error": denied}))
        headers = [(b"kubeflow-userid", identity.email.encode())]
        if identity.groups:
            headers.append((b"kubeflow-groups", ",".join(identity.groups).encode()))
        return Admitted(route, headers)

    def refusal(self, identity: Identity, namespace: str | None, scope: Scope) -> str | None:
        """Why ``identity`` may not send this request into ``namespace``; None if it may."""
        needed = needed_role(scope)
        if identity.token_namespace is not None:
            return self._token_refusal(identity, namespace, needed)
        if namespace is None:
            return None
        key = ("authz", identity.email, namespace, needed)
        if self.cache.get(key) is not None:
            return None
        user = self.provider.directory.get_user(identity.email)
        verdict = self.authorizer.refusal(
            identity.email, namespace, needed, admin=bool(user and user.admin)
        )
        if verdict is None:  # only grants are cached: a new grant works at once
            self.cache.put(key, True)
        return verdict

    def _token_refusal(self, identity: Identity, namespace: str | None, needed: str) -> str | None:
        """An API token works in its one namespace, with its one role."""
        scoped = identity.token_namespace
        if namespace is None:
            return (
                f"This API token works only in namespace {scoped}: address the model as "
                f"/serving/{scoped}/NAME/... or with Host: NAME.{scoped}.{self.domain}."
            )
        if namespace != scoped:
            return f"This API token works only in namespace {scoped}."
        if needed == EDIT and identity.token_role != EDIT:
            return "This API token has the view role; this request needs edit."
        return None


def needed_role(scope: Scope) -> str:
    """Reading and inference need view; anything else that changes state needs edit."""
    if scope["method"] in ("GET", "HEAD", "OPTIONS"):
        return VIEW
    if scope["method"] == "POST" and scope["path"].endswith(_READ_SUFFIXES):
        return VIEW
    return EDIT


def without_credentials(scope: Scope) -> Scope:
    """The scope without the Authorization header and the gateway's own cookies: upstream
    code (a model someone else deployed) must not be able to replay them."""
    headers = []
    changed = False
    for name, value in scope["headers"]:
        if name == b"authorization":
            changed = True
            continue
        if name == b"cookie":
            pairs = value.decode("latin-1").split(";")
            kept = [p for p in pairs if not p.strip().startswith(_CREDENTIAL_COOKIES)]
            if len(kept) != len(pairs):
                changed = True
                if not kept:
                    continue
                value = ";".join(kept).strip().encode("latin-1")
        headers.append((name, value))
    return {**scope, "headers": headers} if changed else scope
