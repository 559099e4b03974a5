"""Serving machinery with real processes: model errors, overload, crashes, batching, examples."""

from __future__ import annotations

import concurrent.futures
import os
import signal
import sys
from pathlib import Path

import httpx
import numpy as np
import pytest

from tests.conftest import ROOT, TEST_MODELS, ServerProcess, serve_argv, wait_for


def test_model_exception_is_500_and_server_keeps_serving(behaviour_server: ServerProcess):
    with behaviour_server.client() as c:
        r = c.post("/v1/models/behaviours:predict", json={"instances": [1, -1]})
        assert r.status_code == 500
        assert "asked to fail" in r.json()["error"]
        r = c.post("/v1/models/behaviours:predict", json={"instances": [1, 2]})
        assert r.status_code == 200
        assert r.json()["predictions"] == [2, 4]


def test_untensorlike_result_is_500(behaviour_server: ServerProcess):
    with behaviour_server.client() as c:
        r = c.post("/v1/models/behaviours:predict", json={"instances": [-4]})
        assert r.status_code == 500
        assert "error" in r.json()


def test_overload_answers_503_with_retry_after(behaviour_server: ServerProcess):
    # --max-inflight 4: twelve slow requests at once cannot all be admitted.
    def call(_: int) -> httpx.Response:
        with httpx.Client(base_url=behaviour_server.url, timeout=30) as c:
            return c.post("/v1/models/behaviours:predict", json={"instances": [-2]})

    with concurrent.futures.ThreadPoolExecutor(12) as pool:
        responses = list(pool.map(call, range(12)))
    statuses = sorted(r.status_code for r in responses)
    assert statuses.count(200) >= 4
    assert 503 in statuses
    for r in responses:
        if r.status_code == 503:
            assert r.headers["retry-after"] == "1"
            assert "retry later" in r.json()["error"]
    with behaviour_server.client() as c:
        assert c.post("/v1/models/behaviours:predict", json={"instances": [3]}).status_code == 200


@pytest.mark.parametrize(
    ("datatype", "values"),
    [
        ("BOOL", [True, False, True]),
        ("UINT8", [0, 7, 255]),
        ("UINT16", [0, 1, 65535]),
        ("UINT32", [0, 1, 2**32 - 1]),
        ("UINT64", [0, 1, 2**64 - 1]),
        ("INT8", [-128, 0, 127]),
        ("INT16", [-32768, 0, 32767]),
        ("INT32", [-(2**31), 0, 2**31 - 1]),
        ("INT64", [-(2**63), 0, 2**63 - 1]),
        ("FP16", [0.5, -1.0, 65504.0]),
        ("FP32", [1.5, -2.25, 3.0e38]),
        ("FP64", [1e-300, -2.5, 1e300]),
        ("BYTES", ["a", "héllo", ""]),
    ],
)
def test_every_datatype_round_trips_json(behaviour_server: ServerProcess, datatype, values):
    body = {"inputs": [{"name": "x", "shape": [3], "datatype": datatype, "data": values}]}
    with behaviour_server.client() as c:
        r = c.post("/v2/models/behaviours/infer", json=body)
    assert r.status_code == 200, r.text
    echo = r.json()["outputs"][0]
    assert echo["datatype"] == datatype
    assert echo["shape"] == [3]
    assert echo["data"] == values


def test_worker_crash_is_respawned(start_server):
    server = start_server(
        serve_argv(
            TEST_MODELS / "behaviours.py", "behaviours", "--format", "custom", "--workers", "2"
        )
    )
    before = set(server.worker_pids())
    assert len(before) == 2
    victim = next(iter(before))
    os.kill(victim, signal.SIGKILL)
    assert wait_for(lambda: len(server.worker_pids()) == 2 and victim not in server.worker_pids())
    # the new worker serves too: collect pids over fresh connections until both answer
    seen = set()
    for _ in range(200):
        with server.client() as c:
            r = c.post("/v1/models/behaviours:predict", json={"instances": [1]})
            assert r.status_code == 200
            seen.add(r.json()["pid"])
        if seen == set(server.worker_pids()):
            break
    assert seen == set(server.worker_pids())
    assert "restarting" in server.log()


def test_request_that_kills_its_worker_does_not_kill_the_server(start_server):
    server = start_server(
        serve_argv(TEST_MODELS / "behaviours.py", "behaviours", "--format", "custom")
    )
    with server.client() as c:
        with pytest.raises(httpx.HTTPError):
            c.post("/v1/models/behaviours:predict", json={"instances": [-3]})

    def answers() -> bool:
        try:
            with server.client() as c:
                return (
                    c.post("/v1/models/behaviours:predict", json={"instances": [2]}).status_code
                    == 200
                )
        except httpx.HTTPError:
            return False

    assert wait_for(answers)


def test_batching_merges_and_results_match_unbatched(iris_dir, start_server):
    import joblib

    server = start_server(
        serve_argv(iris_dir, "iris", "--max-batch-size", "16", "--max-latency-ms", "20")
    )
    model = joblib.load(iris_dir / "model.joblib")
    rng = np.random.default_rng(0)
    batches = [rng.uniform(0, 8, size=(int(rng.integers(1, 4)), 4)).round(2) for _ in range(24)]

    def call(rows: np.ndarray) -> list[int]:
        body = {
            "inputs": [
                {"name": "x", "shape": list(rows.shape), "datatype": "FP64", "data": rows.tolist()}
            ]
        }
        with httpx.Client(base_url=server.url, timeout=30) as c:
            r = c.post("/v2/models/iris/infer", json=body)
            assert r.status_code == 200, r.text
            return r.json()["outputs"][0]["data"]

    with concurrent.futures.ThreadPoolExecutor(12) as pool:
        results = list(pool.map(call, batches))
    for rows, got in zip(batches, results, strict=True):
        assert got == model.predict(rows).tolist()
    with server.client() as c:
        text = c.get("/metrics").text
    counts = {}
    for line in text.splitlines():
        if line.startswith('modelport_batch_size_bucket{le="1.0",model="iris"}'):
            counts["le1"] = float(line.split()[-1])
        if line.startswith('modelport_batch_size_count{model="iris"}'):
            counts["count"] = float(line.split()[-1])
    # fewer model calls than requests, and at least one call merged several requests
    assert counts["count"] < 24
    assert counts["le1"] < counts["count"]


def test_broken_model_file_fails_start_with_clear_error(tmp_path):
    import subprocess

    (tmp_path / "model.joblib").write_bytes(b"this is not a pickle")
    proc = subprocess.run(
        serve_argv(tmp_path, "broken"), capture_output=True, text=True, timeout=60
    )
    assert proc.returncode != 0
    assert "Cannot load" in proc.stderr
    assert "model.joblib" in proc.stderr


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["/no/such/dir"], "does not exist"),
        (["--format", "tensorflow", "."], "unknown format"),
    ],
)
def test_cli_errors_are_one_line(args, fragment):
    import subprocess

    proc = subprocess.run(
        [sys.executable, "-m", "modelport", "serve", *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert proc.returncode == 2
    assert fragment in proc.stderr
    assert proc.stderr.count("\n") == 1


def test_undetectable_format(tmp_path):
    import subprocess

    (tmp_path / "weights.bin").write_bytes(b"\0")
    proc = subprocess.run(serve_argv(tmp_path, "x"), capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert "Pass --format" in proc.stderr


def test_kserve_custom_model_example_runs_unchanged(start_server):
    server = start_server(
        [
            sys.executable,
            str(ROOT / "examples" / "custom_model" / "model.py"),
            "--model_name",
            "temperature",
            "--http_port",
            "0",
            "--grpc_port",
            "0",
        ]
    )
    with server.client() as c:
        r = c.post("/v1/models/temperature:predict", json={"instances": [0, 10, 100]})
        assert r.status_code == 200
        assert r.json() == {"predictions": [32.0, 50.0, 212.0]}
        body = {
            "id": "t1",
            "inputs": [{"name": "celsius", "shape": [2], "datatype": "FP32", "data": [0, 100]}],
        }
        doc = c.post("/v2/models/temperature/infer", json=body).json()
        assert doc["id"] == "t1"
        assert doc["outputs"] == [
            {"name": "fahrenheit", "shape": [2], "datatype": "FP64", "data": [32.0, 212.0]}
        ]


def test_debug_logs_one_json_line_per_request(iris_dir, start_server):
    import json

    server = start_server(serve_argv(iris_dir, "iris", "--log-level", "debug"))
    body = {"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP32", "data": [1, 2, 3, 4]}]}
    with server.client() as c:
        assert c.post("/v2/models/iris/infer", json=body).status_code == 200
        assert c.post("/v2/models/nope/infer", json=body).status_code == 404
    assert wait_for(lambda: server.log().count('"protocol":"v2"') >= 2, timeout=5)
    lines = [ln for ln in server.log().splitlines() if "modelport.access" in ln]
    docs = [json.loads(ln[ln.index("{") :]) for ln in lines]
    assert {(d["model"], d["status"]) for d in docs} >= {("iris", "200"), ("nope", "404")}
    assert all(d["path"].startswith("/v2/models/") and d["ms"] >= 0 for d in docs)


def test_repository_changes_reach_every_worker(iris_dir, start_server):
    server = start_server(serve_argv(iris_dir, "iris", "--workers", "2"))
    body = {"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP32", "data": [1, 2, 3, 4]}]}

    def statuses(n: int = 40) -> set[int]:
        seen = set()
        for _ in range(n):  # fresh connections land on both workers
            with server.client() as c:
                seen.add(c.post("/v2/models/iris/infer", json=body).status_code)
        return seen

    with server.client() as c:
        assert c.post("/v2/repository/models/iris/unload").status_code == 200
    assert wait_for(lambda: statuses(10) == {503}, timeout=10)
    assert statuses() == {503}
    # a worker started after the unload follows it too
    victim = server.worker_pids()[0]
    os.kill(victim, signal.SIGKILL)
    assert wait_for(lambda: len(server.worker_pids()) == 2 and victim not in server.worker_pids())
    assert wait_for(lambda: statuses(10) == {503}, timeout=10)
    assert statuses() == {503}
    with server.client() as c:
        assert c.post("/v2/repository/models/iris/load").status_code == 200
    assert wait_for(lambda: statuses(10) == {200}, timeout=10)
    assert statuses() == {200}


def test_workers_fork_from_one_load_and_the_supervisor_stays_small(iris_server):
    def libraries(pid: int) -> str:
        return Path(f"/proc/{pid}/maps").read_text()

    supervisor = iris_server.proc.pid
    workers = iris_server.worker_pids()
    assert len(workers) == 2  # reparented to the supervisor once their template exited
    # The template imported scikit-learn (and scipy) and loaded the model once; the workers
    # forked from it hold those pages, the supervisor never imported them.
    assert "scipy" not in libraries(supervisor)
    for pid in workers:
        assert "scipy" in libraries(pid)
    with iris_server.client() as c:
        assert c.get("/v2/health/ready").status_code == 200


def test_stop_while_the_workers_are_prepared_leaves_no_process(tmp_path):
    import subprocess
    import time

    proc = subprocess.Popen(
        serve_argv(TEST_MODELS / "slow_load.py", "slow", "--format", "custom", "--workers", "2"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    children = Path(f"/proc/{proc.pid}/task/{proc.pid}/children")
    assert wait_for(lambda: bool(children.read_text().split()))  # the template is loading
    template = int(children.read_text().split()[0])
    time.sleep(0.5)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=10) != 0  # stopped before it was ready, not after the minute
    assert not Path(f"/proc/{template}").exists()
