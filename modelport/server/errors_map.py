"""The one place where typed errors become HTTP and gRPC statuses.

gRPC codes are given by name (``grpc.StatusCode`` member names); the gRPC servicer looks
them up, so that a server without gRPC (the platform's replicas) never imports grpc.
"""

from __future__ import annotations

from modelport.errors import (
    InferenceError,
    InvalidInput,
    ModelLoadError,
    ModelNotFound,
    ModelNotReady,
    ModelportError,
    PayloadTooLarge,
    ServerOverloaded,
    UnsupportedModelFormat,
)

# Most specific first: the first isinstance match wins. (error, HTTP status, grpc.StatusCode)
_TABLE: tuple[tuple[type[ModelportError], int, str], ...] = (
    (InvalidInput, 400, "INVALID_ARGUMENT"),
    (UnsupportedModelFormat, 400, "INVALID_ARGUMENT"),
    (ModelNotFound, 404, "NOT_FOUND"),
    (PayloadTooLarge, 413, "RESOURCE_EXHAUSTED"),
    (ServerOverloaded, 503, "RESOURCE_EXHAUSTED"),
    (ModelNotReady, 503, "UNAVAILABLE"),
    (InferenceError, 500, "INTERNAL"),
    (ModelLoadError, 500, "INTERNAL"),
)


def http_status(exc: ModelportError) -> int:
    """HTTP status for a typed error."""
    for cls, status, _ in _TABLE:
        if isinstance(exc, cls):
            return status
    return 500


def grpc_status_name(exc: ModelportError) -> str:
    """Name of the ``grpc.StatusCode`` for a typed error."""
    for cls, _, code in _TABLE:
        if isinstance(exc, cls):
            return code
    return "INTERNAL"


def retry_after(exc: ModelportError) -> int | None:
    """Seconds a client should wait before retrying, for errors that are temporary."""
    if isinstance(exc, ServerOverloaded):
        return exc.retry_after_s
    if isinstance(exc, ModelNotReady):
        return 1
    return None
