"""An InferenceGraph as the router runs it: plain frozen data, checked before it gets here
(control/spec/inference_graph.py validates the YAML with KServe's webhook messages).

The names are KServe's (pkg/apis/serving/v1alpha1/inference_graph.go): a graph is a map of
nodes, ``root`` first to run; each node has a router type and steps; each step targets one
node, InferenceService or service URL."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

ROOT = "root"  # v1alpha1.GraphRootNodeName
SEQUENCE, SPLITTER, ENSEMBLE, SWITCH = "Sequence", "Splitter", "Ensemble", "Switch"
ROUTER_TYPES = (SEQUENCE, SPLITTER, ENSEMBLE, SWITCH)
SOFT, HARD = "Soft", "Hard"
REQUEST, RESPONSE = "$request", "$response"


@dataclass(frozen=True, slots=True)
class Step:
    """One InferenceStep; exactly one of node, service, url is set."""

    name: str = ""
    node: str = ""
    service: str = ""
    url: str = ""
    data: str = ""
    condition: str = ""
    weight: int | None = None
    dependency: str = SOFT
    map_predictions_to_instances: bool = False

    @property
    def hard(self) -> bool:
        return self.dependency == HARD


@dataclass(frozen=True, slots=True)
class Node:
    router_type: str
    steps: tuple[Step, ...] = ()


@dataclass(frozen=True, slots=True)
class Graph:
    """One graph of a namespace. ``timeout_s`` bounds a whole request (spec.timeout),
    ``step_timeout_s`` each call to a service (spec.routerTimeouts.serviceClient);
    ``propagate`` names the headers passed on to every step besides trace headers."""

    namespace: str
    name: str
    nodes: Mapping[str, Node]
    timeout_s: float | None = None
    step_timeout_s: float | None = None
    propagate: tuple[str, ...] = field(default=())
