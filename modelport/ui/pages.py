"""The service list, a service's details (tabs) and its deletion."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import yaml
from starlette.requests import Request
from starlette.responses import Response

from modelport.ui import summary
from modelport.ui.apiclient import ApiClient
from modelport.ui.base import Ui, expect, list_page, service_path
from modelport.ui.render import see_other, segment

TABS = (
    ("overview", "Overview"),
    ("details", "Details"),
    ("try", "Try it"),
    ("canary", "Canary"),
    ("metrics", "Metrics"),
    ("logs", "Logs"),
    ("events", "Status & events"),
    ("yaml", "YAML"),
)
LOG_LINES = 200


async def namespaces_of(client: ApiClient) -> list[dict[str, Any]]:
    found = expect(await client.get("/v1/namespaces"))
    return list(found["items"])


async def runtime_docs(client: ApiClient, namespace: str | None) -> list[dict[str, Any]]:
    """Runtimes the caller can see: the namespace's own first (KServe prefers them)."""
    cluster = expect(await client.get("/v1/clusterservingruntimes"))["items"]
    if namespace is None:
        return list(cluster)
    own = await client.get(f"/v1/namespaces/{segment(namespace)}/servingruntimes")
    return [*(own.json()["items"] if own.ok else []), *cluster]


class ServicePages:
    def __init__(self, ui: Ui) -> None:
        self.ui = ui

    async def listing(self, request: Request) -> Response:
        """All namespaces at "/" and /ui/; one at /ui/ns/NS/services."""
        client = self.ui.client(request)
        namespace = request.path_params.get("namespace")
        path = "/v1/inferenceservices"
        if namespace is not None:
            path = f"/v1/namespaces/{segment(namespace)}/inferenceservices"
        services, namespaces, runtimes = await asyncio.gather(
            client.get(path), namespaces_of(client), runtime_docs(client, namespace)
        )
        items = expect(services)["items"]
        choice = summary.runtime_choice(runtimes)
        rows = sorted(
            (summary.row(doc, choice) for doc in items), key=lambda r: (r.namespace, r.name)
        )
        return self.ui.page(
            request,
            "list.html",
            title=f"Services in {namespace}" if namespace else "Services",
            namespace=namespace or "",
            namespaces=namespaces,
            rows=rows,
            flash=_flash(request),
        )

    async def pick(self, request: Request) -> Response:
        """The namespace picker's form: its choice as a link that can be bookmarked."""
        chosen = request.query_params.get("namespace", "")
        return see_other(list_page(chosen) if chosen else "/ui/")

    async def pick_graphs(self, request: Request) -> Response:
        chosen = request.query_params.get("namespace", "")
        return see_other(f"/ui/ns/{segment(chosen)}/graphs" if chosen else "/ui/graphs")

    async def details(self, request: Request) -> Response:
        namespace, name = request.path_params["namespace"], request.path_params["name"]
        tab = request.query_params.get("tab", "overview")
        if tab not in dict(TABS):
            tab = "overview"
        client = self.ui.client(request)
        doc = expect(await client.get(service_path(namespace, name)))
        _, model = summary.model_spec(summary.predictor(doc))
        context: dict[str, Any] = {
            "title": f"{name} in {namespace}",
            "namespace": namespace,
            "name": name,
            "tab": tab,
            "tabs": TABS,
            "doc": doc,
            "ready": summary.readiness(doc),
            "row": summary.row(doc, summary.runtime_choice(await runtime_docs(client, namespace))),
            "info": summary.details(doc),
            "conditions": summary.conditions(doc),
            "model": model,
            "internal_url": str((doc.get("status") or {}).get("address", {}).get("url", "")),
            "canary_percent": summary.predictor(doc).get("canaryTrafficPercent", 100),
            "flash": _flash(request),
        }
        if tab == "yaml":
            context["yaml_text"] = yaml.safe_dump(doc, sort_keys=False)
        if tab == "events":
            found = await client.get(f"{service_path(namespace, name)}/events")
            context["events"] = [_event_row(e) for e in expect(found)["items"]]
        if tab == "logs":
            component = request.query_params.get("component", "predictor")
            component = component if component in ("predictor", "transformer") else "predictor"
            logs = await client.get(
                f"{service_path(namespace, name)}/logs", component=component, tail=str(LOG_LINES)
            )
            context["component"] = component
            context["logs"] = logs.text() if logs.ok else logs.error()
        return self.ui.page(request, "details.html", **context)

    async def confirm_delete(self, request: Request) -> Response:
        namespace, name = request.path_params["namespace"], request.path_params["name"]
        expect(await self.ui.client(request).get(service_path(namespace, name)))
        return self.ui.page(
            request, "delete.html", title=f"Delete {name}?", namespace=namespace, name=name
        )

    async def delete(self, request: Request) -> Response:
        namespace, name = request.path_params["namespace"], request.path_params["name"]
        await self.ui.checked_form(request)
        expect(await self.ui.client(request).delete(service_path(namespace, name)))
        return see_other(f"{list_page(namespace)}?deleted={segment(name)}")


def _event_row(event: dict[str, Any]) -> dict[str, Any]:
    when = datetime.fromtimestamp(float(event["t"]), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {**event, "when": when}


def _flash(request: Request) -> str:
    """The sentence a redirect after a form asked for (shown escaped, like everything)."""
    query = request.query_params
    if "deleted" in query:
        return f"Deleted {query['deleted']}. Its replicas are stopping."
    if "applied" in query:
        return f"Applied: {query['applied']}."
    return ""
