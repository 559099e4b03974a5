"""The OpenAI-compatible routes under ``/openai/v1`` (KServe's prefix and paths:
python/kserve/kserve/protocol/rest/openai/endpoints.py, ``register_openai_endpoints``).

Plain ASGI like the rest of the data plane. Errors are OpenAI-shaped
(``{"error": {"message", "type", "param", "code"}}``) with the matching status. A streamed
answer is server-sent events pulled from the model's generator one item at a time, as fast
as the client reads (``send`` waits while the socket is full), and stopped — the generator
closed, which ends generation — when the client goes away.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import orjson
from pydantic import BaseModel, ValidationError

from modelport.errors import ModelportError
from modelport.openai.errors import ErrorResponse, OpenAIError, error_body
from modelport.openai.model import (
    OpenAIEncoderModel,
    OpenAIGenerativeModel,
    OpenAIModel,
    RawRequest,
)
from modelport.openai.types import (
    ChatCompletionRequest,
    CompletionRequest,
    EmbeddingRequest,
    Model,
    ModelList,
    RerankRequest,
)
from modelport.server.dataplane import DataPlane
from modelport.server.errors_map import http_status, retry_after
from modelport.server.repository import Entry

log = logging.getLogger("modelport.server")

PREFIX = "/openai/v1"
Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]
# (model, protocol, status, seconds, path): RequestMetrics.observe's signature
Observe = Callable[[str, str, str, float, str], None]

# path -> (request type, base class that answers it, method name, API name in messages)
_POSTS: dict[str, tuple[type[BaseModel], type[OpenAIModel], str, str]] = {
    "/completions": (CompletionRequest, OpenAIGenerativeModel, "create_completion", "Completions"),
    "/chat/completions": (
        ChatCompletionRequest,
        OpenAIGenerativeModel,
        "create_chat_completion",
        "Chat Completion",
    ),
    "/embeddings": (EmbeddingRequest, OpenAIEncoderModel, "create_embedding", "Embeddings"),
    "/rerank": (RerankRequest, OpenAIEncoderModel, "create_rerank", "Rerank"),
}
_SSE_HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
    # Tells nginx-style proxies in front not to buffer the stream.
    (b"x-accel-buffering", b"no"),
]
DONE = b"data: [DONE]\n\n"


class Failure(Exception):
    """An answer with an OpenAI-shaped error."""

    def __init__(self, status: int, message: str, param: str = "", retry: int | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.param = param
        self.retry = retry


class ClientGone(Exception):
    """The client went away before its request was read."""


class OpenAIRoutes:
    """Answers every path under /openai/ for one worker's data plane."""

    def __init__(self, dataplane: DataPlane, max_body: int, observe: Observe | None = None) -> None:
        self.dp = dataplane
        self.max_body = max_body
        self.started = int(time.time())
        #: told of each answered request to a known model (the server's request metrics)
        self.observe = observe

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        start = time.perf_counter()
        status = 0

        async def tracked(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            model = await self._dispatch(scope, receive, tracked)
        except Exception:
            log.exception("unhandled error on %s", scope["path"])
            if not status:
                await _error(tracked, 500, "Internal server error.")
            model = None
        if model is not None and self.observe is not None:
            # 499 (nginx's "client closed request") when the client left before any answer.
            elapsed = time.perf_counter() - start
            self.observe(model, "openai", str(status or 499), elapsed, scope["path"])

    async def _dispatch(self, scope: Scope, receive: Receive, send: Send) -> str | None:
        """Answer the request; the name of the model it reached, if any (for metrics, which
        never take a name straight from a request: a label per made-up name is unbounded)."""
        method: str = scope["method"]
        reached: list[str] = []
        rest = scope["path"][len(PREFIX) :] if scope["path"].startswith(PREFIX) else None
        try:
            if rest is None:
                raise Failure(
                    404, f"No route {scope['path']}; the OpenAI routes are under {PREFIX}."
                )
            if rest == "/models" or rest.startswith("/models/"):
                if method != "GET":
                    raise Failure(405, "Method Not Allowed")
                await _json(send, 200, self._models(rest[len("/models/") :] or None))
            elif rest in _POSTS:
                if method != "POST":
                    raise Failure(405, "Method Not Allowed")
                await self._create(scope, receive, send, rest, reached)
            else:
                raise Failure(404, f"No route {scope['path']}.")
        except Failure as exc:
            await _error(send, exc.status, exc.message, exc.param, exc.retry)
        except ClientGone:
            pass
        return reached[0] if reached else None

    # ---- models ---------------------------------------------------------------------------

    def _models(self, model_id: str | None) -> BaseModel:
        if model_id is None:
            # As KServe's OpenAIDataPlane.models: the OpenAI models, here the ready ones.
            found = [
                Model(id=e.name, created=self.started)
                for e in self.dp.repository.entries()
                if isinstance(e.model, OpenAIModel) and e.model.ready
            ]
            return ModelList(data=found)
        entry = self._entry(model_id)
        return Model(id=entry.name, created=self.started)

    def _entry(self, name: str) -> Entry:
        """The ready OpenAI model ``name``; 404 unknown, 503 not ready."""
        try:
            entry = self.dp.repository.get(name)
        except ModelportError:
            entry = None
        if entry is None or (entry.model is not None and not isinstance(entry.model, OpenAIModel)):
            raise Failure(404, f"The model `{name}` does not exist.", "model")
        if entry.model is None or not entry.model.ready:
            raise Failure(503, f"Model {name} is not ready.", retry=1)
        return entry

    # ---- completions, chat, embeddings, rerank --------------------------------------------

    async def _create(
        self, scope: Scope, receive: Receive, send: Send, rest: str, reached: list[str]
    ) -> None:
        request_type, base, method_name, api = _POSTS[rest]
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        body = await _read_body(receive, headers, self.max_body)
        doc = _parse(body)
        name = doc.get("model")
        if not isinstance(name, str) or not name:
            raise Failure(400, "'model' is required and must be a string.", "model")
        entry = self._entry(name)
        reached.append(entry.name)
        model = entry.model
        if not isinstance(model, base):
            # KServe's OpenAIDataPlane: 400 "Model X does not support ... API".
            raise Failure(400, f"Model {name} does not support {api} API", "model")
        request = _validate(request_type, doc)
        if entry.inflight >= self.dp.max_inflight:
            raise Failure(503, f"Model {name} is at capacity; retry shortly.", retry=1)
        raw = RawRequest(scope["method"], scope["path"], headers, body)
        entry.inflight += 1
        try:
            method = getattr(model, method_name)
            call = method(request, raw_request=raw, context={"headers": headers})
            try:
                result = await _unless_gone(_call(call), receive)
            except NotImplementedError:
                # A model may serve only some of its class's APIs and raise for the others,
                # as KServe's examples do: KServe's OpenAIDataPlane answer for those.
                raise Failure(400, f"Model {name} does not support {api} API", "model") from None
            await _answer(result, receive, send)
        finally:
            entry.inflight -= 1


async def _unless_gone(awaitable: Awaitable[Any], receive: Receive) -> Any:
    """The result of ``awaitable``; cancelled (ClientGone) if the client leaves first, so a
    whole completion nobody waits for stops being generated."""
    call = asyncio.ensure_future(awaitable)
    gone = asyncio.ensure_future(_disconnected(receive))
    try:
        await asyncio.wait({call, gone}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        gone.cancel()
        if not call.done():
            call.cancel()
    try:
        return await call
    except asyncio.CancelledError:
        raise ClientGone from None


async def _call(awaitable: Awaitable[Any]) -> Any:
    try:
        return await awaitable
    except OpenAIError as exc:
        raise _failure_of(exc.response) from None
    except ModelportError as exc:
        raise Failure(http_status(exc), exc.reason, retry=retry_after(exc)) from None
    except (Failure, NotImplementedError):
        raise
    except Exception as exc:
        log.exception("OpenAI model raised")
        raise Failure(500, f"The model failed: {type(exc).__name__}: {exc}") from None


def _failure_of(response: ErrorResponse) -> Failure:
    return Failure(response.status, response.error.message, response.error.param or "")


async def _answer(result: Any, receive: Receive, send: Send) -> None:
    if isinstance(result, ErrorResponse):
        raise _failure_of(result)
    if inspect.isasyncgen(result) or isinstance(result, AsyncIterator):
        await stream(result, receive, send)
    elif isinstance(result, BaseModel):
        await _json(send, 200, result)
    elif isinstance(result, dict):
        if isinstance(result.get("error"), dict) and len(result) == 1:
            status = str(result["error"].get("code", ""))
            code = int(status) if status.isdigit() and 400 <= int(status) <= 599 else 500
            raise Failure(code, str(result["error"].get("message", "")))
        await _json(send, 200, result)
    else:
        log.error("an OpenAI model returned %s", type(result).__name__)
        raise Failure(500, f"The model returned a {type(result).__name__}, not a response.")


async def stream(items: AsyncIterator[Any], receive: Receive, send: Send) -> None:
    """Send ``items`` as server-sent events until they end or the client disconnects."""
    await send({"type": "http.response.start", "status": 200, "headers": _SSE_HEADERS})
    pump = asyncio.ensure_future(_pump(items, send))
    gone = asyncio.ensure_future(_disconnected(receive))
    try:
        await asyncio.wait({pump, gone}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        gone.cancel()
        if not pump.done():
            pump.cancel()  # the client left: stop pulling, which stops generation
        try:
            await pump
        except (asyncio.CancelledError, OSError):
            pass
        finally:
            close = getattr(items, "aclose", None)
            if close is not None:
                try:
                    await close()
                except Exception:  # the model's own clean-up failed; the answer is sent
                    log.exception("closing an OpenAI stream failed")


async def _pump(items: AsyncIterator[Any], send: Send) -> None:
    finished = False
    try:
        async for item in items:
            data = _sse(item)
            if data:
                finished = finished or data.rstrip().endswith(b"[DONE]")
                await send({"type": "http.response.body", "body": data, "more_body": True})
    except OpenAIError as exc:
        await _send_event(send, exc.response.model_dump())
    except ModelportError as exc:
        await _send_event(send, orjson.loads(error_body(http_status(exc), exc.reason)))
    except Exception as exc:
        log.exception("an OpenAI stream failed")
        failure = error_body(500, f"The model failed: {type(exc).__name__}: {exc}")
        await _send_event(send, orjson.loads(failure))
    # OpenAI ends every stream with [DONE]; a model's generator may leave it out.
    tail = b"" if finished else DONE
    await send({"type": "http.response.body", "body": tail, "more_body": False})


async def _send_event(send: Send, doc: Any) -> None:
    await send(
        {
            "type": "http.response.body",
            "body": b"data: " + orjson.dumps(doc) + b"\n\n",
            "more_body": True,
        }
    )


def _sse(item: Any) -> bytes:
    """One generator item as SSE bytes: lines pass as they are; objects become ``data:``."""
    if isinstance(item, bytes):
        return item
    if isinstance(item, str):
        return item.encode()
    if isinstance(item, BaseModel):
        return b"data: " + item.model_dump_json(exclude_none=True).encode() + b"\n\n"
    return b"data: " + orjson.dumps(item) + b"\n\n"


async def _disconnected(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


async def _read_body(receive: Receive, headers: dict[str, str], limit: int) -> bytes:
    declared = headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise Failure(413, f"Request body larger than {limit} bytes.")
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientGone
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise Failure(413, f"Request body larger than {limit} bytes.")
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def _parse(body: bytes) -> dict[str, Any]:
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise Failure(400, f"The body is not valid JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise Failure(400, "The body must be a JSON object.")
    return doc


def _validate(request_type: type[BaseModel], doc: dict[str, Any]) -> Any:
    try:
        return request_type.model_validate(doc)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        where = ".".join(str(p) for p in first["loc"])
        raise Failure(400, f"Invalid '{where}': {first['msg']}.", where) from None


async def _json(send: Send, status: int, doc: BaseModel | dict[str, Any]) -> None:
    if isinstance(doc, BaseModel):
        body = doc.model_dump_json(exclude_none=True).encode()
    else:
        try:
            body = orjson.dumps(doc, option=orjson.OPT_SERIALIZE_NUMPY)
        except TypeError as exc:
            raise Failure(500, f"The model's answer is not JSON: {exc}") from None
    await _raw(send, status, body, [])


async def _error(
    send: Send, status: int, message: str, param: str = "", retry: int | None = None
) -> None:
    extra = [(b"retry-after", str(retry).encode())] if retry is not None else []
    await _raw(send, status, error_body(status, message, param), extra)


async def _raw(send: Send, status: int, body: bytes, extra: list[tuple[bytes, bytes]]) -> None:
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        *extra,
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
