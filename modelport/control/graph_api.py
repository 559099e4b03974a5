"""The control API's InferenceGraph routes (mounted with the others by control/api.py):
list, read and delete; graphs are applied with everything else through ``/v1/apply``.
Authorized like InferenceServices: view to read, edit to delete, per namespace."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from modelport.access.authz import VIEW
from modelport.control.graphs import graph_status
from modelport.control.operations import ApiContext, Control, timestamp
from modelport.control.spec.inference_graph import IG, IG_API_VERSION
from modelport.control.store import Resource

ITEM = "/v1/namespaces/{namespace}/inferencegraphs/{name}"


def graph_routes(ctx: ApiContext) -> list[Route]:
    api = _GraphApi(ctx)
    return [
        Route("/v1/inferencegraphs", api.list_all, methods=["GET"]),
        Route("/v1/namespaces/{namespace}/inferencegraphs", api.list_ns, methods=["GET"]),
        Route(ITEM, api.get, methods=["GET"]),
        Route(ITEM, api.delete, methods=["DELETE"]),
    ]


def render_graph(ctx: ApiContext, row: Resource) -> dict[str, Any]:
    """The stored document with server-set metadata and its status."""
    doc = dict(row.document)
    metadata = dict(doc.get("metadata") or {})
    metadata.update(
        name=row.name,
        namespace=row.namespace,
        generation=row.generation,
        creationTimestamp=timestamp(row.created_at),
    )
    doc["metadata"] = metadata
    doc.setdefault("apiVersion", IG_API_VERSION)
    doc.setdefault("kind", IG)
    doc["status"] = graph_status(row, ctx.controller, ctx.domain, ctx.gateway_url())
    return doc


class _GraphApi:
    def __init__(self, ctx: ApiContext) -> None:
        self.ctx = ctx
        self.control = Control(ctx)

    async def list_all(self, request: Request) -> Response:
        """
        summary: InferenceGraphs in every namespace the caller can read (get ig -A).
        responses:
          200: {description: "items: InferenceGraph objects with status"}
        """
        visible = self.control.visible(self.control.identity(request.scope))
        rows = await asyncio.to_thread(self.ctx.store.list, IG)
        shown = [r for r in rows if visible is None or r.namespace in visible]
        return _json({"items": [render_graph(self.ctx, r) for r in shown]})

    async def list_ns(self, request: Request) -> Response:
        """
        summary: InferenceGraphs in one namespace.
        responses:
          200: {description: "items: InferenceGraph objects with status"}
          403: {description: the caller has no role in the namespace}
        """
        namespace = request.path_params["namespace"]
        self.control.require(self.control.identity(request.scope), namespace, VIEW)
        rows = await asyncio.to_thread(self.ctx.store.list, IG, namespace)
        return _json({"items": [render_graph(self.ctx, r) for r in rows]})

    async def get(self, request: Request) -> Response:
        """
        summary: One InferenceGraph with its status.
        responses:
          200: {description: the InferenceGraph object}
          404: {description: no such InferenceGraph}
        """
        namespace, name = request.path_params["namespace"], request.path_params["name"]
        identity = self.control.identity(request.scope)
        row = self.control.find(identity, IG, namespace, name, VIEW)
        return _json(render_graph(self.ctx, row))

    async def delete(self, request: Request) -> Response:
        """
        summary: Delete an InferenceGraph; requests to it stop at once.
        responses:
          200: {description: deleted}
          404: {description: no such InferenceGraph}
        """
        namespace, name = request.path_params["namespace"], request.path_params["name"]
        await self.control.delete(self.control.identity(request.scope), IG, namespace, name)
        return _json({"deleted": {"kind": IG, "namespace": namespace, "name": name}})


def _json(body: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(body), status, media_type="application/json")
