"""Load generators: wrk for HTTP/1.1 (REST), h2load for HTTP/2 (gRPC), each run once for a
bounded time and parsed into one flat dict of figures."""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.lib.procs import log

LUA_POST = Path(__file__).resolve().parent.parent / "lua" / "post.lua"
Result = dict[str, Any]


@dataclass(frozen=True)
class Level:
    """One concurrency level: wrk threads × connections, h2load clients × streams."""

    name: str
    wrk_threads: int
    wrk_connections: int
    h2_clients: int
    h2_streams: int

    @property
    def concurrency(self) -> int:
        return self.wrk_connections


C1 = Level("c1", 1, 1, 1, 1)
C64 = Level("c64", 2, 64, 4, 16)
LEVELS = (C1, C64)


def run_wrk(
    url: str,
    body_file: Path,
    *,
    threads: int,
    connections: int,
    seconds: int,
    headers: Sequence[str] = (),
    content_type: str = "application/json",
) -> Result:
    """POST `body_file` to `url` with wrk for `seconds`; req/s, latency percentiles, errors."""
    cmd = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--latency"]
    cmd += ["--timeout", "10s", "-s", str(LUA_POST), url, "--", str(body_file), content_type]
    cmd += list(headers)
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60)
    found = re.search(r"^BENCHJSON (\{.*\})$", proc.stdout, re.M)
    if proc.returncode != 0 or not found:
        return {"status": "error", "detail": (proc.stderr or proc.stdout)[-500:]}
    d = json.loads(found.group(1))
    secs = d["duration_us"] / 1e6
    sock = d["err_connect"] + d["err_read"] + d["err_write"] + d["err_timeout"]
    return {
        "status": "ok",
        "tool": f"wrk -t{threads} -c{connections}",
        "concurrency": connections,
        "requests": d["requests"],
        "seconds": round(secs, 3),
        "nominal_seconds": seconds,
        "rps": round(d["requests"] / secs, 1) if secs else 0.0,
        "p50_ms": round(d["p50_us"] / 1000, 2),
        "p90_ms": round(d["p90_us"] / 1000, 2),
        "p99_ms": round(d["p99_us"] / 1000, 2),
        "mean_ms": round(d["mean_us"] / 1000, 3),
        "non2xx": d["err_status"],
        "socket_errors": sock,
        "errors": d["err_status"] + sock,
    }


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile `q` (0–100) of already sorted values; 0.0 when empty."""
    if not sorted_values:
        return 0.0
    rank = int(round(q / 100 * len(sorted_values) + 0.5)) - 1
    return sorted_values[min(len(sorted_values) - 1, max(0, rank))]


def _h2load_latencies_ms(log_file: Path) -> list[float]:
    """Per-request latencies from h2load's --log-file (start µs, status, duration µs)."""
    out = []
    for line in log_file.read_text().splitlines():
        parts = line.split("\t")
        if len(parts) >= 3 and parts[2].isdigit():
            out.append(int(parts[2]) / 1000.0)
    return sorted(out)


def run_h2load(
    url: str,
    body_file: Path,
    *,
    clients: int,
    streams: int,
    seconds: int,
    log_file: Path,
    reply_length: int | None,
) -> Result:
    """POST a framed gRPC message with h2load; percentiles from its per-request log, since
    h2load itself prints only min/mean/max.

    h2load counts HTTP status only, and a failed gRPC call is a 200 with `grpc-status` in
    trailers and no message: responses that carried less DATA than `reply_length` (the
    protobuf reply) + 5 bytes of framing are counted as errors too."""
    log_file.unlink(missing_ok=True)
    cmd = ["h2load", "-D", str(seconds), "-c", str(clients), "-m", str(streams)]
    cmd += ["-t", str(min(2, clients)), "-d", str(body_file), "--log-file", str(log_file)]
    cmd += ["-H", "content-type: application/grpc", "-H", "te: trailers", url]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60)
    out = proc.stdout
    fin = re.search(r"finished in ([\d.]+)s, ([\d.]+) req/s", out)
    reqs = re.search(r"requests: \d+ total, \d+ started, (\d+) done, (\d+) succeeded, ", out)
    data = re.search(r"traffic: .*?, \S+ \((\d+)\) data", out)
    if proc.returncode != 0 or not (fin and reqs):
        return {"status": "error", "detail": (proc.stderr or out)[-500:]}
    done, succeeded = int(reqs.group(1)), int(reqs.group(2))
    lat = _h2load_latencies_ms(log_file)
    short_replies = 0
    if reply_length and data and done:
        per_reply = reply_length + 5
        short_replies = max(0, done - int(data.group(1)) // per_reply)
    return {
        "status": "ok",
        "tool": f"h2load -c{clients} -m{streams}",
        "concurrency": clients * streams,
        "requests": done,
        "seconds": float(fin.group(1)),
        "nominal_seconds": seconds,
        "rps": float(fin.group(2)),
        "p50_ms": round(percentile(lat, 50), 2),
        "p90_ms": round(percentile(lat, 90), 2),
        "p99_ms": round(percentile(lat, 99), 2),
        "mean_ms": round(sum(lat) / len(lat), 3) if lat else 0.0,
        "latency_source": "h2load --log-file, per request",
        "http_errors": done - succeeded,
        "short_replies": short_replies,
        "errors": done - succeeded + short_replies,
    }


def suspect_reason(r: Result) -> str | None:
    """Why a closed-loop measurement looks disturbed, or None.

    With N requests always outstanding, mean latency ≈ N / throughput (Little's law), and a
    run lasts about its nominal time; a run that breaks either was disturbed (other load on
    the machine, a stalled VM) and its percentiles cannot be trusted."""
    if r.get("status") != "ok" or not r.get("rps"):
        return None
    little_ms = r["concurrency"] * 1000.0 / r["rps"]
    if r["mean_ms"] > 1.5 * little_ms + 1.0:
        return f"mean {r['mean_ms']:.1f} ms vs {little_ms:.1f} ms from Little's law"
    if r["seconds"] > 1.1 * r["nominal_seconds"] + 1.0:
        return f"run took {r['seconds']:.1f} s for {r['nominal_seconds']} s"
    return None


def median_run(measure: Callable[[], Result], repeat: int, retries: int = 1) -> Result:
    """Run `measure` `repeat` times and keep the run with the median req/s.

    A disturbed run (suspect_reason) is redone at most `retries` times, then kept and
    flagged; the bound keeps a run on a busy machine within its time budget."""
    runs: list[Result] = []
    for _ in range(repeat):
        for attempt in range(retries + 1):
            r = measure()
            why = suspect_reason(r)
            if not why:
                break
            log(f"  disturbed measurement ({why}){'; retrying' if attempt < retries else ''}")
            r["suspect"] = why
        runs.append(r)
    ok = [r for r in runs if r.get("status") == "ok"]
    ok = sorted([r for r in ok if not r.get("suspect")] or ok, key=lambda r: float(r["rps"]))
    if not ok:
        return runs[-1]
    kept = dict(ok[len(ok) // 2])
    if repeat > 1:
        kept["runs_rps"] = [r.get("rps") for r in runs]
    return kept


def summary(r: Result) -> str:
    """One line for the progress log."""
    if r.get("status") != "ok":
        return f"{r.get('status')}: {r.get('detail', '')}"
    return (
        f"{r['rps']:.0f} req/s, p50 {r['p50_ms']:.2f} ms, p99 {r['p99_ms']:.2f} ms, "
        f"errors {r['errors']}"
    )
