"""Copying a model into a running replica's private folder, safely.

The platform may run as root, and a replica can write its private folder: it could replace
any folder in there with a symbolic link to somewhere only root may write. So everything
below the private folder (which the replica cannot move: its parent is the platform's) is
opened relative to a folder descriptor with O_NOFOLLOW, made with a fresh random name, and
its owner and mode set through descriptors; a link found on the way is an error, never
followed. The source (the platform's model cache) is trusted; links inside it are skipped.
"""

from __future__ import annotations

import os
import secrets
import shutil
import stat
from pathlib import Path

DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
FILE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


class PlacementError(OSError):
    """The copy could not be made where it must go (for a status message)."""


def place_copy(model: Path, private: Path, folder: str, prefix: str, gid: int | None) -> Path:
    """Copy ``model`` (a file or folder) to ``private/folder/<prefix>-<random>/``; the path
    of the copy to load. With ``gid`` (the platform is root), the copy is owned by root and
    readable by that group only, as the replica's own model is (isolation.grant)."""
    try:
        top = os.open(private, DIR_FLAGS)
    except OSError as exc:
        raise PlacementError(f"the replica's private folder cannot be opened: {exc}") from exc
    try:
        holder = _open_or_make(top, folder, gid)
        try:
            name = f"{prefix}-{secrets.token_hex(8)}"
            os.mkdir(name, 0o700, dir_fd=holder)
            where = os.open(name, DIR_FLAGS, dir_fd=holder)
            try:
                _own(where, gid, directory=True)
                leaf = "model" if model.is_dir() else model.name
                if model.is_dir():
                    _copy_tree(model, where, leaf, gid)
                else:
                    _copy_file(model, where, leaf, gid)
            finally:
                os.close(where)
        finally:
            os.close(holder)
    except OSError as exc:
        raise PlacementError(f"copying the model into the replica failed: {exc}") from exc
    finally:
        os.close(top)
    return private / folder / name / leaf


def remove_copy(copy: Path, private: Path, folder: str) -> None:
    """Remove a copy made by :func:`place_copy` (its folder under ``private/folder``),
    without following links; nothing happens when it is gone already."""
    relative = copy.relative_to(private / folder).parts
    if not relative:
        return
    try:
        top = os.open(private, DIR_FLAGS)
    except OSError:
        return
    try:
        holder = os.open(folder, DIR_FLAGS, dir_fd=top)
        try:
            shutil.rmtree(relative[0], dir_fd=holder)
        finally:
            os.close(holder)
    except OSError:
        pass  # gone with its replica, or replaced by the replica: nothing of ours to remove
    finally:
        os.close(top)


def _open_or_make(parent: int, name: str, gid: int | None) -> int:
    try:
        os.mkdir(name, 0o700, dir_fd=parent)
        made = True
    except FileExistsError:
        made = False
    fd = os.open(name, DIR_FLAGS, dir_fd=parent)  # ELOOP if the replica put a link here
    if made:
        _own(fd, gid, directory=True)
    return fd


def _own(fd: int, gid: int | None, *, directory: bool) -> None:
    if gid is not None:
        os.fchown(fd, 0, gid)
        os.fchmod(fd, 0o750 if directory else 0o640)
    else:
        os.fchmod(fd, 0o700 if directory else 0o600)


def _copy_file(source: Path, parent: int, name: str, gid: int | None) -> None:
    with open(source, "rb") as src:
        out = os.open(name, FILE_FLAGS, 0o600, dir_fd=parent)
        try:
            _own(out, gid, directory=False)
            with os.fdopen(os.dup(out), "wb") as dst:
                shutil.copyfileobj(src, dst, 1 << 20)
        finally:
            os.close(out)


def _copy_tree(source: Path, parent: int, name: str, gid: int | None) -> None:
    os.mkdir(name, 0o700, dir_fd=parent)
    fd = os.open(name, DIR_FLAGS, dir_fd=parent)
    try:
        _own(fd, gid, directory=True)
        for entry in os.scandir(source):
            mode = entry.stat(follow_symlinks=False).st_mode
            if stat.S_ISDIR(mode):
                _copy_tree(Path(entry.path), fd, entry.name, gid)
            elif stat.S_ISREG(mode):
                _copy_file(Path(entry.path), fd, entry.name, gid)
            # links and special files are left out: a model is files and folders
    finally:
        os.close(fd)
