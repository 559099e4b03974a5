"""Landlock, the Linux security module that lets an unprivileged process restrict itself.

A replica calls :func:`restrict` once, before any tenant code runs; the rules hold for it
and every process it starts, and cannot be lifted. The kernel interface is three system
calls (``landlock_create_ruleset``, ``landlock_add_rule``, ``landlock_restrict_self``) and
the structures of ``include/uapi/linux/landlock.h``; the PyPI bindings found cover only the
filesystem rights of ABI 1–3, so this module speaks to the kernel through ctypes directly.

What each ABI version adds (Documentation/userspace-api/landlock.rst):
  1 (Linux 5.13) filesystem access rights; ptrace of processes outside the domain denied
  2 (5.19) REFER: renaming and linking across folders
  3 (6.2)  TRUNCATE
  4 (6.7)  TCP bind and connect by port
  5 (6.10) IOCTL_DEV: ioctl on device files
  6 (6.12) scopes: signals and abstract unix sockets limited to the domain
"""

from __future__ import annotations

import ctypes
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

# Syscall numbers: the same on every architecture (added to the unified table in 5.13).
_SYS_CREATE_RULESET = 444
_SYS_ADD_RULE = 445
_SYS_RESTRICT_SELF = 446
_CREATE_RULESET_VERSION = 1
_RULE_PATH_BENEATH = 1
_RULE_NET_PORT = 2
_PR_SET_NO_NEW_PRIVS = 38

EXECUTE = 1 << 0
WRITE_FILE = 1 << 1
READ_FILE = 1 << 2
READ_DIR = 1 << 3
REMOVE_DIR = 1 << 4
REMOVE_FILE = 1 << 5
MAKE_CHAR = 1 << 6
MAKE_DIR = 1 << 7
MAKE_REG = 1 << 8
MAKE_SOCK = 1 << 9
MAKE_FIFO = 1 << 10
MAKE_BLOCK = 1 << 11
MAKE_SYM = 1 << 12
REFER = 1 << 13
TRUNCATE = 1 << 14
IOCTL_DEV = 1 << 15

NET_BIND_TCP = 1 << 0
NET_CONNECT_TCP = 1 << 1

SCOPE_ABSTRACT_UNIX_SOCKET = 1 << 0
SCOPE_SIGNAL = 1 << 1

# The filesystem rights each ABI version knows (a ruleset may only name known rights).
_FS_BY_ABI = {
    1: (1 << 13) - 1,
    2: (1 << 14) - 1,
    3: (1 << 15) - 1,
    5: (1 << 16) - 1,
}
# Rights that apply to a file itself; a rule on a file may hold no others.
FILE_RIGHTS = EXECUTE | WRITE_FILE | READ_FILE | TRUNCATE | IOCTL_DEV
READ = EXECUTE | READ_FILE | READ_DIR
WRITE = (
    WRITE_FILE | REMOVE_DIR | REMOVE_FILE | MAKE_DIR | MAKE_REG | MAKE_SYM | MAKE_SOCK
    | MAKE_FIFO | REFER | TRUNCATE
)  # fmt: skip


class _RulesetAttr(ctypes.Structure):
    _fields_ = [
        ("handled_access_fs", ctypes.c_uint64),
        ("handled_access_net", ctypes.c_uint64),
        ("scoped", ctypes.c_uint64),
    ]


class _PathBeneathAttr(ctypes.Structure):
    _pack_ = 1  # __attribute__((packed)) in the kernel header
    _fields_ = [("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]


class _NetPortAttr(ctypes.Structure):
    _fields_ = [("allowed_access", ctypes.c_uint64), ("port", ctypes.c_uint64)]


class LandlockError(OSError):
    """The kernel refused a Landlock call."""


_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long


def abi_version() -> int:
    """The kernel's Landlock ABI version; 0 when Landlock is missing or disabled."""
    result = _libc.syscall(_SYS_CREATE_RULESET, None, ctypes.c_size_t(0), _CREATE_RULESET_VERSION)
    return max(int(result), 0)


@dataclass(frozen=True)
class Rules:
    """What a restricted process may still do; everything else Landlock handles is denied."""

    read: tuple[Path, ...] = ()  # read and execute, files or whole folders
    write: tuple[Path, ...] = ()  # read, write, create and remove beneath these folders
    devices: tuple[Path, ...] = ()  # device files to read and write (/dev/null, …)
    bind_ports: tuple[int, ...] = ()  # TCP ports it may bind (ABI ≥ 4)
    # TCP ports it may connect to (ABI ≥ 4); None leaves outbound TCP alone.
    connect_ports: tuple[int, ...] | None = None


def restrict(rules: Rules) -> int:
    """Restrict this process (and its future children) to ``rules``; returns the ABI
    version used. Raises LandlockError when Landlock is unavailable or refuses."""
    abi = abi_version()
    if abi < 1:
        raise LandlockError("Landlock is not available in this kernel")
    fs = _FS_BY_ABI[max(k for k in _FS_BY_ABI if k <= abi)]
    attr = _RulesetAttr(handled_access_fs=fs)
    if abi >= 4:
        attr.handled_access_net = NET_BIND_TCP
        if rules.connect_ports is not None:
            attr.handled_access_net |= NET_CONNECT_TCP
    if abi >= 6:
        attr.scoped = SCOPE_ABSTRACT_UNIX_SOCKET | SCOPE_SIGNAL
    size = ctypes.sizeof(_RulesetAttr) if abi >= 6 else 16 if abi >= 4 else 8
    ruleset = _check(_libc.syscall(_SYS_CREATE_RULESET, ctypes.byref(attr), size, 0), "ruleset")
    try:
        for path in rules.read:
            _allow_path(ruleset, path, READ & fs)
        for path in rules.write:
            _allow_path(ruleset, path, (READ | WRITE) & fs)
        for path in rules.devices:
            _allow_path(ruleset, path, (READ_FILE | WRITE_FILE | IOCTL_DEV) & fs)
        if abi >= 4:
            for port, access in _port_rights(rules).items():
                net = _NetPortAttr(allowed_access=access, port=port)
                _check(_libc.syscall(_SYS_ADD_RULE, ruleset, _RULE_NET_PORT, ctypes.byref(net), 0))
        # Required of a process without CAP_SYS_ADMIN, and wanted anyway: no setuid
        # program started later can regain what is given up here.
        _check(_libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "no_new_privs")
        _check(_libc.syscall(_SYS_RESTRICT_SELF, ruleset, 0), "restrict_self")
    finally:
        os.close(ruleset)
    return abi


def _port_rights(rules: Rules) -> dict[int, int]:
    """Each port named in ``rules`` with the rights it gets (one rule per port)."""
    rights: dict[int, int] = {}
    for port in rules.bind_ports:
        rights[port] = rights.get(port, 0) | NET_BIND_TCP
    for port in rules.connect_ports or ():
        rights[port] = rights.get(port, 0) | NET_CONNECT_TCP
    return rights


def _allow_path(ruleset: int, path: Path, access: int) -> None:
    try:
        fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
    except FileNotFoundError:
        return  # nothing there to allow (an optional system folder)
    try:
        if not os.path.isdir(path):
            access &= FILE_RIGHTS
        rule = _PathBeneathAttr(allowed_access=access, parent_fd=fd)
        _check(_libc.syscall(_SYS_ADD_RULE, ruleset, _RULE_PATH_BENEATH, ctypes.byref(rule), 0))
    finally:
        os.close(fd)


def _check(result: int, what: str = "add_rule") -> int:
    if result < 0:
        errno = ctypes.get_errno()
        raise LandlockError(errno, f"landlock {what}: {os.strerror(errno)}")
    return int(result)


def merge_paths(paths: Iterable[Path]) -> tuple[Path, ...]:
    """The paths without those already beneath another one (fewer rules, same effect)."""
    unique = sorted({Path(os.path.abspath(p)) for p in paths}, key=lambda p: len(p.parts))
    kept: list[Path] = []
    for path in unique:
        if not any(path == k or k in path.parents for k in kept):
            kept.append(path)
    return tuple(kept)
