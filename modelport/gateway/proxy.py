"""Forwarding an authenticated request to its upstream server (plain ASGI, aiohttp client)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import aiohttp
from multidict import CIMultiDict
from yarl import URL

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

# Never forwarded: hop-by-hop headers (RFC 9110 §7.6.1), and identity headers a client might
# try to supply itself — the gateway alone sets those.
HOP_BY_HOP = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-authenticate",
        b"proxy-authorization",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
        b"host",
        b"content-length",
    }
)
IDENTITY_HEADERS = frozenset({b"kubeflow-userid", b"kubeflow-groups"})
# The upstream's Content-Length stays valid: the body is relayed byte for byte.
RESPONSE_DROP = HOP_BY_HOP - {b"content-length"}


class Tap(Protocol):
    """Sees a proxied exchange's bodies (the payload logger)."""

    def request(self, body: bytes) -> None: ...

    def response(self, status: int, body: bytes) -> None: ...


class BodyTooLarge(Exception):
    """The request body is over the gateway's limit."""


class Upstream:
    """One upstream base URL and a pooled HTTP client to it.

    aiohttp rather than httpx here: with tens of pooled keep-alive connections httpcore
    checks every connection on every request, which cost ~1.5 ms of CPU per proxied request
    in bench/gateway.py's profile; aiohttp's pool does not.
    """

    def __init__(self, base_url: str, *, timeout_s: float = 300.0, max_body: int = 64 << 20):
        self.base_url = base_url.rstrip("/")
        self.max_body = max_body
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        # Made on first use, inside the server's event loop.
        if self._session is None:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=512, limit_per_host=512),
                timeout=self._timeout,
                auto_decompress=False,
                skip_auto_headers=("User-Agent", "Accept-Encoding", "Accept", "Content-Type"),
            )
        return self._session

    async def forward(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        extra: list[tuple[bytes, bytes]],
        base_url: str | None = None,
        tap: Tap | None = None,
    ) -> None:
        """Send the request upstream (to ``base_url`` if given, else this upstream's) with
        ``extra`` headers; relay the answer. ``tap`` sees both bodies (payload logging)."""
        body = await self.read_body(receive)
        if tap is not None:
            tap.request(body)
        try:
            response = await self.open(scope, body, extra, base_url)
        except (aiohttp.ClientError, TimeoutError) as exc:
            await _plain(send, 502, f'{{"error": "upstream unavailable: {type(exc).__name__}"}}')
            return
        await relay(response, send, tap)

    async def read_body(self, receive: Receive) -> bytes:
        """The whole request body; BodyTooLarge past this upstream's limit."""
        return await _read_body(receive, self.max_body)

    async def open(
        self,
        scope: Scope,
        body: bytes,
        extra: list[tuple[bytes, bytes]],
        base_url: str | None = None,
    ) -> aiohttp.ClientResponse:
        """Send the request; the response's headers have arrived when this returns.

        Raises aiohttp.ClientConnectorError when the upstream refused the connection, before
        any byte was sent — the one failure that is always safe to retry elsewhere.
        """
        headers = CIMultiDict(
            (k.decode("latin-1"), v.decode("latin-1"))
            for k, v in scope["headers"]
            if k not in HOP_BY_HOP and k not in IDENTITY_HEADERS
        )
        for k, v in extra:
            headers.add(k.decode("latin-1"), v.decode("latin-1"))
        raw_path = scope.get("raw_path") or scope["path"].encode()
        query = scope.get("query_string", b"")
        target = (base_url or self.base_url) + raw_path.decode("latin-1")
        if query:
            target += "?" + query.decode("latin-1")
        return await self._client().request(
            scope["method"],
            URL(target, encoded=True),
            headers=headers,
            data=body,
            allow_redirects=False,
        )

    async def close(self) -> None:
        """Close pooled connections."""
        if self._session is not None:
            await self._session.close()


async def relay(response: aiohttp.ClientResponse, send: Send, tap: Tap | None = None) -> None:
    """Stream an upstream response to the client, then release its connection."""
    try:
        out = [(k.lower(), v) for k, v in response.raw_headers if k.lower() not in RESPONSE_DROP]
        await send({"type": "http.response.start", "status": response.status, "headers": out})
        kept: list[bytes] | None = [] if tap is not None else None
        async for chunk in response.content.iter_any():
            if kept is not None:
                kept.append(chunk)
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b""})
        if tap is not None and kept is not None:
            tap.response(response.status, b"".join(kept))
    finally:
        response.release()


async def _read_body(receive: Receive, limit: int) -> bytes:
    chunks = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


async def _plain(send: Send, status: int, body: str) -> None:
    data = body.encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(data)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": data})
