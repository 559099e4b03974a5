"""Where the identity provider and the gateway read the time.

Expiry (tokens, codes, sessions, pending logins, API tokens), lockout and throttling, key
rotation and the gateway's decision cache all ask a ``Clock``. Production uses
``SYSTEM_CLOCK``; tests pass a ``ManualClock`` and move it forward, so that "five minutes
later" costs no five minutes and no test sleeps in place of the time it means.
"""

from __future__ import annotations

import threading
import time
from typing import Protocol


class Clock(Protocol):
    """The two times the planes above read."""

    def time(self) -> float:
        """Wall-clock seconds since the epoch: what is stored and put in tokens."""
        ...

    def monotonic(self) -> float:
        """Seconds that never go back: for in-memory deadlines (caches, throttles)."""
        ...


class SystemClock:
    """The real time."""

    def time(self) -> float:
        """``time.time()``."""
        return time.time()

    def monotonic(self) -> float:
        """``time.monotonic()``."""
        return time.monotonic()


SYSTEM_CLOCK: Clock = SystemClock()


class ManualClock:
    """A clock that moves only when told to, for tests and simulations.

    Both readings move together; ``monotonic`` starts at 0, ``time`` at ``start``
    (a fixed, realistic epoch time: 2023-11-14, so stored times look like real ones).
    """

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self._start = start
        self._elapsed = 0.0
        # Providers read the clock from their threadpool and hashing threads.
        self._lock = threading.Lock()

    def time(self) -> float:
        """The start time plus everything advanced so far."""
        with self._lock:
            return self._start + self._elapsed

    def monotonic(self) -> float:
        """Everything advanced so far."""
        with self._lock:
            return self._elapsed

    def advance(self, seconds: float) -> None:
        """Move the clock forward (never back: monotonic readings must not decrease)."""
        if seconds < 0:
            raise ValueError(f"a clock cannot go back ({seconds} s)")
        with self._lock:
            self._elapsed += seconds
