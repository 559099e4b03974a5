"""Writing a tree of archive entries under one directory without ever following a symlink.

Checking paths first and writing them afterwards does not hold: each link an archive makes
changes what later paths mean (``a → b/..`` is harmless until ``b → .`` exists), and
``realpath()`` stops expanding past PATH_MAX (CPython gh-135034), which is how chains got past
tarfile's data filter. So :class:`SafeTree` resolves nothing by path while writing: every
entry is reached one component at a time from a directory file descriptor with
``O_NOFOLLOW``, and a path through a link is refused, whether it leads in or out. Links are
judged once, when the whole tree exists, by resolving them step by step inside it.

Everything is created owner-only: the platform's copies of tenants' models are not for other
users of the machine.
"""

from __future__ import annotations

import errno
import os
import shutil
import stat
from collections import deque
from pathlib import Path, PurePosixPath
from types import TracebackType
from typing import IO

from modelport.control.storage.errors import StorageError

DIR_MODE = 0o700
FILE_MODE = 0o600
EXEC_MODE = 0o700
MAX_LINK_HOPS = 40  # Linux's MAXSYMLINKS: a longer chain would not resolve anyway
COPY_CHUNK = 2**20
_OPEN_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_CREATE_FILE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


class SafeTree:
    """Directories, files and links under ``root``, written without following any link.

    Use as a context manager; call :meth:`check_links` after the last entry.
    """

    def __init__(self, root: Path, origin: str) -> None:
        self.origin = origin
        root.mkdir(parents=True, exist_ok=True, mode=DIR_MODE)
        # The root is ours (a staging directory); only what lies under it came from the archive.
        self.fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        self.links: list[PurePosixPath] = []

    def __enter__(self) -> SafeTree:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        os.close(self.fd)

    def directory(self, rel: PurePosixPath) -> None:
        os.close(self._walk(rel.parts, rel, create=True))

    def file(self, rel: PurePosixPath, data: IO[bytes], *, executable: bool) -> None:
        parent = self._parent(rel)
        try:
            self._replace(parent, rel)
            mode = EXEC_MODE if executable else FILE_MODE
            fd = os.open(rel.name, _CREATE_FILE, mode, dir_fd=parent)
            with os.fdopen(fd, "wb") as out:
                shutil.copyfileobj(data, out, COPY_CHUNK)
        finally:
            os.close(parent)

    def symlink(self, rel: PurePosixPath, target: str) -> None:
        parent = self._parent(rel)
        try:
            self._replace(parent, rel)
            os.symlink(target, rel.name, dir_fd=parent)
        finally:
            os.close(parent)
        self.links.append(rel)

    def hardlink(self, rel: PurePosixPath, target: PurePosixPath) -> None:
        """Link ``rel`` to the regular file ``target`` an earlier entry wrote."""
        if rel == target or not target.parts:
            raise self._refuse(f"hardlink {str(rel)!r} to {str(target)!r} links to itself")
        source = self._walk(target.parts[:-1], rel, create=False)
        try:
            try:
                st = os.stat(target.name, dir_fd=source, follow_symlinks=False)
            except FileNotFoundError:
                st = None
            if st is None or not stat.S_ISREG(st.st_mode):
                raise self._refuse(
                    f"hardlink {str(rel)!r} to {str(target)!r}: not a regular file in the archive"
                )
            parent = self._parent(rel)
            try:
                self._replace(parent, rel)
                os.link(
                    target.name,
                    rel.name,
                    src_dir_fd=source,
                    dst_dir_fd=parent,
                    follow_symlinks=False,
                )
            finally:
                os.close(parent)
        finally:
            os.close(source)

    def check_links(self) -> None:
        """Refuse the tree if any link, followed as the kernel would, leaves the root."""
        for rel in self.links:
            if self._resolve(rel) is None:
                raise self._refuse(f"link {str(rel)!r} points outside it")

    # -- internals -----------------------------------------------------------------------------

    def _parent(self, rel: PurePosixPath) -> int:
        if not rel.parts:
            raise self._refuse("an entry has an empty name")
        return self._walk(rel.parts[:-1], rel, create=True)

    def _walk(self, parts: tuple[str, ...], entry: PurePosixPath, *, create: bool) -> int:
        """A descriptor of the directory ``parts`` (made if ``create``), never via a link."""
        fd = os.dup(self.fd)
        try:
            for i, part in enumerate(parts):
                if create:
                    try:
                        os.mkdir(part, DIR_MODE, dir_fd=fd)
                    except FileExistsError:
                        pass
                try:
                    child = os.open(part, _OPEN_DIR, dir_fd=fd)
                except OSError as exc:
                    raise self._not_a_directory(fd, parts[: i + 1], entry, exc) from None
                os.close(fd)
                fd = child
            return fd
        except BaseException:
            os.close(fd)
            raise

    def _not_a_directory(
        self, fd: int, parts: tuple[str, ...], entry: PurePosixPath, exc: OSError
    ) -> StorageError:
        where = "/".join(parts)
        try:
            is_link = stat.S_ISLNK(os.stat(parts[-1], dir_fd=fd, follow_symlinks=False).st_mode)
        except OSError:
            is_link = False
        if is_link:
            return self._refuse(
                f"entry {str(entry)!r} goes through the link {where!r}; links are never followed"
            )
        if exc.errno == errno.ENOENT:
            return StorageError(f"cannot unpack {self.origin}: {where!r} is not in the archive")
        return StorageError(
            f"cannot unpack {self.origin}: {where!r} is not a directory, so {str(entry)!r} "
            "cannot be under it"
        )

    def _replace(self, parent: int, rel: PurePosixPath) -> None:
        # A later entry of the same name replaces the earlier one, as tar does; unlinking first
        # means a write never lands in whatever an earlier link or hardlink pointed at.
        try:
            st = os.stat(rel.name, dir_fd=parent, follow_symlinks=False)
        except FileNotFoundError:
            return
        if stat.S_ISDIR(st.st_mode):
            raise StorageError(
                f"cannot unpack {self.origin}: {str(rel)!r} is both a directory and a file"
            )
        os.unlink(rel.name, dir_fd=parent)

    def _resolve(self, rel: PurePosixPath) -> list[str] | None:
        """Where the link ``rel`` leads, as components under the root; None if it leaves it."""
        current = list(rel.parts[:-1])
        pending = deque([rel.name])
        hops = 0
        while pending:
            part = pending.popleft()
            if part in ("", "."):
                continue
            if part == "..":
                if not current:
                    return None
                current.pop()
                continue
            candidate = "/".join([*current, part])
            try:
                st = os.stat(candidate, dir_fd=self.fd, follow_symlinks=False)
            except FileNotFoundError:
                # Dangling from here on: the kernel would stop, so lexical steps are as strict.
                current.append(part)
                continue
            except OSError:  # ENAMETOOLONG, ENOTDIR: not something to hand a model server
                return None
            if not stat.S_ISLNK(st.st_mode):
                current.append(part)
                continue
            hops += 1
            target = os.readlink(candidate, dir_fd=self.fd)
            if hops > MAX_LINK_HOPS or target.startswith("/"):
                return None
            pending.extendleft(reversed(target.split("/")))
        return current

    def _refuse(self, why: str) -> StorageError:
        return StorageError(f"refusing to unpack {self.origin}: {why}")


def make_private(root: Path) -> None:
    """Owner-only modes for everything under ``root``: what sources wrote with the umask's
    modes (0644) becomes 0600, or 0700 if executable; directories 0700. Links are skipped:
    their mode means nothing and chmod would follow them."""
    os.chmod(root, DIR_MODE)
    for parent, dirs, files in os.walk(root):
        for name in dirs + files:
            path = os.path.join(parent, name)
            st = os.stat(path, follow_symlinks=False)
            if stat.S_ISDIR(st.st_mode):
                os.chmod(path, DIR_MODE)
            elif stat.S_ISREG(st.st_mode):
                os.chmod(path, EXEC_MODE if st.st_mode & 0o111 else FILE_MODE)
