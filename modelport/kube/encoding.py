"""Bodies in and out of the Kubernetes-style API: JSON request bodies within a size limit
(kubectl and client libraries send JSON; YAML stays with ``/api/v1/apply``, whose loader
bounds alias expansion), JSON responses, and ``Warning`` headers (RFC 7234 warn-code 299,
which kubectl prints as ``Warning: ...``, as kube-apiserver does for unknown fields)."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from modelport.kube.errors import KubeError, bad_request, too_large, unsupported_media_type

MAX_BODY_BYTES = 1 << 20
MAX_WARNINGS = 20
JSON = "application/json"


async def read_body(request: Request, limit: int = MAX_BODY_BYTES) -> bytes:
    """The request body, refused with 413 once it passes ``limit`` bytes."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise too_large(limit)
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_large(limit)
        chunks.append(chunk)
    return b"".join(chunks)


def media_type(request: Request) -> str:
    return request.headers.get("content-type", JSON).split(";")[0].strip().lower()


def decode(data: bytes) -> Any:
    """A JSON body as plain data; 400 when it is not JSON."""
    if not data.strip():
        raise bad_request("the request body is empty")
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise bad_request(f"the body is not valid JSON: {exc}") from None


async def read_object(request: Request) -> dict[str, Any]:
    """A create or update body: one object."""
    content_type = media_type(request)
    if content_type not in (JSON, "*/*", ""):
        raise unsupported_media_type(content_type, [JSON])
    body = decode(await read_body(request))
    if not isinstance(body, dict):
        raise bad_request("the body must be a JSON object")
    return body


def respond(body: Any, status: int = 200, warnings: list[str] | None = None) -> Response:
    response = Response(orjson.dumps(body), status, media_type=JSON)
    for text in (warnings or [])[:MAX_WARNINGS]:
        value = '299 - "' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
        response.raw_headers.append((b"warning", value.encode("utf-8", "replace")))
    return response


def error_response(exc: KubeError) -> Response:
    return respond(exc.body(), exc.code)
