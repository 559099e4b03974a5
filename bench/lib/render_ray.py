"""bench/RAY.md from bench/results/ray.json."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench.lib.cpu import FOREIGN_LIMIT
from bench.lib.report import Results, header, level_cells, num, ratio, table

GOALS = {"ray_vs_process": 0.9, "cold_p50_s": 2.0, "ray_vs_rayserve_c64": 10.0}
PEERS = ("rayserve", "rayserve-tuned")
PLACED = {"ray": "modelport", "iris": "Ray Serve (defaults)", "iris-tuned": "Ray Serve (tuned)"}
COLD_LABELS = {
    "ray": "modelport --backend ray",
    "process": "modelport --backend process",
    "rayserve": "Ray Serve (autoscaling 0..1)",
}


def _run_lines(res: Results) -> list[str]:
    c, v = res["config"], res["versions"]
    cl, mp, rs = c["cluster"], c["modelport"], c["rayserve"]
    lv = c["levels"]
    return [
        f"- modelport imported from `{v['modelport_source']}` (driver) and "
        f"`{v['cluster']['modelport_source']}` (cluster workers)",
        f"- Ray {v['driver']['ray']} (driver) / {v['cluster']['ray']} (cluster); scikit-learn "
        f"{v['driver']['scikit-learn']} / {v['cluster']['scikit-learn']}",
        f"- Cluster: {cl['nodes']} nodes on this machine (`ray start --block` each, labels "
        f"{', '.join(str(x) for x in cl['labels'])}), {cl['logical_cpus_per_node']} logical "
        f"CPUs each, up in {cl['start_s']} s; replicas listen on {cl['replica_address']}; "
        f"{cl['physical_cpus_note']}",
        f"- modelport replicas: {mp['replica']}; batching {mp['batching']}; access log "
        f"{mp['access_log']}; {mp['authentication']}",
        f"- Ray Serve: {rs['deployment']}; num_cpus {rs['replica_num_cpus']} per replica; "
        f"batching {rs['batching']}; access log {rs['access_log']}; proxy {rs['proxy']}; "
        f"max_ongoing_requests {rs['max_ongoing_requests']}; authentication {rs['authentication']}",
        f"- Payload: V2 JSON infer, {c['payload']['rows_per_request']} iris rows; c=1: wrk "
        f"-t{lv['c1']['wrk_threads']} -c{lv['c1']['wrk_connections']}, c=64: wrk "
        f"-t{lv['c64']['wrk_threads']} -c{lv['c64']['wrk_connections']}; {c['duration_s']} s "
        f"each after {c['warmup_s']} s of c=64 warm-up; {c['rounds']} interleaved round(s), "
        "each target's median round kept (the upper one of an even number)",
        "",
    ]


def _rps(res: Results, n: str, key: str, level: str) -> Any:
    r = ((res.get("throughput") or {}).get(n, {}).get("targets", {}).get(key) or {}).get(level)
    return r.get("rps") if r and r.get("status") == "ok" else None


def _best_peer(res: Results, n: str, level: str) -> Any:
    """The best Ray Serve row's req/s (its defaults, or tuned), the ratios' denominator."""
    found = [_rps(res, n, k, level) for k in PEERS]
    return max((v for v in found if v), default=None)


def _cold_p50(res: Results, key: str) -> Any:
    return ((res.get("cold") or {}).get(key, {}).get("summary", {}).get("total_s") or {}).get("p50")


def _measurement(res: Results, n: str, key: str, level: str) -> dict[str, Any]:
    entry = (res.get("throughput") or {}).get(n, {}).get("targets", {}).get(key) or {}
    return entry.get(level) or {}


def _verdict(value: float | None, goal: float, at_least: bool, foreign: float = 0.0) -> str:
    """met / not met, and whether other processes' CPU may have decided it."""
    if value is None:
        return "not measured"
    met = value >= goal if at_least else value <= goal
    out = "met" if met else "**not met**"
    if foreign > FOREIGN_LIMIT:
        out += f" (disturbed: other processes used up to {foreign:.2f} cores)"
    return out


def _foreign(res: Results, n: str, pairs: list[tuple[str, str]]) -> float:
    """The most CPU other processes used during any of these measurements."""
    found = [_measurement(res, n, k, lv).get("foreign_cores") or 0.0 for k, lv in pairs]
    return float(max(found, default=0.0))


def _goals(res: Results) -> list[str]:
    rows = []
    for n in res.get("throughput") or {}:
        for level in ("c1", "c64"):
            mine, theirs = _rps(res, n, "ray", level), _rps(res, n, "process", level)
            value = mine / theirs if mine and theirs else None
            rows.append([
                f"Ray-placed ÷ process replicas, req/s, {n[1:]} replica(s), c={level[1:]}",
                f"≥ {GOALS['ray_vs_process']}×", ratio(mine, theirs),
                _verdict(value, GOALS["ray_vs_process"], True,
                         _foreign(res, n, [("ray", level), ("process", level)])),
            ])  # fmt: skip
    for n in res.get("throughput") or {}:
        mine, theirs = _rps(res, n, "ray", "c64"), _best_peer(res, n, "c64")
        value = mine / theirs if mine and theirs else None
        rows.append([
            f"modelport on Ray ÷ the better Ray Serve row, req/s, {n[1:]} replica(s), c=64",
            f"≥ {GOALS['ray_vs_rayserve_c64']:g}×", ratio(mine, theirs),
            _verdict(value, GOALS["ray_vs_rayserve_c64"], True,
                     _foreign(res, n, [("ray", "c64"), *((k, "c64") for k in PEERS)])),
        ])  # fmt: skip
    p50 = _cold_p50(res, "ray")
    rows.append([
        "cold start from zero on Ray, p50", f"≤ {GOALS['cold_p50_s']:g} s",
        f"{num(p50, 2)} s" if p50 is not None else "—",
        _verdict(p50, GOALS["cold_p50_s"], False,
                 float((res.get("cold") or {}).get("ray", {}).get("foreign_cores") or 0.0)),
    ])  # fmt: skip
    serve = _cold_p50(res, "rayserve")
    rows.append(["Ray Serve's cold start from zero, p50 (the peer)", "—",
                 f"{num(serve, 2)} s" if serve is not None else "—", "reference"])  # fmt: skip
    note = (
        "Each ratio divides figures of this run. Ray Serve is measured twice: with its defaults "
        "and with `max_ongoing_requests` raised; the goal uses the better of the two. A verdict "
        f"is marked disturbed when other processes used more than {FOREIGN_LIMIT} cores during "
        "one of its measurements (this machine has 2; see the last column below)."
    )
    head = ["figure", "goal", "this run", "verdict"]
    return ["## Goals (issue 12)", "", note, "", *table(head, rows), ""]


def _throughput(res: Results) -> list[str]:
    lines = ["## Throughput and latency", ""]
    targets = res["config"]["targets"]
    for n, entry in (res.get("throughput") or {}).items():
        rows = []
        for key, t in targets.items():
            m = entry.get("targets", {}).get(key, {})
            c1, c64 = level_cells(m.get("c1")), level_cells(m.get("c64"))
            rows.append([
                t["label"], *c1[:3], *c64[:3],
                ratio(_rps(res, n, key, "c64"), _rps(res, n, "process", "c64")),
                ratio(_rps(res, n, key, "c64"), _best_peer(res, n, "c64")),
                f"{c1[3]} / {c64[3]}",
                f"{num((m.get('c1') or {}).get('foreign_cores'), 2)} / "
                f"{num((m.get('c64') or {}).get('foreign_cores'), 2)}",
            ])  # fmt: skip
        head = ["target", "c=1 req/s", "c=1 p50 ms", "c=1 p99 ms", "c=64 req/s"]
        head += ["c=64 p50 ms", "c=64 p99 ms", "c=64 ÷ process", "c=64 ÷ better Ray Serve"]
        head += ["errors c=1 / c=64", "other processes' CPU, cores c=1 / c=64"]
        lines += [f"### {entry['replicas']} replica(s) per target", ""]
        if entry.get("loadavg_before"):
            shown = " / ".join(f"{v:.2f}" for v in entry["loadavg_before"])
            lines += [f"Load average before (1 / 5 / 15 min): {shown}.", ""]
        lines += [*table(head, rows), ""]
        lines += _rounds(entry, targets)
        lines += _placement(entry)
    return lines


def _rounds(entry: dict[str, Any], targets: dict[str, Any]) -> list[str]:
    def per_round(key: str, level: str) -> str:
        rps = (entry.get("targets", {}).get(key, {}).get(level) or {}).get("rounds_rps", [])
        return " / ".join(num(v) for v in rps) or "—"

    rows = [[t["label"], per_round(k, "c1"), per_round(k, "c64")] for k, t in targets.items()]
    return ["Every round:", "", *table(["target", "c=1 req/s", "c=64 req/s"], rows), ""]


def _placement(entry: dict[str, Any]) -> list[str]:
    out = []
    for key, replicas in (entry.get("placement") or {}).items():
        nodes = sorted({str(r.get("node_id")) for r in replicas})
        who = PLACED.get(key, key)
        out.append(f"{who}: {len(replicas)} replica actor(s) on node(s) {', '.join(nodes) or '—'}")
    return (["Placement (Ray node ids): " + "; ".join(out) + ".", ""]) if out else []


def _cold(res: Results) -> list[str]:
    cold = res.get("cold") or {}
    if not cold:
        return []
    rows = []
    for key, label in COLD_LABELS.items():
        c = cold.get(key)
        if not c:
            continue
        s, d = c["summary"], c["summary"]["total_s"]
        each = ", ".join(num(t["total_s"], 2) + ("" if t["ok"] else " ✗") for t in c["tries"])
        rows.append([
            label, f"{s['ok']} / {s['tries']}", num(d.get("p50"), 2), num(d.get("p90"), 2),
            num(d.get("min"), 2), num(d.get("max"), 2), each, num(c.get("foreign_cores"), 2),
            f"{(c.get('loadavg_before') or ['—'])[0]}",
        ])  # fmt: skip
    head = ["target", "ok / tries", "p50 s", "p90 s", "min s", "max s", "every try, s"]
    head += ["other processes' CPU, cores", "1-min load average before"]
    mp = res["config"]["modelport"]
    rs = res["config"]["rayserve"]["cold"]
    return [
        "## Cold start from zero",
        "",
        "One request on a new connection to a service with no replica, timed to the end of "
        "its answer. modelport: services with "
        f"minReplicas 0 (window {mp['cold_services']['autoscaling.knative.dev/window']}, "
        f"scale-to-zero grace {mp['scale_to_zero_grace_s']:g} s), each started once and left "
        "to reach zero, then one request each through the gateway. Ray Serve: one application "
        f"with min_replicas {rs['min_replicas']}, max_replicas {rs['max_replicas']}, "
        f"downscale_delay_s {rs['downscale_delay_s']:g}; before each try it is back at zero "
        "running replicas (dashboard Serve API) and idle 1 s.",
        "",
        *table(head, rows),
        "",
    ]


def render(res: Results, json_path: Path) -> str:
    """The whole of RAY.md."""
    lines = header(
        res, "Ray: modelport's Ray backend, its process backend and Ray Serve", json_path
    )
    lines += _run_lines(res)
    lines += _goals(res)
    lines += _throughput(res)
    lines += _cold(res)
    return "\n".join(lines)
