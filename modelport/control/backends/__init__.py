"""Where replicas run: local processes (plain, or forked from a pre-warmed zygote), or Ray
actors across a cluster. The controller sees only the :class:`Backend` protocol."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from modelport.control.backends.process import Replica, ReplicaSpec


class Backend(Protocol):
    """Starts replicas; the controller supervises them through the Replica it gets back."""

    name: str
    # Whether replicas outlive the platform (and are adopted by its next start) instead of
    # being stopped with it.
    keeps_replicas: bool
    # Whether it chooses among nodes (resources.requests, GPUs and nodeSelector act on
    # placement); a one-machine backend reports those fields as not acted on.
    places_replicas: bool

    async def open(self) -> None:
        """Get ready to start replicas (a zygote, a cluster connection); never raises for a
        part it can do without, it reports that and carries on."""

    async def start(self, spec: ReplicaSpec) -> Replica:
        """Start one replica; OSError/RuntimeError/TimeoutError when it cannot."""

    async def close(self) -> None:
        """Release what ``open`` took. Replicas are stopped by the controller before."""
