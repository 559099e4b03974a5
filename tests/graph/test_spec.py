"""InferenceGraph documents: KServe's webhook messages (inference_graph_validation.go and
its _test.go), the CRD's enums, and modelport's own bounds for graphs it runs in the gateway
(cycles, fan-out, sizes). Hostile documents get problems, never an exception."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from modelport.control.spec import SpecError, parse_documents
from modelport.control.spec.inference_graph import InferenceGraph
from modelport.graph import MAX_CALLS

MODEL_CHAINER = """
apiVersion: serving.kserve.io/v1alpha1
kind: InferenceGraph
metadata:
  name: model-chainer
  namespace: team-a
  annotations:
    modelport.io/propagate-headers: "X-Tenant, Test-Header-*"
spec:
  timeout: 30
  routerTimeouts: {serviceClient: 5, serverRead: 60}
  minReplicas: 1
  nodes:
    root:
      routerType: Sequence
      steps:
      - serviceName: isvc-sklearn-graph-1
        name: step1
        dependency: Hard
      - serviceName: isvc-sklearn-graph-2
        name: step2
        data: $request
        condition: "[@this].#(predictions)"
      - nodeName: pick
        name: step3
    pick:
      routerType: Splitter
      steps:
      - serviceUrl: http://a.team-a.example.com/v1/models/a:predict
        weight: 30
      - serviceName: b
        weight: 70
"""


def graph(nodes: dict[str, Any], name: str = "g", **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "serving.kserve.io/v1alpha1",
        "kind": "InferenceGraph",
        "metadata": {"name": name},
        "spec": {"nodes": nodes, **spec},
    }


def problems(doc: dict[str, Any]) -> list[tuple[str, str]]:
    with pytest.raises(SpecError) as caught:
        parse_documents(yaml.safe_dump(doc))
    return [(p.path, p.message) for p in caught.value.problems]


def messages(doc: dict[str, Any]) -> list[str]:
    return [m for _, m in problems(doc)]


def seq(*steps: dict[str, Any], kind: str = "Sequence") -> dict[str, Any]:
    return {"routerType": kind, "steps": list(steps)}


def test_a_kserve_graph_parses_into_the_graph_the_router_runs() -> None:
    [parsed] = parse_documents(MODEL_CHAINER)
    assert isinstance(parsed, InferenceGraph)
    g = parsed.graph
    assert (g.namespace, g.name, g.timeout_s, g.step_timeout_s) == (
        "team-a",
        "model-chainer",
        30,
        5,
    )
    assert g.propagate == ("x-tenant", "test-header-*")
    root = g.nodes["root"]
    assert [s.service or s.node for s in root.steps] == [
        "isvc-sklearn-graph-1",
        "isvc-sklearn-graph-2",
        "pick",
    ]
    assert root.steps[0].hard and not root.steps[1].hard
    assert root.steps[1].condition == "[@this].#(predictions)"
    assert [s.weight for s in g.nodes["pick"].steps] == [30, 70]
    # Kept as sent, and what is not acted on is said.
    assert parsed.document["spec"]["minReplicas"] == 1
    assert "spec.minReplicas" in parsed.ignored
    assert "spec.routerTimeouts.serverRead" in parsed.ignored


def test_missing_root() -> None:
    assert messages(graph({"other": seq({"serviceName": "a"})})) == [
        "root node not found, InferenceGraph needs a node with name 'root' as the root node "
        "of the graph"
    ]


def test_invalid_name() -> None:
    [message] = messages(graph({"root": seq({"serviceName": "a"})}, name="1-graph"))
    assert message == (
        'The InferenceGraph "1-graph" is invalid: a InferenceGraph name must consist of lower '
        "case alphanumeric characters or '-', and must start with alphabetical character. "
        '(e.g. "my-name" or "abc-123", regex used for validation is '
        "'[a-z]([-a-z0-9]*[a-z0-9])?')"
    )


def test_splitter_weights() -> None:
    missing = graph({"root": seq({"serviceName": "a"}, {"serviceName": "b"}, kind="Splitter")})
    assert messages(missing) == ["InferenceGraph[g] Node[root] Route[a] missing the 'Weight'"]
    wrong = graph(
        {
            "root": seq(
                {"serviceName": "a", "weight": 30},
                {"serviceName": "b", "weight": 60},
                kind="Splitter",
            )
        }
    )
    assert messages(wrong) == [
        "InferenceGraph[g] Node[root] splitter node: the sum of traffic weights for all "
        "routing targets should be 100"
    ]


def test_duplicate_step_names() -> None:
    doc = graph({"root": seq({"name": "s", "serviceName": "a"}, {"name": "s", "serviceName": "b"})})
    assert problems(doc) == [
        (
            "spec.nodes.root.steps[1].name",
            'Node "root" of InferenceGraph "g" contains more than one step with name "s"',
        )
    ]


def test_step_targets() -> None:
    none = graph({"root": seq({"name": "s"})})
    assert messages(none) == [
        'Step 0 ("s") in node "root" of InferenceGraph "g" does not specify an inference target'
    ]
    both = graph({"root": seq({"serviceName": "a"}, {"serviceName": "a", "nodeName": "root"})})
    assert messages(both) == [
        'Step 1 ("") in node "root" of InferenceGraph "g" specifies more than one of nodeName, '
        "serviceName, serviceUrl"
    ]


def test_router_type_and_dependency_enums() -> None:
    doc = graph({"root": seq({"serviceName": "a", "dependency": "Maybe"}, kind="Chain")})
    found = dict(problems(doc))
    assert found["spec.nodes.root.routerType"] == (
        'Unsupported value: "Chain": supported values: "Sequence", "Splitter", "Ensemble", "Switch"'
    )
    assert "must be one of Soft, Hard" in found["spec.nodes.root.steps[0].dependency"]


def test_every_problem_is_reported_at_once() -> None:
    doc = graph({"other": seq({"name": "x"}, {"name": "x"})}, name="Bad")
    assert len(problems(doc)) == 5  # name, root, duplicate, two steps without a target


@pytest.mark.parametrize(
    "nodes",
    [
        {"root": seq({"nodeName": "root"})},
        {"root": seq({"nodeName": "a"}), "a": seq({"nodeName": "b"}), "b": seq({"nodeName": "a"})},
        {"root": seq({"serviceName": "s"}), "a": seq({"nodeName": "a"})},  # unreachable, still
    ],
)
def test_cycles_are_refused(nodes: dict[str, Any]) -> None:
    [message] = messages(graph(nodes))
    assert "cycle" in message and "must not recurse" in message


def test_unknown_node_reference() -> None:
    assert problems(graph({"root": seq({"nodeName": "nowhere"})})) == [
        ("spec.nodes.root.steps[0].nodeName", 'node "nowhere" is not a node of this graph')
    ]


def test_fan_out_past_the_call_budget_is_refused() -> None:
    wide = [{"name": f"s{i}", "nodeName": "mid"} for i in range(20)]
    mid = [{"name": f"s{i}", "serviceName": "a"} for i in range(20)]
    doc = graph({"root": seq(*wide, kind="Ensemble"), "mid": seq(*mid, kind="Ensemble")})
    assert messages(doc) == [f"one request would make 400 service calls; at most {MAX_CALLS}"]
    # A Switch runs one of its steps: the same shape under a Switch is fine.
    switch = graph({"root": seq(*wide, kind="Switch"), "mid": seq(*mid, kind="Ensemble")})
    assert parse_documents(yaml.safe_dump(switch))


@pytest.mark.parametrize(
    ("doc", "path"),
    [
        (graph({"root": "Sequence"}), "spec.nodes.root"),
        (graph({"root": {"routerType": "Sequence", "steps": "a"}}), "spec.nodes.root.steps"),
        (graph({"root": seq("a")}), "spec.nodes.root.steps[0]"),
        (graph({"root": seq({"serviceName": ["a"]})}), "spec.nodes.root.steps[0].serviceName"),
        (
            graph({"root": seq({"serviceName": "a", "weight": "x"})}),
            "spec.nodes.root.steps[0].weight",
        ),
        (graph({"root": seq({"serviceName": "A_b"})}), "spec.nodes.root.steps[0].serviceName"),
        (
            graph({"root": seq({"serviceUrl": "file:///etc/passwd"})}),
            "spec.nodes.root.steps[0].serviceUrl",
        ),
        (
            graph({"root": seq({"serviceName": "a", "condition": "x" * 5000})}),
            "spec.nodes.root.steps[0].condition",
        ),
        (graph({"root": {"routerType": "Sequence", "steps": []}}), "spec.nodes.root.steps"),
        (graph({"root": seq({"serviceName": "a"})}, timeout=0), "spec.timeout"),
        (graph({"root": seq({"serviceName": "a"})}, timeout="1m"), "spec.timeout"),
        (graph([]), "spec.nodes"),
        ({**graph({"root": seq({"serviceName": "a"})}), "apiVersion": "v1"}, "apiVersion"),
    ],
)
def test_hostile_documents_get_problems(doc: dict[str, Any], path: str) -> None:
    assert path in [p for p, _ in problems(doc)]


def test_propagated_header_names_are_checked() -> None:
    doc = graph({"root": seq({"serviceName": "a"})})
    doc["metadata"]["annotations"] = {"modelport.io/propagate-headers": "Authorization, a(b"}
    found = messages(doc)
    assert "'authorization' is never passed on to steps" in found
    assert "'a(b' is not a header name" in found


def test_too_many_nodes() -> None:
    nodes = {"root": seq({"serviceName": "a"})} | {
        f"n{i}": seq({"serviceName": "a"}) for i in range(70)
    }
    assert messages(graph(nodes)) == ["at most 64 nodes, got 71"]
