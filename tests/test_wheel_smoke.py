"""What `pip install modelport` gives a user: the wheel built from this tree, installed in a
fresh virtualenv (no editable install, no test packages), serves a model, runs the platform,
shows its login page and answers an inference through the gateway."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import venv
from pathlib import Path

import httpx
import pytest

from tests.conftest import ROOT, password_grant, start_and_read

ADMIN, PASSWORD = "admin@example.com", "wheel-smoke-123"


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bin folder of a fresh virtualenv with only the wheel and its dependencies."""
    work = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(work / "dist"), "."],
        cwd=ROOT, check=True, timeout=300,
    )  # fmt: skip
    (wheel,) = (work / "dist").glob("modelport-*.whl")
    venv.create(work / "venv", with_pip=True)
    bin_dir = work / "venv" / "bin"
    subprocess.run(
        [str(bin_dir / "pip"), "install", "-q", str(wheel)], check=True, timeout=900, cwd=work
    )
    return bin_dir


def _run(bin_dir: Path, *args: str, **kwargs: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(bin_dir / "modelport"), *args], capture_output=True, text=True, timeout=120,
        check=True, **kwargs,  # type: ignore[arg-type]
    )  # fmt: skip


def test_the_installed_wheel_serves_and_runs_the_platform(
    installed: Path, iris_dir: Path, tmp_path: Path
):
    # Imported from the venv, not from this checkout.
    where = subprocess.run(
        [str(installed / "python"), "-c", "import modelport; print(modelport.__file__)"],
        capture_output=True, text=True, check=True, cwd=tmp_path,
    ).stdout  # fmt: skip
    assert "site-packages" in where and str(ROOT) not in where

    proc, found, _ = start_and_read(
        [str(installed / "modelport"), "serve", str(iris_dir), "--name", "iris",
         "--http-port", "0", "--grpc-port", "-1"],
        {"url": r"REST\s+(http://\S+)"}, ready="metrics", cwd=tmp_path,
    )  # fmt: skip
    try:
        r = httpx.post(
            f"{found['url']}/v1/models/iris:predict", json={"instances": [[6.8, 2.8, 4.8, 1.4]]}
        )
        assert r.status_code == 200 and r.json() == {"predictions": [1]}
    finally:
        proc.terminate()
        proc.wait(30)

    env = {**os.environ, "MODELPORT_ADMIN_EMAIL": ADMIN, "MODELPORT_ADMIN_PASSWORD": PASSWORD,
           "MODELPORT_CONFIG_DIR": str(tmp_path / "config")}  # fmt: skip
    proc, found, _ = start_and_read(
        [str(installed / "modelport"), "up", "--port", "0", "--data-dir", str(tmp_path / "data")],
        {"url": r"modelport platform: (http://\S+)"}, env=env, cwd=tmp_path,
        ready="modelport platform:",
    )  # fmt: skip
    url = found["url"]
    try:
        login = httpx.get(f"{url}/", follow_redirects=True)
        assert login.status_code == 200 and "Log in to Your Account" in login.text
        bearer = password_grant(url, ADMIN, PASSWORD)
        assert httpx.get(f"{url}/_ui/home.js", headers=bearer).status_code == 200
        doc = (
            "apiVersion: serving.kserve.io/v1beta1\nkind: InferenceService\n"
            "metadata: {name: iris}\nspec:\n  predictor:\n    model:\n"
            f"      modelFormat: {{name: sklearn}}\n      storageUri: {iris_dir}\n"
        )
        assert httpx.post(f"{url}/api/v1/apply", content=doc, headers=bearer).status_code == 200
        for _ in range(600):
            r = httpx.post(
                f"{url}/serving/default/iris/v1/models/iris:predict",
                json={"instances": [[6.8, 2.8, 4.8, 1.4]]}, headers=bearer, timeout=60,
            )  # fmt: skip
            if r.status_code != 503:
                break
        assert r.status_code == 200 and r.json() == {"predictions": [1]}, r.text
    finally:
        proc.terminate()
        proc.wait(30)
    assert re.match(r"\d", _run(installed, "version").stdout)
