"""Issue 9's attack, end to end: a signed-in tenant without admin rights deploys model code
fetched over http that tries, as it loads, to read the platform's secrets and files, other
tenants' models and logs, and to reach another tenant's replica. It runs and serves; every
one of those attempts fails."""

from __future__ import annotations

import functools
import http.server
import os
import re
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import password_grant
from tests.e2e.conftest import PlatformProcess, isvc_yaml, start_platform, wait_ready

MODELS = Path(__file__).parent / "models"


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PlatformProcess]:
    work = tmp_path_factory.mktemp("isolation")
    # What must not reach a replica from the platform's environment: storage credentials,
    # and variables that change how Python or the loader behave (an allow-list, not a
    # blocklist that misses some).
    leaky = {
        "AWS_SECRET_ACCESS_KEY": "platform-secret",
        "PYTHONUSERBASE": str(work / "userbase"),
        "PYTHONWARNINGS": "ignore",
        "LD_BIND_NOW": "1",
    }
    running = start_platform(work / "data", work / "config", env=leaky)
    yield running
    running.stop()


@pytest.fixture(scope="module")
def web(tmp_path_factory: pytest.TempPathFactory, iris_dir: Path) -> Iterator[str]:
    """An http server with the tenants' model files."""
    root = tmp_path_factory.mktemp("web")
    shutil.copy(iris_dir / "model.joblib", root / "model.joblib")
    shutil.copy(MODELS / "intruder.py", root / "intruder.py")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def _tenant_token(platform: PlatformProcess, email: str) -> dict[str, str]:
    password = "tenant-password-123"
    platform.cli(
        "users", "add", email, "--password-stdin", "--data-dir", str(platform.data_dir),
        input=password + "\n",
    )  # fmt: skip
    return password_grant(platform.url, email, password)


def _descendants(pid: int) -> list[int]:
    """The zygote and every replica the platform runs now."""
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        for child in (task / "children").read_text().split():
            found += [int(child), *_descendants(int(child))]
    return found


def _intruder_yaml(url: str, env: dict[str, str]) -> str:
    lines = "".join(f"      - {{name: {k}, value: '{v}'}}\n" for k, v in env.items())
    return (
        "apiVersion: serving.kserve.io/v1beta1\n"
        "kind: InferenceService\n"
        "metadata:\n  name: intruder\n  namespace: mallory\n"
        "spec:\n  predictor:\n    model:\n"
        "      modelFormat: {name: custom}\n"
        f"      storageUri: {url}/intruder.py\n"
        f"      env:\n{lines}"
    )


def test_tenant_code_runs_but_reaches_nothing(platform: PlatformProcess, web: str):
    # Another tenant's service, downloaded into the platform's cache.
    r = platform.cli("apply", "-f", "-", input=isvc_yaml("victim", f"{web}/model.joblib"))
    wait_ready(platform, "victim")
    logs = sorted((platform.data_dir / "logs" / "default" / "victim").glob("*.log"))
    port = re.findall(r"--- starting on port (\d+)", logs[0].read_text())[-1]
    victim_model = next((platform.data_dir / "cache").rglob("model.joblib"))

    bearer = _tenant_token(platform, "mallory@example.com")
    env = {
        "TARGET_DATA_DIR": str(platform.data_dir.resolve()),
        "TARGET_PLATFORM_PID": str(platform.proc.pid),
        "TARGET_VICTIM_LOG": str(logs[0]),
        "TARGET_VICTIM_MODEL": str(victim_model),
        "TARGET_VICTIM_PORT": port,
        "TARGET_OTHER_PIDS": ",".join(map(str, _descendants(platform.proc.pid))),
    }
    r = httpx.post(f"{platform.url}/api/v1/apply", content=_intruder_yaml(web, env), headers=bearer)
    assert r.status_code == 200, r.text
    wait_ready(platform, "intruder", "mallory")
    r = httpx.post(
        f"{platform.url}/serving/mallory/intruder/v1/models/intruder:predict",
        json={"instances": [1]},
        headers=bearer,
        timeout=60,
    )
    assert r.status_code == 200, r.text
    found = r.json()["predictions"][0]

    refused = {"victim replica without key", "victim replica guessed key"}
    allowed = {"own tmp", "own model", "numpy"}
    for attempt, outcome in found.items():
        if attempt in allowed:
            assert outcome.startswith("ok"), (attempt, outcome)
        elif attempt in refused:
            assert outcome == "ok: 403", (attempt, outcome)
        elif attempt not in ("uid", "secrets in environment"):
            assert outcome.startswith("denied"), (attempt, outcome)
    assert found["secrets in environment"] == []
    if os.geteuid() == 0:
        assert found["uid"] != "0"
    # The platform itself was not touched, and still serves the other tenant.
    assert not (platform.data_dir / "intruder").exists()
    assert not Path("/tmp/modelport-intruder-was-here").exists()
    with platform.client() as c:
        r = c.post(
            "/serving/default/victim/v1/models/victim:predict", json={"instances": [[1, 2, 3, 4]]}
        )
    assert r.status_code == 200
    platform.cli("delete", "isvc", "victim")
