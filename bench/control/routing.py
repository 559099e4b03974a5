"""The gateway's routing overhead inside `modelport up`, against the same model server
reached directly."""

from __future__ import annotations

import json
import re
import resource
import statistics
import subprocess
import time
from collections.abc import Callable
from functools import partial
from typing import Any

from bench.control.measure import Watch, cpu_seconds, median_of, tree_cpu, wait_quiet, wrk
from bench.control.platform import Platform, isvc_doc, services_state, wait_for
from bench.control.profiling import pyspy
from bench.control.settings import DOMAIN, GW_SERVICE, HOST, LEVELS, NS, Ctx, log
from bench.lib import load, procs
from bench.lib.checks import check_v2
from bench.lib.cpu import FOREIGN_LIMIT


# =========================================================================== 2. gateway
def measured(
    fn: Callable[[], dict[str, Any]], platform: int | None, replica: int | None, attempts: int = 3
) -> dict[str, Any]:
    """One wrk measurement with CPU per request of the platform process, the replica and
    wrk; redone when disturbed (other processes busy, or run.py's consistency check)."""
    r: dict[str, Any] = {}
    for attempt in range(attempts):
        c_pf = cpu_seconds(platform) if platform else 0.0
        c_rep = tree_cpu(replica) if replica else 0.0
        ch = resource.getrusage(resource.RUSAGE_CHILDREN)
        watch = Watch()
        r = fn()
        r["foreign_cores"] = watch.foreign_cores()
        ch2 = resource.getrusage(resource.RUSAGE_CHILDREN)
        if r.get("status") == "ok" and r["requests"]:
            n = r["requests"]
            if platform:
                r["platform_cpu_us_per_req"] = round((cpu_seconds(platform) - c_pf) * 1e6 / n, 1)
            if replica:
                r["replica_cpu_us_per_req"] = round((tree_cpu(replica) - c_rep) * 1e6 / n, 1)
            wrk_cpu = (ch2.ru_utime + ch2.ru_stime) - (ch.ru_utime + ch.ru_stime)
            r["wrk_cpu_us_per_req"] = round(wrk_cpu * 1e6 / n, 1)
        why = load.suspect_reason(r)
        if not why and r["foreign_cores"] > FOREIGN_LIMIT:
            why = f"other processes used {r['foreign_cores']} cores meanwhile"
        if not why:
            return r
        log(f"  disturbed ({why}); " + ("retrying" if attempt < attempts - 1 else "kept, flagged"))
        r["suspect"] = why
        if "other processes" in why and attempt < attempts - 1:
            time.sleep(5.0)
    return r


def median_round(runs: list[dict[str, Any]]) -> dict[str, Any]:
    best = median_of(runs)
    if len(runs) > 1:
        best["runs_p50_ms"] = [r.get("p50_ms") for r in runs]
    for k in ("platform_cpu_us_per_req", "replica_cpu_us_per_req", "wrk_cpu_us_per_req"):
        vals = [r[k] for r in runs if r.get(k) is not None]
        if vals:
            best[k + "_median"] = round(statistics.median(vals), 1)
    return best


def fmt(r: dict[str, Any]) -> str:
    if r.get("status") != "ok":
        return f"{r.get('status')}: {r.get('detail', '')}"
    s = f"{r['rps']:.0f} req/s, p50 {r['p50_ms']:.2f} ms, p99 {r['p99_ms']:.2f} ms"
    s += f", errors {r['errors']}"
    for k, label in (
        ("platform_cpu_us_per_req", "platform"),
        ("replica_cpu_us_per_req", "replica"),
    ):
        if r.get(k):
            s += f", {label} {r[k]:.0f} µs/req"
    return s


def deploy_gw_service(ctx: Ctx, pf: Platform) -> tuple[int, int]:
    """The load-test service on `pf` (one replica, never more): its replica's pid and port."""
    doc = isvc_doc(
        GW_SERVICE,
        NS,
        ctx.model_dir,
        predictor={"minReplicas": 1, "maxReplicas": 1},
        annotations={},
    )
    f = ctx.work / f"gw-{pf.name}.yaml"
    f.write_text(doc)
    pf.cli("apply", "-f", str(f))

    def ready() -> bool:
        st = services_state(pf, NS).get((NS, GW_SERVICE))
        return st == (True, 1) and pf.replica_pid(GW_SERVICE) is not None

    if not wait_for(ready, 120):
        raise RuntimeError(f"{GW_SERVICE} not ready on {pf.name}:\n{pf.tail()}")
    rep = pf.replica_pid(GW_SERVICE)
    lp = pf.replica_log(NS, GW_SERVICE)
    if rep is None or lp is None:
        raise RuntimeError(f"{GW_SERVICE}: its replica went away on {pf.name}")
    ports = re.findall(r"--- starting on port (\d+)", lp.read_text(errors="replace"))
    log(f"{pf.name}: {GW_SERVICE} replica pid {rep} on port {ports[-1]}")
    return rep, int(ports[-1])


def start_direct(ctx: Ctx) -> tuple[subprocess.Popen[bytes], int]:
    """The baseline: `modelport serve` of the same model with a replica's arguments. The
    platform's own replica answers only requests carrying its key, which only the gateway
    holds, so the bench cannot load it directly."""
    (port,) = procs.free_ports(1)
    cmd = [ctx.py, "-m", "modelport", "serve", str(ctx.model_dir), "--name", GW_SERVICE]
    cmd += ["--host", HOST, "--http-port", str(port), "--grpc-port", "-1", "--workers", "1"]
    p = procs.spawn(cmd, ctx.logs / "direct-serve.log", cwd=ctx.work)
    if procs.wait_http_ok(p, port, "/v2/health/ready", time.monotonic(), 60.0) is None:
        why = procs.tail(ctx.logs / "direct-serve.log")
        raise RuntimeError(f"direct model server did not start:\n{why}")
    log(f"direct baseline: modelport serve pid {p.pid} on port {port}")
    return p, port


def run_gateway(ctx: Ctx, pf: Platform, res: dict[str, Any]) -> None:
    a = ctx.args
    rep, replica_port = deploy_gw_service(ctx, pf)
    direct, direct_port = start_direct(ctx)
    v2 = f"/v2/models/{GW_SERVICE}/infer"
    host = f"Host: {GW_SERVICE}.{NS}.{DOMAIN}"
    auth = f"Authorization: Bearer {pf.token}"
    variants = {  # name -> (port, path, headers, platform pid, replica pid)
        "host": (pf.port, v2, [auth, host], pf.proc.pid, rep),
        "serving": (pf.port, f"/serving/{NS}/{GW_SERVICE}{v2}", [auth], pf.proc.pid, rep),
        "direct": (direct_port, v2, [], None, direct.pid),
    }
    setup = {"replica_pid": rep, "replica_port": replica_port, "direct_pid": direct.pid}
    checks = {}
    for name, (port, path, hdrs, _, _) in variants.items():
        headers = dict(h.split(": ", 1) for h in hdrs)
        why = check_v2(port, path, ctx.v2_body, ctx.expected, headers)
        checks[name] = {"ok": not why, "detail": why or "200, predictions match"}
        log(f"  check {name}: {'OK' if not why else 'FAILED: ' + why}")
    st, _, _ = procs.http_req(
        pf.port,
        "POST",
        v2,
        ctx.v2_body,
        {
            "Host": f"{GW_SERVICE}.{NS}.{DOMAIN}",
            "Content-Type": "application/json",
            "Accept": "application/json",
        },
    )
    checks["no_token_refused"] = {"ok": st in (302, 401), "detail": f"HTTP {st}"}
    res["gateway"]["checks"] = checks
    if not all(c["ok"] for c in checks.values()):
        raise RuntimeError("gateway checks failed: " + json.dumps(checks))
    res["gateway"]["setup"] = setup

    runs: dict[str, dict[str, list[dict[str, Any]]]] = {
        v: {lvl: [] for lvl in LEVELS} for v in variants
    }
    names = list(variants)
    for rnd in range(a.repeat):
        order = names[rnd % len(names) :] + names[: rnd % len(names)]
        wait_quiet()
        log(f"gateway round {rnd + 1}/{a.repeat}: {', '.join(order)}")
        for name in order:
            port, path, hdrs, ppid, rpid = variants[name]
            url = f"http://{HOST}:{port}{path}"
            if a.warmup:
                wrk(url, ctx.v2_file, hdrs, 2, 64, a.warmup)
            for lvl, (t, c) in LEVELS.items():
                r = measured(partial(wrk, url, ctx.v2_file, hdrs, t, c, a.duration), ppid, rpid)
                runs[name][lvl].append(r)
                log(f"  {name} {lvl}: {fmt(r)}")
        if pf.proc.poll() is not None or len(pf.replicas()) != 1:
            raise RuntimeError(f"{pf.name}: platform exited or replicas changed under load")
    res["gateway"]["variants"] = {
        v: {lvl: median_round(runs[v][lvl]) for lvl in LEVELS} for v in variants
    }
    res["gateway"]["all_runs"] = runs
    if a.profile_seconds:
        port, path, hdrs, _, _ = variants["host"]
        wait_quiet()
        log(f"py-spy {a.profile_seconds} s on {pf.name} during c=64 Host-header load")
        res["gateway"]["profile"] = pyspy(
            pf.proc.pid,
            a.profile_seconds,
            ctx.work / f"pyspy-gateway-{pf.name}.txt",
            load=[
                "wrk",
                "-t2",
                "-c64",
                f"-d{a.profile_seconds + 3}s",
                "-s",
                str(load.LUA_POST),
                f"http://{HOST}:{port}{path}",
                "--",
                str(ctx.v2_file),
                "application/json",
                *hdrs,
            ],
        )


def summarize_gateway(g: dict[str, Any]) -> None:
    v = g.get("variants") or {}
    ratios: dict[str, Any] = {}
    for lvl in LEVELS:
        base = (v.get("direct") or {}).get(lvl) or {}
        for name in ("host", "serving"):
            r = (v.get(name) or {}).get(lvl) or {}
            if base.get("status") != "ok" or r.get("status") != "ok" or not base.get("rps"):
                continue
            rr = ratios.setdefault(lvl, {})[name] = {
                "rps_ratio": round(r["rps"] / base["rps"], 3),
                "added_p50_ms": round(r["p50_ms"] - base["p50_ms"], 3),
                "added_p99_ms": round(r["p99_ms"] - base["p99_ms"], 3),
            }
            pairs = [
                (round(x / y, 3), round(p - q, 3))
                for x, y, p, q in zip(
                    r.get("runs_rps") or [],
                    base.get("runs_rps") or [],
                    r.get("runs_p50_ms") or [],
                    base.get("runs_p50_ms") or [],
                    strict=False,
                )
                if x and y and p is not None and q is not None
            ]
            if pairs:
                rr["per_round_ratio"] = [p[0] for p in pairs]
                rr["per_round_added_p50_ms"] = [p[1] for p in pairs]
                rr["per_round_ratio_median"] = round(statistics.median(p[0] for p in pairs), 3)
            cpu_g = r.get("platform_cpu_us_per_req_median", r.get("platform_cpu_us_per_req"))
            cpu_r = r.get("replica_cpu_us_per_req_median", r.get("replica_cpu_us_per_req"))
            cpu_d = base.get("replica_cpu_us_per_req_median", base.get("replica_cpu_us_per_req"))
            if cpu_g and cpu_r and cpu_d:
                # servers' CPU per request direct ÷ via the gateway: the req/s ratio if the
                # servers' CPU alone set the pace (wrk excluded)
                rr["server_cpu_ratio"] = round(cpu_d / (cpu_g + cpu_r), 3)
    g["ratios"] = ratios
