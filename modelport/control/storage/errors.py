"""The one error storage raises."""

from __future__ import annotations

from modelport.errors import ModelportError


class StorageError(ModelportError):
    """A model could not be fetched from its storage URI; the message is one user-facing line."""
