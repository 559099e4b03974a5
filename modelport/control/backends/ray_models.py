"""Models on their way to Ray nodes: named by content (so that every platform instance and
every node agrees which model a replica runs) and packed for Ray's object store."""

from __future__ import annotations

import hashlib
import io
import tarfile
from pathlib import Path


def content_key(model: Path) -> str:
    """Names a model's content, the same for copies of it elsewhere (another platform
    instance's cache): a digest of its files' names and bytes."""
    digest = hashlib.sha256()
    for item in _files(model):
        digest.update(f"{item.relative_to(model.parent)}\0".encode())
        with item.open("rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()[:32]


def stat_signature(model: Path) -> tuple[str, tuple[tuple[str, int, int], ...]]:
    """What changes when a model's files change: to read each model's bytes only once."""
    files = tuple((str(f), f.stat().st_size, f.stat().st_mtime_ns) for f in _files(model))
    return str(model.resolve()), files


def _files(model: Path) -> list[Path]:
    found = sorted(model.rglob("*")) if model.is_dir() else [model]
    return [f for f in found if f.is_file() and not f.is_symlink()]


def pack(model: Path) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        archive.add(model, arcname=model.name)
    return buffer.getvalue()
