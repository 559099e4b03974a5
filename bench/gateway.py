"""Gateway: what authentication costs in front of one model server, against a peer measured
in the same run — nginx `auth_request` asking modelport's `/authz`, then proxying to the
same model server (oauth2-proxy and Dex are not installable here from Debian or PyPI).

    python -m bench.gateway                      # ~6 min; refuses a dirty tree
    python -m bench.gateway --allow-dirty --duration 3 --repeat 1

One `modelport serve` (iris, 1 worker, no gRPC); two `modelport gateway` processes in front
of it (with authentication, and `--no-auth`); nginx with one worker. wrk posts the same V2
infer through each at c=1 and c=64 in interleaved rounds (every target once per round, the
order rotated); each target keeps its median round. Then py-spy samples the authenticating
gateway under c=64 Bearer load. Writes bench/results/gateway.json, renders bench/GATEWAY.md.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import threading
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from bench import models
from bench.lib import (
    checks,
    credentials,
    load,
    nginx,
    procs,
    profile,
    render_gateway,
    results,
    servers,
)
from bench.lib.credentials import NAMESPACE
from bench.lib.procs import HOST, log
from bench.lib.servers import MODEL, build, modelport_env

PREFIX = f"/serving/{NAMESPACE}/{MODEL}/"
INFER_PATH = f"{PREFIX}v2/models/{MODEL}/infer"
DIRECT_PATH = f"/v2/models/{MODEL}/infer"


@dataclass(frozen=True)
class Target:
    """One way to reach the model: a row of the gateway table."""

    label: str
    proxy: str
    port: int
    path: str
    headers: tuple[str, ...]
    proxy_pid: int | None  # whose CPU per request is reported


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m bench.gateway",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--duration", type=int, default=10, help="seconds per measurement")
    p.add_argument("--warmup", type=int, default=2, help="seconds of c=64 load before each")
    p.add_argument("--repeat", type=int, default=3, help="interleaved rounds (median kept)")
    p.add_argument("--profile-seconds", type=int, default=5, help="py-spy under load; 0: none")
    p.add_argument("--nginx-workers", type=int, default=1)
    p.add_argument("--modelport-python", type=Path, default=Path(sys.executable))
    p.add_argument("--work-dir", type=Path, default=results.BENCH / ".work" / "gateway")
    p.add_argument(
        "--allow-dirty",
        action="store_true",
        help="run from a tree with uncommitted changes; results go to bench/.work/scratch/ "
        "and are marked unpublishable",
    )
    return p.parse_args(argv)


def start_all(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    """Model server, both gateways and nginx; their processes and ports."""
    py, env = str(args.modelport_python.absolute()), modelport_env()
    model_dir = work / "models" / "iris"
    build(args.modelport_python.absolute(), "iris", model_dir)
    mp, ga, gn, ng = procs.free_ports(4)
    serve = [py, "-m", "modelport", "serve", str(model_dir), "--name", MODEL]
    serve += ["--http-port", str(mp), "--grpc-port", "-1", "--workers", "1"]
    config = work / "dex.yaml"
    config.write_text(credentials.DEX_CONFIG)
    out: dict[str, Any] = {"ports": {"model": mp, "gateway": ga, "noauth": gn, "nginx": ng}}
    out["server"], _ = procs.start_ready("model-server", serve, mp, "/v2/health/ready", work, env)
    for name, port, extra in (("gateway", ga, []), ("noauth", gn, ["--no-auth"])):
        data = work / f"data-{name}"
        shutil.rmtree(data, ignore_errors=True)
        cmd = [py, "-m", "modelport", "gateway", "--upstream", f"http://{HOST}:{mp}"]
        cmd += ["--data-dir", str(data), "--config", str(config), "--port", str(port), *extra]
        out[name], _ = procs.start_ready(name, cmd, port, "/healthz", work, env)
    out["nginx"] = nginx.start(
        work / "nginx", port=ng, model_port=mp, authz_port=ga, prefix=PREFIX,
        workers=args.nginx_workers,
    )  # fmt: skip
    out["commands"] = {"model_server": serve}
    out["expected"] = models.expected_path(model_dir)
    return out


def targets(run: dict[str, Any], id_token: str, api_token: str) -> dict[str, Target]:
    """Every way to the model that the run measures."""
    p, bearer = run["ports"], f"Authorization: Bearer {id_token}"
    gw, gn, ngx = run["gateway"].pid, run["noauth"].pid, run["nginx"].pid
    return {
        "direct": Target("model server direct", "none", p["model"], DIRECT_PATH, (), None),
        "noauth": Target("modelport gateway --no-auth", "modelport gateway", p["noauth"],
                         INFER_PATH, (), gn),
        "bearer": Target("modelport gateway, Bearer ID token", "modelport gateway",
                         p["gateway"], INFER_PATH, (bearer,), gw),
        "apitoken": Target("modelport gateway, API token", "modelport gateway", p["gateway"],
                           INFER_PATH, (f"Authorization: Bearer {api_token}",), gw),
        "nginx": Target("nginx auth_request → modelport /authz, Bearer ID token",
                        "nginx + modelport gateway /authz", p["nginx"], INFER_PATH,
                        (bearer,), ngx),
    }  # fmt: skip


def check_targets(
    found: dict[str, Target], body: bytes, expected: list[int], port: int
) -> dict[str, Any]:
    """Each target answers the right classes, and authentication really is on."""
    out: dict[str, Any] = {}
    for key, t in found.items():
        headers = dict(h.split(": ", 1) for h in t.headers)
        out[key] = checks.check_v2(t.port, t.path, body, expected, headers)
    status, _, _ = procs.http_req(port, "POST", INFER_PATH, body, {"Accept": "application/json"})
    out["no_credentials_refused"] = None if status == 401 else f"HTTP {status}, expected 401"
    return out


def one_measurement(t: Target, body_file: Path, level: load.Level, seconds: int) -> load.Result:
    """wrk on one target, with the CPU its proxy process used per request."""
    cpu0 = procs.tree_cpu_seconds(t.proxy_pid) if t.proxy_pid else 0.0
    url = f"http://{HOST}:{t.port}{t.path}"
    r = load.run_wrk(
        url, body_file, threads=level.wrk_threads, connections=level.wrk_connections,
        seconds=seconds, headers=t.headers,
    )  # fmt: skip
    if t.proxy_pid and r.get("requests"):
        used = procs.tree_cpu_seconds(t.proxy_pid) - cpu0
        r["proxy_cpu_us_per_request"] = round(used * 1e6 / r["requests"], 1)
    return r


def measure_rounds(
    found: dict[str, Target], body_file: Path, args: argparse.Namespace
) -> dict[str, Any]:
    """Interleaved rounds; per target and level, the round with the median req/s."""
    runs: dict[str, dict[str, list[load.Result]]] = {k: {"c1": [], "c64": []} for k in found}
    keys = list(found)
    for rnd in range(args.repeat):
        order = keys[rnd % len(keys) :] + keys[: rnd % len(keys)]
        log(f"round {rnd + 1}/{args.repeat}: {', '.join(order)}")
        for key in order:
            if args.warmup:
                one_measurement(found[key], body_file, load.C64, args.warmup)
            for level in load.LEVELS:
                measure = partial(one_measurement, found[key], body_file, level, args.duration)
                r = load.median_run(measure, 1)
                runs[key][level.name].append(r)
                log(f"  {key} {level.name}: {load.summary(r)}")
    out: dict[str, Any] = {}
    for key, levels in runs.items():
        out[key] = {}
        for name, rs in levels.items():
            ok = sorted((r for r in rs if r.get("status") == "ok"), key=lambda r: r["rps"])
            kept = dict(ok[len(ok) // 2]) if ok else rs[-1]
            kept["rounds_rps"] = [r.get("rps") for r in rs]
            out[key][name] = kept
    return out


def profile_gateway(t: Target, body_file: Path, seconds: int, work: Path) -> dict[str, Any]:
    """py-spy on the authenticating gateway while wrk keeps it busy at c=64."""
    if not seconds or t.proxy_pid is None:
        return {}
    loader = threading.Thread(target=one_measurement, args=(t, body_file, load.C64, seconds + 2))
    loader.start()
    stacks = work / "profile" / "gateway-bearer-c64.txt"
    why = profile.record(t.proxy_pid, seconds, stacks)
    loader.join()
    return {"error": why} if why else {"target": t.label, **profile.summarize(stacks)}


def configuration(
    args: argparse.Namespace, found: dict[str, Target], run: dict[str, Any]
) -> dict[str, Any]:
    return {
        "duration_s": args.duration,
        "warmup_s": args.warmup,
        "rounds": args.repeat,
        "profile_seconds": args.profile_seconds,
        "payload": {"rest_v2_body": models.V2_BODY, "rows_per_request": len(models.IRIS_ROWS)},
        "levels": {lv.name: lv.__dict__ for lv in load.LEVELS},
        "model_server": {
            "command": run["commands"]["model_server"],
            "workers": 1,
            "batching": "max 32, wait ≤ 0 ms (modelport's default for scikit-learn)",
            "access_log": False,
        },
        "proxies": {
            "modelport gateway": "1 process (one event loop), no access log, "
            "authentication results cached 2 s",
            "nginx + modelport gateway /authz": f"nginx {args.nginx_workers} worker(s), "
            "access_log off, keep-alive to both upstreams; each request makes one auth_request "
            "subrequest to the authenticating modelport gateway's /authz",
        },
        "targets": {
            k: {**t.__dict__, "headers": [h.split(":")[0] for h in t.headers]}
            for k, t in found.items()
        },
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        dest = results.destination("gateway", "GATEWAY.md", allow_dirty=args.allow_dirty)
    except results.DirtyTree as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if nginx.version() is None:
        print("error: nginx is not installed (bash bench/setup_peers.sh)", file=sys.stderr)
        return 2
    procs.stop_on_signals()
    work = args.work_dir.resolve()
    models.build_json_bodies(work)
    body_file = work / "bodies" / "v2.json"
    res = results.begin("gateway", dest, {})
    try:
        run = start_all(args, work)
        py, env = args.modelport_python.absolute(), modelport_env()
        api = credentials.api_token(py, work / "data-gateway", work / "cwd" / "cli", env)
        found = targets(run, credentials.id_token(run["ports"]["gateway"]), api)
        res["config"] = configuration(args, found, run)
        res["versions"] = {
            "modelport_source": servers.modelport_source(py),
            "nginx": nginx.version(),
        }
        expected = results.load(run["expected"])["predictions"]
        res["checks"] = check_targets(
            found, body_file.read_bytes(), expected, run["ports"]["gateway"]
        )
        failed = {k: v for k, v in res["checks"].items() if v}
        if failed:
            raise RuntimeError(f"checks failed: {failed}")
        res["targets"] = measure_rounds(found, body_file, args)
        res["profile"] = profile_gateway(found["bearer"], body_file, args.profile_seconds, work)
    except (RuntimeError, OSError, subprocess.SubprocessError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    finally:
        procs.kill_all()
    results.finish(res, dest)
    dest.markdown_path.write_text(render_gateway.render(res, dest.json_path))
    log(f"wrote {dest.json_path} and {dest.markdown_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
