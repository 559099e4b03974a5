"""What the storage initializer asks of a remote model (:class:`Source`), and the progress
callback downloads report to."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Protocol

Progress = Callable[[int, int | None], None]
"""Called with (bytes done, total bytes or None), from a worker thread."""


class Source(Protocol):
    """One remote model: what version it is now, and how to download it."""

    def probe(self) -> str | None:
        """The current version (cheap: HEAD or listing), or None if it has none."""

    def download(self, dest: Path, progress: Progress | None) -> str | None:
        """Write the model's files under ``dest``; return the version actually downloaded."""

    def close(self) -> None:
        """Release connections."""
