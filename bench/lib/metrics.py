"""modelport's own counters, read from its Prometheus `/metrics`, with the server's CPU time:
what a measurement cost the server per request, and how many requests each model call
served."""

from __future__ import annotations

import http.client
import re
from dataclasses import dataclass
from typing import Any

from bench.lib.procs import http_req, tree_cpu_seconds


@dataclass(frozen=True)
class Counters:
    """A reading of the server's CPU seconds and its request and batch counters."""

    cpu_s: float
    requests: float
    batch_rows: float
    batch_calls: float


def read(port: int, sid: int, model: str) -> Counters | None:
    """Sum over the workers of the counters for `model`; None when /metrics does not answer."""
    cpu = tree_cpu_seconds(sid)
    try:
        status, _, data = http_req(port, "GET", "/metrics", timeout=10)
    except (OSError, http.client.HTTPException):
        return None
    if status != 200:
        return None
    text = data.decode(errors="replace")

    def total(name: str) -> float:
        pattern = rf'^{name}\{{[^}}]*model="{re.escape(model)}"[^}}]*\}} (\S+)$'
        return sum(float(v) for v in re.findall(pattern, text, re.M))

    return Counters(
        cpu,
        total("modelport_request_duration_seconds_count"),
        total("modelport_batch_size_sum"),
        total("modelport_batch_size_count"),
    )


def per_request(before: Counters | None, after: Counters | None) -> dict[str, Any]:
    """Server CPU µs per request and mean batch size between two readings."""
    if before is None or after is None:
        return {}
    out: dict[str, Any] = {}
    answered = after.requests - before.requests
    if answered > 0:
        out["server_cpu_us_per_request"] = round((after.cpu_s - before.cpu_s) * 1e6 / answered)
    calls = after.batch_calls - before.batch_calls
    if calls > 0:
        out["model_calls"] = int(calls)
        out["mean_batch_size"] = round((after.batch_rows - before.batch_rows) / calls, 1)
    return out
