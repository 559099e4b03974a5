"""The one place where typed errors become HTTP and gRPC statuses."""

from __future__ import annotations

import grpc

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

# Most specific first: the first isinstance match wins.
_TABLE: tuple[tuple[type[ModelportError], int, grpc.StatusCode], ...] = (
    (InvalidInput, 400, grpc.StatusCode.INVALID_ARGUMENT),
    (UnsupportedModelFormat, 400, grpc.StatusCode.INVALID_ARGUMENT),
    (ModelNotFound, 404, grpc.StatusCode.NOT_FOUND),
    (PayloadTooLarge, 413, grpc.StatusCode.RESOURCE_EXHAUSTED),
    (ServerOverloaded, 503, grpc.StatusCode.RESOURCE_EXHAUSTED),
    (ModelNotReady, 503, grpc.StatusCode.UNAVAILABLE),
    (InferenceError, 500, grpc.StatusCode.INTERNAL),
    (ModelLoadError, 500, grpc.StatusCode.INTERNAL),
)


def http_status(exc: ModelportError) -> int:
    """HTTP status for a typed error."""
    for cls, status, _ in _TABLE:
        if isinstance(exc, cls):
            return status
    return 500


def grpc_status(exc: ModelportError) -> grpc.StatusCode:
    """gRPC status code for a typed error."""
    for cls, _, code in _TABLE:
        if isinstance(exc, cls):
            return code
    return grpc.StatusCode.INTERNAL


def retry_after(exc: ModelportError) -> int | None:
    """Seconds a client should wait before retrying, for errors that are temporary."""
    if isinstance(exc, ServerOverloaded):
        return exc.retry_after_s
    if isinstance(exc, ModelNotReady):
        return 1
    return None
