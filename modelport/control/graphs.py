"""InferenceGraphs on the platform: the catalog of applied graphs the gateway's graph router
reads on every request, the site it reaches services through (their paths, the gateway's
authorization check), the gateway admission that lets a graph's callers in, and the status
``get ig`` shows.

The catalog is in memory: a lookup is a dict read. It reloads from the store at once after a
write committed in this process (the store calls back), and in the background every
``POLL_S`` for writes made by another platform process sharing the database.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import threading
import time
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote, urlsplit

from modelport.access.authz import VIEW
from modelport.access.caller import Identity
from modelport.control.controller import Controller
from modelport.control.spec import SpecError, parse_document
from modelport.control.spec.inference_graph import IG, InferenceGraph
from modelport.control.status import build_status, is_ready, service_url
from modelport.control.store import Resource, Store
from modelport.gateway.addressing import address
from modelport.gateway.admission import Admission, Admitted, Refused, Route, needed_role
from modelport.graph import IDENTITY_KEY, Graph, GraphRouter
from modelport.graph.router import ServiceRouter

log = logging.getLogger("modelport.graph")
POLL_S = 2.0
STEP_NOT_INFERENCE = (
    "A graph step may only send inference requests (paths ending in :predict, :explain or /infer)."
)
Key = tuple[str, str]


class GraphCatalog:
    """The applied graphs by (namespace, name), kept in step with the store."""

    def __init__(self, store: Store, clock: Any = time.monotonic) -> None:
        self.store = store
        self.clock = clock
        self.graphs: dict[Key, Graph] = {}
        self.problems: dict[Key, str] = {}
        self._versions: dict[Key, tuple[int, float]] = {}
        self._stale = True
        self._checked = clock()
        self._polling: asyncio.Task[None] | None = None
        self._lock = threading.Lock()
        store.on_commit(self._mark_stale)
        self.refresh()

    def _mark_stale(self) -> None:
        self._stale = True

    def get(self, namespace: str, name: str) -> Graph | None:
        if self._stale:
            self.refresh()
        elif self.clock() - self._checked > POLL_S and self._polling is None:
            self._poll_in_background()
        return self.graphs.get((namespace, name))

    def refresh(self) -> None:
        """Reload what changed since the last look (thread-safe)."""
        with self._lock:
            self._stale = False
            self._checked = self.clock()
            versions = self.store.versions(IG)
            graphs = {k: g for k, g in self.graphs.items() if k in versions}
            problems = {k: p for k, p in self.problems.items() if k in versions}
            for key, version in versions.items():
                if self._versions.get(key) == version and (key in graphs or key in problems):
                    continue
                graphs.pop(key, None)
                problems.pop(key, None)
                row = self.store.get(IG, *key)
                if row is not None:
                    self._load(row, graphs, problems)
            self.graphs, self.problems, self._versions = graphs, problems, versions

    def _load(self, row: Resource, graphs: dict[Key, Graph], problems: dict[Key, str]) -> None:
        key = (row.namespace, row.name)
        try:
            parsed = parse_document(row.document, row.namespace)
        except SpecError as exc:  # stored by an older version with other rules
            problems[key] = str(exc)
            return
        if isinstance(parsed, InferenceGraph):
            graphs[key] = parsed.graph

    def _poll_in_background(self) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self.refresh()
            return

        async def poll() -> None:
            try:
                await asyncio.to_thread(self.refresh)
            except Exception as exc:  # the next lookup tries again
                log.warning("reloading InferenceGraphs failed: %s", exc)
            finally:
                self._polling = None

        self._polling = loop.create_task(poll())


class PlatformSite:
    """The graph router's GraphSite on this platform."""

    def __init__(
        self, catalog: GraphCatalog, controller: Controller, admission: Admission, domain: str
    ) -> None:
        self.catalog = catalog
        self.controller = controller
        self.admission = admission
        self.domain = domain

    def graph(self, namespace: str, name: str) -> Graph | None:
        return self.catalog.get(namespace, name)

    def predict_path(self, namespace: str, service: str) -> str:
        return predict_path(self.controller, namespace, service)

    def resolve_url(self, url: str) -> tuple[str, str, str] | str:
        return resolve_url(url, self.domain, self.controller)

    def refusal(self, identity: Identity, namespace: str, scope: dict[str, Any]) -> str | None:
        # A graph's author picks the paths its steps post to, and the steps run as whoever
        # calls the graph: were a step allowed to change state, a graph could make a caller
        # with more rights (an admin) unload or replace models elsewhere for its author.
        if needed_role(scope) != VIEW:
            return STEP_NOT_INFERENCE
        return self.admission.refusal(identity, namespace, scope)


def predict_path(controller: Controller, namespace: str, service: str) -> str:
    """KServe's GetPredictorEndpoint: the transformer's protocol if there is one, else the
    predictor's; V1 ``/v1/models/NAME:predict``, V2 ``/v2/models/NAME/infer``."""
    svc = controller.lookup(namespace, service)
    protocol = "v1"
    if svc is not None and svc.isvc is not None:
        component = svc.isvc.transformer or svc.isvc.predictor
        protocol = component.protocol_version
    if protocol == "v2":
        return f"/v2/models/{service}/infer"
    return f"/v1/models/{service}:predict"


def resolve_url(url: str, domain: str, controller: Controller) -> tuple[str, str, str] | str:
    """(namespace, name, path) of the InferenceService a serviceUrl names, or why none.

    A serviceUrl is resolved inside the platform, never fetched: its Host
    (NAME.NAMESPACE.<domain>, or KServe's cluster-local names) or its /serving/NS/NAME path
    names the service, as for a request to the gateway (gateway/addressing.py)."""
    parts = urlsplit(url)
    raw = parts.path or "/"
    found = address(raw.encode(), unquote(raw), parts.netloc, domain)
    if isinstance(found, str) or found.namespace is None or found.name is None:
        return (
            f"serviceUrl {url} does not address an InferenceService of this platform; use "
            f"http://NAME.NAMESPACE.{domain}/... or http://HOST/serving/NAMESPACE/NAME/..."
        )
    path = found.path
    if path in ("", "/"):
        path = predict_path(controller, found.namespace, found.name)
    if parts.query:
        path = f"{path}?{parts.query}"
    return found.namespace, found.name, path


class GraphAdmission(Admission):
    """The gateway's admission, which also lets a graph's callers in.

    A graph request is inference, whatever its path (KServe's router answers any path), so
    it needs the view role where a POST to a service's root would need edit; and the router
    needs to know who called, to call each step as them: the identity goes in the scope.
    """

    def __init__(self, base: Admission, catalog: GraphCatalog) -> None:
        super().__init__(base.provider, base.authorizer, base.domain, base.cache)
        self.catalog = catalog

    def admit(self, identity: Identity, route: Route | Refused) -> Admitted | Refused:
        if (
            isinstance(route, Refused)
            or route.namespace is None
            or route.name is None
            or self.catalog.get(route.namespace, route.name) is None
        ):
            return super().admit(identity, route)
        as_inference = dataclasses.replace(route, scope={**route.scope, "method": "GET"})
        admitted = super().admit(identity, as_inference)
        if isinstance(admitted, Refused):
            return admitted
        scope = {**route.scope, IDENTITY_KEY: identity}
        return dataclasses.replace(admitted, route=dataclasses.replace(route, scope=scope))


def serve_graphs(
    router: ServiceRouter, admission: Admission, store: Store, controller: Controller, domain: str
) -> tuple[GraphRouter, GraphAdmission]:
    """The gateway's router and admission with InferenceGraphs (used by build_platform)."""
    catalog = GraphCatalog(store)
    site = PlatformSite(catalog, controller, admission, domain)
    return GraphRouter(router, site), GraphAdmission(admission, catalog)


# ---- status -------------------------------------------------------------------------------


def graph_status(
    row: Resource, controller: Controller, domain: str, gateway_url: str
) -> dict[str, Any]:
    """``status`` as KServe's controller writes it: ``url`` and a ``Ready`` condition, False
    with the reason when a step's InferenceService is missing or not ready."""
    when = _timestamp(row.updated_at)
    reason, message = _not_ready(row, controller, domain, gateway_url)
    ready: dict[str, Any] = {"type": "Ready", "status": "True", "lastTransitionTime": when}
    if reason:
        ready.update(status="False", reason=reason, message=message)
    return {
        "url": service_url(row.name, row.namespace, domain),
        "address": {"url": f"{gateway_url}/serving/{row.namespace}/{row.name}"},
        "conditions": [ready],
        "observedGeneration": row.generation,
        "deploymentMode": "Serverless",
    }


def _not_ready(
    row: Resource, controller: Controller, domain: str, gateway_url: str
) -> tuple[str, str]:
    try:
        parsed = parse_document(row.document, row.namespace)
    except SpecError as exc:
        return "InvalidSpec", str(exc)
    if not isinstance(parsed, InferenceGraph):
        return "InvalidSpec", "the stored object is not an InferenceGraph"
    for node in parsed.graph.nodes.values():
        for step in node.steps:
            if step.service:
                target: tuple[str, str, str] | str = (row.namespace, step.service, "")
            elif step.url:
                target = resolve_url(step.url, domain, controller)
            else:
                continue
            if isinstance(target, str):
                return "InvalidServiceUrl", target
            namespace, name, _ = target
            if namespace != row.namespace:
                # Whether a service exists in another namespace is not the graph's owner's
                # to learn (found in review); each call is authorized as its caller.
                continue
            svc = controller.lookup(namespace, name)
            if svc is None:
                # KServe's controller: errors.Wrapf(err, "Failed to find graph service %s", ...)
                return "ServiceNotFound", f"Failed to find graph service {name}"
            if not is_ready(build_status(svc, name, namespace, domain, gateway_url)):
                return "ServiceNotReady", f"service {name} is not ready"
    return "", ""


def _timestamp(epoch: float) -> str:
    return datetime.fromtimestamp(epoch or time.time(), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
