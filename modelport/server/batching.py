"""Adaptive batching: merge concurrent requests to one model along the first axis.

Requests wait at most ``max_latency`` for company. With a latency of 0 ("merge what is
queued") the first request lets the event loop turn once (reading whatever has arrived on the
sockets) and runs when a turn brings no newcomer, after at most four turns: a lone request is
delayed by one loop turn. That suits REST, where uvicorn hands a request over in the turn its
bytes arrive. A grpc.aio call needs several turns and round trips through gRPC's
completion-queue poller thread before it reaches the batcher, so at 64 streams fewer than 3 %
of gRPC calls found company within four turns. So once a batch has merged several requests,
a leader that came in over gRPC waits by time instead: in periods of ``_PATIENCE_S`` for as
long as each period brings newcomers, at most ``_MAX_GATHER_S`` in all. A wait that brings
nobody ends that mode: at concurrency 1, one request after a burst is held for one period,
and the ones after it are not held.

Results are split back by each request's row count, so every caller sees exactly what an
unbatched call would have returned. A merged call that fails on input is retried request by
request, so one bad request cannot fail its neighbours.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import numpy as np

from modelport.errors import InvalidInput
from modelport.protocol.infer import InferInput, InferOutput, InferRequest, InferResponse

Call = Callable[[Any], Awaitable[Any]]
# With no latency budget, a leader waits at most this many event-loop turns for company...
_MAX_TURNS = 4
# ... or, for gRPC under concurrent load, periods of this long while each brings newcomers.
# (A millisecond is also the resolution of uvloop's timers, so a shorter period would not be.)
_PATIENCE_S = 1e-3
_MAX_GATHER_S = 5e-3
Signature = tuple[Any, ...]


class _Gathering:
    """Requests with one signature waiting for the leader to run them."""

    __slots__ = ("items", "full")

    def __init__(self, first: tuple[Any, asyncio.Future[Any]], full: asyncio.Future[None]):
        self.items = [first]
        #: resolved when the batch is full, or when the leader's current wait ends
        self.full = full


class Batcher:
    """Collects requests for one model and runs them in merged calls.

    The first request of a batch leads: it yields to the event loop (once, or for up to
    ``max_latency``) so that requests already received can join, then runs the merged call
    and hands every follower its share. No extra task or timer is made for a lone request.
    """

    def __init__(
        self,
        call: Call,
        max_batch_size: int,
        max_latency_s: float,
        on_batch: Callable[[int], None] | None = None,
    ) -> None:
        self._call = call
        self._max = max_batch_size
        self._latency = max_latency_s
        self._on_batch = on_batch
        self._gathering: dict[Signature, _Gathering] = {}
        # True while recent gRPC batches merged several requests (see the module docstring).
        self._patient = False

    async def submit(self, payload: Any) -> Any:
        """Run one request, merged with whatever arrives alongside it; returns its own result."""
        sig = signature(payload)
        if sig is None:
            self._count(1)
            return await self._call(payload)
        loop = asyncio.get_running_loop()
        gathering = self._gathering.get(sig)
        if gathering is not None:
            fut: asyncio.Future[Any] = loop.create_future()
            gathering.items.append((payload, fut))
            if len(gathering.items) >= self._max and not gathering.full.done():
                gathering.full.set_result(None)
            return await fut

        own: asyncio.Future[Any] = loop.create_future()
        gathering = self._gathering[sig] = _Gathering((payload, own), loop.create_future())
        try:
            await self._wait_for_company(loop, gathering)
        except asyncio.CancelledError:
            self._gathering.pop(sig, None)
            followers = gathering.items[1:]
            if followers:  # they still need an answer
                asyncio.ensure_future(self._run_all(followers))
            raise
        self._gathering.pop(sig, None)
        items = gathering.items
        if len(items) == 1:
            self._count(1)
            return await self._call(payload)
        # Shielded, so a leader whose client goes away does not fail its followers.
        await asyncio.shield(asyncio.ensure_future(self._run_all(items)))
        return own.result()

    async def _wait_for_company(
        self, loop: asyncio.AbstractEventLoop, gathering: _Gathering
    ) -> None:
        full = gathering.full
        if self._latency > 0:
            timer = loop.call_later(self._latency, _resolve, full)
            try:
                await full
            finally:
                timer.cancel()
            return
        leader = gathering.items[0][0]
        if not (isinstance(leader, InferRequest) and leader.from_grpc):
            await _gather_turns(gathering)
            return
        if self._patient:
            await _gather_periods(loop, gathering, self._max)
        else:
            await _gather_turns(gathering)
        self._patient = len(gathering.items) > 1

    def _count(self, size: int) -> None:
        if self._on_batch is not None:
            self._on_batch(size)

    async def _run_all(self, items: list[tuple[Any, asyncio.Future[Any]]]) -> None:
        for start in range(0, len(items), self._max):
            await self._run(items[start : start + self._max])

    async def _run(self, items: list[tuple[Any, asyncio.Future[Any]]]) -> None:
        self._count(len(items))
        if len(items) == 1:
            payload, fut = items[0]
            await _settle(fut, self._call(payload))
            return
        payloads = [p for p, _ in items]
        try:
            merged, rows = merge(payloads)
            results = split(await self._call(merged), payloads, rows)
        except InvalidInput:
            # Attribute the error to the request that caused it.
            for payload, fut in items:
                await _settle(fut, self._call(payload))
            return
        except Exception as exc:  # the model's own failure applies to the whole batch
            for _, fut in items:
                if not fut.done():
                    fut.set_exception(exc)
            return
        for (_, fut), result in zip(items, results, strict=True):
            if not fut.done():
                fut.set_result(result)


async def _gather_turns(gathering: _Gathering) -> None:
    """Let the loop run (and poll sockets) again while newcomers keep joining; stop at the
    first turn that brings none, so a lone request costs one extra turn only."""
    for _ in range(_MAX_TURNS):
        before = len(gathering.items)
        await asyncio.sleep(0)
        if len(gathering.items) == before or gathering.full.done():
            return


async def _gather_periods(
    loop: asyncio.AbstractEventLoop, gathering: _Gathering, max_batch_size: int
) -> None:
    """Wait in periods of ``_PATIENCE_S`` while each brings newcomers."""
    end = loop.time() + _MAX_GATHER_S
    while len(gathering.items) < max_batch_size and loop.time() < end:
        before = len(gathering.items)
        timer = loop.call_later(_PATIENCE_S, _resolve, gathering.full)
        try:
            await gathering.full
        finally:
            timer.cancel()
        if len(gathering.items) >= max_batch_size:
            return
        # Callers woken in the same loop iteration as the timer are a turn or two from joining.
        gathering.full = loop.create_future()
        await _gather_turns(gathering)
        if len(gathering.items) == before:
            return


def _resolve(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)


async def _settle(fut: asyncio.Future[Any], call: Awaitable[Any]) -> None:
    try:
        result = await call
    except BaseException as exc:
        if not fut.done():
            fut.set_exception(exc)
        return
    if not fut.done():
        fut.set_result(result)


def signature(payload: Any) -> Signature | None:
    """Requests with equal signatures can be merged; None means 'never merge this one'."""
    if isinstance(payload, InferRequest):
        if payload.parameters or payload.request_outputs:
            return None
        parts: list[Any] = ["v2"]
        for inp in payload.inputs:
            arr = inp.as_numpy()
            if arr.ndim == 0 or inp.parameters:
                return None
            parts.append((inp.name, inp.datatype, arr.shape[1:]))
        return tuple(parts)
    if isinstance(payload, dict) and payload.keys() == {"instances"}:
        instances = payload["instances"]
        if isinstance(instances, list) and instances:
            return ("v1",)
    return None


def merge(payloads: list[Any]) -> tuple[Any, list[int]]:
    """One payload holding every request's rows, and each request's row count."""
    first = payloads[0]
    if isinstance(first, InferRequest):
        rows = [p.inputs[0].as_numpy().shape[0] for p in payloads]
        inputs = []
        for i, inp in enumerate(first.inputs):
            arrays = [p.inputs[i].as_numpy() for p in payloads]
            if any(a.shape[0] != r for a, r in zip(arrays, rows, strict=True)):
                raise InvalidInput("Inputs of one request disagree on the batch size.")
            joined = np.concatenate(arrays, axis=0)
            inputs.append(InferInput(inp.name, joined.shape, inp.datatype, joined))
        return InferRequest(first.model_name, inputs, model_version=first.model_version), rows
    rows = [len(p["instances"]) for p in payloads]
    return {"instances": [x for p in payloads for x in p["instances"]]}, rows


def split(result: Any, payloads: list[Any], rows: list[int]) -> list[Any]:
    """Cut a merged result back into one result per request."""
    total = sum(rows)
    bounds = np.cumsum(rows)[:-1]
    if isinstance(result, InferResponse):
        pieces: list[list[InferOutput]] = [[] for _ in payloads]
        for out in result.outputs:
            arr = out.as_numpy()
            if arr.ndim == 0 or arr.shape[0] != total:
                raise InvalidInput("The model's output rows do not match its input rows.")
            for piece, part in zip(pieces, np.split(arr, bounds), strict=True):
                piece.append(InferOutput(out.name, part.shape, out.datatype, part, out.parameters))
        return [
            InferResponse(
                p.id,
                result.model_name,
                outs,
                model_version=result.model_version,
                parameters=dict(result.parameters) if result.parameters else None,
            )
            for p, outs in zip(payloads, pieces, strict=True)
        ]
    if isinstance(result, dict) and "predictions" in result:
        preds = result["predictions"]
        if len(preds) != total:
            raise InvalidInput("The model's predictions do not match its instances.")
        shares = []
        start = 0
        for n in rows:
            shares.append({**result, "predictions": preds[start : start + n]})
            start += n
        return shares
    raise InvalidInput("The model's result cannot be split into a batch.")
