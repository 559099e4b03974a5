"""The two phases of the Ray benchmark, over what one run holds: the cluster, both
platforms, the model. `configuration` is what the JSON records next to the figures."""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import models
from bench.lib import load, procs
from bench.lib.procs import log
from bench.lib.servers import MODEL
from bench.ray import cold as cold_starts
from bench.ray import rayserve
from bench.ray.cluster import Cluster, alive_nodes
from bench.ray.platforms import NS, Up
from bench.ray.throughput import Target, check, rounds

GATEWAY_PATH = f"/serving/{NS}/{MODEL}/v2/models/{MODEL}/infer"
SERVE_PATH = f"/v2/models/{MODEL}/infer"
LABELS = {
    "ray": "modelport gateway → Ray-placed replicas (--backend ray)",
    "process": "modelport gateway → local processes (--backend process)",
    "rayserve": "Ray Serve proxy → Ray Serve replicas (defaults)",
    "rayserve-tuned": "Ray Serve proxy → Ray Serve replicas, max_ongoing_requests {m}",
}
PEERS = ("rayserve", "rayserve-tuned")


@dataclass
class Run:
    args: argparse.Namespace
    work: Path
    py: Path
    rs_py: Path
    cluster: Cluster
    ray_up: Up
    process_up: Up
    model_dir: Path
    expected: list[int]
    serve_port: int = field(default_factory=lambda: procs.free_ports(1)[0])

    @property
    def body_file(self) -> Path:
        return self.work / "bodies" / "v2.json"


def targets(run: Run) -> list[Target]:
    return [
        Target("ray", LABELS["ray"], run.ray_up.port, GATEWAY_PATH, (run.ray_up.bearer,)),
        Target("process", LABELS["process"], run.process_up.port, GATEWAY_PATH,
               (run.process_up.bearer,)),
        Target("rayserve", LABELS["rayserve"], run.serve_port, SERVE_PATH, ()),
        Target("rayserve-tuned", LABELS["rayserve-tuned"].format(m=run.args.serve_max_ongoing),
               run.serve_port, rayserve.TUNED_PREFIX + SERVE_PATH, ()),
    ]  # fmt: skip


def modelport_placement(run: Run) -> list[dict[str, Any]]:
    """Where Ray placed modelport's replica actors (Ray's state API)."""
    data = run.cluster.dashboard_json("/api/v0/actors?limit=1000&detail=true")
    rows = data.get("data", {}).get("result", {}).get("result", [])
    return [
        {"name": a.get("name"), "node_id": str(a.get("node_id", ""))[:12], "pid": a.get("pid")}
        for a in rows
        if str(a.get("name", "")).startswith(f"{NS}/{MODEL}/") and a.get("state") == "ALIVE"
    ]


def deploy_all(run: Run, n: int) -> dict[str, Any]:
    """`n` replicas of the iris model on each target, ready."""
    t0 = time.monotonic()
    for up in (run.ray_up, run.process_up):
        up.apply(MODEL, run.model_dir, {"minReplicas": n, "maxReplicas": n})
    model_file = run.model_dir / "model.joblib"
    deployed = {}
    for app, extra in (
        (rayserve.LOAD_APP, []),
        (rayserve.TUNED_APP, ["--route-prefix", rayserve.TUNED_PREFIX,
                              "--max-ongoing-requests", str(run.args.serve_max_ongoing)]),
    ):  # fmt: skip
        deployed[app] = rayserve.deploy(
            run.rs_py, run.cluster, run.serve_port, model_file, app, ["--replicas", str(n), *extra]
        )
    for up in (run.ray_up, run.process_up):
        up.wait_replicas(MODEL, n, timeout=240)
    for app in deployed:
        if rayserve.wait_replicas(run.cluster, app, n, 120) is None:
            raise RuntimeError(f"Ray Serve's {app} did not get {n} running replica(s) in 120 s")
    log(f"replicas={n}: every target ready after {time.monotonic() - t0:.1f} s")
    return {
        "rayserve": deployed,
        "placement": {
            "ray": modelport_placement(run),
            **{app: rayserve.placement(run.cluster, app) for app in deployed},
        },
    }


def throughput(run: Run) -> dict[str, Any]:
    """Per replica count: deploy, check each target once, then the interleaved rounds."""
    out: dict[str, Any] = {}
    body = run.body_file.read_bytes()
    for n in run.args.replicas:
        log(f"replicas={n}")
        entry: dict[str, Any] = {"replicas": n, "loadavg_before": procs.loadavg()}
        entry.update(deploy_all(run, n))
        found = targets(run)
        entry["checks"] = check(found, body, run.expected)
        failed = {k: v for k, v in entry["checks"].items() if v}
        if failed:
            raise RuntimeError(f"checks failed with {n} replica(s): {failed}")
        a = run.args
        entry["targets"] = rounds(found, run.body_file, a.duration, a.warmup, a.repeat)
        out[f"r{n}"] = entry
    return out


def cold(run: Run) -> dict[str, Any]:
    """Cold starts on both platforms and on Ray Serve, once the load services are gone."""
    for up in (run.ray_up, run.process_up):
        up.delete(MODEL)
    for app in (rayserve.LOAD_APP, rayserve.TUNED_APP):
        rayserve.delete(run.rs_py, run.cluster, run.serve_port, app)
    a, body = run.args, run.body_file.read_bytes()
    out: dict[str, Any] = {}
    for key, up in (("ray", run.ray_up), ("process", run.process_up)):
        log(f"cold starts: {up.name}")
        loadavg = procs.loadavg()
        out[key] = cold_starts.modelport_cold(
            up, run.model_dir, a.cold_tries, a.cold_gap, body, run.expected
        )
        out[key]["loadavg_before"] = loadavg
    log("cold starts: Ray Serve")
    loadavg = procs.loadavg()
    out["rayserve"] = cold_starts.rayserve_cold(
        run.rs_py, run.cluster, run.serve_port, run.model_dir / "model.joblib",
        a.cold_tries, a.serve_downscale_delay, body, run.expected,
    )  # fmt: skip
    out["rayserve"]["loadavg_before"] = loadavg
    return out


def configuration(run: Run) -> dict[str, Any]:
    """Everything a figure depends on, recorded beside it."""
    a, c = run.args, run.cluster
    nodes = alive_nodes(c)
    return {
        "duration_s": a.duration,
        "warmup_s": a.warmup,
        "rounds": a.repeat,
        "replica_counts": a.replicas,
        "levels": {lv.name: lv.__dict__ for lv in load.LEVELS},
        "payload": {"rest_v2_body": models.V2_BODY, "rows_per_request": len(models.IRIS_ROWS)},
        "targets": {t.key: t.describe() for t in targets(run)},
        "cluster": {
            "nodes": len(nodes),
            "started_with": str(c.ray_bin),
            "logical_cpus_per_node": c.cpus_per_node,
            "labels": sorted(str(n.get("labels", {}).get("zone")) for n in nodes),
            "start_s": c.started_s,
            "replica_address": "127.0.0.1 (MODELPORT_RAY_NODE_ADDRESS)",
            "physical_cpus_note": "both nodes, both platforms, Ray Serve and wrk share the "
            "machine's CPUs",
        },
        "modelport": {
            "commands": {"ray": run.ray_up.command, "process": run.process_up.command},
            "replica": "1 model server process per replica, 1 worker; requests.cpu unset, so "
            "the ray backend asks Ray for num_cpus 1 per replica; the process backend sets no "
            "CPU limit",
            "batching": "max 32, wait ≤ 0 ms (the server's default for scikit-learn)",
            "access_log": "off (gateway and replicas, log level info)",
            "authentication": "Bearer token of the platform's admin (`modelport token`)",
            "scale_to_zero_grace_s": a.grace,
            "cold_services": {"minReplicas": 0, "maxReplicas": 1, **cold_starts.WINDOW},
        },
        "rayserve": {
            "deployment": "bench/peers/rayserve_iris.py: async __call__ on a Starlette "
            "request, one predict per request",
            "replica_num_cpus": 1,
            "batching": "off (@serve.batch not used)",
            "access_log": "on (Ray Serve's default: one line per request in the replica log)",
            "proxy": f"HeadOnly, 127.0.0.1:{run.serve_port}",
            "max_ongoing_requests": f"Ray Serve's default (DEFAULT_MAX_ONGOING_REQUESTS = 5, "
            "ray/serve/_private/constants.py) for the "
            f"defaults row; {a.serve_max_ongoing} for the tuned row",
            "authentication": "none (Ray Serve has none)",
            "cold": {"min_replicas": 0, "initial_replicas": 0, "max_replicas": 1,
                     "downscale_delay_s": a.serve_downscale_delay},
        },
        "cold_tries": a.cold_tries,
        "cold_gap_s": a.cold_gap,
    }  # fmt: skip
