"""Which of the caller's headers each step receives.

KServe's router passes on only the headers matching the patterns in its config map
(``router.headers.propagate``, exported to the router as ``PROPAGATE_HEADERS``), none by
default, so a graph behind an authenticating gateway loses the caller (kserve#2693). Here
the step is called inside the gateway with the caller's identity, so credentials are never
needed downstream and never passed on; trace context always is, and a graph may name more
headers in the annotation below (comma-separated names, case-insensitive; a trailing ``*``
matches any suffix, as ``Test-Header-*`` in KServe's example; no regular expressions, which
could be made to backtrack on a long header name).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

PROPAGATE_ANNOTATION = "modelport.io/propagate-headers"
# W3C Trace Context, Envoy/Istio's request id, and Zipkin's B3 (single and multi header).
TRACE_HEADERS = frozenset(
    {b"traceparent", b"tracestate", b"x-request-id", b"b3", b"x-ot-span-context"}
)
TRACE_PREFIXES = (b"x-b3-",)
# Never passed on, whatever a graph names: credentials stay at the gateway, identity headers
# are the gateway's to set, and the body's framing and address are the step's own.
NEVER = frozenset(
    {
        b"authorization",
        b"cookie",
        b"proxy-authorization",
        b"kubeflow-userid",
        b"kubeflow-groups",
        b"host",
        b"content-length",
        b"content-type",
        b"transfer-encoding",
        b"connection",
        b"keep-alive",
        b"te",
        b"trailer",
        b"upgrade",
        b"expect",
    }
)
MAX_PATTERNS = 32
MAX_PATTERN_CHARS = 128
Header = tuple[bytes, bytes]


def header_patterns(annotation: str) -> tuple[str, ...]:
    """The annotation's comma-separated names, lower-cased and without blanks."""
    return tuple(p.strip().lower() for p in annotation.split(",") if p.strip())


def pattern_problem(pattern: str) -> str | None:
    """Why a name in the annotation is refused; None if it is fine."""
    if len(pattern) > MAX_PATTERN_CHARS:
        return f"a header name is at most {MAX_PATTERN_CHARS} characters"
    name = pattern[:-1] if pattern.endswith("*") else pattern
    if not name or "*" in name:
        return f"{pattern!r}: use a header name, optionally ending in *"
    if not all(c.isalnum() or c in "-_." for c in name):
        return f"{pattern!r} is not a header name"
    if name.encode() in NEVER:
        return f"{pattern!r} is never passed on to steps"
    return None


class HeaderFilter:
    """Picks the headers a step receives from the caller's request headers."""

    def __init__(self, patterns: Sequence[str]) -> None:
        exact, prefixes = set(), []
        for p in patterns:
            if p.endswith("*"):
                prefixes.append(p[:-1].encode())
            else:
                exact.add(p.encode())
        self.exact = frozenset(exact) | TRACE_HEADERS
        self.prefixes = (*TRACE_PREFIXES, *prefixes)

    def wanted(self, name: bytes) -> bool:
        if name in NEVER:
            return False
        return name in self.exact or name.startswith(self.prefixes)

    def select(self, headers: Iterable[Header]) -> list[Header]:
        """The headers to pass on, names lower-cased (ASGI gives them so)."""
        return [(n.lower(), v) for n, v in headers if self.wanted(n.lower())]
