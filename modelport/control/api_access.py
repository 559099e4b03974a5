"""Access management in the control API (the web UI's Access page, Kubeflow's "Manage
Contributors"): a namespace's owner and contributors, the caller's own API tokens, and
signing the caller out everywhere.

Only people manage access: an API token or a service account gets 403 here, so a leaked
machine credential can neither mint tokens nor add anyone to a namespace. Contributors are
changed by the namespace's owner (or an admin), as in Kubeflow, where only a profile's owner
manages its contributors; anyone with a role there may read the list.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from modelport.access.authz import ROLES, VIEW, AuthzError
from modelport.access.caller import Identity
from modelport.control.namespaces import is_service_account
from modelport.control.operations import ApiContext, Control, Forbidden, Invalid, NotFound
from modelport.identity.users import UserError

MAX_BODY = 4096
MAX_TTL_S = 366 * 86400
# Where ``modelport up`` puts the identity provider's "sign out everywhere" for this API
# (its users live below the control plane, in the provider's directory).
SIGN_OUT_STATE = "sign_out_everywhere"


def _json(body: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(body), status, media_type="application/json")


def _time(seconds: float) -> str | None:
    if not seconds:
        return None
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


async def _object(request: Request) -> dict[str, Any]:
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY:
            raise Invalid(f"The request body is over {MAX_BODY} bytes.")
    try:
        found = orjson.loads(body or b"{}")
    except orjson.JSONDecodeError as exc:
        raise Invalid(f"The body is not JSON: {exc}.") from exc
    if not isinstance(found, dict):
        raise Invalid("The body must be a JSON object.")
    return found


class AccessApi:
    def __init__(self, control: Control) -> None:
        self.control = control
        self.authorizer = control.ctx.authorizer

    def _person(self, request: Request) -> Identity:
        identity = self.control.identity(request.scope)
        if identity.token_namespace is not None or is_service_account(identity):
            raise Forbidden("Only people manage access: API tokens and service accounts cannot.")
        return identity

    def _owner(self, identity: Identity, namespace: str) -> None:
        ns = self.authorizer.get_namespace(namespace)
        if ns is None:
            # Said only to those who could have seen it: others get the API's usual 403.
            self.control.require(identity, namespace, VIEW)
            raise NotFound("Namespace", "", namespace)
        if ns.owner != identity.email.lower() and not self.control.admin(identity):
            self.control.require(identity, namespace, VIEW)
            raise Forbidden(f"Only the owner of {namespace} ({ns.owner}) manages its contributors.")

    async def contributors(self, request: Request) -> Response:
        """
        summary: A namespace's owner and contributors with their roles.
        responses:
          200: {description: "owner, items: [{email, role}]"}
          403: {description: the caller has no role in the namespace}
        """
        namespace = request.path_params["namespace"]
        self.control.require(self.control.identity(request.scope), namespace, VIEW)
        ns = await asyncio.to_thread(self.authorizer.get_namespace, namespace)
        if ns is None:
            raise NotFound("Namespace", "", namespace)
        rows = await asyncio.to_thread(self.authorizer.contributors, namespace)
        items = [{"email": email, "role": role} for email, role in rows]
        return _json({"namespace": namespace, "owner": ns.owner, "items": items})

    async def set_contributor(self, request: Request) -> Response:
        """
        summary: Give someone a role (view or edit) in a namespace; owners and admins only.
        responses:
          200: {description: "the contributor: email, role"}
          403: {description: not the namespace's owner}
          422: {description: bad email or role}
        """
        identity, namespace = self._person(request), request.path_params["namespace"]
        self._owner(identity, namespace)
        body = await _object(request)
        email, role = str(body.get("email", "")).strip().lower(), body.get("role")
        if "@" not in email or len(email) > 320 or any(c.isspace() for c in email):
            raise Invalid("email must be an email address.")
        if role not in ROLES:
            raise Invalid("role must be view or edit.")
        owner = self.authorizer.get_namespace(namespace)
        if owner is not None and owner.owner == email:
            raise Invalid(f"{email} owns {namespace} already.")
        await asyncio.to_thread(self.authorizer.set_contributor, namespace, email, str(role))
        return _json({"email": email, "role": role})

    async def remove_contributor(self, request: Request) -> Response:
        """
        summary: Take someone's role in a namespace away; owners and admins only.
        responses:
          200: {description: removed}
          404: {description: not a contributor}
        """
        identity, namespace = self._person(request), request.path_params["namespace"]
        self._owner(identity, namespace)
        email = request.path_params["email"]
        try:
            await asyncio.to_thread(self.authorizer.remove_contributor, namespace, email)
        except AuthzError as exc:
            raise NotFound("Contributor", namespace, email) from exc
        return _json({"removed": {"namespace": namespace, "email": email}})

    async def tokens(self, request: Request) -> Response:
        """
        summary: The caller's own API tokens (never their secrets).
        responses:
          200: {description: "items: [{id, namespace, role, description, created, expires,
            revoked}]"}
        """
        identity = self._person(request)
        rows = await asyncio.to_thread(self.authorizer.list_tokens, identity.email)
        items = [
            {
                "id": t.token_id,
                "namespace": t.namespace,
                "role": t.role,
                "description": t.description,
                "created": _time(t.created_at),
                "expires": _time(t.expires_at),
                "revoked": t.revoked,
            }
            for t in rows
        ]
        return _json({"items": items})

    async def create_token(self, request: Request) -> Response:
        """
        summary: A new API token for one namespace and role, no more than the caller holds.
        description: The token's value is in this answer only; it is never stored.
        responses:
          200: {description: "token, id, namespace, role, expires"}
          403: {description: the caller's own role does not allow it}
          422: {description: bad namespace, role or ttl_seconds}
        """
        identity = self._person(request)
        body = await _object(request)
        namespace, role = str(body.get("namespace", "")), body.get("role")
        ttl = body.get("ttl_seconds", 0)
        if role not in ROLES:
            raise Invalid("role must be view or edit.")
        if not isinstance(ttl, int) or isinstance(ttl, bool) or not 0 <= ttl <= MAX_TTL_S:
            raise Invalid(f"ttl_seconds must be a whole number from 0 (no expiry) to {MAX_TTL_S}.")
        description = str(body.get("description", ""))[:256]
        self.control.require(identity, namespace, str(role))
        create: Callable[[], str] = lambda: self.authorizer.create_token(  # noqa: E731
            identity.email,
            namespace,
            str(role),
            ttl_s=float(ttl),
            description=description,
            admin=self.control.admin(identity),
        )
        try:
            token = await asyncio.to_thread(create)
        except AuthzError as exc:
            raise Forbidden(str(exc)) from exc
        token_id = token.removeprefix("mpt_").split("_")[0]
        return _json({"token": token, "id": token_id, "namespace": namespace, "role": role})

    async def revoke_token(self, request: Request) -> Response:
        """
        summary: Revoke one of the caller's API tokens.
        responses:
          200: {description: revoked}
          404: {description: the caller has no such token}
        """
        identity = self._person(request)
        token_id = request.path_params["token_id"]
        try:
            await asyncio.to_thread(self.authorizer.revoke_token, token_id, by=identity.email)
        except AuthzError as exc:
            raise NotFound("ApiToken", "", token_id) from exc
        return _json({"revoked": token_id})

    async def sign_out_everywhere(self, request: Request) -> Response:
        """
        summary: End every session and login token of the caller (API tokens stay).
        responses:
          200: {description: signed out}
        """
        identity = self._person(request)
        sign_out = getattr(request.app.state, SIGN_OUT_STATE, None)
        elsewhere = Invalid(
            f"{identity.email} did not sign in with this platform's own accounts; "
            "sign out at the provider you signed in with."
        )
        if sign_out is None:
            raise elsewhere
        try:
            await asyncio.to_thread(sign_out, identity.email)
        except UserError as exc:
            raise elsewhere from exc
        return _json({"signed_out": identity.email})


def access_routes(ctx: ApiContext) -> list[Route]:
    api = AccessApi(Control(ctx))
    contributors = "/v1/namespaces/{namespace}/contributors"
    return [
        Route(contributors, api.contributors, methods=["GET"]),
        Route(contributors, api.set_contributor, methods=["POST"]),
        Route(contributors + "/{email}", api.remove_contributor, methods=["DELETE"]),
        Route("/v1/tokens", api.tokens, methods=["GET"]),
        Route("/v1/tokens", api.create_token, methods=["POST"]),
        Route("/v1/tokens/{token_id}", api.revoke_token, methods=["DELETE"]),
        Route("/v1/sessions/sign-out-everywhere", api.sign_out_everywhere, methods=["POST"]),
    ]
