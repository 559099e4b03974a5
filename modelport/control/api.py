"""The control API under ``/api``: apply, list, read, delete InferenceServices and
ServingRuntimes, read replica logs. The gateway authenticates every request and puts the
caller's identity in the ASGI scope; each handler checks the caller's role in the namespace
it touches. Every route is described in ``GET /api/openapi.json``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.schemas import SchemaGenerator

from modelport.access.authz import VIEW
from modelport.access.caller import Identity
from modelport.control.api_access import access_routes
from modelport.control.api_live import live_routes
from modelport.control.backends.process import tail
from modelport.control.graph_api import graph_routes
from modelport.control.operations import (
    ApiContext,
    Control,
    ControlError,
    Forbidden,
    Invalid,
    NotFound,
    Unauthenticated,
    parse,
)
from modelport.control.serving_runtimes import BUILTIN_RUNTIMES
from modelport.control.spec import Problem
from modelport.control.status import replicas
from modelport.control.store import CLUSTER_RUNTIME, ISVC, RUNTIME, Resource
from modelport.control.trained_model_api import trained_model_routes

__all__ = ["ApiContext", "ApiError", "create_api"]

log = logging.getLogger("modelport.api")

MAX_APPLY_BYTES = 1 << 20
MAX_LOG_LINES = 10000
# Statuses rendered per turn of the event loop in a list (~5 ms).
RENDER_SLICE = 100

schemas = SchemaGenerator(
    {"openapi": "3.0.3", "info": {"title": "modelport control API", "version": "v1"}}
)


class ApiError(Exception):
    def __init__(self, status: int, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.body = {"error": message, **extra}


# The control plane's errors as this API has always answered them.
_STATUS = {Unauthenticated: 401, Forbidden: 403, NotFound: 404, Invalid: 422}


def create_api(ctx: ApiContext) -> Starlette:
    """The ASGI app; mount it at ``/api`` behind the gateway."""
    api = _Api(ctx)
    routes = [
        Route("/v1/apply", api.apply, methods=["POST"]),
        Route("/v1/namespaces", api.namespaces, methods=["GET"]),
        Route("/v1/inferenceservices", api.list_all, methods=["GET"]),
        Route("/v1/namespaces/{namespace}/inferenceservices", api.list_ns, methods=["GET"]),
        Route(
            "/v1/namespaces/{namespace}/inferenceservices/{name}",
            api.get_isvc,
            methods=["GET"],
        ),
        Route(
            "/v1/namespaces/{namespace}/inferenceservices/{name}",
            api.delete_isvc,
            methods=["DELETE"],
        ),
        Route(
            "/v1/namespaces/{namespace}/inferenceservices/{name}/logs",
            api.logs,
            methods=["GET"],
        ),
        Route("/v1/namespaces/{namespace}/servingruntimes", api.list_runtimes, methods=["GET"]),
        Route(
            "/v1/namespaces/{namespace}/servingruntimes/{name}",
            api.delete_runtime,
            methods=["DELETE"],
        ),
        Route("/v1/clusterservingruntimes", api.list_cluster_runtimes, methods=["GET"]),
        Route(
            "/v1/clusterservingruntimes/{name}",
            api.delete_cluster_runtime,
            methods=["DELETE"],
        ),
        Route("/openapi.json", api.openapi, methods=["GET"], include_in_schema=False),
        *graph_routes(ctx),
        *trained_model_routes(ctx),
        *access_routes(ctx),
        *live_routes(ctx),
    ]
    app = Starlette(
        routes=routes,
        exception_handlers={
            ApiError: _api_error,
            ControlError: _control_error,
            Exception: _internal_error,
        },
    )
    api.routes = routes
    return app


async def _api_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return _json(exc.body, exc.status)


async def _control_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ControlError)
    status = next((code for cls, code in _STATUS.items() if isinstance(exc, cls)), 400)
    if isinstance(exc, Invalid) and exc.problems:
        return _json({"error": str(exc), "problems": _problems(exc.problems)}, status)
    return _json({"error": str(exc)}, status)


async def _internal_error(_request: Request, exc: Exception) -> Response:
    log.error("control API error: %s: %s", type(exc).__name__, exc)
    return _json({"error": "Internal error in the control API; see the platform's log."}, 500)


async def render_in_slices(
    rows: Sequence[Resource], render: Callable[[Resource], dict[str, Any]]
) -> list[dict[str, Any]]:
    """Render rows a slice at a time, giving the event loop back between slices: statuses
    are read from the controller's in-memory picture, so they are built on the loop, and
    2,000 of them take ~100 ms the gateway in the same loop must not spend waiting."""
    items: list[dict[str, Any]] = []
    for start in range(0, len(rows), RENDER_SLICE):
        if start:
            await asyncio.sleep(0)
        items.extend(render(row) for row in rows[start : start + RENDER_SLICE])
    return items


def _json(body: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(body), status, media_type="application/json")


class _Api:
    def __init__(self, ctx: ApiContext) -> None:
        self.ctx = ctx
        self.control = Control(ctx)
        self.routes: list[Route] = []

    def _identity(self, request: Request) -> Identity:
        return self.control.identity(request.scope)

    # ---- apply --------------------------------------------------------------------------

    async def apply(self, request: Request) -> Response:
        """
        summary: Create or update InferenceServices and ServingRuntimes.
        description: >
          The body is a YAML or JSON document stream, as for kubectl apply. All documents
          are validated before any is stored; a namespace that does not exist yet is created
          with the caller as owner (people, if the platform allows it; never API tokens or
          service accounts). Query parameter namespace is the default namespace.
        responses:
          200: {description: "results: kind, namespace, name, action, ignored fields"}
          403: {description: the caller may not edit a namespace named in the documents}
          422: {description: "validation failed: error, problems[{path, message}]"}
        """
        identity = self._identity(request)
        body = await _bounded_body(request, MAX_APPLY_BYTES)
        default_ns = request.query_params.get("namespace") or "default"
        if identity.token_namespace is not None and "namespace" not in request.query_params:
            default_ns = identity.token_namespace
        # Parsing a 1 MiB stream takes a while: not on the event loop.
        objects = await asyncio.to_thread(parse, body, default_ns)
        applied = await self.control.apply(identity, objects)
        results = [
            {
                "kind": r.kind,
                "namespace": r.namespace,
                "name": r.name,
                "action": r.action,
                "ignored": r.ignored,
            }
            for r in applied
        ]
        return _json({"results": results})

    # ---- read ---------------------------------------------------------------------------

    async def namespaces(self, request: Request) -> Response:
        """
        summary: Namespaces the caller can read, with the caller's role in each.
        responses:
          200: {description: "items: [{name, owner, role}]"}
        """
        identity = self._identity(request)
        seen = await asyncio.to_thread(self.control.namespaces, identity)
        items = [{"name": name, "owner": owner, "role": role} for name, owner, role, _ in seen]
        return _json({"items": items})

    async def list_all(self, request: Request) -> Response:
        """
        summary: InferenceServices in every namespace the caller can read (get -A).
        responses:
          200: {description: "items: InferenceService objects with status"}
        """
        visible = self.control.visible(self._identity(request))
        rows = await asyncio.to_thread(self.ctx.store.list, ISVC)
        shown = [r for r in rows if visible is None or r.namespace in visible]
        return _json({"items": await render_in_slices(shown, self._isvc)})

    async def list_ns(self, request: Request) -> Response:
        """
        summary: InferenceServices in one namespace.
        responses:
          200: {description: "items: InferenceService objects with status"}
          403: {description: the caller has no role in the namespace}
        """
        namespace = request.path_params["namespace"]
        self.control.require(self._identity(request), namespace, VIEW)
        rows = await asyncio.to_thread(self.ctx.store.list, ISVC, namespace)
        return _json({"items": await render_in_slices(rows, self._isvc)})

    async def get_isvc(self, request: Request) -> Response:
        """
        summary: One InferenceService with its status.
        responses:
          200: {description: the InferenceService object}
          404: {description: no such InferenceService}
        """
        row = self._find(request, VIEW)
        return _json(self._isvc(row))

    async def delete_isvc(self, request: Request) -> Response:
        """
        summary: Delete an InferenceService; its replicas are stopped.
        responses:
          200: {description: deleted}
          404: {description: no such InferenceService}
        """
        namespace, name = request.path_params["namespace"], request.path_params["name"]
        await self.control.delete(self._identity(request), ISVC, namespace, name)
        return _json({"deleted": {"kind": ISVC, "namespace": namespace, "name": name}})

    async def logs(self, request: Request) -> Response:
        """
        summary: The last lines of the service's replica logs (current revisions).
        parameters:
          - name: component
            in: query
            schema: {type: string, enum: [predictor, transformer, explainer]}
          - {name: tail, in: query, schema: {type: integer, default: 100}}
        responses:
          200: {description: plain text}
        """
        row = self._find(request, VIEW)
        component = request.query_params.get("component", "predictor")
        if component not in ("predictor", "transformer", "explainer"):
            raise ApiError(400, "component must be predictor, transformer or explainer.")
        try:
            count = max(1, min(int(request.query_params.get("tail", "100")), MAX_LOG_LINES))
        except ValueError as exc:
            raise ApiError(400, "tail must be an integer.") from exc
        svc = self.ctx.controller.lookup(row.namespace, row.name)
        base = self.ctx.controller.config.data_dir / "logs" / row.namespace / row.name
        # Files are NAME-COMPONENT-REVISION-SLOT.log; show the revisions that take traffic.
        pattern = f"{row.name}-{component}-*.log"
        files = sorted(base.glob(pattern)) if base.is_dir() else []
        if svc is not None and svc.traffic:
            current = {f"-{component}-{n:05d}-" for n, _ in svc.traffic}
            chosen = [f for f in files if any(c in f.name for c in current)]
            files = chosen or files
        out = []
        for f in files:
            out.append(f"==> {f.stem} <==")
            out.extend(tail(f, count))
        return PlainTextResponse("\n".join(out) + ("\n" if out else ""))

    def _find(self, request: Request, needed: str) -> Resource:
        namespace, name = request.path_params["namespace"], request.path_params["name"]
        return self.control.find(self._identity(request), ISVC, namespace, name, needed)

    def _isvc(self, row: Resource) -> dict[str, Any]:
        doc = self.control.render_isvc(row)
        doc["status"]["replicas"] = replicas(self.ctx.controller.lookup(row.namespace, row.name))
        return doc

    # ---- runtimes -----------------------------------------------------------------------

    async def list_runtimes(self, request: Request) -> Response:
        """
        summary: ServingRuntimes applied in a namespace.
        responses:
          200: {description: "items: ServingRuntime documents"}
        """
        namespace = request.path_params["namespace"]
        self.control.require(self._identity(request), namespace, VIEW)
        rows = await asyncio.to_thread(self.ctx.store.list, RUNTIME, namespace)
        return _json({"items": [r.document for r in rows]})

    async def list_cluster_runtimes(self, request: Request) -> Response:
        """
        summary: ClusterServingRuntimes, the built-in ones included.
        responses:
          200: {description: "items: ClusterServingRuntime documents"}
        """
        self._identity(request)
        rows = await asyncio.to_thread(self.ctx.store.list, CLUSTER_RUNTIME)
        items = [r.document for r in rows] + [rt.document for rt in BUILTIN_RUNTIMES]
        return _json({"items": items})

    async def delete_runtime(self, request: Request) -> Response:
        """
        summary: Delete a ServingRuntime from a namespace.
        responses:
          200: {description: deleted}
          404: {description: no such ServingRuntime}
        """
        namespace, name = request.path_params["namespace"], request.path_params["name"]
        await self.control.delete(self._identity(request), RUNTIME, namespace, name)
        return _json({"deleted": {"kind": RUNTIME, "namespace": namespace, "name": name}})

    async def delete_cluster_runtime(self, request: Request) -> Response:
        """
        summary: Delete a ClusterServingRuntime (admins only).
        responses:
          200: {description: deleted}
          403: {description: not an admin}
          404: {description: no such ClusterServingRuntime}
        """
        name = request.path_params["name"]
        await self.control.delete(self._identity(request), CLUSTER_RUNTIME, "", name)
        return _json({"deleted": {"kind": CLUSTER_RUNTIME, "name": name}})

    async def openapi(self, request: Request) -> Response:
        schema = schemas.get_schema(list[BaseRoute](self.routes))
        schema["servers"] = [{"url": "/api"}]
        # Status codes are int keys once the docstrings' YAML is read; JSON wants strings.
        return Response(
            orjson.dumps(schema, option=orjson.OPT_NON_STR_KEYS), media_type="application/json"
        )


def _problems(problems: list[Problem]) -> list[dict[str, str]]:
    return [{"path": p.path, "message": p.message} for p in problems]


async def _bounded_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise ApiError(413, f"Request body exceeds the limit of {limit} bytes.")
    chunks = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise ApiError(413, f"Request body exceeds the limit of {limit} bytes.")
        chunks.append(chunk)
    return b"".join(chunks)
