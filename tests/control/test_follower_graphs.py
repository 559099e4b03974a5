"""A follower's graph site (control/follower_graphs.py): graphs as the leader's site has
them, and a ``serviceName`` step's path from the applied InferenceService, since the
follower's controller is idle and knows no service's protocol."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from modelport.control.follower_graphs import FollowerSite
from modelport.control.graphs import GraphCatalog, PlatformSite
from modelport.control.store import ISVC, Store

V2_ISVC = """\
apiVersion: serving.kserve.io/v1beta1
kind: InferenceService
metadata:
  name: iris-v2
  namespace: default
spec:
  predictor:
    model:
      modelFormat:
        name: sklearn
      protocolVersion: v2
      storageUri: file:///models/iris
"""


class IdleController:
    """A follower's controller: it runs nothing, so it knows no service."""

    def lookup(self, namespace: str, name: str) -> None:
        return None


def _site(tmp_path: Path) -> FollowerSite:
    store = Store.open(f"sqlite:///{tmp_path}/control.db")
    store.apply(ISVC, "default", "iris-v2", yaml.safe_load(V2_ISVC))
    controller: Any = IdleController()
    leader_site = PlatformSite(GraphCatalog(store), controller, None, "example.com")  # type: ignore[arg-type]
    return FollowerSite(leader_site, store)


def test_a_v2_service_is_called_at_its_v2_path(tmp_path: Path):
    site = _site(tmp_path)
    assert site.predict_path("default", "iris-v2") == "/v2/models/iris-v2/infer"
    assert site.predict_path("default", "unknown") == "/v1/models/unknown:predict"
    assert site.resolve_url("http://iris-v2.default.example.com") == (
        "default",
        "iris-v2",
        "/v2/models/iris-v2/infer",
    )
    assert site.resolve_url("http://iris-v2.default.example.com?x=1")[2] == (
        "/v2/models/iris-v2/infer?x=1"
    )
    # A path the URL names itself is kept, whatever the protocol.
    named = "http://iris-v2.default.example.com/v1/models/iris-v2:predict"
    assert site.resolve_url(named)[2] == "/v1/models/iris-v2:predict"
    assert isinstance(site.resolve_url("http://elsewhere.org/x"), str)
