"""One real request per protocol before any load: a server whose answers are wrong is
reported as such and not measured."""

from __future__ import annotations

import http.client
import json
import subprocess
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from bench.lib.procs import HOST, http_req

BENCH = Path(__file__).resolve().parent.parent
JSON = {"Content-Type": "application/json"}


def _flatten(x: Any) -> Iterator[Any]:
    if isinstance(x, list):
        for v in x:
            yield from _flatten(v)
    else:
        yield x


def same_predictions(got: Any, expected: Sequence[int]) -> bool:
    """Class predictions equal, whatever the nesting ([1] vs [[1]]) or number type."""
    try:
        return [int(round(float(v))) for v in _flatten(got)] == [int(v) for v in expected]
    except (TypeError, ValueError):
        return False


def check_v2(
    port: int,
    path: str,
    body: bytes,
    expected: Sequence[int],
    headers: dict[str, str] | None = None,
) -> str | None:
    """None when a V2 infer answers the expected classes; else what went wrong. Retries for
    15 s, since a server may say ready before all its workers are."""
    deadline = time.monotonic() + 15.0
    while True:
        try:
            status, _, data = http_req(port, "POST", path, body, {**JSON, **(headers or {})})
            if status == 200:
                out = json.loads(data)["outputs"][0]
                ok = same_predictions(out["data"], expected)
                return None if ok else f"wrong predictions {out['data']}"
            why = f"HTTP {status}: {data[:200]!r}"
        except (OSError, http.client.HTTPException, ValueError, KeyError, IndexError) as e:
            why = repr(e)
        if time.monotonic() > deadline:
            return why
        time.sleep(0.2)


def check_v1(port: int, path: str, body: bytes, expected: Sequence[int]) -> str | None:
    """None when a V1 predict answers the expected classes; else what went wrong."""
    try:
        status, _, data = http_req(port, "POST", path, body, JSON)
        if status != 200:
            return f"HTTP {status}: {data[:200]!r}"
        preds = json.loads(data)["predictions"]
    except (OSError, http.client.HTTPException, ValueError, KeyError) as e:
        return repr(e)
    return None if same_predictions(preds, expected) else f"wrong predictions {preds}"


def check_grpc(
    client_python: Path, port: int, model: str, expected: Sequence[int]
) -> tuple[str | None, int | None]:
    """(None or what went wrong, length of the reply message) for one ModelInfer made with
    grpcio by `client_python` (an interpreter with kserve's generated stubs)."""
    proc = subprocess.run(
        [str(client_python), str(BENCH / "grpc_check.py"), f"{HOST}:{port}", model],
        capture_output=True,
        text=True,
        timeout=60,
    )
    try:
        reply = json.loads(proc.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return (proc.stderr or proc.stdout)[-300:], None
    if not reply.get("ok"):
        return f"{reply.get('code')}: {reply.get('details')}", None
    data = reply["outputs"][0].get("data") if reply["outputs"] else None
    if not same_predictions(data or [], expected):
        return f"wrong predictions {data}", None
    return None, int(reply["response_length"])
