"""REST transport: a plain ASGI app for KServe V1 and OIP V2, decoding into the data plane.

Kept free of per-request framework machinery (no dependency injection, no pydantic): the
route table below lists every path, each handler gets the path parameters and the body.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Awaitable, Callable
from typing import Any

import orjson

from modelport.errors import InvalidInput, ModelportError, PayloadTooLarge
from modelport.model import InferenceVerb
from modelport.protocol import v1, v2
from modelport.protocol.replica_key import key_matches
from modelport.server.dataplane import DataPlane
from modelport.server.errors_map import http_status, retry_after
from modelport.server.metrics import RequestMetrics, render
from modelport.server.openai_routes import OpenAIRoutes

log = logging.getLogger("modelport.server")

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]
RawHeaders = list[tuple[bytes, bytes]]


class Reply:
    """A response: status, body bytes and extra headers."""

    __slots__ = ("status", "body", "headers")

    def __init__(self, status: int, body: bytes, headers: RawHeaders | None = None) -> None:
        self.status = status
        self.body = body
        self.headers = headers or [(b"content-type", b"application/json")]


def json_reply(doc: Any, status: int = 200) -> Reply:
    """A JSON response."""
    return Reply(status, orjson.dumps(doc))


class Request:
    """What a handler needs from the ASGI scope, read lazily."""

    __slots__ = ("scope", "receive", "params", "_headers", "max_body")

    def __init__(self, scope: Scope, receive: Receive, params: dict[str, str], max_body: int):
        self.scope = scope
        self.receive = receive
        self.params = params
        self.max_body = max_body
        self._headers: dict[str, str] | None = None

    @property
    def headers(self) -> dict[str, str]:
        if self._headers is None:
            self._headers = {
                k.decode("latin-1"): v.decode("latin-1") for k, v in self.scope["headers"]
            }
        return self._headers

    async def body(self) -> bytes:
        declared = self.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_body:
            raise PayloadTooLarge(self.max_body)
        chunks = []
        size = 0
        while True:
            message = await self.receive()
            if message["type"] == "http.disconnect":
                raise ClientGone
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body:
                raise PayloadTooLarge(self.max_body)
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)


class ClientGone(Exception):
    """The client disconnected before its body arrived; nothing to answer."""


Handler = Callable[[Request], Awaitable[Reply]]


class RestApp:
    """The ASGI application of one worker."""

    def __init__(
        self,
        dataplane: DataPlane,
        *,
        max_body_bytes: int = 64 * 1024 * 1024,
        replica_key: bytes | None = None,
    ) -> None:
        self.dp = dataplane
        self.max_body = max_body_bytes
        self.replica_key = replica_key
        self.metrics = RequestMetrics()
        # Everything under /openai/ (completions, chat, embeddings, rerank; streamed or not).
        self.openai = OpenAIRoutes(dataplane, max_body_bytes, self.metrics.observe)
        # The route table: every path of the V1 and V2 protocols, the infer route first.
        model = r"(?P<name>[^/]+)"
        version = r"(?:/versions/(?P<version>[^/]+))?"
        # Inference routes carry the protocol label their metrics are recorded under.
        self.routes: list[tuple[str, re.Pattern[str], Handler, str | None]] = [
            ("POST", re.compile(rf"/v2/models/{model}{version}/infer"), self.infer, "v2"),
            ("POST", re.compile(rf"/v1/models/{model}:predict"), self.predict_v1, "v1"),
            ("POST", re.compile(rf"/v1/models/{model}:explain"), self.explain_v1, "v1"),
            ("GET", re.compile(r"/v2/health/live"), self.live, None),
            ("GET", re.compile(r"/v2/health/ready"), self.ready, None),
            ("GET", re.compile(r"/v2"), self.server_metadata, None),
            ("GET", re.compile(rf"/v2/models/{model}{version}"), self.model_metadata, None),
            ("GET", re.compile(rf"/v2/models/{model}{version}/ready"), self.model_ready, None),
            ("POST", re.compile(r"/v2/repository/index"), self.repository_index, None),
            (
                "POST",
                re.compile(rf"/v2/repository/models/{model}/load"),
                self.repository_load,
                None,
            ),
            (
                "POST",
                re.compile(rf"/v2/repository/models/{model}/unload"),
                self.repository_unload,
                None,
            ),
            ("GET", re.compile(r"/v1/models"), self.list_v1, None),
            ("GET", re.compile(rf"/v1/models/{model}"), self.model_v1, None),
            ("GET", re.compile(r"/metrics"), self.metrics_endpoint, None),
            ("GET", re.compile(r"/"), self.root, None),
        ]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "lifespan":
            await _lifespan(receive, send)
            return
        if kind != "http":
            return
        start = time.perf_counter()
        method = scope["method"]
        path = scope["path"]
        handler, params, allowed, protocol = self._route(method, path)
        if self.replica_key is not None and not key_matches(scope["headers"], self.replica_key):
            protocol = None
            reply = _error_reply(403, "This model server answers only through the platform.")
        elif path.startswith("/openai/"):
            await self.openai(scope, receive, send)
            return
        elif handler is None:
            reply = (
                _error_reply(405, "Method Not Allowed")
                if allowed
                else _error_reply(404, "Not Found")
            )
        else:
            request = Request(scope, receive, params, self.max_body)
            try:
                reply = await handler(request)
            except ModelportError as exc:
                reply = _error_reply(http_status(exc), exc.reason, retry_after(exc))
            except ClientGone:
                return
            except Exception:
                log.exception("unhandled error on %s", path)
                reply = _error_reply(500, "Internal server error.")
        await send(
            {
                "type": "http.response.start",
                "status": reply.status,
                "headers": [*reply.headers, (b"content-length", str(len(reply.body)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": reply.body})
        if protocol is not None:
            self.metrics.observe(
                params["name"], protocol, str(reply.status), time.perf_counter() - start, path
            )

    def _route(
        self, method: str, path: str
    ) -> tuple[Handler | None, dict[str, str], bool, str | None]:
        allowed = False
        for verb, pattern, handler, protocol in self.routes:
            match = pattern.fullmatch(path)
            if match is None:
                continue
            if verb != method:
                allowed = True
                continue
            params = {k: v for k, v in match.groupdict().items() if v is not None}
            return handler, params, False, protocol
        return None, {}, allowed, None

    # ---- V2 ------------------------------------------------------------------------------

    async def infer(self, req: Request) -> Reply:
        body = await req.body()
        header_len = req.headers.get(v2.HEADER_LENGTH)
        length = None
        if header_len is not None:
            if not header_len.isdigit():
                raise InvalidInput(
                    "Inference-Header-Content-Length must be a non-negative integer."
                )
            length = int(header_len)
        request = v2.decode_request(body, req.params["name"], req.params.get("version"), length)
        model_headers: dict[str, str] = {}
        response = await self.dp.infer(request, req.headers, model_headers)
        binary_default = bool(request.parameters.get("binary_data_output", False))
        out, json_len = v2.encode_response(response, request.request_outputs, binary_default)
        if json_len is None:
            return Reply(200, out, _json_headers(model_headers))
        return Reply(
            200,
            out,
            [
                (b"content-type", b"application/octet-stream"),
                (b"inference-header-content-length", str(json_len).encode()),
                *_model_headers(model_headers),
            ],
        )

    async def live(self, req: Request) -> Reply:
        return json_reply({"live": self.dp.live()})

    async def ready(self, req: Request) -> Reply:
        ok = self.dp.ready()
        return json_reply({"ready": ok}, 200 if ok else 503)

    async def server_metadata(self, req: Request) -> Reply:
        return json_reply(self.dp.server_metadata())

    async def model_metadata(self, req: Request) -> Reply:
        return json_reply(self.dp.model_metadata(req.params["name"], req.params.get("version")))

    async def model_ready(self, req: Request) -> Reply:
        name = req.params["name"]
        ok = self.dp.model_ready(name, req.params.get("version"))
        return json_reply({"name": name, "ready": ok}, 200 if ok else 503)

    async def repository_index(self, req: Request) -> Reply:
        body = await req.body()
        if body.strip():
            v2.loads_object(body)  # the spec allows {"ready": bool}; reject garbage
        return json_reply(self.dp.index())

    async def repository_load(self, req: Request) -> Reply:
        name = req.params["name"]
        self.dp.load(name, path=_load_path(await req.body()))
        return json_reply({"name": name, "load": True})

    async def repository_unload(self, req: Request) -> Reply:
        name = req.params["name"]
        self.dp.unload(name)
        return json_reply({"name": name, "unload": True})

    # ---- V1 ------------------------------------------------------------------------------

    async def predict_v1(self, req: Request) -> Reply:
        body = v1.decode_request(await req.body())
        model_headers: dict[str, str] = {}
        result = await self.dp.predict_v1(
            req.params["name"], body, req.headers, InferenceVerb.PREDICT, model_headers
        )
        return Reply(200, v1.encode_response(result), _json_headers(model_headers))

    async def explain_v1(self, req: Request) -> Reply:
        body = v1.decode_request(await req.body())
        result = await self.dp.predict_v1(
            req.params["name"], body, req.headers, InferenceVerb.EXPLAIN
        )
        return Reply(200, v1.encode_response(result))

    async def list_v1(self, req: Request) -> Reply:
        return json_reply({"models": [e.name for e in self.dp.repository.entries()]})

    async def model_v1(self, req: Request) -> Reply:
        name = req.params["name"]
        ok = self.dp.model_ready(name)
        return json_reply({"name": name, "ready": ok}, 200 if ok else 503)

    # ---- other ---------------------------------------------------------------------------

    async def metrics_endpoint(self, req: Request) -> Reply:
        text, content_type = render()
        return Reply(200, text, [(b"content-type", content_type.encode())])

    async def root(self, req: Request) -> Reply:
        return json_reply({"status": "alive"})


# The server frames the response; model code adds to it, never redefines it.
_FRAMING = frozenset({"content-type", "content-length", "transfer-encoding", "connection"})


def _load_path(body: bytes) -> str | None:
    """The optional load request body of the repository extension, ``{"parameters": {...}}``
    (Triton's $repository_load_request): ``path`` names a model file or folder to load under
    the model's name (what the platform's TrainedModels use)."""
    if not body.strip():
        return None
    params = v2.loads_object(body).get("parameters") or {}
    if not isinstance(params, dict):
        raise InvalidInput("parameters must be a JSON object.")
    path = params.get("path")
    if path is None:
        return None
    if not isinstance(path, str) or not path.startswith("/") or "\x00" in path:
        raise InvalidInput("parameters.path must be an absolute path.")
    return path


def _json_headers(found: dict[str, str]) -> RawHeaders | None:
    """A JSON reply's headers with the model's; None (the default) when it set none."""
    return [(b"content-type", b"application/json"), *_model_headers(found)] if found else None


def _model_headers(found: dict[str, str]) -> RawHeaders:
    """Headers a model set (KServe's return_response_headers), those that are safe to send:
    no framing header, no CR, LF or NUL (header injection), latin-1 only."""
    out: RawHeaders = []
    for name, value in found.items():
        text = f"{name}{value}"
        if str(name).lower() in _FRAMING or any(c in text for c in "\r\n\x00"):
            continue
        try:
            out.append((str(name).lower().encode("latin-1"), str(value).encode("latin-1")))
        except UnicodeEncodeError:
            continue
    return out


def _error_reply(status: int, reason: str, retry: int | None = None) -> Reply:
    headers: RawHeaders = [(b"content-type", b"application/json")]
    if retry is not None:
        headers.append((b"retry-after", str(retry).encode()))
    return Reply(status, orjson.dumps({"error": reason}), headers)


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
