"""Cold starts from zero replicas: modelport (each backend) and Ray Serve. One request on a
fresh connection to a service with no replica, timed until its whole answer."""

from __future__ import annotations

import http.client
import json
import time
from pathlib import Path
from typing import Any

from bench.control.measure import Watch, dist
from bench.control.platform import wait_for
from bench.lib.checks import same_predictions
from bench.lib.procs import HOST, log
from bench.ray import rayserve
from bench.ray.cluster import Cluster
from bench.ray.platforms import NS, Up

# As bench/control: Knative's stable window, shortened so that services reach zero soon.
WINDOW = {"autoscaling.knative.dev/window": "6s"}


def timed_post(
    port: int, path: str, body: bytes, headers: dict[str, str], expected: list[int]
) -> dict[str, Any]:
    """POST on a new connection; seconds to the end of the answer, and whether it is right."""
    t0 = time.monotonic()
    conn = http.client.HTTPConnection(HOST, port, timeout=120)
    try:
        conn.request(
            "POST", path, body=body, headers={**headers, "Content-Type": "application/json"}
        )
        resp = conn.getresponse()
        status, data = resp.status, resp.read()
    except (OSError, http.client.HTTPException) as e:
        status, data = 0, repr(e).encode()
    finally:
        conn.close()
    out: dict[str, Any] = {"status": status, "total_s": round(time.monotonic() - t0, 4)}
    try:
        got = json.loads(data)["outputs"][0]["data"] if status == 200 else None
    except (ValueError, KeyError, IndexError):
        got = None
    out["ok"] = got is not None and same_predictions(got, expected)
    if not out["ok"]:
        out["detail"] = data[:300].decode(errors="replace")
    return out


def summarize(tries: list[dict[str, Any]]) -> dict[str, Any]:
    ok = [t["total_s"] for t in tries if t["ok"]]
    return {"tries": len(tries), "ok": len(ok), "total_s": dist(ok)}


def modelport_cold(
    up: Up, model_dir: Path, count: int, gap: float, body: bytes, expected: list[int]
) -> dict[str, Any]:
    """`count` services with minReplicas 0, each started once and left to scale to zero,
    then one request to each in turn."""
    names = [f"cold-{i:02d}" for i in range(count)]
    t0 = time.monotonic()
    for name in names:
        up.apply(name, model_dir, {"minReplicas": 0, "maxReplicas": 1}, WINDOW)
    for name in names:  # each comes up once (the first revision's replica)

        def started(n: str = name) -> bool:
            return (up.replicas(n) or (False, 0))[1] >= 1

        if not wait_for(started, 240, 0.5):
            log(f"  {up.name}: {name} never had a replica (it may have scaled to zero first)")
    setup = {"services": count, "started_once_s": round(time.monotonic() - t0, 1)}
    for name in names:
        up.wait_replicas(name, 0, timeout=180)
    setup["all_zero_s"] = round(time.monotonic() - t0, 1)
    log(f"  {up.name}: {count} services at zero replicas after {setup['all_zero_s']} s")
    tries, watch = [], Watch()
    headers = {"Authorization": f"Bearer {up.token}"}
    for name in names:
        if up.replicas(name) != (True, 0):
            log(f"  {up.name}: {name} is not at zero replicas ({up.replicas(name)}); skipped")
            continue
        path = f"/serving/{NS}/{name}/v2/models/{name}/infer"
        t = {"service": name, **timed_post(up.port, path, body, headers, expected)}
        tries.append(t)
        log(f"  {up.name} cold {name}: {t['total_s'] * 1000:.0f} ms, HTTP {t['status']}")
        time.sleep(gap)
    return {
        "setup": setup, "tries": tries, "foreign_cores": watch.foreign_cores(),
        "summary": summarize(tries),
    }  # fmt: skip


def rayserve_cold(
    python: Path,
    cluster: Cluster,
    http_port: int,
    model_file: Path,
    count: int,
    downscale_delay: float,
    body: bytes,
    expected: list[int],
) -> dict[str, Any]:
    """One application autoscaled 0..1; `count` times: wait for zero replicas, one request."""
    extra = ["--route-prefix", rayserve.COLD_PREFIX, "--from-zero"]
    extra += ["--downscale-delay", str(downscale_delay)]
    deployed = rayserve.deploy(python, cluster, http_port, model_file, rayserve.COLD_APP, extra)
    path = f"{rayserve.COLD_PREFIX}/v2/models/sklearn-iris/infer"
    tries, waits, watch = [], [], Watch()
    for i in range(count):
        waited = rayserve.wait_replicas(cluster, rayserve.COLD_APP, 0, timeout=120)
        if waited is None:
            log("  ray serve: the cold application did not scale to zero in 120 s; stopping")
            break
        waits.append(waited)
        time.sleep(1.0)
        t = {"try": i, **timed_post(http_port, path, body, {}, expected)}
        tries.append(t)
        log(f"  ray serve cold {i}: {t['total_s'] * 1000:.0f} ms, HTTP {t['status']}")
    return {
        "deployed": deployed, "tries": tries, "waited_for_zero_s": waits,
        "foreign_cores": watch.foreign_cores(), "summary": summarize(tries),
    }  # fmt: skip
