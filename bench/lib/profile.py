"""Sampling a running Python process with py-spy and summarizing where its time went."""

from __future__ import annotations

import collections
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any


def py_spy() -> str | None:
    """The py-spy executable: beside the running interpreter, else on PATH."""
    beside = Path(sys.executable).parent / "py-spy"
    return str(beside) if beside.exists() else shutil.which("py-spy")


def record(pid: int, seconds: int, out_file: Path) -> str | None:
    """Sample `pid` for `seconds` into py-spy's raw (collapsed stacks) format; None when
    done, else why it failed."""
    exe = py_spy()
    if exe is None:
        return "py-spy not installed (pip install py-spy)"
    out_file.parent.mkdir(parents=True, exist_ok=True)
    cmd = [exe, "record", "--pid", str(pid), "--duration", str(seconds), "--rate", "250"]
    cmd += ["--format", "raw", "--nonblocking", "--output", str(out_file)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60)
    if proc.returncode != 0 or not out_file.exists():
        return (proc.stderr or proc.stdout)[-400:]
    return None


def summarize(stacks_file: Path, top: int = 12) -> dict[str, Any]:
    """Share of samples per innermost frame (self time) and per module (the frame's file),
    from py-spy's collapsed stacks: `frame;frame;... COUNT` per line."""
    self_time: collections.Counter[str] = collections.Counter()
    by_file: collections.Counter[str] = collections.Counter()
    total = 0
    for line in stacks_file.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        n = int(count)
        total += n
        leaf = stack.split(";")[-1]
        self_time[leaf] += n
        by_file[_file_of(leaf)] += n

    def share(counts: collections.Counter[str]) -> list[list[str | float]]:
        return [[k, round(100 * v / total, 1)] for k, v in counts.most_common(top)]

    return {"samples": total, "self_pct": share(self_time), "module_pct": share(by_file)}


def _file_of(frame: str) -> str:
    """`parse (httptools/parser.py:12)` → `httptools/parser.py`."""
    inside = frame.rpartition("(")[2].rstrip(")")
    path = inside.rpartition(":")[0] or inside
    for marker in ("site-packages/", "lib/python3"):
        if marker in path:
            path = path.split(marker, 1)[1]
    return path or "?"
