"""InferenceGraph (``serving.kserve.io/v1alpha1``) documents, validated as KServe's webhook
does (pkg/apis/serving/v1alpha1/inference_graph_validation.go) with its exact messages, but
collecting every problem with its field path instead of stopping at the first:

- the name (``InvalidGraphNameFormatError``), a ``root`` node (``RootNodeNotFoundError``),
  unique step names per node (``DuplicateStepNameError``), exactly one target per step
  (``TargetNotProvidedError``, ``InvalidTargetError``), Splitter weights present and summing
  to 100 (``WeightNotProvidedError``, ``InvalidWeightError``); the CRD's enums for
  ``routerType`` and ``dependency``.

modelport adds what running the graph inside the gateway needs: every ``nodeName`` names a
node, nodes do not refer to one another in a cycle, one request makes at most
``MAX_CALLS`` service calls however the nodes fan out, and conditions, header names and
sizes stay bounded. Fields that only size KServe's router pod (resources, replicas, ...) are
kept and reported as not acted on.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from modelport.control.spec.constants import DNS1123_LABEL
from modelport.control.spec.fields import FieldReader, read_metadata
from modelport.control.spec.problems import shorten
from modelport.graph.conditions import MAX_CONDITION_CHARS
from modelport.graph.executor import MAX_CALLS
from modelport.graph.headers import (
    MAX_PATTERNS,
    PROPAGATE_ANNOTATION,
    header_patterns,
    pattern_problem,
)
from modelport.graph.model import ROOT, ROUTER_TYPES, SPLITTER, SWITCH, Graph, Node, Step

IG = "InferenceGraph"
IG_API_VERSION = "serving.kserve.io/v1alpha1"
GRAPH_NAME_FMT = "[a-z]([-a-z0-9]*[a-z0-9])?"
_GRAPH_NAME = re.compile("^" + GRAPH_NAME_FMT + "$")
INT64 = 2**63 - 1
MAX_NODES = 64
MAX_STEPS = 64
# Fields of the spec that size or place KServe's router pod: kept, not acted on.
POD_FIELDS = (
    "resources",
    "affinity",
    "minReplicas",
    "maxReplicas",
    "scaleTarget",
    "scaleMetric",
    "tolerations",
    "nodeSelector",
    "nodeName",
    "serviceAccountName",
)
STEP_FIELDS = (
    "name",
    "nodeName",
    "serviceName",
    "serviceUrl",
    "data",
    "condition",
    "weight",
    "dependency",
    "mapPredictionsToInstances",
)


@dataclass
class InferenceGraph:
    """A validated graph: where it lives, the document as sent, and the graph to run."""

    name: str
    namespace: str
    graph: Graph
    document: dict[str, Any]
    ignored: list[str] = field(default_factory=list)


def read_inference_graph(
    reader: FieldReader, doc: dict[str, Any], default_namespace: str
) -> InferenceGraph | None:
    name, namespace, _labels, annotations = read_metadata(
        reader, doc, default_namespace, namespaced=True
    )
    reader.only(doc, "", ("apiVersion", "kind", "metadata", "spec"))
    graph_name = name or ""
    if name is not None and not _GRAPH_NAME.fullmatch(name):
        reader.problem(
            "metadata.name",
            f'The InferenceGraph "{shorten(name)}" is invalid: a InferenceGraph name must '
            "consist of lower case alphanumeric characters or '-', and must start with "
            'alphabetical character. (e.g. "my-name" or "abc-123", regex used for '
            f"validation is '{GRAPH_NAME_FMT}')",
        )
    elif name is not None and len(name) > 63:
        reader.problem("metadata.name", "must be at most 63 characters (it is a DNS label)")
    spec = reader.mapping(doc.get("spec"), "spec", required=True) or {}
    nodes = _nodes(reader, spec, graph_name)
    timeout = reader.integer(spec, "timeout", "spec", minimum=1, maximum=INT64)
    step_timeout = _router_timeouts(reader, spec)
    for key in POD_FIELDS:
        if key in spec:
            reader.ignore(f"spec.{key}")
    reader.only(spec, "spec", ("nodes", "timeout", "routerTimeouts", *POD_FIELDS))
    propagate = _propagate(reader, annotations)
    if name is None or namespace is None or reader.problems:
        return None
    graph = Graph(namespace, name, nodes, timeout, step_timeout, propagate)
    return InferenceGraph(name, namespace, graph, doc, list(reader.ignored))


def _nodes(reader: FieldReader, spec: dict[str, Any], graph_name: str) -> dict[str, Node]:
    raw = reader.mapping(spec.get("nodes"), "spec.nodes", required=True)
    if raw is None:
        return {}
    if ROOT not in raw:
        reader.problem(
            "spec.nodes",
            "root node not found, InferenceGraph needs a node with name 'root' as the root "
            "node of the graph",
        )
    if len(raw) > MAX_NODES:
        reader.problem("spec.nodes", f"at most {MAX_NODES} nodes, got {len(raw)}")
        return {}
    nodes: dict[str, Node] = {}
    for node_name, value in raw.items():
        node = _node(reader, node_name, value, graph_name)
        if node is not None:
            nodes[node_name] = node
    if not reader.problems:
        _check_references(reader, nodes)
    return nodes


def _node(reader: FieldReader, node_name: str, value: Any, graph_name: str) -> Node | None:
    path = f"spec.nodes.{shorten(node_name, 80)}"
    node = reader.mapping(value, path, required=True)
    if node is None:
        return None
    router_type = reader.string(node, "routerType", path, required=True)
    if router_type is not None and router_type not in ROUTER_TYPES:
        supported = ", ".join(f'"{t}"' for t in ROUTER_TYPES)
        reader.problem(
            f"{path}.routerType",
            f'Unsupported value: "{shorten(router_type)}": supported values: {supported}',
        )
        router_type = None
    reader.only(node, path, ("routerType", "steps"))
    raw_steps = reader.list(node.get("steps"), f"{path}.steps")
    if not raw_steps:
        reader.problem(f"{path}.steps", "a node needs at least one step")
    if len(raw_steps) > MAX_STEPS:
        reader.problem(f"{path}.steps", f"at most {MAX_STEPS} steps, got {len(raw_steps)}")
        return None
    steps = [_step(reader, f"{path}.steps[{i}]", item) for i, item in enumerate(raw_steps)]
    found = [s for s in steps if s is not None]
    if len(found) != len(steps) or router_type is None:
        return None
    _check_steps(reader, path, node_name, graph_name, router_type, found)
    return Node(router_type, tuple(found))


def _step(reader: FieldReader, path: str, value: Any) -> Step | None:
    step = reader.mapping(value, path, required=True)
    if step is None:
        return None
    before = len(reader.problems)
    text = {k: reader.string(step, k, path) or "" for k in STEP_FIELDS[:6]}
    weight = reader.integer(step, "weight", path, minimum=0, maximum=INT64)
    dependency = reader.choice(step, "dependency", path, ("Soft", "Hard")) or "Soft"
    mapped = reader.boolean(step, "mapPredictionsToInstances", path) or False
    reader.only(step, path, STEP_FIELDS)
    if len(text["condition"]) > MAX_CONDITION_CHARS:
        reader.problem(f"{path}.condition", f"at most {MAX_CONDITION_CHARS} characters")
    service = text["serviceName"]
    if service and (len(service) > 63 or not DNS1123_LABEL.fullmatch(service)):
        reader.problem(
            f"{path}.serviceName", f"{shorten(service)!r} is not an InferenceService name"
        )
    url = text["serviceUrl"]
    if url and (urlsplit(url).scheme not in ("http", "https") or not urlsplit(url).netloc):
        reader.problem(f"{path}.serviceUrl", f"{shorten(url)!r} is not an http(s) URL")
    if len(reader.problems) != before:
        return None
    return Step(
        name=text["name"],
        node=text["nodeName"],
        service=service,
        url=url,
        data=text["data"],
        condition=text["condition"],
        weight=weight,
        dependency=dependency,
        map_predictions_to_instances=mapped,
    )


def _check_steps(
    reader: FieldReader,
    path: str,
    node_name: str,
    graph: str,
    router_type: str,
    steps: list[Step],
) -> None:
    """The webhook's per-node rules, in its order, with its messages."""
    seen: set[str] = set()
    for i, step in enumerate(steps):
        if step.name and step.name in seen:
            reader.problem(
                f"{path}.steps[{i}].name",
                f'Node "{node_name}" of InferenceGraph "{graph}" contains more than one step '
                f'with name "{step.name}"',
            )
        seen.add(step.name)
    for i, step in enumerate(steps):
        targets = sum(bool(t) for t in (step.node, step.service, step.url))
        where = f'Step {i} ("{step.name}") in node "{node_name}" of InferenceGraph "{graph}"'
        if targets == 0:
            reader.problem(f"{path}.steps[{i}]", f"{where} does not specify an inference target")
        elif targets > 1:
            reader.problem(
                f"{path}.steps[{i}]",
                f"{where} specifies more than one of nodeName, serviceName, serviceUrl",
            )
    if router_type == SPLITTER:
        for i, step in enumerate(steps):
            if step.weight is None:
                reader.problem(
                    f"{path}.steps[{i}].weight",
                    f"InferenceGraph[{graph}] Node[{node_name}] Route[{step.service}] missing "
                    "the 'Weight'",
                )
                return
        if sum(step.weight or 0 for step in steps) != 100:
            reader.problem(
                path,
                f"InferenceGraph[{graph}] Node[{node_name}] splitter node: the sum of traffic "
                "weights for all routing targets should be 100",
            )


def _check_references(reader: FieldReader, nodes: dict[str, Node]) -> None:
    """Every nodeName names a node; no cycles; a bounded number of calls per request."""
    for node_name, node in nodes.items():
        for i, step in enumerate(node.steps):
            if step.node and step.node not in nodes:
                reader.problem(
                    f"spec.nodes.{shorten(node_name, 80)}.steps[{i}].nodeName",
                    f'node "{shorten(step.node)}" is not a node of this graph',
                )
    if reader.problems:
        return
    calls: dict[str, int] = {}

    def visit(name: str, trail: list[str]) -> int | None:
        if name in trail:
            cycle = " -> ".join([*trail[trail.index(name) :], name])
            reader.problem(
                f"spec.nodes.{shorten(name, 80)}",
                f"nodes refer to one another in a cycle ({shorten(cycle, 200)}); a graph "
                "must not recurse",
            )
            return None
        if name in calls:
            return calls[name]
        counts = []
        for step in nodes[name].steps:
            count = visit(step.node, [*trail, name]) if step.node else 1
            if count is None:
                return None
            counts.append(count)
        # Switch and Splitter run one of their steps; Sequence and Ensemble run them all.
        total = max(counts) if nodes[name].router_type in (SWITCH, SPLITTER) else sum(counts)
        calls[name] = total
        return total

    for name in nodes:
        total = visit(name, [])
        if total is None:
            return
    if ROOT in calls and calls[ROOT] > MAX_CALLS:
        reader.problem(
            "spec.nodes",
            f"one request would make {calls[ROOT]} service calls; at most {MAX_CALLS}",
        )


def _router_timeouts(reader: FieldReader, spec: dict[str, Any]) -> int | None:
    timeouts = reader.mapping(spec.get("routerTimeouts"), "spec.routerTimeouts")
    if timeouts is None:
        return None
    path = "spec.routerTimeouts"
    for key in ("serverRead", "serverWrite", "serverIdle"):
        if reader.integer(timeouts, key, path, minimum=1, maximum=INT64) is not None:
            reader.ignore(f"{path}.{key}")
    reader.only(timeouts, path, ("serverRead", "serverWrite", "serverIdle", "serviceClient"))
    return reader.integer(timeouts, "serviceClient", path, minimum=1, maximum=INT64)


def _propagate(reader: FieldReader, annotations: dict[str, str]) -> tuple[str, ...]:
    value = annotations.get(PROPAGATE_ANNOTATION)
    if value is None:
        return ()
    path = f"metadata.annotations[{PROPAGATE_ANNOTATION}]"
    patterns = header_patterns(value)
    if len(patterns) > MAX_PATTERNS:
        reader.problem(path, f"at most {MAX_PATTERNS} header names")
        return ()
    for pattern in patterns:
        if why := pattern_problem(pattern):
            reader.problem(path, why)
    return patterns
