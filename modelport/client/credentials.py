"""Tokens saved per platform URL in the user's config directory, readable only by them."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from modelport.settings import config_dir


def _path() -> Path:
    return config_dir() / "credentials.json"


def load_all() -> dict[str, dict[str, Any]]:
    """Every saved login, keyed by platform URL."""
    try:
        data = json.loads(_path().read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def load(url: str) -> dict[str, Any] | None:
    """The saved login for a platform, or None."""
    return load_all().get(url.rstrip("/"))


def save(url: str, entry: dict[str, Any]) -> None:
    """Save a login atomically, with 0600 permissions from the start."""
    data = load_all()
    data[url.rstrip("/")] = entry
    _write(data)


def forget(url: str) -> bool:
    """Remove a saved login; True if there was one."""
    data = load_all()
    if data.pop(url.rstrip("/"), None) is None:
        return False
    _write(data)
    return True


def _write(data: dict[str, Any]) -> None:
    directory = config_dir()
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".credentials-")
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump(data, handle, indent=2)
        os.replace(tmp, _path())
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
