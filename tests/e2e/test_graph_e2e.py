"""InferenceGraphs on a running platform (``modelport up``) against real model servers:
KServe's e2e graph scenarios 3-10 (kserve/kserve test/e2e/graph/test_inference_graph.py and
its test-resources YAML, applied as they are) with the same expected answers and statuses,
then what modelport adds: the caller's identity and authorization at every step, header
propagation, timeouts, status, and the CLI.

KServe's images success-200-isvc and error-404-isvc are the two custom models below: the
first answers ``{"predictions": [{"message": "SUCCESS"}]}``, the second 404 with
``Intentional 404 code`` (here in this platform's error body, ``{"error": ...}``, where
KServe's FastAPI image says ``{"detail": ...}``); the graph must relay whatever the service
said, so the tests compare the graph's answer with the service's own.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import PlatformProcess, isvc_yaml, start_platform, wait_ready

SUCCESS_MODEL = """
from modelport import Model


class Success(Model):
    def __init__(self, name):
        super().__init__(name)
        self.ready = True

    def predict(self, payload, headers=None):
        return {"predictions": [{"message": "SUCCESS"}]}
"""
ERROR_MODEL = """
from modelport import Model
from modelport.errors import ModelNotFound, ModelportError


class Intentional404(ModelNotFound):
    def __init__(self):
        ModelportError.__init__(self, "Intentional 404 code")


class Error(Model):
    def __init__(self, name):
        super().__init__(name)
        self.ready = True

    def predict(self, payload, headers=None):
        raise Intentional404()
"""
# Answers with what it was sent and the headers that reached it.
ECHO_MODEL = """
import asyncio

from modelport import Model

SHOWN = ("traceparent", "x-request-id", "x-b3-traceid", "x-tenant", "x-private",
         "authorization", "cookie", "kubeflow-userid")


class Echo(Model):
    def __init__(self, name):
        super().__init__(name)
        self.ready = True

    async def predict(self, payload, headers=None):
        seen = {k: v for k, v in (headers or {}).items() if k.lower() in SHOWN}
        delay = payload.get("sleep", 0) if isinstance(payload, dict) else 0
        await asyncio.sleep(delay)
        return {"predictions": payload.get("instances"), "headers": seen, "got": payload}
"""
# KServe's switch_call_*_input.json, plus "instances": this platform's V1 endpoint requires
# "instances" (or "inputs") where KServe's Model.validate accepts any object.
SWITCH_ERROR = {"decision_picker": "ERROR", "key1": {"name": "abc"}, "instances": [[1]]}
SWITCH_SUCCESS = {"decision_picker": "SUCCESS", "key1": {"name": "abc"}, "instances": [[1]]}
SWITCH_NO_MATCH = {"decision_picker": "NO_MATCH", "key1": {"name": "abc"}, "instances": [[1]]}
IRIS = {"instances": [[6.8, 2.8, 4.8, 1.4], [6.0, 3.4, 4.5, 1.6]]}
SUCCESS = {"predictions": [{"message": "SUCCESS"}]}
NO_MATCH = {
    "error": "Failed to process request",
    "cause": "None of the routes matched with the switch condition",
}
BOB, BOB_PASSWORD = "bob@example.com", "bob-password-123"


def custom_yaml(name: str, path: Path, namespace: str = "default") -> str:
    return (
        "apiVersion: serving.kserve.io/v1beta1\nkind: InferenceService\n"
        f"metadata:\n  name: {name}\n  namespace: {namespace}\n"
        "spec:\n  predictor:\n    model:\n"
        f"      modelFormat: {{name: custom}}\n      storageUri: {path}\n"
    )


def apply(platform: PlatformProcess, folder: Path, text: str) -> str:
    f = folder / f"doc-{time.monotonic_ns()}.yaml"
    f.write_text(text)
    return platform.cli("apply", "-f", str(f)).stdout


@pytest.fixture(scope="module")
def graph_platform(
    tmp_path_factory: pytest.TempPathFactory, iris_dir: Path
) -> Iterator[tuple[PlatformProcess, Path]]:
    work = tmp_path_factory.mktemp("graphs")
    platform = start_platform(work / "data", work / "config")
    try:
        docs = []
        for name, source in (
            ("success-200-isvc", SUCCESS_MODEL),
            ("error-404-isvc", ERROR_MODEL),
            ("echo", ECHO_MODEL),
        ):
            folder = work / name
            folder.mkdir()
            (folder / "model.py").write_text(source)
            docs.append(custom_yaml(name, folder))
        docs.append(isvc_yaml("iris", str(iris_dir)))
        # A service in a namespace Bob cannot view (the admin's).
        docs.append(custom_yaml("secret", work / "success-200-isvc", namespace="team-x"))
        apply(platform, work, "---\n".join(docs))
        for name in ("success-200-isvc", "error-404-isvc", "echo", "iris"):
            wait_ready(platform, name)
        wait_ready(platform, "secret", "team-x")
        yield platform, work
    finally:
        platform.stop()


def graph_yaml(name: str, nodes: str, *, namespace: str = "default", extra: str = "") -> str:
    return (
        "apiVersion: serving.kserve.io/v1alpha1\nkind: InferenceGraph\n"
        f"metadata:\n  name: {name}\n  namespace: {namespace}\n{extra}"
        f"spec:\n  nodes:\n{nodes}"
    )


def post(
    platform: PlatformProcess, graph: str, body: Any, namespace: str = "default", **kw: Any
) -> httpx.Response:
    with platform.client() as c:
        return c.post(f"/serving/{namespace}/{graph}", json=body, **kw)


def direct_error(platform: PlatformProcess) -> httpx.Response:
    with platform.client() as c:
        return c.post("/serving/default/error-404-isvc/v1/models/error-404-isvc:predict", json=IRIS)


# ---- KServe's scenarios (test/e2e/graph/test-resources/*.yaml, names filled in) ---------

SCENARIO_3 = """\
    root:
      routerType: Sequence
      steps:
      - serviceName: error-404-isvc
        name: "rootStep1"
        dependency: Hard
      - serviceName: success-200-isvc
        name: "rootStep2"
        dependency: Soft
"""
SCENARIO_4 = """\
    root:
      routerType: Switch
      steps:
      - name: "rootStep1"
        serviceName: error-404-isvc
        condition: "[@this].#(decision_picker==ERROR)"
        dependency: Soft
      - name: "rootStep2"
        serviceName: success-200-isvc
        condition: "[@this].#(decision_picker==SUCCESS)"
        dependency: Soft
"""


def nested(router: str, dependency: str) -> str:
    """Scenarios 5, 6 (Switch) and 9, 10 (Splitter): a Sequence whose first step is a node
    holding the error service, then the success service."""
    weight = "          weight: 100\n" if router == "Splitter" else ""
    hard = "          dependency: Hard\n" if dependency == "Hard" else ""
    return (
        "    root:\n      routerType: Sequence\n      steps:\n"
        f'      - name: "rootStep1"\n        nodeName: node1\n        dependency: {dependency}\n'
        '      - name: "rootStep2"\n        serviceName: success-200-isvc\n'
        f"    node1:\n      routerType: {router}\n      steps:\n"
        f'        - name: "node1Step1"\n{weight}          serviceName: error-404-isvc\n'
        '          condition: "[@this].#(decision_picker==ERROR)"\n'
        f"{hard}"
    )


SCENARIO_7 = """\
    root:
      routerType: Ensemble
      steps:
      - name: "rootStep1"
        serviceName: success-200-isvc
      - name: "rootStep2"
        serviceName: error-404-isvc
"""
SCENARIO_8 = """\
    root:
      routerType: Ensemble
      steps:
      - name: "rootStep1"
        serviceName: error-404-isvc
        dependency: Hard
      - name: "rootStep2"
        serviceName: success-200-isvc
      - name: "rootStep3"
        serviceName: success-200-isvc
"""


def test_kserve_graph_scenarios(graph_platform: tuple[PlatformProcess, Path]) -> None:
    platform, work = graph_platform
    error = direct_error(platform)
    assert error.status_code == 404 and "Intentional 404 code" in error.text
    graphs = {
        "scenario-3": SCENARIO_3,
        "scenario-4": SCENARIO_4,
        "scenario-5": nested("Switch", "Soft"),
        "scenario-6": nested("Switch", "Hard"),
        "scenario-7": SCENARIO_7,
        "scenario-8": SCENARIO_8,
        "scenario-9": nested("Splitter", "Soft"),
        "scenario-10": nested("Splitter", "Hard"),
    }
    out = apply(platform, work, "---\n".join(graph_yaml(n, g) for n, g in graphs.items()))
    assert "inferencegraph.serving.kserve.io/scenario-3 created" in out

    # 3: the Hard first step fails: its status and body are the graph's.
    r = post(platform, "scenario-3", IRIS)
    assert (r.status_code, r.json()) == (404, error.json())
    # 4: Switch; the error step, the success step, then none matched.
    r = post(platform, "scenario-4", SWITCH_ERROR)
    assert (r.status_code, r.json()) == (404, error.json())
    r = post(platform, "scenario-4", SWITCH_SUCCESS)
    assert (r.status_code, r.json()) == (200, SUCCESS)
    r = post(platform, "scenario-4", SWITCH_NO_MATCH)
    assert (r.status_code, r.json()) == (404, NO_MATCH)
    # 5: the error is a Soft dependency: the sequence goes on.
    r = post(platform, "scenario-5", SWITCH_ERROR)
    assert (r.status_code, r.json()) == (200, SUCCESS)
    # 6: Hard: it stops with the error.
    r = post(platform, "scenario-6", SWITCH_ERROR)
    assert (r.status_code, r.json()) == (404, error.json())
    # 7: Ensemble of two Soft steps: both answers by step name.
    r = post(platform, "scenario-7", SWITCH_SUCCESS)
    assert (r.status_code, r.json()) == (200, {"rootStep1": SUCCESS, "rootStep2": error.json()})
    # 8: the Hard step failed: its answer is the graph's.
    r = post(platform, "scenario-8", SWITCH_SUCCESS)
    assert (r.status_code, r.json()) == (404, error.json())
    # 9 and 10: Splitter (weight 100, its condition unused), Soft then Hard.
    r = post(platform, "scenario-9", IRIS)
    assert (r.status_code, r.json()) == (200, SUCCESS)
    r = post(platform, "scenario-10", IRIS)
    assert (r.status_code, r.json()) == (404, error.json())

    # Addressed by Host as well as by path, at any path (as KServe's router).
    with platform.client() as c:
        r = c.post("/", json=SWITCH_SUCCESS, headers={"Host": "scenario-4.default.example.com"})
        assert (r.status_code, r.json()) == (200, SUCCESS)
        r = c.post("/serving/default/scenario-4/v1/anything", json=SWITCH_SUCCESS)
        assert (r.status_code, r.json()) == (200, SUCCESS)

    listed = platform.cli("get", "ig").stdout
    assert listed.splitlines()[0].split() == ["NAME", "URL", "READY", "AGE"]
    assert "scenario-10   http://scenario-10.default.example.com   True" in listed
    for name in graphs:
        platform.cli("delete", "ig", name)
    r = post(platform, "scenario-3", IRIS)
    assert r.status_code == 404 and "not found" in r.json()["error"]


def test_sequence_data_mapping_and_conditions(graph_platform: tuple[PlatformProcess, Path]) -> None:
    platform, work = graph_platform
    nodes = """\
    root:
      routerType: Sequence
      steps:
      - serviceName: iris
        name: classify
      - serviceName: echo
        name: chain
        data: $response
        mapPredictionsToInstances: true
      - serviceName: echo
        name: only-if-class-1
        data: $request
        condition: "predictions.#(==1)"
"""
    apply(platform, work, graph_yaml("chainer", nodes))
    r = post(platform, "chainer", IRIS)
    assert r.status_code == 200, r.text
    # Both flowers are class 1: the condition on the chain step's answer held, so the last
    # step ran, on the graph's request ($request).
    assert r.json()["got"] == IRIS
    # Setosa is class 0: the iris predictions became the chain step's instances, the
    # condition did not hold, and the chain step's answer is the graph's (200).
    r = post(platform, "chainer", {"instances": [[5.1, 3.5, 1.4, 0.2]]})
    assert r.status_code == 200
    assert r.json()["got"] == {"instances": [0]}
    assert r.json()["predictions"] == [0]
    platform.cli("delete", "ig", "chainer")


def test_steps_run_as_the_caller(graph_platform: tuple[PlatformProcess, Path]) -> None:
    platform, work = graph_platform
    platform.cli(
        "users", "add", BOB, "--password-stdin", "--data-dir", str(platform.data_dir),
        input=BOB_PASSWORD + "\n",
    )  # fmt: skip
    token = httpx.post(
        f"{platform.url}/dex/token",
        data={
            "grant_type": "password",
            "username": BOB,
            "password": BOB_PASSWORD,
            "client_id": "modelport-cli",
            "scope": "openid email groups",
        },
    ).json()["id_token"]
    bob = {"Authorization": f"Bearer {token}"}
    # Bob's own namespace, created by his apply; one step into team-x, which he cannot view.
    graph = graph_yaml(
        "peek",
        "    root:\n      routerType: Sequence\n      steps:\n"
        "      - serviceUrl: http://secret.team-x.example.com/v1/models/secret:predict\n",
        namespace="bob-space",
    )
    r = httpx.post(f"{platform.url}/api/v1/apply", content=graph, headers=bob)
    assert r.status_code == 200, r.text
    r = httpx.post(f"{platform.url}/serving/bob-space/peek", json=IRIS, headers=bob)
    assert r.status_code == 403
    assert "team-x" in r.json()["error"]
    # Within an Ensemble the refused step is a Soft failure beside the others.
    ensemble = graph_yaml(
        "mixed",
        "    root:\n      routerType: Ensemble\n      steps:\n"
        "      - name: theirs\n        serviceUrl: http://x/serving/team-x/secret\n"
        "      - name: mine\n        serviceUrl: http://x/serving/default/success-200-isvc\n",
        namespace="bob-space",
    )
    assert httpx.post(f"{platform.url}/api/v1/apply", content=ensemble, headers=bob).is_success
    r = httpx.post(f"{platform.url}/serving/bob-space/mixed", json=IRIS, headers=bob)
    assert r.status_code == 200
    assert set(r.json()) == {"theirs", "mine"}
    # Bob has no role in default either: each step was refused in its own namespace.
    assert "team-x" in r.json()["theirs"]["error"]
    assert "default" in r.json()["mine"]["error"]
    # Given view in team-x, the same graph answers.
    platform.cli(
        "namespaces", "add-contributor", "team-x", BOB, "--role", "view",
        "--data-dir", str(platform.data_dir),
    )  # fmt: skip
    r = httpx.post(f"{platform.url}/serving/bob-space/peek", json=IRIS, headers=bob)
    assert (r.status_code, r.json()) == (200, SUCCESS)
    # With the view role a graph can be called at any path, as inference: a POST to a
    # service's root would need edit.
    team = "    root:\n      routerType: Sequence\n      steps:\n      - serviceName: secret\n"
    apply(platform, work, graph_yaml("team-graph", team, namespace="team-x"))
    r = httpx.post(f"{platform.url}/serving/team-x/team-graph", json=IRIS, headers=bob)
    assert (r.status_code, r.json()) == (200, SUCCESS)
    r = httpx.post(f"{platform.url}/serving/team-x/secret", json=IRIS, headers=bob)
    assert r.status_code == 403
    r = httpx.delete(
        f"{platform.url}/api/v1/namespaces/team-x/inferencegraphs/team-graph", headers=bob
    )
    assert r.status_code == 403
    # Steps run as the caller, so they may only infer: Bob's graph cannot make the admin,
    # who calls it, unload the admin's model.
    unload = graph_yaml(
        "unload",
        "    root:\n      routerType: Sequence\n      steps:\n      - serviceUrl: http://x/serving/"
        "default/success-200-isvc/v2/repository/models/success-200-isvc/unload\n",
        namespace="bob-space",
    )
    assert httpx.post(f"{platform.url}/api/v1/apply", content=unload, headers=bob).is_success
    with platform.client() as c:
        r = c.post("/serving/bob-space/unload", json=IRIS)
        assert r.status_code == 403
        assert "only send inference requests" in r.json()["error"]
        r = c.post(
            "/serving/default/success-200-isvc/v1/models/success-200-isvc:predict", json=IRIS
        )
        assert (r.status_code, r.json()) == (200, SUCCESS)
    # Nobody else reaches Bob's graph.
    with platform.client() as c:
        assert c.post("/serving/bob-space/peek", json=IRIS).status_code == 200  # the admin
    r = httpx.post(f"{platform.url}/serving/bob-space/peek", json=IRIS)
    assert r.status_code in (302, 401)


def test_identity_and_headers_reach_every_step(
    graph_platform: tuple[PlatformProcess, Path],
) -> None:
    platform, work = graph_platform
    nodes = "    root:\n      routerType: Sequence\n      steps:\n      - serviceName: echo\n"
    extra = '  annotations:\n    modelport.io/propagate-headers: "X-Tenant"\n'
    apply(platform, work, graph_yaml("headers", nodes, extra=extra))
    headers = {
        "traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        "x-request-id": "req-1",
        "x-b3-traceid": "80f198ee56343ba864fe8b2a57d3eff7",
        "x-tenant": "blue",
        "x-private": "not named, not passed",
        "kubeflow-userid": "mallory@example.com",
    }
    r = post(platform, "headers", {"instances": [1]}, headers=headers)
    assert r.status_code == 200, r.text
    seen = {k.lower(): v for k, v in r.json()["headers"].items()}
    for name in ("traceparent", "x-request-id", "x-b3-traceid", "x-tenant"):
        assert seen[name] == headers[name]
    assert "x-private" not in seen
    assert "authorization" not in seen and "cookie" not in seen
    assert seen["kubeflow-userid"] == "admin@example.com"  # the gateway's, not the client's
    platform.cli("delete", "ig", "headers")


def test_timeouts(graph_platform: tuple[PlatformProcess, Path]) -> None:
    platform, work = graph_platform
    step = "    root:\n      routerType: Sequence\n      steps:\n      - serviceName: echo\n"
    apply(platform, work, graph_yaml("step-limit", step).replace(
        "spec:\n", "spec:\n  routerTimeouts:\n    serviceClient: 1\n"
    ))  # fmt: skip
    apply(
        platform, work, graph_yaml("graph-limit", step).replace("spec:\n", "spec:\n  timeout: 1\n")
    )
    r = post(platform, "step-limit", {"instances": [1], "sleep": 3})
    assert r.status_code == 500
    assert r.json()["error"] == "Failed to process request"
    assert "did not answer within 1 s" in r.json()["cause"]
    r = post(platform, "graph-limit", {"instances": [1], "sleep": 3})
    assert r.status_code == 504
    assert "timeout of 1 s" in r.json()["cause"]
    r = post(platform, "graph-limit", {"instances": [1]})
    assert r.status_code == 200
    platform.cli("delete", "ig", "step-limit")
    platform.cli("delete", "ig", "graph-limit")


def test_status_and_validation(graph_platform: tuple[PlatformProcess, Path]) -> None:
    platform, work = graph_platform
    nodes = (
        "    root:\n      routerType: Ensemble\n      steps:\n"
        "      - serviceName: success-200-isvc\n      - serviceName: not-deployed\n"
    )
    apply(platform, work, graph_yaml("waiting", nodes))
    with platform.client() as c:
        item = c.get("/api/v1/namespaces/default/inferencegraphs/waiting").json()
    assert item["status"]["url"] == "http://waiting.default.example.com"
    [ready] = item["status"]["conditions"]
    assert (ready["status"], ready["reason"]) == ("False", "ServiceNotFound")
    assert ready["message"] == "Failed to find graph service not-deployed"
    one = json.loads(platform.cli("get", "inferencegraph", "waiting", "-o", "json").stdout)
    assert one["kind"] == "InferenceGraph" and one["status"]["conditions"] == [ready]
    everywhere = platform.cli("get", "ig", "-A").stdout.splitlines()
    assert everywhere[0].split() == ["NAMESPACE", "NAME", "URL", "READY", "AGE"]
    assert any(line.split()[:2] == ["default", "waiting"] for line in everywhere[1:])
    described = platform.cli("describe", "ig", "waiting").stdout
    assert "ServiceNotFound" in described and "serviceName not-deployed" in described
    platform.cli("delete", "ig", "waiting")
    # Found in review: status must not tell whether a service exists in another namespace.
    probe = "    root:\n      routerType: Sequence\n      steps:\n"
    probe += "      - serviceUrl: http://secret.someone-else.example.com/\n"
    apply(platform, work, graph_yaml("probe", probe))
    with platform.client() as c:
        item = c.get("/api/v1/namespaces/default/inferencegraphs/probe").json()
    [ready] = item["status"]["conditions"]
    assert ready["status"] == "True" and "secret" not in json.dumps(item["status"])
    platform.cli("delete", "ig", "probe")

    bad = graph_yaml(
        "bad", "    other:\n      routerType: Sequence\n      steps:\n      - name: x\n"
    )
    f = work / "bad.yaml"
    f.write_text(bad)
    result = platform.cli("apply", "-f", str(f), check=False)
    assert result.returncode != 0
    assert "root node not found" in result.stderr + result.stdout
    cyclic = graph_yaml(
        "loop", "    root:\n      routerType: Sequence\n      steps:\n      - nodeName: root\n"
    )
    with platform.client() as c:
        r = c.post("/api/v1/apply", content=cyclic)
    assert r.status_code == 422 and "cycle" in r.text


def test_kubectl_applies_gets_and_deletes_graphs(
    graph_platform: tuple[PlatformProcess, Path], tmp_path: Path
) -> None:
    from tests.e2e.test_kubectl_e2e import kubectl_for

    platform, _ = graph_platform
    kubectl = kubectl_for(platform, platform.env, tmp_path / "home")
    manifest = tmp_path / "ig.yaml"
    manifest.write_text(graph_yaml("kube-graph", SCENARIO_4))
    out = kubectl("apply", "-f", str(manifest)).stdout
    assert "inferencegraph.serving.kserve.io/kube-graph created" in out
    listed = kubectl("get", "ig").stdout.splitlines()
    assert listed[0].split() == ["NAME", "URL", "READY", "AGE"]
    assert listed[1].split()[:3] == ["kube-graph", "http://kube-graph.default.example.com", "True"]
    kubectl("wait", "--for=condition=Ready", "inferencegraph/kube-graph", "--timeout=30s")
    r = post(platform, "kube-graph", SWITCH_SUCCESS)
    assert (r.status_code, r.json()) == (200, SUCCESS)
    # Applied again unchanged, then changed: kubectl's client-side apply patches it.
    assert "unchanged" in kubectl("apply", "-f", str(manifest)).stdout
    manifest.write_text(graph_yaml("kube-graph", SCENARIO_7))
    assert "configured" in kubectl("apply", "-f", str(manifest)).stdout
    r = post(platform, "kube-graph", SWITCH_SUCCESS)
    assert r.status_code == 200 and set(r.json()) == {"rootStep1", "rootStep2"}
    bad = tmp_path / "bad.yaml"
    bad.write_text(graph_yaml("kube-bad", SCENARIO_3.replace("root:", "first:")))
    done = kubectl("apply", "-f", str(bad), check=False)
    assert done.returncode != 0 and "root node not found" in done.stderr
    assert "deleted" in kubectl("delete", "ig", "kube-graph").stdout
