"""Replica backends: plain processes and zygote forks run real model servers."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

import httpx
import pytest

from modelport.control.backends.process import ProcessBackend, ReplicaSpec, ZygoteBackend


def _spec(iris_dir: Path, tmp_path: Path, **kwargs: object) -> ReplicaSpec:
    return ReplicaSpec("iris", iris_dir, "sklearn", tmp_path / "logs" / "r.log", **kwargs)  # type: ignore[arg-type]


async def _serve_once(backend: ProcessBackend | ZygoteBackend, spec: ReplicaSpec) -> dict:
    replica = await backend.start(spec)
    try:
        assert await replica.wait_ready(60), replica.last_lines(20)
        url = f"http://{replica.address}/v1/models/iris:predict"
        body = {"instances": [[6.8, 2.8, 4.8, 1.4]]}
        async with httpx.AsyncClient() as c:
            # Another local process, without the key, gets nothing from the replica.
            for headers in ({}, {"modelport-replica-key": "guess"}):
                denied = await c.post(url, json=body, headers=headers)
                assert denied.status_code == 403, denied.text
            twice = [("modelport-replica-key", replica.key), ("modelport-replica-key", "x")]
            assert (await c.post(url, json=body, headers=twice)).status_code == 403
            r = await c.post(url, json=body, headers={"modelport-replica-key": replica.key})
        return r.json()
    finally:
        await replica.stop()
        assert replica.returncode is not None


@pytest.mark.parametrize("kind", ["process", "zygote"])
def test_backend_runs_a_model_server(kind: str, iris_dir: Path, tmp_path: Path):
    async def main() -> dict:
        backend = ZygoteBackend() if kind == "zygote" else ProcessBackend()
        if isinstance(backend, ZygoteBackend):
            await backend.start_zygote()
        try:
            return await _serve_once(backend, _spec(iris_dir, tmp_path, env={"X_TEST": "1"}))
        finally:
            if isinstance(backend, ZygoteBackend):
                await backend.close()

    assert asyncio.run(main()) == {"predictions": [1]}
    log = (tmp_path / "logs" / "r.log").read_text()
    assert "--- starting on port" in log and "REST" in log


def test_zygote_reports_a_killed_replica(iris_dir: Path, tmp_path: Path):
    async def main() -> int | None:
        backend = ZygoteBackend()
        await backend.start_zygote()
        try:
            replica = await backend.start(_spec(iris_dir, tmp_path))
            assert await replica.wait_ready(60)
            os.killpg(replica.proc.pid, signal.SIGKILL)
            await asyncio.wait_for(replica.proc.wait(), 10)
            return replica.returncode
        finally:
            await backend.close()

    assert asyncio.run(main()) == -signal.SIGKILL


def test_replica_that_cannot_load_is_not_ready(tmp_path: Path):
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "model.joblib").write_bytes(b"not a pickle")

    async def main() -> tuple[bool, int | None, list[str]]:
        backend = ZygoteBackend()
        await backend.start_zygote()
        try:
            replica = await backend.start(_spec(broken, tmp_path))
            ok = await replica.wait_ready(60)
            await replica.proc.wait()
            return ok, replica.returncode, replica.last_lines(5)
        finally:
            await backend.close()

    ok, code, lines = asyncio.run(main())
    assert not ok
    assert code not in (None, 0)
    assert any("error" in line.lower() for line in lines), lines


def test_zygote_failure_falls_back_to_processes(iris_dir: Path, tmp_path: Path):
    async def main() -> dict:
        backend = ZygoteBackend()  # never started: replicas must still run
        return await _serve_once(backend, _spec(iris_dir, tmp_path))

    assert asyncio.run(main()) == {"predictions": [1]}
