"""The control API's InferenceGraph routes: list, read and delete (control/kind_api.py);
graphs are applied with everything else through ``/v1/apply``."""

from __future__ import annotations

from typing import Any

from starlette.routing import Route

from modelport.control.graphs import graph_status
from modelport.control.kind_api import StoredKind, kind_routes, render
from modelport.control.operations import ApiContext
from modelport.control.spec.inference_graph import IG, IG_API_VERSION
from modelport.control.store import Resource

GRAPHS = StoredKind(
    kind=IG,
    plural="inferencegraphs",
    api_version=IG_API_VERSION,
    short="ig",
    on_delete="requests to it stop at once.",
    status=graph_status,
)


def graph_routes(ctx: ApiContext) -> list[Route]:
    return kind_routes(ctx, GRAPHS)


def render_graph(ctx: ApiContext, row: Resource) -> dict[str, Any]:
    """The stored document with server-set metadata and its status."""
    return render(ctx, GRAPHS, row)
