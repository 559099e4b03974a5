"""The serving.kserve.io/deploymentMode annotation: ModelMesh is refused (archived upstream),
RawDeployment is kept and reported as not acted on, Serverless is what modelport does; the
same through `modelport apply` against a running platform."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from modelport.control.spec.deployment_mode import DEPLOYMENT_MODE
from tests.control.test_spec import model, one, problem_at, problems
from tests.e2e.conftest import PlatformProcess, isvc_yaml, start_platform

PATH = f"metadata.annotations[{DEPLOYMENT_MODE}]"


def with_mode(text: str, mode: str) -> str:
    """``text`` (an InferenceService whose metadata has only a name) with the annotation."""
    return text.replace(
        "metadata:\n", f"metadata:\n  annotations:\n    {DEPLOYMENT_MODE}: {mode}\n", 1
    )


def test_model_mesh_is_refused_naming_the_annotation_and_why() -> None:
    message = problem_at(with_mode(model(), "ModelMesh"), PATH)
    assert "ModelMesh is not supported" in message
    assert "archived upstream" in message
    assert "kserve/modelmesh-serving" in message


@pytest.mark.parametrize("mode", ["Serverless", "Knative"])
def test_serverless_is_what_modelport_does(mode: str) -> None:
    isvc = one(with_mode(model(), mode))
    assert PATH not in isvc.ignored
    assert isvc.annotations[DEPLOYMENT_MODE] == mode


@pytest.mark.parametrize("mode", ["RawDeployment", "Standard"])
def test_raw_deployment_is_kept_but_reported_as_not_acted_on(mode: str) -> None:
    isvc = one(with_mode(model(), mode))
    assert isvc.ignored == [PATH]
    assert isvc.annotations[DEPLOYMENT_MODE] == mode


def test_no_annotation_reports_nothing() -> None:
    assert PATH not in one(model()).ignored


@pytest.mark.parametrize("mode", ["modelmesh", "Raw", '""', "'1'"])
def test_unknown_or_miscased_modes_are_refused_with_the_known_ones(mode: str) -> None:
    message = problem_at(with_mode(model(), mode), PATH)
    assert "unknown deployment mode" in message
    assert "Serverless" in message and "RawDeployment" in message


def test_model_mesh_is_reported_beside_other_problems() -> None:
    text = with_mode(model(extra="minReplicas: -1"), "ModelMesh")
    paths = {p.path for p in problems(text)}
    assert PATH in paths and "spec.predictor.minReplicas" in paths


# ---- through `modelport apply` -------------------------------------------------------------


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PlatformProcess]:
    work = tmp_path_factory.mktemp("deployment-mode")
    running = start_platform(work / "data", work / "config")
    yield running
    running.stop()


def _apply(
    platform: PlatformProcess, tmp_path: Path, name: str, mode: str
) -> subprocess.CompletedProcess[str]:
    f = tmp_path / f"{name}.yaml"
    f.write_text(with_mode(isvc_yaml(name, "s3://bucket/iris"), mode))
    return platform.cli("apply", "-f", str(f), check=False)


def test_apply_refuses_model_mesh_with_422(platform: PlatformProcess, tmp_path: Path) -> None:
    out = _apply(platform, tmp_path, "meshed", "ModelMesh")
    assert out.returncode != 0
    assert DEPLOYMENT_MODE in out.stderr and "ModelMesh is not supported" in out.stderr
    with platform.client() as c:
        r = c.post("/api/v1/apply", content=with_mode(isvc_yaml("meshed", "s3://b/m"), "ModelMesh"))
    assert r.status_code == 422
    assert [p["path"] for p in r.json()["problems"]] == [PATH]
    gone = platform.cli("get", "isvc", "meshed", check=False)
    assert gone.returncode == 1 and "not found" in gone.stderr


def test_apply_notes_raw_deployment(platform: PlatformProcess, tmp_path: Path) -> None:
    out = _apply(platform, tmp_path, "raw", "RawDeployment")
    assert out.returncode == 0, out.stderr
    assert "raw created" in out.stdout
    assert f"note: {PATH} is kept but not acted on" in out.stderr
    platform.cli("delete", "isvc", "raw")
