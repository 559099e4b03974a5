"""deploy/kserve: the ClusterServingRuntime that makes modelport's model server a runtime in
a real KServe cluster, and the image it names.

Checked three ways: against KServe's own CRD schema (vendored from kserve/kserve, so the
manifest applies to a cluster), by modelport's own spec reader (so the same file applies to
`modelport up`), and by running the container's command and arguments as KServe would fill
them in (so the flags exist and serve), on loopback ports instead of 8080/8081.
"""

from __future__ import annotations

import sys
import tomllib
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest
import yaml

from modelport.control.serving_runtimes import resolve_runtime
from modelport.control.spec import ServingRuntime, parse_document, parse_service
from tests.conftest import ROOT, launch

MANIFEST = ROOT / "deploy" / "kserve" / "clusterservingruntime.yaml"
DOCKERFILE = ROOT / "deploy" / "kserve" / "Dockerfile"
CRD = (
    ROOT / "tests" / "vectors" / "kserve" / "crd" / "serving.kserve.io_clusterservingruntimes.yaml"
)


def manifest() -> dict[str, Any]:
    doc = yaml.safe_load(MANIFEST.read_text())
    assert isinstance(doc, dict)
    return doc


def crd_schema() -> dict[str, Any]:
    crd = yaml.safe_load(CRD.read_text())
    version = next(v for v in crd["spec"]["versions"] if v["name"] == "v1alpha1")
    schema = version["schema"]["openAPIV3Schema"]
    assert isinstance(schema, dict)
    return schema


def test_the_manifest_is_valid_for_kserves_crd() -> None:
    jsonschema.validate(manifest(), crd_schema())


def test_the_crd_schema_catches_a_malformed_runtime() -> None:
    # The check above must be able to fail: the same manifest, broken as a typo would.
    broken = manifest()
    broken["spec"]["containers"] = {"name": "kserve-container"}
    with pytest.raises(jsonschema.ValidationError, match="is not of type 'array'"):
        jsonschema.validate(broken, crd_schema())


def test_modelport_reads_it_and_picks_it_by_name() -> None:
    runtime = parse_document(manifest())
    assert isinstance(runtime, ServingRuntime)
    assert runtime.name == "modelport" and runtime.namespace is None
    assert {f.name for f in runtime.supported_formats} == {"sklearn", "xgboost", "lightgbm", "onnx"}
    assert runtime.protocol_versions == ["v1", "v2", "grpc-v2"]
    isvc = parse_service(
        {
            "apiVersion": "serving.kserve.io/v1beta1",
            "kind": "InferenceService",
            "metadata": {"name": "iris", "namespace": "default"},
            "spec": {
                "predictor": {
                    "model": {
                        "modelFormat": {"name": "sklearn"},
                        "runtime": "modelport",
                        "storageUri": "gs://kfserving-examples/models/sklearn/1.0/model",
                    }
                }
            },
        }
    )
    assert resolve_runtime("default", isvc.predictor, [runtime]).name == "modelport"


def container_argv(model_dir: Path, name: str) -> list[str]:
    """The container's command and arguments as KServe fills them in, on free loopback ports."""
    container = manifest()["spec"]["containers"][0]
    assert container["name"] == "kserve-container"  # the container KServe runs the model in
    assert container["command"] == ["modelport", "serve"]
    local = {
        "/mnt/models": str(model_dir),
        "--host=0.0.0.0": "--host=127.0.0.1",
        "--http-port=8080": "--http-port=0",
        "--grpc-port=8081": "--grpc-port=0",
    }
    args = [local.get(a, a).replace("{{.Name}}", name) for a in container["args"]]
    assert set(local) <= set(container["args"]), "the manifest's arguments changed"
    return [sys.executable, "-m", "modelport", "serve", *args]


def test_the_containers_arguments_serve_the_model(iris_dir: Path) -> None:
    server = launch(container_argv(iris_dir, "iris"))
    try:
        with httpx.Client(base_url=server.url, timeout=30) as client:
            assert client.get("/v2/models/iris/ready").status_code == 200
            answer = client.post(
                "/v1/models/iris:predict", json={"instances": [[5.1, 3.5, 1.4, 0.2]]}
            )
        assert answer.status_code == 200
        assert answer.json() == {"predictions": [0]}
        assert server.grpc_port is not None  # grpc-v2 is served as the manifest declares
    finally:
        server.stop()


def test_the_image_installs_extras_that_exist_and_runs_the_same_command() -> None:
    text = DOCKERFILE.read_text()
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]
    wanted = text.split('"/src[', 1)[1].split("]", 1)[0].split(",")
    assert wanted and set(wanted) <= set(extras)
    assert 'ENTRYPOINT ["modelport", "serve"]' in text
    assert "USER 1000" in text  # the manifest's runAsNonRoot needs a numeric non-root user
