"""``kserve.KServeClient`` from PyPI against a real ``modelport up``, through the kubeconfig
``modelport kubeconfig`` writes: create, get, list, wait_isvc_ready, patch, replace, delete.

The SDK runs in an interpreter of its own: kserve pins ``protobuf<7`` and modelport needs
``protobuf>=7``, so the two cannot share one environment (nor one pyproject extra). The
environment is ``$MODELPORT_KSERVE_PYTHON`` if set, else a virtualenv under
``~/.cache/modelport`` that the first run creates with pip. kubernetes 37's client validates
bodies with pydantic and refuses the model objects KServeClient passes, so it is pinned below.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.conftest import PlatformProcess

SDK_REQUIREMENTS = ["kserve==0.21.0", "kubernetes==36.0.3", "urllib3>=2.7"]
DEFAULT_VENV = Path.home() / ".cache" / "modelport" / "kserve-sdk-venv"

# What a notebook does with the SDK; prints what it saw as JSON.
SCRIPT = """
import json, sys
from kubernetes import client
from kserve import (KServeClient, V1beta1InferenceService, V1beta1InferenceServiceSpec,
                    V1beta1PredictorSpec, V1beta1SKLearnSpec, constants)

config_file, namespace, uri = sys.argv[1:4]
kserve = KServeClient(config_file=config_file)


def isvc(min_replicas=None):
    return V1beta1InferenceService(
        api_version=constants.KSERVE_V1BETA1,
        kind="InferenceService",
        metadata=client.V1ObjectMeta(name="sdk-iris", namespace=namespace, labels={"via": "sdk"}),
        spec=V1beta1InferenceServiceSpec(
            predictor=V1beta1PredictorSpec(
                min_replicas=min_replicas, sklearn=V1beta1SKLearnSpec(storage_uri=uri)
            )
        ),
    )


seen = {}
created = kserve.create(isvc())
seen["created"] = created["metadata"]["name"]
kserve.wait_isvc_ready("sdk-iris", namespace=namespace, timeout_seconds=90, polling_interval=1)
seen["ready"] = kserve.is_isvc_ready("sdk-iris", namespace=namespace)
seen["url"] = kserve.get("sdk-iris", namespace=namespace)["status"]["url"]
seen["listed"] = [i["metadata"]["name"] for i in kserve.get(namespace=namespace)["items"]]
patched = kserve.patch("sdk-iris", isvc(min_replicas=2), namespace=namespace)
seen["patched"] = [patched["spec"]["predictor"]["minReplicas"], patched["metadata"]["generation"]]
replaced = kserve.replace("sdk-iris", isvc(min_replicas=1), namespace=namespace)
generation = replaced["metadata"]["generation"]
seen["replaced"] = [replaced["spec"]["predictor"]["minReplicas"], generation]
kserve.wait_isvc_ready(
    "sdk-iris", namespace=namespace, timeout_seconds=90, polling_interval=1,
    expected_generation=generation,
)
kserve.delete("sdk-iris", namespace=namespace)
try:
    kserve.get("sdk-iris", namespace=namespace)
    seen["after_delete"] = "found"
except RuntimeError as exc:
    seen["after_delete"] = "404" if "(404)" in str(exc) else str(exc)[:500]
print(json.dumps(seen))
"""


def _has_sdk(python: str) -> bool:
    probe = [python, "-c", "import kserve, kubernetes"]
    return subprocess.run(probe, capture_output=True, timeout=120).returncode == 0


@pytest.fixture(scope="module")
def sdk_python() -> str:
    given = os.environ.get("MODELPORT_KSERVE_PYTHON")
    if given:
        return given
    python = DEFAULT_VENV / "bin" / "python"
    if not python.exists():
        DEFAULT_VENV.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, "-m", "venv", str(DEFAULT_VENV)], check=True, timeout=300)
    if not _has_sdk(str(python)):
        install = [str(python), "-m", "pip", "install", "-q", *SDK_REQUIREMENTS]
        done = subprocess.run(install, capture_output=True, text=True, timeout=1800)
        if done.returncode != 0 or not _has_sdk(str(python)):
            pytest.skip(f"could not install the KServe SDK: {done.stderr[-500:]}")
    return str(python)


def test_kserve_client_lifecycle(
    platform: PlatformProcess,
    sdk_python: str,
    iris_dir: Path,
    tmp_path_factory: pytest.TempPathFactory,
):
    home = tmp_path_factory.mktemp("sdk-home")
    kubeconfig = home / "kubeconfig"
    kubeconfig.write_text(platform.cli("kubeconfig").stdout)
    script = home / "notebook.py"
    script.write_text(SCRIPT)
    # The notebook's environment: its own HOME and PATH; the exec plugin in the kubeconfig
    # finds the saved login by the config dir written into it.
    env = {"HOME": str(home), "PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    done = subprocess.run(
        [sdk_python, str(script), str(kubeconfig), "default", f"file://{iris_dir}"],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["created"] == "sdk-iris"
    assert seen["ready"] is True
    assert seen["url"] == "http://sdk-iris.default.example.com"
    assert "sdk-iris" in seen["listed"]
    assert seen["patched"] == [2, 2]
    assert seen["replaced"] == [1, 3]
    assert seen["after_delete"] == "404"
