"""bench/GATEWAY.md from bench/results/gateway.json."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench.lib.report import Results, header, level_cells, num, ratio, table


def _run_lines(res: Results) -> list[str]:
    c = res["config"]
    lv, ms = c["levels"], c["model_server"]
    lines = [
        f"- modelport imported from `{res['versions']['modelport_source']}`; "
        f"{res['versions']['nginx']}",
        f"- Model server behind every target: `modelport serve`, {ms['workers']} worker, "
        f"adaptive batching {ms['batching']}, access log {'on' if ms['access_log'] else 'off'}",
        f"- Payload: V2 JSON infer, {c['payload']['rows_per_request']} iris rows "
        "(`POST /serving/bench/sklearn-iris/v2/models/sklearn-iris/infer`; direct: "
        "`/v2/models/sklearn-iris/infer`)",
        f"- c=1: wrk -t{lv['c1']['wrk_threads']} -c{lv['c1']['wrk_connections']}; c=64: wrk "
        f"-t{lv['c64']['wrk_threads']} -c{lv['c64']['wrk_connections']}; {c['duration_s']} s "
        f"each after {c['warmup_s']} s of c=64 warm-up; {c['rounds']} interleaved round(s), "
        "each target's median round kept",
    ]
    lines += [f"- {name}: {desc}" for name, desc in c["proxies"].items()]
    return [*lines, ""]


def _targets_table(res: Results) -> list[str]:
    direct = res["targets"].get("direct", {}).get("c64", {})
    rows = []
    for key, t in res["config"]["targets"].items():
        m = res["targets"].get(key, {})
        c1, c64 = level_cells(m.get("c1")), level_cells(m.get("c64"))
        r64 = m.get("c64") or {}
        added = (
            num(r64["p99_ms"] - direct["p99_ms"], 2)
            if key != "direct" and r64.get("p99_ms") is not None and direct.get("p99_ms")
            else "—"
        )
        rows.append([
            t["label"], t["proxy"], ", ".join(t["headers"]) or "none",
            *c1[:3], *c64[:3],
            ratio(r64.get("rps"), direct.get("rps")) if key != "direct" else "1",
            ratio(r64.get("p99_ms"), direct.get("p99_ms")) if key != "direct" else "1",
            added, num(r64.get("proxy_cpu_us_per_request")), f"{c1[3]} / {c64[3]}",
        ])  # fmt: skip
    head = ["target", "proxy", "credentials", "c=1 req/s", "c=1 p50 ms", "c=1 p99 ms"]
    head += ["c=64 req/s", "c=64 p50 ms", "c=64 p99 ms", "c=64 req/s ÷ direct"]
    head += ["c=64 p99 ÷ direct", "c=64 p99 − direct ms", "proxy CPU µs/req (c=64)"]
    head += ["errors c=1 / c=64"]
    return ["## Throughput and latency", "", *table(head, rows, numeric_from=3), ""]


def _rounds_table(res: Results) -> list[str]:
    def rounds(key: str, level: str) -> str:
        rps = (res["targets"].get(key, {}).get(level) or {}).get("rounds_rps", [])
        return " / ".join(num(v) for v in rps) or "—"

    rows = [
        [t["label"], rounds(k, "c1"), rounds(k, "c64")] for k, t in res["config"]["targets"].items()
    ]
    head = ["target", "c=1 req/s per round", "c=64 req/s per round"]
    return ["### Every round", "", *table(head, rows), ""]


def _profile_lines(prof: dict[str, Any]) -> list[str]:
    if not prof:
        return []
    if "error" in prof:
        return ["## Profile", "", f"py-spy failed: {prof['error']}", ""]
    lines = [
        "## Profile",
        "",
        f"py-spy on the authenticating gateway under c=64 load ({prof['target']}), "
        f"{prof['samples']} samples; share of samples by innermost Python frame and by file. "
        "py-spy charges time in native code (uvloop's event loop and its socket calls) to the "
        "innermost Python frame, so `Runner.run` is the event loop itself.",
        "",
    ]
    lines += table(["innermost frame", "%"], [[f"`{f}`", num(p, 1)] for f, p in prof["self_pct"]])
    lines += [""]
    lines += table(["file", "%"], [[f"`{f}`", num(p, 1)] for f, p in prof["module_pct"]])
    return [*lines, ""]


def render(res: Results, json_path: Path) -> str:
    """The whole of GATEWAY.md."""
    lines = header(res, "Gateway: authentication in front of one model server", json_path)
    lines += _run_lines(res)
    lines += _targets_table(res)
    lines += _rounds_table(res)
    lines += _profile_lines(res.get("profile") or {})
    return "\n".join(lines)
