"""Serving: modelport's model server against KServe's sklearnserver and MLServer, in the
configurations of `bench.lib.servers.VARIANTS`, one after the other in the same run.

    bash bench/setup_peers.sh                       # once: peer venvs, wrk, h2load, nginx
    python -m bench.serving                         # ~12 min; refuses a dirty tree
    python -m bench.serving --allow-dirty --duration 3 --starts 1 --only modelport,kserve

Per variant: spawn→ready (median of --starts), idle RSS/PSS of the process tree, then REST V2,
REST V1 and gRPC at c=1 and c=64, each checked once with a real client first. Writes
bench/results/serving.json and renders bench/RESULTS.md from it.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from bench import models
from bench.lib import checks, load, procs, render_serving, results, servers
from bench.lib.load import LEVELS
from bench.lib.procs import HOST, log
from bench.lib.servers import MODEL, Interpreters, Variant

GRPC_PATH = "/inference.GRPCInferenceService/ModelInfer"
PATHS = {"rest_v2": f"/v2/models/{MODEL}/infer", "rest_v1": f"/v1/models/{MODEL}:predict"}
BODIES = {"rest_v2": "v2.json", "rest_v1": "v1.json", "grpc": "grpc_iris.bin"}


@dataclass(frozen=True)
class Run:
    """What every variant of one run shares."""

    args: argparse.Namespace
    py: Interpreters
    work: Path

    def body(self, scenario: str) -> Path:
        return self.work / "bodies" / BODIES[scenario]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m bench.serving",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--duration", type=int, default=15, help="seconds per measurement")
    p.add_argument("--warmup", type=int, default=2, help="seconds of c=64 load before each")
    p.add_argument("--workers", type=int, default=2, help="worker processes per server")
    p.add_argument("--repeat", type=int, default=1, help="runs per measurement (median kept)")
    p.add_argument("--starts", type=int, default=3, help="starts per variant for start→ready")
    p.add_argument("--only", default=",".join(servers.VARIANT_KEYS), help="comma list")
    p.add_argument("--modelport-python", type=Path, default=Path(sys.executable))
    p.add_argument("--peer-venvs", type=Path, default=results.BENCH / ".venvs")
    p.add_argument("--work-dir", type=Path, default=results.BENCH / ".work" / "serving")
    p.add_argument(
        "--allow-dirty",
        action="store_true",
        help="run from a tree with uncommitted changes; results go to bench/.work/scratch/ "
        "and are marked unpublishable",
    )
    args = p.parse_args(argv)
    unknown = set(args.only.split(",")) - set(servers.VARIANT_KEYS)
    if unknown:
        p.error(f"--only: unknown {sorted(unknown)}; choose from {servers.VARIANT_KEYS}")
    return args


@dataclass(frozen=True)
class Started:
    """The last start of a variant, left running for the load."""

    proc: subprocess.Popen[bytes]
    http: int
    grpc: int
    command: list[str]
    ready_s: list[float]


def start_timed(run: Run, variant: Variant, model_dir: Path) -> Started:
    """Start the variant --starts times on fresh ports, timing spawn→ready each time (the
    previous start's tree killed and 1 s of quiet before the next); the last stays up."""
    times: list[float] = []
    for i in range(run.args.starts):
        http, grpc = procs.free_ports(2)
        cmd = servers.command(variant, run.py, model_dir, http, grpc, run.args.workers)
        env = servers.modelport_env() if variant.server == "modelport" else None
        name = variant.key if i == run.args.starts - 1 else f"{variant.key}-start{i + 1}"
        proc, ready = procs.start_ready(name, cmd, http, "/v2/health/ready", run.work, env)
        times.append(round(ready, 3))
        if i == run.args.starts - 1:
            return Started(proc, http, grpc, cmd, times)
        procs.kill_tree(proc)
        time.sleep(1.0)
    raise ValueError("--starts must be at least 1")


def check_all(
    run: Run, variant: Variant, http: int, grpc: int, expected: list[int]
) -> dict[str, Any]:
    """Per scenario: None when the server answers correctly, else why not; and the gRPC
    reply's length (to count short replies under load)."""
    body = {k: run.body(k).read_bytes() for k in PATHS}
    out: dict[str, Any] = {
        "rest_v2": checks.check_v2(http, PATHS["rest_v2"], body["rest_v2"], expected)
    }
    if variant.server != "mlserver":  # MLServer speaks no V1
        out["rest_v1"] = checks.check_v1(http, PATHS["rest_v1"], body["rest_v1"], expected)
    out["grpc"], out["grpc_reply_length"] = checks.check_grpc(
        run.py.grpc_client, grpc, MODEL, expected
    )
    return out


def measure(run: Run, scenario: str, http: int, grpc: int, reply_len: int | None) -> dict[str, Any]:
    """c=1 and c=64 for one scenario, after an unrecorded c=64 warm-up."""
    a, body = run.args, run.body(scenario)
    if scenario == "grpc":
        url, log_file = f"http://{HOST}:{grpc}{GRPC_PATH}", run.work / "logs" / "h2load.log"

        def once(level: load.Level, seconds: int) -> load.Result:
            return load.run_h2load(
                url, body, clients=level.h2_clients, streams=level.h2_streams,
                seconds=seconds, log_file=log_file, reply_length=reply_len,
            )  # fmt: skip
    else:
        url = f"http://{HOST}:{http}{PATHS[scenario]}"

        def once(level: load.Level, seconds: int) -> load.Result:
            return load.run_wrk(
                url, body, threads=level.wrk_threads, connections=level.wrk_connections,
                seconds=seconds,
            )  # fmt: skip

    if a.warmup:
        once(load.C64, a.warmup)
    out = {}
    for level in LEVELS:
        out[level.name] = load.median_run(partial(once, level, a.duration), a.repeat)
        log(f"  {scenario} {level.name}: {load.summary(out[level.name])}")
    return out


def bench_variant(run: Run, variant: Variant) -> dict[str, Any]:
    """Every figure of one variant; a failure is recorded and the run goes on."""
    res: dict[str, Any] = {"label": variant.label, "status": "error", "scenarios": {}}
    try:
        model_dir, expected = servers.prepare_model(variant, run.py, run.work)
        started = start_timed(run, variant, model_dir)
    except (RuntimeError, subprocess.SubprocessError) as e:
        log(f"{variant.label}: SKIPPED: {e}")
        res["reason"] = str(e)
        return res
    proc, http, grpc = started.proc, started.http, started.grpc
    try:
        res["command"] = started.command
        res["start_ready_runs_s"] = started.ready_s
        res["start_ready_s"] = round(statistics.median(started.ready_s), 3)
        res["checks"] = check_all(run, variant, http, grpc, expected)
        time.sleep(1.0)
        res["idle_memory"] = procs.tree_memory(proc.pid)
        for scenario in ("rest_v2", "rest_v1", "grpc"):
            why = res["checks"].get(scenario, "no V1 protocol")
            if why is not None:
                res["scenarios"][scenario] = {"status": "not measured", "detail": why}
                continue
            reply_len = res["checks"]["grpc_reply_length"]
            res["scenarios"][scenario] = measure(run, scenario, http, grpc, reply_len)
            if proc.poll() is not None:
                raise RuntimeError(f"server exited with code {proc.returncode} under load")
        res["memory_after_load"] = procs.tree_memory(proc.pid)
        res["status"] = "ok"
    except (RuntimeError, OSError, subprocess.SubprocessError) as e:
        log(f"{variant.label}: ERROR: {e}")
        res["reason"] = str(e)
    finally:
        procs.kill_tree(proc)
    return res


def configuration(args: argparse.Namespace, chosen: list[Variant]) -> dict[str, Any]:
    """Everything the figures depend on, recorded before the first measurement."""
    return {
        "duration_s": args.duration,
        "warmup_s": args.warmup,
        "repeat": args.repeat,
        "starts": args.starts,
        "workers": args.workers,
        "model": "iris LogisticRegression (scikit-learn), trained and pickled by each venv",
        "payload": {
            "rows_per_request": len(models.IRIS_ROWS),
            "rest_v2_body": models.V2_BODY,
            "rest_v1_body": models.V1_BODY,
            "grpc": "ModelInferRequest, 2×4 FP32 in fp32_contents, framed",
        },
        "levels": {lv.name: lv.__dict__ for lv in LEVELS},
        "variants": {
            v.key: {
                "server": v.server,
                "label": v.label,
                "max_batch_size": v.max_batch_size,
                "batch_wait_ms": v.batch_wait_ms,
                "batching": v.batching,
                "access_log": v.access_log,
                "workers": args.workers,
            }
            for v in chosen
        },
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        dest = results.destination("serving", "RESULTS.md", allow_dirty=args.allow_dirty)
    except results.DirtyTree as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    procs.stop_on_signals()
    chosen = [v for v in servers.VARIANTS if v.key in args.only.split(",")]
    py = Interpreters(args.modelport_python.absolute(), args.peer_venvs.resolve())
    run = Run(args, py, args.work_dir.resolve())
    res = results.begin("serving", dest, configuration(args, chosen))
    res["versions"] = servers.versions(py)
    models.build_json_bodies(run.work)
    servers.build(py.grpc_client, "grpc-body", run.body("grpc"))
    res["variants"] = {}
    try:
        for variant in chosen:
            log(f"=== {variant.label}")
            res["variants"][variant.key] = bench_variant(run, variant)
    finally:
        procs.kill_all()
    results.finish(res, dest)
    dest.markdown_path.write_text(render_serving.render(res, dest.json_path))
    log(f"wrote {dest.json_path} and {dest.markdown_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
