"""The download size limit: a model fetched over the network may not fill the platform's disk,
whatever size the server declares (or does not declare) and however it encodes the bytes."""

from __future__ import annotations

import threading

from modelport.control.storage.errors import StorageError
from modelport.control.storage.types import Progress

DEFAULT_MAX_DOWNLOAD_BYTES = 20 * 2**30
_UNITS = ("bytes", "KiB", "MiB", "GiB", "TiB")


class DownloadBudget:
    """The bytes one download has written, over all its files and threads, refused past
    ``limit``; reports progress as it counts if given a callback."""

    def __init__(
        self,
        what: str,
        limit: int,
        *,
        total: int | None = None,
        progress: Progress | None = None,
    ) -> None:
        self.what = what
        self.limit = limit
        self.total = total
        self.progress = progress
        self.done = 0
        self._lock = threading.Lock()

    def declare(self, size: int | None) -> None:
        """Refuse before reading when the source already says more is coming than fits."""
        if size is not None and self.done + size > self.limit:
            raise self.too_large()

    def add(self, n: int) -> None:
        """Count ``n`` more bytes written; raises StorageError once past the limit."""
        with self._lock:
            self.done += n
            done = self.done
        if done > self.limit:
            raise self.too_large()
        if self.progress:
            self.progress(done, self.total)

    @property
    def exceeded(self) -> bool:
        return self.done > self.limit

    def too_large(self) -> StorageError:
        return StorageError(
            f"storage download failed: {self.what} is larger than the download limit "
            f"of {format_size(self.limit)}"
        )


def format_size(n: int) -> str:
    """``20 GiB (21474836480 bytes)``, or ``500 bytes``: both forms, so the number can be
    matched against the setting."""
    value, unit = float(n), 0
    while value >= 1024 and unit < len(_UNITS) - 1:
        value /= 1024
        unit += 1
    if unit == 0:
        return f"{n} bytes"
    return f"{value:.4g} {_UNITS[unit]} ({n} bytes)"
