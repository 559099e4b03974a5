"""bench/GRAPH.md from bench/results/graph.json."""

from __future__ import annotations

from pathlib import Path

from bench.lib.report import Results, header, level_cells, num, table


def _run_lines(res: Results) -> list[str]:
    c = res["config"]
    return [
        f"- modelport imported from `{res['versions']['modelport_source']}`",
        f"- `modelport up` (`{' '.join(c['platform']['command'][2:])}`), namespace "
        f"`{c['platform']['namespace']}`: one iris InferenceService (sklearn, 1 replica), and "
        f"graphs `seq-K` for K in {', '.join(str(k) for k in c['steps'])}: a Sequence of K "
        "steps, each `serviceName: iris` with `data: $request` (every step does the same "
        "model work; the graph answers the last step's response)",
        f"- Direct: `{' '.join(c['direct_command'][2:])}` (a replica's arguments; the "
        "platform's replicas answer only the gateway)",
        f"- Payload: V1 predict, {c['payload']['rows_per_request']} iris rows; through the "
        "gateway with `Authorization: Bearer` (the admin's `modelport token`)",
        f"- wrk -t1 -c1 (c=1), {c['duration_s']} s per measurement after {c['warmup_s']} s "
        f"of unrecorded load on each target; {c['rounds']} interleaved round(s), the order "
        "rotated, each target's median-p50 round kept",
        "",
    ]


def _targets_table(res: Results) -> list[str]:
    rows = []
    for key, t in res["config"]["targets"].items():
        m = res["targets"].get(key) or {}
        cells = level_cells(m)
        rounds = " / ".join(num(v, 2) for v in m.get("rounds_p50_ms", [])) or "—"
        rows.append([t["label"], f"`{t['path']}`", *cells, rounds])
    head = ["target", "path", "req/s", "p50 ms", "p99 ms", "errors", "p50 ms per round"]
    return ["## c=1, every target", "", *table(head, rows, numeric_from=2), ""]


def _per_step_table(res: Results) -> list[str]:
    goal = res["config"]["goal_ms_per_step"]
    rows = []
    for key, d in res.get("per_step", {}).items():
        if not d:
            rows.append([key, "—", "—", "—", "—"])
            continue
        met = "yes" if d["goal_met"] else "**no**"
        rows.append([
            key, num(d["router_per_step_ms"], 3), met,
            num(d["minus_service_per_step_ms"], 3), num(d["minus_direct_per_step_ms"], 3),
        ])  # fmt: skip
    head = [
        "graph",
        "router overhead per step, ms",
        f"≤ {goal} ms?",
        "(graph − service through gateway) ÷ K, ms",
        "(graph − direct) ÷ K, ms",
    ]
    return [
        "## Per step (p50, c=1)",
        "",
        "With G the graph's p50, S the service's through the gateway and D the model "
        "server's direct: a K-step graph pays the gateway once (as S does), K calls to the "
        "replica and K router steps. **Router overhead per step = (G − S − (K − 1)·D) ÷ K**: "
        "the first call is the one S makes too, and each further call costs at least D, the "
        "model's own time from a client on this machine. The next two columns are the plain "
        "differences divided by K; for K > 1 they include K − 1 model calls, so they are "
        "upper bounds, not overhead.",
        "",
        *table(head, rows),
        "",
    ]


def render(res: Results, json_path: Path) -> str:
    """The whole of GRAPH.md."""
    lines = header(res, "InferenceGraph: router overhead per step", json_path)
    lines += _run_lines(res)
    lines += _per_step_table(res)
    lines += _targets_table(res)
    return "\n".join(lines)
