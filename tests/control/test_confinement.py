"""Replicas confined by Landlock alone (as when the platform is not root: no uid of their
own, no mount namespace), by resource limits, and the platform's own secrets handling.
The test process runs as root on CI, so a denial here is Landlock's, not file modes'."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from modelport.control.backends import landlock
from modelport.control.backends.confine import Confinement, cpus_for, runtime_paths
from modelport.control.backends.isolation import UidMap
from modelport.control.backends.process import ProcessBackend, ReplicaSpec, ZygoteBackend

MODELS = Path(__file__).parent.parent / "e2e" / "models"
pytestmark = pytest.mark.skipif(landlock.abi_version() < 6, reason="needs Landlock ABI ≥ 6")


async def _ask(backend: ProcessBackend | ZygoteBackend, spec: ReplicaSpec) -> object:
    replica = await backend.start(spec)
    try:
        assert await replica.wait_ready(60), replica.last_lines(20)
        async with httpx.AsyncClient(timeout=60) as c:
            r = await c.post(
                f"http://{replica.address}/v1/models/{spec.model_name}:predict",
                json={"instances": [1]},
                headers={"modelport-replica-key": replica.key},
            )
        assert r.status_code == 200, r.text
        return r.json()["predictions"]
    finally:
        await replica.stop()


def _run(kind: str, specs: list[ReplicaSpec]) -> list[object]:
    async def main() -> list[object]:
        backend = ZygoteBackend() if kind == "zygote" else ProcessBackend()
        if isinstance(backend, ZygoteBackend):
            await backend.start_zygote()
        try:
            return [await _ask(backend, spec) for spec in specs]
        finally:
            if isinstance(backend, ZygoteBackend):
                await backend.close()

    return asyncio.run(main())


@pytest.mark.parametrize("kind", ["process", "zygote"])
def test_landlock_alone_keeps_model_code_in(kind: str, tmp_path: Path, iris_dir: Path):
    data = tmp_path / "data"
    (data / "logs").mkdir(parents=True)
    (data / "identity.db").write_text("signing keys")
    (data / "control.db").write_text("services")
    (data / "cache").mkdir()
    victim_log = data / "logs" / "victim.log"
    victim_log.write_text("another tenant's log")
    private = data / "run" / "intruder"
    private.mkdir(parents=True)
    model = tmp_path / "models" / "intruder.py"
    model.parent.mkdir()
    model.write_bytes((MODELS / "intruder.py").read_bytes())
    env = {
        "TARGET_DATA_DIR": str(data),
        "TARGET_PLATFORM_PID": str(os.getpid()),
        "TARGET_VICTIM_LOG": str(victim_log),
        "TARGET_VICTIM_MODEL": str(iris_dir / "model.joblib"),
        "TARGET_VICTIM_PORT": "9",  # the discard port: nothing listens, refused
        "TARGET_OTHER_PIDS": str(os.getppid()),
    }
    spec = ReplicaSpec(
        "intruder",
        model,
        "custom",
        data / "logs" / "intruder.log",
        env=env,
        confinement=Confinement(
            model_paths=(str(model),), private_dir=str(private), port=0, hidden=(str(data),)
        ),
    )
    (found,) = _run(kind, [spec])[0]  # type: ignore[misc]
    allowed = {"own tmp", "own model", "numpy"}
    unreachable = {"victim replica without key", "victim replica guessed key"}
    # Run as root, setuid(0) is no escalation; the platform never leaves a replica root.
    unchecked = {"uid", "secrets in environment", "setuid root"}
    for attempt, outcome in found.items():
        if attempt in allowed:
            assert outcome.startswith("ok"), (attempt, outcome)
        elif attempt not in unchecked:
            assert outcome.startswith("denied"), (attempt, outcome)
            if attempt not in unreachable | {"setuid root", "shell", "signal platform"}:
                # Landlock's refusal, although this process is root and the files exist.
                assert "Permission denied" in outcome, (attempt, outcome)
    assert found["secrets in environment"] == []
    assert not (data / "intruder").exists()


def test_resource_limits_hold(tmp_path: Path):
    model = MODELS / "limits_probe.py"
    run = tmp_path / "run"
    run.mkdir()

    def spec(memory: int | None, cpu: float | None, allocate_mb: int) -> ReplicaSpec:
        return ReplicaSpec(
            "limits-probe",
            model,
            "custom",
            tmp_path / "probe.log",
            env={"PROBE_ALLOCATE_MB": str(allocate_mb)},
            confinement=Confinement(
                model_paths=(str(model),),
                private_dir=str(run),
                port=0,
                memory_bytes=memory,
                cpus=cpus_for(cpu, 0),
            ),
        )

    limited, free = _run("zygote", [spec(1 << 30, 1.0, 2048), spec(None, None, 64)])
    assert limited == [[sorted(os.sched_getaffinity(0))[0]], False]
    assert free == [sorted(os.sched_getaffinity(0)), True]


def test_hidden_folders_are_cut_out_of_what_replicas_read(tmp_path: Path):
    site = tmp_path / "site"
    (site / "data" / "inner").mkdir(parents=True)
    (site / "lib").mkdir()
    (site / "link-to-data").symlink_to(site / "data")
    sys.path.insert(0, str(site))
    try:
        paths = runtime_paths([str(site / "data")])
    finally:
        sys.path.remove(str(site))
    assert site / "lib" in paths
    assert not any(p == site or site / "data" in (p, *p.parents) for p in paths)
    assert site / "link-to-data" not in paths  # a link would open the hidden folder again


def test_uids_are_one_per_namespace_and_kept(tmp_path: Path):
    first = UidMap(tmp_path / "uids.json")
    a, b = first.uid("team-a"), first.uid("team-b")
    assert a != b and a > 1_000_000_000 and first.uid("team-a") == a
    again = UidMap(tmp_path / "uids.json")
    assert again.uid("team-b") == b and again.uid("team-c") not in (a, b)


def test_admin_password_leaves_proc_environ(tmp_path: Path):
    code = (
        "from modelport.control.backends.isolation import take_from_environment as t\n"
        "import os\n"
        "assert t('MODELPORT_ADMIN_PASSWORD') == 'hunter2-secret'\n"
        "assert 'MODELPORT_ADMIN_PASSWORD' not in os.environ\n"
        "print(open('/proc/self/environ', 'rb').read().count(b'hunter2-secret'))\n"
    )
    env = {**os.environ, "MODELPORT_ADMIN_PASSWORD": "hunter2-secret"}
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "0"


def test_platform_state_is_private(tmp_path: Path):
    data = tmp_path / "data"
    data.mkdir(mode=0o755)
    (data / "identity.db").write_text("keys")
    os.chmod(data / "identity.db", 0o644)
    code = (
        "import os, sys\n"
        "from pathlib import Path\n"
        "from modelport.control.backends.isolation import harden_platform\n"
        "harden_platform(Path(sys.argv[1]))\n"
        "Path(sys.argv[1], 'new.db').write_text('x')\n"
        "import ctypes; print(ctypes.CDLL(None).prctl(3, 0, 0, 0, 0))\n"  # PR_GET_DUMPABLE
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(data)], capture_output=True, text=True, check=True
    )
    assert out.stdout.split()[-1] == "0"  # not dumpable: /proc/PID/* closed to same-uid peers
    for path, mode in ((data, 0o700), (data / "identity.db", 0o600), (data / "new.db", 0o600)):
        assert path.stat().st_mode & 0o777 == mode, path
