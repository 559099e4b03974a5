"""Unpacking a downloaded tar or zip archive, as KServe's storage initializer does, but with size
and path limits: no entry, link or device file may reach outside the destination, and no entry
is written through a link (:mod:`.tree` does the writing). Also the source that stands for a
local archive, so that it is unpacked into the cache."""

from __future__ import annotations

import gzip
import lzma
import os
import stat
import tarfile
import zipfile
import zlib
from pathlib import Path, PurePosixPath

from modelport.control.storage.errors import StorageError
from modelport.control.storage.tree import SafeTree
from modelport.control.storage.types import Progress

DEFAULT_MAX_UNPACKED_BYTES = 20 * 2**30
TAR_SUFFIXES = (".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tar.xz", ".txz")
ZIP_SUFFIXES = (".zip",)
MAX_LINK_TARGET = 4096  # PATH_MAX: a zip symlink's target is stored as the entry's data


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
    dest.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        if kind == "zip":
            _unpack_zip(archive, dest, max_bytes)
        else:
            _unpack_tar(archive, dest, max_bytes)
    except (
        tarfile.TarError,
        zipfile.BadZipFile,
        EOFError,
        gzip.BadGzipFile,
        zlib.error,
        lzma.LZMAError,
        UnicodeDecodeError,
    ) as exc:
        raise StorageError(f"cannot unpack {archive.name}: not a valid archive ({exc})") from None
    except OSError as exc:  # a name too long for this filesystem, a full disk
        raise StorageError(f"cannot unpack {archive.name}: {exc}") from None


def _unpack_tar(archive: Path, dest: Path, max_bytes: int) -> None:
    with tarfile.open(archive) as tar:
        members = tar.getmembers()
        # Names, types and link targets are judged before the first entry is written.
        names = [_tar_entry(member, archive.name) for member in members]
        _check_budget(sum(m.size for m in members if m.isreg()), max_bytes, archive.name)
        with SafeTree(dest, archive.name) as tree:
            for member, name in zip(members, names, strict=True):
                if member.isdir():
                    tree.directory(name)
                elif member.issym():
                    tree.symlink(name, member.linkname)
                elif member.islnk():
                    tree.hardlink(name, _safe_relative(member.linkname, archive.name))
                else:
                    data = tar.extractfile(member)
                    if data is None:  # _tar_entry let only regular members get here
                        raise StorageError(f"cannot unpack {archive.name}: {name} has no data")
                    tree.file(name, data, executable=bool(member.mode & 0o111))
            tree.check_links()


def _tar_entry(member: tarfile.TarInfo, origin: str) -> PurePosixPath:
    name = _safe_relative(member.name, origin)
    if member.isdev() or member.isfifo():
        raise StorageError(f"refusing to unpack {origin}: {name} is a device file")
    if member.issym():
        _check_link(name.parent / member.linkname, member.linkname, origin)
    elif member.islnk():
        _check_link(PurePosixPath(member.linkname), member.linkname, origin)
    elif not (member.isreg() or member.isdir()):
        raise StorageError(f"refusing to unpack {origin}: {name} has an unsupported entry type")
    return name


def _unpack_zip(archive: Path, dest: Path, max_bytes: int) -> None:
    with zipfile.ZipFile(archive) as zf:
        infos = zf.infolist()
        # Declared sizes are enough: zipfile stops reading an entry at its declared size and
        # fails its CRC check if more data was there.
        _check_budget(sum(i.file_size for i in infos), max_bytes, archive.name)
        entries = [_zip_entry(zf, info, archive.name) for info in infos]
        with SafeTree(dest, archive.name) as tree:
            for info, (name, link) in zip(infos, entries, strict=True):
                mode = info.external_attr >> 16
                if info.is_dir():
                    tree.directory(name)
                elif link is not None:
                    tree.symlink(name, link)
                else:
                    with zf.open(info) as src:
                        tree.file(name, src, executable=bool(mode & 0o111))
            tree.check_links()


def _zip_entry(
    zf: zipfile.ZipFile, info: zipfile.ZipInfo, origin: str
) -> tuple[PurePosixPath, str | None]:
    """The entry's path and, for a symlink, its target."""
    name = _safe_relative(info.filename, origin)
    mode = info.external_attr >> 16
    if info.is_dir():
        return name, None
    if stat.S_ISLNK(mode):
        if info.file_size > MAX_LINK_TARGET:
            raise StorageError(f"refusing to unpack {origin}: link {name} has an oversized target")
        link = zf.read(info).decode()
        if "\0" in link:
            raise StorageError(f"refusing to unpack {origin}: link {name} has a NUL in its target")
        _check_link(name.parent / link, link, origin)
        return name, link
    # Writers that store only permission bits leave the file type 0: a regular file.
    if stat.S_IFMT(mode) not in (0, stat.S_IFREG):
        raise StorageError(f"refusing to unpack {origin}: {name} is a device file")
    return name, None


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
