"""What a replica may reach, and how it confines itself before any tenant code runs.

Loading a model runs its code (pickles, ``.py`` models), so a replica is treated as
hostile. The platform builds a :class:`Confinement` for each replica; the replica's first
act, still running only the platform's code, is :func:`apply`:

1. resource limits (``resources.limits``: memory as RLIMIT_DATA, cpu as the CPUs it may use);
2. when the platform runs as root: a private mount namespace in which only the folders the
   replica needs can be walked into, then the namespace's own unprivileged uid and gid —
   tenant code never runs as root, whose ownership of every system file Landlock cannot
   take away (chmod is not a Landlock right);
3. Landlock: read-only access to the Python installation, the system libraries and the
   model; read-write to its private folder; TCP bind on its own port only; no signals to or
   ptrace of processes outside its sandbox, so ``/proc/<platform pid>/environ`` is closed.

docs/security.md describes the threat model and what this does not cover.
"""

from __future__ import annotations

import ctypes
import math
import os
import resource
import stat
import sys
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from modelport.control.backends import landlock

# Read-only system locations a Python process and its native libraries use.
SYSTEM_READ = ("/usr", "/lib", "/lib32", "/lib64", "/libx32", "/bin", "/sbin", "/sys")
# From /etc only what libraries read: the dynamic loader, name service, time zone and TLS
# roots — never /etc/shadow, host keys or other credentials.
ETC_READ = (
    "ld.so.cache", "ld.so.conf", "ld.so.conf.d", "localtime", "timezone", "hosts",
    "resolv.conf", "nsswitch.conf", "host.conf", "gai.conf", "passwd", "group", "services",
    "protocols", "mime.types", "ssl/certs", "ssl/openssl.cnf", "ca-certificates",
    "ca-certificates.conf", "pki/tls/certs", "alternatives", "os-release",
)  # fmt: skip
PROC_READ = ("/proc/cpuinfo", "/proc/meminfo", "/proc/stat", "/proc/self")
DEVICES = ("/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom")

_CLONE_NEWNS = 0x00020000
_CLONE_NEWUSER = 0x10000000
_MS_BIND = 4096
_MS_REC = 16384
_MS_PRIVATE = 1 << 18
_PR_SET_DUMPABLE = 4
_PR_SET_PDEATHSIG = 1


@dataclass(frozen=True)
class Confinement:
    """What one replica may reach. Paths are absolute."""

    model_paths: tuple[str, ...]
    private_dir: str  # its HOME and TMPDIR: the one place it may write
    port: int
    hidden: tuple[str, ...] = ()  # the platform's own folders: never readable, even if nested
    memory_bytes: int | None = None
    cpus: tuple[int, ...] = ()
    uid: int | None = None  # used when the platform runs as root
    gid: int | None = None
    landlock: bool = True
    # TCP ports it may connect to; None: any. A replica on a Ray node gets () (or its
    # predictor's port): Ray's own services accept any local client without a credential.
    connect_ports: tuple[int, ...] | None = None
    # Folders covered by an empty tmpfs in its mount namespace (root only): Ray's session
    # folder and /dev/shm hold the Unix sockets of the raylet and the object store.
    cover: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, object]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> Confinement:
        fields = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items()}
        return cls(**fields)  # type: ignore[arg-type]


@dataclass
class Applied:
    """What :func:`apply` did, for the replica's log."""

    landlock_abi: int = 0
    uid: int | None = None
    notes: list[str] = field(default_factory=list)


def apply(c: Confinement) -> Applied:
    """Confine this process as ``c`` says. Irreversible; call before loading the model."""
    done = Applied()
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # a core file would hold the replica key
    if c.memory_bytes:
        resource.setrlimit(resource.RLIMIT_DATA, (c.memory_bytes, c.memory_bytes))
    if c.cpus:
        os.sched_setaffinity(0, c.cpus)
    read = runtime_paths(c.hidden) + tuple(Path(p) for p in c.model_paths)
    separate = os.geteuid() == 0 and c.uid is not None and c.gid is not None
    if c.connect_ports is not None and c.landlock and landlock.abi_version() < 4:
        # Without the network rule, model code could reach the services the caller asked
        # to keep out of reach (a Ray cluster's): refuse rather than run exposed.
        raise OSError(
            f"this kernel cannot limit outbound TCP (Landlock ABI {landlock.abi_version()} "
            "< 4, Linux < 6.7)"
        )
    if c.cover:
        _new_mount_namespace()
        for folder in c.cover:
            if os.path.isdir(folder):
                _check(_libc.mount(b"tmpfs", folder.encode(), b"tmpfs", 0, b"mode=0755"), "cover")
    if separate:
        assert c.uid is not None and c.gid is not None
        _reveal_only(read + (Path(c.private_dir),), c.uid, c.gid, fresh=not c.cover)
        os.setgroups([])
        os.setresgid(c.gid, c.gid, c.gid)
        os.setresuid(c.uid, c.uid, c.uid)  # clears every capability
        done.uid = c.uid
    _libc.prctl(_PR_SET_DUMPABLE, 0, 0, 0, 0)
    if c.landlock:
        try:
            done.landlock_abi = landlock.restrict(
                landlock.Rules(
                    read=landlock.merge_paths(read),
                    write=(Path(c.private_dir),),
                    devices=tuple(Path(d) for d in DEVICES),
                    bind_ports=(c.port,),
                    connect_ports=c.connect_ports,
                )
            )
        except landlock.LandlockError as exc:
            done.notes.append(f"Landlock not applied: {exc}")
    return done


def runtime_paths(hidden: Iterable[str] = ()) -> tuple[Path, ...]:
    """What any replica may read: the interpreter, its libraries, modelport itself and the
    system folders above — less ``hidden`` wherever it lies beneath one of them. The current
    folder is left out: ``python -m`` puts it first on sys.path, and it may be a home folder."""
    import modelport

    cwd = os.getcwd()
    python = {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix}
    python.add(os.path.dirname(os.path.realpath(sys.executable)))
    python.update(p for p in sys.path if p and p != cwd and os.path.exists(p))
    python.add(os.path.dirname(modelport.__file__))
    system = {*SYSTEM_READ, *PROC_READ, *(f"/etc/{name}" for name in ETC_READ)}
    roots = [Path(os.path.realpath(p)) for p in python | system if os.path.exists(p)]
    hide = [Path(os.path.realpath(h)) for h in hidden]
    for h in hide:
        roots = [p for root in roots for p in _without(root, h)]
    return landlock.merge_paths(roots)


def _without(root: Path, hidden: Path) -> list[Path]:
    """``root`` as a list of paths covering all of it except ``hidden``."""
    if root == hidden or hidden in root.parents:
        return []
    if root not in hidden.parents:
        return [root]
    kept: list[Path] = []
    here = root
    for part in hidden.relative_to(root).parts:
        for child in here.iterdir():
            if child.name == part:
                continue
            real = Path(os.path.realpath(child))
            # A link into (or above) the hidden folder would open it again.
            if real == hidden or hidden in real.parents or real in hidden.parents:
                continue
            kept.append(child)
        here = here / part
    return kept


def _new_mount_namespace() -> None:
    """A mount namespace of this process's own, whose mounts no other process sees; not
    root, inside a user namespace of its own that maps only its own uid and gid."""
    uid, gid = os.getuid(), os.getgid()
    if os.geteuid() == 0:
        _check(_libc.unshare(_CLONE_NEWNS), "unshare")
    else:
        _check(_libc.unshare(_CLONE_NEWUSER | _CLONE_NEWNS), "unshare (user namespace)")
        Path("/proc/self/setgroups").write_text("deny")
        Path("/proc/self/uid_map").write_text(f"{uid} {uid} 1")
        Path("/proc/self/gid_map").write_text(f"{gid} {gid} 1")
    _check(_libc.mount(b"none", b"/", None, _MS_REC | _MS_PRIVATE, None), "mount private")


def _reveal_only(needed: Iterable[Path], uid: int, gid: int, *, fresh: bool = True) -> None:
    """In a mount namespace (a new one when ``fresh``), cover every folder ``uid`` cannot
    walk through on the way to a needed path (``/root`` holding the interpreter, the
    platform's 0700 data folder) with an empty tmpfs, and bind the needed paths back in at
    their own names."""
    if fresh:
        _new_mount_namespace()
    blocked: dict[Path, list[Path]] = {}
    for path in landlock.merge_paths(needed):
        wall = next((a for a in _ancestors(path) if not _walkable(a, uid, gid)), None)
        if wall is not None:
            blocked.setdefault(wall, []).append(path)
    # Only the outermost walls are covered: the paths behind a wall inside one are bound
    # back at their names, which walks them through the new tmpfs instead.
    outer = [w for w in blocked if not any(o in w.parents for o in blocked)]
    old_umask = os.umask(0o022)  # the folders made in the tmpfs must be walkable
    try:
        for wall in outer:
            inner = [p for w, ps in blocked.items() if w == wall or wall in w.parents for p in ps]
            _cover(wall, inner)
    finally:
        os.umask(old_umask)


def _cover(wall: Path, inner: list[Path]) -> None:
    fds = [(p, os.open(p, os.O_PATH | os.O_CLOEXEC)) for p in inner]
    _check(_libc.mount(b"tmpfs", bytes(wall), b"tmpfs", 0, b"mode=0755"), "mount tmpfs")
    for path, fd in fds:
        if os.path.isdir(f"/proc/self/fd/{fd}"):
            os.makedirs(path, exist_ok=True)
        else:
            os.makedirs(path.parent, exist_ok=True)
            path.touch()
        source = f"/proc/self/fd/{fd}".encode()
        _check(_libc.mount(source, bytes(path), None, _MS_BIND | _MS_REC, None), "bind")
        os.close(fd)


def _ancestors(path: Path) -> list[Path]:
    """The folders walked through to reach ``path``, below ``/``."""
    return list(reversed(path.parents))[1:]


def _walkable(folder: Path, uid: int, gid: int) -> bool:
    st = os.stat(folder)
    if st.st_uid == uid:
        return bool(st.st_mode & stat.S_IXUSR)
    if st.st_gid == gid:
        return bool(st.st_mode & stat.S_IXGRP)
    return bool(st.st_mode & stat.S_IXOTH)


def cpus_for(limit: float | None, turn: int) -> tuple[int, ...]:
    """``ceil(limit)`` of this process's CPUs, taking turns so replicas spread out."""
    if not limit:
        return ()
    available = sorted(os.sched_getaffinity(0))
    count = min(len(available), max(1, math.ceil(limit)))
    start = (turn * count) % len(available)
    return tuple(sorted(available[(start + i) % len(available)] for i in range(count)))


def die_with_parent(sig: int) -> None:
    """Have the kernel send ``sig`` when the parent exits (reset by a uid change, so this
    comes after :func:`apply`)."""
    _libc.prctl(_PR_SET_PDEATHSIG, sig, 0, 0, 0)


_libc = ctypes.CDLL(None, use_errno=True)


def _check(result: int, what: str) -> None:
    if result != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"{what}: {os.strerror(errno)}")
