"""InferenceGraph router: runs KServe's Sequence, Switch, Splitter and Ensemble nodes inside
the gateway process (docs/inferencegraph.md). It knows nothing of the control plane above
it: the graphs, the services' paths and the authorization check come in as a GraphSite."""

from __future__ import annotations

from modelport.graph.executor import MAX_CALLS, MAX_NODE_DEPTH, Answer, Execution, GraphFailure
from modelport.graph.model import Graph, Node, Step
from modelport.graph.router import IDENTITY_KEY, GraphRouter, GraphSite

__all__ = [
    "IDENTITY_KEY",
    "MAX_CALLS",
    "MAX_NODE_DEPTH",
    "Answer",
    "Execution",
    "Graph",
    "GraphFailure",
    "GraphRouter",
    "GraphSite",
    "Node",
    "Step",
]
