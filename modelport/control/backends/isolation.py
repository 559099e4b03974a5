"""How this platform keeps tenants' model code from the platform and from each other:
decided once at start-up, reported to the operator, and turned into one Confinement per
replica (see ``confine.py`` for how a replica applies it, docs/security.md for the model)."""

from __future__ import annotations

import ctypes
import hashlib
import json
import os
import shutil
import stat
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path

from modelport.control.backends import landlock
from modelport.control.backends.confine import Confinement, cpus_for

# Per-namespace uids and gids, used when the platform runs as root: far above the ranges
# that distributions hand to people and to /etc/subuid, and the same number for both.
UID_BASE = 1_500_000_000
_PR_SET_DUMPABLE = 4


class UidMap:
    """Namespace → uid, kept in DATA_DIR so a namespace keeps its uid across restarts (the
    files it owns stay its own)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        try:
            self._uids: dict[str, int] = json.loads(path.read_text())
        except FileNotFoundError:
            self._uids = {}

    def uid(self, namespace: str) -> int:
        with self._lock:
            found = self._uids.get(namespace)
            if found is None:
                found = max(self._uids.values(), default=UID_BASE) + 1
                self._uids[namespace] = found
                tmp = self.path.with_suffix(".tmp")
                tmp.write_text(json.dumps(self._uids, indent=1, sort_keys=True))
                tmp.replace(self.path)
            return found


@dataclass
class Isolation:
    """What confines replicas on this host."""

    data_dir: Path
    landlock_abi: int
    as_root: bool
    enabled: bool = True
    uids: UidMap | None = None
    _turn: int = field(default=0, repr=False)

    # Root, but unable to make mount namespaces (a container without CAP_SYS_ADMIN): the
    # folders on the way to the interpreter may not open to another uid, so replicas keep
    # the platform's uid, confined by Landlock alone.
    no_mount_namespaces: bool = False

    @classmethod
    def detect(cls, data_dir: Path, *, enabled: bool = True) -> Isolation:
        root = os.geteuid() == 0
        separate = root and enabled and _can_unshare_mounts()
        uids = UidMap(data_dir / "replica-uids.json") if separate else None
        found = cls(data_dir, landlock.abi_version(), root, enabled, uids)
        found.no_mount_namespaces = root and enabled and not separate
        return found

    def report(self) -> list[tuple[bool, str]]:
        """(holds, sentence) for each protection, for the start-up banner; never claims what
        this host cannot give."""
        if not self.enabled:
            return [(False, "replica isolation is off (--isolation off): model code runs with "
                     "the platform's user and can read its data")]  # fmt: skip
        abi = self.landlock_abi
        lines = [
            (abi >= 1, f"Landlock ABI {abi}: replicas read only the runtime and their model"
             if abi else "Landlock unavailable (kernel < 5.13 or LSM off): replicas can read "
             "whatever the platform's user can read"),
            (abi >= 6, "signals and abstract sockets scoped to each replica" if abi >= 6
             else "replicas can signal the platform's other processes (Landlock ABI < 6)"),
            (abi >= 4, "TCP bind limited to the replica's own port" if abi >= 4
             else "replicas may open listening ports (Landlock ABI < 4)"),
            self._uid_line(),
        ]  # fmt: skip
        return lines

    def _uid_line(self) -> tuple[bool, str]:
        if self.uids is not None:
            return True, "running as root: each namespace's replicas get their own uid"
        if self.no_mount_namespaces:
            return False, (
                "root without mount namespaces (no CAP_SYS_ADMIN?): replicas run as root, "
                "confined by Landlock alone"
            )
        return self.landlock_abi >= 6, (
            "not root: replicas share the platform's uid (Landlock and non-dumpable processes "
            "keep them out of its files, memory and signals)"
        )

    def private_dir(self, namespace: str, service: str, part: str) -> Path:
        """A fresh, empty folder only this replica (and the platform) can use."""
        path = self.data_dir / "run" / namespace / service / part
        shutil.rmtree(path, ignore_errors=True)
        path.mkdir(parents=True, mode=0o700)
        if self.uids is not None:
            uid = self.uids.uid(namespace)
            os.chown(path, uid, uid)
        return path

    def readable(self, namespace: str, path: Path) -> Path:
        """``path``, or a copy of it the namespace's uid can read (root only). Models the
        platform downloaded are granted in place; a local model it cannot read (an admin's
        0700 folder) is copied into the namespace's part of the cache."""
        if self.uids is None:
            return path
        if self.data_dir in path.parents:
            self.grant(namespace, path)
            return path
        uid = self.uids.uid(namespace)
        if _readable_by(path, uid):
            return path
        digest = hashlib.sha256(str(path).encode()).hexdigest()[:24]
        copy = self.data_dir / "cache" / namespace / "local-copies" / digest / path.name
        shutil.rmtree(copy.parent, ignore_errors=True)
        copy.parent.mkdir(parents=True)
        if path.is_dir():
            shutil.copytree(path, copy, symlinks=True)
        else:
            shutil.copy2(path, copy)
        self.grant(namespace, copy.parent)
        return copy

    def grant(self, namespace: str, path: Path) -> None:
        """Let ``namespace``'s uid read a model the platform downloaded (root only): group
        read for its gid, nothing for others. Paths outside DATA_DIR are left as they are."""
        if self.uids is None or self.data_dir not in path.parents:
            return
        gid = self.uids.uid(namespace)
        for item in [path, *path.rglob("*")] if path.is_dir() else [path]:
            if item.is_symlink():
                continue
            os.chown(item, 0, gid)
            os.chmod(item, 0o750 if item.is_dir() else 0o640)

    def confinement(
        self,
        namespace: str,
        models: list[Path],
        private_dir: Path,
        *,
        memory_bytes: int | None = None,
        cpu_limit: float | None = None,
    ) -> Confinement | None:
        if not self.enabled:
            return None
        self._turn += 1
        uid = self.uids.uid(namespace) if self.uids is not None else None
        return Confinement(
            model_paths=tuple(str(m) for m in models),
            private_dir=str(private_dir),
            port=0,  # the backend sets the port it picked
            hidden=(str(self.data_dir),),
            memory_bytes=memory_bytes,
            cpus=cpus_for(cpu_limit, self._turn),
            uid=uid,
            gid=uid,
            landlock=self.landlock_abi >= 1,
        )


def _readable_by(path: Path, uid: int) -> bool:
    """Whether ``uid`` (in no group of the path's) can read all of ``path``; the folders
    above it do not count (the replica's mount namespace opens those)."""
    items = [path, *path.rglob("*")] if path.is_dir() else [path]
    for item in items:
        st = item.lstat()
        if stat.S_ISLNK(st.st_mode):
            continue
        need = stat.S_IROTH | (stat.S_IXOTH if stat.S_ISDIR(st.st_mode) else 0)
        if st.st_uid != uid and st.st_mode & need != need:
            return False
    return True


def _can_unshare_mounts() -> bool:
    """Whether this process may make a mount namespace (tried in a throwaway process)."""
    probe = "import ctypes, sys; sys.exit(ctypes.CDLL(None).unshare(0x20000) != 0)"
    try:
        done = subprocess.run([sys.executable, "-S", "-c", probe], timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


def harden_platform(data_dir: Path) -> None:
    """The platform's own process: nothing it creates is readable by others, and no process
    of the same uid can read its memory or ``/proc/PID/environ`` (non-dumpable)."""
    os.umask(0o077)
    data_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(data_dir, 0o700)
    # Files an older version (or another command) made with wider modes: the signing keys
    # live in identity.db.
    for pattern in ("*.db", "*.db-wal", "*.db-shm", "*.json"):
        for path in data_dir.glob(pattern):
            os.chmod(path, 0o600)
    ctypes.CDLL(None).prctl(_PR_SET_DUMPABLE, 0, 0, 0, 0)


def take_from_environment(name: str) -> str | None:
    """Remove ``name`` from the environment and blank its bytes in the block the process
    started with: ``os.environ.pop`` alone leaves them in ``/proc/PID/environ``."""
    value = os.environ.get(name)
    if value is None:
        return None
    libc = ctypes.CDLL(None)
    libc.getenv.restype = ctypes.c_void_p
    address = libc.getenv(name.encode())
    if address:
        # getenv points into the original block while nothing has replaced the entry.
        ctypes.memset(address, 0, len(os.fsencode(value)))
    del os.environ[name]
    return value
