"""Forwarding an authenticated request to its upstream server (plain ASGI in, pooled
HTTP/1.1 connections out)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from typing import Any, Protocol
from urllib.parse import urlsplit

from modelport.gateway.connections import BadTarget, ConnectionPool, Response, UpstreamError
from modelport.gateway.sessions import COOKIE, STATE_COOKIE
from modelport.gateway.streaming import StreamedResponse, open_stream, relay_stream
from modelport.identity.clock import SYSTEM_CLOCK, Clock
from modelport.protocol.replica_key import REPLICA_KEY_HEADER

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]
# A streamed answer's status line and headers, at most (its body streams, unbounded).
MAX_STREAM_HEAD = 64 << 10

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
# Set by the gateway alone, through ``extra``. A client's copy must not reach the upstream
# beside the gateway's (a replica refuses two keys) or in its place.
GATEWAY_HEADERS = IDENTITY_HEADERS | {REPLICA_KEY_HEADER}
# The gateway has read the whole body before it forwards anything, so the client's
# expectation is met here (the ASGI server sent its 100 Continue when the body was read).
# Forwarded, it would make the upstream answer 100 first (RFC 9110 §10.1.1).
REQUEST_DROP = HOP_BY_HOP | GATEWAY_HEADERS | {b"expect"}
# The upstream's Content-Length stays valid: the body is relayed byte for byte. The replica's
# key stays between gateway and replica even if model code echoes it back.
RESPONSE_DROP = (HOP_BY_HOP - {b"content-length"}) | {REPLICA_KEY_HEADER}
# Cookies the gateway itself sets on this origin (the session, the pending logins' state
# cookies, one per login, named STATE_COOKIE + suffix). Model code shares the origin: were
# its Set-Cookie for these names relayed, it could plant a session of its choosing in a
# visitor's browser (session fixation) or break their login.
_OWN_COOKIE = COOKIE.lower().encode()
_OWN_COOKIE_PREFIX = STATE_COOKIE.lower().encode()


class Tap(Protocol):
    """Sees a proxied exchange's bodies (the payload logger)."""

    def request(self, body: bytes) -> None: ...

    def response(self, status: int, body: bytes) -> None: ...


# The client's receive channel, remembered by read_body for relay in the same request task:
# a streamed answer must learn that its client left (the router's relay(...) call, in
# control/routing.py, does not pass it).
_CLIENT_RECEIVE: ContextVar[Receive | None] = ContextVar("client_receive", default=None)
# Answers of these paths may be server-sent events (the OpenAI routes' ``stream: true``):
# they are relayed as they arrive, never read whole first.
STREAMED_PATH = b"/openai/"


class BodyTooLarge(Exception):
    """The request body is over the gateway's limit."""


class Upstream:
    """Forwards requests to an upstream base URL (or, per call, another ``http://`` base)
    over pooled keep-alive connections (see ``connections.py`` for why not aiohttp)."""

    def __init__(
        self,
        base_url: str,
        *,
        timeout_s: float = 300.0,
        max_body: int = 64 << 20,
        clock: Clock = SYSTEM_CLOCK,
    ):
        self.base_url = base_url.rstrip("/")
        self.max_body = max_body
        self._pool = ConnectionPool(timeout_s=timeout_s, clock=clock)
        self._addresses: dict[str, tuple[str, int, bytes]] = {}

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
        except BadTarget as exc:
            await _plain(send, 400, f'{{"error": "{exc}"}}')
            return
        except (OSError, UpstreamError) as exc:
            await _plain(send, 502, f'{{"error": "upstream unavailable: {type(exc).__name__}"}}')
            return
        await relay(response, send, tap)

    async def read_body(self, receive: Receive) -> bytes:
        """The whole request body; BodyTooLarge past this upstream's limit."""
        _CLIENT_RECEIVE.set(receive)
        return await _read_body(receive, self.max_body)

    async def open(
        self,
        scope: Scope,
        body: bytes,
        extra: list[tuple[bytes, bytes]],
        base_url: str | None = None,
    ) -> Response:
        """Send the request and read the whole response.

        Raises ConnectionRefusedError when the upstream refused the connection, before any
        byte was sent — the one failure that is always safe to retry elsewhere — and
        UpstreamError or another OSError for the rest.
        """
        host, port, host_header = self._address(base_url or self.base_url)
        data = _serialize(scope, body, extra, host_header)
        # HEAD answers announce a body they never send: only the pooled path knows that.
        path = scope.get("raw_path") or scope["path"].encode()
        if STREAMED_PATH in path and scope["method"] != "HEAD":
            return await open_stream(host, port, data, self._pool.timeout_s, MAX_STREAM_HEAD)
        return await self._pool.request(host, port, data, head=scope["method"] == "HEAD")

    def _address(self, base_url: str) -> tuple[str, int, bytes]:
        found = self._addresses.get(base_url)
        if found is None:
            url = urlsplit(base_url)
            if url.scheme != "http" or not url.hostname:
                raise UpstreamError(f"only http:// upstreams are supported, not {base_url}")
            port = url.port or 80
            found = (url.hostname, port, f"{url.hostname}:{port}".encode())
            if len(self._addresses) > 4096:
                self._addresses.clear()  # replicas come and go; keep this bounded
            self._addresses[base_url] = found
        return found

    async def close(self) -> None:
        """Close pooled connections."""
        self._pool.close()


def _serialize(scope: Scope, body: bytes, extra: list[tuple[bytes, bytes]], host: bytes) -> bytes:
    """The request as HTTP/1.1 bytes: the client's headers minus ``REQUEST_DROP``, plus
    ``extra``. Paths and headers from the ASGI server were parsed by it already
    (no CR/LF can be in them); ``extra`` values come from token claims and are cleaned."""
    target = scope.get("raw_path") or scope["path"].encode()
    query = scope.get("query_string")
    if query:
        target += b"?" + query
    if any(c in target for c in (b"\r", b"\n", b" ", b"\x00")):
        raise BadTarget("request target is not forwardable")
    parts = [scope["method"].encode(), b" ", target, b" HTTP/1.1\r\nhost: ", host, b"\r\n"]
    for name, value in scope["headers"]:
        if name in REQUEST_DROP:
            continue
        # CGI/WSGI servers upstream read kubeflow_userid as KUBEFLOW_USERID, the same as
        # kubeflow-userid: the underscore spelling of an identity header is as forged.
        if b"_" in name and name.replace(b"_", b"-") in GATEWAY_HEADERS:
            continue
        parts += (name, b": ", value, b"\r\n")
    for name, value in extra:
        parts += (name, b": ", value.translate(None, b"\r\n\x00"), b"\r\n")
    parts += (b"content-length: ", str(len(body)).encode(), b"\r\n\r\n", body)
    return b"".join(parts)


async def relay(
    response: Response,
    send: Send,
    tap: Tap | None = None,
    add: tuple[tuple[bytes, bytes], ...] = (),
) -> None:
    """Send an upstream response to the client, with ``add`` headers."""
    headers = [
        (k, v)
        for k, v in response.headers
        if k not in RESPONSE_DROP and (k != b"set-cookie" or not _sets_own_cookie(v))
    ]
    headers.extend(add)
    if isinstance(response, StreamedResponse):
        receive = _CLIENT_RECEIVE.get()
        await relay_stream(response, headers, send, receive, tap)
        return
    await send({"type": "http.response.start", "status": response.status, "headers": headers})
    await send({"type": "http.response.body", "body": response.body})
    if tap is not None:
        tap.response(response.status, response.body)


def _sets_own_cookie(set_cookie: bytes) -> bool:
    """Whether a Set-Cookie value names one of the gateway's own cookies.

    The name is what precedes the first "=" of the first ";"-part, whitespace trimmed
    (RFC 6265 §5.2). Without "=" browsers store a nameless cookie whose value is sent back
    bare, so that value is checked too. Compared case-insensitively: no reason to let a
    near-namesake through."""
    name = set_cookie.split(b";", 1)[0].split(b"=", 1)[0].strip(b" \t").lower()
    return name == _OWN_COOKIE or name.startswith(_OWN_COOKIE_PREFIX)


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
