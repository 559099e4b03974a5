"""Requests per second through each target, in interleaved rounds: modelport's gateway to
Ray-placed replicas, the same gateway to local processes, and Ray Serve's proxy."""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from bench.control.measure import Watch
from bench.lib import checks, load
from bench.lib.procs import HOST, log

Result = dict[str, Any]


@dataclass(frozen=True)
class Target:
    """One way to the iris model: a row of the throughput table."""

    key: str
    label: str
    port: int
    path: str
    headers: tuple[str, ...]

    def describe(self) -> dict[str, Any]:
        """The target as the JSON records it (header names only: never a token)."""
        shown = {k: v for k, v in self.__dict__.items() if k != "headers"}
        return {**shown, "headers": [h.split(":")[0] for h in self.headers]}


def check(targets: list[Target], body: bytes, expected: list[int]) -> dict[str, str | None]:
    """One real V2 infer per target: None, or what was wrong with its answer."""
    out = {}
    for t in targets:
        headers = dict(h.split(": ", 1) for h in t.headers)
        out[t.key] = checks.check_v2(t.port, t.path, body, expected, headers)
    return out


def one(t: Target, body_file: Path, level: load.Level, seconds: int) -> Result:
    """wrk on one target, with the CPU other processes of the machine used meanwhile."""
    watch = Watch()
    r = load.run_wrk(
        f"http://{HOST}:{t.port}{t.path}", body_file, threads=level.wrk_threads,
        connections=level.wrk_connections, seconds=seconds, headers=t.headers,
    )  # fmt: skip
    r["foreign_cores"] = watch.foreign_cores()
    return r


def rounds(
    targets: list[Target], body_file: Path, duration: int, warmup: int, repeat: int
) -> dict[str, Any]:
    """`repeat` rounds, every target once per round (order rotated); per target and level
    the round with the median req/s, with every round's req/s beside it."""
    runs: dict[str, dict[str, list[Result]]] = {t.key: {"c1": [], "c64": []} for t in targets}
    for rnd in range(repeat):
        shift = rnd % len(targets)
        order = targets[shift:] + targets[:shift]
        log(f"  round {rnd + 1}/{repeat}: {', '.join(t.key for t in order)}")
        for t in order:
            if warmup:
                one(t, body_file, load.C64, warmup)
            for level in load.LEVELS:
                r = load.median_run(partial(one, t, body_file, level, duration), 1)
                runs[t.key][level.name].append(r)
                log(f"    {t.key} {level.name}: {load.summary(r)}, other CPU "
                    f"{r.get('foreign_cores', '?')} cores")  # fmt: skip
    out: dict[str, Any] = {}
    for key, levels in runs.items():
        out[key] = {}
        for name, rs in levels.items():
            ok = sorted((r for r in rs if r.get("status") == "ok"), key=lambda r: r["rps"])
            kept = dict(ok[len(ok) // 2]) if ok else rs[-1]
            kept["rounds_rps"] = [r.get("rps") for r in rs]
            out[key][name] = kept
    return out
