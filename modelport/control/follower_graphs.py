"""InferenceGraphs on an instance that does not lead: the same graph router as the leader's,
in front of the follower's router (``follower_routing.py``).

The leader's graph site (``control/graphs.py``) reads graphs from the store and asks the
gateway's admission, which serves here as well. Only where a ``serviceName`` step posts to
comes from the controller's picture (the service's protocol), and a follower's controller
is idle: that one answer comes from the applied InferenceService instead.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from urllib.parse import urlsplit

from modelport.access.caller import Identity
from modelport.control.spec import SpecError, parse_document
from modelport.control.spec.objects import InferenceService
from modelport.control.store import ISVC, Store
from modelport.gateway.proxy import Scope
from modelport.graph import Graph, GraphSite

# How long a service's protocol is trusted before the store is read again.
PROTOCOL_TTL_S = 2.0


class FollowerSite:
    """A :class:`~modelport.graph.GraphSite` for a follower: ``site``'s answers, but the
    predictor endpoint from the store."""

    def __init__(
        self, site: GraphSite, store: Store, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.site = site
        self.store = store
        self.clock = clock
        self._protocols: dict[tuple[str, str], tuple[float, str]] = {}

    def graph(self, namespace: str, name: str) -> Graph | None:
        return self.site.graph(namespace, name)

    def refusal(self, identity: Identity, namespace: str, scope: Scope) -> str | None:
        return self.site.refusal(identity, namespace, scope)

    def predict_path(self, namespace: str, service: str) -> str:
        """KServe's GetPredictorEndpoint, as ``graphs.predict_path`` on the leader."""
        if self._protocol(namespace, service) == "v2":
            return f"/v2/models/{service}/infer"
        return f"/v1/models/{service}:predict"

    def resolve_url(self, url: str) -> tuple[str, str, str] | str:
        found = self.site.resolve_url(url)
        if isinstance(found, str):
            return found
        namespace, name, path = found
        # The site fills in the V1 path when the URL names no path of its own; the service
        # may speak V2.
        default = f"/v1/models/{name}:predict"
        parts = urlsplit(url)
        if path.split("?", 1)[0] == default and not parts.path.endswith(default):
            path = self.predict_path(namespace, name)
            if parts.query:
                path = f"{path}?{parts.query}"
        return namespace, name, path

    def _protocol(self, namespace: str, service: str) -> str:
        key = (namespace, service)
        cached = self._protocols.get(key)
        if cached is not None and self.clock() - cached[0] < PROTOCOL_TTL_S:
            return cached[1]
        protocol = "v1"
        row = self.store.get(ISVC, namespace, service)
        if row is not None:
            try:
                parsed = parse_document(row.document, namespace)
            except SpecError:
                parsed = None
            if isinstance(parsed, InferenceService):
                protocol = (parsed.transformer or parsed.predictor).protocol_version
        if len(self._protocols) > 4096:
            self._protocols.clear()
        self._protocols[key] = (self.clock(), protocol)
        return protocol
