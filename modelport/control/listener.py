"""Where this process listens for HTTP, as the CLI bound it (``cli/identity.listen``).

An instance on a shared database publishes that address so that the others can forward
control-plane requests to it while it leads (``leader_forward.py``). The CLI binds the socket
before it builds the platform; recording it here keeps the platform's constructor unaware
of how the socket came to be (tests pass ``listen_address`` to ``build_platform`` instead).
"""

from __future__ import annotations

import socket

_bound: list[str] = []

# Addresses that name every interface: a peer cannot connect to them from another host.
WILDCARDS = frozenset({"", "0.0.0.0", "::"})


def remember(host: str, port: int) -> None:
    """Record the listener just bound (the last one wins: one platform per process)."""
    _bound[:] = [reachable(host, port)]


def bound() -> str | None:
    """host:port of the listener recorded last, if any."""
    return _bound[0] if _bound else None


def reachable(host: str, port: int) -> str:
    """host:port a peer can connect to: a wildcard bind is reached by this host's name."""
    if host in WILDCARDS:
        host = socket.gethostname()
    if ":" in host:
        host = f"[{host}]"
    return f"{host}:{port}"
