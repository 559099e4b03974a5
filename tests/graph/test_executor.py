"""The router's semantics, node by node, against services that are plain functions here
(the same graphs run against real model servers in tests/e2e/test_graph_e2e.py). Expected
answers and statuses are KServe's (cmd/router/main.go and main_test.go)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import orjson
import pytest

from modelport.graph import MAX_CALLS, MAX_NODE_DEPTH, Answer, Execution, Graph, Node, Step
from modelport.graph.executor import GraphFailure

SUCCESS = Answer(200, b'{"predictions": [{"message": "SUCCESS"}]}')
ERROR = Answer(404, b'{"detail": "Intentional 404 code"}')
Service = Callable[[bytes], Answer]


def run(nodes: dict[str, Node], services: dict[str, Service], body: object) -> Answer:
    """The graph's answer to ``body``; services are called by step service name."""
    calls: list[tuple[str, bytes]] = []

    async def call(step: Step, sent: bytes) -> Answer:
        calls.append((step.service, sent))
        return services[step.service](sent)

    graph = Graph("ns", "g", nodes)
    data = body if isinstance(body, bytes) else orjson.dumps(body)
    answer = asyncio.run(Execution(graph, call).run(data))
    run.calls = calls  # type: ignore[attr-defined]
    return answer


def fixed(answer: Answer) -> Service:
    return lambda _body: answer


def echo(body: bytes) -> Answer:
    return Answer(200, orjson.dumps({"predictions": orjson.loads(body).get("instances")}))


def failure(nodes: dict[str, Node], services: dict[str, Service], body: object) -> GraphFailure:
    with pytest.raises(GraphFailure) as caught:
        run(nodes, services, body)
    return caught.value


SERVICES: dict[str, Service] = {"ok": fixed(SUCCESS), "err": fixed(ERROR), "echo": echo}


def test_sequence_sends_the_request_to_each_step_unless_data_is_response() -> None:
    nodes = {
        "root": Node(
            "Sequence",
            (
                Step(service="echo"),
                Step(service="echo", data="$response", map_predictions_to_instances=True),
                Step(service="echo"),
            ),
        )
    }
    answer = run(nodes, SERVICES, {"instances": [[1, 2]]})
    sent = [orjson.loads(b) for _, b in run.calls]  # type: ignore[attr-defined]
    assert sent == [
        {"instances": [[1, 2]]},
        {"instances": [[1, 2]]},  # {"predictions": X} became {"instances": X}
        {"instances": [[1, 2]]},  # no data: the graph's request again (KServe at HEAD)
    ]
    assert answer == Answer(200, b'{"predictions":[[1,2]]}')


def test_map_predictions_keeps_a_body_without_predictions() -> None:
    nodes = {
        "root": Node(
            "Sequence",
            (Step(service="ok"), Step(service="echo", map_predictions_to_instances=True)),
        )
    }
    run(nodes, SERVICES, {"instances": [3]})
    assert orjson.loads(run.calls[1][1]) == {"instances": [3]}  # type: ignore[attr-defined]


def test_a_condition_is_checked_on_the_previous_response() -> None:
    steps = (Step(service="ok"), Step(service="err", condition="predictions.#(message==SUCCESS)"))
    answer = run({"root": Node("Sequence", steps)}, SERVICES, {"x": 1})
    assert answer == ERROR  # matched: the step ran
    steps = (Step(service="ok"), Step(service="err", condition="predictions.#(message==NOPE)"))
    answer = run({"root": Node("Sequence", steps)}, SERVICES, {"x": 1})
    assert answer == Answer(200, SUCCESS.body)  # not matched: the previous response, 200
    assert len(run.calls) == 1  # type: ignore[attr-defined]


def test_a_condition_on_the_first_step_of_a_sequence_is_an_invalid_response() -> None:
    nodes = {"root": Node("Sequence", (Step(service="ok", condition="x"),))}
    caught = failure(nodes, SERVICES, {"x": 1})
    assert (caught.status, caught.cause) == (500, "invalid response")


def test_a_hard_step_stops_the_sequence_and_a_soft_one_does_not() -> None:
    hard = (Step(name="rootStep1", service="err", dependency="Hard"), Step(service="ok"))
    assert run({"root": Node("Sequence", hard)}, SERVICES, {}) == ERROR
    soft = (Step(name="rootStep1", service="err"), Step(service="ok"))
    assert run({"root": Node("Sequence", soft)}, SERVICES, {}) == SUCCESS


def test_switch_takes_the_first_matching_step_and_404s_when_none_matches() -> None:
    steps = (
        Step(service="err", condition="[@this].#(decision_picker==ERROR)"),
        Step(service="ok", condition="[@this].#(decision_picker==SUCCESS)"),
    )
    nodes = {"root": Node("Switch", steps)}
    assert run(nodes, SERVICES, {"decision_picker": "ERROR"}) == ERROR
    assert run(nodes, SERVICES, {"decision_picker": "SUCCESS"}) == SUCCESS
    caught = failure(nodes, SERVICES, {"decision_picker": "NO_MATCH"})
    assert caught.status == 404
    assert orjson.loads(caught.body()) == {
        "error": "Failed to process request",
        "cause": "None of the routes matched with the switch condition",
    }
    assert failure(nodes, SERVICES, b"not json").status == 404


def test_a_nested_nodes_failure_is_a_500_for_its_parent() -> None:
    nodes = {
        "root": Node("Sequence", (Step(node="pick"),)),
        "pick": Node("Switch", (Step(service="ok", condition="never"),)),
    }
    caught = failure(nodes, SERVICES, {"a": 1})
    assert (caught.status, caught.cause) == (
        500,
        "None of the routes matched with the switch condition",
    )


def test_splitter_draws_by_weight() -> None:
    nodes = {
        "root": Node("Splitter", (Step(service="err", weight=0), Step(service="ok", weight=100)))
    }
    assert all(run(nodes, SERVICES, {}) == SUCCESS for _ in range(20))
    nodes = {
        "root": Node("Splitter", (Step(service="ok", weight=50), Step(service="err", weight=50)))
    }
    seen = {run(nodes, SERVICES, {}).status for _ in range(200)}
    assert seen == {200, 404}


def test_ensemble_answers_every_step_by_name_or_index() -> None:
    steps = (
        Step(name="rootStep2", service="err"),
        Step(service="ok"),
        Step(name="a", service="ok"),
    )
    answer = run({"root": Node("Ensemble", steps)}, SERVICES, {})
    assert answer.status == 200
    assert orjson.loads(answer.body) == {
        "rootStep2": {"detail": "Intentional 404 code"},
        "1": {"predictions": [{"message": "SUCCESS"}]},
        "a": {"predictions": [{"message": "SUCCESS"}]},
    }
    assert answer.body.startswith(b'{"1":')  # keys sorted, as Go marshals a map


def test_ensemble_answers_the_first_failed_hard_step() -> None:
    steps = (
        Step(name="rootStep1", service="err", dependency="Hard"),
        Step(name="rootStep2", service="ok"),
    )
    answer = run({"root": Node("Ensemble", steps)}, SERVICES, {})
    assert answer.status == 404
    assert orjson.loads(answer.body) == {"detail": "Intentional 404 code"}


def test_ensemble_step_that_is_not_a_json_object_fails_the_node() -> None:
    services = {**SERVICES, "text": fixed(Answer(200, b"plain words"))}
    steps = (Step(name="s", service="text"), Step(service="ok"))
    caught = failure({"root": Node("Ensemble", steps)}, services, {})
    assert caught.status == 500


def test_a_cyclic_graph_stops_at_the_depth_bound() -> None:
    # Validation refuses this graph; the router must stop even so.
    nodes = {
        "root": Node("Sequence", (Step(node="a"),)),
        "a": Node("Sequence", (Step(node="root"),)),
    }
    caught = failure(nodes, SERVICES, {})
    assert caught.status == 500
    assert str(MAX_NODE_DEPTH) in caught.cause


def test_fan_out_is_bounded_by_the_call_budget() -> None:
    # 4 levels of 8-way ensembles would be 4,096 calls.
    nodes = {"root": Node("Ensemble", tuple(Step(name=f"s{i}", node="l1") for i in range(8)))}
    for level in ("l1", "l2"):
        child = "l2" if level == "l1" else "l3"
        nodes[level] = Node("Ensemble", tuple(Step(name=f"s{i}", node=child) for i in range(8)))
    nodes["l3"] = Node("Ensemble", tuple(Step(name=f"s{i}", service="ok") for i in range(8)))
    caught = failure(nodes, SERVICES, {})
    assert caught.status == 500
    assert str(MAX_CALLS) in caught.cause
