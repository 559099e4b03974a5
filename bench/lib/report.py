"""Markdown from a results file: the header every report shares (commit, command, machine,
load) and the table and number formats. Nothing here measures anything."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.lib.results import BUSY_LOADAVG, REPO

Results = dict[str, Any]


def num(value: Any, digits: int = 0) -> str:
    """A figure with thousands separators, or "—" when there is none."""
    if value is None or value == "":
        return "—"
    if isinstance(value, str):
        return value
    return f"{value:,.{digits}f}"


def ratio(mine: Any, theirs: Any) -> str:
    """mine ÷ theirs as "1.23×", or "—" when either is missing."""
    if not mine or not theirs:
        return "—"
    return f"{mine / theirs:.2f}×"


def table(
    headers: Sequence[str], rows: Sequence[Sequence[str]], numeric_from: int = 1
) -> list[str]:
    """A Markdown table; columns from `numeric_from` on are right-aligned."""
    align = ["---" if i < numeric_from else "---:" for i in range(len(headers))]
    lines = ["| " + " | ".join(headers) + " |", "| " + " | ".join(align) + " |"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def _load_line(res: Results) -> list[str]:
    start, end = res.get("loadavg_start") or [], res.get("loadavg_end") or []

    def show(la: list[float]) -> str:
        return " / ".join(f"{v:.2f}" for v in la) or "?"

    lines = [f"- Load average (1 / 5 / 15 min): at start {show(start)}, at end {show(end)}"]
    if start and start[0] > BUSY_LOADAVG:
        lines.append(
            f"- **Warning: the machine was busy** (1-min load average {start[0]:.2f} > "
            f"{BUSY_LOADAVG} before the run): other work shared the {res['machine']['cpus']} "
            "CPUs with the servers and the load generator, so every figure here is lower and "
            "noisier than on an idle machine. Compare rows of this run only."
        )
    if end and end[0] > BUSY_LOADAVG:
        lines.append(
            f"- **Warning: load average {end[0]:.2f} > {BUSY_LOADAVG} at the end.** The "
            "run's own servers and load generator keep about 2 processes runnable and count "
            "in it, so it cannot tell whether other work ran meanwhile; the Little's-law "
            "check (⚠) flags measurements that were disturbed."
        )
    return lines


def header(res: Results, title: str, json_path: Path) -> list[str]:
    """Title, where the figures come from, and the run's machine, tools and load."""
    git, m = res["git"], res["machine"]
    try:
        shown_json = json_path.resolve().relative_to(REPO)
    except ValueError:
        shown_json = json_path
    lines = [f"# {title}", ""]
    if not res["published"]:
        lines += [
            "**UNPUBLISHABLE: run from a tree with uncommitted changes "
            f"({len(git['uncommitted_changes'])} paths); the figures match no commit.**",
            "",
        ]
    lines += [
        f"Rendered from `{shown_json}` (one run; no figure comes from another run).",
        "",
        f"- Commit: `{git['commit'][:12]}` ({git['commit_date']})",
        f"- Command: `{res['command']}`",
        f"- Run: {res['started_utc']} → {res['finished_utc']} UTC ({res['duration_s']:.0f} s)",
        f"- Machine: {m['cpus']} CPUs ({m['cpu_model']}), {m['memory_gib']} GiB, Linux "
        f"{m['kernel']}, Python {m['python']}; the load generator runs on the same CPUs",
        f"- Tools: {m['wrk'] or 'no wrk'}; {m['h2load'] or 'no h2load'}"
        + (f"; {m['nginx']}" if m.get("nginx") else ""),
        *_load_line(res),
        "",
    ]
    return lines


def level_cells(r: dict[str, Any] | None) -> list[str]:
    """req/s, p50 ms, p99 ms and errors of one measurement, or its status."""
    if not r or r.get("status") != "ok":
        why = (r or {}).get("status", "—")
        return [why, "—", "—", "—"]
    flag = " ⚠" if r.get("suspect") else ""
    return [num(r["rps"]) + flag, num(r["p50_ms"], 2), num(r["p99_ms"], 2), num(r["errors"])]
