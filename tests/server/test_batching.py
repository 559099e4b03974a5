"""Adaptive batching with a real asyncio loop and a real async model call."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import numpy as np
import pytest

from modelport.errors import InvalidInput
from modelport.protocol.infer import (
    InferInput,
    InferOutput,
    InferRequest,
    InferResponse,
    RequestedOutput,
)
from modelport.server import batching
from modelport.server.batching import Batcher, merge, signature, split


class FakeModel:
    """An async model call that records every payload it receives."""

    def __init__(self, delay: float = 0.0) -> None:
        self.calls: list[Any] = []
        self.delay = delay

    async def __call__(self, payload: Any) -> Any:
        self.calls.append(payload)
        if self.delay:
            await asyncio.sleep(self.delay)
        else:
            await asyncio.sleep(0)
        if isinstance(payload, dict):
            try:
                rows = np.asarray(payload["instances"])
            except ValueError:
                raise InvalidInput("ragged instances") from None
            if rows.dtype.kind not in "iuf" or rows.ndim != 2:
                raise InvalidInput("instances must be rows of numbers")
            return {"predictions": rows.sum(axis=1).tolist(), "model": "m"}
        x = payload.inputs[0].as_numpy()
        if (x < 0).any():
            raise InvalidInput("negative values")
        outputs = [
            InferOutput.from_numpy("double", x * 2),
            InferOutput.from_numpy("rowsum", x.reshape(len(x), -1).sum(axis=1)),
        ]
        for extra in payload.inputs[1:]:
            outputs.append(InferOutput.from_numpy(f"{extra.name}+x", extra.as_numpy() + x))
        return InferResponse(payload.id, "m", outputs, model_version="7")

    @property
    def rows_per_call(self) -> list[int]:
        return [
            len(p["instances"]) if isinstance(p, dict) else p.inputs[0].as_numpy().shape[0]
            for p in self.calls
        ]


def v2(rows: np.ndarray, request_id: str | None = None, name: str = "x", **kw: Any) -> InferRequest:
    arr = np.asarray(rows)
    datatype = {"f": "FP32", "i": "INT64"}[arr.dtype.kind]
    arr = arr.astype(np.float32) if datatype == "FP32" else arr
    return InferRequest(
        "m", [InferInput(name, arr.shape, datatype, arr)], request_id=request_id, **kw
    )


def run(coro_factory: Callable[[], Awaitable[Any]]) -> Any:
    return asyncio.run(coro_factory())


def gather_submits(batcher: Batcher, payloads: list[Any]) -> Awaitable[list[Any]]:
    return asyncio.gather(*(batcher.submit(p) for p in payloads), return_exceptions=True)


def assert_same_response(got: InferResponse, want: InferResponse) -> None:
    assert got.id == want.id
    assert got.model_name == want.model_name
    assert got.model_version == want.model_version
    assert [o.name for o in got.outputs] == [o.name for o in want.outputs]
    for g, w in zip(got.outputs, want.outputs, strict=True):
        assert (g.datatype, list(g.shape)) == (w.datatype, list(w.shape))
        np.testing.assert_array_equal(g.as_numpy(), w.as_numpy())


def requests_of_various_sizes() -> list[InferRequest]:
    rng = np.random.default_rng(0)
    return [v2(rng.random((n, 3)), request_id=f"r{i}") for i, n in enumerate([1, 3, 2, 1, 4])]


# ---- merging and splitting ------------------------------------------------------------------


def test_concurrent_requests_are_merged_and_split_back() -> None:
    payloads = requests_of_various_sizes()
    model = FakeModel()
    batches: list[int] = []

    async def main() -> list[Any]:
        batcher = Batcher(model, max_batch_size=32, max_latency_s=0.0, on_batch=batches.append)
        return await gather_submits(batcher, payloads)

    results = run(main)
    assert len(model.calls) == 1
    assert model.rows_per_call == [11]
    assert batches == [5]

    async def unbatched() -> list[Any]:
        return [await FakeModel()(p) for p in payloads]

    for got, want in zip(results, run(unbatched), strict=True):
        assert_same_response(got, want)


def test_lone_request_with_zero_latency_is_passed_through_undelayed() -> None:
    model = FakeModel()
    payload = v2(np.ones((2, 3)), request_id="solo")

    async def main() -> tuple[Any, float]:
        batcher = Batcher(model, max_batch_size=8, max_latency_s=0.0)
        start = time.perf_counter()
        result = await batcher.submit(payload)
        return result, time.perf_counter() - start

    result, elapsed = run(main)
    assert model.calls == [payload]  # the original request, not a merged copy
    assert result.id == "solo"
    assert elapsed < 0.05


def test_max_batch_size_is_respected() -> None:
    payloads = [v2(np.full((1, 2), i, dtype=np.float32)) for i in range(10)]
    model = FakeModel()
    batches: list[int] = []

    async def main() -> list[Any]:
        batcher = Batcher(model, max_batch_size=4, max_latency_s=0.0, on_batch=batches.append)
        return await gather_submits(batcher, payloads)

    results = run(main)
    assert sorted(batches, reverse=True) == [4, 4, 2]
    assert sorted(model.rows_per_call, reverse=True) == [4, 4, 2]
    for i, result in enumerate(results):
        assert result.outputs[0].as_numpy().tolist() == [[2.0 * i, 2.0 * i]]


def test_full_batch_flushes_before_the_latency_expires() -> None:
    model = FakeModel()

    async def main() -> float:
        batcher = Batcher(model, max_batch_size=2, max_latency_s=30.0)
        start = time.perf_counter()
        await gather_submits(batcher, [v2(np.ones((1, 2))), v2(np.ones((1, 2)))])
        return time.perf_counter() - start

    assert run(main) < 5.0
    assert model.rows_per_call == [2]


def test_latency_waits_for_company_then_flushes() -> None:
    model = FakeModel()
    latency = 0.15

    async def main() -> tuple[list[Any], float]:
        batcher = Batcher(model, max_batch_size=16, max_latency_s=latency)
        start = time.perf_counter()
        first = asyncio.ensure_future(batcher.submit(v2(np.ones((1, 2)), "a")))
        await asyncio.sleep(latency / 3)
        assert not model.calls  # still waiting for company
        second = asyncio.ensure_future(batcher.submit(v2(np.zeros((2, 2)), "b")))
        results = await asyncio.gather(first, second)
        return results, time.perf_counter() - start

    (a, b), elapsed = run(main)
    assert model.rows_per_call == [3]
    assert latency * 0.9 <= elapsed < latency + 2.0
    assert a.id == "a" and a.outputs[0].as_numpy().tolist() == [[2.0, 2.0]]
    assert b.id == "b" and b.outputs[0].as_numpy().shape == (2, 2)


def test_lone_request_waits_for_the_latency() -> None:
    model = FakeModel()

    async def main() -> float:
        batcher = Batcher(model, max_batch_size=16, max_latency_s=0.1)
        start = time.perf_counter()
        await batcher.submit(v2(np.ones((1, 2))))
        return time.perf_counter() - start

    assert run(main) >= 0.09
    assert len(model.calls) == 1


async def trickle(batcher: Batcher, payloads: list[InferRequest], gap_s: float) -> list[Any]:
    """Submit the payloads one every ``gap_s`` (as gRPC calls reach the servicer under load)."""
    tasks = []
    for payload in payloads:
        tasks.append(asyncio.ensure_future(batcher.submit(payload)))
        await asyncio.sleep(gap_s)
    return await asyncio.gather(*tasks)


def grpc_v2(value: float, request_id: str) -> InferRequest:
    return v2(np.full((1, 2), value), request_id, from_grpc=True)


def test_grpc_calls_trickling_in_under_load_are_merged(monkeypatch: pytest.MonkeyPatch) -> None:
    # Periods and gaps scaled up from the real ones (1 ms, ~0.2 ms) so that a loaded test
    # machine's scheduling delays cannot end a period early.
    monkeypatch.setattr(batching, "_PATIENCE_S", 0.05)
    monkeypatch.setattr(batching, "_MAX_GATHER_S", 1.0)
    model = FakeModel()
    batches: list[int] = []

    async def main() -> list[Any]:
        batcher = Batcher(model, max_batch_size=32, max_latency_s=0.0, on_batch=batches.append)
        # Two calls queued together show the load is concurrent...
        await gather_submits(batcher, [grpc_v2(0, "a"), grpc_v2(1, "b")])
        # ... so calls that then arrive apart (slower than loop turns) are waited for.
        return await trickle(batcher, [grpc_v2(i, f"t{i}") for i in range(6)], 0.005)

    results = run(main)
    assert batches == [2, 6]
    assert [r.id for r in results] == [f"t{i}" for i in range(6)]
    assert [r.outputs[0].as_numpy().tolist() for r in results] == [
        [[2.0 * i, 2.0 * i]] for i in range(6)
    ]


def test_rest_requests_trickling_in_are_not_held() -> None:
    model = FakeModel()
    batches: list[int] = []

    async def main() -> None:
        batcher = Batcher(model, max_batch_size=32, max_latency_s=0.0, on_batch=batches.append)
        await gather_submits(batcher, [v2(np.ones((1, 2))), v2(np.ones((1, 2)))])
        await trickle(batcher, [v2(np.ones((1, 2))) for _ in range(3)], 0.002)

    run(main)
    assert batches == [2, 1, 1, 1]


def test_lone_grpc_calls_are_held_once_at_most_after_a_burst() -> None:
    model = FakeModel()

    async def main() -> list[float]:
        batcher = Batcher(model, max_batch_size=32, max_latency_s=0.0)
        await gather_submits(batcher, [grpc_v2(0, "a"), grpc_v2(1, "b")])
        elapsed = []
        for i in range(3):
            start = time.perf_counter()
            await batcher.submit(grpc_v2(i, f"lone{i}"))
            elapsed.append(time.perf_counter() - start)
        return elapsed

    first, *rest = run(main)
    assert first < 0.05  # one patience period, then concurrency 1 is recognised...
    assert all(t < first for t in rest)  # ... and later lone calls pass straight through


def test_requests_after_a_flush_start_a_new_batch() -> None:
    model = FakeModel()

    async def main() -> None:
        batcher = Batcher(model, max_batch_size=16, max_latency_s=0.0)
        await gather_submits(batcher, [v2(np.ones((1, 2))), v2(np.ones((1, 2)))])
        await gather_submits(batcher, [v2(np.ones((1, 2))), v2(np.ones((2, 2)))])

    run(main)
    assert model.rows_per_call == [2, 3]


def test_several_inputs_are_merged_together() -> None:
    def two_inputs(n: int, k: int) -> InferRequest:
        x = np.full((n, 2), k, dtype=np.int64)
        y = np.full((n, 2), 10 * k, dtype=np.int64)
        return InferRequest(
            "m",
            [InferInput("x", x.shape, "INT64", x), InferInput("y", y.shape, "INT64", y)],
            request_id=str(k),
        )

    model = FakeModel()

    async def main() -> list[Any]:
        batcher = Batcher(model, max_batch_size=8, max_latency_s=0.0)
        return await gather_submits(batcher, [two_inputs(1, 1), two_inputs(2, 2)])

    one, two = run(main)
    assert len(model.calls) == 1
    assert one.get_output_by_name("y+x").as_numpy().tolist() == [[11, 11]]
    assert two.get_output_by_name("y+x").as_numpy().tolist() == [[22, 22], [22, 22]]


def test_response_parameters_survive_batching() -> None:
    async def call(payload: InferRequest) -> InferResponse:
        x = payload.inputs[0].as_numpy()
        out = InferOutput.from_numpy("y", x)
        return InferResponse(None, "m", [out], parameters={"sequence_end": True})

    async def main() -> list[Any]:
        batcher = Batcher(call, max_batch_size=8, max_latency_s=0.0)
        return await gather_submits(batcher, [v2(np.ones((1, 2))), v2(np.ones((1, 2)))])

    for result in run(main):
        assert result.parameters == {"sequence_end": True}


# ---- what is never merged -------------------------------------------------------------------


@pytest.mark.parametrize(
    "other",
    [
        v2(np.ones((1, 3), dtype=np.int64)),  # another datatype
        v2(np.ones((1, 4))),  # another row shape
        v2(np.ones((1, 3)), name="z"),  # another input name
        v2(np.ones((1, 3, 1))),  # another rank
    ],
    ids=["datatype", "row-shape", "name", "rank"],
)
def test_incompatible_requests_are_not_merged(other: InferRequest) -> None:
    model = FakeModel()
    base = v2(np.ones((1, 3)))

    async def main() -> list[Any]:
        batcher = Batcher(model, max_batch_size=8, max_latency_s=0.0)
        return await gather_submits(batcher, [base, other, v2(np.zeros((2, 3)))])

    results = run(main)
    assert not any(isinstance(r, BaseException) for r in results)
    assert sorted(model.rows_per_call) == [1, 3]  # base merged with its twin, other alone
    assert model.calls.count(other) == 1


@pytest.mark.parametrize(
    "payload",
    [
        v2(np.ones((1, 3)), parameters={"temperature": 1}),
        v2(np.ones((1, 3)), request_outputs=[RequestedOutput("double")]),
        InferRequest("m", [InferInput("x", [], "FP32", np.array(1.0, np.float32))]),
        InferRequest("m", [InferInput("x", [1], "FP32", np.ones(1, np.float32), {"p": 1})]),
        {"instances": []},
        {"instances": [[1, 2]], "signature_name": "serving"},
        {"inputs": [[1, 2]]},
        [1, 2, 3],
    ],
    ids=[
        "params",
        "outputs",
        "scalar",
        "input-params",
        "no-instances",
        "extra-key",
        "tf-inputs",
        "list",
    ],
)
def test_unmergeable_payloads_bypass_the_queue(payload: Any) -> None:
    assert signature(payload) is None
    seen: list[Any] = []
    batches: list[int] = []

    async def call(p: Any) -> Any:
        seen.append(p)
        return "direct"

    async def main() -> list[Any]:
        batcher = Batcher(call, max_batch_size=8, max_latency_s=10.0, on_batch=batches.append)
        return await gather_submits(batcher, [payload, payload])

    assert run(main) == ["direct", "direct"]
    assert seen == [payload, payload]
    assert batches == [1, 1]  # never merged: each is a call of its own


# ---- failures -------------------------------------------------------------------------------


def test_bad_request_fails_only_itself() -> None:
    good1 = v2(np.ones((2, 2)), "good1")
    bad = v2(-np.ones((1, 2)), "bad")
    good2 = v2(np.full((1, 2), 3.0), "good2")
    model = FakeModel()

    async def main() -> list[Any]:
        batcher = Batcher(model, max_batch_size=8, max_latency_s=0.0)
        return await gather_submits(batcher, [good1, bad, good2])

    r1, rbad, r2 = run(main)
    assert isinstance(rbad, InvalidInput) and "negative" in str(rbad)
    assert r1.id == "good1" and r1.outputs[0].as_numpy().tolist() == [[2, 2], [2, 2]]
    assert r2.id == "good2" and r2.outputs[0].as_numpy().tolist() == [[6, 6]]
    # one merged attempt, then each request on its own
    assert model.rows_per_call[0] == 4
    assert sorted(model.rows_per_call[1:]) == [1, 1, 2]


def test_request_whose_inputs_disagree_on_rows_fails_only_itself() -> None:
    x = np.ones((2, 2), np.float32)
    y = np.ones((3, 2), np.float32)
    odd = InferRequest(
        "m", [InferInput("x", x.shape, "FP32", x), InferInput("y", y.shape, "FP32", y)]
    )
    one = np.ones((1, 2), np.float32)
    twin = InferRequest(
        "m", [InferInput("x", one.shape, "FP32", one), InferInput("y", one.shape, "FP32", one)]
    )

    async def call(p: InferRequest) -> InferResponse:
        a, b = (i.as_numpy() for i in p.inputs)
        if len(a) != len(b):
            raise InvalidInput("rows differ")
        return InferResponse(p.id, "m", [InferOutput.from_numpy("s", a + b)])

    async def main() -> list[Any]:
        batcher = Batcher(call, max_batch_size=8, max_latency_s=0.0)
        return await gather_submits(batcher, [odd, twin])

    r_odd, r_twin = run(main)
    assert isinstance(r_odd, InvalidInput)
    assert r_twin.outputs[0].as_numpy().tolist() == [[2.0, 2.0]]


def test_model_failure_fails_the_whole_batch() -> None:
    calls: list[Any] = []

    async def call(p: Any) -> Any:
        calls.append(p)
        raise RuntimeError("GPU on fire")

    async def main() -> list[Any]:
        batcher = Batcher(call, max_batch_size=8, max_latency_s=0.0)
        return await gather_submits(batcher, [v2(np.ones((1, 2))) for _ in range(3)])

    results = run(main)
    assert all(isinstance(r, RuntimeError) and str(r) == "GPU on fire" for r in results)
    assert len(calls) == 1  # not retried: the failure is the model's, not a request's


def test_unsplittable_result_is_retried_per_request() -> None:
    calls: list[Any] = []

    async def call(p: InferRequest) -> InferResponse:
        calls.append(p)
        total = p.inputs[0].as_numpy().sum().reshape(1)  # one row whatever the batch
        return InferResponse(p.id, "m", [InferOutput.from_numpy("t", total)])

    async def main() -> list[Any]:
        batcher = Batcher(call, max_batch_size=8, max_latency_s=0.0)
        return await gather_submits(batcher, [v2(np.ones((1, 2))), v2(np.ones((2, 2)))])

    one, two = run(main)
    assert one.outputs[0].as_numpy().tolist() == [2.0]
    assert two.outputs[0].as_numpy().tolist() == [4.0]
    assert len(calls) == 3


def test_a_cancelled_caller_does_not_break_its_batch() -> None:
    model = FakeModel()

    async def main() -> list[Any]:
        batcher = Batcher(model, max_batch_size=8, max_latency_s=0.05)
        tasks = [asyncio.ensure_future(batcher.submit(v2(np.full((1, 2), i)))) for i in range(3)]
        await asyncio.sleep(0.01)
        tasks[1].cancel()
        return await asyncio.gather(*tasks, return_exceptions=True)

    r0, r1, r2 = run(main)
    assert isinstance(r1, asyncio.CancelledError)
    assert r0.outputs[0].as_numpy().tolist() == [[0.0, 0.0]]
    assert r2.outputs[0].as_numpy().tolist() == [[4.0, 4.0]]


# ---- V1 {"instances": [...]} ----------------------------------------------------------------


def test_v1_instances_are_merged_and_split() -> None:
    payloads = [
        {"instances": [[1, 2], [3, 4]]},
        {"instances": [[5, 6]]},
        {"instances": [[7, 8], [9, 10], [11, 12]]},
    ]
    model = FakeModel()

    async def main() -> list[Any]:
        batcher = Batcher(model, max_batch_size=8, max_latency_s=0.0)
        return await gather_submits(batcher, payloads)

    results = run(main)
    assert model.calls == [{"instances": [[1, 2], [3, 4], [5, 6], [7, 8], [9, 10], [11, 12]]}]
    assert results == [
        {"predictions": [3, 7], "model": "m"},
        {"predictions": [11], "model": "m"},
        {"predictions": [15, 19, 23], "model": "m"},
    ]


def test_v1_numpy_predictions_are_split() -> None:
    async def call(p: dict[str, Any]) -> dict[str, Any]:
        return {"predictions": np.asarray(p["instances"]) * 10}

    async def main() -> list[Any]:
        batcher = Batcher(call, max_batch_size=8, max_latency_s=0.0)
        return await gather_submits(batcher, [{"instances": [1, 2]}, {"instances": [3]}])

    one, two = run(main)
    assert one["predictions"].tolist() == [10, 20]
    assert two["predictions"].tolist() == [30]


def test_v1_bad_request_fails_only_itself() -> None:
    model = FakeModel()
    payloads = [{"instances": [[1, 2]]}, {"instances": [["a", "b"]]}, {"instances": [[0, 1]]}]

    async def main() -> list[Any]:
        batcher = Batcher(model, max_batch_size=8, max_latency_s=0.0)
        return await gather_submits(batcher, payloads)

    ok1, bad, ok2 = run(main)
    assert ok1 == {"predictions": [3], "model": "m"}
    assert ok2 == {"predictions": [1], "model": "m"}
    assert isinstance(bad, InvalidInput)
    assert len(model.calls) == 4


def test_v1_requests_ragged_only_when_merged_still_succeed() -> None:
    model = FakeModel()
    payloads = [{"instances": [[1, 2]]}, {"instances": [[1, 2, 3]]}]

    async def main() -> list[Any]:
        batcher = Batcher(model, max_batch_size=8, max_latency_s=0.0)
        return await gather_submits(batcher, payloads)

    assert run(main) == [{"predictions": [3], "model": "m"}, {"predictions": [6], "model": "m"}]


def test_v1_prediction_count_mismatch_is_retried_per_request() -> None:
    calls: list[Any] = []

    async def call(p: dict[str, Any]) -> dict[str, Any]:
        calls.append(p)
        return {"predictions": [len(p["instances"])]}

    async def main() -> list[Any]:
        batcher = Batcher(call, max_batch_size=8, max_latency_s=0.0)
        return await gather_submits(batcher, [{"instances": [1, 2]}, {"instances": [3]}])

    assert run(main) == [{"predictions": [2]}, {"predictions": [1]}]
    assert len(calls) == 3


# ---- the pure helpers -----------------------------------------------------------------------


def test_signature_of_v2_requests() -> None:
    assert signature(v2(np.ones((1, 3)))) == signature(v2(np.ones((5, 3))))
    assert signature(v2(np.ones((1, 3)))) != signature(v2(np.ones((1, 2))))
    assert signature({"instances": [1]}) == signature({"instances": [[1, 2], [3, 4]]})
    assert signature({"instances": [1]}) != signature(v2(np.ones((1,))))


def test_merge_and_split_are_inverse() -> None:
    payloads = requests_of_various_sizes()
    merged, rows = merge(payloads)
    assert rows == [1, 3, 2, 1, 4]
    np.testing.assert_array_equal(
        merged.inputs[0].as_numpy(), np.concatenate([p.inputs[0].as_numpy() for p in payloads])
    )
    x = merged.inputs[0].as_numpy()
    pieces = split(InferResponse(None, "m", [InferOutput.from_numpy("y", x)]), payloads, rows)
    for piece, payload in zip(pieces, payloads, strict=True):
        assert piece.id == payload.id
        np.testing.assert_array_equal(piece.outputs[0].as_numpy(), payload.inputs[0].as_numpy())


def test_split_rejects_results_it_cannot_cut() -> None:
    payloads = [{"instances": [1]}, {"instances": [2]}]
    with pytest.raises(InvalidInput):
        split({"predictions": [1, 2, 3]}, payloads, [1, 1])
    with pytest.raises(InvalidInput):
        split([1, 2], payloads, [1, 1])
    with pytest.raises(InvalidInput):
        split(
            InferResponse(None, "m", [InferOutput.from_numpy("s", np.array(1.0))]), payloads, [1, 1]
        )
