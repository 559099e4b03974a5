"""bench/RESULTS.md from bench/results/serving.json."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench.lib.report import Results, header, level_cells, num, ratio, table

SCENARIOS = {
    "rest_v2": "REST V2 JSON infer (`POST /v2/models/sklearn-iris/infer`)",
    "rest_v1": "REST V1 predict (`POST /v1/models/sklearn-iris:predict`)",
    "grpc": "gRPC ModelInfer (h2load, framed protobuf)",
}
LOAD = {
    "rest_v2": "Payload: 2 iris rows as one FP32 [2, 4] tensor, JSON, `Content-Type: "
    "application/json`. Load: wrk -t1 -c1 (c=1) and wrk -t2 -c64 (c=64).",
    "rest_v1": 'Payload: `{"instances": [2 iris rows]}`. Load: wrk -t1 -c1 and wrk -t2 -c64.',
    "grpc": "Payload: ModelInferRequest with the 2 rows in `fp32_contents`, framed. Load: "
    "h2load -c1 -m1 (c=1) and h2load -c4 -m16 (c=64 streams); p50/p99 from its per-request "
    "log.",
}
MODELPORT_ROWS = ("modelport", "modelport-nobatch", "modelport-like-peers")


def _config_cells(cfg: dict[str, Any]) -> list[str]:
    return [cfg["batching"], "on" if cfg["access_log"] else "off", str(cfg["workers"])]


def _run_lines(res: Results) -> list[str]:
    c, v = res["config"], res["versions"]
    lv = c["levels"]
    return [
        f"- Servers: modelport {v['modelport']} (imported from `{v['modelport_source']}`); "
        f"KServe {v['kserve']}, sklearnserver: {v['sklearnserver']}; "
        f"MLServer {v['mlserver']}, mlserver-sklearn {v['mlserver_sklearn']}",
        f"- Model: {c['model']}; payload {c['payload']['rows_per_request']} iris rows per "
        "request (V2: one FP32 [2, 4] tensor as JSON; V1: `instances`; gRPC: "
        f"{c['payload']['grpc']})",
        f"- Each measurement {c['duration_s']} s after {c['warmup_s']} s of unrecorded c=64 "
        f"load per scenario; median of {c['repeat']} run(s). c=1: wrk "
        f"-t{lv['c1']['wrk_threads']} -c{lv['c1']['wrk_connections']}, h2load -c1 -m1; "
        f"c=64: wrk -t{lv['c64']['wrk_threads']} -c{lv['c64']['wrk_connections']}, "
        f"h2load -c{lv['c64']['h2_clients']} -m{lv['c64']['h2_streams']} (64 streams). "
        "gRPC percentiles come from h2load's per-request log.",
        "- Errors: non-2xx and socket errors (wrk); failed requests and replies shorter than "
        "a correct gRPC reply (h2load). ⚠ marks a run that failed the Little's-law check "
        "(mean latency far above concurrency ÷ req/s) again after one retry.",
        "",
    ]


def _variants_table(res: Results) -> list[str]:
    rows = []
    for key, cfg in res["config"]["variants"].items():
        r = res["variants"].get(key, {})
        cmd = " ".join(r.get("command") or []).replace(str(Path.home()), "~")
        rows.append(
            [cfg["label"], *_config_cells(cfg), f"`{cmd}`" if cmd else r.get("reason", "—")]
        )
    head = ["variant", "adaptive batching", "access log", "workers", "command (last start)"]
    return ["## Configurations", "", *table(head, rows, numeric_from=99), ""]


def _scenario_table(res: Results, scenario: str) -> list[str]:
    rows = []
    for key, cfg in res["config"]["variants"].items():
        sc = res["variants"].get(key, {}).get("scenarios", {}).get(scenario)
        if sc is None or "c1" not in sc:
            why = (sc or {}).get("detail") or res["variants"].get(key, {}).get("reason", "—")
            rows.append(
                [cfg["label"], *_config_cells(cfg), f"not measured: {why}"[:80]] + ["—"] * 7
            )
            continue
        c1, c64 = level_cells(sc["c1"]), level_cells(sc["c64"])
        rows.append([cfg["label"], *_config_cells(cfg), *c1[:3], *c64[:3], c1[3], c64[3]])
    head = ["variant", "batching", "access log", "workers", "c=1 req/s", "c=1 p50 ms"]
    head += ["c=1 p99 ms", "c=64 req/s", "c=64 p50 ms", "c=64 p99 ms", "errors c=1", "c=64"]
    duration = f" {res['config']['duration_s']} s per measurement."
    return [
        f"## {SCENARIOS[scenario]}",
        "",
        LOAD[scenario] + duration,
        "",
        *table(head, rows, numeric_from=4),
        "",
    ]


def _startup_table(res: Results) -> list[str]:
    rows = []
    for key, cfg in res["config"]["variants"].items():
        r = res["variants"].get(key, {})
        mem, after = r.get("idle_memory") or {}, r.get("memory_after_load") or {}
        runs = " / ".join(f"{t:.2f}" for t in r.get("start_ready_runs_s", []))
        rows.append([
            cfg["label"], *_config_cells(cfg), num(r.get("start_ready_s"), 2), runs or "—",
            num(mem.get("rss_mib")), num(mem.get("pss_mib")), num(mem.get("processes")),
            num(after.get("rss_mib")),
        ])  # fmt: skip
    head = ["variant", "batching", "access log", "workers", "start→ready s (median)"]
    head += ["each start s", "idle RSS MiB", "idle PSS MiB", "processes", "RSS after load MiB"]
    intro = (
        f"start→ready: spawn until `GET /v2/health/ready` answers 200, median of "
        f"{res['config']['starts']} starts on fresh ports (previous tree killed, 1 s pause). "
        "Memory: summed over the server's whole process tree, 1 s after the checks."
    )
    return ["## Start-up and memory", "", intro, "", *table(head, rows, numeric_from=4), ""]


def _figure(res: Results, key: str, what: str) -> float | None:
    r = res["variants"].get(key, {})
    if what == "start":
        found = r.get("start_ready_s")
    elif what == "rss":
        found = (r.get("idle_memory") or {}).get("rss_mib")
    else:
        scenario, field = what.split(":")
        m = r.get("scenarios", {}).get(scenario, {}).get("c64") or {}
        found = m.get(field) if m.get("status") == "ok" else None
    return float(found) if found is not None else None


def _best_peer(res: Results, what: str, higher_is_better: bool) -> tuple[str | None, float | None]:
    peers = [k for k, c in res["config"]["variants"].items() if c["server"] != "modelport"]
    found = [(k, v) for k in peers if (v := _figure(res, k, what)) is not None]
    if not found:
        return None, None
    return (max if higher_is_better else min)(found, key=lambda kv: kv[1])


def _ratios_table(res: Results) -> list[str]:
    variants = res["config"]["variants"]
    measures = [
        ("REST V2 c=64 req/s", "rest_v2:rps", True, 0),
        ("REST V2 c=64 p99 ms", "rest_v2:p99_ms", False, 2),
        ("REST V1 c=64 req/s", "rest_v1:rps", True, 0),
        ("gRPC c=64 req/s", "grpc:rps", True, 0),
        ("gRPC c=64 p99 ms", "grpc:p99_ms", False, 2),
        ("start→ready s", "start", False, 2),
        ("idle RSS MiB (2 workers)", "rss", False, 0),
    ]
    mine = [k for k in MODELPORT_ROWS if k in variants]
    head = ["figure", "best peer (variant)", "peer"]
    head += [f"{variants[k]['label']}: value, ratio" for k in mine]
    rows = []
    for label, what, higher, digits in measures:
        peer, value = _best_peer(res, what, higher)
        cells = [label, variants[peer]["label"] if peer else "—", num(value, digits)]
        for k in mine:
            v = _figure(res, k, what)
            cells.append(f"{num(v, digits)}, {ratio(v, value)}")
        rows.append(cells)
    intro = (
        "modelport ÷ the best peer variant of this run for each figure (highest req/s, lowest "
        "p99, start→ready and RSS). *modelport (defaults)* batches up to 32 requests and logs "
        "no request, which no peer does by default; *--max-batch-size 1 --log-level debug* "
        "is configured like the peers' defaults (no batching, one log line per request)."
    )
    return ["## Ratios", "", intro, "", *table(head, rows, numeric_from=2), ""]


def render(res: Results, json_path: Path) -> str:
    """The whole of RESULTS.md."""
    lines = header(res, "Serving: modelport vs KServe vs MLServer", json_path)
    lines += _run_lines(res)
    lines += _ratios_table(res)
    lines += _variants_table(res)
    for scenario in SCENARIOS:
        lines += _scenario_table(res, scenario)
    lines += _startup_table(res)
    lines += [
        "## Other benchmarks",
        "",
        "- Gateway (authentication cost, against nginx `auth_request`): `python -m "
        "bench.gateway`, rendered into [GATEWAY.md](GATEWAY.md) from `results/gateway.json`.",
        "- Adaptive batching on models with a costly call, and binary tensors (modelport "
        "alone): `python -m bench.batching`, in [BATCHING.md](BATCHING.md).",
        "- Control plane (cold start, routing, many idle services): `python -m bench.control`,"
        " in [CONTROL.md](CONTROL.md).",
        "",
    ]
    return "\n".join(lines)
