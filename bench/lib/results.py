"""One JSON file per run: the git commit, the whole configuration, the machine's load and
every figure. Publishing (bench/results/, the Markdown beside it) is refused from a tree with
uncommitted changes, so every published number names the code that produced it."""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.lib.procs import loadavg

BENCH = Path(__file__).resolve().parent.parent
REPO = BENCH.parent
RESULTS_DIR = BENCH / "results"
SCRATCH_DIR = BENCH / ".work" / "scratch"
BUSY_LOADAVG = 0.5
Results = dict[str, Any]


class DirtyTree(RuntimeError):
    """The checkout has uncommitted changes, so its numbers cannot be published."""


@dataclass(frozen=True)
class Destination:
    """Where a run's JSON and Markdown go, and whether they are publishable."""

    json_path: Path
    markdown_path: Path
    published: bool


def _git(*args: str) -> str:
    out = subprocess.run(
        ["git", "-C", str(REPO), *args], capture_output=True, text=True, timeout=30, check=True
    )
    return out.stdout


# What the scenarios themselves write: one scenario's published output does not make the
# tree dirty for the next one run from the same worktree, since no code reads it.
OUTPUTS = (
    "bench/results/",
    "bench/RESULTS.md",
    "bench/GATEWAY.md",
    "bench/BATCHING.md",
    "bench/CONTROL.md",
    "bench/RAY.md",
    "bench/GRAPH.md",
    "bench/STREAMING.md",
)


def git_state() -> dict[str, Any]:
    """The commit checked out and the `git status --porcelain` lines of the tree, apart
    from changes to the benchmarks' own outputs (listed separately)."""
    lines = [line for line in _git("status", "--porcelain").splitlines() if line]
    outputs = [line for line in lines if line[3:].startswith(OUTPUTS)]
    return {
        "commit": _git("rev-parse", "HEAD").strip(),
        "commit_date": _git("log", "-1", "--format=%cI").strip(),
        "uncommitted_changes": [line for line in lines if line not in outputs],
        "changed_outputs": outputs,
    }


def destination(scenario: str, markdown_name: str, *, allow_dirty: bool) -> Destination:
    """bench/results/SCENARIO.json and bench/MARKDOWN_NAME for a clean tree; with
    `allow_dirty`, scratch files under bench/.work/scratch/ marked unpublishable."""
    changes = git_state()["uncommitted_changes"]
    if not changes:
        return Destination(RESULTS_DIR / f"{scenario}.json", BENCH / markdown_name, True)
    if not allow_dirty:
        shown = "\n  ".join(changes[:10])
        raise DirtyTree(
            f"{REPO} has uncommitted changes; results would not match any commit:\n  {shown}\n"
            "Commit them, run from a clean `git worktree add DIR HEAD`, or pass --allow-dirty "
            f"to write unpublishable results under {SCRATCH_DIR}."
        )
    return Destination(SCRATCH_DIR / f"{scenario}.json", SCRATCH_DIR / markdown_name, False)


def _tool_version(cmd: list[str]) -> str | None:
    if not shutil.which(cmd[0]):
        return None
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
    lines = (out.stdout or out.stderr).strip().splitlines()
    return lines[0].split(" Copyright")[0].strip() if lines else None


def machine() -> dict[str, Any]:
    """CPU count and model, memory, kernel and Python of the machine running the bench."""
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
        mem_kib = int(Path("/proc/meminfo").read_text().split()[1])
    except (OSError, ValueError, IndexError):
        mem_kib = 0
    return {
        "cpus": os.cpu_count(),
        "cpu_model": model,
        "memory_gib": round(mem_kib / 1024 / 1024, 1),
        "kernel": platform.release(),
        "python": sys.version.split()[0],
        "wrk": _tool_version(["wrk", "-v"]),
        "h2load": _tool_version(["h2load", "--version"]),
        "nginx": _tool_version(["nginx", "-v"]),
    }


def begin(scenario: str, dest: Destination, config: dict[str, Any]) -> Results:
    """The results dict of a run that starts now."""
    return {
        "scenario": scenario,
        "published": dest.published,
        "git": git_state(),
        "command": "python -m bench." + " ".join([scenario, *sys.argv[1:]]),
        "started_utc": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%S"),
        "started_monotonic": time.monotonic(),
        "loadavg_start": loadavg(),
        "machine": machine(),
        "config": config,
    }


def finish(res: Results, dest: Destination) -> None:
    """Record the end of the run and write the JSON file."""
    res["loadavg_end"] = loadavg()
    res["duration_s"] = round(time.monotonic() - res.pop("started_monotonic"), 1)
    res["finished_utc"] = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%S")
    dest.json_path.parent.mkdir(parents=True, exist_ok=True)
    dest.json_path.write_text(json.dumps(res, indent=1) + "\n")


def load(path: Path) -> Results:
    """A results file written by `finish`."""
    data: Results = json.loads(path.read_text())
    return data
