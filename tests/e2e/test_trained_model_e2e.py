"""TrainedModels on the whole platform: loaded into a running sklearn parent and answering at
the parent's URL (V1 and V2), loaded again into a restarted replica, unloaded on delete; not
ready, with KServe's reason, when the parent is missing, in another namespace, or of another
framework; refused to someone without edit rights in the namespace."""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import wait_for
from tests.e2e.conftest import PlatformProcess, isvc_yaml, start_platform, wait_ready

SETOSA = [5.1, 3.5, 1.4, 0.2]
OUTSIDER = "outsider@example.com"
OUTSIDER_PASSWORD = "outsider-password-1"


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PlatformProcess]:
    work = tmp_path_factory.mktemp("trained")
    running = start_platform(work / "data", work / "config")
    yield running
    running.stop()


@pytest.fixture(scope="module")
def shifted_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An iris model whose classes are shifted by one: setosa answers 1, so its answers
    cannot be mistaken for the parent's own model's."""
    import joblib
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    x, y = load_iris(return_X_y=True)
    path = tmp_path_factory.mktemp("shifted")
    joblib.dump(LogisticRegression(max_iter=1000).fit(x, (y + 1) % 3), path / "model.joblib")
    return path


def tm_yaml(name: str, parent: str, uri: Path | str, **fields: str) -> str:
    namespace = fields.get("namespace", "default")
    return (
        "apiVersion: serving.kserve.io/v1alpha1\n"
        "kind: TrainedModel\n"
        f"metadata:\n  name: {name}\n  namespace: {namespace}\n"
        f"spec:\n  inferenceService: {parent}\n"
        f"  model:\n    storageUri: {uri}\n"
        f"    framework: {fields.get('framework', 'sklearn')}\n"
        f"    memory: {fields.get('memory', '64Mi')}\n"
    )


def _apply(
    platform: PlatformProcess, tmp_path: Path, text: str, check: bool = True
) -> subprocess.CompletedProcess[str]:
    f = tmp_path / "doc.yaml"
    f.write_text(text)
    return platform.cli("apply", "-f", str(f), check=check)


def _tm(c: httpx.Client, name: str, namespace: str = "default") -> dict[str, Any]:
    r = c.get(f"/api/v1/namespaces/{namespace}/trainedmodels/{name}")
    assert r.status_code == 200, r.text
    item: dict[str, Any] = r.json()
    return item


def _ready(item: dict[str, Any]) -> dict[str, Any]:
    return next(c for c in item["status"]["conditions"] if c["type"] == "Ready")


def _predict(c: httpx.Client, parent: str, model: str) -> httpx.Response:
    return c.post(
        f"/serving/default/{parent}/v1/models/{model}:predict", json={"instances": [SETOSA]}
    )


def _limited_parent(name: str, model: Path, memory: str) -> str:
    return (
        "apiVersion: serving.kserve.io/v1beta1\n"
        "kind: InferenceService\n"
        f"metadata:\n  name: {name}\n"
        "spec:\n  predictor:\n    model:\n      modelFormat: {name: sklearn}\n"
        f"      storageUri: {model}\n"
        f"      resources: {{limits: {{memory: {memory}}}}}\n"
    )


def _replica_pids(platform: PlatformProcess, name: str) -> list[int]:
    """Model server processes the platform's zygote named mp:NAME (see test_platform_e2e)."""
    procs: dict[int, tuple[int, str]] = {}
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            stat = (proc / "stat").read_text()
            comm = (proc / "comm").read_text().strip()
        except OSError:
            continue
        procs[int(proc.name)] = (int(stat.rsplit(")", 1)[1].split()[1]), comm)

    def under_platform(pid: int) -> bool:
        while pid > 1 and pid in procs:
            pid = procs[pid][0]
            if pid == platform.proc.pid:
                return True
        return False

    label = f"mp:{name}"[:15]
    return [
        pid
        for pid, (ppid, comm) in procs.items()
        if comm == label and procs.get(ppid, (0, ""))[1] != label and under_platform(pid)
    ]


def test_loaded_into_the_parent_survives_a_restart_and_unloads_on_delete(
    platform: PlatformProcess, iris_dir: Path, shifted_dir: Path, tmp_path: Path
) -> None:
    _apply(platform, tmp_path, isvc_yaml("iris", str(iris_dir)))
    wait_ready(platform, "iris")
    out = _apply(platform, tmp_path, tm_yaml("shifted", "iris", shifted_dir))
    assert "trainedmodel.serving.kserve.io/shifted created" in out.stdout
    with platform.client() as c:
        assert wait_for(lambda: _ready(_tm(c, "shifted"))["status"] == "True", 60), _tm(
            c, "shifted"
        )
        item = _tm(c, "shifted")
        assert item["status"]["url"] == (
            "http://iris.default.example.com/v1/models/shifted:predict"
        )
        assert item["metadata"]["labels"]["inferenceservice"] == "iris"
        # The parent's own model answers as before, the TrainedModel beside it.
        assert _predict(c, "iris", "iris").json() == {"predictions": [0]}
        assert _predict(c, "iris", "shifted").json() == {"predictions": [1]}
        v2 = c.post(
            "/v2/models/shifted/infer",
            headers={"Host": "iris.default.example.com"},
            json={"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP32", "data": SETOSA}]},
        )
        assert v2.status_code == 200, v2.text
        assert v2.json()["outputs"][0]["data"] == [1]

        listed = platform.cli("get", "tm").stdout
        assert "shifted" in listed and "True" in listed
        described = platform.cli("describe", "tm", "shifted").stdout
        assert "InferenceService:  iris" in described

        # A restarted replica has a fresh private folder: the model is loaded into it again.
        pids = _replica_pids(platform, "iris")
        assert len(pids) == 1
        os.killpg(pids[0], signal.SIGKILL)

        def answers_again() -> bool:
            now = _replica_pids(platform, "iris")
            return bool(now) and now != pids and _predict(c, "iris", "shifted").status_code == 200

        assert wait_for(answers_again, 90), platform.log()[-2000:]
        assert _predict(c, "iris", "shifted").json() == {"predictions": [1]}

        # A new storageUri is a new model: loaded again in place of the old one.
        _apply(platform, tmp_path, tm_yaml("shifted", "iris", iris_dir))
        assert wait_for(lambda: _predict(c, "iris", "shifted").json() == {"predictions": [0]}, 60)

        platform.cli("delete", "tm", "shifted")
        assert wait_for(lambda: _predict(c, "iris", "shifted").status_code == 404, 30)
        assert _predict(c, "iris", "iris").json() == {"predictions": [0]}
        assert c.get("/api/v1/namespaces/default/trainedmodels/shifted").status_code == 404


def test_not_ready_with_the_reason(
    platform: PlatformProcess, iris_dir: Path, shifted_dir: Path, tmp_path: Path
) -> None:
    _apply(platform, tmp_path, isvc_yaml("iris", str(iris_dir)))
    wait_ready(platform, "iris")
    docs = "---\n".join(
        [
            tm_yaml("orphan", "no-such-service", shifted_dir),
            # The parent's name, in another namespace: a parent is looked up in the
            # TrainedModel's own namespace only.
            tm_yaml("elsewhere", "iris", shifted_dir, namespace="other-team"),
            tm_yaml("wrong-kind", "iris", shifted_dir, framework="xgboost"),
            # Over the parent's limit, with the TrainedModels applied before it.
            _limited_parent("small", iris_dir, "300Mi"),
            tm_yaml("fits", "small", shifted_dir, memory="200Mi"),
            tm_yaml("too-much", "small", shifted_dir, memory="200Mi"),
        ]
    )
    _apply(platform, tmp_path, docs)
    expected = {
        ("default", "orphan"): ("InferenceServiceReady", "InferenceServiceNotFound"),
        ("other-team", "elsewhere"): ("InferenceServiceReady", "InferenceServiceNotFound"),
        ("default", "wrong-kind"): ("Ready", "FrameworkMismatch"),
        ("default", "too-much"): ("MemoryResourceAvailable", "MemoryResourceNotAvailable"),
    }
    with platform.client() as c:
        for (namespace, name), (condition, reason) in expected.items():

            def reported(ns: str = namespace, n: str = name, r: str = reason) -> bool:
                return _ready(_tm(c, n, ns)).get("reason") == r

            assert wait_for(reported, 30), _tm(c, name, namespace)
            item = _tm(c, name, namespace)
            assert _ready(item)["status"] == "False"
            failed = next(x for x in item["status"]["conditions"] if x["type"] == condition)
            assert failed["status"] == "False" and failed["reason"] == reason
        orphan = _ready(_tm(c, "orphan"))["message"]
        assert orphan.startswith('Inference Service "no-such-service" is not found')
        # Never loaded: the parent has no such model.
        assert _predict(c, "iris", "wrong-kind").status_code == 404
        # The first one fits: it waits for its parent, or is loaded into it.
        fits = _tm(c, "fits")["status"]["conditions"]
        assert next(x for x in fits if x["type"] == "MemoryResourceAvailable")["status"] != "False"
    for namespace, name in [*expected, ("default", "fits")]:
        platform.cli("delete", "tm", name, "-n", namespace)
    platform.cli("delete", "isvc", "small")
    # The memory of an applied TrainedModel is immutable (KServe's webhook).
    _apply(platform, tmp_path, tm_yaml("fixed", "no-such-service", shifted_dir))
    changed = _apply(
        platform, tmp_path, tm_yaml("fixed", "no-such-service", shifted_dir, memory="1Gi"), False
    )
    assert changed.returncode != 0
    assert 'the Trained Model "fixed" memory field is immutable' in changed.stdout + changed.stderr
    platform.cli("delete", "tm", "fixed")


def test_an_outsider_is_refused(
    platform: PlatformProcess, iris_dir: Path, shifted_dir: Path, tmp_path: Path
) -> None:
    _apply(platform, tmp_path, isvc_yaml("iris", str(iris_dir)))
    platform.cli(
        "users", "add", OUTSIDER, "--password-stdin", "--data-dir", str(platform.data_dir),
        input=OUTSIDER_PASSWORD + "\n",
    )  # fmt: skip
    token = httpx.post(
        f"{platform.url}/dex/token",
        data={
            "grant_type": "password",
            "username": OUTSIDER,
            "password": OUTSIDER_PASSWORD,
            "client_id": "modelport-cli",
            "scope": "openid email groups",
        },
    ).json()["id_token"]
    outsider = {"Authorization": f"Bearer {token}"}
    # Into the admin's namespace: 403, nothing stored.
    doc = tm_yaml("sneaky", "iris", "s3://models/iris")
    r = httpx.post(f"{platform.url}/api/v1/apply", content=doc, headers=outsider)
    assert r.status_code == 403, r.text
    r = httpx.get(f"{platform.url}/api/v1/namespaces/default/trainedmodels", headers=outsider)
    assert r.status_code == 403
    # In a namespace of their own, a host path is for admins only.
    own = tm_yaml("mine", "iris", shifted_dir, namespace="outsider-space")
    r = httpx.post(f"{platform.url}/api/v1/apply", content=own, headers=outsider)
    assert r.status_code == 422, r.text
    assert "spec.model.storageUri" in r.text
    with platform.client() as c:
        assert c.get("/api/v1/namespaces/default/trainedmodels/sneaky").status_code == 404
