"""InferenceGraph pages: the list (per namespace, or all), one graph with a drawing of its
nodes and steps and its YAML, and its deletion; through the control API's graph routes."""

from __future__ import annotations

import asyncio

import yaml
from starlette.requests import Request
from starlette.responses import Response

from modelport.ui import summary
from modelport.ui.base import Ui, expect
from modelport.ui.graph_drawing import draw
from modelport.ui.pages import namespaces_of
from modelport.ui.render import see_other, segment


def graph_path(namespace: str, name: str) -> str:
    return f"/v1/namespaces/{segment(namespace)}/inferencegraphs/{segment(name)}"


def graphs_page(namespace: str) -> str:
    return f"/ui/ns/{segment(namespace)}/graphs"


class GraphPages:
    def __init__(self, ui: Ui) -> None:
        self.ui = ui

    async def listing(self, request: Request) -> Response:
        client = self.ui.client(request)
        namespace = request.path_params.get("namespace")
        path = "/v1/inferencegraphs"
        if namespace is not None:
            path = f"/v1/namespaces/{segment(namespace)}/inferencegraphs"
        found, namespaces = await asyncio.gather(client.get(path), namespaces_of(client))
        rows = []
        for doc in expect(found)["items"]:
            meta = doc.get("metadata") or {}
            nodes = (doc.get("spec") or {}).get("nodes") or {}
            created = str(meta.get("creationTimestamp", ""))
            rows.append(
                {
                    "namespace": str(meta.get("namespace", "")),
                    "name": str(meta.get("name", "")),
                    "ready": summary.readiness(doc),
                    "nodes": len(nodes),
                    "root": str((nodes.get("root") or {}).get("routerType", "")),
                    "url": str((doc.get("status") or {}).get("url", "")),
                    "created": created,
                    "age": summary.age(created),
                }
            )
        rows.sort(key=lambda r: (r["namespace"], r["name"]))
        deleted = request.query_params.get("deleted", "")
        return self.ui.page(
            request,
            "graphs.html",
            title=f"InferenceGraphs in {namespace}" if namespace else "InferenceGraphs",
            namespace=namespace or "",
            namespaces=namespaces,
            rows=rows,
            flash=f"Deleted {deleted}." if deleted else "",
        )

    async def details(self, request: Request) -> Response:
        namespace, name = request.path_params["namespace"], request.path_params["name"]
        doc = expect(await self.ui.client(request).get(graph_path(namespace, name)))
        status = doc.get("status") or {}
        return self.ui.page(
            request,
            "graph.html",
            title=f"{name} in {namespace}",
            namespace=namespace,
            name=name,
            ready=summary.readiness(doc),
            url=str(status.get("url", "")),
            internal_url=str((status.get("address") or {}).get("url", "")),
            drawing=draw(doc.get("spec") or {}),
            yaml_text=yaml.safe_dump(doc, sort_keys=False),
        )

    async def confirm_delete(self, request: Request) -> Response:
        namespace, name = request.path_params["namespace"], request.path_params["name"]
        expect(await self.ui.client(request).get(graph_path(namespace, name)))
        return self.ui.page(
            request,
            "delete.html",
            title=f"Delete {name}?",
            namespace=namespace,
            name=name,
            kind="InferenceGraph",
            action=f"/ui/ns/{segment(namespace)}/graphs/{segment(name)}/delete",
            back=f"/ui/ns/{segment(namespace)}/graphs/{segment(name)}",
        )

    async def delete(self, request: Request) -> Response:
        namespace, name = request.path_params["namespace"], request.path_params["name"]
        await self.ui.checked_form(request)
        expect(await self.ui.client(request).delete(graph_path(namespace, name)))
        return see_other(f"{graphs_page(namespace)}?deleted={segment(name)}")
