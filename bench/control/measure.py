"""Measuring a running platform: /proc helpers, CPU used by other processes, wrk runs
and their medians."""

from __future__ import annotations

import collections
import os
import re
import resource
import statistics
import time
from pathlib import Path
from typing import Any

from bench.control.settings import CLK_TCK, log
from bench.lib import load, results
from bench.lib.cpu import FOREIGN_LIMIT, machine_busy_seconds


# =========================================================================== /proc helpers
def stat_fields(pid: int) -> list[str] | None:
    """Fields of /proc/PID/stat from the state on (index 0 = field 3 of proc(5))."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return raw[raw.rindex(")") + 2 :].split()


def children_map() -> dict[int, list[int]]:
    out: dict[int, list[int]] = collections.defaultdict(list)
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            f = stat_fields(int(entry))
            if f:
                out[int(f[1])].append(int(entry))
    return out


def descendants(pid: int) -> list[int]:
    """Every process below pid (by parent pid), zombies included."""
    cm, out, stack = children_map(), [], [pid]
    while stack:
        for c in cm.get(stack.pop(), []):
            out.append(c)
            stack.append(c)
    return out


def alive(pid: int) -> bool:
    f = stat_fields(pid)
    return f is not None and f[0] != "Z"


def cpu_seconds(pid: int, with_reaped: bool = False) -> float:
    """utime + stime of one process (all its threads); with_reaped adds its waited-for
    children's (cutime + cstime)."""
    f = stat_fields(pid)
    if not f:
        return 0.0
    ticks = int(f[11]) + int(f[12]) + ((int(f[13]) + int(f[14])) if with_reaped else 0)
    return ticks / CLK_TCK


def tree_cpu(pid: int) -> float:
    """CPU seconds of a process and everything below it (workers), reaped ones included."""
    return sum(cpu_seconds(p, with_reaped=True) for p in [pid, *descendants(pid)])


def start_boottime(pid: int) -> float | None:
    """When the process started, in seconds since boot (CLOCK_BOOTTIME), 1/CLK_TCK steps."""
    f = stat_fields(pid)
    return int(f[19]) / CLK_TCK if f else None


def comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def proc_memory(pid: int | None) -> dict[str, Any]:
    out: dict[str, Any] = {"pid": pid, "rss_mib": None, "pss_mib": None}
    if not pid:
        return out
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                out["rss_mib"] = round(int(line.split()[1]) / 1024, 1)
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                out["pss_mib"] = round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return out


def on_signal(signum: int, _frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def machine_info() -> dict[str, Any]:
    """The machine, in the keys CONTROL.md's renderer reads."""
    m = results.machine()
    return {
        "nproc": m["cpus"],
        "cpu": m["cpu_model"],
        "mem_gib": m["memory_gib"],
        "kernel": m["kernel"],
        "python": m["python"],
    }


def wrk(
    url: str, body_file: Path, headers: list[str], threads: int, conns: int, secs: int
) -> dict[str, Any]:
    """One wrk run posting `body_file` as JSON with extra `headers` ("Name: value")."""
    return load.run_wrk(
        url, body_file, threads=threads, connections=conns, seconds=secs, headers=headers
    )


def median_of(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The run with the median req/s (undisturbed runs first), with every run's req/s."""
    ok = [r for r in runs if r.get("status") == "ok"]
    ok = sorted([r for r in ok if not r.get("suspect")] or ok, key=lambda r: r["rps"])
    if not ok:
        return runs[-1]
    best = dict(ok[len(ok) // 2])
    if len(runs) > 1:
        best["runs_rps"] = [r.get("rps") for r in runs]  # in round order
    return best


def frame_package(frame: str) -> str:
    """The library a py-spy frame belongs to: `uvicorn`, `modelport/gateway`, `asyncio`..."""
    m = re.search(r"\(([^()]*)\)$", frame)
    path = m.group(1) if m else ""
    parts = path.split("/")
    if parts[0] == "modelport" and len(parts) > 2:
        return "/".join(parts[:2])
    return parts[0] if len(parts) > 1 else path or "?"


class Watch:
    """CPU used on the machine by processes that are not ours, in cores (see gateway.py's
    CpuWatch). Ours: this process, everything it waited for (wrk, CLI runs) and every live
    descendant with what each has reaped — the platform's zygote and replicas run in
    sessions of their own, so a session-based count would call them foreign."""

    def __init__(self) -> None:
        self.t0 = time.monotonic()
        self.busy0, self.ours0 = machine_busy_seconds(), self._ours()

    @staticmethod
    def _ours() -> float:
        ch = resource.getrusage(resource.RUSAGE_CHILDREN)
        me = resource.getrusage(resource.RUSAGE_SELF)
        trees = sum(cpu_seconds(p, with_reaped=True) for p in descendants(os.getpid()))
        return trees + ch.ru_utime + ch.ru_stime + me.ru_utime + me.ru_stime

    def foreign_cores(self) -> float:
        secs = max(time.monotonic() - self.t0, 1e-3)
        busy = machine_busy_seconds() - self.busy0
        return round(max(0.0, busy - (self._ours() - self.ours0)) / secs, 2)


def wait_quiet(limit_s: float = 90.0) -> float:
    """Wait until other processes use < FOREIGN_LIMIT cores over 3 s; their last reading."""
    t0 = time.monotonic()
    while True:
        w = Watch()
        time.sleep(3.0)
        f = w.foreign_cores()
        if f < FOREIGN_LIMIT:
            return f
        if time.monotonic() - t0 > limit_s:
            log(f"  machine still busy ({f} cores used by other processes); going on")
            return f
        log(f"  waiting for a quiet machine ({f} cores used by other processes)")


def pct(vals: list[float], q: float) -> float | None:
    return load.percentile(sorted(vals), q) if vals else None


def dist(vals: list[float], nd: int = 3) -> dict[str, Any]:
    """p50 / p90 / max / min / mean of a list (None when empty)."""
    if not vals:
        return {"n": 0}
    return {
        "n": len(vals),
        "p50": round(statistics.median(vals), nd),
        "p90": round(load.percentile(sorted(vals), 90), nd),
        "max": round(max(vals), nd),
        "min": round(min(vals), nd),
        "mean": round(statistics.fmean(vals), nd),
    }
