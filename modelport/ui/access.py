"""The Access page: namespaces with their owners and contributors (Kubeflow's "Manage
Contributors"), the visitor's API tokens (a new one shown once), and signing out
everywhere. Every action is a control API call as the visitor (control/api_access.py)."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from modelport.ui.base import PageError, Ui, expect
from modelport.ui.pages import namespaces_of
from modelport.ui.render import see_other, segment

# The lifetimes offered for a new token, in seconds (0: it does not expire).
TTLS = (
    ("86400", "1 day"),
    ("2592000", "30 days"),
    ("7776000", "90 days"),
    ("31536000", "1 year"),
    ("0", "no expiry"),
)


def contributors_path(namespace: str) -> str:
    return f"/v1/namespaces/{segment(namespace)}/contributors"


class AccessPages:
    def __init__(self, ui: Ui) -> None:
        self.ui = ui

    async def overview(
        self, request: Request, new_token: dict[str, Any] | None = None, status: int = 200
    ) -> Response:
        client = self.ui.client(request)
        namespaces = await namespaces_of(client)
        tokens = expect(await client.get("/v1/tokens"))["items"]
        return self.ui.page(
            request,
            "access.html",
            status,
            title="Access",
            namespaces=namespaces,
            tokens=tokens,
            ttls=TTLS,
            new_token=new_token,
            flash=request.query_params.get("done", ""),
        )

    async def create_token(self, request: Request) -> Response:
        fields = await self.ui.checked_form(request)
        try:
            ttl = int(fields.get("ttl", "0"))
        except ValueError as exc:
            raise PageError(422, "Choose how long the token lives.") from exc
        body = {
            "namespace": fields.get("namespace", ""),
            "role": fields.get("role", ""),
            "ttl_seconds": ttl,
            "description": fields.get("description", "").strip(),
        }
        reply = await self.ui.client(request).request("POST", "/v1/tokens", body=orjson.dumps(body))
        created = expect(reply)
        # Shown in this answer only (not after a redirect): the platform keeps no copy.
        return await self.overview(request, new_token=created)

    async def revoke_token(self, request: Request) -> Response:
        await self.ui.checked_form(request)
        token_id = request.path_params["token_id"]
        expect(await self.ui.client(request).delete(f"/v1/tokens/{segment(token_id)}"))
        return see_other(f"/ui/access?done=Revoked+token+{segment(token_id)}.")

    async def sign_out_everywhere(self, request: Request) -> Response:
        await self.ui.checked_form(request)
        reply = await self.ui.client(request).request("POST", "/v1/sessions/sign-out-everywhere")
        expect(reply)
        return see_other("/")

    async def namespace(self, request: Request) -> Response:
        namespace = request.path_params["namespace"]
        client = self.ui.client(request)
        found = expect(await client.get(contributors_path(namespace)))
        mine = [n for n in await namespaces_of(client) if n["name"] == namespace]
        # Whether to offer the forms; the API decides whether they work.
        owner = found["owner"] == client.identity.email.lower()
        manages = bool(mine) and (owner or mine[0]["role"] == "admin")
        return self.ui.page(
            request,
            "contributors.html",
            title=f"Contributors of {namespace}",
            namespace=namespace,
            owner=found["owner"],
            contributors=found["items"],
            manages=manages,
            error=request.query_params.get("error", ""),
            flash=request.query_params.get("done", ""),
        )

    async def add_contributor(self, request: Request) -> Response:
        namespace = request.path_params["namespace"]
        fields = await self.ui.checked_form(request)
        email = fields.get("email", "").strip()
        body = {"email": email, "role": fields.get("role", "")}
        reply = await self.ui.client(request).request(
            "POST", contributors_path(namespace), body=orjson.dumps(body)
        )
        page = f"/ui/access/ns/{segment(namespace)}"
        if reply.status == 422:
            return see_other(f"{page}?error={segment(reply.error())}")
        expect(reply)
        done = f"{email.lower()} now has the {body['role']} role."
        return see_other(f"{page}?done={segment(done)}")

    async def remove_contributor(self, request: Request) -> Response:
        namespace, email = request.path_params["namespace"], request.path_params["email"]
        await self.ui.checked_form(request)
        path = f"{contributors_path(namespace)}/{segment(email)}"
        expect(await self.ui.client(request).delete(path))
        done = segment(f"Removed {email}.")
        return see_other(f"/ui/access/ns/{segment(namespace)}?done={done}")
