"""The autoscaler's metric history: Knative's TimedFloat64Buckets (knative/serving at 98e5ef9,
pkg/autoscaler/aggregation/bucketing.go), the metric kept in 1 s buckets and averaged linearly
over the stable and the panic window."""

from __future__ import annotations

import math

# config.BucketSize: "the size of the buckets of stats we create".
BUCKET_S = 1.0


class Buckets:
    """Knative's TimedFloat64Buckets: the metric in 1 s buckets, averaged linearly.

    Two departures, because Knative records exactly one scrape per second and callers here
    need not: several records in one bucket are averaged (Knative adds them up), and buckets
    skipped between two records take the later record's value (Knative leaves them 0), since
    each record describes the time since the one before.
    """

    def __init__(self, window_s: float) -> None:
        self.window_s = window_s
        self._n = max(1, math.ceil(window_s / BUCKET_S))
        self._index: list[int | None] = [None] * self._n
        self._sum = [0.0] * self._n
        self._count = [0] * self._n
        self._first: int | None = None
        self._last: int | None = None

    def record(self, now: float, value: float) -> None:
        b = math.floor(now / BUCKET_S)
        last = self._last
        if last is None or b - last >= self._n:
            # Nothing for a whole window: start over with a partial window (as Knative).
            self._index = [None] * self._n
            self._first = self._last = b
        elif b > last:
            for skipped in range(last + 1, b):
                self._put(skipped, value)
            self._last = b
        elif b <= last - self._n:
            return  # older than the window
        elif self._first is not None and b < self._first:
            self._first = b
        self._put(b, value)

    def _put(self, b: int, value: float) -> None:
        slot = b % self._n
        if self._index[slot] != b:
            self._index[slot] = b
            self._sum[slot] = 0.0
            self._count[slot] = 0
        self._sum[slot] += value
        self._count[slot] += 1

    def is_empty(self, now: float) -> bool:
        """No record for more than a window (Knative's IsEmpty)."""
        return self._last is None or math.floor(now / BUCKET_S) - self._last > self._n

    def average(self, now: float) -> float:
        """Mean over the buckets written within the window ending now (Knative's WindowAverage)."""
        if self._last is None or self._first is None:
            return 0.0
        end = self._last
        current = max(math.floor(now / BUCKET_S), end)
        if current - end >= self._n:
            return 0.0
        start = max(self._first, current - self._n + 1)
        total = 0.0
        for b in range(start, end + 1):
            slot = b % self._n
            if self._index[slot] == b:
                total += self._sum[slot] / self._count[slot]
        # Knative rounds to 6 digits (roundToNDigits) so float noise does not add a replica.
        return round(total / (end - start + 1), 6)

    def resized(self, window_s: float) -> Buckets:
        """The same history in a window of another length (Knative's ResizeWindow)."""
        out = Buckets(window_s)
        if self._last is None or self._first is None:
            return out
        start = max(self._first, self._last - min(self._n, out._n) + 1)
        for b in range(start, self._last + 1):
            slot = b % self._n
            if self._index[slot] == b:
                new = b % out._n
                out._index[new] = b
                out._sum[new] = self._sum[slot]
                out._count[new] = self._count[slot]
        out._first, out._last = start, self._last
        return out
