"""Cold starts: services scaled to zero, one request each, timed until the response."""

from __future__ import annotations

import http.client
import json
import re
import time
from typing import Any

from bench.control.measure import Watch, dist, start_boottime, wait_quiet
from bench.control.platform import Platform, isvc_doc, services_state, wait_for
from bench.control.settings import HOST, NS, Ctx, log
from bench.lib import procs
from bench.lib.checks import same_predictions


# =========================================================================== 1. cold start
def serve_starts(ctx: Ctx, n: int) -> dict[str, Any]:
    """`modelport serve` spawn → /v2/health/ready 200, n times on fresh ports."""
    times = []
    for i in range(n):
        (port,) = procs.free_ports(1)
        cmd = [ctx.py, "-m", "modelport", "serve", str(ctx.model_dir), "--name", "sklearn-iris"]
        cmd += ["--http-port", str(port), "--grpc-port", "-1", "--workers", "1"]
        t0 = time.monotonic()
        p = procs.spawn(cmd, ctx.logs / f"serve-{i}.log", cwd=ctx.work)
        ready = procs.wait_http_ok(p, port, "/v2/health/ready", t0, 60.0)
        procs.kill_tree(p)
        if ready is None:
            return {"status": "error", "detail": procs.tail(ctx.logs / f"serve-{i}.log")}
        times.append(round(ready, 3))
        log(f"  modelport serve start {i + 1}/{n}: ready in {ready:.2f} s")
        time.sleep(1.0)
    return {"status": "ok", "times_s": times, **dist(times)}


def cold_try(pf: Platform, ns: str, name: str, body: bytes, expected: list[int]) -> dict[str, Any]:
    """One request to a service with no replica, on a fresh connection, timed to its end."""
    path = f"/serving/{ns}/{name}/v1/models/{name}:predict"
    headers = {"Authorization": f"Bearer {pf.token}", "Content-Type": "application/json"}
    boot0 = time.clock_gettime(time.CLOCK_BOOTTIME)
    t0 = time.monotonic()
    conn = http.client.HTTPConnection(HOST, pf.port, timeout=60)
    try:
        conn.request("POST", path, body=body, headers=headers)
        r = conn.getresponse()
        data = r.read()
        status = r.status
    except (OSError, http.client.HTTPException) as e:
        status, data = 0, repr(e).encode()
    finally:
        conn.close()
    total = time.monotonic() - t0
    out = {"service": name, "status": status, "total_s": round(total, 4)}
    out["ok"] = status == 200 and same_predictions(
        (json.loads(data).get("predictions") if status == 200 else None), expected
    )
    if not out["ok"]:
        out["detail"] = data[:300].decode(errors="replace")
    pid = pf.replica_pid(name)
    st = start_boottime(pid) if pid else None
    if st is not None:
        # request sent → replica forked: activator + controller; fork → answer: model
        # server start, readiness poll, proxying. Resolution 1/CLK_TCK (10 ms).
        out["to_fork_s"] = round(st - boot0, 3)
        out["fork_to_answer_s"] = round(total - (st - boot0), 3)
    lp = pf.replica_log(ns, name)
    if lp:
        m = re.findall(r"ready in ([0-9.]+) s", lp.read_text(errors="replace"))
        if m:
            out["server_ready_in_s"] = float(m[-1])
    return out


def run_cold(ctx: Ctx, pf: Platform, res: dict[str, Any]) -> None:
    n, batch = ctx.args.cold_tries, ctx.args.cold_batch
    names = [f"cold-{i:02d}" for i in range(n)]
    ann = {"autoscaling.knative.dev/window": "6s"}
    docs = [
        isvc_doc(s, NS, ctx.model_dir, predictor={"minReplicas": 0}, annotations=ann) for s in names
    ]
    t_apply = time.monotonic()
    peak = 0
    for b in range(0, n, batch):
        f = ctx.work / f"cold-{b:02d}.yaml"
        f.write_text("---\n".join(docs[b : b + batch]))
        pf.cli("apply", "-f", str(f))
        want = {(NS, s) for s in names[b : b + batch]}

        def batch_ready(want: set[tuple[str, str]] = want) -> bool:
            st = services_state(pf, NS)
            return all(st.get(k, (False, 0))[0] and st[k][1] >= 1 for k in want)

        if not wait_for(batch_ready, 120):
            raise RuntimeError(f"cold services {sorted(want)} not ready:\n{pf.tail()}")
        peak = max(peak, len(pf.replicas()))
    t_ready = time.monotonic() - t_apply
    log(f"cold: {n} services started once in {t_ready:.1f} s (batches of {batch})")

    def all_zero() -> bool:
        st = services_state(pf, NS)
        zero = all(st.get((NS, s), (False, 1)) == (True, 0) for s in names)
        return zero and not pf.replicas()

    if not wait_for(all_zero, 120, 0.5):
        raise RuntimeError(f"cold services did not scale to zero:\n{pf.tail()}")
    t_zero = time.monotonic() - t_apply
    log(f"cold: all {n} at 0 replicas after {t_zero:.1f} s")
    time.sleep(1.0)
    res["cold"]["setup"] = {
        "services": n,
        "apply_batch": batch,
        "started_once_s": round(t_ready, 1),
        "all_zero_s": round(t_zero, 1),
        "peak_replicas": peak,
    }
    res["cold"]["tries"] = tries = []
    res["cold"]["foreign_cores_before"] = wait_quiet()
    watch = Watch()
    for name in names:
        st = services_state(pf, NS).get((NS, name))
        if st != (True, 0) or pf.replica_pid(name):
            log(f"  {name}: not at zero replicas ({st}); skipped")
            continue
        before = len(pf.replicas())
        t = cold_try(pf, NS, name, ctx.v1_body, ctx.expected)
        t["other_replicas_alive"] = before
        tries.append(t)
        log(
            f"  cold {name}: {t['total_s'] * 1000:.0f} ms, HTTP {t['status']}"
            + (f", fork after {t['to_fork_s'] * 1000:.0f} ms" if "to_fork_s" in t else "")
            + (f", server ready in {t['server_ready_in_s']} s" if "server_ready_in_s" in t else "")
            + ("" if t["ok"] else f" FAILED: {t.get('detail')}")
        )
        time.sleep(ctx.args.cold_gap)
    res["cold"]["foreign_cores"] = watch.foreign_cores()
    res["cold"]["summary"] = summarize_cold(tries)


def summarize_cold(tries: list[dict[str, Any]]) -> dict[str, Any]:
    ok = [t for t in tries if t["ok"]]
    out = {"tries": len(tries), "ok": len(ok), "total_s": dist([t["total_s"] for t in ok])}
    for k in ("to_fork_s", "fork_to_answer_s", "server_ready_in_s"):
        out[k] = dist([t[k] for t in ok if k in t])
    return out
