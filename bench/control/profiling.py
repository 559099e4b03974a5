"""py-spy of the platform and of CLI runs, grouped by part of the code."""

from __future__ import annotations

import collections
import os
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from bench.control.measure import frame_package
from bench.control.platform import Platform

# =========================================================================== profiling
# (phase of a CLI run, test on the sampled stack's frames), first match wins
CLI_PHASES: tuple[tuple[str, Callable[[list[str]], bool]], ...] = (
    (
        "typer's parameter conversion: `typer._adapters` imports pydantic and builds a "
        "TypeAdapter per option (typer 0.29)",
        lambda st: any("typer/_adapters" in f or "typer/_coercion" in f for f in st),
    ),
    (
        "the HTTP request (urllib, the API's answer)",
        lambda st: any(f.startswith(("urlopen ", "HTTPConnection", "HTTPResponse")) for f in st),
    ),
    ("the table (`_render`)", lambda st: any(f.startswith("_render ") for f in st)),
    (
        "rest of the command (config, token, JSON decode)",
        lambda st: any(f.startswith("Command.__call__ ") for f in st),
    ),
    (
        "typer building the click command tree (`get_command`)",
        lambda st: any(f.startswith("get_command ") for f in st),
    ),
    ("imports at start (`modelport.cli.main` → typer, click…) and the rest", lambda st: True),
)
CLI_OWN = ("the HTTP request", "the table", "rest of the command")  # the rest: every command


def cli_profile(pf: Platform, args: list[str], runs: int, out_dir: Path) -> dict[str, Any]:
    """py-spy (1000 Hz, --nonblocking) over `runs` runs of the CLI command; samples per
    phase of the run, in ms per run (py-spy starting the process adds its own delay)."""
    spy = shutil.which("py-spy")
    if not spy:
        return {"status": "skipped", "reason": "py-spy not found"}
    rate, files = 1000, []
    for i in range(runs):
        out = out_dir / f"pyspy-cli-{i}.txt"
        files.append(out)
        r = subprocess.run(
            [spy, "record", "-r", str(rate), "--nonblocking", "--nolineno", "-f", "raw"]
            + ["-o", str(out), "--", *pf.cli_bin, *args],
            capture_output=True,
            text=True,
            env=pf.env,
            cwd=pf.dir,
            timeout=60,
        )
        if r.returncode != 0 or not out.exists():
            return {"status": "error", "detail": (r.stderr or r.stdout)[-400:]}
    return {"status": "ok", "cmd": "modelport " + " ".join(args), **cli_phases(files, rate)}


def read_stacks(path: Path) -> Iterator[tuple[list[str], int]]:
    """(frames, samples) of each line of a py-spy raw file, without process/thread frames."""
    for line in path.read_text().splitlines():
        stack, _, n = line.rpartition(" ")
        if n.isdigit():
            skip = ("process ", "thread ")
            yield [f for f in stack.split(";") if f and not f.startswith(skip)], int(n)


def cli_phases(files: list[Path], rate: int) -> dict[str, Any]:
    phases: collections.Counter[str] = collections.Counter()
    total, runs = 0, len(files)
    for path in files:
        for frames, n in read_stacks(path):
            total += n
            if not frames:
                phases["interpreter start-up and shutdown (no Python frame)"] += n
                continue
            phases[next(name for name, test in CLI_PHASES if test(frames))] += n
    return {
        "runs": runs,
        "rate_hz": rate,
        "ms_per_run": round(total * 1000 / rate / runs, 1),
        "phases": [
            {"phase": k, "ms": round(n / rate * 1000 / runs, 1), "pct": round(100 * n / total, 1)}
            for k, n in phases.most_common()
        ],
    }


def pyspy(pid: int, seconds: int, out: Path, load: list[str] | None = None) -> dict[str, Any]:
    """py-spy record of `pid` (200 Hz, --nonblocking), optionally while `load` runs."""
    spy = shutil.which("py-spy")
    if not spy:
        return {"status": "skipped", "reason": "py-spy not found"}
    proc = None
    if load:
        proc = subprocess.Popen(
            load, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
        )
        time.sleep(1.5)
    rate = 200
    try:
        r = subprocess.run(
            [spy, "record", "-p", str(pid), "-d", str(seconds), "-r", str(rate), "--nonblocking"]
            + ["--nolineno", "-f", "raw", "-o", str(out)],
            capture_output=True,
            text=True,
            timeout=seconds + 60,
        )
    finally:
        if proc is not None:
            try:
                proc.wait(timeout=seconds + 30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
    if r.returncode != 0 or not out.exists():
        return {"status": "error", "detail": (r.stderr or r.stdout)[-400:]}
    self_c: collections.Counter[str] = collections.Counter()
    incl: collections.Counter[str] = collections.Counter()
    pkg: collections.Counter[str] = collections.Counter()
    part: collections.Counter[str] = collections.Counter()
    total = 0
    for frames, n in read_stacks(out):
        if not frames:
            continue
        total += n
        self_c[frames[-1]] += n
        pkg[frame_package(frames[-1])] += n
        part[frame_part(frames[-1])] += n
        for f in set(frames):
            if "(modelport/" in f or "sqlalchemy/orm" in f:
                incl[f] += n

    def top(c: collections.Counter[str], k: int) -> list[dict[str, Any]]:
        return [{"frame": f, "pct": round(100 * n / total, 1)} for f, n in c.most_common(k)]

    return {
        "status": "ok",
        "samples": total,
        "seconds": seconds,
        "rate_hz": rate,
        # samples of a thread that was not idle ÷ samples possible: how busy the process was
        "busy_fraction": round(total / (seconds * rate), 3),
        "raw": str(out),
        "self": top(self_c, 10),
        "self_by_package": top(pkg, 8),
        "inclusive": top(incl, 14),
        "by_part": [{"part": f, "pct": round(100 * n / total, 1)} for f, n in part.most_common()],
    }


PARTS = (  # (part of the platform, what the frame's file path starts with)
    (
        "proxy (gateway/proxy.py, connections.py)",
        ("modelport/gateway/proxy", "modelport/gateway/connections"),
    ),
    ("gateway: routing, auth, paths", ("modelport/gateway/", "modelport/identity/")),
    ("control plane, store", ("modelport/control/", "sqlalchemy/", "json/")),
    (
        "uvicorn (HTTP server; its `send` includes uvloop's socket write, C code)",
        ("uvicorn/", "httptools/", "h11/", "starlette/"),
    ),
    (
        "event loop (uvloop's C loop shows as `Runner.run`: epoll, reads, callbacks) / asyncio",
        ("asyncio/", "uvloop/", "selectors.py", "socket.py"),
    ),
)


def frame_part(frame: str) -> str:
    """Which part of the platform a py-spy frame (`func (path)`) belongs to."""
    m = re.search(r"\(([^()]*)\)$", frame)
    path = m.group(1) if m else ""
    for name, prefixes in PARTS:
        if path.startswith(prefixes):
            return name
    return "other"
