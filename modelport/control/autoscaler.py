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
annotations and their ranges (pkg/apis/autoscaling/register.go and annotation_validation.go)
are read by ``scaling_annotations``.
An InferenceService's scaleMetric/scaleTarget/minReplicas/maxReplicas become those annotations
as kserve/kserve's pkg/controller/v1alpha1/utils/utils.go ``SetAutoScalingAnnotations`` does.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from modelport.control.scaling_annotations import (
    _ACTIVATION_SCALE,
    _MAX_SCALE,
    _METRIC,
    _MIN_SCALE,
    _PANIC_THRESHOLD,
    _PANIC_WINDOW,
    _RETENTION,
    _SCALE_DOWN_DELAY,
    _TARGET,
    _UTILIZATION,
    _WINDOW,
    _duration,
    _float,
    _get,
    _int,
)
from modelport.control.scaling_annotations import (
    parse_duration as parse_duration,  # re-exported: callers import it from here
)
from modelport.control.scaling_buckets import BUCKET_S, _Buckets

# autoscaling.TargetMin, WindowMin, WindowMax and the percentage ranges (register.go).
TARGET_MIN = 0.01
WINDOW_MIN_S = 6.0
WINDOW_MAX_S = 3600.0
PANIC_WINDOW_PCT_MIN, PANIC_WINDOW_PCT_MAX = 1.0, 100.0
PANIC_THRESHOLD_PCT_MIN, PANIC_THRESHOLD_PCT_MAX = 110.0, 1000.0
# config-autoscaler defaults: container-concurrency-target-default "100",
# requests-per-second-target-default "200", container-concurrency-target-percentage "70".
CONCURRENCY_TARGET_DEFAULT = 100.0
RPS_TARGET_DEFAULT = 200.0
METRICS = ("concurrency", "rps")

_NO_ANNOTATIONS: Mapping[str, str] = MappingProxyType({})


@dataclass
class ScalingPolicy:
    """How one revision scales; field defaults are Knative's config-autoscaler defaults."""

    metric: str = "concurrency"  # or "rps"
    # Per replica, before target_utilization (Knative's "total"): scaleTarget, else
    # containerConcurrency, else container-concurrency-target-default / rps default.
    target: float = CONCURRENCY_TARGET_DEFAULT
    # container-concurrency-target-percentage "70"; Knative applies its rps twin (also 0.7,
    # TargetUtilization) to the rps target as well (ResolveMetricTarget).
    target_utilization: float = 0.7
    min_replicas: int = 1  # KServe's DefaultMinReplicas
    max_replicas: int = 0  # 0 = unbounded
    stable_window_s: float = 60.0  # stable-window "60s"
    panic_window_pct: float = 10.0  # panic-window-percentage "10.0"
    panic_threshold_pct: float = 200.0  # panic-threshold-percentage "200.0"
    max_scale_up_rate: float = 1000.0  # max-scale-up-rate "1000.0"
    max_scale_down_rate: float = 2.0  # max-scale-down-rate "2.0"
    scale_to_zero_grace_s: float = 30.0  # scale-to-zero-grace-period "30s"
    scale_to_zero_retention_s: float = 0.0  # scale-to-zero-pod-retention-period "0s"
    scale_down_delay_s: float = 0.0  # scale-down-delay "0s"
    activation_scale: int = 1  # activation-scale annotation; only values >= 2 act

    @property
    def target_value(self) -> float:
        """The metric value one replica should carry: ``max(0.01, target * utilization)``."""
        return max(TARGET_MIN, self.target * self.target_utilization)

    @property
    def panic_window_s(self) -> float:
        """Stable window times the percentage, rounded to whole seconds, at least one bucket
        (MakeMetric in pkg/reconciler/autoscaling/resources/metric.go)."""
        return max(
            BUCKET_S, float(math.floor(self.stable_window_s * self.panic_window_pct / 100 + 0.5))
        )

    @classmethod
    def from_spec(
        cls,
        scale_metric: str | None,
        scale_target: int | None,
        container_concurrency: int,
        min_replicas: int,
        max_replicas: int,
        annotations: Mapping[str, str] = _NO_ANNOTATIONS,
    ) -> ScalingPolicy:
        """The policy for an InferenceService component; raises ValueError naming a bad field.

        Spec fields win over the annotations they map to, as in KServe: scaleMetric and
        scaleTarget when set, minReplicas always (so a ``min-scale`` annotation never acts),
        maxReplicas when not 0. The remaining Knative annotations are read and validated as
        Knative's webhook does. KServe's own ``serving.kserve.io/metrics`` and
        ``serving.kserve.io/targetUtilizationPercentage`` are declared in its constants.go but
        read by no current KServe code, so they are not read here either.
        """
        _check_fields(scale_metric, scale_target, container_concurrency, min_replicas, max_replicas)
        ann = dict(annotations)
        # SetAutoScalingAnnotations writes these keys before Knative reads them.
        if scale_target is not None:
            ann[_TARGET[0]] = str(scale_target)
        if scale_metric:
            ann[_METRIC[0]] = scale_metric
        ann[_MIN_SCALE[0]] = str(min_replicas)
        if max_replicas:
            ann[_MAX_SCALE[0]] = str(max_replicas)
        metric, total = _metric_target(ann, container_concurrency)
        low, high, activation = _scale_bounds(ann)
        policy = cls(
            metric=metric,
            target=total,
            min_replicas=low,
            max_replicas=high,
            activation_scale=activation or 1,
        )
        _read_windows(policy, ann)
        return policy


def _check_fields(
    scale_metric: str | None,
    scale_target: int | None,
    container_concurrency: int,
    min_replicas: int,
    max_replicas: int,
) -> None:
    """The spec fields' own bounds (KServe's validation), ValueError naming the field."""
    if container_concurrency < 0:
        raise ValueError(f"containerConcurrency must be at least 0, was {container_concurrency}")
    if min_replicas < 0:
        raise ValueError(f"minReplicas must be at least 0, was {min_replicas}")
    if max_replicas < 0:
        raise ValueError(f"maxReplicas must be at least 0, was {max_replicas}")
    if max_replicas and min_replicas > max_replicas:
        raise ValueError(
            f"minReplicas ({min_replicas}) cannot be greater than maxReplicas ({max_replicas})"
        )
    if scale_metric and scale_metric not in METRICS:
        raise ValueError(
            f"scaleMetric {scale_metric!r} is not supported: the autoscaler (Knative KPA) "
            "scales on 'concurrency' or 'rps'"
        )
    if scale_target is not None and scale_target < TARGET_MIN:
        raise ValueError(f"scaleTarget must be at least 1, was {scale_target}")


def _metric_target(ann: dict[str, str], container_concurrency: int) -> tuple[str, float]:
    """The metric and the per-replica target, as Knative's ResolveMetricTarget (target.go)."""
    metric = "concurrency"
    if (found := _get(ann, _METRIC)) is not None:
        key, metric = found
        if metric not in METRICS:
            raise ValueError(f"{key}: {metric!r} is not one of 'concurrency', 'rps'")
    if metric == "rps":
        total = RPS_TARGET_DEFAULT
    else:
        total = float(container_concurrency or CONCURRENCY_TARGET_DEFAULT)
    wanted = _float(ann, _TARGET, low=TARGET_MIN)
    if wanted is not None:
        total = wanted
        if metric == "concurrency" and container_concurrency:
            # Never aim above what one replica accepts.
            total = min(wanted, float(container_concurrency))
    return metric, total


def _scale_bounds(ann: dict[str, str]) -> tuple[int, int, int | None]:
    """min-scale, max-scale (0: none) and activation-scale, checked against each other."""
    low = _int(ann, _MIN_SCALE) or 0
    high = _int(ann, _MAX_SCALE) or 0
    if high and high < low:
        raise ValueError(f"{_MAX_SCALE[0]}={high} is less than {_MIN_SCALE[0]}={low}")
    activation = _int(ann, _ACTIVATION_SCALE)
    if activation is not None:
        if activation < 2:
            raise ValueError(f"{_ACTIVATION_SCALE[0]}={activation} must be greater than 1")
        if activation < low:
            raise ValueError(f"{_MIN_SCALE[0]}={low} is greater than activation-scale")
        if high and activation > high:
            raise ValueError(f"{_MAX_SCALE[0]}={high} is less than activation-scale")
    return low, high, activation


def _read_windows(policy: ScalingPolicy, ann: dict[str, str]) -> None:
    """Utilization, the stable and panic windows, retention and scale-down delay."""
    utilization = _float(ann, _UTILIZATION, low=1.0, high=100.0)
    if utilization is not None:
        policy.target_utilization = utilization / 100
    window = _duration(ann, _WINDOW, low=WINDOW_MIN_S, high=WINDOW_MAX_S, whole=True)
    if window is not None:
        policy.stable_window_s = window
    pct = _float(ann, _PANIC_WINDOW, low=PANIC_WINDOW_PCT_MIN, high=PANIC_WINDOW_PCT_MAX)
    if pct is not None:
        policy.panic_window_pct = pct
    threshold = _float(
        ann, _PANIC_THRESHOLD, low=PANIC_THRESHOLD_PCT_MIN, high=PANIC_THRESHOLD_PCT_MAX
    )
    if threshold is not None:
        policy.panic_threshold_pct = threshold
    retention = _duration(ann, _RETENTION, low=0.0, high=WINDOW_MAX_S)
    if retention is not None:
        policy.scale_to_zero_retention_s = retention
    delay = _duration(ann, _SCALE_DOWN_DELAY, low=0.0, high=WINDOW_MAX_S, whole=True)
    if delay is not None:
        policy.scale_down_delay_s = delay


class Autoscaler:
    """One revision's KPA decider: feed it the metric with ``record``, ask ``desired``."""

    def __init__(self, policy: ScalingPolicy) -> None:
        _check(policy)
        self._policy = policy
        self._metric = policy.metric
        self._stable = _Buckets(policy.stable_window_s)
        self._panic = _Buckets(policy.panic_window_s)
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
        _check(policy)
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
            self._stable = _Buckets(p.stable_window_s)
            self._panic = _Buckets(p.panic_window_s)
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


def _check(p: ScalingPolicy) -> None:
    """Reject policies the decision cannot work with (ranges from config.go validate)."""
    problems = []
    if p.metric not in METRICS:
        problems.append(f"metric {p.metric!r} is not one of 'concurrency', 'rps'")
    if not p.target > 0:
        problems.append(f"target must be > 0, was {p.target}")
    if not 0 < p.target_utilization <= 1:
        problems.append(f"target_utilization must be in (0, 1], was {p.target_utilization}")
    if p.min_replicas < 0 or p.max_replicas < 0:
        problems.append("min_replicas and max_replicas must be >= 0")
    if p.max_replicas and p.min_replicas > p.max_replicas:
        problems.append(f"min_replicas {p.min_replicas} > max_replicas {p.max_replicas}")
    if not p.stable_window_s > 0:
        problems.append(f"stable_window_s must be > 0, was {p.stable_window_s}")
    if not 0 < p.panic_window_pct <= 100:
        problems.append(f"panic_window_pct must be in (0, 100], was {p.panic_window_pct}")
    if not p.panic_threshold_pct > 0:
        problems.append(f"panic_threshold_pct must be > 0, was {p.panic_threshold_pct}")
    if not p.max_scale_up_rate > 1 or not p.max_scale_down_rate > 1:
        problems.append("max_scale_up_rate and max_scale_down_rate must be > 1")
    if p.scale_to_zero_grace_s < 0 or p.scale_to_zero_retention_s < 0:
        problems.append("scale-to-zero grace and retention must be >= 0")
    if p.scale_down_delay_s < 0:
        problems.append(f"scale_down_delay_s must be >= 0, was {p.scale_down_delay_s}")
    if problems:
        raise ValueError("invalid scaling policy: " + "; ".join(problems))
