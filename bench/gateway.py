#!/usr/bin/env python3
"""Gateway benchmark (issue "Identity"): what authentication costs in the gateway.

    python bench/gateway.py                          # 10 s per measurement, median of 3
    python bench/gateway.py --duration 3 --repeat 1  # quick check of the whole pipeline
    python bench/gateway.py --logins-only            # re-measure the logins only (see below)

One model server (sklearn iris, 1 worker) and two gateways in front of it, all on
127.0.0.1: one with authentication (its identity provider at /dex, a Dex config with a
static user) and one started with --no-auth. wrk then loads, at c=64 and c=1, the same
V2 JSON infer through the same namespaced path /serving/bench/sklearn-iris/... :

    noauth   the --no-auth gateway                      (the reference of the ratios)
    bearer   Authorization: Bearer <ID token from the password grant>
    cookie   Cookie: authservice_session=<session from the five-step login>
    apitoken Authorization: Bearer mpt_... (`modelport tokens create`, role view)
    direct   straight to the model server (no gateway)

Rounds are interleaved (every variant once per round, the order rotated each round) so
that drift of the machine hits every variant alike; each variant keeps its median round.
Then logins at 50 connections: the password grant (POST /dex/token) and the login page
(GET /dex/auth, a 302 that creates an auth request); and py-spy samples both gateways
under c=64 load. Writes bench/GATEWAY.md and bench/.work/gateway/results.json.
Standard library only (the servers run in --modelport-python); reuses bench/run.py.

--logins-only skips the inference rounds and their profiles, and merges the new login
figures into the results JSON of the last full run: GATEWAY.md keeps that run's inference
numbers and shows each login p99 next to the one it replaces (kept as "before" until the
next full run).
"""

from __future__ import annotations

import argparse
import atexit
import base64
import collections
import datetime as dt
import http.client
import importlib.util
import json
import os
import re
import resource
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
from functools import partial
from pathlib import Path
from urllib.parse import urlencode

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent

_spec = importlib.util.spec_from_file_location("bench_run", BENCH / "run.py")
br = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(br)
bm = br.bm
log = br.log
HOST = br.HOST
MODEL = br.MODEL
NAMESPACE = "bench"

# Kubeflow's example user and the gateway's client, as in tests/identity/conftest.py.
USER_EMAIL = "user@example.com"
USER_PASSWORD = "12341234"
USER_HASH = "$2y$12$4K/VkmDd1q1Orb3xAt82zu8gk7Ad6ReFR4LCP9UeYE90NLiN9Df72"
CLIENT_ID = "kubeflow-oidc-authservice"
CLIENT_SECRET = "pUBnBOY80SnXgjibTYM9ZWNzY2xreNGQok"
DEX_CONFIG = f"""\
issuer: http://dex.auth.svc.cluster.local:5556/dex
storage:
  type: kubernetes
oauth2:
  skipApprovalScreen: true
enablePasswordDB: true
staticPasswords:
- email: {USER_EMAIL}
  hash: "{USER_HASH}"
  username: user
  userID: "15841185641784"
  groups: [team-a]
staticClients:
- id: {CLIENT_ID}
  redirectURIs: ["/login/oidc", "/authservice/oidc/callback"]
  name: 'Dex Login Application'
  secret: {CLIENT_SECRET}
"""

INFER_PATH = f"/serving/{NAMESPACE}/{MODEL}/v2/models/{MODEL}/infer"
DIRECT_PATH = f"/v2/models/{MODEL}/infer"
LOGIN_PAGE = (
    f"/dex/auth?client_id={CLIENT_ID}&redirect_uri=%2Flogin%2Foidc"
    "&response_type=code&scope=openid&state=x"
)
VARIANTS = ("noauth", "bearer", "cookie", "apitoken", "direct")
AUTH_VARIANTS = ("bearer", "cookie", "apitoken")
LABELS = {
    "noauth": "gateway --no-auth",
    "bearer": "Bearer ID token",
    "cookie": "session cookie",
    "apitoken": "API token (mpt_)",
    "direct": "model server direct",
}
LEVELS = {"c64": (2, 64), "c1": (1, 1)}
TARGET = 0.90
READY_TIMEOUT = 60.0


# =========================================================================== helpers
def raw_req(port: int, method: str, path: str, body: bytes | None = None, headers=None):
    """(status, [(name, value), ...], body): every header kept (several Set-Cookie)."""
    conn = http.client.HTTPConnection(HOST, port, timeout=30)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        r = conn.getresponse()
        return r.status, [(k.lower(), v) for k, v in r.getheaders()], r.read()
    finally:
        conn.close()


def header(hdrs, name: str) -> str | None:
    return next((v for k, v in hdrs if k == name), None)


def run_cli(py: str, args: list[str], cwd: Path) -> str:
    r = subprocess.run(
        [py, "-m", "modelport", *args], capture_output=True, text=True, timeout=120, cwd=cwd
    )
    if r.returncode != 0:
        raise RuntimeError(f"modelport {' '.join(args)}: {(r.stderr or r.stdout)[-600:]}")
    return r.stdout


def wait_http(p: subprocess.Popen, port: int, path: str, t0: float) -> float | None:
    while time.monotonic() - t0 < READY_TIMEOUT:
        if p.poll() is not None:
            return None
        try:
            if br.http_req(port, "GET", path, timeout=1.0)[0] == 200:
                return time.monotonic() - t0
        except (OSError, http.client.HTTPException):
            pass
        time.sleep(0.05)
    return None


def start(ctx, name: str, cmd: list[str], port: int, ready_path: str) -> subprocess.Popen:
    log_path = ctx.logs / f"{name}.log"
    cwd = ctx.work / "cwd" / name
    cwd.mkdir(parents=True, exist_ok=True)
    log(f"{name}: starting: {' '.join(cmd)}")
    t0 = time.monotonic()
    p = br.spawn(cmd, log_path, cwd=cwd)
    ready = wait_http(p, port, ready_path, t0)
    if ready is None:
        code = p.poll()
        br.kill_tree(p)
        raise RuntimeError(
            f"{name} not ready ({'exit code ' + str(code) if code is not None else 'timeout'});"
            f" log {log_path}:\n{br.tail(log_path)}"
        )
    log(f"{name}: ready in {ready:.2f} s")
    return p


def wrk(
    url: str,
    script: Path,
    script_args: list[str],
    threads: int,
    conns: int,
    duration: int,
    timeout_s: int = 10,
) -> dict:
    """wrk with a BENCHJSON-printing Lua script; the same fields as run.py's run_wrk."""
    la = br.loadavg()
    cmd = ["wrk", f"-t{threads}", f"-c{conns}", f"-d{duration}s", "--latency"]
    cmd += ["--timeout", f"{timeout_s}s", "-s", str(script), url, "--", *script_args]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + timeout_s + 60)
    m = re.search(r"^BENCHJSON (\{.*\})$", r.stdout, re.M)
    if r.returncode != 0 or not m:
        return {"status": "error", "detail": (r.stderr or r.stdout)[-500:], "cmd": cmd}
    d = json.loads(m.group(1))
    secs = d["duration_us"] / 1e6
    sock = d["err_connect"] + d["err_read"] + d["err_write"] + d["err_timeout"]
    non2xx = d["err_status"]  # wrk counts status > 399: a 302 is a success here
    return {
        "status": "ok",
        "threads": threads,
        "connections": conns,
        "concurrency": conns,
        "requests": d["requests"],
        "seconds": round(secs, 3),
        "nominal_seconds": duration,
        "rps": round(d["requests"] / secs, 1) if secs else 0.0,
        "p50_ms": round(d["p50_us"] / 1000, 2),
        "p90_ms": round(d["p90_us"] / 1000, 2),
        "p99_ms": round(d["p99_us"] / 1000, 2),
        "max_ms": round(d["max_us"] / 1000, 2),
        "mean_ms": round(d["mean_us"] / 1000, 3),
        "non2xx": non2xx,
        "socket_errors": sock,
        "errors": non2xx + sock,
        "loadavg_before": la,
    }


FOREIGN_LIMIT = 0.25  # cores of CPU used by other processes that make a run "disturbed"


class CpuWatch:
    """CPU used on the machine by processes other than ours (servers, wrk, this harness).

    Busy time from /proc/stat minus our process trees, our waited-for children (wrk) and
    ourselves: with 2 CPUs shared by load generator and servers, a test suite or a build
    running beside the benchmark shifts the numbers more than anything measured here.
    """

    def __init__(self):
        self.t0 = time.monotonic()
        self.busy0, self.ours0 = self._busy(), self._ours()

    @staticmethod
    def _busy() -> float:
        f = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        idle = f[3] + (f[4] if len(f) > 4 else 0)
        return (sum(f[:8]) - idle) / os.sysconf("SC_CLK_TCK")

    @staticmethod
    def _ours() -> float:
        ch, me = (
            resource.getrusage(resource.RUSAGE_CHILDREN),
            resource.getrusage(resource.RUSAGE_SELF),
        )
        trees = sum(br.tree_cpu_seconds(pid) for pid in list(br._LIVE))
        return trees + ch.ru_utime + ch.ru_stime + me.ru_utime + me.ru_stime

    def foreign_cores(self) -> float:
        secs = max(time.monotonic() - self.t0, 1e-3)
        return round(max(0.0, (self._busy() - self.busy0) - (self._ours() - self.ours0)) / secs, 2)


def wait_quiet(limit_s: float = 120.0) -> float | None:
    """Wait until other processes use < FOREIGN_LIMIT cores over 3 s; their last reading."""
    t0 = time.monotonic()
    while True:
        w = CpuWatch()
        time.sleep(3.0)
        f = w.foreign_cores()
        if f < FOREIGN_LIMIT:
            return f
        if time.monotonic() - t0 > limit_s:
            log(f"  machine still busy ({f} cores used by other processes); going on")
            return f
        log(f"  waiting for a quiet machine ({f} cores used by other processes)")


def measured(fn, cpu_sid: int | None = None, attempts: int = 3) -> dict:
    """One measurement, redone (up to `attempts` in all) when it fails run.py's consistency
    check or other processes used more than FOREIGN_LIMIT cores meanwhile; with cpu_sid,
    also the CPU time that process tree spent per request."""
    for attempt in range(attempts):
        cpu0 = br.tree_cpu_seconds(cpu_sid) if cpu_sid else None
        watch = CpuWatch()
        r = fn()
        r["foreign_cores"] = watch.foreign_cores()
        if cpu_sid and r.get("status") == "ok" and r["requests"]:
            r["gateway_cpu_us_per_req"] = round(
                (br.tree_cpu_seconds(cpu_sid) - cpu0) * 1e6 / r["requests"], 1
            )
        why = br.suspect_reason(r)
        if not why and r["foreign_cores"] > FOREIGN_LIMIT:
            why = f"other processes used {r['foreign_cores']} cores meanwhile"
        if not why:
            return r
        log(
            f"  disturbed ({why}); "
            + ("retrying" if attempt < attempts - 1 else "kept, flagged suspect")
        )
        r["suspect"] = why
        if "other processes" in why and attempt < attempts - 1:
            time.sleep(5.0)  # give the other work a moment
    return r


def median_of(runs: list[dict]) -> dict:
    ok = [r for r in runs if r.get("status") == "ok"]
    ok = sorted([r for r in ok if not r.get("suspect")] or ok, key=lambda r: r["rps"])
    if not ok:
        return runs[-1]
    best = dict(ok[len(ok) // 2])
    if len(runs) > 1:
        best["runs_rps"] = [r.get("rps") for r in runs]  # in round order
        best["runs_cpu_us_per_req"] = [r.get("gateway_cpu_us_per_req") for r in runs]
    return best


def fmt(r: dict) -> str:
    if r.get("status") != "ok":
        return f"{r.get('status')}: {r.get('detail', '')}"
    cpu = r.get("gateway_cpu_us_per_req")
    return (
        f"{r['rps']:.0f} req/s, p50 {r['p50_ms']:.2f} ms, p99 {r['p99_ms']:.2f} ms, "
        f"errors {r['errors']}"
        + (f", gateway CPU {cpu:.0f} µs/req" if cpu else "")
        + (f", other processes {r['foreign_cores']} cores" if r.get("foreign_cores") else "")
    )


def pct(sorted_vals: list[float], q: float) -> float:
    return br._percentile(sorted_vals, q) if sorted_vals else 0.0


def thread_load(
    port: int,
    method: str,
    path: str,
    body: bytes | None,
    headers: dict,
    conns: int,
    duration: int,
    ok_status: tuple = (200,),
    drain_s: float = 120.0,
) -> dict:
    """Closed loop of `conns` threads (one keep-alive connection each) for `duration` s.

    Unlike wrk, the requests still in flight when the time is up are waited for (up to
    drain_s) and counted: with slow requests (a password hash each) and 50 connections a
    10 s wrk run would keep only the first, least-queued answers and understate p99.
    """
    lat, bad, t_done = [], [0], [0.0]
    lock = threading.Lock()
    t0 = time.monotonic()
    end = t0 + duration

    def client():
        conn = http.client.HTTPConnection(HOST, port, timeout=drain_s)
        try:
            while time.monotonic() < end:
                s = time.monotonic()
                try:
                    conn.request(method, path, body=body, headers=headers)
                    r = conn.getresponse()
                    r.read()
                    good = r.status in ok_status
                except (OSError, http.client.HTTPException):
                    conn.close()
                    conn = http.client.HTTPConnection(HOST, port, timeout=drain_s)
                    good = False
                e = time.monotonic()
                with lock:
                    lat.append((e - s) * 1000)
                    t_done[0] = max(t_done[0], e)
                    if not good:
                        bad[0] += 1
        finally:
            conn.close()

    la = br.loadavg()
    threads = [threading.Thread(target=client, daemon=True) for _ in range(conns)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(duration + drain_s + 5)
    lat.sort()
    secs = (t_done[0] - t0) if lat else float(duration)
    return {
        "status": "ok",
        "tool": "python threads (in-flight requests drained and counted)",
        "connections": conns,
        "concurrency": conns,
        "requests": len(lat),
        "seconds": round(secs, 3),
        "nominal_seconds": duration,
        "rps": round(len(lat) / secs, 2) if secs else 0.0,
        "p50_ms": round(pct(lat, 50), 1),
        "p90_ms": round(pct(lat, 90), 1),
        "p99_ms": round(pct(lat, 99), 1),
        "max_ms": round(lat[-1], 1) if lat else 0.0,
        "mean_ms": round(sum(lat) / len(lat), 1) if lat else 0.0,
        "errors": bad[0],
        "loadavg_before": la,
    }


class Probe:
    """One Bearer infer through the gateway every `every` s, in a thread, while logins run:
    does login work stall the requests already signed in?"""

    def __init__(self, port: int, path: str, body: bytes, headers: dict, every: float = 0.1):
        self.args = (port, path, body, headers)
        self.every = every
        self.lat: list[float] = []
        self.bad = 0
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        port, path, body, headers = self.args
        while not self._stop.is_set():
            s = time.monotonic()
            try:
                st, _, _ = raw_req(port, "POST", path, body, headers)
                if st != 200:
                    self.bad += 1
            except (OSError, http.client.HTTPException):
                self.bad += 1
            self.lat.append((time.monotonic() - s) * 1000)
            self._stop.wait(self.every)

    def __enter__(self):
        self._t.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._t.join(150)

    def result(self) -> dict:
        lat = sorted(self.lat)
        return {
            "requests": len(lat),
            "p50_ms": round(pct(lat, 50), 1),
            "p99_ms": round(pct(lat, 99), 1),
            "max_ms": round(lat[-1], 1) if lat else 0.0,
            "errors": self.bad,
        }


def wait_idle(sid: int, limit_s: float = 120.0) -> float:
    """Wait until the process tree stops using CPU (a backlog of queued logins drained)."""
    t0 = time.monotonic()
    prev = br.tree_cpu_seconds(sid)
    while time.monotonic() - t0 < limit_s:
        time.sleep(0.5)
        cur = br.tree_cpu_seconds(sid)
        if cur - prev < 0.05:
            return time.monotonic() - t0
        prev = cur
    return time.monotonic() - t0


# =========================================================================== credentials
def password_grant(port: int, scope: str = "openid email groups") -> dict:
    form = urlencode(
        {
            "grant_type": "password",
            "username": USER_EMAIL,
            "password": USER_PASSWORD,
            "scope": scope,
        }
    ).encode()
    st, _, data = raw_req(
        port,
        "POST",
        "/dex/token",
        form,
        {"Content-Type": "application/x-www-form-urlencoded", "Authorization": basic_auth()},
    )
    if st != 200:
        raise RuntimeError(f"password grant: HTTP {st}: {data[:300]!r}")
    return json.loads(data)


def basic_auth() -> str:
    return "Basic " + base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()


def cookie_login(port: int) -> str:
    """The five-step manual flow (no redirects followed, no cookies kept); the session."""
    target = f"/serving/{NAMESPACE}/{MODEL}/v2/models/{MODEL}"
    st, h, _ = raw_req(port, "GET", target, headers={"Accept": "*/*"})
    if st != 302:
        raise RuntimeError(f"login step 1: HTTP {st}, expected 302 to the login page")
    st, h, _ = raw_req(port, "GET", header(h, "location"))
    m = re.search(r"req=([\w-]+)", header(h, "location") or "")
    if st != 302 or not m:
        raise RuntimeError(f"login step 2: HTTP {st}, location {header(h, 'location')}")
    form = urlencode({"login": USER_EMAIL, "password": USER_PASSWORD}).encode()
    st, h, _ = raw_req(
        port,
        "POST",
        f"/dex/auth/local?req={m.group(1)}",
        form,
        {"Content-Type": "application/x-www-form-urlencoded"},
    )
    if st != 303:
        raise RuntimeError(f"login step 3: HTTP {st}, expected 303")
    st, h, _ = raw_req(port, "GET", header(h, "location"))
    callback = header(h, "location") or ""
    if st != 303 or not callback.startswith("/login/oidc?code="):
        raise RuntimeError(f"login step 4: HTTP {st}, location {callback}")
    st, h, _ = raw_req(port, "GET", callback)
    for k, v in h:
        if k == "set-cookie" and v.startswith("authservice_session="):
            return v.split(";")[0].split("=", 1)[1]
    raise RuntimeError(f"login step 5: HTTP {st}, no authservice_session cookie")


def check_infer(port: int, path: str, headers: list[str], body: bytes, expected) -> str:
    hd = {"Content-Type": "application/json"}
    for h in headers:
        k, v = h.split(":", 1)
        hd[k] = v.strip()
    st, _, data = raw_req(port, "POST", path, body, hd)
    if st != 200:
        return f"HTTP {st}: {data[:200]!r}"
    out = json.loads(data)["outputs"][0]
    if not br.same_predictions(out["data"], expected):
        return f"wrong predictions {out['data']} (expected {expected})"
    return ""


# =========================================================================== profiling
def frame_package(frame: str) -> str:
    """The library a py-spy frame belongs to: `uvicorn`, `modelport/gateway`, `asyncio`..."""
    m = re.search(r"\(([^()]*)\)$", frame)
    path = m.group(1) if m else ""
    parts = path.split("/")
    if parts[0] == "modelport" and len(parts) > 2:
        return "/".join(parts[:2])
    return parts[0] if len(parts) > 1 else path or "?"


# Inclusive time is listed for these frames only (the outer entry chain is ~100 % anyway).
INCLUSIVE_OF = (
    "modelport/gateway/",
    "modelport/identity/",
)


def profile(
    pid: int, url: str, script: Path, script_args: list[str], conns: int, seconds: int, out: Path
) -> dict:
    """py-spy on `pid` for `seconds` during wrk load; top frames (self and inclusive)."""
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(spy).exists() and not shutil.which(spy):
        return {"status": "skipped", "reason": "py-spy not found (pip install py-spy)"}
    load = subprocess.Popen(
        [
            "wrk",
            "-t2",
            f"-c{conns}",
            f"-d{seconds + 3}s",
            "-s",
            str(script),
            url,
            "--",
            *script_args,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        time.sleep(1.5)
        r = subprocess.run(
            [
                spy,
                "record",
                "-p",
                str(pid),
                "-d",
                str(seconds),
                "-r",
                "200",
                "--nonblocking",
                "--nolineno",
                "-f",
                "raw",
                "-o",
                str(out),
            ],
            capture_output=True,
            text=True,
            timeout=seconds + 60,
        )
    finally:
        try:
            load.wait(timeout=seconds + 30)
        except subprocess.TimeoutExpired:
            os.killpg(load.pid, signal.SIGKILL)
            load.wait()
    if r.returncode != 0 or not out.exists():
        return {"status": "error", "detail": (r.stderr or r.stdout)[-400:]}
    self_c, incl, pkg = collections.Counter(), collections.Counter(), collections.Counter()
    loop = collections.Counter()  # event-loop thread: leaf frame <- innermost modelport frame
    total = loop_total = 0
    for line in out.read_text().splitlines():
        stack, _, n = line.rpartition(" ")
        if not stack or not n.isdigit():
            continue
        n = int(n)
        frames = [f for f in stack.split(";") if not f.startswith(("process ", "thread "))]
        if not frames:
            continue
        total += n
        self_c[frames[-1]] += n
        pkg[frame_package(frames[-1])] += n
        for f in set(frames):
            if any(k in f for k in INCLUSIVE_OF):
                incl[f] += n
        if any(f.startswith("Runner.run ") for f in frames):
            loop_total += n
            ours = next((f for f in reversed(frames) if "(modelport/" in f), None)
            leaf = frames[-1].split(" (")[0]
            loop[leaf + (f" ← {ours.split(' (')[0]}" if ours and ours != frames[-1] else "")] += n

    def top(c, k):
        return [{"frame": f, "pct": round(100 * n / total, 1)} for f, n in c.most_common(k)]

    return {
        "status": "ok",
        "samples": total,
        "seconds": seconds,
        "raw": str(out),
        "self": top(self_c, 12),
        "self_by_package": top(pkg, 8),
        "inclusive": top(incl, 15),
        "loop_samples": loop_total,
        "loop_top": [
            {"frame": f, "pct_of_loop": round(100 * n / loop_total, 1)}
            for f, n in loop.most_common(8)
        ]
        if loop_total
        else [],
    }


# =========================================================================== main
def shown_command(argv: list[str]) -> str:
    """The command line for the report, without --note (which the report shows by itself)."""
    shown, skip = [], False
    for a in argv:
        if skip or a.startswith("--note="):
            skip = False
            continue
        if a == "--note":
            skip = True
            continue
        shown.append(shlex.quote(a))
    return " ".join(["python bench/gateway.py", *shown])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--duration", type=int, default=10, help="seconds per measurement")
    ap.add_argument("--warmup", type=int, default=2, help="unrecorded c=64 seconds before each")
    ap.add_argument("--repeat", type=int, default=3, help="rounds; each variant keeps its median")
    ap.add_argument("--login-conns", type=int, default=50)
    ap.add_argument("--login-duration", type=int, default=None, help="default: --duration")
    ap.add_argument("--profile-seconds", type=int, default=5, help="py-spy seconds (0: none)")
    ap.add_argument("--modelport-python", default=str(REPO / ".venv" / "bin" / "python"))
    ap.add_argument("--work-dir", default=str(BENCH / ".work" / "gateway"))
    ap.add_argument("--results-md", default=str(BENCH / "GATEWAY.md"))
    ap.add_argument("--results-json", default=None, help="default: WORK_DIR/results.json")
    ap.add_argument("--render", metavar="JSON", help="only write --results-md from a results.json")
    ap.add_argument(
        "--logins-only",
        action="store_true",
        help="only the logins (and their profiles), merged into the last full run's results",
    )
    ap.add_argument("--note", default="", help="--logins-only: one line on what changed")
    args = ap.parse_args(argv)
    if args.render:
        res = json.loads(Path(args.render).read_text())
        summarize(res)
        write_md(res, Path(args.results_md), Path(args.render).resolve())
        log(f"wrote {args.results_md} from {args.render}")
        return 0
    if not 1 <= args.duration <= 120 or not 1 <= args.repeat <= 9:
        ap.error("--duration 1..120, --repeat 1..9")
    if not 0 <= args.warmup <= 30 or not 0 <= args.profile_seconds <= 30:
        ap.error("--warmup 0..30, --profile-seconds 0..30")
    if not 1 <= args.login_conns <= 500:
        ap.error("--login-conns 1..500")
    args.login_duration = args.login_duration or args.duration
    if not 1 <= args.login_duration <= 120:
        ap.error("--login-duration 1..120")
    if not shutil.which("wrk"):
        print("wrk not found: run bash bench/setup_peers.sh", file=sys.stderr)
        return 2

    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, br._on_signal)
    atexit.register(br.kill_all)
    os.environ["PYTHONUNBUFFERED"] = "1"

    class Ctx:
        pass

    ctx = Ctx()
    ctx.work = Path(args.work_dir).resolve()
    ctx.logs = ctx.work / "logs"
    ctx.logs.mkdir(parents=True, exist_ok=True)
    json_path = Path(args.results_json) if args.results_json else ctx.work / "results.json"
    py = args.modelport_python

    res = {
        "meta": {
            "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC"),
            "command": shown_command(argv if argv is not None else sys.argv[1:]),
            "machine": br.machine_info(),
            "wrk": br.tool_versions().get("wrk"),
            "modelport": br.py_version(Path(py), "modelport"),
            "git": subprocess.run(
                ["git", "-C", str(REPO), "describe", "--always", "--dirty"],
                capture_output=True,
                text=True,
            ).stdout.strip(),
            "duration_s": args.duration,
            "warmup_s": args.warmup,
            "repeat": args.repeat,
            "login_conns": args.login_conns,
            "login_duration_s": args.login_duration,
            "loadavg_start": br.loadavg(),
            "path": INFER_PATH,
        },
        "variants": {},
        "logins": {},
        "profiles": {},
    }
    interrupted = False
    try:
        run_all(ctx, args, py, res)
    except KeyboardInterrupt:
        interrupted = True
        res["meta"]["interrupted"] = True
        log("interrupted: stopping servers")
    except Exception as e:  # noqa: BLE001 - report what was measured
        res["meta"]["error"] = f"{type(e).__name__}: {e}"
        log(f"ERROR: {type(e).__name__}: {e}")
    finally:
        br.kill_all()
    if args.logins_only:
        res = merge_logins(res, json_path, args.note)
    summarize(res)
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps(res, indent=2) + "\n")
    write_md(res, Path(args.results_md), json_path)
    log(f"wrote {args.results_md} and {json_path}")
    if interrupted:
        return 130
    return 1 if res["meta"].get("error") else 0


def run_all(ctx, args, py: str, res: dict) -> None:
    # ---- inputs
    model_dir = ctx.work / "models" / "iris"
    br.build_with(Path(py), "iris", model_dir)
    expected = json.loads(bm.expected_path(model_dir).read_text())["predictions"]
    bm.build_json_bodies(ctx.work)
    body_file = ctx.work / "bodies" / "v2.json"
    body = body_file.read_bytes()
    form_file = ctx.work / "bodies" / "password_grant.form"
    form_file.write_text(
        urlencode(
            {
                "grant_type": "password",
                "username": USER_EMAIL,
                "password": USER_PASSWORD,
                "scope": "openid email",
            }
        )
    )
    empty_file = ctx.work / "bodies" / "empty"
    empty_file.write_bytes(b"")
    # wrk GET script: post.lua with the method changed (same BENCHJSON summary)
    get_lua = ctx.work / "get.lua"
    lua = br.LUA_POST.read_text()
    assert 'wrk.method = "POST"' in lua
    get_lua.write_text(
        lua.replace('wrk.method = "POST"', 'wrk.method = "GET"').replace(
            'wrk.headers["Content-Type"] = args[2]',
            'if args[2] ~= "" then wrk.headers["Content-Type"] = args[2] end',
        )
    )
    config = ctx.work / "dex.yaml"
    config.write_text(DEX_CONFIG)
    data = {k: ctx.work / f"data-{k}" for k in ("auth", "noauth")}
    for d in data.values():
        shutil.rmtree(d, ignore_errors=True)
        d.mkdir(parents=True)

    # ---- processes: model server, gateway with auth, gateway --no-auth
    mp_port, ga_port, gn_port = br.free_ports(3)
    server = start(
        ctx,
        "model-server",
        [
            py,
            "-m",
            "modelport",
            "serve",
            str(model_dir),
            "--name",
            MODEL,
            "--http-port",
            str(mp_port),
            "--grpc-port",
            "-1",
            "--workers",
            "1",
        ],
        mp_port,
        "/v2/health/ready",
    )
    upstream = f"http://{HOST}:{mp_port}"

    def gw_cmd(port, d, *extra):
        return [
            py,
            "-m",
            "modelport",
            "gateway",
            "--upstream",
            upstream,
            "--data-dir",
            str(d),
            "--config",
            str(config),
            "--port",
            str(port),
            *extra,
        ]

    gw = start(ctx, "gateway-auth", gw_cmd(ga_port, data["auth"]), ga_port, "/healthz")
    gn = start(
        ctx, "gateway-noauth", gw_cmd(gn_port, data["noauth"], "--no-auth"), gn_port, "/healthz"
    )
    lines = (ctx.logs / "gateway-auth.log").read_text(errors="replace").splitlines()
    res["meta"]["gateway_banner"] = [
        ln.strip() for ln in lines if "gateway:" in ln or "issuer" in ln or "discovery" in ln
    ][:3]
    res["meta"]["processes"] = {
        "model_server": br.session_pids(server.pid),
        "gateway_auth": br.session_pids(gw.pid),
        "gateway_noauth": br.session_pids(gn.pid),
    }

    # ---- credentials
    cwd = ctx.work / "cwd" / "cli"
    cwd.mkdir(parents=True, exist_ok=True)
    run_cli(
        py,
        ["namespaces", "create", NAMESPACE, "--owner", USER_EMAIL, "--data-dir", str(data["auth"])],
        cwd,
    )
    out = run_cli(
        py,
        [
            "tokens",
            "create",
            "--namespace",
            NAMESPACE,
            "--role",
            "view",
            "--owner",
            USER_EMAIL,
            "--data-dir",
            str(data["auth"]),
        ],
        cwd,
    )
    m = re.search(r"\bmpt_\S+", out)
    if not m:
        raise RuntimeError(f"no mpt_ token in `tokens create` output: {out!r}")
    api_token = m.group(0)
    t0 = time.monotonic()
    id_token = password_grant(ga_port)["id_token"]
    res["meta"]["single_password_grant_ms"] = round((time.monotonic() - t0) * 1000, 1)
    t0 = time.monotonic()
    session = cookie_login(ga_port)
    res["meta"]["single_five_step_login_ms"] = round((time.monotonic() - t0) * 1000, 1)
    log(f"credentials: ID token {len(id_token)} chars, session cookie, API token {api_token[:12]}…")

    variants = {  # name -> (port, path, wrk header args, process to charge CPU to)
        "noauth": (gn_port, INFER_PATH, [], gn.pid),
        "bearer": (ga_port, INFER_PATH, [f"Authorization: Bearer {id_token}"], gw.pid),
        "cookie": (ga_port, INFER_PATH, [f"Cookie: authservice_session={session}"], gw.pid),
        "apitoken": (ga_port, INFER_PATH, [f"Authorization: Bearer {api_token}"], gw.pid),
        "direct": (mp_port, DIRECT_PATH, [], None),
    }

    # ---- checks: each variant answers the right predictions; auth is really on
    checks = {}
    for name, (port, path, hdrs, _) in variants.items():
        why = check_infer(port, path, hdrs, body, expected)
        checks[name] = {"ok": not why, "detail": why or "200, predictions match"}
        log(f"check {name}: {'OK' if not why else 'FAILED: ' + why}")
    st, _, _ = raw_req(
        ga_port,
        "POST",
        INFER_PATH,
        body,
        {"Content-Type": "application/json", "Accept": "application/json"},
    )
    checks["no_credentials_refused"] = {"ok": st in (401, 302), "detail": f"HTTP {st}"}
    st, _, _ = raw_req(
        ga_port,
        "POST",
        INFER_PATH,
        body,
        {"Content-Type": "application/json", "Authorization": f"Bearer {id_token[:-6]}AAAAAA"},
    )
    checks["bad_token_refused"] = {"ok": st == 401, "detail": f"HTTP {st}"}
    log(
        f"check refusals: no credentials {checks['no_credentials_refused']['detail']}, "
        f"bad token {checks['bad_token_refused']['detail']}"
    )
    res["checks"] = checks
    if not all(c["ok"] for c in checks.values()):
        raise RuntimeError("checks failed: " + json.dumps(checks))

    # ---- throughput: interleaved rounds
    runs = {v: {lvl: [] for lvl in LEVELS} for v in variants}
    names = list(variants)
    for rnd in range(0 if args.logins_only else args.repeat):
        k = 2 * rnd % len(names)  # rotate by two: with 5 variants, 5 rounds = 5 positions
        order = names[k:] + names[:k]
        wait_quiet()
        log(f"round {rnd + 1}/{args.repeat}: {', '.join(order)}")
        for name in order:
            port, path, hdrs, sid = variants[name]
            url = f"http://{HOST}:{port}{path}"
            sargs = [str(body_file), "application/json", *hdrs]
            if args.warmup:
                wrk(url, br.LUA_POST, sargs, 2, 64, args.warmup)
            for lvl, (t, c) in LEVELS.items():
                r = measured(partial(wrk, url, br.LUA_POST, sargs, t, c, args.duration), sid)
                runs[name][lvl].append(r)
                log(f"  {name} {lvl}: {fmt(r)}")
        for p, what in ((server, "model server"), (gw, "gateway"), (gn, "no-auth gateway")):
            if p.poll() is not None:
                raise RuntimeError(f"{what} exited with code {p.returncode} during load")
    if not args.logins_only:
        for name in variants:
            res["variants"][name] = {lvl: median_of(runs[name][lvl]) for lvl in LEVELS}

    # ---- logins at --login-conns connections (and at 1, for the floor)
    st, h, _ = raw_req(ga_port, "GET", LOGIN_PAGE)
    loc = header(h, "location") or ""
    res["checks"]["login_page"] = {"ok": st == 302 and "req=" in loc, "detail": f"{st} {loc}"}
    log(f"check login page: HTTP {st} -> {loc}")
    form = form_file.read_bytes()
    grant_headers = {
        "Content-Type": "application/x-www-form-urlencoded",
        "Authorization": basic_auth(),
    }
    probe_args = (
        ga_port,
        INFER_PATH,
        body,
        {"Content-Type": "application/json", "Authorization": f"Bearer {id_token}"},
    )
    levels = (("c1", 1), (f"c{args.login_conns}", args.login_conns))
    wait_quiet()
    res["logins"] = {"login_page": {}, "password_grant": {}}
    for lvl, c in levels:  # login page: fast, wrk
        log(f"  (gateway idle after {wait_idle(gw.pid):.1f} s)")
        url = f"http://{HOST}:{ga_port}{LOGIN_PAGE}"
        with Probe(*probe_args) as probe:
            r = measured(
                partial(
                    wrk, url, get_lua, [str(empty_file), ""], min(2, c), c, args.login_duration, 60
                ),
                gw.pid,
                attempts=1,  # its ~1 s stalls are what it is: flagged, not retried
            )
        r["inference_probe"] = probe.result()
        res["logins"]["login_page"][lvl] = r
        log(f"  login_page {lvl}: {fmt(r)}; probe {r['inference_probe']}")
    for lvl, c in levels:  # password grant: slow, threads that count in-flight requests
        log(f"  (gateway idle after {wait_idle(gw.pid):.1f} s)")
        cpu0 = br.tree_cpu_seconds(gw.pid)
        watch = CpuWatch()
        with Probe(*probe_args) as probe:
            r = thread_load(
                ga_port, "POST", "/dex/token", form, grant_headers, c, args.login_duration
            )
        if r["requests"]:
            r["gateway_cpu_us_per_req"] = round(
                (br.tree_cpu_seconds(gw.pid) - cpu0) * 1e6 / r["requests"], 1
            )
        r["inference_probe"] = probe.result()
        r["foreign_cores"] = watch.foreign_cores()
        if r["foreign_cores"] > FOREIGN_LIMIT:
            r["suspect"] = f"other processes used {r['foreign_cores']} cores meanwhile"
        res["logins"]["password_grant"][lvl] = r
        log(f"  password_grant {lvl}: {fmt(r)}; probe {r['inference_probe']}")
    log(f"  (gateway idle after {wait_idle(gw.pid):.1f} s)")
    # the grant must still work after the load (and the hash it verified against)
    password_grant(ga_port)
    res["meta"]["password_hash_kind"] = stored_hash_kind(data["auth"])

    # ---- where the time goes: py-spy on the gateways under load
    if args.profile_seconds:
        grant_args = [
            str(form_file),
            "application/x-www-form-urlencoded",
            f"Authorization: {basic_auth()}",
        ]
        profiles = {  # name -> (gateway, url, script, script args, connections)
            "bearer": (
                gw,
                f"http://{HOST}:{ga_port}{INFER_PATH}",
                br.LUA_POST,
                [str(body_file), "application/json", *variants["bearer"][2]],
                64,
            ),
            "cookie": (
                gw,
                f"http://{HOST}:{ga_port}{INFER_PATH}",
                br.LUA_POST,
                [str(body_file), "application/json", *variants["cookie"][2]],
                64,
            ),
            "noauth": (
                gn,
                f"http://{HOST}:{gn_port}{INFER_PATH}",
                br.LUA_POST,
                [str(body_file), "application/json"],
                64,
            ),
            "login_page": (
                gw,
                f"http://{HOST}:{ga_port}{LOGIN_PAGE}",
                get_lua,
                [str(empty_file), ""],
                args.login_conns,
            ),
            "password_grant": (
                gw,
                f"http://{HOST}:{ga_port}/dex/token",
                br.LUA_POST,
                grant_args,
                args.login_conns,
            ),
        }
        for name, (proc, url, script, sargs, conns) in profiles.items():
            if args.logins_only and name not in LOGIN_PROFILES:
                continue
            wait_idle(proc.pid)
            pid = busiest(proc.pid)
            log(f"py-spy {args.profile_seconds} s on pid {pid} during {name} c={conns} load")
            res["profiles"][name] = pr = profile(
                pid,
                url,
                script,
                sargs,
                conns,
                args.profile_seconds,
                ctx.work / f"pyspy-{name}.txt",
            )
            pr["connections"] = conns
            if pr.get("status") != "ok":
                log(f"  py-spy: {pr}")
        wait_idle(gw.pid)


LOGIN_PROFILES = ("login_page", "password_grant")
# Measured at a --logins-only run; the rest of meta stays the full run's.
LOGIN_META = ("single_password_grant_ms", "single_five_step_login_ms", "password_hash_kind")


def merge_logins(new: dict, json_path: Path, note: str) -> dict:
    """The last full run's results with ``new``'s logins and login profiles in their place;
    the logins they replace are kept as ``logins_before`` (the first ones replaced, until
    the next full run). Without a previous full run, ``new`` as it is."""
    try:
        res = json.loads(json_path.read_text())
    except (OSError, ValueError):
        log(f"no full run in {json_path}: the report will have logins only")
        return new
    if not res.get("variants"):
        log(f"{json_path} holds no full run: the report will have logins only")
        return new
    m, nm = res["meta"], new["meta"]
    if "logins_before" not in res:
        res["logins_before"] = {
            "date": m["date"],
            "git": m.get("git"),
            "login_conns": m["login_conns"],
            "logins": res.get("logins") or {},
            "meta": {k: m.get(k) for k in LOGIN_META},
        }
    res["logins"] = new["logins"]
    res.setdefault("profiles", {})
    for name in LOGIN_PROFILES:
        if name in new.get("profiles", {}):
            res["profiles"][name] = new["profiles"][name]
    for k in LOGIN_META:
        m[k] = nm.get(k)
    m["login_conns"], m["login_duration_s"] = nm["login_conns"], nm["login_duration_s"]
    m["logins_rerun"] = {
        k: nm.get(k) for k in ("date", "git", "command", "modelport", "error", "interrupted")
    }
    m["logins_rerun"]["note"] = note
    return res


def busiest(sid: int) -> int:
    pids = br.session_pids(sid) or [sid]

    def cpu(pid):
        try:
            raw = Path(f"/proc/{pid}/stat").read_text()
            f = raw[raw.rindex(")") + 2 :].split()
            return int(f[11]) + int(f[12])
        except OSError:
            return -1

    return max(pids, key=cpu)


def stored_hash_kind(data_dir: Path) -> str | None:
    """Which hash the user's password has in the database now (bcrypt may be upgraded)."""
    try:
        import sqlite3

        con = sqlite3.connect(f"file:{data_dir / 'identity.db'}?mode=ro", uri=True)
        try:
            for (table,) in con.execute("select name from sqlite_master where type='table'"):
                cols = [r[1] for r in con.execute(f"pragma table_info({table})")]
                hcol = next((c for c in cols if "hash" in c.lower()), None)
                if "email" in cols and hcol:
                    row = con.execute(
                        f"select {hcol} from {table} where email=?", (USER_EMAIL,)
                    ).fetchone()
                    if row and row[0]:
                        h = str(row[0])
                        return (
                            "argon2id"
                            if h.startswith("$argon2")
                            else ("bcrypt" if h.startswith("$2") else h[:8])
                        )
        finally:
            con.close()
    except Exception:  # noqa: BLE001 - informational only
        return None
    return None


# =========================================================================== report
def summarize(res: dict) -> None:
    v = res["variants"]
    ratios, targets = {}, []
    for lvl in LEVELS:
        base = (v.get("noauth") or {}).get(lvl) or {}
        for name in (*AUTH_VARIANTS, "direct"):
            r = (v.get(name) or {}).get(lvl) or {}
            if base.get("status") == "ok" and r.get("status") == "ok" and base["rps"]:
                rr = ratios.setdefault(lvl, {})[name] = {
                    "rps_ratio": round(r["rps"] / base["rps"], 3),
                    "p99_ratio": round(r["p99_ms"] / base["p99_ms"], 2) if base["p99_ms"] else None,
                }
                pairs = [
                    round(x / y, 3)
                    for x, y in zip(
                        r.get("runs_rps") or [], base.get("runs_rps") or [], strict=False
                    )
                    if x and y
                ]
                if pairs:  # variant ÷ no-auth within each round
                    rr["per_round"] = pairs
                    rr["per_round_median"] = round(statistics.median(pairs), 3)
                cpu = [x for x in r.get("runs_cpu_us_per_req") or [] if x]
                cpu0 = [x for x in base.get("runs_cpu_us_per_req") or [] if x]
                cpu = statistics.median(cpu) if cpu else r.get("gateway_cpu_us_per_req")
                cpu0 = statistics.median(cpu0) if cpu0 else base.get("gateway_cpu_us_per_req")
                if cpu and cpu0:  # no-auth ÷ variant gateway CPU per request
                    rr["cpu_ratio"] = round(cpu0 / cpu, 3)
    for name in AUTH_VARIANTS:
        rr = ratios.get("c64", {}).get(name)
        targets.append(
            {
                "variant": name,
                "ratio": rr["rps_ratio"] if rr else None,
                "per_round_median": rr.get("per_round_median") if rr else None,
                "met": (rr["rps_ratio"] >= TARGET) if rr else None,
            }
        )
    res["ratios"] = ratios
    res["targets"] = targets


def _c(r: dict | None, key: str, f: str) -> str:
    if not r or r.get("status") != "ok":
        return "—" if not r else r.get("status", "—")
    val = r.get(key)
    if val is None:
        return "—"
    return format(val, f) + (" †" if r.get("suspect") and key.endswith("_ms") else "")


def summary_lines(res: dict) -> list[str]:
    out = ["## Summary\n"]
    for t in res.get("targets", []):
        met = {True: "met", False: "**missed**", None: "not measured"}[t["met"]]
        out.append(
            f"- {LABELS[t['variant']]}: {t['ratio'] if t['ratio'] is not None else '—'} × the "
            f"--no-auth gateway's req/s at c=64 (target ≥ {TARGET:.2f}): {met}."
        )
    lg = res.get("logins") or {}
    conns = res["meta"]["login_conns"]
    for name, title in (("password_grant", "Password grant"), ("login_page", "Login page")):
        r = (lg.get(name) or {}).get(f"c{conns}")
        r1 = (lg.get(name) or {}).get("c1")
        b = _before(res, name, f"c{conns}")
        if r and r.get("status") == "ok":
            pb = r.get("inference_probe") or {}
            out.append(
                f"- {title} under {conns} concurrent logins: p99 **{r['p99_ms']:,.0f} ms**"
                + (f" (before: {b['p99_ms']:,.0f} ms)" if b else "")
                + f", p50 {r['p50_ms']:,.0f} ms, {r['rps']:,.1f}/s"
                + (
                    f" (alone: p99 {r1['p99_ms']:,.0f} ms)"
                    if r1 and r1.get("status") == "ok"
                    else ""
                )
                + (
                    f"; a signed-in infer meanwhile: p50 {pb['p50_ms']:,.0f} ms, max "
                    f"{pb['max_ms']:,.0f} ms"
                    if pb.get("requests")
                    else ""
                )
                + "."
            )
    out.append("")
    return out


def _before(res: dict, name: str, lvl: str) -> dict | None:
    """The login measurement a --logins-only run replaced, if any."""
    r = (((res.get("logins_before") or {}).get("logins") or {}).get(name) or {}).get(lvl)
    return r if r and r.get("status") == "ok" else None


def write_md(res: dict, path: Path, json_path: Path) -> None:
    m = res["meta"]
    mc = m["machine"]
    L = ["# Gateway benchmark: authentication cost and logins\n"]
    L.append(
        f"Date: {m['date']}. Machine: {mc['cpu']}, {mc['nproc']} CPUs, {mc['mem_gib']} GiB, "
        f"Linux {mc['kernel']}, Python {mc['python']}; {m.get('wrk')}; modelport "
        f"{m.get('modelport')} (git {m.get('git')}).\n"
    )
    L.append(f"Command: `{m['command']}`\n")
    rerun = m.get("logins_rerun")
    if rerun:
        L.append(
            f"Logins (and their profiles) re-measured {rerun['date']} on git {rerun.get('git')} "
            f"with `{rerun['command']}`; everything else is from the run above.\n"
        )
    L.extend(summary_lines(res))
    if m.get("interrupted") or m.get("error"):
        L.append(f"**Run incomplete**: {m.get('error') or 'interrupted'}.\n")
    L.append(
        "Setup (all on 127.0.0.1): one model server (`modelport serve`, sklearn iris, 1 worker), "
        "a gateway with authentication (identity provider at /dex, Dex config with a static user "
        "and the `kubeflow-oidc-authservice` client) and a second gateway started with "
        "`--no-auth`, both in front of that server. Every gateway variant posts the same V2 JSON "
        f"infer (2 iris rows) to `{m['path']}` (the gateway strips `/serving/NS/NAME`), so each "
        "does the same routing work; `direct` posts `/v2/models/sklearn-iris/infer` to the model "
        "server. wrk, `-t2 -c64` and `-t1 -c1`, "
        f"{m['duration_s']} s per measurement after {m['warmup_s']} s of c=64 warm-up; "
        f"{m['repeat']} interleaved round(s) (each variant once per round, order rotated by "
        "two places), the median round by req/s kept. wrk shares the 2 CPUs with the servers: "
        "compare numbers within this run only. `gateway CPU` is the CPU time of the gateway "
        "process per request during the measurement.\n"
    )
    L.append("## Inference through the gateway\n")
    L.append(
        "| variant | c=64 req/s | p50 ms | p99 ms | errors | gateway CPU µs/req "
        "| c=1 req/s | p50 ms | p99 ms | errors |"
    )
    L.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name in VARIANTS:
        v = res["variants"].get(name) or {}
        a, b = v.get("c64"), v.get("c1")
        L.append(
            f"| {LABELS[name]} | {_c(a, 'rps', ',.0f')} | {_c(a, 'p50_ms', '.2f')} | "
            f"{_c(a, 'p99_ms', '.2f')} | {_c(a, 'errors', 'd')} | "
            f"{_c(a, 'gateway_cpu_us_per_req', '.0f') if name != 'direct' else '—'} | "
            f"{_c(b, 'rps', ',.0f')} | {_c(b, 'p50_ms', '.2f')} | {_c(b, 'p99_ms', '.2f')} | "
            f"{_c(b, 'errors', 'd')} |"
        )
    if m["repeat"] > 1:
        L.append(
            "\nreq/s of each round (c=64): "
            + "; ".join(
                f"{n} "
                + " / ".join(
                    f"{x:,.0f}"
                    for x in ((res["variants"].get(n) or {}).get("c64", {}).get("runs_rps") or [])
                )
                for n in VARIANTS
            )
        )
    L.append("\n## Ratios to the --no-auth gateway (same run)\n")
    L.append(
        "`req/s ratio`: median round ÷ median round (the target's measure). `each round`: "
        "variant ÷ no-auth within the same round, and their median. `CPU ratio`: no-auth ÷ "
        "variant gateway CPU per request (medians over rounds) — what the ratio would be if the "
        "gateway's CPU alone set the pace; less noisy than req/s.\n"
    )
    L.append(
        "| variant | c=64 req/s ratio | c=64 each round (median) | c=64 CPU ratio "
        "| c=64 p99 ratio | c=1 req/s ratio | c=1 p99 ratio |"
    )
    L.append("|---|---:|---:|---:|---:|---:|---:|")
    rt = res.get("ratios", {})
    for name in (*AUTH_VARIANTS, "direct"):
        a, b = rt.get("c64", {}).get(name, {}), rt.get("c1", {}).get(name, {})
        each = (
            " / ".join(str(x) for x in a["per_round"]) + f" ({a['per_round_median']})"
            if a.get("per_round")
            else "—"
        )
        L.append(
            f"| {LABELS[name]} | {a.get('rps_ratio', '—')} | {each} | "
            f"{a.get('cpu_ratio', '—') if name != 'direct' else '—'} | {a.get('p99_ratio', '—')} "
            f"| {b.get('rps_ratio', '—')} | {b.get('p99_ratio', '—')} |"
        )
    L.append(f"\n### Target: each auth variant ≥ {TARGET:.2f} × no-auth req/s at c=64\n")
    L.append("| variant | req/s ratio | met | median of per-round ratios |")
    L.append("|---|---:|---|---:|")
    for t in res.get("targets", []):
        met = {True: "yes", False: "**no**", None: "n/a"}[t["met"]]
        prm = t.get("per_round_median")
        L.append(
            f"| {LABELS[t['variant']]} | {t['ratio'] if t['ratio'] is not None else '—'} | {met} "
            f"| {prm if prm is not None else '—'}"
            + (" (below target)" if prm is not None and prm < TARGET else "")
            + " |"
        )
    missed = [t for t in res.get("targets", []) if t["met"] is False]

    L.append(
        f"\n## Logins ({m['login_conns']} concurrent connections, {m['login_duration_s']} s)\n"
    )
    L.append(
        "`login page`: `GET /dex/auth?client_id=…&response_type=code…` (302 to the password "
        "form; each creates an auth request), wrk. `password grant`: `POST /dex/token` "
        "(`grant_type=password`, scope `openid email`, client basic auth; each a password "
        "verification and a signed ID token), closed loop of Python threads, one keep-alive "
        "connection each, that also waits for and counts the requests still in flight when "
        "the time is up (wrk drops those, which with ~1 s+ requests hides the queueing "
        "delay). c=1 rows give the single-login floor. `probe`: meanwhile one Bearer infer "
        "through the gateway every 100 ms — what a signed-in user sees during the logins. "
        f"Stored password hash: {m.get('password_hash_kind') or 'unknown'}.\n"
    )
    before = res.get("logins_before")
    if before:
        L.append(
            f"`p99 before`: the same measurement in the run of {before['date']} (git "
            f"{before.get('git')}), before "
            + (f"this change: {rerun['note']}\n" if rerun and rerun.get("note") else "it.\n")
        )
    L.append(
        "| request | conns | req/s | p50 ms | p99 ms | "
        + ("p99 before | " if before else "")
        + "max ms | errors | gateway CPU ms/req | probe p50 / p99 / max ms |"
    )
    L.append("|---|---:|---:|---:|---:|" + ("---:|" if before else "") + "---:|---:|---:|---|")
    for name, title in (("password_grant", "password grant"), ("login_page", "login page")):
        for lvl, r in (res["logins"].get(name) or {}).items():
            b = _before(res, name, lvl)
            bcol = (f"{b['p99_ms']:.1f} | " if b else "— | ") if before else ""
            cpu = r.get("gateway_cpu_us_per_req") if r else None
            pb = (r or {}).get("inference_probe") or {}
            pbs = (
                (
                    f"{pb['p50_ms']} / {pb['p99_ms']} / {pb['max_ms']}"
                    + (f" ({pb['errors']} errors)" if pb.get("errors") else "")
                )
                if pb
                else "—"
            )
            L.append(
                f"| {title} | {lvl[1:]} | {_c(r, 'rps', ',.1f')} | {_c(r, 'p50_ms', '.1f')} | "
                f"**{_c(r, 'p99_ms', '.1f')}** | {bcol}{_c(r, 'max_ms', '.1f')} | "
                f"{_c(r, 'errors', 'd')} | {'—' if cpu is None else format(cpu / 1000, '.2f')} "
                f"| {pbs} |"
            )
    if m.get("single_password_grant_ms") is not None:
        old = (before or {}).get("meta") or {}
        L.append(
            f"\nOne password grant on the idle gateway before the load: "
            f"{m['single_password_grant_ms']} ms; the five-step browser login: "
            f"{m.get('single_five_step_login_ms')} ms"
            + (
                f" (before: {old['single_password_grant_ms']} ms and "
                f"{old.get('single_five_step_login_ms')} ms)."
                if old.get("single_password_grant_ms") is not None
                else "."
            )
        )

    pr = res.get("profiles") or {}
    if pr:
        L.append("\n## Where the time goes (py-spy on the gateway process under load)\n")
        if missed:
            L.append("Target missed for: " + ", ".join(LABELS[t["variant"]] for t in missed) + ". ")
        L.append(
            "Sampled at 200 Hz, `--nonblocking`; % of samples with the frame on top "
            "(self) or anywhere on the stack (inclusive: modelport frames only; the "
            "gateway's upstream connection pool is `modelport/gateway/connections.py`).\n"
        )
        titles = {
            "bearer": "Bearer ID token infer, c=64",
            "cookie": "session cookie infer, c=64",
            "noauth": "--no-auth gateway infer, c=64",
            "login_page": f"login page, c={m['login_conns']}",
            "password_grant": f"password grant, c={m['login_conns']}",
        }
        for name, title in titles.items():
            p = pr.get(name)
            if not p:
                continue
            L.append(f"### {title}\n")
            if p.get("status") != "ok":
                L.append(f"{p.get('status')}: {p.get('reason') or p.get('detail')}\n")
                continue
            L.append(
                f"{p['samples']} samples. Self time by library: "
                + ", ".join(f"{f['frame']} {f['pct']} %" for f in p.get("self_by_package", []))
                + ".\n"
            )
            L.append("Self, top frames:\n")
            L.append("| self % | frame |")
            L.append("|---:|---|")
            for f in p["self"][:6]:
                L.append(f"| {f['pct']} | `{f['frame']}` |")
            L.append("\nInclusive:\n")
            L.append("| incl. % | frame |")
            L.append("|---:|---|")
            for f in p["inclusive"][:8]:
                L.append(f"| {f['pct']} | `{f['frame']}` |")
            if p.get("loop_top") and name in ("login_page", "password_grant"):
                L.append(
                    f"\nOn the event-loop thread ({p['loop_samples']} samples, "
                    f"{100 * p['loop_samples'] / p['samples']:.0f} % of all; ← innermost "
                    "modelport frame): "
                    + ", ".join(f"`{f['frame']}` {f['pct_of_loop']} %" for f in p["loop_top"][:4])
                    + "."
                )
            L.append("")
    groups = [*res["variants"].values(), *res["logins"].values()]
    kept = [r for v in groups for r in v.values() if isinstance(r, dict)]
    fc = [r["foreign_cores"] for r in kept if r.get("foreign_cores") is not None]
    if fc:
        L.append(
            f"\nCPU used by other processes during the kept measurements: at most {max(fc)} "
            f"cores (a measurement above {FOREIGN_LIMIT} is redone, up to 3 times, after waiting "
            "for a quiet machine)."
        )
    if any(r.get("suspect") for r in kept):
        L.append(
            "\n† flagged: the run failed run.py's consistency check (mean latency ≤ 1.5 × "
            "connections ÷ req/s, duration ≤ 1.1 × nominal) or other processes used more than "
            f"{FOREIGN_LIMIT} cores — inference runs three times in a row, the logins once (not "
            "redone); read their latencies as indicative."
        )
    shown = json_path.relative_to(REPO) if json_path.is_relative_to(REPO) else json_path
    L.append(f"\nRaw numbers: `{shown}`; logs and py-spy stacks beside it.")
    path.write_text("\n".join(L) + "\n")


if __name__ == "__main__":
    sys.exit(main())
