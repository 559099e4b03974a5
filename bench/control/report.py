"""CONTROL.md from the results of a run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench.control.report_scale import write_scale
from bench.control.report_sections import write_cold, write_gateway
from bench.control.settings import REPO
from bench.lib.cpu import FOREIGN_LIMIT
from bench.lib.results import BUSY_LOADAVG


def load_lines(meta: dict[str, Any]) -> list[str]:
    """The load averages at the start and the end, with a warning on a busy machine; older
    results recorded only the 1-minute figure at the start."""
    start, end = meta.get("loadavg_start"), meta.get("loadavg_end")
    if start is None:
        return []
    start = start if isinstance(start, list) else [start]
    end = end or []
    show = " / ".join(f"{v:.2f}" for v in start), " / ".join(f"{v:.2f}" for v in end) or "?"
    lines = [f"Load average (1 / 5 / 15 min): at start {show[0]}, at end {show[1]}.\n"]
    if start[0] > BUSY_LOADAVG:
        lines.append(
            f"**Warning: the machine was busy** (1-min load average {start[0]:.2f} > "
            f"{BUSY_LOADAVG} before the run): other work shared the CPUs, so these figures are "
            "lower and noisier than on an idle machine.\n"
        )
    if end and end[0] > BUSY_LOADAVG:
        lines.append(
            f"**Warning: load average {end[0]:.2f} > {BUSY_LOADAVG} at the end**; the run's "
            "own processes count in it; the CPU-of-others check above each measurement says "
            "whether other work ran.\n"
        )
    return lines


def write_md(res: dict[str, Any], path: Path, json_path: Path) -> None:
    m = res["meta"]
    mc = m["machine"]
    n = ((res.get("scale") or {}).get("apply") or {}).get("services", "many")
    L = [f"# Control-plane benchmark: cold start, gateway routing, {n} services\n"]
    if m.get("published") is False:
        L.append("**UNPUBLISHABLE: run from a tree with uncommitted changes.**\n")
    L.append(
        f"Date: {m['date']}. Machine: {mc['cpu']}, {mc['nproc']} CPUs, {mc['mem_gib']} GiB, "
        f"Linux {mc['kernel']}, Python {mc['python']}; {m.get('wrk')}; modelport "
        f"{m.get('modelport')} (git {m.get('git')}"
        + (f"; uncommitted changes by others in: {', '.join(m['dirty'])}" if m.get("dirty") else "")
        + f"). Total run time {m.get('runtime_s', '?')} s.\n"
    )
    L.append(f"Command: `{m['command']}`\n")
    L += load_lines(m)
    if m.get("interrupted") or m.get("error"):
        L.append(f"**Run incomplete**: {m.get('error') or 'interrupted'}.\n")
    L.append(
        f"wrk, the platform, its replicas and this harness all share the machine's "
        f"{mc['nproc']} CPUs: absolute numbers are low and move ±30 % between runs; compare "
        "only within this run. Every measurement records the CPU used by other processes "
        f"(`/proc/stat`); wrk runs above {FOREIGN_LIMIT} cores are redone.\n"
    )
    L.append("## Summary\n")
    L.append("| item | measured | target | met |")
    L.append("|---|---:|---:|---|")
    for t in res.get("targets", []):
        met = {True: "yes", False: "**no**", None: "—"}[t["met"]]
        L.append(f"| {t['item']} | {t['value']} | {t['target']} | {met} |")
    L.append("")
    write_cold(res, L)
    write_gateway(res, L)
    write_scale(res, L)
    shown = json_path.relative_to(REPO) if json_path.is_relative_to(REPO) else json_path
    L.append(f"\nRaw numbers: `{shown}`; platform and server logs, py-spy stacks beside it.")
    path.write_text("\n".join(L) + "\n")
