"""Who a request is from, once the gateway has authenticated it."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Identity:
    """Who a request is from, as the upstream headers will say.

    ``token_namespace``/``token_role`` are set when an API token authenticated the request:
    it may act only there, and only with that role.
    """

    email: str
    groups: tuple[str, ...] = ()
    token_namespace: str | None = None
    token_role: str | None = None
