"""CONTROL.md's scale section."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bench.control.profiling import CLI_OWN
from bench.control.report_sections import write_frames
from bench.control.settings import TARGETS


def write_scale(res: dict[str, Any], L: list[str]) -> None:
    sc = res.get("scale") or {}
    a0, an, ap = sc.get("at_0"), sc.get("at_n"), sc.get("apply")
    if not a0:
        return
    n = ap["services"] if ap else "?"
    L.append(f"## 3. Control plane with {n} InferenceServices\n")
    if ap:
        L.append(
            f"Applying {n} services (in {ap['namespaces']} namespaces, {ap['files']} `modelport "
            f"apply -f` calls of {ap['per_file']} documents): {ap['apply_total_s']} s for the "
            f"applies (each p50 {ap['apply_ms']['p50']:.0f} ms, max {ap['apply_ms']['max']:.0f} "
            f"ms); all {n} reported Ready with 0 replicas **{ap['all_ready_zero_s']} s** after "
            f"the first apply ({ap['after_last_apply_s']} s after the last). Replicas started "
            f'meanwhile: {ap["peak_replicas"]} at most (`initial-scale: "0"` is honoured).\n'
        )
    rows = [a0] + ([an] if an else [])
    L.append("| | " + " | ".join(r["label"] for r in rows) + " |")
    L.append("|---|" + "---:|" * len(rows))

    def row(label: str, fn: Callable[[dict[str, Any]], str]) -> None:
        L.append(f"| {label} | " + " | ".join(fn(r) for r in rows) + " |")

    row("`modelport get isvc -A` wall p50 / p90 ms", lambda r: pct_cell(r["cli_get_all"]))
    row(
        "`modelport version` wall p50 / p90 ms (CLI start-up floor)",
        lambda r: pct_cell(r["cli_version"]),
    )
    row("`GET /api/v1/inferenceservices` p50 / p90 ms", lambda r: pct_cell(r["api_list_all"], 1))
    row("… response size", lambda r: f"{r['api_list_all']['bytes'] / 1024:,.0f} KiB")
    row(
        "… the same on one keep-alive connection, p50 / p90 ms",
        lambda r: pct_cell(r["api_list_all_keepalive"], 1),
    )
    row("platform (`modelport up`) RSS / PSS MiB", lambda r: mem_cell(r["platform_mem"]))
    row("zygote RSS / PSS MiB", lambda r: mem_cell(r["zygote_mem"]))
    row("platform CPU while idle (cores)", lambda r: f"{r['idle_cpu_cores']:.3f}")
    row("replica processes", lambda r: str(r["replicas"]))
    L.append("")
    if not res.get("cold"):
        write_cold_with_n(sc, n, L)  # the cold-start section, which says it otherwise, did not run
    if an:
        added = max(an["services"] - a0["services"], 1)
        d_rss = (an["platform_mem"]["rss_mib"] - a0["platform_mem"]["rss_mib"]) * 1024 / added
        d_list = (an["api_list_all"]["p50"] - a0["api_list_all"]["p50"]) * 1000 / added
        L.append(
            f"Per service: platform RSS {d_rss:+.0f} KiB; `GET /api/v1/inferenceservices` "
            f"{d_list:+.0f} µs. One service (`GET .../inferenceservices/NAME`) p50 "
            f"{sc['api_get_one']['p50']:.1f} ms; one namespace of 50 p50 "
            f"{sc['api_list_ns']['p50']:.1f} ms.\n"
        )
    if an:
        extra = (an["idle_cpu_cores"] - a0["idle_cpu_cores"]) * 1000
        cw = ((sc.get("cold_with_n") or {}).get("summary") or {}).get("to_fork_s") or {}
        c0 = (((res.get("cold") or {}).get("summary") or {}).get("to_fork_s")) or {}
        nc = ((res.get("cold") or {}).get("setup") or {}).get("services", "?")
        L.append(
            f"Idle, the platform used {an['idle_cpu_cores']:.3f} cores with {n} services "
            f"against {a0['idle_cpu_cores']:.3f} with none ({extra:+.0f} ms of CPU per second; "
            "the idle py-spy below shows where)"
            + (
                f"; request → replica fork in a cold start took p50 {cw['p50'] * 1000:.0f} ms "
                f"here against {c0['p50'] * 1000:.0f} ms on the platform with {nc} services"
                if cw.get("p50") is not None and c0.get("p50") is not None
                else ""
            )
            + ".\n"
        )
    write_cli_time(sc, a0, an, L)
    write_platform_profiles(sc, n, L)
    write_scale_method(res, n, L)


def write_cli_time(
    sc: dict[str, Any], a0: dict[str, Any], an: dict[str, Any] | None, L: list[str]
) -> None:
    """Where the time of `modelport get isvc -A` goes: start-up, imports, py-spy phases."""
    ka = (a0.get("api_list_all_keepalive") or {}).get("p50")
    if ka and ka > 30:
        L.append(
            f"The {ka:.0f} ms on a keep-alive connection with 0 services looks like a Nagle / "
            "delayed-ACK stall (a small response written in two parts).\n"
        )
    it = sc.get("import_time")
    if it:
        g0 = a0["cli_get_all"]["p50"] - a0["cli_version"]["p50"]
        L.append(
            f"`modelport get isvc -A` is {a0['cli_version']['p50']:.0f} ms of CLI start-up "
            f"(`modelport version`) plus {g0:.0f} ms with 0 services (the `get` command's own "
            "imports, the request, the table); the API request itself is the row above. "
        )
        L.append(
            f"CLI start-up: `python -X importtime -m modelport get isvc -A` spends "
            f"{it['total_ms']:.0f} ms importing; largest top-level imports: "
            + ", ".join(f"`{x['module']}` {x['ms']:.0f} ms" for x in it["top"][:6])
            + " (a module listed with no parent is imported while the command runs).\n"
        )
    pc = sc.get("profile_cli") or {}
    if pc.get("status") == "ok" and an:
        g = an["cli_get_all"]["p50"]
        L.append(f"### Where the time of `{pc['cmd']}` goes ({an['services']} services)\n")
        L.append(
            f"Wall p50 {g:.0f} ms (target < {TARGETS['get_isvc_ms']:.0f} ms); `modelport "
            f"version` {an['cli_version']['p50']:.0f} ms. py-spy ({pc['rate_hz']} Hz, "
            f"`--nonblocking`) over {pc['runs']} runs, {pc['ms_per_run']:.0f} ms of samples per "
            "run, by phase (first match from the top):\n"
        )
        L.append("| phase | ms per run | % |")
        L.append("|---|---:|---:|")
        for x in pc["phases"]:
            L.append(f"| {x['phase']} | {x['ms']:.1f} | {x['pct']} |")
        own = sum(x["ms"] for x in pc["phases"] if x["phase"].startswith(CLI_OWN))
        top = pc["phases"][0]
        L.append(
            f"\nThe command's own work (request, JSON, table, with {an['services']} services) "
            f"is {own:.0f} ms of the {pc['ms_per_run']:.0f}; the rest is start-up that every "
            f"CLI command pays, the largest part being {top['phase'].split(':')[0]} "
            f"({top['ms']:.0f} ms per run).\n"
        )
    elif pc:
        L.append(f"py-spy of the CLI: {pc.get('status')}: {pc.get('reason') or pc.get('detail')}\n")


def write_platform_profiles(sc: dict[str, Any], n: Any, L: list[str]) -> None:
    """py-spy of the platform serving the list and idle."""
    for key, title in (
        ("profile_list", "serving `GET /api/v1/inferenceservices` back to back (wrk c=1)"),
        ("profile_idle", "idle"),
    ):
        p = sc.get(key) or {}
        if p.get("status") == "ok":
            L.append(
                f"py-spy on the platform with {n} services, {title}: {p['samples']} samples "
                f"in {p['seconds']} s at {p['rate_hz']} Hz (busy {100 * p['busy_fraction']:.0f}"
                " % of the time). Self time by library: "
                + ", ".join(f"`{f['frame']}` {f['pct']} %" for f in p["self_by_package"][:6])
                + ".\n"
            )
            write_frames(p, L)
        elif p:
            L.append(f"py-spy ({title}): {p.get('status')}: {p.get('reason') or p.get('detail')}\n")


def write_scale_method(res: dict[str, Any], n: Any, L: list[str]) -> None:
    """How the scale figures were measured."""
    L.append(
        "How measured: a second, fresh `modelport up` (new data dir). Snapshot with 0 services, "
        f"then {n} sklearn iris InferenceServices (`minReplicas: 0`, annotations "
        '`autoscaling.knative.dev/initial-scale: "0"` and `window: "6s"`, all with the '
        "same local storageUri) applied with the CLI, 50 per namespace; a thread counts the "
        "zygote's live children every 0.2 s; the control API is polled every 0.25 s until "
        "every service is Ready with `status.replicas` 0. Each snapshot, after waiting for a "
        "quiet machine: RSS and PSS of the `modelport up` process and of its zygote child "
        "(`/proc/PID/status`, `smaps_rollup`), the platform's CPU over "
        f"{res['meta'].get('idle_seconds')} s of no requests, then `modelport version` and "
        f"`modelport get isvc -A` (console script, wall time of the whole process, "
        f"{res['meta'].get('cli_runs')} runs each, sequential) and "
        f"{res['meta'].get('api_runs')} sequential `GET /api/v1/inferenceservices` with the "
        "Bearer token, each on a new connection (time to the last byte). py-spy samples the "
        "platform process at 200 Hz (`--nonblocking`); 'busy' = samples ÷ (seconds × rate), "
        "py-spy dropping idle samples.\n"
    )


def pct_cell(d: dict[str, Any], nd: int = 0) -> str:
    return f"{d['p50']:.{nd}f} / {d['p90']:.{nd}f}"


def mem_cell(d: dict[str, Any]) -> str:
    return f"{d.get('rss_mib') or 0:.0f} / {d.get('pss_mib') or 0:.0f}"


def write_cold_with_n(sc: dict[str, Any], n: object, L: list[str]) -> None:
    """Cold starts of services among the idle ones, one at a time."""
    cw = (sc.get("cold_with_n") or {}).get("summary") or {}
    tt = cw.get("total_s") or {}
    if not tt.get("n"):
        return
    fork = cw.get("to_fork_s") or {}
    L.append(
        f"Cold starts with {n} idle services registered (one V1 `:predict` to a service "
        "scaled to zero, one at a time, timed from before connect until the body is read): "
        f"p50 **{tt['p50'] * 1000:.0f} ms**, p90 {tt['p90'] * 1000:.0f} ms, max "
        f"{tt['max'] * 1000:.0f} ms over {cw['ok']}/{cw['tries']} tries; request → replica "
        f"fork p50 {fork.get('p50', float('nan')) * 1000:.0f} ms.\n"
    )
