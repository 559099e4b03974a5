"""The control API's TrainedModel routes (mounted with the others by control/api.py): list,
read and delete; TrainedModels are applied with everything else through ``/v1/apply``.
Authorized like InferenceServices: view to read, edit to apply or delete, per namespace."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from modelport.access.authz import VIEW
from modelport.control.operations import ApiContext, Control, timestamp
from modelport.control.spec.trained_model import TM, TM_API_VERSION
from modelport.control.store import Resource
from modelport.control.trained_model_status import trained_model_status

ITEM = "/v1/namespaces/{namespace}/trainedmodels/{name}"


def trained_model_routes(ctx: ApiContext) -> list[Route]:
    api = _TrainedModelApi(ctx)
    return [
        Route("/v1/trainedmodels", api.list_all, methods=["GET"]),
        Route("/v1/namespaces/{namespace}/trainedmodels", api.list_ns, methods=["GET"]),
        Route(ITEM, api.get, methods=["GET"]),
        Route(ITEM, api.delete, methods=["DELETE"]),
    ]


def render_trained_model(ctx: ApiContext, row: Resource) -> dict[str, Any]:
    """The stored document with server-set metadata and its status."""
    doc = dict(row.document)
    metadata = dict(doc.get("metadata") or {})
    metadata.update(
        name=row.name,
        namespace=row.namespace,
        generation=row.generation,
        creationTimestamp=timestamp(row.created_at),
    )
    parent = (doc.get("spec") or {}).get("inferenceService")
    if isinstance(parent, str):
        # The label KServe's controller adds (constants.ParentInferenceServiceLabel).
        metadata["labels"] = {**(metadata.get("labels") or {}), "inferenceservice": parent}
    doc["metadata"] = metadata
    doc.setdefault("apiVersion", TM_API_VERSION)
    doc.setdefault("kind", TM)
    doc["status"] = trained_model_status(row, ctx.controller, ctx.domain, ctx.gateway_url())
    return doc


class _TrainedModelApi:
    def __init__(self, ctx: ApiContext) -> None:
        self.ctx = ctx
        self.control = Control(ctx)

    async def list_all(self, request: Request) -> Response:
        """
        summary: TrainedModels in every namespace the caller can read (get tm -A).
        responses:
          200: {description: "items: TrainedModel objects with status"}
        """
        visible = self.control.visible(self.control.identity(request.scope))
        rows = await asyncio.to_thread(self.ctx.store.list, TM)
        shown = [r for r in rows if visible is None or r.namespace in visible]
        return _json({"items": [render_trained_model(self.ctx, r) for r in shown]})

    async def list_ns(self, request: Request) -> Response:
        """
        summary: TrainedModels in one namespace.
        responses:
          200: {description: "items: TrainedModel objects with status"}
          403: {description: the caller has no role in the namespace}
        """
        namespace = request.path_params["namespace"]
        self.control.require(self.control.identity(request.scope), namespace, VIEW)
        rows = await asyncio.to_thread(self.ctx.store.list, TM, namespace)
        return _json({"items": [render_trained_model(self.ctx, r) for r in rows]})

    async def get(self, request: Request) -> Response:
        """
        summary: One TrainedModel with its status.
        responses:
          200: {description: the TrainedModel object}
          404: {description: no such TrainedModel}
        """
        namespace, name = request.path_params["namespace"], request.path_params["name"]
        identity = self.control.identity(request.scope)
        row = self.control.find(identity, TM, namespace, name, VIEW)
        return _json(render_trained_model(self.ctx, row))

    async def delete(self, request: Request) -> Response:
        """
        summary: Delete a TrainedModel; it is unloaded from its parent's replicas.
        responses:
          200: {description: deleted}
          404: {description: no such TrainedModel}
        """
        namespace, name = request.path_params["namespace"], request.path_params["name"]
        await self.control.delete(self.control.identity(request.scope), TM, namespace, name)
        return _json({"deleted": {"kind": TM, "namespace": namespace, "name": name}})


def _json(body: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(body), status, media_type="application/json")
