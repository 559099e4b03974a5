"""Running one request through a graph, node by node, with KServe's router semantics
(kserve/kserve cmd/router/main.go ``routeStep``; the comments name the function matched):

- Sequence: each step gets the graph's request, or the previous step's response with
  ``data: $response``; ``mapPredictionsToInstances`` turns ``{"predictions": X}`` into
  ``{"instances": X}``; a step's ``condition`` is checked on the previous response and, when
  it does not match, that response is the answer (200); a Hard step's non-2xx is the answer.
- Switch: the first step whose condition matches the request; none: 404.
- Splitter: a step drawn by weight (out of 100).
- Ensemble: every step at once; ``{stepName or index: response}``, or the first failed Hard
  step's status and body (in step order).

Failures of the router itself (no route matched, a target it cannot reach) are a
:class:`GraphFailure`; a nested node's failure is a 500 for its parent, as in Go, where
``executeStep`` returning an error makes the caller answer 500.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import orjson

from modelport.graph.conditions import matches, valid_json
from modelport.graph.model import ENSEMBLE, RESPONSE, ROOT, SEQUENCE, SPLITTER, SWITCH, Graph, Step

# A graph's nodes may refer to one another; validation refuses cycles, and this bounds a
# request even if a cyclic graph got here some other way.
MAX_NODE_DEPTH = 16
# Service calls one request may make, all steps of all nodes counted.
MAX_CALLS = 256
NO_MATCH = "None of the routes matched with the switch condition"


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    body: bytes


class GraphFailure(Exception):
    """The router could not produce an answer; KServe's body is
    ``{"error": "Failed to process request", "cause": ...}`` (router_error.go)."""

    def __init__(self, status: int, cause: str) -> None:
        super().__init__(cause)
        self.status = status
        self.cause = cause

    def body(self) -> bytes:
        return orjson.dumps({"error": "Failed to process request", "cause": self.cause})


# Calls one service step: the body to send, the answer it gave (any status).
CallService = Callable[[Step, bytes], Awaitable[Answer]]


def successful(status: int) -> bool:
    return 200 <= status <= 299


class Execution:
    """One request's run through ``graph``; ``call`` reaches the services."""

    def __init__(self, graph: Graph, call: CallService) -> None:
        self.graph = graph
        self.call = call
        self.calls = 0

    async def run(self, body: bytes) -> Answer:
        """The graph's answer; GraphFailure with the status KServe answers otherwise."""
        return await self.route(ROOT, body, 0)

    async def route(self, node_name: str, body: bytes, depth: int) -> Answer:
        """routeStep: one node's answer to ``body``."""
        if depth >= MAX_NODE_DEPTH:
            raise GraphFailure(500, f"node {node_name}: nodes nest deeper than {MAX_NODE_DEPTH}")
        node = self.graph.nodes.get(node_name)
        if node is None:
            raise GraphFailure(500, f"node {node_name} is not in the graph")
        if node.router_type == SPLITTER:
            return await self._one(_pick_by_weight(node.steps, node_name), body, depth)
        if node.router_type == SWITCH:
            return await self._one(_pick_by_condition(node.steps, body), body, depth)
        if node.router_type == ENSEMBLE:
            return await self._ensemble(node.steps, body, depth)
        if node.router_type == SEQUENCE:
            return await self._sequence(node.steps, body, depth)
        raise GraphFailure(500, f"invalid route type: {node.router_type}")

    async def execute(self, step: Step, body: bytes, depth: int) -> Answer:
        """executeStep: a nested node, or a service. A nested node's failure is an error
        here, which every caller of executeStep turns into a 500."""
        if step.node:
            try:
                return await self.route(step.node, body, depth + 1)
            except GraphFailure as failure:
                raise GraphFailure(500, failure.cause) from None
        self.calls += 1
        if self.calls > MAX_CALLS:
            raise GraphFailure(500, f"the graph made more than {MAX_CALLS} calls")
        return await self.call(step, body)

    async def _one(self, step: Step, body: bytes, depth: int) -> Answer:
        """handleSplitterORSwitchNode: the chosen step's answer, whatever its status."""
        return await self.execute(step, body, depth)

    async def _sequence(self, steps: tuple[Step, ...], request: bytes, depth: int) -> Answer:
        response: bytes | None = None
        answer = Answer(500, b"")
        if not steps:
            raise GraphFailure(500, "a Sequence node has no steps")
        for i, step in enumerate(steps):
            body = response if step.data == RESPONSE and i > 0 and response is not None else request
            if step.map_predictions_to_instances:
                body = _predictions_to_instances(body)
            if step.condition:
                # Checked on the previous step's response; before any, there is none (Go:
                # gjson.ValidBytes(nil) is false, "invalid response").
                if response is None or not valid_json(response):
                    raise GraphFailure(500, "invalid response")
                if not matches(response, step.condition):
                    return Answer(200, response)
            answer = await self.execute(step, body, depth)
            response = answer.body
            if step.hard and not successful(answer.status):
                return answer
        return answer

    async def _ensemble(self, steps: tuple[Step, ...], body: bytes, depth: int) -> Answer:
        tasks = [asyncio.ensure_future(self.execute(step, body, depth)) for step in steps]
        merged: dict[str, Any] = {}
        try:
            for i, (step, task) in enumerate(zip(steps, tasks, strict=True)):
                try:
                    answer = await task
                except GraphFailure as failure:
                    raise GraphFailure(500, failure.cause) from None
                decoded = _json_object(answer.body)
                if decoded is None:
                    key = step.name or str(i)
                    raise GraphFailure(500, f"step {key}: the response is not a JSON object")
                if step.hard and not successful(answer.status):
                    return Answer(answer.status, _dumps(decoded))
                merged[step.name or str(i)] = decoded
        finally:
            for task in tasks:
                task.cancel()
            # Reap what was cancelled, so no step outlives the request.
            await asyncio.gather(*tasks, return_exceptions=True)
        return Answer(200, _dumps(merged))


def _pick_by_weight(steps: tuple[Step, ...], node_name: str) -> Step:
    """pickupRoute: a uniform draw in [0, 100) against the running sum of weights."""
    point = secrets.randbelow(100)
    end = 0
    for step in steps:
        end += step.weight or 0
        if point < end:
            return step
    raise GraphFailure(500, "no route was selected by the splitter")


def _pick_by_condition(steps: tuple[Step, ...], body: bytes) -> Step:
    """pickupRouteByCondition: the first step whose condition exists in the request."""
    if valid_json(body):
        for step in steps:
            if matches(body, step.condition):
                return step
    raise GraphFailure(404, NO_MATCH)


def _predictions_to_instances(body: bytes) -> bytes:
    """Go unmarshals into {predictions, instances} lists and, if predictions is non-empty,
    marshals {"instances": predictions} (other fields are not kept, as there)."""
    decoded = _json_object(body)
    if decoded is None:
        return body
    predictions = decoded.get("predictions")
    instances = decoded.get("instances")
    if not isinstance(predictions, list | None) or not isinstance(instances, list | None):
        return body  # json.Unmarshal fails on a field that is not an array
    if not predictions:
        return body
    return orjson.dumps({"instances": predictions})


def _json_object(body: bytes) -> dict[str, Any] | None:
    try:
        decoded = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    return decoded if isinstance(decoded, dict) else None


def _dumps(value: Any) -> bytes:
    # Go's encoding/json writes map keys sorted.
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
