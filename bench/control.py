#!/usr/bin/env python3
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
import collections
import datetime as dt
import http.client
import json
import os
import re
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

from bench import models as bm
from bench.lib import load, procs, results, servers
from bench.lib.checks import check_v2, same_predictions
from bench.lib.cpu import FOREIGN_LIMIT, machine_busy_seconds

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent

log = procs.log
HOST = procs.HOST

ADMIN = "admin@example.com"
ADMIN_PASSWORD = "bench-admin-password-1"
NS = "bench"
GW_SERVICE = "gw-iris"
DOMAIN = "example.com"
LEVELS = {"c64": (2, 64), "c8": (2, 8), "c1": (1, 1)}
GW_VARIANTS = ("host", "serving", "direct")
GW_LABELS = {
    "host": "gateway, Host header",
    "serving": "gateway, /serving path",
    "direct": "model server direct",
}
TARGETS = {
    "cold_p50_s": 0.5,
    "gateway_ratio": 0.70,
    "gateway_added_p50_ms": 1.0,
    "get_isvc_ms": 200.0,
}
CLK_TCK = os.sysconf("SC_CLK_TCK")
PLATFORM_START_TIMEOUT = 90.0


# =========================================================================== /proc helpers
def _stat_fields(pid: int) -> list[str] | None:
    """Fields of /proc/PID/stat from the state on (index 0 = field 3 of proc(5))."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return raw[raw.rindex(")") + 2 :].split()


def children_map() -> dict[int, list[int]]:
    out: dict[int, list[int]] = collections.defaultdict(list)
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            f = _stat_fields(int(entry))
            if f:
                out[int(f[1])].append(int(entry))
    return out


def descendants(pid: int) -> list[int]:
    """Every process below pid (by parent pid), zombies included."""
    cm, out, stack = children_map(), [], [pid]
    while stack:
        for c in cm.get(stack.pop(), []):
            out.append(c)
            stack.append(c)
    return out


def alive(pid: int) -> bool:
    f = _stat_fields(pid)
    return bool(f) and f[0] != "Z"


def cpu_seconds(pid: int, with_reaped: bool = False) -> float:
    """utime + stime of one process (all its threads); with_reaped adds its waited-for
    children's (cutime + cstime)."""
    f = _stat_fields(pid)
    if not f:
        return 0.0
    ticks = int(f[11]) + int(f[12]) + ((int(f[13]) + int(f[14])) if with_reaped else 0)
    return ticks / CLK_TCK


def tree_cpu(pid: int) -> float:
    """CPU seconds of a process and everything below it (workers), reaped ones included."""
    return sum(cpu_seconds(p, with_reaped=True) for p in [pid, *descendants(pid)])


def start_boottime(pid: int) -> float | None:
    """When the process started, in seconds since boot (CLOCK_BOOTTIME), 1/CLK_TCK steps."""
    f = _stat_fields(pid)
    return int(f[19]) / CLK_TCK if f else None


def comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def proc_memory(pid: int | None) -> dict:
    out = {"pid": pid, "rss_mib": None, "pss_mib": None}
    if not pid:
        return out
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                out["rss_mib"] = round(int(line.split()[1]) / 1024, 1)
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                out["pss_mib"] = round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return out


def _on_signal(signum: int, _frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def machine_info() -> dict:
    """The machine, in the keys CONTROL.md's renderer reads."""
    m = results.machine()
    return {
        "nproc": m["cpus"],
        "cpu": m["cpu_model"],
        "mem_gib": m["memory_gib"],
        "kernel": m["kernel"],
        "python": m["python"],
    }


def wrk(url: str, body_file: Path, headers: list[str], threads: int, conns: int, secs: int):
    """One wrk run posting `body_file` as JSON with extra `headers` ("Name: value")."""
    return load.run_wrk(
        url, body_file, threads=threads, connections=conns, seconds=secs, headers=headers
    )


def median_of(runs: list[dict]) -> dict:
    """The run with the median req/s (undisturbed runs first), with every run's req/s."""
    ok = [r for r in runs if r.get("status") == "ok"]
    ok = sorted([r for r in ok if not r.get("suspect")] or ok, key=lambda r: r["rps"])
    if not ok:
        return runs[-1]
    best = dict(ok[len(ok) // 2])
    if len(runs) > 1:
        best["runs_rps"] = [r.get("rps") for r in runs]  # in round order
    return best


def frame_package(frame: str) -> str:
    """The library a py-spy frame belongs to: `uvicorn`, `modelport/gateway`, `asyncio`..."""
    m = re.search(r"\(([^()]*)\)$", frame)
    path = m.group(1) if m else ""
    parts = path.split("/")
    if parts[0] == "modelport" and len(parts) > 2:
        return "/".join(parts[:2])
    return parts[0] if len(parts) > 1 else path or "?"


class Watch:
    """CPU used on the machine by processes that are not ours, in cores (see gateway.py's
    CpuWatch). Ours: this process, everything it waited for (wrk, CLI runs) and every live
    descendant with what each has reaped — the platform's zygote and replicas run in
    sessions of their own, so a session-based count would call them foreign."""

    def __init__(self):
        self.t0 = time.monotonic()
        self.busy0, self.ours0 = machine_busy_seconds(), self._ours()

    @staticmethod
    def _ours() -> float:
        ch = resource.getrusage(resource.RUSAGE_CHILDREN)
        me = resource.getrusage(resource.RUSAGE_SELF)
        trees = sum(cpu_seconds(p, with_reaped=True) for p in descendants(os.getpid()))
        return trees + ch.ru_utime + ch.ru_stime + me.ru_utime + me.ru_stime

    def foreign_cores(self) -> float:
        secs = max(time.monotonic() - self.t0, 1e-3)
        busy = machine_busy_seconds() - self.busy0
        return round(max(0.0, busy - (self._ours() - self.ours0)) / secs, 2)


def wait_quiet(limit_s: float = 90.0) -> float:
    """Wait until other processes use < FOREIGN_LIMIT cores over 3 s; their last reading."""
    t0 = time.monotonic()
    while True:
        w = Watch()
        time.sleep(3.0)
        f = w.foreign_cores()
        if f < FOREIGN_LIMIT:
            return f
        if time.monotonic() - t0 > limit_s:
            log(f"  machine still busy ({f} cores used by other processes); going on")
            return f
        log(f"  waiting for a quiet machine ({f} cores used by other processes)")


def pct(vals: list[float], q: float) -> float | None:
    return load.percentile(sorted(vals), q) if vals else None


def dist(vals: list[float], nd: int = 3) -> dict:
    """p50 / p90 / max / min / mean of a list (None when empty)."""
    if not vals:
        return {"n": 0}
    return {
        "n": len(vals),
        "p50": round(statistics.median(vals), nd),
        "p90": round(pct(vals, 90), nd),
        "max": round(max(vals), nd),
        "min": round(min(vals), nd),
        "mean": round(statistics.fmean(vals), nd),
    }


# =========================================================================== platform
_PLATFORMS: list[Platform] = []


class Platform:
    """A `modelport up` process, its zygote, and a CLI environment logged in as the admin."""

    def __init__(self, py: str, work: Path, name: str, grace: float):
        self.py = py
        self.name = name
        self.dir = work / name
        shutil.rmtree(self.dir, ignore_errors=True)
        self.data = self.dir / "data"
        self.config = self.dir / "config"
        self.log_path = work / "logs" / f"{name}.log"
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self.data.mkdir(parents=True)
        self.config.mkdir(parents=True)
        env = {k: v for k, v in os.environ.items() if not k.startswith("MODELPORT_")}
        self.env = {
            **env,
            "MODELPORT_ADMIN_EMAIL": ADMIN,
            "MODELPORT_ADMIN_PASSWORD": ADMIN_PASSWORD,
            "MODELPORT_CONFIG_DIR": str(self.config),
            "PYTHONUNBUFFERED": "1",
        }
        cmd = [py, "-m", "modelport", "up", "--port", "0", "--data-dir", str(self.data)]
        cmd += ["--scale-to-zero-grace", str(grace)]
        self.cmd = cmd
        log(f"{name}: starting: {' '.join(cmd)}")
        t0 = time.monotonic()
        with open(self.log_path, "wb") as logf:
            self.proc = subprocess.Popen(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=logf,
                stderr=subprocess.STDOUT,
                cwd=self.dir,
                env=self.env,
                start_new_session=True,
            )
        _PLATFORMS.append(self)
        self.url = None
        while time.monotonic() - t0 < PLATFORM_START_TIMEOUT:
            m = re.search(r"modelport platform: (http://\S+)", self.log_text())
            if m:
                self.url = m.group(1)
                break
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        if not self.url:
            raise RuntimeError(f"{name} did not start; log {self.log_path}:\n{self.tail()}")
        self.start_s = round(time.monotonic() - t0, 2)
        self.port = int(self.url.rsplit(":", 1)[1])
        self.env["MODELPORT_URL"] = self.url
        self.cli_bin = self._cli_bin()
        self.cli("login", self.url, "-u", ADMIN, "--password-stdin", input=ADMIN_PASSWORD + "\n")
        self.token = self.cli("token").stdout.strip()
        self.zygote = self._find_zygote()
        log(
            f"{name}: {self.url} (pid {self.proc.pid}, zygote {self.zygote}), "
            f"up in {self.start_s} s"
        )

    def _cli_bin(self) -> list[str]:
        script = Path(self.py).parent / "modelport"
        return [str(script)] if script.exists() else [self.py, "-m", "modelport"]

    def _find_zygote(self) -> int | None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            for pid in children_map().get(self.proc.pid, []):
                if "modelport.control.backends.zygote" in cmdline(pid):
                    return pid
            time.sleep(0.1)
        return None

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def tail(self, n: int = 25) -> str:
        return procs.tail(self.log_path, n)

    def cli(self, *args: str, input: str | None = None, check: bool = True):
        r = subprocess.run(
            [*self.cli_bin, *args],
            capture_output=True,
            text=True,
            env=self.env,
            input=input,
            cwd=self.dir,
            timeout=180,
        )
        if check and r.returncode != 0:
            raise RuntimeError(f"modelport {' '.join(args)}: {(r.stderr or r.stdout)[-800:]}")
        return r

    def api(self, method: str, path: str, body: bytes | None = None, headers=None, timeout=60):
        hd = {"Authorization": f"Bearer {self.token}", **(headers or {})}
        return procs.http_req(self.port, method, path, body, hd, timeout=timeout)

    def api_json(self, path: str):
        st, _, data = self.api("GET", path)
        if st != 200:
            raise RuntimeError(f"GET {path}: HTTP {st}: {data[:300]!r}")
        return json.loads(data)

    def replicas(self) -> list[int]:
        """Live replica processes (children of the zygote)."""
        if not self.zygote:
            return []
        return [p for p in children_map().get(self.zygote, []) if alive(p)]

    def replica_pid(self, service: str) -> int | None:
        want = f"mp:{service}"[:15]
        pids = [p for p in self.replicas() if comm(p) == want]
        return max(pids, key=lambda p: start_boottime(p) or 0) if pids else None

    def replica_log(self, ns: str, service: str) -> Path | None:
        logs = sorted(
            (self.data / "logs" / ns / service).glob("*-predictor-*.log"),
            key=lambda p: p.stat().st_mtime,
        )
        return logs[-1] if logs else None

    def stop(self) -> None:
        """SIGTERM (the platform stops its replicas and zygote), SIGKILL what is left."""
        if self in _PLATFORMS:
            _PLATFORMS.remove(self)
        kids = descendants(self.proc.pid)
        if self.proc.poll() is None:
            try:
                self.proc.send_signal(signal.SIGTERM)
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                log(f"{self.name}: no exit 30 s after SIGTERM; SIGKILL")
                self.proc.kill()
                self.proc.wait(10)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and any(alive(p) for p in kids):
            time.sleep(0.1)
        left = [p for p in kids if alive(p)]
        for pid in left:
            try:
                os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        if left:
            log(f"{self.name}: killed {len(left)} leftover process(es): {left}")


def stop_everything() -> None:
    for p in list(_PLATFORMS):
        try:
            p.stop()
        except Exception as e:  # noqa: BLE001 - keep stopping the others
            log(f"stopping {p.name}: {e}")
    procs.kill_all()


def isvc_doc(name: str, ns: str, uri: Path, *, predictor: dict, annotations: dict) -> str:
    ann = "".join(f'    {k}: "{v}"\n' for k, v in annotations.items())
    pred = "".join(f"    {k}: {v}\n" for k, v in predictor.items())
    return (
        "apiVersion: serving.kserve.io/v1beta1\n"
        "kind: InferenceService\n"
        f"metadata:\n  name: {name}\n  namespace: {ns}\n"
        + (f"  annotations:\n{ann}" if ann else "")
        + "spec:\n  predictor:\n"
        + pred
        + "    model:\n      modelFormat:\n        name: sklearn\n"
        + f"      storageUri: {uri}\n"
    )


def is_ready(item: dict) -> bool:
    conds = (item.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conds)


def wait_for(fn, timeout: float, every: float = 0.25):
    deadline = time.monotonic() + timeout
    while True:
        v = fn()
        if v or time.monotonic() > deadline:
            return v
        time.sleep(every)


def services_state(pf: Platform, ns: str | None = None) -> dict:
    path = f"/api/v1/namespaces/{ns}/inferenceservices" if ns else "/api/v1/inferenceservices"
    items = pf.api_json(path)["items"]
    return {
        (i["metadata"]["namespace"], i["metadata"]["name"]): (
            is_ready(i),
            (i.get("status") or {}).get("replicas", 0),
        )
        for i in items
    }


# =========================================================================== 1. cold start
def serve_starts(ctx, n: int) -> dict:
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


def cold_try(pf: Platform, ns: str, name: str, body: bytes, expected) -> dict:
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


def run_cold(ctx, pf: Platform, res: dict) -> None:
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

        def batch_ready(want=want):
            st = services_state(pf, NS)
            return all(st.get(k, (False, 0))[0] and st[k][1] >= 1 for k in want)

        if not wait_for(batch_ready, 120):
            raise RuntimeError(f"cold services {sorted(want)} not ready:\n{pf.tail()}")
        peak = max(peak, len(pf.replicas()))
    t_ready = time.monotonic() - t_apply
    log(f"cold: {n} services started once in {t_ready:.1f} s (batches of {batch})")

    def all_zero():
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


def summarize_cold(tries: list[dict]) -> dict:
    ok = [t for t in tries if t["ok"]]
    out = {"tries": len(tries), "ok": len(ok), "total_s": dist([t["total_s"] for t in ok])}
    for k in ("to_fork_s", "fork_to_answer_s", "server_ready_in_s"):
        out[k] = dist([t[k] for t in ok if k in t])
    return out


# =========================================================================== 2. gateway
def measured(fn, platform: int | None, replica: int | None, attempts: int = 3) -> dict:
    """One wrk measurement with CPU per request of the platform process, the replica and
    wrk; redone when disturbed (other processes busy, or run.py's consistency check)."""
    for attempt in range(attempts):
        c_pf = cpu_seconds(platform) if platform else 0.0
        c_rep = tree_cpu(replica) if replica else 0.0
        ch = resource.getrusage(resource.RUSAGE_CHILDREN)
        watch = Watch()
        r = fn()
        r["foreign_cores"] = watch.foreign_cores()
        ch2 = resource.getrusage(resource.RUSAGE_CHILDREN)
        if r.get("status") == "ok" and r["requests"]:
            n = r["requests"]
            if platform:
                r["platform_cpu_us_per_req"] = round((cpu_seconds(platform) - c_pf) * 1e6 / n, 1)
            if replica:
                r["replica_cpu_us_per_req"] = round((tree_cpu(replica) - c_rep) * 1e6 / n, 1)
            wrk_cpu = (ch2.ru_utime + ch2.ru_stime) - (ch.ru_utime + ch.ru_stime)
            r["wrk_cpu_us_per_req"] = round(wrk_cpu * 1e6 / n, 1)
        why = load.suspect_reason(r)
        if not why and r["foreign_cores"] > FOREIGN_LIMIT:
            why = f"other processes used {r['foreign_cores']} cores meanwhile"
        if not why:
            return r
        log(f"  disturbed ({why}); " + ("retrying" if attempt < attempts - 1 else "kept, flagged"))
        r["suspect"] = why
        if "other processes" in why and attempt < attempts - 1:
            time.sleep(5.0)
    return r


def median_round(runs: list[dict]) -> dict:
    best = median_of(runs)
    if len(runs) > 1:
        best["runs_p50_ms"] = [r.get("p50_ms") for r in runs]
    for k in ("platform_cpu_us_per_req", "replica_cpu_us_per_req", "wrk_cpu_us_per_req"):
        vals = [r[k] for r in runs if r.get(k) is not None]
        if vals:
            best[k + "_median"] = round(statistics.median(vals), 1)
    return best


def fmt(r: dict) -> str:
    if r.get("status") != "ok":
        return f"{r.get('status')}: {r.get('detail', '')}"
    s = f"{r['rps']:.0f} req/s, p50 {r['p50_ms']:.2f} ms, p99 {r['p99_ms']:.2f} ms"
    s += f", errors {r['errors']}"
    for k, label in (
        ("platform_cpu_us_per_req", "platform"),
        ("replica_cpu_us_per_req", "replica"),
    ):
        if r.get(k):
            s += f", {label} {r[k]:.0f} µs/req"
    return s


def deploy_gw_service(ctx, pf: Platform) -> tuple[int, int]:
    """The load-test service on `pf` (one replica, never more): its replica's pid and port."""
    doc = isvc_doc(
        GW_SERVICE,
        NS,
        ctx.model_dir,
        predictor={"minReplicas": 1, "maxReplicas": 1},
        annotations={},
    )
    f = ctx.work / f"gw-{pf.name}.yaml"
    f.write_text(doc)
    pf.cli("apply", "-f", str(f))

    def ready():
        st = services_state(pf, NS).get((NS, GW_SERVICE))
        return st == (True, 1) and pf.replica_pid(GW_SERVICE)

    if not wait_for(ready, 120):
        raise RuntimeError(f"{GW_SERVICE} not ready on {pf.name}:\n{pf.tail()}")
    rep = pf.replica_pid(GW_SERVICE)
    lp = pf.replica_log(NS, GW_SERVICE)
    ports = re.findall(r"--- starting on port (\d+)", lp.read_text(errors="replace"))
    log(f"{pf.name}: {GW_SERVICE} replica pid {rep} on port {ports[-1]}")
    return rep, int(ports[-1])


def start_direct(ctx) -> tuple[subprocess.Popen, int]:
    """The baseline: `modelport serve` of the same model with a replica's arguments. The
    platform's own replica answers only requests carrying its key, which only the gateway
    holds, so the bench cannot load it directly."""
    (port,) = procs.free_ports(1)
    cmd = [ctx.py, "-m", "modelport", "serve", str(ctx.model_dir), "--name", GW_SERVICE]
    cmd += ["--host", HOST, "--http-port", str(port), "--grpc-port", "-1", "--workers", "1"]
    p = procs.spawn(cmd, ctx.logs / "direct-serve.log", cwd=ctx.work)
    if procs.wait_http_ok(p, port, "/v2/health/ready", time.monotonic(), 60.0) is None:
        why = procs.tail(ctx.logs / "direct-serve.log")
        raise RuntimeError(f"direct model server did not start:\n{why}")
    log(f"direct baseline: modelport serve pid {p.pid} on port {port}")
    return p, port


def run_gateway(ctx, pf: Platform, res: dict) -> None:
    a = ctx.args
    rep, replica_port = deploy_gw_service(ctx, pf)
    direct, direct_port = start_direct(ctx)
    v2 = f"/v2/models/{GW_SERVICE}/infer"
    host = f"Host: {GW_SERVICE}.{NS}.{DOMAIN}"
    auth = f"Authorization: Bearer {pf.token}"
    variants = {  # name -> (port, path, headers, platform pid, replica pid)
        "host": (pf.port, v2, [auth, host], pf.proc.pid, rep),
        "serving": (pf.port, f"/serving/{NS}/{GW_SERVICE}{v2}", [auth], pf.proc.pid, rep),
        "direct": (direct_port, v2, [], None, direct.pid),
    }
    setup = {"replica_pid": rep, "replica_port": replica_port, "direct_pid": direct.pid}
    checks = {}
    for name, (port, path, hdrs, _, _) in variants.items():
        headers = dict(h.split(": ", 1) for h in hdrs)
        why = check_v2(port, path, ctx.v2_body, ctx.expected, headers)
        checks[name] = {"ok": not why, "detail": why or "200, predictions match"}
        log(f"  check {name}: {'OK' if not why else 'FAILED: ' + why}")
    st, _, _ = procs.http_req(
        pf.port,
        "POST",
        v2,
        ctx.v2_body,
        {
            "Host": f"{GW_SERVICE}.{NS}.{DOMAIN}",
            "Content-Type": "application/json",
            "Accept": "application/json",
        },
    )
    checks["no_token_refused"] = {"ok": st in (302, 401), "detail": f"HTTP {st}"}
    res["gateway"]["checks"] = checks
    if not all(c["ok"] for c in checks.values()):
        raise RuntimeError("gateway checks failed: " + json.dumps(checks))
    res["gateway"]["setup"] = setup

    runs = {v: {lvl: [] for lvl in LEVELS} for v in variants}
    names = list(variants)
    for rnd in range(a.repeat):
        order = names[rnd % len(names) :] + names[: rnd % len(names)]
        wait_quiet()
        log(f"gateway round {rnd + 1}/{a.repeat}: {', '.join(order)}")
        for name in order:
            port, path, hdrs, ppid, rpid = variants[name]
            url = f"http://{HOST}:{port}{path}"
            if a.warmup:
                wrk(url, ctx.v2_file, hdrs, 2, 64, a.warmup)
            for lvl, (t, c) in LEVELS.items():
                r = measured(
                    lambda url=url, hdrs=hdrs, t=t, c=c: wrk(
                        url, ctx.v2_file, hdrs, t, c, a.duration
                    ),
                    ppid,
                    rpid,
                )
                runs[name][lvl].append(r)
                log(f"  {name} {lvl}: {fmt(r)}")
        if pf.proc.poll() is not None or len(pf.replicas()) != 1:
            raise RuntimeError(f"{pf.name}: platform exited or replicas changed under load")
    res["gateway"]["variants"] = {
        v: {lvl: median_round(runs[v][lvl]) for lvl in LEVELS} for v in variants
    }
    res["gateway"]["all_runs"] = runs
    if a.profile_seconds:
        port, path, hdrs, _, _ = variants["host"]
        wait_quiet()
        log(f"py-spy {a.profile_seconds} s on {pf.name} during c=64 Host-header load")
        res["gateway"]["profile"] = pyspy(
            pf.proc.pid,
            a.profile_seconds,
            ctx.work / f"pyspy-gateway-{pf.name}.txt",
            load=[
                "wrk",
                "-t2",
                "-c64",
                f"-d{a.profile_seconds + 3}s",
                "-s",
                str(load.LUA_POST),
                f"http://{HOST}:{port}{path}",
                "--",
                str(ctx.v2_file),
                "application/json",
                *hdrs,
            ],
        )


def summarize_gateway(g: dict) -> None:
    v = g.get("variants") or {}
    ratios = {}
    for lvl in LEVELS:
        base = (v.get("direct") or {}).get(lvl) or {}
        for name in ("host", "serving"):
            r = (v.get(name) or {}).get(lvl) or {}
            if base.get("status") != "ok" or r.get("status") != "ok" or not base.get("rps"):
                continue
            rr = ratios.setdefault(lvl, {})[name] = {
                "rps_ratio": round(r["rps"] / base["rps"], 3),
                "added_p50_ms": round(r["p50_ms"] - base["p50_ms"], 3),
                "added_p99_ms": round(r["p99_ms"] - base["p99_ms"], 3),
            }
            pairs = [
                (round(x / y, 3), round(p - q, 3))
                for x, y, p, q in zip(
                    r.get("runs_rps") or [],
                    base.get("runs_rps") or [],
                    r.get("runs_p50_ms") or [],
                    base.get("runs_p50_ms") or [],
                    strict=False,
                )
                if x and y and p is not None and q is not None
            ]
            if pairs:
                rr["per_round_ratio"] = [p[0] for p in pairs]
                rr["per_round_added_p50_ms"] = [p[1] for p in pairs]
                rr["per_round_ratio_median"] = round(statistics.median(p[0] for p in pairs), 3)
            cpu_g = r.get("platform_cpu_us_per_req_median", r.get("platform_cpu_us_per_req"))
            cpu_r = r.get("replica_cpu_us_per_req_median", r.get("replica_cpu_us_per_req"))
            cpu_d = base.get("replica_cpu_us_per_req_median", base.get("replica_cpu_us_per_req"))
            if cpu_g and cpu_r and cpu_d:
                # servers' CPU per request direct ÷ via the gateway: the req/s ratio if the
                # servers' CPU alone set the pace (wrk excluded)
                rr["server_cpu_ratio"] = round(cpu_d / (cpu_g + cpu_r), 3)
    g["ratios"] = ratios


# =========================================================================== 3. scale
def time_cli(pf: Platform, args: list[str], n: int) -> dict:
    times, out = [], ""
    for _ in range(n):
        t0 = time.monotonic()
        r = pf.cli(*args)
        times.append(round((time.monotonic() - t0) * 1000, 1))
        out = r.stdout
    return {"cmd": "modelport " + " ".join(args), "lines": len(out.splitlines()), **dist(times, 1)}


def time_api(pf: Platform, path: str, n: int) -> dict:
    """Sequential GETs, each on a new connection (as the CLI makes them)."""
    times, size = [], 0
    for _ in range(n):
        t0 = time.monotonic()
        st, _, data = pf.api("GET", path)
        times.append(round((time.monotonic() - t0) * 1000, 2))
        if st != 200:
            raise RuntimeError(f"GET {path}: HTTP {st}")
        size = len(data)
    return {"path": path, "bytes": size, **dist(times, 2)}


def time_api_keepalive(pf: Platform, path: str, n: int) -> dict:
    """Sequential GETs on one keep-alive connection (as a dashboard or a script would)."""
    times = []
    conn = http.client.HTTPConnection(HOST, pf.port, timeout=60)
    try:
        for _ in range(n):
            t0 = time.monotonic()
            conn.request("GET", path, headers={"Authorization": f"Bearer {pf.token}"})
            r = conn.getresponse()
            r.read()
            times.append(round((time.monotonic() - t0) * 1000, 2))
    finally:
        conn.close()
    return {"path": path, **dist(times[1:] or times, 2)}


def import_time(pf: Platform) -> dict:
    """`python -X importtime -m modelport get isvc -A`: where CLI start-up time goes."""
    r = subprocess.run(
        [pf.py, "-X", "importtime", "-m", "modelport", "get", "isvc", "-A"],
        capture_output=True,
        text=True,
        env=pf.env,
        timeout=120,
    )
    top = []
    for line in r.stderr.splitlines():
        m = re.match(r"import time:\s+(\d+) \|\s+(\d+) \| (\S.*)$", line)
        if m and not m.group(3).startswith(" "):
            top.append((int(m.group(2)), m.group(3).strip()))
    top.sort(reverse=True)
    return {
        "total_ms": round(sum(c for c, _ in top) / 1000, 1),
        "top": [{"module": n, "ms": round(c / 1000, 1)} for c, n in top[:8]],
    }


def snapshot(ctx, pf: Platform, label: str) -> dict:
    """Memory, idle CPU, CLI and API timings of the platform as it is now."""
    a = ctx.args
    time.sleep(2.0)
    foreign = wait_quiet()
    out = {"label": label, "foreign_cores_before": foreign}
    out["services"] = len(pf.api_json("/api/v1/inferenceservices")["items"])
    out["replicas"] = len(pf.replicas())
    out["platform_mem"] = proc_memory(pf.proc.pid)
    out["zygote_mem"] = proc_memory(pf.zygote)
    c0, t0 = cpu_seconds(pf.proc.pid), time.monotonic()
    time.sleep(a.idle_seconds)
    out["idle_cpu_cores"] = round((cpu_seconds(pf.proc.pid) - c0) / (time.monotonic() - t0), 3)
    watch = Watch()
    out["cli_version"] = time_cli(pf, ["version"], a.cli_runs)
    out["cli_get_all"] = time_cli(pf, ["get", "isvc", "-A"], a.cli_runs)
    out["api_list_all"] = time_api(pf, "/api/v1/inferenceservices", a.api_runs)
    out["api_list_all_keepalive"] = time_api_keepalive(
        pf, "/api/v1/inferenceservices", min(a.api_runs, 11)
    )
    out["foreign_cores"] = watch.foreign_cores()
    log(
        f"  [{label}] {out['services']} services, platform RSS "
        f"{out['platform_mem']['rss_mib']} MiB, zygote RSS {out['zygote_mem']['rss_mib']} MiB, "
        f"idle CPU {out['idle_cpu_cores']} cores; `get isvc -A` p50 "
        f"{out['cli_get_all']['p50']} ms (`version` {out['cli_version']['p50']} ms); "
        f"API list p50 {out['api_list_all']['p50']} ms ({out['api_list_all']['bytes']} B)"
    )
    return out


def run_scale(ctx, pf: Platform, res: dict) -> None:
    a = ctx.args
    sc = res["scale"]
    sc["at_0"] = snapshot(ctx, pf, "0 services")
    sc["import_time"] = import_time(pf)
    n, per_ns = a.services, 50
    names = [(f"scale-{i // per_ns}", f"svc-{i:03d}") for i in range(n)]
    ann = {"autoscaling.knative.dev/initial-scale": "0", "autoscaling.knative.dev/window": "6s"}
    docs = [
        isvc_doc(s, ns, ctx.model_dir, predictor={"minReplicas": 0}, annotations=ann)
        for ns, s in names
    ]
    files = []
    for b in range(0, n, a.apply_batch):
        f = ctx.work / f"scale-{b:03d}.yaml"
        f.write_text("---\n".join(docs[b : b + a.apply_batch]))
        files.append(f)
    peak = [0]
    stop = threading.Event()

    def monitor():
        while not stop.is_set():
            peak[0] = max(peak[0], len(pf.replicas()))
            stop.wait(0.2)

    mon = threading.Thread(target=monitor, daemon=True)
    mon.start()
    wait_quiet()
    log(f"scale: applying {n} services in {len(files)} files of {a.apply_batch}")
    apply_ms = []
    t0 = time.monotonic()
    try:
        for f in files:
            s = time.monotonic()
            pf.cli("apply", "-f", str(f))
            apply_ms.append(round((time.monotonic() - s) * 1000, 1))
        t_applied = time.monotonic() - t0
        want = set(names)

        def all_idle_ready():
            st = services_state(pf)
            return all(st.get(k) == (True, 0) for k in want)

        ok = wait_for(all_idle_ready, 300, 0.25)
        t_ready = time.monotonic() - t0
    finally:
        stop.set()
        mon.join(5)
    if not ok:
        raise RuntimeError(f"{n} services not all Ready with 0 replicas in 300 s:\n{pf.tail()}")
    sc["apply"] = {
        "services": n,
        "namespaces": len({ns for ns, _ in names}),
        "files": len(files),
        "per_file": a.apply_batch,
        "apply_ms": dist(apply_ms, 1),
        "apply_total_s": round(t_applied, 2),
        "all_ready_zero_s": round(t_ready, 2),
        "after_last_apply_s": round(t_ready - t_applied, 2),
        "peak_replicas": peak[0],
    }
    log(
        f"scale: applied in {t_applied:.1f} s (per apply p50 {sc['apply']['apply_ms']['p50']} ms),"
        f" all {n} Ready with 0 replicas after {t_ready:.1f} s; peak replicas {peak[0]}"
    )
    sc["at_n"] = snapshot(ctx, pf, f"{n} services")
    if a.profile_seconds:
        log(f"py-spy on {a.cli_runs} runs of `modelport get isvc -A` with {n} services")
        sc["profile_cli"] = cli_profile(pf, ["get", "isvc", "-A"], a.cli_runs, ctx.work)
    sc["api_get_one"] = time_api(
        pf, f"/api/v1/namespaces/{names[0][0]}/inferenceservices/{names[0][1]}", a.api_runs
    )
    sc["api_list_ns"] = time_api(pf, f"/api/v1/namespaces/{names[0][0]}/inferenceservices", 10)
    if a.profile_seconds:
        wait_quiet()
        log(f"py-spy {a.profile_seconds} s on the platform, idle with {n} services")
        sc["profile_idle"] = pyspy(pf.proc.pid, a.profile_seconds, ctx.work / "pyspy-idle.txt")
        get_lua = ctx.work / "get.lua"
        lua = load.LUA_POST.read_text().replace('wrk.method = "POST"', 'wrk.method = "GET"')
        get_lua.write_text(
            lua.replace(
                'wrk.headers["Content-Type"] = args[2]',
                'if args[2] ~= "" then wrk.headers["Content-Type"] = args[2] end',
            )
        )
        empty = ctx.work / "empty"
        empty.write_bytes(b"")
        log(f"py-spy {a.profile_seconds} s on the platform during GET /api/v1/inferenceservices")
        sc["profile_list"] = pyspy(
            pf.proc.pid,
            a.profile_seconds,
            ctx.work / "pyspy-list.txt",
            load=[
                "wrk",
                "-t1",
                "-c1",
                f"-d{a.profile_seconds + 3}s",
                "-s",
                str(get_lua),
                f"http://{HOST}:{pf.port}/api/v1/inferenceservices",
                "--",
                str(empty),
                "",
                f"Authorization: Bearer {pf.token}",
            ],
        )
    if a.cold200_tries:
        wait_quiet()
        tries = []
        for ns, s in names[: a.cold200_tries]:
            t = cold_try(pf, ns, s, ctx.v1_body, ctx.expected)
            tries.append(t)
            log(f"  cold (with {n} services) {s}: {t['total_s'] * 1000:.0f} ms, HTTP {t['status']}")
            time.sleep(ctx.args.cold_gap)
        sc["cold_with_n"] = {"tries": tries, "summary": summarize_cold(tries)}


# =========================================================================== profiling
CLI_PHASES = (  # (phase of a CLI run, test on the sampled stack's frames), first match wins
    (
        "typer's parameter conversion: `typer._adapters` imports pydantic and builds a "
        "TypeAdapter per option (typer 0.29)",
        lambda st: any("typer/_adapters" in f or "typer/_coercion" in f for f in st),
    ),
    (
        "the HTTP request (urllib, the API's answer)",
        lambda st: any(f.startswith(("urlopen ", "HTTPConnection", "HTTPResponse")) for f in st),
    ),
    ("the table (`_render`)", lambda st: any(f.startswith("_render ") for f in st)),
    (
        "rest of the command (config, token, JSON decode)",
        lambda st: any(f.startswith("Command.__call__ ") for f in st),
    ),
    (
        "typer building the click command tree (`get_command`)",
        lambda st: any(f.startswith("get_command ") for f in st),
    ),
    ("imports at start (`modelport.cli.main` → typer, click…) and the rest", lambda st: True),
)
CLI_OWN = ("the HTTP request", "the table", "rest of the command")  # the rest: every command


def cli_profile(pf: Platform, args: list[str], runs: int, out_dir: Path) -> dict:
    """py-spy (1000 Hz, --nonblocking) over `runs` runs of the CLI command; samples per
    phase of the run, in ms per run (py-spy starting the process adds its own delay)."""
    spy = shutil.which("py-spy")
    if not spy:
        return {"status": "skipped", "reason": "py-spy not found"}
    rate, files = 1000, []
    for i in range(runs):
        out = out_dir / f"pyspy-cli-{i}.txt"
        files.append(out)
        r = subprocess.run(
            [spy, "record", "-r", str(rate), "--nonblocking", "--nolineno", "-f", "raw"]
            + ["-o", str(out), "--", *pf.cli_bin, *args],
            capture_output=True,
            text=True,
            env=pf.env,
            cwd=pf.dir,
            timeout=60,
        )
        if r.returncode != 0 or not out.exists():
            return {"status": "error", "detail": (r.stderr or r.stdout)[-400:]}
    return {"status": "ok", "cmd": "modelport " + " ".join(args), **cli_phases(files, rate)}


def _stacks(path: Path):
    """(frames, samples) of each line of a py-spy raw file, without process/thread frames."""
    for line in path.read_text().splitlines():
        stack, _, n = line.rpartition(" ")
        if n.isdigit():
            skip = ("process ", "thread ")
            yield [f for f in stack.split(";") if f and not f.startswith(skip)], int(n)


def cli_phases(files: list[Path], rate: int) -> dict:
    phases, total, runs = collections.Counter(), 0, len(files)
    for path in files:
        for frames, n in _stacks(path):
            total += n
            if not frames:
                phases["interpreter start-up and shutdown (no Python frame)"] += n
                continue
            phases[next(name for name, test in CLI_PHASES if test(frames))] += n
    return {
        "runs": runs,
        "rate_hz": rate,
        "ms_per_run": round(total * 1000 / rate / runs, 1),
        "phases": [
            {"phase": k, "ms": round(n / rate * 1000 / runs, 1), "pct": round(100 * n / total, 1)}
            for k, n in phases.most_common()
        ],
    }


def pyspy(pid: int, seconds: int, out: Path, load: list[str] | None = None) -> dict:
    """py-spy record of `pid` (200 Hz, --nonblocking), optionally while `load` runs."""
    spy = shutil.which("py-spy")
    if not spy:
        return {"status": "skipped", "reason": "py-spy not found"}
    proc = None
    if load:
        proc = subprocess.Popen(
            load, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
        )
        time.sleep(1.5)
    rate = 200
    try:
        r = subprocess.run(
            [spy, "record", "-p", str(pid), "-d", str(seconds), "-r", str(rate), "--nonblocking"]
            + ["--nolineno", "-f", "raw", "-o", str(out)],
            capture_output=True,
            text=True,
            timeout=seconds + 60,
        )
    finally:
        if proc is not None:
            try:
                proc.wait(timeout=seconds + 30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
    if r.returncode != 0 or not out.exists():
        return {"status": "error", "detail": (r.stderr or r.stdout)[-400:]}
    self_c, incl, pkg = collections.Counter(), collections.Counter(), collections.Counter()
    part = collections.Counter()
    total = 0
    for frames, n in _stacks(out):
        if not frames:
            continue
        total += n
        self_c[frames[-1]] += n
        pkg[frame_package(frames[-1])] += n
        part[frame_part(frames[-1])] += n
        for f in set(frames):
            if "(modelport/" in f or "sqlalchemy/orm" in f:
                incl[f] += n

    def top(c, k):
        return [{"frame": f, "pct": round(100 * n / total, 1)} for f, n in c.most_common(k)]

    return {
        "status": "ok",
        "samples": total,
        "seconds": seconds,
        "rate_hz": rate,
        # samples of a thread that was not idle ÷ samples possible: how busy the process was
        "busy_fraction": round(total / (seconds * rate), 3),
        "raw": str(out),
        "self": top(self_c, 10),
        "self_by_package": top(pkg, 8),
        "inclusive": top(incl, 14),
        "by_part": [{"part": f, "pct": round(100 * n / total, 1)} for f, n in part.most_common()],
    }


PARTS = (  # (part of the platform, what the frame's file path starts with)
    (
        "proxy (gateway/proxy.py, connections.py)",
        ("modelport/gateway/proxy", "modelport/gateway/connections"),
    ),
    ("gateway: routing, auth, paths", ("modelport/gateway/", "modelport/identity/")),
    ("control plane, store", ("modelport/control/", "sqlalchemy/", "json/")),
    (
        "uvicorn (HTTP server; its `send` includes uvloop's socket write, C code)",
        ("uvicorn/", "httptools/", "h11/", "starlette/"),
    ),
    (
        "event loop (uvloop's C loop shows as `Runner.run`: epoll, reads, callbacks) / asyncio",
        ("asyncio/", "uvloop/", "selectors.py", "socket.py"),
    ),
)


def frame_part(frame: str) -> str:
    """Which part of the platform a py-spy frame (`func (path)`) belongs to."""
    m = re.search(r"\(([^()]*)\)$", frame)
    path = m.group(1) if m else ""
    for name, prefixes in PARTS:
        if path.startswith(prefixes):
            return name
    return "other"


# =========================================================================== report
def summarize(res: dict) -> None:
    if res.get("gateway"):
        summarize_gateway(res["gateway"])
    t = []
    cs = (res.get("cold") or {}).get("summary") or {}
    if cs.get("total_s", {}).get("n"):
        p50 = cs["total_s"]["p50"]
        t.append(
            {
                "item": "cold start p50 (scaled to zero → response)",
                "value": f"{p50 * 1000:.0f} ms",
                "target": f"≤ {TARGETS['cold_p50_s'] * 1000:.0f} ms",
                "met": p50 <= TARGETS["cold_p50_s"],
            }
        )
    rt = (res.get("gateway") or {}).get("ratios") or {}
    for name in ("host", "serving"):
        r64 = (rt.get("c64") or {}).get(name)
        if r64:
            t.append(
                {
                    "item": f"{GW_LABELS[name]}: req/s ÷ direct, c=64",
                    "value": f"{r64['rps_ratio']:.2f}",
                    "target": f"≥ {TARGETS['gateway_ratio']:.2f}",
                    "met": r64["rps_ratio"] >= TARGETS["gateway_ratio"],
                }
            )
        r1 = (rt.get("c1") or {}).get(name)
        if r1:
            t.append(
                {
                    "item": f"{GW_LABELS[name]}: added p50 latency, c=1",
                    "value": f"{r1['added_p50_ms']:.2f} ms",
                    "target": f"≤ {TARGETS['gateway_added_p50_ms']:.1f} ms",
                    "met": r1["added_p50_ms"] <= TARGETS["gateway_added_p50_ms"],
                }
            )
    at_n = (res.get("scale") or {}).get("at_n")
    if at_n:
        p50 = at_n["cli_get_all"]["p50"]
        t.append(
            {
                "item": f"`modelport get isvc -A` p50, {at_n['services']} services",
                "value": f"{p50:.0f} ms",
                "target": f"< {TARGETS['get_isvc_ms']:.0f} ms",
                "met": p50 < TARGETS["get_isvc_ms"],
            }
        )
        sc, a0 = res["scale"], res["scale"].get("at_0") or {}
        ap = sc.get("apply") or {}
        t.append(
            {
                "item": f"`GET /api/v1/inferenceservices` p50, {at_n['services']} services "
                "(0 services)",
                "value": f"{at_n['api_list_all']['p50']:.1f} ms "
                f"({(a0.get('api_list_all') or {}).get('p50', 0):.1f} ms)",
                "target": "—",
                "met": None,
            }
        )
        if ap:
            t.append(
                {
                    "item": f"{ap['services']} services applied → all Ready with 0 replicas",
                    "value": f"{ap['all_ready_zero_s']:.1f} s",
                    "target": "—",
                    "met": None,
                }
            )
        if a0:
            t.append(
                {
                    "item": f"RSS platform / zygote, {at_n['services']} idle services (0 services)",
                    "value": f"{at_n['platform_mem']['rss_mib']:.0f} / "
                    f"{at_n['zygote_mem']['rss_mib']:.0f} MiB "
                    f"({a0['platform_mem']['rss_mib']:.0f} / {a0['zygote_mem']['rss_mib']:.0f})",
                    "target": "—",
                    "met": None,
                }
            )
    res["targets"] = t


def _v(d: dict | None, key: str, f: str = ".0f", scale: float = 1.0) -> str:
    if not d or d.get(key) is None:
        return "—"
    return format(d[key] * scale, f)


def _ms(d: dict | None, key: str) -> str:
    return _v(d, key, ".0f", 1000.0)


def write_md(res: dict, path: Path, json_path: Path) -> None:
    m = res["meta"]
    mc = m["machine"]
    L = ["# Control-plane benchmark: cold start, gateway routing, 200 services\n"]
    L.append(
        f"Date: {m['date']}. Machine: {mc['cpu']}, {mc['nproc']} CPUs, {mc['mem_gib']} GiB, "
        f"Linux {mc['kernel']}, Python {mc['python']}; {m.get('wrk')}; modelport "
        f"{m.get('modelport')} (git {m.get('git')}"
        + (f"; uncommitted changes by others in: {', '.join(m['dirty'])}" if m.get("dirty") else "")
        + f"). Total run time {m.get('runtime_s', '?')} s.\n"
    )
    L.append(f"Command: `{m['command']}`\n")
    if m.get("interrupted") or m.get("error"):
        L.append(f"**Run incomplete**: {m.get('error') or 'interrupted'}.\n")
    L.append(
        f"wrk, the platform, its replicas and this harness all share the machine's "
        f"{mc['nproc']} CPUs: absolute numbers are low and move ±30 % between runs; compare "
        "only within this run. Every measurement records the CPU used by other processes "
        f"(`/proc/stat`); wrk runs above {FOREIGN_LIMIT} cores are redone.\n"
    )
    L.append("## Summary\n")
    L.append("| item | measured | target | met |")
    L.append("|---|---:|---:|---|")
    for t in res.get("targets", []):
        met = {True: "yes", False: "**no**", None: "—"}[t["met"]]
        L.append(f"| {t['item']} | {t['value']} | {t['target']} | {met} |")
    L.append("")
    write_cold(res, L)
    write_gateway(res, L)
    write_scale(res, L)
    shown = json_path.relative_to(REPO) if json_path.is_relative_to(REPO) else json_path
    L.append(f"\nRaw numbers: `{shown}`; platform and server logs, py-spy stacks beside it.")
    path.write_text("\n".join(L) + "\n")


def write_cold(res: dict, L: list[str]) -> None:
    c = res.get("cold") or {}
    if not c:
        return
    s, su = c.get("summary") or {}, c.get("setup") or {}
    sv = c.get("serve") or {}
    L.append("## 1. Cold start (scale from zero)\n")
    if s.get("total_s", {}).get("n"):
        tt = s["total_s"]
        L.append(
            f"{s['ok']} of {s['tries']} tries answered 200 with the right prediction. "
            f"Request sent → response read: **p50 {tt['p50'] * 1000:.0f} ms**, "
            f"p90 {tt['p90'] * 1000:.0f} ms, max {tt['max'] * 1000:.0f} ms "
            f"(min {tt['min'] * 1000:.0f} ms).\n"
        )
        L.append("| part | p50 ms | p90 ms | max ms |")
        L.append("|---|---:|---:|---:|")
        for k, label in (
            ("total_s", "request sent → response (the measure)"),
            (
                "to_fork_s",
                "request sent → replica forked (gateway, activator, controller; 10 ms steps)",
            ),
            ("fork_to_answer_s", "replica forked → response (server start, readiness poll, proxy)"),
            ("server_ready_in_s", "of which: the replica's own start→ready (its log)"),
        ):
            d = s.get(k) or {}
            L.append(f"| {label} | {_ms(d, 'p50')} | {_ms(d, 'p90')} | {_ms(d, 'max')} |")
        L.append("")
    if sv.get("status") == "ok":
        L.append(
            f"For context, a plain `modelport serve` (iris, 1 worker, new process) from spawn "
            f"to `/v2/health/ready` 200: p50 **{sv['p50'] * 1000:.0f} ms** (each of "
            f"{sv['n']}: {', '.join(f'{x:.2f}' for x in sv['times_s'])} s) — "
            + (
                f"{sv['p50'] / s['total_s']['p50']:.1f}× the cold start through the platform.\n"
                if s.get("total_s", {}).get("p50")
                else "\n"
            )
        )
    cw = ((res.get("scale") or {}).get("cold_with_n") or {}).get("summary") or {}
    if cw.get("total_s", {}).get("n"):
        tt = cw["total_s"]
        n = (res.get("scale") or {}).get("apply", {}).get("services", "?")
        L.append(
            f"With {n} idle services registered (scale section; services never started, "
            f"initial-scale 0): p50 {tt['p50'] * 1000:.0f} ms, p90 {tt['p90'] * 1000:.0f} ms, "
            f"max {tt['max'] * 1000:.0f} ms over {cw['ok']}/{cw['tries']} tries; request → fork "
            f"p50 {_ms(cw.get('to_fork_s'), 'p50')} ms.\n"
        )
    L.append(
        "How measured: one `modelport up --scale-to-zero-grace "
        f"{res['meta'].get('grace')}`; {su.get('services', '?')} InferenceServices "
        '(sklearn iris, `minReplicas: 0`, `autoscaling.knative.dev/window: "6s"`, local '
        f"storageUri) applied {su.get('apply_batch', '?')} at a time, each batch waited for "
        f"until Ready with 1 replica ({su.get('started_once_s', '?')} s for all), then until "
        "every service reports 0 replicas and the zygote has no child left "
        f"({su.get('all_zero_s', '?')} s after the first apply). Then, one service at a time "
        f"with {res['meta'].get('cold_gap')} s between tries, one V1 `:predict` through "
        "`/serving/bench/NAME/...` with the Bearer token, on a new connection, timed from "
        "before connect until the body is read. The fork time is the replica's start time "
        "from `/proc/PID/stat` (10 ms steps) against CLOCK_BOOTTIME at send; 'server "
        "start→ready' is the `ready in X s` line the replica logs. Replicas of earlier tries "
        "are still scaling down (idle) during later ones. CPU used by other processes during "
        f"the tries: {c.get('foreign_cores', '?')} cores.\n"
    )
    if c.get("tries"):
        L.append(
            "Each try (ms): "
            + ", ".join(
                f"{t['total_s'] * 1000:.0f}" + ("" if t["ok"] else " (failed)") for t in c["tries"]
            )
            + ".\n"
        )


def write_gateway(res: dict, L: list[str]) -> None:
    g = res.get("gateway") or {}
    if not g.get("variants"):
        return
    m = res["meta"]
    L.append("## 2. Gateway routing overhead\n")
    L.append(
        "| path | conns | req/s | p50 ms | p99 ms | errors | platform CPU µs/req "
        "| replica CPU µs/req | wrk CPU µs/req |"
    )
    L.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name in GW_VARIANTS:
        for lvl in LEVELS:
            r = (g["variants"].get(name) or {}).get(lvl) or {}
            if r.get("status") != "ok":
                L.append(f"| {GW_LABELS[name]} | {lvl[1:]} | {r.get('status', '—')} |||||||")
                continue
            L.append(
                f"| {GW_LABELS[name]} | {lvl[1:]} | {r['rps']:,.0f} | {r['p50_ms']:.2f} | "
                f"{r['p99_ms']:.2f} | {r['errors']} | "
                + (f"{_v(r, 'platform_cpu_us_per_req_median')} | " if name != "direct" else "— | ")
                + f"{_v(r, 'replica_cpu_us_per_req_median')} | "
                + f"{_v(r, 'wrk_cpu_us_per_req_median')} |"
                + (" †" if r.get("suspect") else "")
            )
    rt = g.get("ratios") or {}
    L.append("\nRatios to the model server direct (same run):\n")
    L.append(
        "| path | conns | req/s ratio (median rounds) | each round | added p50 ms "
        "| each round | added p99 ms | server CPU ratio |"
    )
    L.append("|---|---:|---:|---|---:|---|---:|---:|")
    for name in ("host", "serving"):
        for lvl in LEVELS:
            r = (rt.get(lvl) or {}).get(name)
            if not r:
                continue
            L.append(
                f"| {GW_LABELS[name]} | {lvl[1:]} | {r['rps_ratio']:.2f} | "
                f"{' / '.join(f'{x:.2f}' for x in r.get('per_round_ratio', []))} | "
                f"{r['added_p50_ms']:+.2f} | "
                f"{' / '.join(f'{x:+.2f}' for x in r.get('per_round_added_p50_ms', []))} | "
                f"{r['added_p99_ms']:+.2f} | {r.get('server_cpu_ratio', '—')} |"
            )
    L.append(
        "\nHow measured: on the cold-start platform, one iris InferenceService "
        f"`{GW_SERVICE}` (`minReplicas: 1`, `maxReplicas: 1`, so the autoscaler cannot add a "
        "replica under load). wrk posts the same V2 JSON infer (2 iris rows) through the "
        f"platform's gateway with `Authorization: Bearer` (from `modelport token`) — with "
        f"`Host: {GW_SERVICE}.{NS}.{DOMAIN}` to `/v2/models/{GW_SERVICE}/infer`, and to "
        f"`/serving/{NS}/{GW_SERVICE}/v2/...` — and straight to `modelport serve` of the same "
        "model with a replica's arguments (a replica answers only requests carrying its key, "
        "which only the gateway holds). `-t2 -c64`, "
        f"`-t2 -c8`, `-t1 -c1`, {m['duration_s']} s each after {m['warmup_s']} s of c=64 "
        f"warm-up, {m['repeat']} interleaved rounds (order rotated), the median round by req/s "
        "kept. CPU µs/req: CPU time of the `modelport up` process (gateway, auth, routing, "
        "controller — one process, one event loop), of the replica, and of wrk, over the "
        "measurement ÷ requests (medians over rounds). 'server CPU ratio' = replica CPU per "
        "request direct ÷ (platform + replica) via the gateway: the req/s ratio if only the "
        "servers' CPU set the pace. The replica is one process (`--workers 1`, as the platform "
        "runs it), so direct c=64 leaves a core to wrk while via the gateway two busy "
        "processes and wrk share 2 cores.\n"
    )
    c1 = (g["variants"].get("host") or {}).get("c1") or {}
    if c1.get("p50_ms", 0) > 30:
        L.append(
            f"The gateway's c=1 p50 of {c1['p50_ms']:.0f} ms on a keep-alive connection looks "
            "like a Nagle / delayed-ACK stall (~40 ms on Linux): a response written in two parts "
            "waiting for the client's ACK of the first.\n"
        )
    write_where(g, L, int(m["machine"]["nproc"]))
    p = g.get("profile") or {}
    if p.get("status") == "ok":
        L.append(
            f"py-spy on the platform process under c=64 Host-header load ({p['samples']} "
            f"samples, {p['seconds']} s, busy {100 * p['busy_fraction']:.0f} % of the time). "
            "Self time by library: "
            + ", ".join(f"`{f['frame']}` {f['pct']} %" for f in p["self_by_package"])
            + ".\n"
        )
        write_frames(p, L)
    elif p:
        L.append(f"py-spy: {p.get('status')}: {p.get('reason') or p.get('detail')}\n")


def write_where(g: dict, L: list[str], cores: int) -> None:
    """Where the time goes at c=64: CPU per request of each process, and the platform's
    py-spy samples grouped by part."""
    v, rt = g["variants"], g.get("ratios") or {}
    h, d = (v.get("host") or {}).get("c64") or {}, (v.get("direct") or {}).get("c64") or {}
    r64 = (rt.get("c64") or {}).get("host") or {}
    if not r64:
        return
    pf = h.get("platform_cpu_us_per_req_median")
    rep = h.get("replica_cpu_us_per_req_median")
    wk = h.get("wrk_cpu_us_per_req_median")
    rd = d.get("replica_cpu_us_per_req_median")
    wd = d.get("wrk_cpu_us_per_req_median")
    if not (pf and rep and wk and rd and wd):
        return
    L.append("### Where the time goes (c=64, Host header)\n")
    L.append("| CPU µs per request | platform | replica | wrk | sum | cores busy at the req/s |")
    L.append("|---|---:|---:|---:|---:|---:|")
    for label, r, a, b, c in (
        ("via the gateway", h, pf, rep, wk),
        ("model server direct", d, 0.0, rd, wd),
    ):
        tot = a + b + c
        L.append(
            f"| {label} | {a:.0f} | {b:.0f} | {c:.0f} | {tot:.0f} | {tot * r['rps'] / 1e6:.2f} |"
        )
    L.append("")
    parts = ", ".join(
        f"{x['part']} {x['pct']} %" for x in ((g.get("profile") or {}).get("by_part") or [])
    )
    L.append(
        f"Through the gateway a request costs {pf + rep + wk:.0f} µs of CPU on the machine "
        f"against {rd + wd:.0f} µs direct ({(pf + rep + wk) / (rd + wd):.1f}×): the platform "
        f"process adds {pf:.0f} µs and the replica spends {rep:.0f} µs instead of {rd:.0f}. "
        f"With all {cores} cores busy and shared by the three, that allows at most "
        f"{cores * 1e6 / (pf + rep + wk):,.0f} req/s "
        f"({cores * 1e6 / (pf + rep + wk) / d['rps']:.2f}× direct); the platform is one event "
        f"loop, so it could not pass {1e6 / pf:,.0f} req/s "
        f"even with a core of its own ({1e6 / pf / d['rps']:.2f}× direct)."
        + (f" The platform's py-spy samples by part: {parts}." if parts else "")
        + "\n"
    )


def write_frames(p: dict, L: list[str], n_self: int = 6, n_incl: int = 10) -> None:
    L.append("| self % | frame |")
    L.append("|---:|---|")
    for f in p["self"][:n_self]:
        L.append(f"| {f['pct']} | `{f['frame']}` |")
    L.append("\n| incl. % | modelport / SQLAlchemy ORM frame |")
    L.append("|---:|---|")
    for f in p["inclusive"][:n_incl]:
        L.append(f"| {f['pct']} | `{f['frame']}` |")
    L.append("")


def write_scale(res: dict, L: list[str]) -> None:
    sc = res.get("scale") or {}
    a0, an, ap = sc.get("at_0"), sc.get("at_n"), sc.get("apply")
    if not a0:
        return
    n = ap["services"] if ap else "?"
    L.append(f"## 3. Control plane with {n} InferenceServices\n")
    if ap:
        L.append(
            f"Applying {n} services (in {ap['namespaces']} namespaces, {ap['files']} `modelport "
            f"apply -f` calls of {ap['per_file']} documents): {ap['apply_total_s']} s for the "
            f"applies (each p50 {ap['apply_ms']['p50']:.0f} ms, max {ap['apply_ms']['max']:.0f} "
            f"ms); all {n} reported Ready with 0 replicas **{ap['all_ready_zero_s']} s** after "
            f"the first apply ({ap['after_last_apply_s']} s after the last). Replicas started "
            f'meanwhile: {ap["peak_replicas"]} at most (`initial-scale: "0"` is honoured).\n'
        )
    rows = [a0] + ([an] if an else [])
    L.append("| | " + " | ".join(r["label"] for r in rows) + " |")
    L.append("|---|" + "---:|" * len(rows))

    def row(label, fn):
        L.append(f"| {label} | " + " | ".join(fn(r) for r in rows) + " |")

    row("`modelport get isvc -A` wall p50 / p90 ms", lambda r: _pp(r["cli_get_all"]))
    row(
        "`modelport version` wall p50 / p90 ms (CLI start-up floor)",
        lambda r: _pp(r["cli_version"]),
    )
    row("`GET /api/v1/inferenceservices` p50 / p90 ms", lambda r: _pp(r["api_list_all"], 1))
    row("… response size", lambda r: f"{r['api_list_all']['bytes'] / 1024:,.0f} KiB")
    row(
        "… the same on one keep-alive connection, p50 / p90 ms",
        lambda r: _pp(r["api_list_all_keepalive"], 1),
    )
    row("platform (`modelport up`) RSS / PSS MiB", lambda r: _mem(r["platform_mem"]))
    row("zygote RSS / PSS MiB", lambda r: _mem(r["zygote_mem"]))
    row("platform CPU while idle (cores)", lambda r: f"{r['idle_cpu_cores']:.3f}")
    row("replica processes", lambda r: str(r["replicas"]))
    L.append("")
    if an:
        added = max(an["services"] - a0["services"], 1)
        d_rss = (an["platform_mem"]["rss_mib"] - a0["platform_mem"]["rss_mib"]) * 1024 / added
        d_list = (an["api_list_all"]["p50"] - a0["api_list_all"]["p50"]) * 1000 / added
        L.append(
            f"Per service: platform RSS {d_rss:+.0f} KiB; `GET /api/v1/inferenceservices` "
            f"{d_list:+.0f} µs. One service (`GET .../inferenceservices/NAME`) p50 "
            f"{sc['api_get_one']['p50']:.1f} ms; one namespace of 50 p50 "
            f"{sc['api_list_ns']['p50']:.1f} ms.\n"
        )
    if an:
        extra = (an["idle_cpu_cores"] - a0["idle_cpu_cores"]) * 1000
        cw = ((sc.get("cold_with_n") or {}).get("summary") or {}).get("to_fork_s") or {}
        c0 = (((res.get("cold") or {}).get("summary") or {}).get("to_fork_s")) or {}
        nc = ((res.get("cold") or {}).get("setup") or {}).get("services", "?")
        L.append(
            f"Idle, the platform used {an['idle_cpu_cores']:.3f} cores with {n} services "
            f"against {a0['idle_cpu_cores']:.3f} with none ({extra:+.0f} ms of CPU per second; "
            "the idle py-spy below shows where)"
            + (
                f"; request → replica fork in a cold start took p50 {cw['p50'] * 1000:.0f} ms "
                f"here against {c0['p50'] * 1000:.0f} ms on the platform with {nc} services"
                if cw.get("p50") is not None and c0.get("p50") is not None
                else ""
            )
            + ".\n"
        )
    ka = (a0.get("api_list_all_keepalive") or {}).get("p50")
    if ka and ka > 30:
        L.append(
            f"The {ka:.0f} ms on a keep-alive connection with 0 services looks like a Nagle / "
            "delayed-ACK stall (a small response written in two parts).\n"
        )
    it = sc.get("import_time")
    if it:
        g0 = a0["cli_get_all"]["p50"] - a0["cli_version"]["p50"]
        L.append(
            f"`modelport get isvc -A` is {a0['cli_version']['p50']:.0f} ms of CLI start-up "
            f"(`modelport version`) plus {g0:.0f} ms with 0 services (the `get` command's own "
            "imports, the request, the table); the API request itself is the row above. "
        )
        L.append(
            f"CLI start-up: `python -X importtime -m modelport get isvc -A` spends "
            f"{it['total_ms']:.0f} ms importing; largest top-level imports: "
            + ", ".join(f"`{x['module']}` {x['ms']:.0f} ms" for x in it["top"][:6])
            + " (a module listed with no parent is imported while the command runs).\n"
        )
    pc = sc.get("profile_cli") or {}
    if pc.get("status") == "ok" and an:
        g = an["cli_get_all"]["p50"]
        L.append(f"### Where the time of `{pc['cmd']}` goes ({an['services']} services)\n")
        L.append(
            f"Wall p50 {g:.0f} ms (target < {TARGETS['get_isvc_ms']:.0f} ms); `modelport "
            f"version` {an['cli_version']['p50']:.0f} ms. py-spy ({pc['rate_hz']} Hz, "
            f"`--nonblocking`) over {pc['runs']} runs, {pc['ms_per_run']:.0f} ms of samples per "
            "run, by phase (first match from the top):\n"
        )
        L.append("| phase | ms per run | % |")
        L.append("|---|---:|---:|")
        for x in pc["phases"]:
            L.append(f"| {x['phase']} | {x['ms']:.1f} | {x['pct']} |")
        own = sum(x["ms"] for x in pc["phases"] if x["phase"].startswith(CLI_OWN))
        top = pc["phases"][0]
        L.append(
            f"\nThe command's own work (request, JSON, table, with {an['services']} services) "
            f"is {own:.0f} ms of the {pc['ms_per_run']:.0f}; the rest is start-up that every "
            f"CLI command pays, the largest part being {top['phase'].split(':')[0]} "
            f"({top['ms']:.0f} ms per run).\n"
        )
    elif pc:
        L.append(f"py-spy of the CLI: {pc.get('status')}: {pc.get('reason') or pc.get('detail')}\n")
    for key, title in (
        ("profile_list", "serving `GET /api/v1/inferenceservices` back to back (wrk c=1)"),
        ("profile_idle", "idle"),
    ):
        p = sc.get(key) or {}
        if p.get("status") == "ok":
            L.append(
                f"py-spy on the platform with {n} services, {title}: {p['samples']} samples "
                f"in {p['seconds']} s at {p['rate_hz']} Hz (busy {100 * p['busy_fraction']:.0f}"
                " % of the time). Self time by library: "
                + ", ".join(f"`{f['frame']}` {f['pct']} %" for f in p["self_by_package"][:6])
                + ".\n"
            )
            write_frames(p, L)
        elif p:
            L.append(f"py-spy ({title}): {p.get('status')}: {p.get('reason') or p.get('detail')}\n")
    L.append(
        "How measured: a second, fresh `modelport up` (new data dir). Snapshot with 0 services, "
        f"then {n} sklearn iris InferenceServices (`minReplicas: 0`, annotations "
        '`autoscaling.knative.dev/initial-scale: "0"` and `window: "6s"`, all with the '
        "same local storageUri) applied with the CLI, 50 per namespace; a thread counts the "
        "zygote's live children every 0.2 s; the control API is polled every 0.25 s until "
        "every service is Ready with `status.replicas` 0. Each snapshot, after waiting for a "
        "quiet machine: RSS and PSS of the `modelport up` process and of its zygote child "
        "(`/proc/PID/status`, `smaps_rollup`), the platform's CPU over "
        f"{res['meta'].get('idle_seconds')} s of no requests, then `modelport version` and "
        f"`modelport get isvc -A` (console script, wall time of the whole process, "
        f"{res['meta'].get('cli_runs')} runs each, sequential) and "
        f"{res['meta'].get('api_runs')} sequential `GET /api/v1/inferenceservices` with the "
        "Bearer token, each on a new connection (time to the last byte). py-spy samples the "
        "platform process at 200 Hz (`--nonblocking`); 'busy' = samples ÷ (seconds × rate), "
        "py-spy dropping idle samples.\n"
    )


def _pp(d: dict, nd: int = 0) -> str:
    return f"{d['p50']:.{nd}f} / {d['p90']:.{nd}f}"


def _mem(d: dict) -> str:
    return f"{d.get('rss_mib') or 0:.0f} / {d.get('pss_mib') or 0:.0f}"


# =========================================================================== main
class Ctx:
    pass


def main(argv=None) -> int:
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
    if args.render:
        res = json.loads(Path(args.render).read_text())
        summarize(res)
        write_md(res, Path(args.results_md), Path(args.render).resolve())
        log(f"wrote {args.results_md} from {args.render}")
        return 0
    if results.git_state()["uncommitted_changes"] and not args.render:
        if not args.allow_dirty:
            print(f"error: {REPO} has uncommitted changes; see --allow-dirty", file=sys.stderr)
            return 2
        if args.results_md == str(BENCH / "CONTROL.md"):
            args.results_md = str(results.SCRATCH_DIR / "CONTROL.md")
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
        (1 <= args.services <= 1000, "--services 1..1000"),
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
    if not shutil.which("wrk") and "gateway" in only:
        print("wrk not found: run bash bench/setup_peers.sh", file=sys.stderr)
        return 2

    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _on_signal)
    atexit.register(stop_everything)
    py = args.modelport_python
    # py-spy and the console script live beside the platform's interpreter.
    os.environ["PATH"] = str(Path(py).parent) + os.pathsep + os.environ.get("PATH", "")
    os.environ["PYTHONUNBUFFERED"] = "1"
    os.environ["PYTHONPATH"] = servers.modelport_env()["PYTHONPATH"]

    ctx = Ctx()
    ctx.args = args
    ctx.py = py
    ctx.work = Path(args.work_dir).resolve()
    ctx.logs = ctx.work / "logs"
    ctx.logs.mkdir(parents=True, exist_ok=True)
    published = not results.git_state()["uncommitted_changes"]
    default_json = (results.RESULTS_DIR if published else results.SCRATCH_DIR) / "control.json"
    json_path = Path(args.results_json) if args.results_json else default_json
    dirty = subprocess.run(
        ["git", "-C", str(REPO), "status", "--porcelain", "--", "modelport"],
        capture_output=True,
        text=True,
    ).stdout.split("\n")
    res = {
        "meta": {
            "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC"),
            "command": " ".join(
                ["python -m bench.control", *(argv if argv is not None else sys.argv[1:])]
            ),
            "machine": machine_info(),
            "wrk": results.machine()["wrk"],
            "modelport": servers.dist_version(Path(py), "modelport"),
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
            "loadavg_start": procs.loadavg()[0],
        },
        "cold": {},
        "gateway": {},
        "scale": {},
    }
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


def run_all(ctx, only: set[str], res: dict) -> None:
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
