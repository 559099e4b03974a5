"""Ray: modelport's Ray backend against its process backend and against Ray Serve, on one
two-node Ray cluster started on this machine, in one run.

    python -m bench.ray                     # ~9 min; refuses a dirty tree
    python -m bench.ray --allow-dirty --duration 3 --repeat 1 --cold-tries 3
    python -m bench.ray --render bench/results/ray.json

The cluster is started with bench/.venvs/rayserve's `ray` (bash bench/setup_peers.sh), whose
workers import this checkout's modelport. Two `modelport up` run beside it: one with
`--backend ray` on the cluster, one with the process backend. For each replica count
(--replicas, default 1 and 2) the same iris InferenceService is applied to both, Ray Serve
deploys the same model with as many replicas, and wrk posts the same V2 infer through each
at c=1 and c=64 in interleaved rounds. Then cold starts from zero: services with
minReplicas 0 on both platforms, and a Ray Serve application autoscaled from 0.
Writes bench/results/ray.json and renders bench/RAY.md from it.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from bench import models
from bench.lib import procs, render_ray, results
from bench.lib.procs import log
from bench.lib.servers import build, dist_version, modelport_env, modelport_source
from bench.ray import cluster as ray_cluster
from bench.ray import phases
from bench.ray.platforms import Up

RAY_VERSION = "2.60.0"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m bench.ray",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--duration", type=int, default=5, help="seconds per wrk measurement")
    p.add_argument("--warmup", type=int, default=2, help="seconds of c=64 load before each")
    p.add_argument("--repeat", type=int, default=3, help="interleaved rounds (median kept)")
    p.add_argument("--replicas", type=int, nargs="+", default=[1, 2], help="replica counts")
    p.add_argument("--cold-tries", type=int, default=5, help="cold starts per target")
    p.add_argument("--cold-gap", type=float, default=1.0, help="seconds between cold starts")
    p.add_argument("--grace", type=float, default=1.0, help="--scale-to-zero-grace seconds")
    p.add_argument(
        "--serve-downscale-delay", type=float, default=2.0,
        help="Ray Serve's downscale_delay_s (and _to_zero_) for its cold starts",
    )  # fmt: skip
    p.add_argument(
        "--serve-max-ongoing", type=int, default=64,
        help="max_ongoing_requests of the tuned Ray Serve row (its default row keeps Ray's)",
    )  # fmt: skip
    p.add_argument("--cpus-per-node", type=int, default=4, help="Ray's logical CPUs per node")
    p.add_argument("--modelport-python", type=Path, default=Path(sys.executable))
    p.add_argument("--rayserve-venv", type=Path, default=results.BENCH / ".venvs" / "rayserve")
    p.add_argument("--work-dir", type=Path, default=results.BENCH / ".work" / "ray")
    p.add_argument("--render", type=Path, metavar="JSON", help="only re-render this file")
    p.add_argument(
        "--allow-dirty",
        action="store_true",
        help="run from a tree with uncommitted changes; results go to bench/.work/scratch/ "
        "and are marked unpublishable",
    )
    args = p.parse_args(argv)
    bounds = (
        (1 <= args.duration <= 120, "--duration 1..120"),
        (0 <= args.warmup <= 30, "--warmup 0..30"),
        (1 <= args.repeat <= 5, "--repeat 1..5"),
        (all(1 <= n <= 4 for n in args.replicas), "--replicas 1..4"),
        (1 <= args.cold_tries <= 10, "--cold-tries 1..10"),
        (0 <= args.grace <= 30, "--grace 0..30"),
        (1 <= args.serve_max_ongoing <= 1024, "--serve-max-ongoing 1..1024"),
        (2 * args.cpus_per_node >= 3 * max(args.replicas),
         "--cpus-per-node too small for the replicas of the three targets on Ray"),
        (2 * args.cpus_per_node >= args.cold_tries + 1,
         "--cpus-per-node too small for the cold services"),
    )  # fmt: skip
    for ok, what in bounds:
        if not ok:
            p.error(what)
    return args


def preflight(args: argparse.Namespace) -> list[str]:
    """What is missing to run at all (each a sentence)."""
    missing = []
    if not shutil.which("wrk"):
        missing.append("wrk is not installed (bash bench/setup_peers.sh)")
    rs_py = args.rayserve_venv / "bin" / "python"
    if not rs_py.exists():
        missing.append(f"no Ray Serve venv at {args.rayserve_venv} (bash bench/setup_peers.sh)")
    else:
        for py in (rs_py, args.modelport_python):
            found = dist_version(py, "ray")
            if found != RAY_VERSION:
                missing.append(f"{py} has ray {found}, not {RAY_VERSION}")
    return missing


def render(json_path: Path, out: Path | None) -> int:
    res = results.load(json_path)
    default = results.BENCH if res["published"] else json_path.parent
    target = out or default / "RAY.md"
    target.write_text(render_ray.render(res, json_path))
    print(f"wrote {target}")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.render:
        return render(args.render, None)
    try:
        dest = results.destination("ray", "RAY.md", allow_dirty=args.allow_dirty)
    except results.DirtyTree as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    missing = preflight(args)
    if missing:
        print("error: " + "; ".join(missing), file=sys.stderr)
        return 2
    procs.stop_on_signals()
    work = args.work_dir.resolve()
    shutil.rmtree(work / "logs", ignore_errors=True)
    models.build_json_bodies(work)
    res = results.begin("ray", dest, {})
    py = args.modelport_python.absolute()
    rs_py = (args.rayserve_venv / "bin" / "python").absolute()
    cluster: ray_cluster.Cluster | None = None
    ups: list[Up] = []
    try:
        model_dir = work / "models" / "iris"
        build(py, "iris", model_dir)
        expected = results.load(models.expected_path(model_dir))["predictions"]
        cluster = ray_cluster.start(rs_py.parent / "ray", work, args.cpus_per_node)
        extra = ["--scale-to-zero-grace", str(args.grace)]
        ups.append(Up(py, work, "platform-ray", ["--backend", "ray", "--ray-address",
                                                 cluster.address, *extra]))  # fmt: skip
        ups.append(Up(py, work, "platform-process", extra))
        run = phases.Run(args, work, py, rs_py, cluster, ups[0], ups[1], model_dir, expected)
        res["config"] = phases.configuration(run)
        res["versions"] = versions(py, rs_py)
        res["throughput"] = phases.throughput(run)
        res["cold"] = phases.cold(run)
    except (RuntimeError, OSError, subprocess.SubprocessError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    finally:
        for up in ups:
            up.stop()
        if cluster is not None:
            cluster.stop()
        procs.kill_all()
    results.finish(res, dest)
    dest.markdown_path.write_text(render_ray.render(res, dest.json_path))
    log(f"wrote {dest.json_path} and {dest.markdown_path}")
    return 0


def versions(py: Path, rs_py: Path) -> dict[str, Any]:
    """What ran: modelport's source as each interpreter imports it, Ray's and scikit-learn's."""
    env = modelport_env()
    out: dict[str, Any] = {"modelport_source": modelport_source(py)}
    for who, python in (("driver", py), ("cluster", rs_py)):
        out[who] = {
            "python": str(python),
            "ray": dist_version(python, "ray", env),
            "scikit-learn": dist_version(python, "scikit-learn", env),
        }
    out["cluster"]["modelport_source"] = modelport_source(rs_py)
    return out


if __name__ == "__main__":
    sys.exit(main())
