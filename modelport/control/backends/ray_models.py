"""Models on their way to Ray nodes: packed for Ray's object store and named by what the
archive holds (so that every platform instance and every node agrees which model a replica
runs, and two different models can never share a name)."""

from __future__ import annotations

import hashlib
import io
import tarfile
from pathlib import Path


def pack(model: Path) -> tuple[bytes, str]:
    """The model as a tar archive, and the name of its content (see :func:`archive_key`)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        archive.add(model, arcname=model.name)
    data = buffer.getvalue()
    return data, archive_key(data)


def archive_key(data: bytes) -> str:
    """A digest of each member's type, name, link target and bytes, each framed by its
    length, in archive order: copies of a model made elsewhere (other times, owners, modes)
    get the same name, and no two different contents can run together into one."""
    digest = hashlib.sha256()
    with tarfile.open(fileobj=io.BytesIO(data)) as archive:
        for member in archive:
            content = b""
            if member.isfile():
                extracted = archive.extractfile(member)
                assert extracted is not None
                content = hashlib.sha256(extracted.read()).digest()
            for part in (member.type, member.name.encode(), member.linkname.encode(), content):
                digest.update(len(part).to_bytes(8, "big"))
                digest.update(part)
    return digest.hexdigest()


def stat_signature(model: Path) -> tuple[str, tuple[tuple[str, int, int, int], ...]]:
    """What changes when a model's files change (links and folders included): to pack each
    model once, not at every start."""
    entries = sorted(model.rglob("*")) if model.is_dir() else []
    found = []
    for item in [model, *entries]:
        st = item.lstat()
        found.append((str(item), st.st_mode, st.st_size, st.st_mtime_ns))
    return str(model.resolve()), tuple(found)
