"""Control-plane benchmark: cold starts, gateway routing overhead, 200 InferenceServices.

    python -m bench.control                          # ~6 min, writes bench/CONTROL.md
    python -m bench.control --allow-dirty --only cold --cold-tries 5
    python -m bench.control --render bench/results/control.json

Everything runs on 127.0.0.1 in one run on this machine:

1. cold start  `modelport serve` spawn→ready (context), then one `modelport up` with
               --cold-tries sklearn iris services (minReplicas 0, window 6s) applied in
               batches, each started once and left to scale to zero; then one request per
               service, one at a time, timed from sending it until its response.
2. gateway     on the same platform, one iris service (minReplicas = maxReplicas = 1);
               wrk posts the same V2 infer through the gateway (Bearer token; Host-header
               routing and the /serving/NS/NAME path) and straight to `modelport serve` of
               the same model with a replica's arguments (replicas answer only the gateway),
               interleaved rounds, c=64 / c=8 / c=1; CPU time per request of each process.
3. scale       a fresh `modelport up`: with 0 services, then with --services idle services
               (minReplicas 0, initial-scale 0, so none starts a replica): `modelport get
               isvc -A` wall time, `GET /api/v1/inferenceservices` latency, RSS of the
               platform and of its zygote, idle CPU; how long applying them took; py-spy of
               the platform serving the list and idling; cold starts with them present.

Writes bench/CONTROL.md and bench/results/control.json; refuses to write either
from a tree with uncommitted changes (--allow-dirty writes both under bench/.work/scratch/).
Standard library and bench.lib only; the platform runs in --modelport-python with this
checkout first on PYTHONPATH.
Every process it starts (platform, its zygote and replicas, model servers, wrk) is stopped
at the end, on errors and on Ctrl-C.
"""

from __future__ import annotations

import argparse
import atexit
import datetime as dt
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench import models as bm
from bench.control.cold import run_cold, serve_starts
from bench.control.measure import machine_info, on_signal, wait_quiet
from bench.control.platform import Platform, stop_everything
from bench.control.report import write_md
from bench.control.routing import run_gateway
from bench.control.scale import run_scale
from bench.control.settings import BENCH, REPO, Ctx, log
from bench.control.summary import summarize
from bench.lib import procs, results, servers


# =========================================================================== main
def parse_args(argv: list[str] | None) -> tuple[argparse.Namespace, set[str]]:
    """The options, checked against their bounds, and the parts of the run to do."""
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--only", default="cold,gateway,scale", help="cold,gateway,scale")
    ap.add_argument("--cold-tries", type=int, default=20, help="services / cold starts")
    ap.add_argument("--cold-batch", type=int, default=5, help="services started at once")
    ap.add_argument("--cold-gap", type=float, default=1.0, help="seconds between cold tries")
    ap.add_argument("--serve-starts", type=int, default=3, help="`modelport serve` starts")
    ap.add_argument("--grace", type=float, default=1.0, help="--scale-to-zero-grace seconds")
    ap.add_argument("--duration", type=int, default=5, help="seconds per wrk measurement")
    ap.add_argument("--warmup", type=int, default=2, help="unrecorded c=64 seconds before each")
    ap.add_argument("--repeat", type=int, default=3, help="interleaved gateway rounds")
    ap.add_argument("--services", type=int, default=200, help="idle services in the scale test")
    ap.add_argument("--apply-batch", type=int, default=20, help="documents per apply call")
    ap.add_argument("--cli-runs", type=int, default=12, help="runs of each CLI command")
    ap.add_argument("--api-runs", type=int, default=30, help="GETs of the control API list")
    ap.add_argument("--idle-seconds", type=int, default=10, help="idle CPU sampling")
    ap.add_argument("--cold200-tries", type=int, default=10, help="cold starts among N services")
    ap.add_argument("--profile-seconds", type=int, default=5, help="py-spy seconds (0: none)")
    ap.add_argument("--modelport-python", default=sys.executable)
    ap.add_argument("--work-dir", default=str(BENCH / ".work" / "control"))
    ap.add_argument("--results-md", default=str(BENCH / "CONTROL.md"))
    ap.add_argument(
        "--results-json",
        default=None,
        help="default: bench/results/control.json (bench/.work/scratch/ with --allow-dirty)",
    )
    ap.add_argument("--render", metavar="JSON", help="only write --results-md from a results.json")
    ap.add_argument(
        "--allow-dirty",
        action="store_true",
        help="run from a tree with uncommitted changes; CONTROL.md goes to bench/.work/scratch/",
    )
    args = ap.parse_args(argv)
    only = {x.strip() for x in args.only.split(",") if x.strip()}
    bounds = (
        (only <= {"cold", "gateway", "scale"} and only, "--only: cold,gateway,scale"),
        (1 <= args.cold_tries <= 60, "--cold-tries 1..60"),
        (1 <= args.cold_batch <= 20, "--cold-batch 1..20"),
        (0 <= args.cold_gap <= 30, "--cold-gap 0..30"),
        (0 <= args.serve_starts <= 10, "--serve-starts 0..10"),
        (0 <= args.grace <= 60, "--grace 0..60"),
        (1 <= args.duration <= 60, "--duration 1..60"),
        (0 <= args.warmup <= 30, "--warmup 0..30"),
        (1 <= args.repeat <= 9, "--repeat 1..9"),
        (1 <= args.services <= 2000, "--services 1..2000"),
        (1 <= args.apply_batch <= 200, "--apply-batch 1..200"),
        (1 <= args.cli_runs <= 100, "--cli-runs 1..100"),
        (1 <= args.api_runs <= 500, "--api-runs 1..500"),
        (1 <= args.idle_seconds <= 60, "--idle-seconds 1..60"),
        (0 <= args.cold200_tries <= args.services, "--cold200-tries 0..--services"),
        (0 <= args.profile_seconds <= 30, "--profile-seconds 0..30"),
    )
    for ok, msg in bounds:
        if not ok:
            ap.error(msg)
    return args, only


def new_results(args: argparse.Namespace, only: set[str], argv: list[str] | None) -> dict[str, Any]:
    """The results of a run about to start: what ran, where, with which options."""
    dirty = subprocess.run(
        ["git", "-C", str(REPO), "status", "--porcelain", "--", "modelport"],
        capture_output=True,
        text=True,
    ).stdout.split("\n")
    return {
        "meta": {
            "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC"),
            "command": " ".join(
                ["python -m bench.control", *(argv if argv is not None else sys.argv[1:])]
            ),
            "machine": machine_info(),
            "wrk": results.machine()["wrk"],
            "modelport": servers.dist_version(Path(args.modelport_python), "modelport"),
            "git": subprocess.run(
                ["git", "-C", str(REPO), "describe", "--always", "--dirty"],
                capture_output=True,
                text=True,
            ).stdout.strip(),
            "dirty": [ln[3:] for ln in dirty if ln.strip()],
            "only": sorted(only),
            "duration_s": args.duration,
            "warmup_s": args.warmup,
            "repeat": args.repeat,
            "grace": args.grace,
            "cold_gap": args.cold_gap,
            "idle_seconds": args.idle_seconds,
            "cli_runs": args.cli_runs,
            "api_runs": args.api_runs,
            "loadavg_start": procs.loadavg(),
        },
        "cold": {},
        "gateway": {},
        "scale": {},
    }


def main(argv: list[str] | None = None) -> int:
    args, only = parse_args(argv)
    if args.render:
        res = json.loads(Path(args.render).read_text())
        summarize(res)
        write_md(res, Path(args.results_md), Path(args.render).resolve())
        log(f"wrote {args.results_md} from {args.render}")
        return 0
    published = not results.git_state()["uncommitted_changes"]
    if not published:
        if not args.allow_dirty:
            print(f"error: {REPO} has uncommitted changes; see --allow-dirty", file=sys.stderr)
            return 2
        if args.results_md == str(BENCH / "CONTROL.md"):
            args.results_md = str(results.SCRATCH_DIR / "CONTROL.md")
    if not shutil.which("wrk") and "gateway" in only:
        print("wrk not found: run bash bench/setup_peers.sh", file=sys.stderr)
        return 2

    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, on_signal)
    atexit.register(stop_everything)
    py = args.modelport_python
    # py-spy and the console script live beside the platform's interpreter.
    os.environ["PATH"] = str(Path(py).parent) + os.pathsep + os.environ.get("PATH", "")
    os.environ["PYTHONUNBUFFERED"] = "1"
    os.environ["PYTHONPATH"] = servers.modelport_env()["PYTHONPATH"]

    work = Path(args.work_dir).resolve()
    ctx = Ctx(args, py, work, work / "logs")
    ctx.logs.mkdir(parents=True, exist_ok=True)
    default_json = (results.RESULTS_DIR if published else results.SCRATCH_DIR) / "control.json"
    json_path = Path(args.results_json) if args.results_json else default_json
    res = new_results(args, only, argv)
    res["meta"]["published"] = published
    interrupted = False
    t_start = time.monotonic()
    try:
        run_all(ctx, only, res)
    except KeyboardInterrupt:
        interrupted = True
        res["meta"]["interrupted"] = True
        log("interrupted: stopping everything")
    except Exception as e:  # noqa: BLE001 - report what was measured
        res["meta"]["error"] = f"{type(e).__name__}: {e}"
        log(f"ERROR: {type(e).__name__}: {e}")
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        stop_everything()
    res["meta"]["runtime_s"] = round(time.monotonic() - t_start)
    res["meta"]["loadavg_end"] = procs.loadavg()
    summarize(res)
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps(res, indent=2) + "\n")
    write_md(res, Path(args.results_md), json_path)
    log(f"wrote {args.results_md} and {json_path}")
    for t in res.get("targets", []):
        met = {True: "met", False: "MISSED", None: "info"}[t["met"]]
        log(f"  {t['item']}: {t['value']} (target {t['target']}): {met}")
    if interrupted:
        return 130
    return 1 if res["meta"].get("error") else 0


def run_all(ctx: Ctx, only: set[str], res: dict[str, Any]) -> None:
    ctx.model_dir = ctx.work / "models" / "iris"
    servers.build(Path(ctx.py), "iris", ctx.model_dir)
    ctx.expected = json.loads(bm.expected_path(ctx.model_dir).read_text())["predictions"]
    bm.build_json_bodies(ctx.work)
    ctx.v2_file = ctx.work / "bodies" / "v2.json"
    ctx.v2_body = ctx.v2_file.read_bytes()
    ctx.v1_body = (ctx.work / "bodies" / "v1.json").read_bytes()

    if "cold" in only and ctx.args.serve_starts:
        wait_quiet()
        log(f"modelport serve: {ctx.args.serve_starts} starts")
        res["cold"]["serve"] = serve_starts(ctx, ctx.args.serve_starts)
    if only & {"cold", "gateway"}:
        pf = Platform(ctx.py, ctx.work, "platform-1", ctx.args.grace)
        res["meta"]["platform_1_start_s"] = pf.start_s
        try:
            if "cold" in only:
                run_cold(ctx, pf, res)
            if "gateway" in only:
                run_gateway(ctx, pf, res)
        finally:
            pf.stop()
    if "scale" in only:
        pf = Platform(ctx.py, ctx.work, "platform-2", ctx.args.grace)
        res["meta"]["platform_2_start_s"] = pf.start_s
        try:
            run_scale(ctx, pf, res)
        finally:
            pf.stop()


if __name__ == "__main__":
    sys.exit(main())
