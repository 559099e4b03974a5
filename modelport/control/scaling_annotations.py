"""Knative's autoscaling annotations (``autoscaling.knative.dev/...``), read as its webhook does.

Ported from knative/serving at 98e5ef9 (2026-08): pkg/apis/autoscaling/register.go gives the
keys, with their legacy camelCase aliases, and annotation_validation.go how values parse and
which are refused; durations are Go's (time.ParseDuration). A value that does not parse or is
out of range is a ValueError naming its key.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping

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
