"""Discovery, OpenAPI, core v1 namespaces and the runtime kinds, in process."""

from __future__ import annotations

import asyncio
from typing import Any

from modelport.kube.protobuf import MAGIC
from tests.kube.conftest import ADMIN, ALICE, BOB, CAROL, Kube

RUNTIMES = "/apis/serving.kserve.io/v1alpha1"


def get(kube: Kube, path: str, who: str = ADMIN, **headers: str) -> Any:
    async def main() -> Any:
        async with kube.client(who, **headers) as c:
            r = await c.get(path)
            assert r.status_code == 200, (path, r.text)
            return r.json() if "json" in r.headers["content-type"] else r.content

    return asyncio.run(main())


def test_discovery_documents(kube: Kube):
    version = get(kube, "/version")
    assert version["major"] == "1" and version["gitVersion"].startswith("v1.")
    assert get(kube, "/api")["versions"] == ["v1"]
    groups = get(kube, "/apis")
    assert groups["kind"] == "APIGroupList"
    [group] = groups["groups"]
    assert group["name"] == "serving.kserve.io"
    assert group["preferredVersion"]["version"] == "v1beta1"
    assert get(kube, "/apis/serving.kserve.io")["kind"] == "APIGroup"
    v1beta1 = get(kube, "/apis/serving.kserve.io/v1beta1")
    assert v1beta1["groupVersion"] == "serving.kserve.io/v1beta1"
    [isvc] = v1beta1["resources"]
    assert isvc["name"] == "inferenceservices"
    assert isvc["kind"] == "InferenceService"
    assert isvc["namespaced"] is True
    assert isvc["shortNames"] == ["isvc"]
    assert isvc["categories"] == ["kserve"]
    assert set(isvc["verbs"]) == {"create", "delete", "get", "list", "patch", "update", "watch"}
    v1alpha1 = {r["name"]: r for r in get(kube, RUNTIMES)["resources"]}
    assert v1alpha1["servingruntimes"]["namespaced"] is True
    assert v1alpha1["clusterservingruntimes"]["namespaced"] is False
    core = {r["name"]: r for r in get(kube, "/api/v1")["resources"]}
    assert core["namespaces"]["shortNames"] == ["ns"]


def test_openapi_v3_describes_the_kinds_and_field_validation(kube: Kube):
    index = get(kube, "/openapi/v3")["paths"]
    url = index["apis/serving.kserve.io/v1beta1"]["serverRelativeURL"]
    assert url.startswith("/openapi/v3/apis/serving.kserve.io/v1beta1?hash=")
    doc = get(kube, url)
    schema = doc["components"]["schemas"]["io.kserve.serving.v1beta1.InferenceService"]
    assert schema["x-kubernetes-group-version-kind"] == [
        {"group": "serving.kserve.io", "version": "v1beta1", "kind": "InferenceService"}
    ]
    predictor = schema["properties"]["spec"]["properties"]["predictor"]
    assert {"model", "sklearn", "minReplicas", "canaryTrafficPercent"} <= set(
        predictor["properties"]
    )
    item = doc["paths"][
        "/apis/serving.kserve.io/v1beta1/namespaces/{namespace}/inferenceservices/{name}"
    ]
    # kubectl sends fieldValidation=Strict, instead of validating itself, when PATCH has it.
    assert "fieldValidation" in [p["name"] for p in item["patch"]["parameters"]]
    assert item["patch"]["x-kubernetes-group-version-kind"]["kind"] == "InferenceService"
    runtimes = get(kube, index["apis/serving.kserve.io/v1alpha1"]["serverRelativeURL"])
    assert "io.kserve.serving.v1alpha1.ClusterServingRuntime" in runtimes["components"]["schemas"]


def test_openapi_v2_is_a_document_kubectl_can_read(kube: Kube):
    proto = "application/com.github.proto-openapi.spec.v2@v1.0+protobuf"

    async def main() -> None:
        async with kube.client(Accept=proto) as c:
            r = await c.get("/openapi/v2")
            assert r.content == b"\x0a\x032.0"  # swagger: "2.0"
            # Without the "@", which Go's mime parser (kubectl) refuses in a Content-Type.
            assert r.headers["content-type"] == (
                "application/com.github.proto-openapi.spec.v2.v1.0+protobuf"
            )

    asyncio.run(main())
    assert get(kube, "/openapi/v2")["swagger"] == "2.0"


def test_namespaces_are_the_ones_the_caller_has_a_role_in(kube: Kube):
    names = [n["metadata"]["name"] for n in get(kube, "/api/v1/namespaces")["items"]]
    assert names == ["default", "team-a"]
    mine = get(kube, "/api/v1/namespaces", BOB)["items"]
    assert [n["metadata"]["name"] for n in mine] == ["team-a"]
    assert mine[0]["metadata"]["annotations"] == {
        "modelport.io/owner": ALICE,
        "modelport.io/role": "view",
    }
    assert mine[0]["status"] == {"phase": "Active"}
    assert get(kube, "/api/v1/namespaces/team-a", BOB)["kind"] == "Namespace"

    async def refused() -> None:
        async with kube.client(BOB) as c:
            r = await c.get("/api/v1/namespaces/default")
            assert r.status_code == 403 and r.json()["reason"] == "Forbidden"
            assert "at the cluster scope" in r.json()["message"]
            r = await c.get("/api/v1/namespaces/nowhere")
            assert r.status_code == 404 and r.json()["reason"] == "NotFound"

    asyncio.run(refused())


def test_namespaces_take_patches_that_change_nothing_and_are_not_deleted(kube: Kube):
    async def main() -> None:
        merge = {"Content-Type": "application/merge-patch+json"}
        async with kube.client(BOB) as c:
            url = "/api/v1/namespaces/team-a"
            before = (await c.get(url)).json()
            r = await c.patch(url, json={"metadata": {"labels": {"a": "b"}}}, headers=merge)
            assert r.status_code == 200 and r.json() == before
            assert r.headers.get_list("warning")
            r = await c.patch(url, json={"metadata": {"name": "x"}}, headers=merge)
            assert r.status_code == 400
            r = await c.patch("/api/v1/namespaces/default", json={}, headers=merge)
            assert r.status_code == 403
            r = await c.delete(url)
            assert r.status_code == 405 and r.json()["reason"] == "MethodNotAllowed"

    asyncio.run(main())


def test_create_namespace_as_json_and_as_kubectls_protobuf(kube: Kube):
    # kubectl create namespace NAME: k8s magic, runtime.Unknown{typeMeta, raw=Namespace}.
    def field(number: int, value: bytes) -> bytes:
        return bytes([number << 3 | 2, len(value)]) + value

    namespace = field(1, field(1, b"carols"))
    unknown = field(1, field(1, b"v1") + field(2, b"Namespace")) + field(2, namespace)

    async def main() -> None:
        async with kube.client(CAROL) as c:
            r = await c.post(
                "/api/v1/namespaces",
                content=MAGIC + unknown,
                headers={"Content-Type": "application/vnd.kubernetes.protobuf"},
            )
            assert r.status_code == 201, r.text
            assert r.json()["metadata"]["name"] == "carols"
            r = await c.post("/api/v1/namespaces", json={"metadata": {"name": "carols"}})
            assert r.status_code == 409 and r.json()["reason"] == "AlreadyExists"
            r = await c.post("/api/v1/namespaces", json={"metadata": {"name": "Bad_Name"}})
            assert r.status_code == 422 and r.json()["reason"] == "Invalid"
            r = await c.post(
                "/api/v1/namespaces",
                content=MAGIC + b"\xff",
                headers={"Content-Type": "application/vnd.kubernetes.protobuf"},
            )
            assert r.status_code == 400
        assert kube.authorizer.get_namespace("carols").owner == CAROL

    asyncio.run(main())


def runtime(kind: str, name: str) -> dict[str, Any]:
    return {
        "apiVersion": "serving.kserve.io/v1alpha1",
        "kind": kind,
        "metadata": {"name": name},
        "spec": {
            "supportedModelFormats": [{"name": "sklearn", "version": "1"}],
            "containers": [{"name": "kserve-container", "image": "x"}],
        },
    }


def test_serving_runtimes_and_cluster_serving_runtimes(kube: Kube):
    async def main() -> None:
        ns_url = f"{RUNTIMES}/namespaces/team-a/servingruntimes"
        cluster_url = f"{RUNTIMES}/clusterservingruntimes"
        async with kube.client(ALICE) as c:
            r = await c.post(ns_url, json=runtime("ServingRuntime", "mine"))
            assert r.status_code == 201, r.text
            assert r.json()["metadata"]["namespace"] == "team-a"
            assert r.headers.get_list("warning")  # fields kept but not acted on
            r = await c.post(cluster_url, json=runtime("ClusterServingRuntime", "shared"))
            assert r.status_code == 403 and r.json()["reason"] == "Forbidden"
            # Everyone reads cluster runtimes; the built-in ones are among them.
            names = [i["metadata"]["name"] for i in (await c.get(cluster_url)).json()["items"]]
            assert "kserve-sklearnserver" in names
            r = await c.post(ns_url, json=runtime("ClusterServingRuntime", "x"))
            assert r.status_code == 400
        async with kube.client(ADMIN) as c:
            r = await c.post(cluster_url, json=runtime("ClusterServingRuntime", "shared"))
            assert r.status_code == 201, r.text
            assert "namespace" not in r.json()["metadata"]
            r = await c.delete(f"{cluster_url}/kserve-sklearnserver")
            assert r.status_code == 405 and r.json()["reason"] == "MethodNotAllowed"
            assert (await c.delete(f"{cluster_url}/shared")).status_code == 200
            assert (await c.delete(f"{ns_url}/mine")).status_code == 200
            assert (await c.get(f"{ns_url}/mine")).status_code == 404

    asyncio.run(main())
