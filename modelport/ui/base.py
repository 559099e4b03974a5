"""What every page handler shares: the caller's API client, the renderer, the CSRF guard,
and the pages for refusals."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import Response

from modelport.access.caller import Identity
from modelport.gateway.app import IDENTITY_KEY
from modelport.ui.apiclient import ApiClient, ApiReply
from modelport.ui.csrf import FIELD, CsrfGuard
from modelport.ui.render import Renderer, segment

# The largest form body read (the YAML form's text is the only large field).
MAX_FORM_BYTES = 2 << 20
# Sentences for statuses whose API answer a person may not make sense of on its own.
_TITLES = {
    400: "That request could not be read",
    401: "Please sign in again",
    403: "You may not do that here",
    404: "Not found",
    413: "That is too large",
    422: "That is not valid",
}


class PageError(Exception):
    """Stops a handler with an error page."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass
class Ui:
    api_app: Any
    renderer: Renderer
    csrf: CsrfGuard

    def client(self, request: Request) -> ApiClient:
        identity = request.scope.get(IDENTITY_KEY)
        if not isinstance(identity, Identity):
            raise PageError(401, "Sign in to use modelport.")
        return ApiClient(self.api_app, identity)

    def page(self, request: Request, template: str, status: int = 200, **context: Any) -> Response:
        identity = request.scope.get(IDENTITY_KEY)
        context.setdefault("me", identity.email if isinstance(identity, Identity) else "")
        context.setdefault("csrf_field", FIELD)
        context.setdefault("csrf", self.csrf.token(request))
        return self.renderer.page(request, template, status, **context)

    def error_page(self, request: Request, status: int, message: str) -> Response:
        title = _TITLES.get(status, "Something went wrong")
        return self.page(
            request, "error.html", status, title=title, message=message, status_code=status
        )

    async def checked_form(self, request: Request) -> dict[str, str]:
        """The posted form's fields, once its CSRF token and origin are right. The UI's
        forms are url-encoded; the body is read up to MAX_FORM_BYTES only."""
        kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if kind != "application/x-www-form-urlencoded":
            raise PageError(415, "This page takes the form it shows, and nothing else.")
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_FORM_BYTES:
                raise PageError(413, "That form is more than 2 MiB; nothing was done.")
        try:
            pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, max_num_fields=64)
        except (UnicodeDecodeError, ValueError) as exc:
            raise PageError(400, "That form could not be read.") from exc
        fields = dict(pairs)
        refusal = self.csrf.refusal(request, fields.get(FIELD))
        if refusal is not None:
            raise PageError(403, refusal)
        return fields


def expect(reply: ApiReply) -> Any:
    """The reply's JSON, or the error page its status calls for."""
    if not reply.ok:
        raise PageError(reply.status, reply.error())
    return reply.json()


def service_path(namespace: str, name: str) -> str:
    return f"/v1/namespaces/{segment(namespace)}/inferenceservices/{segment(name)}"


def service_page(namespace: str, name: str) -> str:
    return f"/ui/ns/{segment(namespace)}/services/{segment(name)}"


def list_page(namespace: str) -> str:
    return f"/ui/ns/{segment(namespace)}/services"
