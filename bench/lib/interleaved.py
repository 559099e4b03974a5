"""What the graph and streaming scenarios share: a service or graph applied to `modelport up`
and waited for, a `modelport serve` baseline, and wrk measurements in interleaved rounds
(every target once per round, the order rotated) where each target keeps its median round."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any

from bench.control.platform import Platform, is_ready, wait_for
from bench.lib import load, procs
from bench.lib.procs import HOST, log

Measure = Callable[[str], load.Result]


def apply(pf: Platform, work: Path, name: str, doc: str) -> None:
    """`modelport apply -f` one document, as a user would."""
    f = work / "docs" / f"{name}.yaml"
    f.parent.mkdir(parents=True, exist_ok=True)
    f.write_text(doc)
    pf.cli("apply", "-f", str(f))


def wait_ready(pf: Platform, ns: str, plural: str, name: str, timeout: float = 120) -> None:
    """Until the object's Ready condition is True (raises with the platform's log if not)."""

    def ready() -> bool:
        st, _, data = pf.api("GET", f"/api/v1/namespaces/{ns}/{plural}/{name}")
        return st == 200 and is_ready(json.loads(data))

    if not wait_for(ready, timeout):
        raise RuntimeError(f"{plural}/{name} not ready in {timeout:.0f} s:\n{pf.tail()}")


def start_serve(
    py: str, model: Path, name: str, work: Path, env: dict[str, str], extra: Sequence[str] = ()
) -> tuple[Any, int, list[str]]:
    """The baseline: `modelport serve` with a replica's arguments (one worker, no gRPC).
    The platform's own replicas answer only the gateway (it holds their key), so the bench
    cannot load them directly. Returns the process, its port and its command line."""
    (port,) = procs.free_ports(1)
    cmd = [py, "-m", "modelport", "serve", str(model), "--name", name, *extra]
    cmd += ["--host", HOST, "--http-port", str(port), "--grpc-port", "-1", "--workers", "1"]
    started = time.monotonic()
    p = procs.spawn(cmd, work / "logs" / "serve.log", cwd=work / "cwd" / "serve", env=env)
    if procs.wait_http_ok(p, port, "/v2/health/ready", started, 60.0) is None:
        why = procs.tail(work / "logs" / "serve.log")
        raise RuntimeError(f"modelport serve did not start:\n{why}")
    log(f"baseline: modelport serve pid {p.pid} on port {port}")
    return p, port, cmd


def rounds(keys: Sequence[str], measure: Measure, repeat: int, by: str) -> dict[str, Any]:
    """`repeat` interleaved rounds over `keys`; per key, the round with the median `by`
    (a field of wrk's result) and every round's figures."""
    runs: dict[str, list[load.Result]] = {k: [] for k in keys}
    for rnd in range(repeat):
        shift = rnd % len(keys)
        order = [*keys[shift:], *keys[:shift]]
        log(f"round {rnd + 1}/{repeat}: {', '.join(order)}")
        for key in order:
            r = load.median_run(partial(measure, key), 1)
            runs[key].append(r)
            log(f"  {key}: {load.summary(r)}")
    out: dict[str, Any] = {}
    for key, rs in runs.items():
        ok = sorted((r for r in rs if r.get("status") == "ok"), key=lambda r: float(r[by]))
        kept = dict(ok[len(ok) // 2]) if ok else dict(rs[-1])
        kept["rounds_rps"] = [r.get("rps") for r in rs]
        kept["rounds_p50_ms"] = [r.get("p50_ms") for r in rs]
        out[key] = kept
    return out
