"""spec.explainer on the whole platform: ``:explain`` through the gateway reaches the
explainer replica, which calls the predictor; ``:predict`` still reaches the predictor; the
status names the explainer; explainers KServe removed or ships as images are refused."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.conftest import PlatformProcess, isvc_yaml, start_platform, wait_ready

MODELS = Path(__file__).parent / "models"
VERSICOLOR = [6.8, 2.8, 4.8, 1.4]
SETOSA = [5.1, 3.5, 1.4, 0.2]


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PlatformProcess]:
    work = tmp_path_factory.mktemp("explainer")
    running = start_platform(work / "data", work / "config")
    yield running
    running.stop()


def _apply(platform: PlatformProcess, tmp_path: Path, text: str, check: bool = True):
    f = tmp_path / "doc.yaml"
    f.write_text(text)
    return platform.cli("apply", "-f", str(f), check=check)


def _with_explainer(name: str, iris_dir: Path) -> str:
    return isvc_yaml(name, str(iris_dir)) + (
        "  explainer:\n"
        "    containers:\n"
        "    - name: kserve-container\n"
        "      image: example.com/iris-explainer:latest\n"
        "      env:\n"
        "      - name: STORAGE_URI\n"
        f"        value: file://{MODELS / 'iris_explainer.py'}\n"
    )


def test_explain_goes_to_the_explainer_which_calls_the_predictor(
    platform: PlatformProcess, iris_dir: Path, tmp_path: Path
) -> None:
    _apply(platform, tmp_path, _with_explainer("explained", iris_dir))
    item = wait_ready(platform, "explained")
    explainer = item["status"]["components"]["explainer"]
    assert explainer["latestCreatedRevision"] == "explained-explainer-00001"
    assert explainer["latestReadyRevision"] == "explained-explainer-00001"
    kinds = {c["type"]: c["status"] for c in item["status"]["conditions"]}
    assert kinds["ExplainerReady"] == "True"
    base = "/serving/default/explained/v1/models/explained"
    rows = {"instances": [VERSICOLOR, SETOSA]}
    with platform.client() as c:
        explained = c.post(f"{base}:explain", json=rows)
        predicted = c.post(f"{base}:predict", json=rows)
        # By Host as well, the way KServe's ingress routes :explain.
        by_host = c.post(
            "/v1/models/explained:explain",
            json={"instances": [SETOSA]},
            headers={"Host": "explained.default.example.com"},
        )
    assert explained.status_code == 200, explained.text
    body = explained.json()
    assert body["explainer"] is True
    # Derived from the predictor's answer: versicolor is class 1, setosa class 0.
    assert [(e["class"], e["name"]) for e in body["explanations"]] == [
        (1, "versicolor"),
        (0, "setosa"),
    ]
    assert predicted.status_code == 200
    assert predicted.json() == {"predictions": [1, 0]}
    assert by_host.status_code == 200, by_host.text
    assert by_host.json()["explanations"][0]["name"] == "setosa"
    described = platform.cli("describe", "isvc", "explained").stdout
    assert "Explainer:" in described and "explained-explainer-00001" in described
    logs = platform.cli("logs", "explained", "--component", "explainer").stdout
    assert "explained-explainer-00001-0" in logs
    platform.cli("delete", "isvc", "explained")


def test_hostile_and_removed_explainers_are_refused(
    platform: PlatformProcess, iris_dir: Path, tmp_path: Path
) -> None:
    base = isvc_yaml("refused", str(iris_dir))
    cases = {
        "  explainer:\n    alibi:\n      type: AnchorTabular\n": "removed from KServe in v0.13.0",
        "  explainer:\n    art:\n      type: SquareAttack\n": "ART explainer",
        "  explainer:\n    minReplicas: 1\n": "exactly one of [ART, PodSpec, "
        "ComponentExtensionSpec] must be specified in ExplainerSpec",
        # A local path is for admins only: checked as the predictor's is (as a non-admin
        # would be refused; the admin here may, so use a path that does not exist instead).
        "  explainer:\n    model:\n      storageUri: ftp://host/explainer.py\n": "spec.explainer",
    }
    for extra, message in cases.items():
        result = _apply(platform, tmp_path, base + extra, check=False)
        assert result.returncode != 0, extra
        assert message in result.stdout + result.stderr, result.stdout + result.stderr
    with platform.client() as c:
        assert c.get("/api/v1/namespaces/default/inferenceservices/refused").status_code == 404
