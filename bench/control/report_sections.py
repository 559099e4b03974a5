"""CONTROL.md's cold-start and gateway sections."""

from __future__ import annotations

from typing import Any

from bench.control.settings import DOMAIN, GW_LABELS, GW_SERVICE, GW_VARIANTS, LEVELS, NS


def cell(d: dict[str, Any] | None, key: str, f: str = ".0f", scale: float = 1.0) -> str:
    if not d or d.get(key) is None:
        return "—"
    return format(d[key] * scale, f)


def ms_cell(d: dict[str, Any] | None, key: str) -> str:
    return cell(d, key, ".0f", 1000.0)


def write_cold(res: dict[str, Any], L: list[str]) -> None:
    c = res.get("cold") or {}
    if not c:
        return
    s, su = c.get("summary") or {}, c.get("setup") or {}
    sv = c.get("serve") or {}
    L.append("## 1. Cold start (scale from zero)\n")
    if s.get("total_s", {}).get("n"):
        tt = s["total_s"]
        L.append(
            f"{s['ok']} of {s['tries']} tries answered 200 with the right prediction. "
            f"Request sent → response read: **p50 {tt['p50'] * 1000:.0f} ms**, "
            f"p90 {tt['p90'] * 1000:.0f} ms, max {tt['max'] * 1000:.0f} ms "
            f"(min {tt['min'] * 1000:.0f} ms).\n"
        )
        L.append("| part | p50 ms | p90 ms | max ms |")
        L.append("|---|---:|---:|---:|")
        for k, label in (
            ("total_s", "request sent → response (the measure)"),
            (
                "to_fork_s",
                "request sent → replica forked (gateway, activator, controller; 10 ms steps)",
            ),
            ("fork_to_answer_s", "replica forked → response (server start, readiness poll, proxy)"),
            ("server_ready_in_s", "of which: the replica's own start→ready (its log)"),
        ):
            d = s.get(k) or {}
            L.append(
                f"| {label} | {ms_cell(d, 'p50')} | {ms_cell(d, 'p90')} | {ms_cell(d, 'max')} |"
            )
        L.append("")
    if sv.get("status") == "ok":
        L.append(
            f"For context, a plain `modelport serve` (iris, 1 worker, new process) from spawn "
            f"to `/v2/health/ready` 200: p50 **{sv['p50'] * 1000:.0f} ms** (each of "
            f"{sv['n']}: {', '.join(f'{x:.2f}' for x in sv['times_s'])} s) — "
            + (
                f"{sv['p50'] / s['total_s']['p50']:.1f}× the cold start through the platform.\n"
                if s.get("total_s", {}).get("p50")
                else "\n"
            )
        )
    cw = ((res.get("scale") or {}).get("cold_with_n") or {}).get("summary") or {}
    if cw.get("total_s", {}).get("n"):
        tt = cw["total_s"]
        n = (res.get("scale") or {}).get("apply", {}).get("services", "?")
        L.append(
            f"With {n} idle services registered (scale section; services never started, "
            f"initial-scale 0): p50 {tt['p50'] * 1000:.0f} ms, p90 {tt['p90'] * 1000:.0f} ms, "
            f"max {tt['max'] * 1000:.0f} ms over {cw['ok']}/{cw['tries']} tries; request → fork "
            f"p50 {ms_cell(cw.get('to_fork_s'), 'p50')} ms.\n"
        )
    L.append(
        "How measured: one `modelport up --scale-to-zero-grace "
        f"{res['meta'].get('grace')}`; {su.get('services', '?')} InferenceServices "
        '(sklearn iris, `minReplicas: 0`, `autoscaling.knative.dev/window: "6s"`, local '
        f"storageUri) applied {su.get('apply_batch', '?')} at a time, each batch waited for "
        f"until Ready with 1 replica ({su.get('started_once_s', '?')} s for all), then until "
        "every service reports 0 replicas and the zygote has no child left "
        f"({su.get('all_zero_s', '?')} s after the first apply). Then, one service at a time "
        f"with {res['meta'].get('cold_gap')} s between tries, one V1 `:predict` through "
        "`/serving/bench/NAME/...` with the Bearer token, on a new connection, timed from "
        "before connect until the body is read. The fork time is the replica's start time "
        "from `/proc/PID/stat` (10 ms steps) against CLOCK_BOOTTIME at send; 'server "
        "start→ready' is the `ready in X s` line the replica logs. Replicas of earlier tries "
        "are still scaling down (idle) during later ones. CPU used by other processes during "
        f"the tries: {c.get('foreign_cores', '?')} cores.\n"
    )
    if c.get("tries"):
        L.append(
            "Each try (ms): "
            + ", ".join(
                f"{t['total_s'] * 1000:.0f}" + ("" if t["ok"] else " (failed)") for t in c["tries"]
            )
            + ".\n"
        )


def write_gateway(res: dict[str, Any], L: list[str]) -> None:
    g = res.get("gateway") or {}
    if not g.get("variants"):
        return
    m = res["meta"]
    L.append("## 2. Gateway routing overhead\n")
    L.append(
        "| path | conns | req/s | p50 ms | p99 ms | errors | platform CPU µs/req "
        "| replica CPU µs/req | wrk CPU µs/req |"
    )
    L.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name in GW_VARIANTS:
        for lvl in LEVELS:
            r = (g["variants"].get(name) or {}).get(lvl) or {}
            if r.get("status") != "ok":
                L.append(f"| {GW_LABELS[name]} | {lvl[1:]} | {r.get('status', '—')} |||||||")
                continue
            L.append(
                f"| {GW_LABELS[name]} | {lvl[1:]} | {r['rps']:,.0f} | {r['p50_ms']:.2f} | "
                f"{r['p99_ms']:.2f} | {r['errors']} | "
                + (
                    f"{cell(r, 'platform_cpu_us_per_req_median')} | "
                    if name != "direct"
                    else "— | "
                )
                + f"{cell(r, 'replica_cpu_us_per_req_median')} | "
                + f"{cell(r, 'wrk_cpu_us_per_req_median')} |"
                + (" †" if r.get("suspect") else "")
            )
    rt = g.get("ratios") or {}
    L.append("\nRatios to the model server direct (same run):\n")
    L.append(
        "| path | conns | req/s ratio (median rounds) | each round | added p50 ms "
        "| each round | added p99 ms | server CPU ratio |"
    )
    L.append("|---|---:|---:|---|---:|---|---:|---:|")
    for name in ("host", "serving"):
        for lvl in LEVELS:
            r = (rt.get(lvl) or {}).get(name)
            if not r:
                continue
            L.append(
                f"| {GW_LABELS[name]} | {lvl[1:]} | {r['rps_ratio']:.2f} | "
                f"{' / '.join(f'{x:.2f}' for x in r.get('per_round_ratio', []))} | "
                f"{r['added_p50_ms']:+.2f} | "
                f"{' / '.join(f'{x:+.2f}' for x in r.get('per_round_added_p50_ms', []))} | "
                f"{r['added_p99_ms']:+.2f} | {r.get('server_cpu_ratio', '—')} |"
            )
    L.append(
        "\nHow measured: on the cold-start platform, one iris InferenceService "
        f"`{GW_SERVICE}` (`minReplicas: 1`, `maxReplicas: 1`, so the autoscaler cannot add a "
        "replica under load). wrk posts the same V2 JSON infer (2 iris rows) through the "
        f"platform's gateway with `Authorization: Bearer` (from `modelport token`) — with "
        f"`Host: {GW_SERVICE}.{NS}.{DOMAIN}` to `/v2/models/{GW_SERVICE}/infer`, and to "
        f"`/serving/{NS}/{GW_SERVICE}/v2/...` — and straight to `modelport serve` of the same "
        "model with a replica's arguments (a replica answers only requests carrying its key, "
        "which only the gateway holds). `-t2 -c64`, "
        f"`-t2 -c8`, `-t1 -c1`, {m['duration_s']} s each after {m['warmup_s']} s of c=64 "
        f"warm-up, {m['repeat']} interleaved rounds (order rotated), the median round by req/s "
        "kept. CPU µs/req: CPU time of the `modelport up` process (gateway, auth, routing, "
        "controller — one process, one event loop), of the replica, and of wrk, over the "
        "measurement ÷ requests (medians over rounds). 'server CPU ratio' = replica CPU per "
        "request direct ÷ (platform + replica) via the gateway: the req/s ratio if only the "
        "servers' CPU set the pace. The replica is one process (`--workers 1`, as the platform "
        "runs it), so direct c=64 leaves a core to wrk while via the gateway two busy "
        "processes and wrk share 2 cores.\n"
    )
    c1 = (g["variants"].get("host") or {}).get("c1") or {}
    if c1.get("p50_ms", 0) > 30:
        L.append(
            f"The gateway's c=1 p50 of {c1['p50_ms']:.0f} ms on a keep-alive connection looks "
            "like a Nagle / delayed-ACK stall (~40 ms on Linux): a response written in two parts "
            "waiting for the client's ACK of the first.\n"
        )
    write_where(g, L, int(m["machine"]["nproc"]))
    p = g.get("profile") or {}
    if p.get("status") == "ok":
        L.append(
            f"py-spy on the platform process under c=64 Host-header load ({p['samples']} "
            f"samples, {p['seconds']} s, busy {100 * p['busy_fraction']:.0f} % of the time). "
            "Self time by library: "
            + ", ".join(f"`{f['frame']}` {f['pct']} %" for f in p["self_by_package"])
            + ".\n"
        )
        write_frames(p, L)
    elif p:
        L.append(f"py-spy: {p.get('status')}: {p.get('reason') or p.get('detail')}\n")


def write_where(g: dict[str, Any], L: list[str], cores: int) -> None:
    """Where the time goes at c=64: CPU per request of each process, and the platform's
    py-spy samples grouped by part."""
    v, rt = g["variants"], g.get("ratios") or {}
    h, d = (v.get("host") or {}).get("c64") or {}, (v.get("direct") or {}).get("c64") or {}
    r64 = (rt.get("c64") or {}).get("host") or {}
    if not r64:
        return
    pf = h.get("platform_cpu_us_per_req_median")
    rep = h.get("replica_cpu_us_per_req_median")
    wk = h.get("wrk_cpu_us_per_req_median")
    rd = d.get("replica_cpu_us_per_req_median")
    wd = d.get("wrk_cpu_us_per_req_median")
    if not (pf and rep and wk and rd and wd):
        return
    L.append("### Where the time goes (c=64, Host header)\n")
    L.append("| CPU µs per request | platform | replica | wrk | sum | cores busy at the req/s |")
    L.append("|---|---:|---:|---:|---:|---:|")
    for label, r, a, b, c in (
        ("via the gateway", h, pf, rep, wk),
        ("model server direct", d, 0.0, rd, wd),
    ):
        tot = a + b + c
        L.append(
            f"| {label} | {a:.0f} | {b:.0f} | {c:.0f} | {tot:.0f} | {tot * r['rps'] / 1e6:.2f} |"
        )
    L.append("")
    parts = ", ".join(
        f"{x['part']} {x['pct']} %" for x in ((g.get("profile") or {}).get("by_part") or [])
    )
    L.append(
        f"Through the gateway a request costs {pf + rep + wk:.0f} µs of CPU on the machine "
        f"against {rd + wd:.0f} µs direct ({(pf + rep + wk) / (rd + wd):.1f}×): the platform "
        f"process adds {pf:.0f} µs and the replica spends {rep:.0f} µs instead of {rd:.0f}. "
        f"With all {cores} cores busy and shared by the three, that allows at most "
        f"{cores * 1e6 / (pf + rep + wk):,.0f} req/s "
        f"({cores * 1e6 / (pf + rep + wk) / d['rps']:.2f}× direct); the platform is one event "
        f"loop, so it could not pass {1e6 / pf:,.0f} req/s "
        f"even with a core of its own ({1e6 / pf / d['rps']:.2f}× direct)."
        + (f" The platform's py-spy samples by part: {parts}." if parts else "")
        + "\n"
    )


def write_frames(p: dict[str, Any], L: list[str], n_self: int = 6, n_incl: int = 10) -> None:
    L.append("| self % | frame |")
    L.append("|---:|---|")
    for f in p["self"][:n_self]:
        L.append(f"| {f['pct']} | `{f['frame']}` |")
    L.append("\n| incl. % | modelport / SQLAlchemy ORM frame |")
    L.append("|---:|---|")
    for f in p["inclusive"][:n_incl]:
        L.append(f"| {f['pct']} | `{f['frame']}` |")
    L.append("")
