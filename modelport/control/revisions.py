"""What the controller knows about running services while the platform runs: each
service's revisions and traffic split, each revision's replica units and load figures.
The gateway reads these to route (``pick``) and to count load (``begin``/``end``)."""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass, field
from pathlib import Path

from modelport.control.autoscaler import Autoscaler
from modelport.control.backends.process import Replica
from modelport.control.spec import InferenceService
from modelport.control.storage import ModelLease
from modelport.control.store import Revision


@dataclass
class Unit:
    """One replica of a revision: a predictor process and, if the service has them, the
    transformer process in front of it and the explainer process beside it (which answers
    ``:explain`` and calls this unit's predictor)."""

    predictor: Replica
    transformer: Replica | None = None
    explainer: Replica | None = None
    slot: int = 0
    ready_at: float = 0.0
    # Set while the controller re-checks a replica that refused a connection.
    probing: bool = False

    @property
    def entry(self) -> Replica:
        return self.transformer or self.predictor

    @property
    def ready(self) -> bool:
        return self.entry.ready and all(r.returncode is None for r in self.replicas)

    @property
    def replicas(self) -> list[Replica]:
        return [r for r in (self.predictor, self.transformer, self.explainer) if r is not None]


@dataclass
class RevisionState:
    """What the controller knows about one revision while the platform runs."""

    row: Revision
    isvc: InferenceService
    autoscaler: Autoscaler
    units: list[Unit] = field(default_factory=list)
    starting: int = 0
    predictor_path: Path | None = None
    transformer_path: Path | None = None
    explainer_path: Path | None = None
    # Hold the paths above in the model cache, which prunes only what no lease holds.
    model_leases: list[ModelLease] = field(default_factory=list)
    fetching: bool = False
    failures: int = 0
    backoff_until: float = 0.0
    # More replicas wanted than run or start (a backoff or a quota holds them back).
    shortfall: bool = False
    message: str = ""
    # Requests in flight through the gateway, and a time-weighted sum of it for the
    # autoscaler (average concurrency over each tick, as Knative's queue-proxy reports).
    inflight: int = 0
    arrivals: int = 0
    _area: float = 0.0
    _since: float = field(default_factory=time.monotonic)
    _window_start: float = field(default_factory=time.monotonic)
    ready_event: asyncio.Event = field(default_factory=asyncio.Event)
    slots: set[int] = field(default_factory=set)  # log-file slots of units and starts
    # Starts under way: cancelled when the revision ends (a replica waiting for a node on a
    # cluster would otherwise wait for ever).
    start_tasks: set[asyncio.Task[None]] = field(default_factory=set)
    # Wall-clock time of the last state change (status' lastTransitionTime).
    changed_at: float = field(default_factory=time.time)
    _next: int = 0

    def cancel_starts(self) -> None:
        for task in list(self.start_tasks):
            task.cancel()

    def release_models(self) -> None:
        """Let the cache prune this revision's models; were it routed to again, it fetches
        them anew (and finds them cached unless they were pruned)."""
        for lease in self.model_leases:
            lease.release()
        self.model_leases.clear()
        self.predictor_path = self.transformer_path = self.explainer_path = None

    def take_slot(self) -> int:
        slot = next(i for i in range(len(self.slots) + 1) if i not in self.slots)
        self.slots.add(slot)
        return slot

    @property
    def name(self) -> str:
        # Knative's revision names: NAME-predictor-00001.
        return f"{self.row.service}-predictor-{self.row.number:05d}"

    @property
    def state(self) -> str:
        return self.row.state

    def ready_units(self) -> list[Unit]:
        return [u for u in self.units if u.ready]

    def pick(self) -> Unit | None:
        """Round robin over ready units."""
        ready = self.ready_units()
        if not ready:
            return None
        self._next = (self._next + 1) % len(ready)
        return ready[self._next]

    def begin(self) -> None:
        self._account()
        self.inflight += 1
        self.arrivals += 1

    def end(self) -> None:
        self._account()
        self.inflight -= 1

    def _account(self) -> None:
        now = time.monotonic()
        self._area += self.inflight * (now - self._since)
        self._since = now

    def observe(self, now: float) -> float:
        """The metric for the window since the last call (concurrency or rps)."""
        self._account()
        elapsed = max(now - self._window_start, 1e-3)
        if self.autoscaler.policy.metric == "rps":
            value = self.arrivals / elapsed
        else:
            # Never below what is in flight right now: a request waiting on a cold start
            # must count even if it arrived just before this sample.
            value = max(self._area / elapsed, float(self.inflight))
        self._area = 0.0
        self.arrivals = 0
        self._window_start = now
        return value


@dataclass
class ServiceState:
    """A service's revisions and its current traffic split."""

    namespace: str
    name: str
    isvc: InferenceService | None = None
    generation: int = 0
    # The generation the controller has fully reconciled (its revision made, or its error
    # recorded): status.observedGeneration. It trails ``generation`` while a changed spec's
    # revision is being made, so the status never claims a spec the picture does not show.
    observed_generation: int = 0
    key: str = ""  # the spec's revision key, computed when the spec is read
    error: str = ""
    revisions: dict[int, RevisionState] = field(default_factory=dict)
    traffic: list[tuple[int, int]] = field(default_factory=list)  # (revision number, percent)
    created_at: float = 0.0

    def revision(self, number: int) -> RevisionState | None:
        return self.revisions.get(number)

    def desired_traffic(
        self, latest: RevisionState, canary_percent: int | None
    ) -> list[tuple[int, int]]:
        """KServe's rollout rules as (revision number, percent): a ready latest revision
        takes canaryTrafficPercent (or all) of the traffic, the rest stays on the revision
        that served all of it before (the baseline); while the latest revision is not ready,
        or if it failed, traffic stays on the baseline."""
        baseline = self.revisions.get(latest.row.previous) if latest.row.previous else None
        if baseline is not None and baseline.row.state != "ready":
            baseline = None
        number = latest.row.number
        if latest.row.state == "ready":
            if baseline is not None and canary_percent is not None and canary_percent < 100:
                split = [(number, canary_percent), (baseline.row.number, 100 - canary_percent)]
                return [t for t in split if t[1] > 0] or [(number, 0)]
            return [(number, 100)]
        return [(baseline.row.number if baseline is not None else number, 100)]

    def pick(self) -> RevisionState | None:
        """A revision for one request, by the traffic split."""
        if not self.traffic:
            return None
        if len(self.traffic) == 1:
            return self.revisions.get(self.traffic[0][0])
        roll = random.random() * 100
        for number, percent in self.traffic:
            roll -= percent
            if roll < 0:
                return self.revisions.get(number)
        return self.revisions.get(self.traffic[-1][0])
