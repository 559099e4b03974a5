"""InferenceGraph: what the router adds per step, against the same service called directly.

    python -m bench.graph                      # ~3 min; refuses a dirty tree
    python -m bench.graph --allow-dirty --duration 3 --repeat 1
    python -m bench.graph --render bench/results/graph.json

`modelport up` with one iris InferenceService (one replica, never more) and InferenceGraphs
`seq-K`: a Sequence of K steps, each posting the graph's request (`data: $request`) to that
service, so every step does the same model work. Beside it a `modelport serve` of the same
model with a replica's arguments. wrk posts the same V1 predict at c=1 to: the model server
directly, the service through the gateway, and each graph through the gateway (Bearer token),
in interleaved rounds; each target keeps its median-p50 round. Goal (issue 14): router
overhead ≤ 1 ms p50 per step at c=1. Writes bench/results/graph.json, renders bench/GRAPH.md.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from bench import models
from bench.control.platform import Platform, stop_everything
from bench.lib import interleaved, load, procs, render_graph, results, servers
from bench.lib.checks import same_predictions
from bench.lib.procs import HOST, log

NS = "bench"
SERVICE = "iris"
GOAL_MS_PER_STEP = 1.0
PREDICT = f"/v1/models/{SERVICE}:predict"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m bench.graph",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--duration", type=int, default=10, help="seconds per measurement")
    p.add_argument("--warmup", type=int, default=2, help="seconds of unrecorded load first")
    p.add_argument("--repeat", type=int, default=3, help="interleaved rounds (median kept)")
    p.add_argument("--steps", type=int, nargs="+", default=[1, 2, 4], help="graph lengths")
    p.add_argument("--modelport-python", type=Path, default=Path(sys.executable))
    p.add_argument("--work-dir", type=Path, default=results.BENCH / ".work" / "graph")
    p.add_argument("--render", type=Path, metavar="JSON", help="only re-render this file")
    p.add_argument(
        "--allow-dirty",
        action="store_true",
        help="run from a tree with uncommitted changes; results go to bench/.work/scratch/ "
        "and are marked unpublishable",
    )
    return p.parse_args(argv)


def isvc_doc(model_dir: Path) -> str:
    return (
        "apiVersion: serving.kserve.io/v1beta1\n"
        "kind: InferenceService\n"
        f"metadata:\n  name: {SERVICE}\n  namespace: {NS}\n"
        "spec:\n  predictor:\n    minReplicas: 1\n    maxReplicas: 1\n"
        "    model:\n      modelFormat:\n        name: sklearn\n"
        f"      storageUri: {model_dir}\n"
    )


def graph_doc(steps: int) -> str:
    body = "".join(
        f"      - name: step{i}\n        serviceName: {SERVICE}\n        data: $request\n"
        for i in range(1, steps + 1)
    )
    return (
        "apiVersion: serving.kserve.io/v1alpha1\n"
        "kind: InferenceGraph\n"
        f"metadata:\n  name: seq-{steps}\n  namespace: {NS}\n"
        "spec:\n  nodes:\n    root:\n      routerType: Sequence\n      steps:\n" + body
    )


def targets(pf: Platform, serve_port: int, steps: list[int]) -> dict[str, dict[str, Any]]:
    """key -> port, path, whether the Bearer token goes with it, label."""
    out: dict[str, dict[str, Any]] = {
        "direct": {"port": serve_port, "path": PREDICT, "bearer": False,
                   "label": "model server direct (`modelport serve`)"},
        "service": {"port": pf.port, "path": f"/serving/{NS}/{SERVICE}{PREDICT}",
                    "bearer": True, "label": "service through the gateway"},
    }  # fmt: skip
    for k in steps:
        out[f"seq-{k}"] = {
            "port": pf.port,
            "path": f"/serving/{NS}/seq-{k}",
            "bearer": True,
            "label": f"graph, Sequence of {k} step{'s' if k > 1 else ''}",
            "steps": k,
        }
    return out


def check(
    found: dict[str, dict[str, Any]], token: str, body: bytes, expected: list[int]
) -> dict[str, Any]:
    """Each target answers the iris classes (a graph answers its last step's response), and
    the gateway refuses a graph call without credentials."""
    out: dict[str, Any] = {}
    for key, t in found.items():
        headers = {"Content-Type": "application/json"}
        if t["bearer"]:
            headers["Authorization"] = f"Bearer {token}"
        status, _, data = procs.http_req(t["port"], "POST", t["path"], body, headers)
        preds = json.loads(data).get("predictions") if status == 200 else None
        ok = preds is not None and same_predictions(preds, expected)
        out[key] = None if ok else f"HTTP {status}: {data[:200]!r}"
    graph = next(k for k in found if k.startswith("seq-"))
    bare = {"Accept": "application/json", "Content-Type": "application/json"}
    status, _, _ = procs.http_req(found[graph]["port"], "POST", found[graph]["path"], body, bare)
    out["no_credentials_refused"] = None if status == 401 else f"HTTP {status}, expected 401"
    return out


def per_step(measured: dict[str, Any], steps: list[int]) -> dict[str, Any]:
    """The derived figures of each graph, from the p50s of this run only."""
    direct = measured["direct"].get("p50_ms")
    service = measured["service"].get("p50_ms")
    out: dict[str, Any] = {}
    for k in steps:
        g = measured[f"seq-{k}"].get("p50_ms")
        if g is None or direct is None or service is None:
            out[f"seq-{k}"] = {}
            continue
        router = (g - service - (k - 1) * direct) / k
        out[f"seq-{k}"] = {
            "steps": k,
            "minus_service_per_step_ms": round((g - service) / k, 3),
            "minus_direct_per_step_ms": round((g - direct) / k, 3),
            "router_per_step_ms": round(router, 3),
            "goal_met": router <= GOAL_MS_PER_STEP,
        }
    return out


def configuration(
    args: argparse.Namespace, found: dict[str, Any], serve_cmd: list[str], pf: Platform
) -> dict[str, Any]:
    return {
        "duration_s": args.duration,
        "warmup_s": args.warmup,
        "rounds": args.repeat,
        "steps": args.steps,
        "goal_ms_per_step": GOAL_MS_PER_STEP,
        "payload": {"v1_body": models.V1_BODY, "rows_per_request": len(models.IRIS_ROWS)},
        "level": load.C1.__dict__,
        "platform": {"command": pf.cmd, "namespace": NS},
        "service_doc": isvc_doc(Path("<model dir>")),
        "graph_docs": {f"seq-{k}": graph_doc(k) for k in args.steps},
        "direct_command": serve_cmd,
        "targets": found,
    }


def measure_all(
    args: argparse.Namespace, found: dict[str, Any], token: str, body_file: Path
) -> dict[str, Any]:
    def one(key: str, seconds: int | None = None) -> load.Result:
        t = found[key]
        headers = (f"Authorization: Bearer {token}",) if t["bearer"] else ()
        return load.run_wrk(
            f"http://{HOST}:{t['port']}{t['path']}", body_file, threads=1, connections=1,
            seconds=seconds or args.duration, headers=headers,
        )  # fmt: skip

    if args.warmup:
        for key in found:
            one(key, args.warmup)
    return interleaved.rounds(list(found), one, args.repeat, by="p50_ms")


def render(json_path: Path) -> int:
    """GRAPH.md again from a results file: bench/GRAPH.md for a published one, else beside
    the file."""
    res = results.load(json_path)
    published = json_path.resolve().parent == results.RESULTS_DIR
    target = (results.BENCH if published else json_path.parent) / "GRAPH.md"
    target.write_text(render_graph.render(res, json_path))
    log(f"wrote {target}")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.render:
        return render(args.render)
    try:
        dest = results.destination("graph", "GRAPH.md", allow_dirty=args.allow_dirty)
    except results.DirtyTree as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    procs.stop_on_signals()
    work = args.work_dir.resolve()
    models.build_json_bodies(work)
    body_file = work / "bodies" / "v1.json"
    res = results.begin("graph", dest, {})
    py = str(args.modelport_python.absolute())
    try:
        model_dir = work / "models" / SERVICE
        servers.build(args.modelport_python.absolute(), "iris", model_dir)
        env = servers.modelport_env()
        _, serve_port, serve_cmd = interleaved.start_serve(py, model_dir, SERVICE, work, env)
        pf = Platform(py, work, "platform", grace=600)
        interleaved.apply(pf, work, SERVICE, isvc_doc(model_dir))
        interleaved.wait_ready(pf, NS, "inferenceservices", SERVICE)
        for k in args.steps:
            interleaved.apply(pf, work, f"seq-{k}", graph_doc(k))
            interleaved.wait_ready(pf, NS, "inferencegraphs", f"seq-{k}")
        found = targets(pf, serve_port, args.steps)
        res["config"] = configuration(args, found, serve_cmd, pf)
        res["versions"] = {"modelport_source": servers.modelport_source(args.modelport_python)}
        expected = results.load(models.expected_path(model_dir))["predictions"]
        res["checks"] = check(found, pf.token, body_file.read_bytes(), expected)
        failed = {k: v for k, v in res["checks"].items() if v}
        if failed:
            raise RuntimeError(f"checks failed: {failed}")
        res["targets"] = measure_all(args, found, pf.token, body_file)
        res["per_step"] = per_step(res["targets"], args.steps)
    except (RuntimeError, OSError, subprocess.SubprocessError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    finally:
        stop_everything()
    results.finish(res, dest)
    dest.markdown_path.write_text(render_graph.render(res, dest.json_path))
    log(f"wrote {dest.json_path} and {dest.markdown_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
