"""Per-client-address throttling of failed logins, on top of the per-account lockout.

Lockout stops guessing one account's password; this stops one address from spraying
guesses over many accounts. Only failures count, so a busy but honest address (a NAT, a
load test of good logins) is never slowed down.
"""

from __future__ import annotations

from cachetools import TTLCache

from modelport.identity.clock import SYSTEM_CLOCK, Clock


class FailureThrottle:
    """After ``max_failures`` failed logins from an address, refuse it until ``window_s``
    pass without another failure."""

    def __init__(
        self, max_failures: int = 20, window_s: float = 300.0, *, clock: Clock = SYSTEM_CLOCK
    ) -> None:
        self.max_failures = max_failures
        self.window_s = window_s
        self._counts: TTLCache[str, int] = TTLCache(
            maxsize=65536, ttl=window_s, timer=clock.monotonic
        )

    def blocked(self, address: str) -> bool:
        """Whether this address is refused now."""
        return self._counts.get(address, 0) >= self.max_failures

    def failed(self, address: str) -> None:
        """Count one failed login from this address (each failure restarts its window)."""
        self._counts[address] = self._counts.get(address, 0) + 1
