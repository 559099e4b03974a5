"""Streaming chat: tokens per second through the gateway against the model server direct.

    python -m bench.streaming                  # ~2 min; refuses a dirty tree
    python -m bench.streaming --allow-dirty --duration 3 --repeat 1
    python -m bench.streaming --render bench/results/streaming.json

`bench/models/stream_chat.py` (an OpenAIGenerativeModel that streams `--tokens` fixed
chunks as fast as they are taken) served by `modelport serve` (one worker, as a replica), and
deployed as an InferenceService on `modelport up`. wrk posts the same `chat/completions` with
`"stream": true` to both, at each `--concurrency` level (streams at once), in interleaved
rounds; each target and level keeps its median round. Tokens/s = streams/s × chunks per stream
(every stream is first checked to carry exactly that many chunks and `data: [DONE]`). Goal
(issue 14): gateway ≥ 0.9× direct. py-spy then samples the platform process (the gateway)
under load. Writes bench/results/streaming.json, renders bench/STREAMING.md.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import threading
from functools import partial
from pathlib import Path
from typing import Any

from bench.control.measure import cpu_seconds, tree_cpu
from bench.control.platform import Platform, stop_everything
from bench.lib import interleaved, load, procs, profile, render_streaming, results, servers
from bench.lib.procs import HOST, log

NS = "bench"
SERVICE = "chat"
GOAL_RATIO = 0.9
ROUTE = "/openai/v1/chat/completions"
MODEL_FILE = results.BENCH / "models" / "stream_chat.py"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m bench.streaming",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--duration", type=int, default=10, help="seconds per measurement")
    p.add_argument("--warmup", type=int, default=2, help="seconds of unrecorded load first")
    p.add_argument("--repeat", type=int, default=3, help="interleaved rounds (median kept)")
    p.add_argument("--tokens", type=int, default=256, help="chunks per stream (max_tokens)")
    p.add_argument("--concurrency", type=int, nargs="+", default=[1, 4], help="streams at once")
    p.add_argument("--profile-seconds", type=int, default=5, help="py-spy under load; 0: none")
    p.add_argument("--modelport-python", type=Path, default=Path(sys.executable))
    p.add_argument("--work-dir", type=Path, default=results.BENCH / ".work" / "streaming")
    p.add_argument("--render", type=Path, metavar="JSON", help="only re-render this file")
    p.add_argument(
        "--allow-dirty",
        action="store_true",
        help="run from a tree with uncommitted changes; results go to bench/.work/scratch/ "
        "and are marked unpublishable",
    )
    return p.parse_args(argv)


def request_body(tokens: int) -> dict[str, Any]:
    return {
        "model": SERVICE,
        "messages": [{"role": "user", "content": "stream please"}],
        "max_tokens": tokens,
        "stream": True,
    }


def isvc_doc(model_dir: Path) -> str:
    return (
        "apiVersion: serving.kserve.io/v1beta1\n"
        "kind: InferenceService\n"
        f"metadata:\n  name: {SERVICE}\n  namespace: {NS}\n"
        "spec:\n  predictor:\n    minReplicas: 1\n    maxReplicas: 1\n"
        "    model:\n      modelFormat:\n        name: custom\n"
        f"      storageUri: {model_dir}\n"
    )


def count_stream(port: int, path: str, body: bytes, headers: dict[str, str]) -> dict[str, Any]:
    """One streamed answer read whole: its status, content type, chunks and whether it
    ended with `data: [DONE]`."""
    status, hdrs, data = procs.http_req(port, "POST", path, body, headers, timeout=60)
    events = [e for e in data.decode(errors="replace").split("\n\n") if e.strip()]
    chunks = [e for e in events if e.startswith("data: {")]
    return {
        "status": status,
        "content_type": hdrs.get("content-type"),
        "chunks": len(chunks),
        "done": bool(events) and events[-1] == "data: [DONE]",
        "bytes": len(data),
    }


def check(found: dict[str, Any], token: str, body: bytes, tokens: int) -> dict[str, Any]:
    """Every target streams exactly `tokens` chunks then [DONE]; no credentials, no stream."""
    out: dict[str, Any] = {}
    for key, t in found.items():
        headers = {"Content-Type": "application/json"}
        if t["bearer"]:
            headers["Authorization"] = f"Bearer {token}"
        got = count_stream(t["port"], t["path"], body, headers)
        t["stream_bytes"] = got["bytes"]
        ok = got["status"] == 200 and got["chunks"] == tokens and got["done"]
        ok = ok and (got["content_type"] or "").startswith("text/event-stream")
        out[key] = None if ok else f"{got}"
    gw = found["gateway"]
    bare = {"Accept": "application/json", "Content-Type": "application/json"}
    status, _, _ = procs.http_req(gw["port"], "POST", gw["path"], body, bare)
    out["no_credentials_refused"] = None if status == 401 else f"HTTP {status}, expected 401"
    return out


def _cpu(name: str, pid: int) -> float:
    """The gateway is the platform process alone (its children are the replicas); a model
    server counts with its workers."""
    return cpu_seconds(pid) if name == "gateway" else tree_cpu(pid)


def measure_all(
    args: argparse.Namespace, found: dict[str, Any], token: str, body_file: Path
) -> dict[str, Any]:
    """Per concurrency level, interleaved rounds over the targets; tokens/s and the CPU
    each target's serving processes used per token."""

    def one(level: int, key: str, seconds: int | None = None) -> load.Result:
        t = found[key]
        headers = (f"Authorization: Bearer {token}",) if t["bearer"] else ()
        cpu0 = {name: _cpu(name, pid) for name, pid in t["cpu_pids"].items()}
        r = load.run_wrk(
            f"http://{HOST}:{t['port']}{t['path']}", body_file, threads=min(2, level),
            connections=level, seconds=seconds or args.duration, headers=headers,
        )  # fmt: skip
        if r.get("status") == "ok" and r["requests"]:
            r["tokens_per_s"] = round(r["rps"] * args.tokens, 1)
            n = r["requests"] * args.tokens
            for name, pid in t["cpu_pids"].items():
                used = _cpu(name, pid) - cpu0[name]
                r[f"{name}_cpu_us_per_token"] = round(used * 1e6 / n, 2)
        return r

    out: dict[str, Any] = {}
    for level in args.concurrency:
        log(f"concurrency {level}")
        if args.warmup:
            for key in found:
                one(level, key, args.warmup)
        out[f"c{level}"] = interleaved.rounds(
            list(found), partial(one, level), args.repeat, by="rps"
        )
    return out


def ratios(measured: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for level, by_target in measured.items():
        direct = by_target["direct"].get("tokens_per_s")
        gateway = by_target["gateway"].get("tokens_per_s")
        r = round(gateway / direct, 3) if direct and gateway else None
        out[level] = {"gateway_over_direct": r, "goal_met": r is not None and r >= GOAL_RATIO}
    return out


def profile_gateway(
    args: argparse.Namespace, found: dict[str, Any], token: str, body_file: Path, work: Path
) -> dict[str, Any]:
    """py-spy on the platform process (the gateway runs in it) under the highest level."""
    pid = found["gateway"]["cpu_pids"].get("gateway")
    if not args.profile_seconds or pid is None:
        return {}
    level = max(args.concurrency)
    t = found["gateway"]
    wrk = threading.Thread(
        target=load.run_wrk,
        args=(f"http://{HOST}:{t['port']}{t['path']}", body_file),
        kwargs={"threads": min(2, level), "connections": level,
                "seconds": args.profile_seconds + 2,
                "headers": (f"Authorization: Bearer {token}",)},
    )  # fmt: skip
    wrk.start()
    stacks = work / "profile" / f"gateway-stream-c{level}.txt"
    why = profile.record(pid, args.profile_seconds, stacks)
    wrk.join()
    if why:
        return {"error": why}
    return {"target": f"platform process, streaming at c={level}", **profile.summarize(stacks)}


def configuration(
    args: argparse.Namespace, found: dict[str, Any], serve_cmd: list[str], pf: Platform
) -> dict[str, Any]:
    return {
        "duration_s": args.duration,
        "warmup_s": args.warmup,
        "rounds": args.repeat,
        "tokens_per_stream": args.tokens,
        "concurrency": args.concurrency,
        "profile_seconds": args.profile_seconds,
        "goal_ratio": GOAL_RATIO,
        "request": request_body(args.tokens),
        "model": "bench/models/stream_chat.py (fixed chunks, no generation work)",
        "platform": {"command": pf.cmd, "namespace": NS},
        "service_doc": isvc_doc(Path("<model dir>")),
        "direct_command": serve_cmd,
        "targets": {k: {**t, "cpu_pids": list(t["cpu_pids"])} for k, t in found.items()},
    }


def deploy(args: argparse.Namespace, work: Path) -> tuple[Platform, dict[str, Any], list[str]]:
    """The model directory, `modelport serve` of it, and `modelport up` serving it too."""
    py = str(args.modelport_python.absolute())
    model_dir = work / "models" / SERVICE
    model_dir.mkdir(parents=True, exist_ok=True)
    shutil.copy(MODEL_FILE, model_dir / "model.py")
    env = servers.modelport_env()
    fmt = ["--format", "custom"]
    serve, serve_port, serve_cmd = interleaved.start_serve(
        py, model_dir, SERVICE, work, env, extra=fmt
    )
    pf = Platform(py, work, "platform", grace=600)
    interleaved.apply(pf, work, SERVICE, isvc_doc(model_dir))
    interleaved.wait_ready(pf, NS, "inferenceservices", SERVICE)
    replica = pf.replica_pid(SERVICE)
    found = {
        "direct": {"port": serve_port, "path": ROUTE, "bearer": False,
                   "label": "model server direct (`modelport serve`)",
                   "cpu_pids": {"server": serve.pid}},
        "gateway": {"port": pf.port, "path": f"/serving/{NS}/{SERVICE}{ROUTE}", "bearer": True,
                    "label": "through `modelport up`'s gateway",
                    "cpu_pids": {"gateway": pf.proc.pid,
                                 **({"server": replica} if replica else {})}},
    }  # fmt: skip
    return pf, found, serve_cmd


def render(json_path: Path) -> int:
    """STREAMING.md again from a results file: bench/STREAMING.md for a published one, else
    beside the file."""
    res = results.load(json_path)
    published = json_path.resolve().parent == results.RESULTS_DIR
    target = (results.BENCH if published else json_path.parent) / "STREAMING.md"
    target.write_text(render_streaming.render(res, json_path))
    log(f"wrote {target}")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.render:
        return render(args.render)
    try:
        dest = results.destination("streaming", "STREAMING.md", allow_dirty=args.allow_dirty)
    except results.DirtyTree as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    procs.stop_on_signals()
    work = args.work_dir.resolve()
    body_file = work / "bodies" / "chat.json"
    body_file.parent.mkdir(parents=True, exist_ok=True)
    body_file.write_text(json.dumps(request_body(args.tokens), separators=(",", ":")))
    res = results.begin("streaming", dest, {})
    try:
        pf, found, serve_cmd = deploy(args, work)
        res["versions"] = {"modelport_source": servers.modelport_source(args.modelport_python)}
        res["checks"] = check(found, pf.token, body_file.read_bytes(), args.tokens)
        res["config"] = configuration(args, found, serve_cmd, pf)
        failed = {k: v for k, v in res["checks"].items() if v}
        if failed:
            raise RuntimeError(f"checks failed: {failed}")
        res["levels"] = measure_all(args, found, pf.token, body_file)
        res["ratios"] = ratios(res["levels"])
        res["profile"] = profile_gateway(args, found, pf.token, body_file, work)
    except (RuntimeError, OSError, subprocess.SubprocessError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    finally:
        stop_everything()
    results.finish(res, dest)
    dest.markdown_path.write_text(render_streaming.render(res, dest.json_path))
    log(f"wrote {dest.json_path} and {dest.markdown_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
