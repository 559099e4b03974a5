"""Typed errors raised where problems happen; transports map them to status codes once.

Hierarchy::

    ModelportError
    ├── InvalidInput            malformed request, bad shape/datatype    → 400 / INVALID_ARGUMENT
    ├── ModelNotFound           unknown model or version                 → 404 / NOT_FOUND
    ├── PayloadTooLarge         body over the configured limit           → 413 / RESOURCE_EXHAUSTED
    ├── ModelNotReady           model registered but not (yet) loaded    → 503 / UNAVAILABLE
    ├── ServerOverloaded        in-flight limit reached                  → 503 / RESOURCE_EXHAUSTED
    ├── InferenceError          the model's own code raised              → 500 / INTERNAL
    ├── ModelLoadError          a model file could not be loaded         → 500 / INTERNAL
    └── UnsupportedModelFormat  unknown format or runtime not installed  → 400 / INVALID_ARGUMENT

Nothing here knows about HTTP or gRPC.
"""

from __future__ import annotations


class ModelportError(Exception):
    """Base class of every error modelport raises on purpose."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason

    def __str__(self) -> str:
        return self.reason


class InvalidInput(ModelportError):
    """The request is malformed: bad JSON, wrong datatype, shape or data length."""


class ModelNotFound(ModelportError):
    """No model (or no such version of it) is registered under this name."""

    def __init__(self, name: str, version: str | None = None) -> None:
        if version:
            super().__init__(f"Model with name {name} and version {version} does not exist.")
        else:
            super().__init__(f"Model with name {name} does not exist.")
        self.name = name
        self.version = version


class PayloadTooLarge(ModelportError):
    """The request body is larger than the server accepts."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"Request body exceeds the limit of {limit} bytes.")
        self.limit = limit


class ModelNotReady(ModelportError):
    """The model exists but cannot serve yet (loading, unloaded, or failed to load)."""

    def __init__(self, name: str, detail: str = "") -> None:
        msg = f"Model with name {name} is not ready."
        super().__init__(f"{msg} {detail}".strip())
        self.name = name


class ServerOverloaded(ModelportError):
    """Too many requests in flight for this model; the client should retry later."""

    retry_after_s = 1

    def __init__(self, name: str, limit: int) -> None:
        super().__init__(
            f"Model {name} has {limit} requests in flight, the configured maximum; retry later."
        )
        self.name = name
        self.limit = limit


class InferenceError(ModelportError):
    """The model raised while handling a request; the server keeps serving."""


class ModelLoadError(ModelportError):
    """A model could not be loaded from its files."""


class UnsupportedModelFormat(ModelportError):
    """The model format is unknown, or its runtime library is not installed."""
