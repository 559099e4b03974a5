"""The gateway's catalog of graphs: a write committed in this process is seen by the next
lookup; a write by another process sharing the database is seen within POLL_S."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from modelport.control.graphs import POLL_S, GraphCatalog
from modelport.control.store import Store


def doc(name: str, service: str = "a") -> dict[str, Any]:
    return {
        "apiVersion": "serving.kserve.io/v1alpha1",
        "kind": "InferenceGraph",
        "metadata": {"name": name, "namespace": "ns"},
        "spec": {
            "nodes": {"root": {"routerType": "Sequence", "steps": [{"serviceName": service}]}}
        },
    }


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_writes_in_this_process_are_seen_at_once(tmp_path: Path) -> None:
    store = Store.open(f"sqlite:///{tmp_path}/c.db")
    catalog = GraphCatalog(store, clock=Clock())
    assert catalog.get("ns", "g") is None
    store.apply("InferenceGraph", "ns", "g", doc("g"))
    found = catalog.get("ns", "g")
    assert found is not None and found.nodes["root"].steps[0].service == "a"
    store.apply("InferenceGraph", "ns", "g", doc("g", service="b"))
    changed = catalog.get("ns", "g")
    assert changed is not None and changed.nodes["root"].steps[0].service == "b"
    store.delete("InferenceGraph", "ns", "g")
    assert catalog.get("ns", "g") is None


def test_writes_by_another_process_are_seen_after_the_poll_interval(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/c.db"
    clock = Clock()
    catalog = GraphCatalog(Store.open(url), clock=clock)
    elsewhere = Store.open(url)  # its commits do not reach this catalog's callback
    elsewhere.apply("InferenceGraph", "ns", "g", doc("g"))
    assert catalog.get("ns", "g") is None
    clock.now += POLL_S + 0.1
    assert catalog.get("ns", "g") is not None


def test_a_stored_graph_that_no_longer_validates_is_not_served(tmp_path: Path) -> None:
    store = Store.open(f"sqlite:///{tmp_path}/c.db")
    catalog = GraphCatalog(store, clock=Clock())
    broken = doc("g")
    broken["spec"]["nodes"]["root"]["steps"] = [{"nodeName": "root"}]  # a cycle
    store.apply("InferenceGraph", "ns", "g", broken)
    assert catalog.get("ns", "g") is None
    assert "cycle" in catalog.problems[("ns", "g")]
