"""The per-replica key that admits a request to a model server run by the platform.

``modelport up`` starts each replica with a random key, and its gateway adds the key to every
request it forwards. Other local processes — other tenants' model code among them — can
connect to a replica's loopback port, but without the key they get 403.
"""

from __future__ import annotations

import hmac

REPLICA_KEY_HEADER = b"modelport-replica-key"


def key_matches(headers: list[tuple[bytes, bytes]], key: bytes) -> bool:
    """Whether the request carries ``key`` in its (only) replica-key header."""
    found = [v for k, v in headers if k == REPLICA_KEY_HEADER]
    # Two copies mean something in front of us appended instead of replacing: refuse.
    return len(found) == 1 and hmac.compare_digest(found[0], key)
