"""Knative's KPA autoscaler (class ``kpa.autoscaling.knative.dev``) as pure logic on a given clock.

Ported from knative/serving at 98e5ef9 (2026-08); paths below are in that repository:
- pkg/autoscaler/scaling/autoscaler.go: the decision (stable and panic pod counts, scale-up and
  scale-down rate limits, activation scale, entering/extending/leaving panic mode).
- pkg/reconciler/autoscaling/kpa/scaler.go: min/max bounds (``applyBounds``) and when the last
  replica may go (``handleScaleToZero``).
- pkg/reconciler/autoscaling/resources/target.go and metric.go: the per-replica target and the
  panic window.
- pkg/autoscaler/config/config.go and config/core/configmaps/autoscaler.yaml: defaults.
The metric history (pkg/autoscaler/aggregation/bucketing.go) is in ``scaling_buckets``; the
policy, read from the spec and its annotations, in ``scaling_policy``.
"""

from __future__ import annotations

import math
from collections import deque

from modelport.control.scaling_buckets import Buckets
from modelport.control.scaling_policy import ScalingPolicy, check_policy


class Autoscaler:
    """One revision's KPA decider: feed it the metric with ``record``, ask ``desired``."""

    def __init__(self, policy: ScalingPolicy) -> None:
        check_policy(policy)
        self._policy = policy
        self._metric = policy.metric
        self._stable = Buckets(policy.stable_window_s)
        self._panic = Buckets(policy.panic_window_s)
        # Knative's panicTime: the last time the panic threshold was crossed; None = stable mode.
        self._panic_since: float | None = None
        self._max_panic_pods = 0
        self._started = False
        self._first_record: float | None = None
        self._last_nonzero: float | None = None
        self._delay: deque[tuple[float, int]] = deque()

    @property
    def policy(self) -> ScalingPolicy:
        """The policy in force."""
        return self._policy

    @property
    def in_panic(self) -> bool:
        """True while in panic mode (never scales down)."""
        return self._panic_since is not None

    def set_policy(self, policy: ScalingPolicy) -> None:
        """Apply a changed policy, keeping the metric history (Knative's Update/ResizeWindow)."""
        check_policy(policy)
        self._policy = policy
        self._sync()

    def record(self, now: float, value: float) -> None:
        """One observation of the revision's metric at time ``now`` (seconds, any epoch).

        For ``concurrency``: requests in flight to the whole revision (all replicas), sampled
        or, better, averaged over the time since the previous record, as Knative's
        queue-proxy reports it. For ``rps``: requests that arrived since the previous record
        divided by the seconds elapsed. Record about once a second; records in one second are
        averaged and a gap shorter than the window is filled with the next value.
        """
        if value < 0 or math.isnan(value):
            raise ValueError(f"metric value must be a number >= 0, was {value}")
        self._sync()
        self._stable.record(now, value)
        self._panic.record(now, value)
        if self._first_record is None:
            self._first_record = now
        if value > 0:
            self._last_nonzero = now

    def observed(self, now: float) -> tuple[float, float]:
        """The stable-window and panic-window averages of the metric at ``now``."""
        self._sync()
        return self._stable.average(now), self._panic.average(now)

    def desired(self, now: float, ready_replicas: int) -> int:
        """Replicas the revision should have at ``now``, given how many are ready.

        Without a record in the last stable window there is nothing to decide on (Knative's
        ErrNoData): the answer is the ready count within min/max.
        """
        if ready_replicas < 0:
            raise ValueError(f"ready_replicas must be at least 0, was {ready_replicas}")
        p = self._policy
        self._sync()
        if not self._started:
            # newAutoscaler: a decider that starts over more than one ready replica starts in
            # panic mode, so lost history cannot scale the revision down.
            self._started = True
            if ready_replicas > 1:
                self._panic_since = now
                self._max_panic_pods = ready_replicas
        if self._stable.is_empty(now):
            return _bounds(p, ready_replicas)

        stable, panic = self.observed(now)
        ready = float(max(1, ready_replicas))  # "Use 1 if there are zero current pods."
        max_up = math.ceil(p.max_scale_up_rate * ready)
        max_down = math.floor(ready / p.max_scale_down_rate)
        stable_pods = _ceil(stable / p.target_value)
        panic_pods = _ceil(panic / p.target_value)
        want_stable = min(max(stable_pods, max_down), max_up)
        want_panic = min(max(panic_pods, max_down), max_up)
        if p.activation_scale > 1:
            if stable_pods > 0:
                want_stable = max(want_stable, p.activation_scale)
            if panic_pods > 0:
                want_panic = max(want_panic, p.activation_scale)

        if panic_pods / ready >= p.panic_threshold_pct / 100:
            # Enter panic, or extend it while the panic window stays over the threshold.
            self._panic_since = now
        elif self._panic_since is not None and now > self._panic_since + p.stable_window_s:
            # Leave once the surge has been in the stable window for a whole window.
            self._panic_since = None
            self._max_panic_pods = 0

        want = want_stable
        if self._panic_since is not None:
            # Provision for the larger of the two and never scale down while panicking.
            want = max(want, want_panic)
            self._max_panic_pods = max(self._max_panic_pods, want)
            want = self._max_panic_pods

        if p.scale_down_delay_s > 0:
            # The highest decision within the delay (Knative's max.TimeWindow).
            self._delay.append((now, want))
            while self._delay and self._delay[0][0] <= now - p.scale_down_delay_s:
                self._delay.popleft()
            want = max(v for _, v in self._delay)
        else:
            self._delay.clear()

        want = _bounds(p, want)
        if want == 0 and ready_replicas > 0:
            # handleScaleToZero: the revision goes inactive after a stable window without
            # traffic, and its last replica stays max(grace period, pod retention) longer.
            since = self._last_nonzero if self._last_nonzero is not None else self._first_record
            hold = p.stable_window_s + max(p.scale_to_zero_grace_s, p.scale_to_zero_retention_s)
            if since is not None and now - since < hold:
                return 1
        return want

    def _sync(self) -> None:
        """Follow changes to the policy's metric and windows, even if made in place."""
        p = self._policy
        if p.metric != self._metric:
            # The history is of the other metric: start over.
            self._metric = p.metric
            self._stable = Buckets(p.stable_window_s)
            self._panic = Buckets(p.panic_window_s)
            return
        if self._stable.window_s != p.stable_window_s:
            self._stable = self._stable.resized(p.stable_window_s)
        if self._panic.window_s != p.panic_window_s:
            self._panic = self._panic.resized(p.panic_window_s)


def _ceil(x: float) -> int:
    # 21 / (3 * 0.7) is 10.000000000000002 in floating point; that must not make 11 replicas.
    return math.ceil(x - 1e-9)


def _bounds(p: ScalingPolicy, x: int) -> int:
    """applyBounds (scaler.go): max_replicas 0 means no upper bound."""
    if x < p.min_replicas:
        return p.min_replicas
    if p.max_replicas and x > p.max_replicas:
        return p.max_replicas
    return x
