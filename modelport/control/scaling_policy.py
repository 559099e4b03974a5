"""How one revision scales: ``ScalingPolicy``, read from a component's fields and Knative's
autoscaling annotations (``autoscaling.knative.dev/...``) as Knative's webhook reads them.

Ported from knative/serving at 98e5ef9 (2026-08): pkg/apis/autoscaling/register.go gives the
keys, with their legacy camelCase aliases, and annotation_validation.go how values parse and
which are refused; durations are Go's (time.ParseDuration). A value that does not parse or is
out of range is a ValueError naming its key. Defaults are config/core/configmaps/autoscaler.yaml's;
per-replica targets and the panic window follow pkg/reconciler/autoscaling/resources/target.go
and metric.go. An InferenceService's scaleMetric/scaleTarget/minReplicas/maxReplicas become those
annotations as kserve/kserve's pkg/controller/v1alpha1/utils/utils.go
``SetAutoScalingAnnotations`` does.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from modelport.control.scaling_buckets import BUCKET_S

_KNATIVE = "autoscaling.knative.dev/"
# kmap.KeyPriority lists (register.go): the first key present wins; the camelCase spellings
# are Knative's legacy aliases.
_METRIC = (_KNATIVE + "metric",)
_TARGET = (_KNATIVE + "target",)
_WINDOW = (_KNATIVE + "window",)
_UTILIZATION = (
    _KNATIVE + "target-utilization-percentage",
    _KNATIVE + "targetUtilizationPercentage",
)
_PANIC_WINDOW = (_KNATIVE + "panic-window-percentage", _KNATIVE + "panicWindowPercentage")
_PANIC_THRESHOLD = (
    _KNATIVE + "panic-threshold-percentage",
    _KNATIVE + "panicThresholdPercentage",
)
_MIN_SCALE = (_KNATIVE + "min-scale", _KNATIVE + "minScale")
_MAX_SCALE = (_KNATIVE + "max-scale", _KNATIVE + "maxScale")
_RETENTION = (
    _KNATIVE + "scale-to-zero-pod-retention-period",
    _KNATIVE + "scaleToZeroPodRetentionPeriod",
)
_SCALE_DOWN_DELAY = (_KNATIVE + "scale-down-delay", _KNATIVE + "scaleDownDelay")
_ACTIVATION_SCALE = (_KNATIVE + "activation-scale",)


def _get(ann: Mapping[str, str], keys: tuple[str, ...]) -> tuple[str, str] | None:
    for key in keys:
        if key in ann:
            return key, ann[key]
    return None


def _float(
    ann: Mapping[str, str], keys: tuple[str, ...], *, low: float, high: float | None = None
) -> float | None:
    if (found := _get(ann, keys)) is None:
        return None
    key, text = found
    try:
        value = float(text.strip())
    except ValueError:
        raise ValueError(f"{key}: {text!r} is not a number") from None
    if not math.isfinite(value) or value < low or (high is not None and value > high):
        bound = f"between {low:g} and {high:g}" if high is not None else f"at least {low:g}"
        raise ValueError(f"{key}: {text!r} must be {bound}")
    return value


_INT = re.compile(r"[+-]?[0-9]+")


def _int(ann: Mapping[str, str], keys: tuple[str, ...]) -> int | None:
    if (found := _get(ann, keys)) is None:
        return None
    key, text = found
    if not _INT.fullmatch(text):
        raise ValueError(f"{key}: {text!r} is not an integer")
    value = int(text)
    if not 0 <= value <= 2**31 - 1:
        raise ValueError(f"{key}: {text!r} must be between 0 and 2147483647")
    return value


# Go's time.ParseDuration units.
_UNITS = {
    "ns": 1e-9,
    "us": 1e-6,
    "µs": 1e-6,
    "μs": 1e-6,
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
}
_DURATION_PART = re.compile(r"([0-9]+\.?[0-9]*|\.[0-9]+)(ns|us|µs|μs|ms|s|m|h)")


def parse_duration(text: str) -> float:
    """Seconds in a Go duration such as ``"60s"``, ``"1m30s"`` or ``"1.5h"``; else ValueError."""
    s = text.strip()
    sign = -1.0 if s.startswith("-") else 1.0
    s = s[1:] if s[:1] in "+-" else s
    if s == "0":
        return 0.0
    if not s:
        raise ValueError(f"invalid duration {text!r}")
    pos, total = 0, 0.0
    while pos < len(s):
        m = _DURATION_PART.match(s, pos)
        if m is None:
            raise ValueError(f"invalid duration {text!r}")
        total += float(m[1]) * _UNITS[m[2]]
        pos = m.end()
    return sign * total


def _duration(
    ann: Mapping[str, str],
    keys: tuple[str, ...],
    *,
    low: float,
    high: float,
    whole: bool = False,
) -> float | None:
    if (found := _get(ann, keys)) is None:
        return None
    key, text = found
    try:
        value = parse_duration(text)
    except ValueError:
        raise ValueError(f"{key}: {text!r} is not a duration such as '60s' or '2m'") from None
    if not low <= value <= high:
        raise ValueError(f"{key}: {text!r} must be between {low:g}s and {high:g}s")
    if whole and value != int(value):
        raise ValueError(f"{key}: {text!r} must be a whole number of seconds")
    return value


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


def check_policy(p: ScalingPolicy) -> None:
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
