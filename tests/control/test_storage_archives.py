"""Archive unpacking never writes outside its destination and never follows a symlink: the
link chains, hardlinks and PATH_MAX tricks that got past lexical checks and tarfile's filter."""

from __future__ import annotations

import io
import os
import stat
import tarfile
import zipfile
from pathlib import Path

import pytest

from modelport.control.storage import StorageError, unpack

Entry = tuple[tarfile.TarInfo, bytes]


def reg(name: str, data: bytes = b"x", mode: int = 0o644) -> Entry:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = mode
    return info, data


def special(name: str, kind: bytes, linkname: str = "") -> Entry:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = linkname
    return info, b""


def sym(name: str, target: str) -> Entry:
    return special(name, tarfile.SYMTYPE, target)


def hard(name: str, target: str) -> Entry:
    return special(name, tarfile.LNKTYPE, target)


def folder(name: str) -> Entry:
    return special(name, tarfile.DIRTYPE)


def write_tar(path: Path, entries: list[Entry]) -> Path:
    with tarfile.open(path, "w:gz", format=tarfile.PAX_FORMAT) as tar:
        for info, data in entries:
            tar.addfile(info, io.BytesIO(data) if info.isreg() else None)
    return path


def write_zip(path: Path, entries: list[tuple[str, bytes | str]]) -> Path:
    """Entries in order; a str value makes the entry a symlink with that target."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, value in entries:
            if isinstance(value, str):
                info = zipfile.ZipInfo(name)
                info.external_attr = 0o120777 << 16  # S_IFLNK, as Info-ZIP stores symlinks
                zf.writestr(info, value)
            else:
                zf.writestr(name, value)
    return path


def everything(path: Path) -> set[str]:
    return {str(p.relative_to(path)) for p in path.rglob("*")}


@pytest.fixture
def layout(tmp_path: Path) -> tuple[Path, Path]:
    """An archive directory and a destination two levels below the top: ``top/one/two/dest``."""
    top = tmp_path / "top"
    (top / "one" / "two").mkdir(parents=True)
    return top, top / "one" / "two" / "dest"


# ---- the reported finding: directories created through a chain of zip symlinks -----------------


def test_zip_symlink_chain_creates_nothing_outside(layout: tuple[Path, Path]) -> None:
    top, dest = layout
    # Each link looks harmless on its own ("b/.." is "."), but a → b/.. → c/../.. → two up.
    archive = write_zip(
        top / "m.zip",
        [
            ("a", "b/.."),
            ("b", "c/.."),
            ("c", "."),
            ("a/CREATED_OUTSIDE/", b""),
            ("a/FILEDIR/x", b"pwned"),
        ],
    )
    with pytest.raises(StorageError, match="refusing"):
        unpack(archive, dest)
    assert everything(top) <= {"m.zip", "one", "one/two", "one/two/dest"} | {
        f"one/two/dest/{n}" for n in "abc"
    }


def test_zip_file_through_a_link_to_inside_is_refused_too(tmp_path: Path) -> None:
    # Even a link that stays inside is never written through: one rule, nothing to reason about.
    archive = write_zip(tmp_path / "m.zip", [("real/", b""), ("s", "real"), ("s/x", b"data")])
    with pytest.raises(StorageError, match="through the link 's'"):
        unpack(archive, tmp_path / "out")
    assert not (tmp_path / "out" / "real" / "x").exists()


def test_zip_links_that_escape_only_once_all_exist_are_refused(tmp_path: Path) -> None:
    # No entry writes through a link, but the finished tree has a → (b/..) → outside.
    archive = write_zip(tmp_path / "m.zip", [("a", "b/.."), ("b", "c/.."), ("c", ".")])
    with pytest.raises(StorageError, match="link 'a' points outside"):
        unpack(archive, tmp_path / "out")


def test_zip_directory_entry_through_a_link_is_refused(tmp_path: Path) -> None:
    archive = write_zip(tmp_path / "m.zip", [("s", "."), ("s/d/", b"")])
    with pytest.raises(StorageError, match="through the link 's'"):
        unpack(archive, tmp_path / "out")


# ---- tar: the same rules --------------------------------------------------------------------


HOSTILE_TARS: dict[str, tuple[list[Entry], str]] = {
    "file-through-symlink": ([sym("s", "."), reg("s/x", b"pwned")], "through the link 's'"),
    "dir-through-symlink": ([sym("s", "."), folder("s/CREATED_OUTSIDE")], "through the link"),
    "file-through-link-chain": (
        [sym("a", "b/.."), sym("b", "c/.."), sym("c", "."), reg("a/x", b"pwned")],
        "through the link 'a'",
    ),
    "link-chain-out": ([sym("a", "b/.."), sym("b", "c/.."), sym("c", ".")], "points outside"),
    "hardlink-through-symlink": (
        [sym("s", "."), reg("f", b"x"), hard("h", "s/f")],
        "through the link 's'",
    ),
    "hardlink-absolute": ([hard("h", "/etc/passwd")], "points outside"),
    "hardlink-to-symlink": ([sym("s", "x"), reg("x", b"x"), hard("h", "s")], "not a regular"),
    "absolute-dir": ([folder("/tmp/evil-modelport-dir")], "absolute path"),
    "dotdot-dir": ([folder("../CREATED_OUTSIDE")], "climbs out with '..'"),
    "block-device": ([special("dev", tarfile.BLKTYPE)], "device file"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE_TARS))
def test_hostile_tar_is_refused(layout: tuple[Path, Path], case: str) -> None:
    top, dest = layout
    entries, fragment = HOSTILE_TARS[case]
    archive = write_tar(top / "m.tar.gz", entries)
    with pytest.raises(StorageError, match="refusing") as err:
        unpack(archive, dest)
    assert fragment in str(err.value)
    assert everything(top).isdisjoint({"CREATED_OUTSIDE", "one/CREATED_OUTSIDE", "one/x"})
    assert not (top / "one" / "two" / "x").exists()
    assert not Path("/tmp/evil-modelport-dir").exists()


def test_tar_realpath_limit_bypass_is_refused(tmp_path: Path) -> None:
    """CPython gh-135034 (CVE-2025-4517): a symlink chain whose resolved path passes PATH_MAX
    stops realpath() expanding it, so tarfile's data filter let the next links point anywhere.
    The unpacker resolves nothing by path, so the chain is refused and nothing lands outside."""
    dest = tmp_path / "out"
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "flag").write_bytes(b"original")
    steps = "abcdefghijklmnop"
    path_max = os.pathconf(tmp_path, "PC_PATH_MAX")
    component = "d" * ((path_max - len(str(dest)) - 1) // (len(steps) + 1))
    entries: list[Entry] = []
    path = ""
    for step in steps:
        entries += [folder(os.path.join(path, component)), sym(os.path.join(path, step), component)]
        path = os.path.join(path, component)
    link_path = os.path.join(*steps, "l" * 254)
    entries.append(sym(link_path, os.path.join(*[".."] * len(steps))))
    # link_path is dest itself once resolved, so "escape" is tmp_path/outside.
    entries.append(sym("escape", os.path.join(link_path, "..", "outside")))
    entries.append(hard("flaglink", "escape/flag"))
    entries.append(reg("flaglink", b"overwritten"))
    entries.append(reg("escape/newfile", b"new"))
    archive = write_tar(tmp_path / "poc.tar.gz", entries)

    with pytest.raises(StorageError, match="refusing"):
        unpack(archive, dest)
    assert (outside / "flag").read_bytes() == b"original"
    assert sorted(p.name for p in outside.iterdir()) == ["flag"]


def test_tar_duplicate_name_replaces_a_hardlink_instead_of_writing_through_it(
    tmp_path: Path,
) -> None:
    archive = write_tar(
        tmp_path / "m.tar.gz",
        [reg("weights", b"original"), hard("alias", "weights"), reg("alias", b"replaced")],
    )
    unpack(archive, tmp_path / "out")
    assert (tmp_path / "out" / "weights").read_bytes() == b"original"
    assert (tmp_path / "out" / "alias").read_bytes() == b"replaced"


# ---- what legitimate archives keep -----------------------------------------------------------


def test_tar_links_inside_and_hardlinks_still_unpack(tmp_path: Path) -> None:
    archive = write_tar(
        tmp_path / "snapshot.tgz",
        [
            folder("."),
            reg("./blobs/abc", b"weights"),
            sym("./snapshots/main/model.bin", "../../blobs/abc"),
            sym("./latest", "snapshots/main"),
            hard("./copy", "blobs/abc"),
            reg("run.sh", b"#!/bin/sh\n", mode=0o755),
        ],
    )
    dest = tmp_path / "out"
    unpack(archive, dest)
    assert (dest / "snapshots" / "main" / "model.bin").read_bytes() == b"weights"
    assert (dest / "latest" / "model.bin").read_bytes() == b"weights"
    assert (dest / "copy").read_bytes() == b"weights"
    # Nothing the platform unpacks is readable by other users; executables stay executable.
    assert stat.S_IMODE((dest / "blobs").stat().st_mode) & 0o077 == 0
    assert stat.S_IMODE((dest / "blobs" / "abc").stat().st_mode) & 0o077 == 0
    assert (dest / "run.sh").stat().st_mode & stat.S_IXUSR


def test_zip_link_to_a_later_entry_is_kept(tmp_path: Path) -> None:
    archive = write_zip(
        tmp_path / "m.zip", [("model.bin", "blobs/w"), ("blobs/w", b"weights"), ("d/", b"")]
    )
    unpack(archive, tmp_path / "out")
    assert (tmp_path / "out" / "model.bin").is_symlink()
    assert (tmp_path / "out" / "model.bin").read_bytes() == b"weights"
    assert (tmp_path / "out" / "d").is_dir()
