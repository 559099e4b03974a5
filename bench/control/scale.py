"""Many idle services: apply time, CLI and API latency, memory, idle CPU."""

from __future__ import annotations

import http.client
import re
import subprocess
import threading
import time
from typing import Any

from bench.control.cold import cold_try, summarize_cold
from bench.control.measure import Watch, cpu_seconds, dist, proc_memory, wait_quiet
from bench.control.platform import Platform, isvc_doc, services_state, wait_for
from bench.control.profiling import cli_profile, pyspy
from bench.control.settings import HOST, Ctx, log
from bench.lib import load


# =========================================================================== 3. scale
def time_cli(pf: Platform, args: list[str], n: int) -> dict[str, Any]:
    times, out = [], ""
    for _ in range(n):
        t0 = time.monotonic()
        r = pf.cli(*args)
        times.append(round((time.monotonic() - t0) * 1000, 1))
        out = r.stdout
    return {"cmd": "modelport " + " ".join(args), "lines": len(out.splitlines()), **dist(times, 1)}


def time_api(pf: Platform, path: str, n: int) -> dict[str, Any]:
    """Sequential GETs, each on a new connection (as the CLI makes them)."""
    times, size = [], 0
    for _ in range(n):
        t0 = time.monotonic()
        st, _, data = pf.api("GET", path)
        times.append(round((time.monotonic() - t0) * 1000, 2))
        if st != 200:
            raise RuntimeError(f"GET {path}: HTTP {st}")
        size = len(data)
    return {"path": path, "bytes": size, **dist(times, 2)}


def time_api_keepalive(pf: Platform, path: str, n: int) -> dict[str, Any]:
    """Sequential GETs on one keep-alive connection (as a dashboard or a script would)."""
    times = []
    conn = http.client.HTTPConnection(HOST, pf.port, timeout=60)
    try:
        for _ in range(n):
            t0 = time.monotonic()
            conn.request("GET", path, headers={"Authorization": f"Bearer {pf.token}"})
            r = conn.getresponse()
            r.read()
            times.append(round((time.monotonic() - t0) * 1000, 2))
    finally:
        conn.close()
    return {"path": path, **dist(times[1:] or times, 2)}


def import_time(pf: Platform) -> dict[str, Any]:
    """`python -X importtime -m modelport get isvc -A`: where CLI start-up time goes."""
    r = subprocess.run(
        [pf.py, "-X", "importtime", "-m", "modelport", "get", "isvc", "-A"],
        capture_output=True,
        text=True,
        env=pf.env,
        timeout=120,
    )
    top = []
    for line in r.stderr.splitlines():
        m = re.match(r"import time:\s+(\d+) \|\s+(\d+) \| (\S.*)$", line)
        if m and not m.group(3).startswith(" "):
            top.append((int(m.group(2)), m.group(3).strip()))
    top.sort(reverse=True)
    return {
        "total_ms": round(sum(c for c, _ in top) / 1000, 1),
        "top": [{"module": n, "ms": round(c / 1000, 1)} for c, n in top[:8]],
    }


def snapshot(ctx: Ctx, pf: Platform, label: str) -> dict[str, Any]:
    """Memory, idle CPU, CLI and API timings of the platform as it is now."""
    a = ctx.args
    time.sleep(2.0)
    foreign = wait_quiet()
    out: dict[str, Any] = {"label": label, "foreign_cores_before": foreign}
    out["services"] = len(pf.api_json("/api/v1/inferenceservices")["items"])
    out["replicas"] = len(pf.replicas())
    out["platform_mem"] = proc_memory(pf.proc.pid)
    out["zygote_mem"] = proc_memory(pf.zygote)
    c0, t0 = cpu_seconds(pf.proc.pid), time.monotonic()
    time.sleep(a.idle_seconds)
    out["idle_cpu_cores"] = round((cpu_seconds(pf.proc.pid) - c0) / (time.monotonic() - t0), 3)
    watch = Watch()
    out["cli_version"] = time_cli(pf, ["version"], a.cli_runs)
    out["cli_get_all"] = time_cli(pf, ["get", "isvc", "-A"], a.cli_runs)
    out["api_list_all"] = time_api(pf, "/api/v1/inferenceservices", a.api_runs)
    out["api_list_all_keepalive"] = time_api_keepalive(
        pf, "/api/v1/inferenceservices", min(a.api_runs, 11)
    )
    out["foreign_cores"] = watch.foreign_cores()
    log(
        f"  [{label}] {out['services']} services, platform RSS "
        f"{out['platform_mem']['rss_mib']} MiB, zygote RSS {out['zygote_mem']['rss_mib']} MiB, "
        f"idle CPU {out['idle_cpu_cores']} cores; `get isvc -A` p50 "
        f"{out['cli_get_all']['p50']} ms (`version` {out['cli_version']['p50']} ms); "
        f"API list p50 {out['api_list_all']['p50']} ms ({out['api_list_all']['bytes']} B)"
    )
    return out


def apply_idle_services(ctx: Ctx, pf: Platform, names: list[tuple[str, str]]) -> dict[str, Any]:
    """Apply `names` as idle services (no replica) and time until all are Ready with 0."""
    a, n = ctx.args, len(names)
    ann = {"autoscaling.knative.dev/initial-scale": "0", "autoscaling.knative.dev/window": "6s"}
    docs = [
        isvc_doc(s, ns, ctx.model_dir, predictor={"minReplicas": 0}, annotations=ann)
        for ns, s in names
    ]
    files = []
    for b in range(0, n, a.apply_batch):
        f = ctx.work / f"scale-{b:03d}.yaml"
        f.write_text("---\n".join(docs[b : b + a.apply_batch]))
        files.append(f)
    peak = [0]
    stop = threading.Event()

    def monitor() -> None:
        while not stop.is_set():
            peak[0] = max(peak[0], len(pf.replicas()))
            stop.wait(0.2)

    mon = threading.Thread(target=monitor, daemon=True)
    mon.start()
    wait_quiet()
    log(f"scale: applying {n} services in {len(files)} files of {a.apply_batch}")
    apply_ms = []
    t0 = time.monotonic()
    try:
        for f in files:
            started = time.monotonic()
            pf.cli("apply", "-f", str(f))
            apply_ms.append(round((time.monotonic() - started) * 1000, 1))
        t_applied = time.monotonic() - t0
        want = set(names)

        def all_idle_ready() -> bool:
            st = services_state(pf)
            return all(st.get(k) == (True, 0) for k in want)

        ok = wait_for(all_idle_ready, 300, 0.25)
        t_ready = time.monotonic() - t0
    finally:
        stop.set()
        mon.join(5)
    if not ok:
        raise RuntimeError(f"{n} services not all Ready with 0 replicas in 300 s:\n{pf.tail()}")
    log(
        f"scale: applied in {t_applied:.1f} s, all {n} Ready with 0 replicas after "
        f"{t_ready:.1f} s; peak replicas {peak[0]}"
    )
    return {
        "services": n,
        "namespaces": len({ns for ns, _ in names}),
        "files": len(files),
        "per_file": a.apply_batch,
        "apply_ms": dist(apply_ms, 1),
        "apply_total_s": round(t_applied, 2),
        "all_ready_zero_s": round(t_ready, 2),
        "after_last_apply_s": round(t_ready - t_applied, 2),
        "peak_replicas": peak[0],
    }


def profile_platform(ctx: Ctx, pf: Platform, n: int) -> dict[str, Any]:
    """py-spy of the platform idle with `n` services, then while it serves their list."""
    seconds = ctx.args.profile_seconds
    wait_quiet()
    log(f"py-spy {seconds} s on the platform, idle with {n} services")
    out = {"profile_idle": pyspy(pf.proc.pid, seconds, ctx.work / "pyspy-idle.txt")}
    get_lua = ctx.work / "get.lua"
    lua = load.LUA_POST.read_text().replace('wrk.method = "POST"', 'wrk.method = "GET"')
    get_lua.write_text(
        lua.replace(
            'wrk.headers["Content-Type"] = args[2]',
            'if args[2] ~= "" then wrk.headers["Content-Type"] = args[2] end',
        )
    )
    empty = ctx.work / "empty"
    empty.write_bytes(b"")
    log(f"py-spy {seconds} s on the platform during GET /api/v1/inferenceservices")
    url = f"http://{HOST}:{pf.port}/api/v1/inferenceservices"
    wrk_cmd = ["wrk", "-t1", "-c1", f"-d{seconds + 3}s", "-s", str(get_lua), url, "--"]
    wrk_cmd += [str(empty), "", f"Authorization: Bearer {pf.token}"]
    out["profile_list"] = pyspy(pf.proc.pid, seconds, ctx.work / "pyspy-list.txt", load=wrk_cmd)
    return out


def run_scale(ctx: Ctx, pf: Platform, res: dict[str, Any]) -> None:
    a = ctx.args
    sc = res["scale"]
    sc["at_0"] = snapshot(ctx, pf, "0 services")
    sc["import_time"] = import_time(pf)
    n, per_ns = a.services, 50
    names = [(f"scale-{i // per_ns}", f"svc-{i:03d}") for i in range(n)]
    sc["apply"] = apply_idle_services(ctx, pf, names)
    sc["at_n"] = snapshot(ctx, pf, f"{n} services")
    if a.profile_seconds:
        log(f"py-spy on {a.cli_runs} runs of `modelport get isvc -A` with {n} services")
        sc["profile_cli"] = cli_profile(pf, ["get", "isvc", "-A"], a.cli_runs, ctx.work)
    sc["api_get_one"] = time_api(
        pf, f"/api/v1/namespaces/{names[0][0]}/inferenceservices/{names[0][1]}", a.api_runs
    )
    sc["api_list_ns"] = time_api(pf, f"/api/v1/namespaces/{names[0][0]}/inferenceservices", 10)
    if a.profile_seconds:
        sc.update(profile_platform(ctx, pf, n))
    if a.cold200_tries:
        wait_quiet()
        tries = []
        for ns, s in names[: a.cold200_tries]:
            t = cold_try(pf, ns, s, ctx.v1_body, ctx.expected)
            tries.append(t)
            log(f"  cold (with {n} services) {s}: {t['total_s'] * 1000:.0f} ms, HTTP {t['status']}")
            time.sleep(ctx.args.cold_gap)
        sc["cold_with_n"] = {"tries": tries, "summary": summarize_cold(tries)}
