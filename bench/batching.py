"""Batching and binary tensors: modelport alone, the same model with and without adaptive
batching, one row per request at c=64; and the binary tensor extension's round trip.

    python -m bench.batching                        # ~4 min; refuses a dirty tree
    python -m bench.batching --allow-dirty --duration 3 --only torch

Models (built by bench/models.py with the modelport interpreter): a deep narrow TorchScript
MLP whose call costs about the same for 1 row as for 32 (the case batching is for), a small
ONNX MLP whose call is cheap next to the HTTP request, and an identity model for a 4 MiB FP32
binary round trip. Writes bench/results/batching.json and renders bench/BATCHING.md.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from bench import models
from bench.lib import load, metrics, procs, render_batching, results
from bench.lib.procs import HOST, log
from bench.lib.servers import build, modelport_env, modelport_source

OFF = ("--max-batch-size", "1")
JSON = {"Content-Type": "application/json"}


@dataclass(frozen=True)
class Case:
    """One model served in several batching configurations."""

    title: str
    build: str
    file: str
    format: str
    variants: dict[str, tuple[str, ...]]


CASES = {
    "torch": Case(
        "TorchScript MLP 4→32, 150 × (Linear(32,32) + ReLU), →3",
        "torchscript",
        "model.pt",
        "pytorch",
        {
            "batched_2ms": ("--max-batch-size", "32", "--max-latency-ms", "2"),
            "batched_0ms": ("--max-batch-size", "32", "--max-latency-ms", "0"),
            "unbatched": OFF,
        },
    ),
    "onnx": Case(
        "ONNX MLP 4→64→64→3",
        "onnx",
        "model.onnx",
        "onnx",
        {"batched": ("--max-batch-size", "32", "--max-latency-ms", "5"), "unbatched": OFF},
    ),
}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m bench.batching",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--duration", type=int, default=15, help="seconds per measurement")
    p.add_argument("--warmup", type=int, default=2, help="seconds of load before each")
    p.add_argument("--workers", type=int, default=2, help="modelport worker processes")
    p.add_argument("--repeat", type=int, default=1, help="runs per measurement (median kept)")
    p.add_argument("--only", default="torch,onnx,binary", help="comma list of torch,onnx,binary")
    p.add_argument("--modelport-python", type=Path, default=Path(sys.executable))
    p.add_argument("--work-dir", type=Path, default=results.BENCH / ".work" / "batching")
    p.add_argument("--allow-dirty", action="store_true", help="see bench/README.md")
    return p.parse_args(argv)


def serve(
    args: argparse.Namespace, name: str, path: Path, extra: tuple[str, ...], work: Path
) -> tuple[Any, int, list[str]]:
    http, grpc = procs.free_ports(2)
    cmd = [str(args.modelport_python.absolute()), "-m", "modelport", "serve", str(path)]
    cmd += ["--name", name, "--http-port", str(http), "--grpc-port", str(grpc)]
    cmd += ["--workers", str(args.workers), *extra]
    proc, _ = procs.start_ready(name, cmd, http, "/v2/health/ready", work, modelport_env())
    return proc, http, cmd


def in_process(python: Path, model_file: Path) -> dict[str, Any]:
    """One model call at 1 and 32 rows, timed in-process with one library thread."""
    cmd = [str(python), str(results.BENCH / "models.py"), "time-model", str(model_file)]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=modelport_env())
    if out.returncode != 0:
        return {"status": "error", "detail": out.stderr[-500:]}
    return {"status": "ok", **json.loads(out.stdout.strip().splitlines()[-1])}


def check_mlp(port: int, body: bytes, expected: list[float]) -> str | None:
    """None when the served MLP's output matches the eager model's within 1e-3."""
    status, _, data = procs.http_req(port, "POST", "/v2/models/mlp/infer", body, JSON)
    if status != 200:
        return f"HTTP {status}: {data[:200]!r}"
    got = json.loads(data)["outputs"][0]["data"]
    close = len(got) == len(expected) and all(
        abs(float(a) - b) <= 1e-3 * max(1.0, abs(b)) for a, b in zip(got, expected, strict=True)
    )
    return None if close else f"output {got}, expected {expected}"


def run_variant(
    args: argparse.Namespace,
    work: Path,
    model_dir: Path,
    case: Case,
    flags: tuple[str, ...],
    expected: list[float],
) -> dict[str, Any]:
    """One batching configuration at c=64, with server CPU and mean batch from /metrics."""
    body_file = work / "bodies" / "mlp.json"
    v: dict[str, Any] = {"flags": " ".join(flags), "batched": flags != OFF}
    extra = ("--format", case.format, *flags)
    proc, http, v["command"] = serve(args, "mlp", model_dir, extra, work)
    try:
        v["check"] = check_mlp(http, body_file.read_bytes(), expected)
        if v["check"]:
            return v
        url = f"http://{HOST}:{http}/v2/models/mlp/infer"
        once = partial(load.run_wrk, url, body_file, threads=2, connections=64)
        if args.warmup:
            once(seconds=args.warmup)
        before = metrics.read(http, proc.pid, "mlp")
        v["c64"] = load.median_run(partial(once, seconds=args.duration), args.repeat)
        v.update(metrics.per_request(before, metrics.read(http, proc.pid, "mlp")))
        log(f"  {v['flags']}: {load.summary(v['c64'])}, mean batch {v.get('mean_batch_size')}")
    finally:
        procs.kill_tree(proc)
    return v


def run_case(args: argparse.Namespace, work: Path, key: str) -> dict[str, Any]:
    case = CASES[key]
    model_dir = work / "models" / key
    build(args.modelport_python.absolute(), case.build, model_dir)
    info = json.loads(models.expected_path(model_dir).read_text())
    expected = info.pop("output")
    res: dict[str, Any] = {"title": case.title, "model": info, "variants": {}}
    res["in_process"] = in_process(args.modelport_python.absolute(), model_dir / case.file)
    for name, flags in case.variants.items():
        res["variants"][name] = run_variant(args, work, model_dir, case, flags, expected)
    return res


def check_binary(port: int, body: bytes, header_length: int) -> str | None:
    """None when the identity model sends back the request's tensor bytes unchanged."""
    headers = {
        "Content-Type": "application/octet-stream",
        "Inference-Header-Content-Length": str(header_length),
    }
    path = "/v2/models/identity/infer"
    status, got, data = procs.http_req(port, "POST", path, body, headers, timeout=30)
    answer_header = got.get("inference-header-content-length")
    if status != 200 or answer_header is None:
        return f"HTTP {status}, Inference-Header-Content-Length {answer_header}"
    same = data[int(answer_header) :] == body[header_length:]
    return None if same else "the tensor bytes that came back differ from those sent"


def run_binary(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    """4 MiB FP32 through the identity model with the binary extension, wrk c=4."""
    body_file = work / "bodies" / "binary.bin"
    meta = models.build_binary_body(body_file)
    model_file = results.BENCH / "models" / "identity_model.py"
    proc, http, cmd = serve(args, "identity", model_file, ("--format", "custom"), work)
    res: dict[str, Any] = {"command": cmd, "body_bytes": meta["body_length"]}
    try:
        res["check"] = check_binary(http, body_file.read_bytes(), meta["json_header_length"])
        if res["check"]:
            return res
        url = f"http://{HOST}:{http}/v2/models/identity/infer"
        header = [f"Inference-Header-Content-Length: {meta['json_header_length']}"]
        once = partial(
            load.run_wrk, url, body_file, threads=2, connections=4, headers=header,
            content_type="application/octet-stream",
        )  # fmt: skip
        if args.warmup:
            once(seconds=args.warmup)
        r = load.median_run(partial(once, seconds=args.duration), args.repeat)
        if r.get("status") == "ok" and r["seconds"]:
            # each request sends the body and gets the same tensor back
            r["round_trip_gb_per_s"] = round(
                2 * r["requests"] * meta["body_length"] / r["seconds"] / 1e9, 3
            )
        res["c4"] = r
        log(f"  binary c4: {load.summary(r)}, {r.get('round_trip_gb_per_s')} GB/s")
    finally:
        procs.kill_tree(proc)
    return res


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        dest = results.destination("batching", "BATCHING.md", allow_dirty=args.allow_dirty)
    except results.DirtyTree as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    procs.stop_on_signals()
    work = args.work_dir.resolve()
    only = args.only.split(",")
    config = {
        "duration_s": args.duration, "warmup_s": args.warmup, "repeat": args.repeat,
        "workers": args.workers, "access_log": False, "only": only,
        "variants": {k: {n: " ".join(f) for n, f in c.variants.items()} for k, c in CASES.items()},
        "payload": {"mlp": models.mlp_body(), "binary": "4 MiB FP32 [1, 1048576], binary"},
    }  # fmt: skip
    res = results.begin("batching", dest, config)
    res["versions"] = {"modelport_source": modelport_source(args.modelport_python.absolute())}
    models.build_json_bodies(work)
    res["cases"] = {}
    try:
        for key in (k for k in CASES if k in only):
            log(f"=== {CASES[key].title}")
            res["cases"][key] = run_case(args, work, key)
        if "binary" in only:
            res["binary"] = run_binary(args, work)
    except (RuntimeError, OSError, subprocess.SubprocessError) as e:
        log(f"ERROR: {e}")
        res["error"] = str(e)
    finally:
        procs.kill_all()
    results.finish(res, dest)
    dest.markdown_path.write_text(render_batching.render(res, dest.json_path))
    log(f"wrote {dest.json_path} and {dest.markdown_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
