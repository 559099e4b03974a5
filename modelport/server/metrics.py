"""Prometheus metrics, correct across worker processes (prometheus_client multiprocess mode).

The supervisor points ``PROMETHEUS_MULTIPROC_DIR`` at a fresh directory before any worker
starts; each worker writes its samples there and ``/metrics`` on any worker sums them all.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable

import orjson
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
    values,
)
from prometheus_client.exposition import CONTENT_TYPE_LATEST

# prometheus_client leaves these unannotated; their types, as its documentation gives them.
_pick_value_class: Callable[[], type[values.MutexValue]] = values.get_value_class
_collect_worker_files: Callable[[CollectorRegistry], object] = multiprocess.MultiProcessCollector
_mark_process_dead: Callable[[int], None] = multiprocess.mark_process_dead

LATENCY_BUCKETS = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)


class _Families:
    """The metric families, created on first use inside a worker (see module docstring)."""

    def __init__(self) -> None:
        # prometheus_client picks its value storage when imported; if it was imported before
        # PROMETHEUS_MULTIPROC_DIR was set (by the user's own code, say), pick again.
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            values.ValueClass = _pick_value_class()
        self.requests = Counter(
            "modelport_requests", "Inference requests handled.", ["model", "protocol", "status"]
        )
        self.latency = Histogram(
            "modelport_request_duration_seconds",
            "Time from request received to response encoded.",
            ["model", "protocol"],
            buckets=LATENCY_BUCKETS,
        )
        self.batch_size = Histogram(
            "modelport_batch_size",
            "Requests merged into one model call.",
            ["model"],
            buckets=BATCH_BUCKETS,
        )
        self.inflight = Gauge(
            "modelport_inflight_requests",
            "Inference requests being handled now.",
            ["model"],
            multiprocess_mode="livesum",
        )


_families: _Families | None = None


def families() -> _Families:
    """The process's metric families."""
    global _families
    if _families is None:
        _families = _Families()
    return _families


CONTENT_TYPE = CONTENT_TYPE_LATEST
access_log = logging.getLogger("modelport.access")


class RequestMetrics:
    """Records each inference request: metrics (labelled children cached, so the hot path does
    no label lookups) and, at debug level, one JSON log line."""

    def __init__(self) -> None:
        self._counters: dict[tuple[str, str, str], Counter] = {}
        self._latency: dict[tuple[str, str], Histogram] = {}
        self._debug = access_log.isEnabledFor(logging.DEBUG)

    def observe(
        self, model: str, protocol: str, status: str, seconds: float, path: str = ""
    ) -> None:
        """Count one finished request."""
        if self._debug:
            access_log.debug(
                orjson.dumps(
                    {
                        "model": model,
                        "protocol": protocol,
                        "path": path,
                        "status": status,
                        "ms": round(seconds * 1000, 3),
                    }
                ).decode()
            )
        key = (model, protocol, status)
        counter = self._counters.get(key)
        if counter is None:
            counter = self._counters[key] = families().requests.labels(*key)
        counter.inc()
        hist = self._latency.get(key[:2])
        if hist is None:
            hist = self._latency[key[:2]] = families().latency.labels(model, protocol)
        hist.observe(seconds)


def render() -> tuple[bytes, str]:
    """The exposition text summed over every worker process."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        _collect_worker_files(registry)
        return generate_latest(registry), CONTENT_TYPE
    return generate_latest(), CONTENT_TYPE


def mark_dead(pid: int) -> None:
    """Drop a dead worker's live gauges so in-flight counts stay right."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        _mark_process_dead(pid)
