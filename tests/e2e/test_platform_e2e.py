"""The platform end to end: up → login → apply → ready → infer through the gateway with
auth → canary split → promote → scale to zero and back → crash and recovery → delete, all
real processes over loopback sockets."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import wait_for
from tests.e2e.conftest import PlatformProcess, isvc_yaml, wait_ready

SETOSA = [5.1, 3.5, 1.4, 0.2]  # class 0 for the iris model, class 2 for the constant one


@pytest.fixture(scope="module")
def constant_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A second sklearn model that always answers class 2, to tell revisions apart."""
    import joblib
    from sklearn.datasets import load_iris
    from sklearn.dummy import DummyClassifier

    x, y = load_iris(return_X_y=True)
    path = tmp_path_factory.mktemp("constant")
    joblib.dump(DummyClassifier(strategy="constant", constant=2).fit(x, y), path / "model.joblib")
    return path


def _apply(platform: PlatformProcess, tmp_path: Path, text: str, *args: str):
    f = tmp_path / f"isvc-{time.monotonic_ns()}.yaml"
    f.write_text(text)
    return platform.cli("apply", "-f", str(f), *args)


def _predict(c: httpx.Client, name: str, namespace: str = "default") -> int:
    r = c.post(
        f"/serving/{namespace}/{name}/v1/models/{name}:predict", json={"instances": [SETOSA]}
    )
    assert r.status_code == 200, r.text
    return int(r.json()["predictions"][0])


def _replica_pids(platform: PlatformProcess, name: str) -> list[int]:
    """Model server supervisors the platform started for a service: descendants of the
    platform whose comm the zygote set to mp:NAME, not counting their own workers."""
    procs: dict[int, tuple[int, str]] = {}
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            stat = (proc / "stat").read_text()
            comm = (proc / "comm").read_text().strip()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        procs[int(proc.name)] = (ppid, comm)

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


def test_deploy_and_infer_every_way(platform: PlatformProcess, iris_dir: Path, tmp_path: Path):
    out = _apply(platform, tmp_path, isvc_yaml("sklearn-iris", str(iris_dir)))
    assert "inferenceservice.serving.kserve.io/sklearn-iris created" in out.stdout
    item = wait_ready(platform, "sklearn-iris")
    assert item["status"]["url"] == "http://sklearn-iris.default.example.com"
    traffic = item["status"]["components"]["predictor"]["traffic"]
    assert traffic == [
        {"revisionName": "sklearn-iris-predictor-00001", "percent": 100, "latestRevision": True}
    ]
    table = platform.cli("get", "isvc").stdout.splitlines()
    assert table[0].split() == ["NAME", "URL", "READY", "PREV", "LATEST", "AGE"]
    assert table[1].split()[:3] == [
        "sklearn-iris",
        "http://sklearn-iris.default.example.com",
        "True",
    ]

    body = {"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP32", "data": SETOSA}]}
    with platform.client() as c:
        # KServe/Knative host routing, as Kubeflow 1.9's documented machine access.
        r = c.post(
            "/v2/models/sklearn-iris/infer",
            json=body,
            headers={"Host": "sklearn-iris.default.example.com"},
        )
        assert r.status_code == 200, r.text
        assert r.json()["outputs"][0]["data"] == [0]
        assert _predict(c, "sklearn-iris") == 0
    cli = platform.cli("infer", "sklearn-iris", "-d", '{"instances": [[6.8, 2.8, 4.8, 1.4]]}')
    assert '"predictions"' in cli.stdout and "1" in cli.stdout

    # Without credentials: 401 for API clients, never the prediction.
    r = httpx.post(
        f"{platform.url}/serving/default/sklearn-iris/v1/models/sklearn-iris:predict",
        json={"instances": [SETOSA]},
        headers={"Accept": "application/json"},
    )
    assert r.status_code == 401
    with platform.client() as c:
        # An encoded CR/LF stays encoded on its way upstream: no header is injected, the
        # model server just does not know that path.
        r = c.post(
            "/serving/default/sklearn-iris/v1/models/sklearn-iris%0d%0aX-Evil:%201:predict",
            json={"instances": [SETOSA]},
        )
        assert r.status_code == 404 and "x-evil" not in r.headers
        # Percent-encoded namespace or name segments are refused outright.
        r = c.post(
            "/serving/def%61ult/sklearn-iris/v1/models/sklearn-iris:predict",
            json={"instances": [SETOSA]},
        )
        assert r.status_code == 400
    # An unknown service is a clear 404.
    with platform.client() as c:
        r = c.post("/serving/default/nope/v1/models/nope:predict", json={"instances": [SETOSA]})
    assert r.status_code == 404
    assert "nope not found in namespace default" in r.json()["error"]


def test_get_output_formats_and_describe(platform: PlatformProcess, iris_dir: Path, tmp_path: Path):
    _apply(platform, tmp_path, isvc_yaml("sklearn-iris", str(iris_dir)))
    wait_ready(platform, "sklearn-iris")
    import json

    import yaml

    as_json = json.loads(platform.cli("get", "isvc", "sklearn-iris", "-o", "json").stdout)
    assert as_json["spec"]["predictor"]["model"]["storageUri"] == str(iris_dir)
    as_yaml = yaml.safe_load(platform.cli("get", "isvc", "sklearn-iris", "-o", "yaml").stdout)
    assert as_yaml["kind"] == "InferenceService"
    assert as_yaml["metadata"]["namespace"] == "default"
    described = platform.cli("describe", "isvc", "sklearn-iris").stdout
    assert "Ready" in described and "sklearn-iris-predictor-00001" in described
    everywhere = platform.cli("get", "isvc", "-A").stdout.splitlines()
    assert everywhere[0].split()[0] == "NAMESPACE"
    logs = platform.cli("logs", "sklearn-iris").stdout
    assert "==> sklearn-iris-predictor-00001-0 <==" in logs


def test_invalid_specs_fail_clearly(platform: PlatformProcess, tmp_path: Path):
    f = tmp_path / "bad.yaml"
    f.write_text(isvc_yaml("bad-replicas", "/tmp/x", minReplicas="-3"))
    bad = platform.cli("apply", "-f", str(f), check=False)
    assert bad.returncode == 1
    assert "spec.predictor.minReplicas" in bad.stderr
    f.write_text("kind: InferenceService\nmetadata: [unclosed\n")
    bad = platform.cli("apply", "-f", str(f), check=False)
    assert bad.returncode == 1 and "line" in bad.stderr.lower()
    f.write_text(isvc_yaml("bad-scheme", "ftp://host/model"))
    bad = platform.cli("apply", "-f", str(f), check=False)
    assert bad.returncode == 1
    assert "spec.predictor.model.storageUri" in bad.stderr and "ftp" in bad.stderr
    # Nothing was stored.
    assert "bad-" not in platform.cli("get", "isvc").stdout


def test_missing_model_fails_with_reason(platform: PlatformProcess, tmp_path: Path):
    _apply(platform, tmp_path, isvc_yaml("ghost", str(tmp_path / "no-such-dir")))
    with platform.client() as c:

        def failed() -> bool:
            item = c.get("/api/v1/namespaces/default/inferenceservices/ghost").json()
            ready = [x for x in item["status"]["conditions"] if x["type"] == "Ready"][0]
            return ready["status"] == "False" and "storage" in ready.get("message", "")

        assert wait_for(failed, 30)
        r = c.post("/serving/default/ghost/v1/models/ghost:predict", json={"instances": [SETOSA]})
        assert r.status_code == 503
    platform.cli("delete", "isvc", "ghost")


def test_canary_split_then_promote(
    platform: PlatformProcess, iris_dir: Path, constant_dir: Path, tmp_path: Path
):
    _apply(platform, tmp_path, isvc_yaml("canary", str(iris_dir)))
    wait_ready(platform, "canary")
    _apply(platform, tmp_path, isvc_yaml("canary", str(constant_dir), canaryTrafficPercent=20))
    with platform.client() as c:

        def split() -> bool:
            item = c.get("/api/v1/namespaces/default/inferenceservices/canary").json()
            return len(item["status"]["components"]["predictor"]["traffic"]) == 2

        assert wait_for(split, 60), platform.log()[-2000:]
        item = c.get("/api/v1/namespaces/default/inferenceservices/canary").json()
        traffic = {
            t["revisionName"]: t["percent"]
            for t in item["status"]["components"]["predictor"]["traffic"]
        }
        assert traffic == {"canary-predictor-00002": 20, "canary-predictor-00001": 80}
        answers = [_predict(c, "canary") for _ in range(300)]
    # 20 % of 300 is 60; binomial sd ≈ 6.9, so this band fails by chance about once in 10^6.
    canary = answers.count(2)
    assert 25 <= canary <= 95, canary
    assert answers.count(0) == 300 - canary

    _apply(platform, tmp_path, isvc_yaml("canary", str(constant_dir)))
    with platform.client() as c:

        def promoted() -> bool:
            item = c.get("/api/v1/namespaces/default/inferenceservices/canary").json()
            return item["status"]["components"]["predictor"]["traffic"] == [
                {"revisionName": "canary-predictor-00002", "percent": 100, "latestRevision": True}
            ]

        assert wait_for(promoted, 30)
        assert {_predict(c, "canary") for _ in range(30)} == {2}
    platform.cli("delete", "isvc", "canary")


def test_failed_new_revision_keeps_traffic_on_old(
    platform: PlatformProcess, iris_dir: Path, tmp_path: Path
):
    _apply(platform, tmp_path, isvc_yaml("steady", str(iris_dir)))
    wait_ready(platform, "steady")
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "model.joblib").write_bytes(b"not a model")
    _apply(platform, tmp_path, isvc_yaml("steady", str(broken)))
    with platform.client() as c:

        def failed() -> bool:
            item = c.get("/api/v1/namespaces/default/inferenceservices/steady").json()
            pred = [x for x in item["status"]["conditions"] if x["type"] == "PredictorReady"][0]
            return "steady-predictor-00002" in pred.get("message", "")

        assert wait_for(failed, 60), platform.log()[-2000:]
        item = c.get("/api/v1/namespaces/default/inferenceservices/steady").json()
        assert item["status"]["components"]["predictor"]["traffic"][0]["revisionName"] == (
            "steady-predictor-00001"
        )
        assert _predict(c, "steady") == 0
    platform.cli("delete", "isvc", "steady")


def test_scale_to_zero_and_back(platform: PlatformProcess, iris_dir: Path, tmp_path: Path):
    _apply(platform, tmp_path, isvc_yaml("sleepy", str(iris_dir), minReplicas=0))
    wait_ready(platform, "sleepy")
    assert wait_for(lambda: not _replica_pids(platform, "sleepy"), 40), "did not scale to zero"
    with platform.client() as c:
        # The activator holds the request while a replica starts: no error for the client.
        assert _predict(c, "sleepy") == 0
    assert _replica_pids(platform, "sleepy")
    platform.cli("delete", "isvc", "sleepy")
    assert wait_for(lambda: not _replica_pids(platform, "sleepy"), 20)


def test_crashed_predictor_is_restarted(platform: PlatformProcess, iris_dir: Path, tmp_path: Path):
    _apply(platform, tmp_path, isvc_yaml("crashy", str(iris_dir)))
    wait_ready(platform, "crashy")
    pids = _replica_pids(platform, "crashy")
    assert len(pids) == 1
    os.killpg(pids[0], signal.SIGKILL)
    with platform.client() as c:

        def recovered() -> bool:
            now = _replica_pids(platform, "crashy")
            if not now or now == pids:
                return False
            r = c.post(
                "/serving/default/crashy/v1/models/crashy:predict", json={"instances": [SETOSA]}
            )
            return r.status_code == 200

        assert wait_for(recovered, 60), platform.log()[-2000:]
    platform.cli("delete", "isvc", "crashy")


def test_namespaces_are_enforced(platform: PlatformProcess, iris_dir: Path, tmp_path: Path):
    _apply(platform, tmp_path, isvc_yaml("private", str(iris_dir), namespace="team-a"))
    wait_ready(platform, "private", "team-a")
    platform.cli(
        "users",
        "add",
        "bob@example.com",
        "--password-stdin",
        "--data-dir",
        str(platform.data_dir),
        input="bob-password-123\n",
    )
    r = httpx.post(
        f"{platform.url}/dex/token",
        data={
            "grant_type": "password",
            "username": "bob@example.com",
            "password": "bob-password-123",
            "client_id": "modelport-cli",
            "scope": "openid email groups",
        },
    )
    assert r.status_code == 200, r.text
    bob = {"Authorization": f"Bearer {r.json()['id_token']}"}
    r = httpx.post(
        f"{platform.url}/serving/team-a/private/v1/models/private:predict",
        json={"instances": [SETOSA]},
        headers=bob,
    )
    assert r.status_code == 403
    r = httpx.get(f"{platform.url}/api/v1/namespaces/team-a/inferenceservices", headers=bob)
    assert r.status_code == 403
    r = httpx.get(f"{platform.url}/api/v1/inferenceservices", headers=bob)
    assert r.status_code == 200 and r.json()["items"] == []
    platform.cli("delete", "isvc", "private", "-n", "team-a")

    # A user without admin rights may not load models from arbitrary local paths (loading
    # runs the model's code) but can deploy from the platform's volumes into a namespace of
    # their own, which the first apply creates with them as owner.
    own = isvc_yaml("mine", str(iris_dir), namespace="bob-space")
    r = httpx.post(f"{platform.url}/api/v1/apply", content=own, headers=bob)
    assert r.status_code == 422
    assert "local paths are for admins" in r.json()["error"]
    for spelling in (
        f"FILE://{iris_dir}",
        f"File://{iris_dir}",
        f"file://{iris_dir}/../{iris_dir.name}",
    ):
        sneaky = isvc_yaml("mine", spelling, namespace="bob-space")
        r = httpx.post(f"{platform.url}/api/v1/apply", content=sneaky, headers=bob)
        assert r.status_code == 422, spelling
    volume = platform.data_dir / "volumes" / "bob-space" / "shared" / "iris"
    volume.mkdir(parents=True)
    (volume / "model.joblib").write_bytes((iris_dir / "model.joblib").read_bytes())
    own = isvc_yaml("mine", "pvc://shared/iris", namespace="bob-space")
    r = httpx.post(f"{platform.url}/api/v1/apply", content=own, headers=bob)
    assert r.status_code == 200, r.text
    r = httpx.get(f"{platform.url}/api/v1/namespaces", headers=bob)
    assert {"name": "bob-space", "owner": "bob@example.com", "role": "edit"} in r.json()["items"]
    platform.cli("delete", "isvc", "mine", "-n", "bob-space")


def _children_of(pids: list[int]) -> list[int]:
    found = []
    for pid in pids:
        try:
            found += [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
        except OSError:
            continue
    return found


def test_killed_worker_is_not_a_permanent_outage(
    platform: PlatformProcess, iris_dir: Path, tmp_path: Path
):
    """The model server's supervisor respawns a killed worker on the same port; requests
    that meet the gap are retried, and the replica is used again afterwards."""
    _apply(platform, tmp_path, isvc_yaml("wobbly", str(iris_dir)))
    wait_ready(platform, "wobbly")
    supervisors = _replica_pids(platform, "wobbly")
    workers = _children_of(supervisors)
    assert supervisors and workers
    os.kill(workers[0], signal.SIGKILL)
    with platform.client() as c:

        def serving() -> bool:
            r = c.post(
                "/serving/default/wobbly/v1/models/wobbly:predict", json={"instances": [SETOSA]}
            )
            return r.status_code == 200

        assert wait_for(serving, 40), platform.log()[-2000:]
        for _ in range(5):
            assert _predict(c, "wobbly") == 0
    # Still the same replica: it was re-checked, not abandoned.
    assert _replica_pids(platform, "wobbly") == supervisors
    platform.cli("delete", "isvc", "wobbly")


def test_delete_and_reapply_at_once_serves_the_new_model(
    platform: PlatformProcess, iris_dir: Path, constant_dir: Path, tmp_path: Path
):
    _apply(platform, tmp_path, isvc_yaml("phoenix", str(iris_dir)))
    wait_ready(platform, "phoenix")
    f = tmp_path / "new.yaml"
    f.write_text(isvc_yaml("phoenix", str(constant_dir)))
    platform.cli("delete", "isvc", "phoenix")
    platform.cli("apply", "-f", str(f))
    with platform.client() as c:
        assert wait_for(
            lambda: (
                c.post(
                    "/serving/default/phoenix/v1/models/phoenix:predict",
                    json={"instances": [SETOSA]},
                )
                .json()
                .get("predictions")
                == [2]
            ),
            60,
        )
    platform.cli("delete", "isvc", "phoenix")


def test_rollback_with_canary_zero(
    platform: PlatformProcess, iris_dir: Path, constant_dir: Path, tmp_path: Path
):
    """KServe's documented rollback: after promoting v2, canaryTrafficPercent: 0 sends all
    traffic back to the previously rolled-out revision."""
    _apply(platform, tmp_path, isvc_yaml("rollback", str(iris_dir)))
    wait_ready(platform, "rollback")
    _apply(platform, tmp_path, isvc_yaml("rollback", str(constant_dir)))
    with platform.client() as c:
        assert wait_for(lambda: _predict(c, "rollback") == 2, 60)
    _apply(platform, tmp_path, isvc_yaml("rollback", str(constant_dir), canaryTrafficPercent=0))
    with platform.client() as c:

        def rolled_back() -> bool:
            item = c.get("/api/v1/namespaces/default/inferenceservices/rollback").json()
            traffic = item["status"]["components"]["predictor"]["traffic"]
            # As KServe: the newest ready revision stays listed, at 0 % after a rollback.
            return [(t["revisionName"], t["percent"]) for t in traffic] == [
                ("rollback-predictor-00002", 0),
                ("rollback-predictor-00001", 100),
            ]

        assert wait_for(rolled_back, 30)
        assert {_predict(c, "rollback") for _ in range(10)} == {0}
    platform.cli("delete", "isvc", "rollback")


def test_the_root_is_a_page_for_people(platform: PlatformProcess):
    token = {"Authorization": f"Bearer {platform.token()}"}
    page = httpx.get(f"{platform.url}/", headers={**token, "Accept": "text/html"})
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "Your InferenceServices" in page.text
    policy = page.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy
    script = httpx.get(f"{platform.url}/_ui/home.js", headers=token)
    assert script.status_code == 200 and "textContent" in script.text
    assert httpx.get(f"{platform.url}/_ui/nothing", headers=token).status_code == 404
    # API clients asking for JSON still learn how to address a model.
    api = httpx.get(f"{platform.url}/", headers={**token, "Accept": "application/json"})
    assert api.status_code == 404 and "Host: NAME.NAMESPACE" in api.json()["error"]
    # Signed out, the page and its files ask for a login like everything else.
    assert httpx.get(f"{platform.url}/").status_code == 302
    assert (
        httpx.get(f"{platform.url}/_ui/home.js", headers={"Sec-Fetch-Mode": "no-cors"}).status_code
        == 401
    )
