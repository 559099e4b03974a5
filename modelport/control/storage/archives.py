"""Unpacking a downloaded tar or zip archive, as KServe's storage initializer does, but with size
and path limits: no entry, link or device file may reach outside the destination. Also the
source that stands for a local archive, so that it is unpacked into the cache."""

from __future__ import annotations

import gzip
import lzma
import os
import shutil
import stat
import tarfile
import zipfile
import zlib
from pathlib import Path, PurePosixPath

from modelport.control.storage.errors import StorageError
from modelport.control.storage.types import Progress

DEFAULT_MAX_UNPACKED_BYTES = 20 * 2**30
TAR_SUFFIXES = (".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tar.xz", ".txz")
ZIP_SUFFIXES = (".zip",)
UNPACK_CHUNK = 2**20  # bytes copied at a time out of a zip entry


def archive_kind(name: str) -> str | None:
    """Which archive KServe would unpack ("tar" or "zip") the file name says, or None."""
    lower = name.lower()
    if lower.endswith(TAR_SUFFIXES):
        return "tar"
    if lower.endswith(ZIP_SUFFIXES):
        return "zip"
    return None


def unpack(archive: Path, dest: Path, *, max_bytes: int = DEFAULT_MAX_UNPACKED_BYTES) -> None:
    """Unpack a tar or zip archive into ``dest``, refusing entries that would escape it."""
    kind = archive_kind(archive.name)
    if kind is None:
        raise StorageError(f"{archive.name} is not a tar or zip archive")
    dest.mkdir(parents=True, exist_ok=True)
    try:
        if kind == "zip":
            _unpack_zip(archive, dest, max_bytes)
        else:
            _unpack_tar(archive, dest, max_bytes)
    except tarfile.FilterError as exc:
        raise StorageError(f"refusing to unpack {archive.name}: {exc}") from None
    except (
        tarfile.TarError,
        zipfile.BadZipFile,
        EOFError,
        gzip.BadGzipFile,
        zlib.error,
        lzma.LZMAError,
    ) as exc:
        raise StorageError(f"cannot unpack {archive.name}: not a valid archive ({exc})") from None


def _unpack_tar(archive: Path, dest: Path, max_bytes: int) -> None:
    with tarfile.open(archive) as tar:
        members = tar.getmembers()
        total = 0
        for member in members:
            name = _safe_relative(member.name, archive.name)
            if member.isdev() or member.isfifo():
                raise StorageError(f"refusing to unpack {archive.name}: {name} is a device file")
            if member.issym():
                _check_link(name.parent / member.linkname, member.linkname, archive.name)
            elif member.islnk():
                _check_link(PurePosixPath(member.linkname), member.linkname, archive.name)
            total += member.size if member.isreg() else 0
            _check_budget(total, max_bytes, archive.name)
        # The data filter re-checks every path after following links already extracted.
        tar.extractall(dest, members=members, filter="data")


def _unpack_zip(archive: Path, dest: Path, max_bytes: int) -> None:
    root = dest.resolve()
    with zipfile.ZipFile(archive) as zf:
        infos = zf.infolist()
        # Declared sizes are enough: zipfile stops reading an entry at its declared size and
        # fails its CRC check if more data was there.
        _check_budget(sum(i.file_size for i in infos), max_bytes, archive.name)
        for info in infos:
            name = _safe_relative(info.filename, archive.name)
            target = dest / name
            mode = info.external_attr >> 16
            if info.is_dir():
                target.mkdir(parents=True, exist_ok=True)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            _check_inside(root, target.resolve(), info.filename, archive.name)
            if stat.S_ISLNK(mode):
                link = zf.read(info).decode()
                _check_link(name.parent / link, link, archive.name)
                target.symlink_to(link)
                _check_inside(root, target.resolve(), info.filename, archive.name)
                continue
            # Writers that store only permission bits leave the file type 0: a regular file.
            if stat.S_IFMT(mode) not in (0, stat.S_IFREG):
                raise StorageError(f"refusing to unpack {archive.name}: {name} is a device file")
            with zf.open(info) as src, open(target, "wb") as out:
                shutil.copyfileobj(src, out, UNPACK_CHUNK)


def _safe_relative(name: str, origin: str) -> PurePosixPath:
    """A relative path from an archive entry or object key; absolute or '..' paths refused."""
    # Backslashes and drive letters count too: the archive may come from Windows.
    parts = name.replace("\\", "/")
    path = PurePosixPath(parts)
    if path.is_absolute() or (len(parts) > 1 and parts[1] == ":"):
        raise StorageError(f"refusing unsafe entry {name!r} in {origin}: absolute path")
    if ".." in path.parts:
        raise StorageError(f"refusing unsafe entry {name!r} in {origin}: it climbs out with '..'")
    return path


def _check_link(target: PurePosixPath, linkname: str, origin: str) -> None:
    normal = os.path.normpath(str(target))
    if linkname.startswith("/") or normal == ".." or normal.startswith("../"):
        raise StorageError(
            f"refusing to unpack {origin}: link to {linkname!r} points outside the archive"
        )


def _check_inside(root: Path, resolved: Path, name: str, origin: str) -> None:
    if resolved != root and root not in resolved.parents:
        raise StorageError(f"refusing to unpack {origin}: entry {name!r} points outside it")


def _check_budget(total: int, max_bytes: int, origin: str) -> None:
    if total > max_bytes:
        raise StorageError(
            f"refusing to unpack {origin}: it unpacks to more than {max_bytes} bytes"
        )


class LocalArchiveSource:
    """A local archive file; its version is its size and modification time."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def probe(self) -> str | None:
        st = self.path.stat()
        return f"local:{st.st_size}:{st.st_mtime_ns}"

    def download(self, dest: Path, progress: Progress | None) -> str | None:
        # A link is enough: unpacking reads through it, and removing the staging directory
        # removes the link, never the user's archive.
        dest.mkdir(parents=True, exist_ok=True)
        (dest / self.path.name).symlink_to(self.path)
        return self.probe()

    def close(self) -> None:
        pass
