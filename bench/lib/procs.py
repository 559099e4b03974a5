"""Processes under test: spawn each in its own session, wait until ready, measure memory
and CPU over its whole process tree, and kill exactly that tree afterwards."""

from __future__ import annotations

import http.client
import os
import signal
import socket
import subprocess
import time
from collections.abc import Mapping
from pathlib import Path

HOST = "127.0.0.1"
_LIVE: dict[int, subprocess.Popen[bytes]] = {}


def log(msg: str) -> None:
    """One timestamped progress line on stdout."""
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def _stat(pid: int) -> tuple[str, int, int, int] | None:
    """(state, ppid, process group, session) of a process, or None when it is gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = raw[raw.rindex(")") + 2 :].split()
    return fields[0], int(fields[1]), int(fields[2]), int(fields[3])


def session_pids(sid: int) -> list[int]:
    """Live (non-zombie) processes of the session that `sid` started."""
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            st = _stat(int(entry))
            if st and st[3] == sid and st[0] != "Z":
                out.append(int(entry))
    return out


def _status_kib(path: Path, key: str) -> int:
    try:
        for line in path.read_text().splitlines():
            if line.startswith(key):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return 0


def tree_memory(sid: int) -> dict[str, float]:
    """RSS and PSS summed over every process of the session, in MiB."""
    pids = session_pids(sid)
    rss = sum(_status_kib(Path(f"/proc/{p}/status"), "VmRSS:") for p in pids)
    pss = sum(_status_kib(Path(f"/proc/{p}/smaps_rollup"), "Pss:") for p in pids)
    return {
        "processes": len(pids),
        "rss_mib": round(rss / 1024, 1),
        "pss_mib": round(pss / 1024, 1),
    }


def tree_cpu_seconds(sid: int) -> float:
    """User + system CPU seconds used so far by the live processes of the session."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in session_pids(sid):
        try:
            raw = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        fields = raw[raw.rindex(")") + 2 :].split()
        total += int(fields[11]) + int(fields[12])
    return total / tick


def spawn(
    cmd: list[str], log_path: Path, cwd: Path, env: Mapping[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """Start `cmd` in a new session with stdout and stderr in `log_path`.

    Each server gets its own empty `cwd`: `python -m X` puts the cwd first on sys.path, and a
    folder there named like a package would shadow it."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    cwd.mkdir(parents=True, exist_ok=True)
    with open(log_path, "wb") as out:
        proc = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=cwd,
            env=dict(env) if env is not None else None,
            start_new_session=True,
        )
    _LIVE[proc.pid] = proc
    return proc


def _signal_session(sid: int, sig: signal.Signals) -> None:
    try:
        os.killpg(sid, sig)
    except (ProcessLookupError, PermissionError):
        pass
    for pid in session_pids(sid):  # members that moved to another process group
        try:
            os.kill(pid, sig)
        except (ProcessLookupError, PermissionError):
            pass


def kill_tree(proc: subprocess.Popen[bytes], grace: float = 8.0) -> None:
    """SIGTERM the process's session, then SIGKILL whatever is left after `grace` seconds."""
    sid = proc.pid
    for sig, wait_s in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
        _signal_session(sid, sig)
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            if proc.poll() is not None and not session_pids(sid):
                break
            time.sleep(0.05)
        if proc.poll() is not None and not session_pids(sid):
            break
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        pass
    if session_pids(sid):
        log(f"WARNING: processes of session {sid} still alive after SIGKILL")
    _LIVE.pop(proc.pid, None)


def kill_all() -> None:
    """Kill every process tree this module started and has not killed yet."""
    for proc in list(_LIVE.values()):
        kill_tree(proc)


def stop_on_signals() -> None:
    """Turn SIGTERM/SIGHUP into KeyboardInterrupt so that `finally` blocks clean up."""

    def interrupt(signum: int, _frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, interrupt)
    signal.signal(signal.SIGHUP, interrupt)


def free_ports(n: int) -> list[int]:
    """`n` distinct ports free on 127.0.0.1 right now."""
    socks: list[socket.socket] = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind((HOST, 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def tail(path: Path, n: int = 15) -> str:
    """The last `n` lines of a log, indented, for error messages."""
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        return ""
    return "\n".join("    " + line for line in lines[-n:])


def http_req(
    port: int,
    method: str,
    path: str,
    body: bytes | None = None,
    headers: Mapping[str, str] | None = None,
    timeout: float = 10.0,
) -> tuple[int, dict[str, str], bytes]:
    """One HTTP/1.1 request to 127.0.0.1: (status, lower-cased headers, body)."""
    conn = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=dict(headers or {}))
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


def wait_http_ok(
    proc: subprocess.Popen[bytes], port: int, path: str, started: float, timeout: float = 60.0
) -> float | None:
    """Seconds from `started` until GET `path` answers 200; None if the process exits first
    or `timeout` passes."""
    while time.monotonic() - started < timeout:
        if proc.poll() is not None:
            return None
        try:
            if http_req(port, "GET", path, timeout=1.0)[0] == 200:
                return time.monotonic() - started
        except (OSError, http.client.HTTPException):
            pass
        time.sleep(0.02)
    return None


def start_ready(
    name: str,
    cmd: list[str],
    port: int,
    ready_path: str,
    work: Path,
    env: Mapping[str, str] | None = None,
) -> tuple[subprocess.Popen[bytes], float]:
    """Spawn `cmd` (log in work/logs/NAME.log) and wait until `ready_path` answers 200.

    Returns the process and its spawn→ready seconds; raises RuntimeError with the log's tail
    when it does not get ready."""
    log_path = work / "logs" / f"{name}.log"
    log(f"{name}: starting: {' '.join(cmd)}")
    started = time.monotonic()
    proc = spawn(cmd, log_path, cwd=work / "cwd" / name, env=env)
    ready = wait_http_ok(proc, port, ready_path, started)
    if ready is None:
        code = proc.poll()
        kill_tree(proc)
        why = f"exit code {code}" if code is not None else "not ready within 60 s"
        raise RuntimeError(f"{name}: {why}; log {log_path}:\n{tail(log_path)}")
    log(f"{name}: ready in {ready:.2f} s")
    return proc, ready


def loadavg() -> list[float]:
    """The 1, 5 and 15 minute load averages."""
    return [round(v, 2) for v in os.getloadavg()]
