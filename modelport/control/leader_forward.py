"""On a standby instance, the control plane's requests go to the leader.

Only the leader's controller knows the replicas (in memory), their logs (files in its data
directory) and their metrics, so the control API (/api), the Kubernetes-style API (/k8s, also
on its https listener), the web UI (/, /_ui, /ui) and ``modelport logs`` answer truthfully
only there. A standby authenticates the request as usual, then relays it, unchanged, to the
leader's own listener (published in ``platform_instances``, ``leadership.py``): the same
method, path, query, Host and credentials, so the leader authenticates and authorizes the
caller itself, exactly as if it had been reached directly. The answer streams back as it
comes (watch streams, server-sent events), piece by piece.

A write goes once: each forwarded request gets a connection of its own and is never sent
again (a pooled connection may be retried when a peer closed it, which suits idempotent
inference, not an apply).

The marker header says "a standby sent this here". It grants nothing: the receiving
instance strips it before anything else sees the request, and only uses it to refuse to
forward a second time (two instances that each think the other leads would pass a request
back and forth). Its value is derived from the gateway's client secret, which only the
instances sharing the database know, so a client cannot make an instance skip forwarding.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import orjson
from sqlalchemy.engine import Engine

from modelport.control.leadership import leader_address
from modelport.gateway.connections import UpstreamError
from modelport.gateway.proxy import (
    HOP_BY_HOP,
    RESPONSE_DROP,
    Receive,
    Scope,
    Send,
    Upstream,
    relay,
)
from modelport.gateway.streaming import open_stream, relay_stream

log = logging.getLogger("modelport.controller.leadership")

MARKER = b"x-modelport-leader-forward"
# The leader's address is looked up again after this long (a takeover moves it).
LOOKUP_TTL_S = 1.0
# Until the leader's response headers arrive (an apply writes to the database first).
HEADERS_TIMEOUT_S = 60.0
# Between two pieces of a streamed answer: watch streams and the UI's event streams send
# a heartbeat or end well within this.
STREAM_IDLE_S = 330.0
MAX_RESPONSE_HEADER = 64 << 10
# Never sent on: the connection's own headers, the marker (set again below) and the
# identity headers the gateway alone sets.
REQUEST_DROP = (HOP_BY_HOP - {b"host"}) | {
    b"expect",
    MARKER,
    b"kubeflow-userid",
    b"kubeflow-groups",
}
NO_LEADER = (
    "No instance leads the platform right now (a takeover takes a few seconds); try again shortly."
)
NO_LONGER_LEADING = (
    "The instance this request was forwarded to no longer leads the platform; try again."
)
# Path characters sent as they are (RFC 3986 pchar and "/"); the rest is percent-encoded.
PATH_SAFE = "/:@!$&'()*+,;=-._~"

ASGIApp = Callable[[Scope, Receive, Send], Any]


def marker_value(secret: str) -> bytes:
    return (
        hmac.new(secret.encode(), b"modelport leader forward", hashlib.sha256).hexdigest().encode()
    )


class LeaderLocator:
    """Where the current leader listens, read from the database at most once a second."""

    def __init__(
        self,
        engine: Engine,
        own_holder: str,
        *,
        ttl_s: float = LOOKUP_TTL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.engine = engine
        self.own_holder = own_holder
        self.ttl_s = ttl_s
        self.clock = clock
        self._found: tuple[str, str] | None = None
        self._read_at = float("-inf")

    async def find(self) -> tuple[str, str] | None:
        """(holder, host:port) of the leader; None while nobody leads (or it is unknown)."""
        if self.clock() - self._read_at < self.ttl_s:
            return self._found
        try:
            found = await asyncio.to_thread(leader_address, self.engine)
        except Exception as exc:  # the database is away for a moment: no leader known
            log.warning("looking up the leader failed: %s", type(exc).__name__)
            found = None
        self._found, self._read_at = found, self.clock()
        return found

    def forget(self) -> None:
        """Look again on the next request (the leader did not answer)."""
        self._read_at = float("-inf")

    def is_self(self, found: tuple[str, str]) -> bool:
        return found[0] == self.own_holder


class LeaderForward:
    """Wraps the control plane's applications so that a standby relays them to the leader."""

    def __init__(
        self,
        leading: Callable[[], bool],
        locator: LeaderLocator,
        secret: str,
        upstream: Upstream,
    ) -> None:
        self.leading = leading
        self.locator = locator
        self.marker = marker_value(secret)
        self.upstream = upstream

    def wrap(self, app: ASGIApp, prefix: str, local: frozenset[str] = frozenset()) -> ASGIApp:
        """``app`` as mounted at ``prefix`` ("" for an app that sees whole paths); the paths
        in ``local`` (as the app sees them) say something of this instance itself and are
        always answered here."""

        async def forwarding(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] != "http":
                await app(scope, receive, send)
                return
            genuine, clean = self._inspect(scope)
            if self.leading() or scope["path"] in local:
                await app(clean, receive, send)
            elif genuine:
                await _answer(send, 503, NO_LONGER_LEADING)
            else:
                await self._to_leader(app, clean, prefix, receive, send)

        return forwarding

    def _inspect(self, scope: Scope) -> tuple[bool, Scope]:
        """Whether another instance sent this (a valid marker), and the scope without any
        marker: neither the application nor a replica ever sees one."""
        headers: list[tuple[bytes, bytes]] = scope["headers"]
        marks = [v for k, v in headers if k == MARKER]
        if not marks:
            return False, scope
        genuine = len(marks) == 1 and hmac.compare_digest(marks[0], self.marker)
        kept = [(k, v) for k, v in headers if k != MARKER]
        return genuine, {**scope, "headers": kept}

    async def _to_leader(
        self, app: ASGIApp, scope: Scope, prefix: str, receive: Receive, send: Send
    ) -> None:
        found = await self.locator.find()
        if found is None:
            await _answer(send, 503, NO_LEADER)
            return
        if self.locator.is_self(found):  # the lease is ours; the elector is about to say so
            await app(scope, receive, send)
            return
        body = await self.upstream.read_body(receive)
        if scope["method"] == "HEAD":
            # A HEAD answer announces a body it never sends: only the pooled client knows
            # that, and a HEAD changes nothing, so its one retry is harmless.
            await self._head(scope, prefix, body, found[1], send)
            return
        host, port = _split(found[1])
        data = self._request(scope, prefix, body, found[1])
        try:
            response = await asyncio.wait_for(
                open_stream(host, port, data, STREAM_IDLE_S, MAX_RESPONSE_HEADER),
                HEADERS_TIMEOUT_S,
            )
        except (OSError, TimeoutError, UpstreamError) as exc:
            self.locator.forget()
            log.warning("forwarding to the leader at %s failed: %s", found[1], type(exc).__name__)
            if isinstance(exc, ConnectionRefusedError):  # nothing was sent: safe to repeat
                await _answer(send, 503, _unanswered(exc))
            else:
                await _answer(send, 502, _lost(exc), retry=False)
            return
        headers = [(k, v) for k, v in response.headers if k not in RESPONSE_DROP]
        await relay_stream(response, headers, send, receive, None)

    async def _head(self, scope: Scope, prefix: str, body: bytes, address: str, send: Send) -> None:
        whole = {**scope, "raw_path": quote(prefix + scope["path"], safe=PATH_SAFE).encode()}
        try:
            response = await self.upstream.open(
                whole, body, [(MARKER, self.marker)], f"http://{address}"
            )
        except (OSError, UpstreamError) as exc:
            self.locator.forget()
            await _answer(send, 503, _unanswered(exc))
            return
        await relay(response, send)

    def _request(self, scope: Scope, prefix: str, body: bytes, address: str) -> bytes:
        """The request as the client sent it to this instance, as HTTP/1.1 bytes."""
        target = quote(prefix + scope["path"], safe=PATH_SAFE).encode()
        query: bytes = scope.get("query_string") or b""
        if query:
            target += b"?" + query.translate(None, b"\r\n \x00")
        headers = _as_a_proxy(scope, address)
        parts = [scope["method"].encode(), b" ", target, b" HTTP/1.1\r\n"]
        for name, value in headers:
            if name in REQUEST_DROP or (b"_" in name and name.replace(b"_", b"-") in REQUEST_DROP):
                continue
            parts += (name, b": ", value, b"\r\n")
        parts += (MARKER, b": ", self.marker, b"\r\nconnection: close\r\n")
        parts += (b"content-length: ", str(len(body)).encode(), b"\r\n\r\n", body)
        return b"".join(parts)


def _as_a_proxy(scope: Scope, address: str) -> list[tuple[bytes, bytes]]:
    """The client's headers, plus what a proxy adds (RFC 7239's de facto forms): the peer it
    heard from appended to X-Forwarded-For (the leader heeds it only from its trusted
    proxies, as it would from the load balancer), and the scheme the client used unless a
    proxy in front said it already (the web UI's CSRF check compares the Origin with it)."""
    headers: list[tuple[bytes, bytes]] = list(scope["headers"])
    if not any(k == b"host" for k, _ in headers):
        headers.insert(0, (b"host", address.encode()))
    client = scope.get("client")
    if client:
        chain = b", ".join(v for k, v in headers if k == b"x-forwarded-for")
        peer = str(client[0]).encode()
        headers = [(k, v) for k, v in headers if k != b"x-forwarded-for"]
        headers.append((b"x-forwarded-for", chain + b", " + peer if chain else peer))
    if not any(k == b"x-forwarded-proto" for k, _ in headers):
        headers.append((b"x-forwarded-proto", str(scope.get("scheme", "http")).encode()))
    return headers


def _unanswered(exc: BaseException) -> str:
    return f"The leading instance did not answer ({type(exc).__name__}); try again."


def _lost(exc: BaseException) -> str:
    return (
        f"The leading instance failed while answering ({type(exc).__name__}): the request "
        "may or may not have been carried out; check before sending it again."
    )


def _split(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    return host.strip("[]"), int(port)


async def _answer(send: Send, status: int, message: str, *, retry: bool = True) -> None:
    body = orjson.dumps({"error": message})
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
    if retry:
        headers.append((b"retry-after", b"2"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
