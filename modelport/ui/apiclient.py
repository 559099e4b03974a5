"""The control API called in process with the visitor's own identity.

The UI never reads the store: every page asks the same ASGI app that serves ``/api``, with
the identity the gateway authenticated, so one implementation decides who may see and do
what (``control/api.py`` and ``control/operations.py``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, unquote, urlencode

import orjson

from modelport.access.caller import Identity
from modelport.gateway.app import IDENTITY_KEY

Message = dict[str, Any]


@dataclass(frozen=True)
class ApiReply:
    """What the API answered: its status and body."""

    status: int
    body: bytes

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    def json(self) -> Any:
        return orjson.loads(self.body) if self.body else None

    def text(self) -> str:
        return self.body.decode("utf-8", "replace")

    def error(self) -> str:
        """The API's own sentence for a refusal, or one made from the status."""
        try:
            found = self.json()
        except orjson.JSONDecodeError:
            found = None
        if isinstance(found, dict) and isinstance(found.get("error"), str):
            return str(found["error"])
        return f"The control API answered HTTP {self.status}."


def segment(value: str) -> str:
    """One path segment, quoted so a name can never add a segment of its own."""
    return quote(value, safe="")


class ApiClient:
    """Requests to the control API app as one caller."""

    def __init__(self, app: Any, identity: Identity) -> None:
        self.app = app
        self.identity = identity

    async def get(self, path: str, **query: str) -> ApiReply:
        return await self.request("GET", path, query=query)

    async def delete(self, path: str) -> ApiReply:
        return await self.request("DELETE", path)

    async def apply(self, body: bytes, namespace: str | None = None) -> ApiReply:
        query = {"namespace": namespace} if namespace else {}
        return await self.request(
            "POST", "/v1/apply", query=query, body=body, content_type=b"application/yaml"
        )

    async def request(
        self,
        method: str,
        path: str,
        *,
        query: dict[str, str] | None = None,
        body: bytes = b"",
        content_type: bytes = b"application/json",
    ) -> ApiReply:
        scope: Message = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": method,
            "scheme": "http",
            # ASGI's path is decoded; raw_path is as sent (segments quoted by segment()).
            "path": unquote(path),
            "raw_path": path.encode(),
            "root_path": "",
            "query_string": urlencode(query or {}).encode(),
            "headers": [
                (b"accept", b"application/json"),
                (b"content-type", content_type),
                (b"content-length", str(len(body)).encode()),
            ],
            "client": ("127.0.0.1", 0),
            "server": ("127.0.0.1", 80),
            IDENTITY_KEY: self.identity,
        }
        sent = False
        status = 500
        chunks: list[bytes] = []

        async def receive() -> Message:
            nonlocal sent
            if sent:
                return {"type": "http.disconnect"}
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        async def send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))

        await self.app(scope, receive, send)
        return ApiReply(status, b"".join(chunks))
