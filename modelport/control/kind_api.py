"""The control API's routes for a kind stored beside InferenceServices (InferenceGraph,
TrainedModel): list, read and delete (they are applied with everything else through
``/v1/apply``), mounted with the others by control/api.py. Authorized like
InferenceServices: view to read, edit to delete, per namespace."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from modelport.access.authz import VIEW
from modelport.control.controller import Controller
from modelport.control.operations import ApiContext, Control, timestamp
from modelport.control.store import Resource

Status = Callable[[Resource, Controller, str, str], dict[str, Any]]
Endpoint = Callable[[Request], Awaitable[Response]]


@dataclass(frozen=True)
class StoredKind:
    """What the routes of one kind need to know of it."""

    kind: str  # InferenceGraph
    plural: str  # inferencegraphs
    api_version: str
    short: str  # the CLI's name: ig
    on_delete: str  # what deleting one does, for the API's description
    status: Status  # (row, controller, domain, gateway URL) -> status
    # Labels the kind's controller adds upstream, from the stored document.
    labels: Callable[[dict[str, Any]], dict[str, str]] | None = None


def render(ctx: ApiContext, kind: StoredKind, row: Resource) -> dict[str, Any]:
    """The stored document with server-set metadata and its status."""
    doc = dict(row.document)
    metadata = dict(doc.get("metadata") or {})
    metadata.update(
        name=row.name,
        namespace=row.namespace,
        generation=row.generation,
        creationTimestamp=timestamp(row.created_at),
    )
    if kind.labels is not None and (extra := kind.labels(doc)):
        metadata["labels"] = {**(metadata.get("labels") or {}), **extra}
    doc["metadata"] = metadata
    doc.setdefault("apiVersion", kind.api_version)
    doc.setdefault("kind", kind.kind)
    doc["status"] = kind.status(row, ctx.controller, ctx.domain, ctx.gateway_url())
    return doc


def kind_routes(ctx: ApiContext, kind: StoredKind) -> list[Route]:
    """GET /v1/PLURAL, GET /v1/namespaces/NS/PLURAL, GET and DELETE of one."""
    control = Control(ctx)
    name = kind.kind

    async def list_all(request: Request) -> Response:
        visible = control.visible(control.identity(request.scope))
        rows = await asyncio.to_thread(ctx.store.list, name)
        shown = [r for r in rows if visible is None or r.namespace in visible]
        return _json({"items": [render(ctx, kind, r) for r in shown]})

    async def list_ns(request: Request) -> Response:
        namespace = request.path_params["namespace"]
        control.require(control.identity(request.scope), namespace, VIEW)
        rows = await asyncio.to_thread(ctx.store.list, name, namespace)
        return _json({"items": [render(ctx, kind, r) for r in rows]})

    async def get(request: Request) -> Response:
        namespace, item = request.path_params["namespace"], request.path_params["name"]
        row = control.find(control.identity(request.scope), name, namespace, item, VIEW)
        return _json(render(ctx, kind, row))

    async def delete(request: Request) -> Response:
        namespace, item = request.path_params["namespace"], request.path_params["name"]
        await control.delete(control.identity(request.scope), name, namespace, item)
        return _json({"deleted": {"kind": name, "namespace": namespace, "name": item}})

    # The OpenAPI description (GET /api/openapi.json) is read from each endpoint's docstring.
    items = f'200: {{description: "items: {name} objects with status"}}'
    _describe(
        list_all, f"{name}s in every namespace the caller can read (get {kind.short} -A)", items
    )
    _describe(list_ns, f"{name}s in one namespace.", items,
              "403: {description: the caller has no role in the namespace}")  # fmt: skip
    _describe(get, f"One {name} with its status.", f"200: {{description: the {name} object}}",
              f"404: {{description: no such {name}}}")  # fmt: skip
    _describe(delete, f"Delete an {name}; {kind.on_delete}" if name[0] in "AEIOU"
              else f"Delete a {name}; {kind.on_delete}", "200: {description: deleted}",
              f"404: {{description: no such {name}}}")  # fmt: skip
    one = f"/v1/namespaces/{{namespace}}/{kind.plural}/{{name}}"
    return [
        Route(f"/v1/{kind.plural}", list_all, methods=["GET"]),
        Route(f"/v1/namespaces/{{namespace}}/{kind.plural}", list_ns, methods=["GET"]),
        Route(one, get, methods=["GET"]),
        Route(one, delete, methods=["DELETE"]),
    ]


def _describe(endpoint: Endpoint, summary: str, *responses: str) -> None:
    lines = "\n".join(f"  {r}" for r in responses)
    endpoint.__doc__ = f"summary: {summary}\nresponses:\n{lines}\n"


def _json(body: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(body), status, media_type="application/json")
