"""Metrics over time for the services someone is looking at (the web UI's Metrics tab):
request rate, p50/p99 latency, errors, replicas and in-flight requests, every few seconds,
with no Prometheus or Grafana needed.

Each sample reads the model servers' own Prometheus metrics (``modelport_requests_total``,
``modelport_request_duration_seconds``; server/metrics.py) from every ready replica, and
the controller's count of requests in flight (those queued at the platform included).
Only services whose metrics were asked for in the last WATCH_S seconds are sampled, so a
platform with thousands of idle services scrapes nothing while no one watches; the history
therefore starts when someone first asks.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections import deque
from dataclasses import asdict, dataclass, field

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from modelport.control.controller import Controller
from modelport.protocol.replica_key import REPLICA_KEY_HEADER

INTERVAL_S = 5.0
WATCH_S = 600.0
SAMPLES = 120  # ten minutes
SCRAPE_TIMEOUT_S = 2.0
MAX_METRICS_BYTES = 1 << 20

Key = tuple[str, str]


@dataclass
class Totals:
    """One replica's counters as last read."""

    requests: float = 0.0
    errors: float = 0.0
    buckets: dict[float, float] = field(default_factory=dict)  # le -> cumulative count
    inflight: float = 0.0


@dataclass(frozen=True)
class Event:
    """Something that happened to a service, as the Events tab lists it (Kubernetes' event
    reasons where one fits)."""

    t: float
    reason: str
    message: str
    warning: bool = False


@dataclass(frozen=True)
class Sample:
    t: float
    rps: float | None  # None: the first reading, with nothing to compare it with
    errors_per_s: float | None
    p50_ms: float | None
    p99_ms: float | None
    replicas: int
    inflight: int


def parse(text: str) -> Totals:
    """The counters of one replica's /metrics page."""
    totals = Totals()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "modelport_requests_total":
                totals.requests += sample.value
                if not str(sample.labels.get("status", "200")).startswith("2"):
                    totals.errors += sample.value
            elif sample.name == "modelport_request_duration_seconds_bucket":
                le = float(sample.labels["le"])
                totals.buckets[le] = totals.buckets.get(le, 0.0) + sample.value
            elif sample.name == "modelport_inflight_requests":
                totals.inflight += sample.value
    return totals


def quantile(q: float, buckets: dict[float, float]) -> float | None:
    """The q-quantile in ms of a histogram's cumulative bucket counts, interpolated within
    the bucket as Prometheus's histogram_quantile does; None with no observations."""
    bounds = sorted(buckets)
    if not bounds or buckets[bounds[-1]] <= 0:
        return None
    target = q * buckets[bounds[-1]]
    lower, below = 0.0, 0.0
    for le in bounds:
        count = buckets[le]
        if count >= target:
            if math.isinf(le):
                return lower * 1000
            share = (target - below) / (count - below) if count > below else 1.0
            return (lower + (le - lower) * share) * 1000
        lower, below = le, count
    return lower * 1000


def _delta(now: Totals, before: Totals | None) -> Totals:
    """What one replica did since it was last read (a restarted replica starts at zero)."""
    if before is None or now.requests < before.requests:
        before = Totals()
    return Totals(
        now.requests - before.requests,
        now.errors - before.errors,
        {le: now.buckets[le] - before.buckets.get(le, 0.0) for le in now.buckets},
    )


class MetricsHistory:
    def __init__(self, controller: Controller) -> None:
        self.controller = controller
        self.samples: dict[Key, deque[Sample]] = {}
        self.asked: dict[Key, float] = {}
        self.last: dict[str, Totals] = {}  # replica address -> totals
        self.last_at: dict[Key, float] = {}
        # Seen while sampling: scale changes and revision messages (crashes, storage errors).
        self.events: dict[Key, deque[Event]] = {}
        self.messages: dict[tuple[Key, int], str] = {}
        self._task: asyncio.Task[None] | None = None

    def watch(self, key: Key) -> list[dict[str, float | int | None]]:
        """The samples so far; sampling of this service goes on for WATCH_S more seconds."""
        self.asked[key] = time.monotonic()
        self.samples.setdefault(key, deque(maxlen=SAMPLES))
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run())
        return [asdict(s) for s in self.samples[key]]

    async def _run(self) -> None:
        timeout = aiohttp.ClientTimeout(total=SCRAPE_TIMEOUT_S)
        async with aiohttp.ClientSession(timeout=timeout) as http:
            while self.asked:
                now = time.monotonic()
                for key, at in list(self.asked.items()):
                    if now - at > WATCH_S:
                        del self.asked[key]
                        self.samples.pop(key, None)
                        self.last_at.pop(key, None)
                        self.events.pop(key, None)
                        for seen in [m for m in self.messages if m[0] == key]:
                            del self.messages[seen]
                await asyncio.gather(*(self._sample(http, key) for key in list(self.asked)))
                await asyncio.sleep(INTERVAL_S)

    async def _sample(self, http: aiohttp.ClientSession, key: Key) -> None:
        svc = self.controller.lookup(*key)
        units = [u for r in (svc.revisions.values() if svc else ()) for u in r.ready_units()]
        inflight = sum(r.inflight for r in svc.revisions.values()) if svc else 0
        read = await asyncio.gather(*(self._scrape(http, u.predictor) for u in units))
        total = Totals()
        for replica, totals in zip((u.predictor for u in units), read, strict=True):
            if totals is None:
                continue
            step = _delta(totals, self.last.get(replica.address))
            self.last[replica.address] = totals
            total.requests += step.requests
            total.errors += step.errors
            for le, count in step.buckets.items():
                total.buckets[le] = total.buckets.get(le, 0.0) + count
        now = time.time()
        elapsed = now - self.last_at.get(key, now - INTERVAL_S)
        self.last_at[key] = now
        first = key not in self.samples or not self.samples[key]
        sample = Sample(
            t=round(now, 3),
            # The first reading has nothing to compare with: its counts are since start.
            rps=None if first else round(total.requests / max(elapsed, 1e-3), 3),
            errors_per_s=None if first else round(total.errors / max(elapsed, 1e-3), 3),
            p50_ms=None if first else quantile(0.5, total.buckets),
            p99_ms=None if first else quantile(0.99, total.buckets),
            replicas=len(units),
            inflight=inflight,
        )
        history = self.samples.setdefault(key, deque(maxlen=SAMPLES))
        if history and history[-1].replicas != sample.replicas:
            before, after = history[-1].replicas, sample.replicas
            reason = "ScaledUp" if after > before else "ScaledDown"
            self._event(key, Event(now, reason, f"Replicas: {before} → {after}."))
        history.append(sample)
        for number, revision in svc.revisions.items() if svc else ():
            seen = self.messages.get((key, number))
            if revision.message and revision.message != seen:
                warning = revision.failures > 0 or revision.state == "failed"
                reason = "ReplicaFailed" if warning else "Progress"
                self._event(
                    key, Event(now, reason, f"{revision.name}: {revision.message}", warning)
                )
            self.messages[(key, number)] = revision.message

    def _event(self, key: Key, event: Event) -> None:
        self.events.setdefault(key, deque(maxlen=SAMPLES)).append(event)

    def service_events(self, key: Key) -> list[dict[str, float | str | bool]]:
        """What the revisions say of themselves (created, ready or failed, and why), and what
        sampling saw since someone started watching; newest first. Watching starts or goes
        on as for ``watch``."""
        self.watch(key)
        found = list(self.events.get(key, ()))
        svc = self.controller.lookup(*key)
        for revision in svc.revisions.values() if svc else ():
            found.append(Event(revision.row.created_at, "RevisionCreated", f"{revision.name}"))
            if revision.state == "ready":
                found.append(Event(revision.changed_at, "RevisionReady", f"{revision.name}"))
            elif revision.state == "failed":
                text = f"{revision.name}: {revision.message or 'failed'}"
                found.append(Event(revision.changed_at, "RevisionFailed", text, True))
            if revision.failures:
                text = f"{revision.name}: {revision.failures} replica failure(s) in a row"
                found.append(Event(revision.changed_at, "BackOff", text, True))
        found.sort(key=lambda e: e.t, reverse=True)
        return [asdict(e) for e in found]

    async def _scrape(self, http: aiohttp.ClientSession, replica: object) -> Totals | None:
        address, secret = getattr(replica, "address", ""), getattr(replica, "key", "")
        headers = {REPLICA_KEY_HEADER.decode(): secret}
        with contextlib.suppress(aiohttp.ClientError, TimeoutError, ValueError):
            async with http.get(f"http://{address}/metrics", headers=headers) as response:
                if response.status == 200:
                    body = await response.content.read(MAX_METRICS_BYTES)
                    return parse(body.decode("utf-8", "replace"))
        return None
