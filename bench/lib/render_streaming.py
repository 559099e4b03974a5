"""bench/STREAMING.md from bench/results/streaming.json."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bench.lib.report import Results, header, num, table


def _run_lines(res: Results) -> list[str]:
    c = res["config"]
    return [
        f"- modelport imported from `{res['versions']['modelport_source']}`",
        f"- Model: {c['model']}; {c['tokens_per_stream']} chunks per stream (`max_tokens`), "
        "each a `chat.completion.chunk` SSE event, then `data: [DONE]`",
        f"- Direct: `{' '.join(c['direct_command'][2:])}`",
        f"- Through the gateway: `modelport up` (`{' '.join(c['platform']['command'][2:])}`), "
        f"the same model as a `custom` InferenceService in `{c['platform']['namespace']}` "
        "(1 replica), `Authorization: Bearer` (the admin's `modelport token`)",
        f"- wrk posts `{json_line(c['request'])}`; concurrency "
        f"{', '.join(str(v) for v in c['concurrency'])} (streams at once; wrk -t1 for 1, "
        f"-t2 above), {c['duration_s']} s per measurement after {c['warmup_s']} s of "
        f"unrecorded load per target; {c['rounds']} interleaved round(s), the order rotated, "
        "each target's median round kept",
        "- Tokens/s = streams/s × chunks per stream; each target was first checked to stream "
        "exactly that many chunks and `[DONE]`",
        "",
    ]


def json_line(doc: dict[str, Any]) -> str:
    return json.dumps(doc, separators=(",", ":"))


def _levels_table(res: Results) -> list[str]:
    goal = res["config"]["goal_ratio"]
    rows = []
    for level, by_target in res.get("levels", {}).items():
        ratio = res["ratios"][level]
        for key, t in res["config"]["targets"].items():
            m = by_target.get(key) or {}
            ok = m.get("status") == "ok"
            flag = " ⚠" if m.get("suspect") else ""
            is_gw = key == "gateway"
            r = ratio["gateway_over_direct"]
            shown = (f"{r:.2f}×" + ("" if ratio["goal_met"] else " **(< goal)**")) if r else "—"
            rows.append([
                level.replace("c", "c="), t["label"],
                num(m.get("tokens_per_s")) + flag if ok else m.get("status", "—"),
                num(m.get("rps"), 1) if ok else "—",
                num(m.get("p50_ms"), 1) if ok else "—",
                num(m.get("errors")) if ok else "—",
                num(m.get("gateway_cpu_us_per_token"), 2) if is_gw else "—",
                num(m.get("server_cpu_us_per_token"), 2),
                shown if is_gw else "1",
                " / ".join(num(v, 1) for v in m.get("rounds_rps", [])) or "—",
            ])  # fmt: skip
    head = ["level", "target", "tokens/s", "streams/s", "stream p50 ms", "errors"]
    head += ["gateway CPU µs/token", "model server CPU µs/token", f"÷ direct (goal ≥ {goal}×)"]
    head += ["streams/s per round"]
    return ["## Tokens per second", "", *table(head, rows, numeric_from=2), ""]


def _profile_lines(prof: dict[str, Any]) -> list[str]:
    if not prof:
        return []
    if "error" in prof:
        return ["## Profile", "", f"py-spy failed: {prof['error']}", ""]
    lines = [
        "## Profile",
        "",
        f"py-spy on the {prof['target']}, {prof['samples']} samples; share of samples by "
        "innermost Python frame and by file (time in native code, uvloop included, is "
        "charged to the innermost Python frame).",
        "",
    ]
    lines += table(["innermost frame", "%"], [[f"`{f}`", num(p, 1)] for f, p in prof["self_pct"]])
    lines += [""]
    lines += table(["file", "%"], [[f"`{f}`", num(p, 1)] for f, p in prof["module_pct"]])
    return [*lines, ""]


def render(res: Results, json_path: Path) -> str:
    """The whole of STREAMING.md."""
    lines = header(res, "Streaming chat: tokens/s through the gateway", json_path)
    lines += _run_lines(res)
    lines += _levels_table(res)
    lines += _profile_lines(res.get("profile") or {})
    return "\n".join(lines)
