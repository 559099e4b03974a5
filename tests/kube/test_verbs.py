"""The verbs on InferenceServices through the Kubernetes-style API, in process: the codes,
``Status`` reasons and metadata kube-apiserver gives for custom resources."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any

import pytest

from tests.kube.conftest import ADMIN, ALICE, BASE, BOB, CAROL, Kube

NS = f"{BASE}/namespaces/team-a/inferenceservices"
TABLE = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"


def run(coro: Awaitable[Any]) -> Any:
    return asyncio.run(coro)  # type: ignore[arg-type]


def status(body: dict[str, Any], reason: str, code: int) -> None:
    assert body["kind"] == "Status", body
    assert body["status"] == "Failure"
    assert body["reason"] == reason, body
    assert body["code"] == code


def test_create_sets_server_metadata_and_refuses_a_second_create(kube: Kube):
    async def main() -> None:
        async with kube.client(ALICE) as c:
            r = await c.post(NS, json=kube.isvc("iris"))
            assert r.status_code == 201, r.text
            meta = r.json()["metadata"]
            assert meta["name"] == "iris" and meta["namespace"] == "team-a"
            assert meta["generation"] == 1
            assert meta["uid"] and meta["resourceVersion"].isdigit()
            assert meta["creationTimestamp"].endswith("Z")
            assert r.json()["status"]["conditions"]
            again = await c.post(NS, json=kube.isvc("iris"))
            assert again.status_code == 409
            status(again.json(), "AlreadyExists", 409)
            assert again.json()["message"] == (
                'inferenceservices.serving.kserve.io "iris" already exists'
            )
            got = await c.get(f"{NS}/iris")
            assert got.json()["metadata"] == meta

    run(main())


def test_update_needs_the_current_resource_version(kube: Kube):
    async def main() -> None:
        async with kube.client(ALICE) as c:
            created = (await c.post(NS, json=kube.isvc("iris"))).json()
            changed = kube.isvc("iris", team="x")
            r = await c.put(f"{NS}/iris", json=changed)
            assert r.status_code == 422  # custom resources refuse unconditional updates
            status(r.json(), "Invalid", 422)
            assert r.json()["details"]["causes"][0]["field"] == "metadata.resourceVersion"
            changed["metadata"]["resourceVersion"] = created["metadata"]["resourceVersion"]
            r = await c.put(f"{NS}/iris", json=changed)
            assert r.status_code == 200, r.text
            updated = r.json()["metadata"]
            assert updated["labels"] == {"team": "x"}
            assert updated["generation"] == 2
            assert updated["uid"] == created["metadata"]["uid"]
            assert int(updated["resourceVersion"]) > int(created["metadata"]["resourceVersion"])
            stale = await c.put(f"{NS}/iris", json=changed)  # the old resourceVersion
            assert stale.status_code == 409
            status(stale.json(), "Conflict", 409)
            assert "the object has been modified" in stale.json()["message"]

    run(main())


@pytest.mark.parametrize(
    ("content_type", "patch"),
    [
        ("application/merge-patch+json", {"metadata": {"labels": {"team": "p"}}}),
        (
            "application/strategic-merge-patch+json",
            {"metadata": {"labels": {"team": "p"}}, "$setElementOrder/x": []},
        ),
        (
            "application/json-patch+json",
            [{"op": "add", "path": "/metadata/labels", "value": {"team": "p"}}],
        ),
    ],
)
def test_patch_types(kube: Kube, content_type: str, patch: Any):
    async def main() -> None:
        async with kube.client(ALICE) as c:
            await c.post(NS, json=kube.isvc("iris"))
            r = await c.patch(f"{NS}/iris", json=patch, headers={"Content-Type": content_type})
            assert r.status_code == 200, r.text
            assert r.json()["metadata"]["labels"] == {"team": "p"}
            assert r.json()["metadata"]["generation"] == 2

    run(main())


def test_patch_refusals(kube: Kube):
    async def main() -> None:
        async with kube.client(ALICE) as c:
            created = (await c.post(NS, json=kube.isvc("iris"))).json()
            url = f"{NS}/iris"
            merge = {"Content-Type": "application/merge-patch+json"}
            r = await c.patch(url, content=b"{", headers=merge)
            status(r.json(), "BadRequest", 400)
            r = await c.patch(
                url, json={"spec": {"predictor": {"minReplicas": "x"}}}, headers=merge
            )
            status(r.json(), "Invalid", 422)
            assert r.json()["details"]["causes"][0]["field"] == "spec.predictor.minReplicas"
            r = await c.patch(url, json={"metadata": {"name": "other"}}, headers=merge)
            status(r.json(), "Invalid", 422)
            r = await c.patch(url, json={"metadata": {"resourceVersion": "1"}}, headers=merge)
            status(r.json(), "Conflict", 409)
            test_op = [{"op": "test", "path": "/metadata/name", "value": "no"}]
            r = await c.patch(
                url, json=test_op, headers={"Content-Type": "application/json-patch+json"}
            )
            status(r.json(), "BadRequest", 400)
            r = await c.patch(
                url, content=b"a: b", headers={"Content-Type": "application/apply-patch+yaml"}
            )
            status(r.json(), "UnsupportedMediaType", 415)
            r = await c.patch(f"{NS}/missing", json={}, headers=merge)
            status(r.json(), "NotFound", 404)
            same = await c.get(url)
            assert same.json()["metadata"] == created["metadata"]

    run(main())


def test_delete_then_not_found(kube: Kube):
    async def main() -> None:
        async with kube.client(ALICE) as c:
            created = (await c.post(NS, json=kube.isvc("iris"))).json()
            r = await c.request("DELETE", f"{NS}/iris", json={"preconditions": {"uid": "x"}})
            status(r.json(), "Conflict", 409)
            r = await c.delete(f"{NS}/iris")
            assert r.status_code == 200
            assert r.json()["status"] == "Success"
            assert r.json()["details"]["uid"] == created["metadata"]["uid"]
            for method in ("GET", "DELETE"):
                r = await c.request(method, f"{NS}/iris")
                assert r.status_code == 404
                status(r.json(), "NotFound", 404)
                assert r.json()["message"] == (
                    'inferenceservices.serving.kserve.io "iris" not found'
                )
        assert kube.store.get("InferenceService", "team-a", "iris") is None

    run(main())


def test_roles_decide(kube: Kube):
    async def main() -> None:
        async with kube.client(ALICE) as c:
            await c.post(NS, json=kube.isvc("iris"))
        async with kube.client(BOB) as c:  # view role
            assert (await c.get(f"{NS}/iris")).status_code == 200
            assert len((await c.get(NS)).json()["items"]) == 1
            r = await c.delete(f"{NS}/iris")
            status(r.json(), "Forbidden", 403)
            assert r.json()["message"].startswith(
                'inferenceservices.serving.kserve.io "iris" is forbidden: User '
                '"bob@example.com" cannot delete resource "inferenceservices" in API group '
                '"serving.kserve.io" in the namespace "team-a"'
            )
            r = await c.post(NS, json=kube.isvc("other"))
            status(r.json(), "Forbidden", 403)
        async with kube.client(CAROL) as c:  # no role
            for method, path in (("GET", f"{NS}/iris"), ("GET", NS), ("DELETE", f"{NS}/iris")):
                r = await c.request(method, path)
                status(r.json(), "Forbidden", 403)
            # Every namespace the caller may see: none.
            r = await c.get(f"{BASE}/inferenceservices")
            assert r.status_code == 200 and r.json()["items"] == []
        async with kube.client(ADMIN) as c:
            r = await c.get(f"{BASE}/inferenceservices")
            assert [i["metadata"]["name"] for i in r.json()["items"]] == ["iris"]

    run(main())


def test_invalid_objects_name_their_fields(kube: Kube):
    async def main() -> None:
        async with kube.client(ALICE) as c:
            bad = kube.isvc("iris")
            bad["spec"]["predictor"]["minReplicas"] = -1
            bad["spec"]["predictor"]["model"]["modelFormat"] = {}
            r = await c.post(NS, json=bad)
            status(r.json(), "Invalid", 422)
            fields = {cause["field"] for cause in r.json()["details"]["causes"]}
            assert {"spec.predictor.minReplicas", "spec.predictor.model.modelFormat.name"} <= fields
            assert r.json()["message"].startswith(
                'InferenceService.serving.kserve.io "iris" is invalid: ['
            )
            for body, reason in (
                (b"not json", "BadRequest"),
                (b"[1, 2]", "BadRequest"),
                (b'{"kind": "Pod", "metadata": {"name": "x"}}', "BadRequest"),
                (b'{"apiVersion": "v1", "metadata": {"name": "x"}}', "BadRequest"),
                (b'{"metadata": {"name": "x", "namespace": "other"}}', "BadRequest"),
                (b'{"metadata": {}}', "Invalid"),
                (b'{"metadata": "x"}', "BadRequest"),
                (b"{" * 5000 + b"}" * 5000, "BadRequest"),
            ):
                r = await c.post(NS, content=body, headers={"Content-Type": "application/json"})
                assert r.status_code in (400, 422), (body[:40], r.text)
                status(r.json(), reason, r.status_code)
            r = await c.post(NS, content=b"x" * (2 << 20))
            status(r.json(), "RequestEntityTooLarge", 413)

    run(main())


def test_generate_name_and_dry_run(kube: Kube):
    async def main() -> None:
        async with kube.client(ALICE) as c:
            body = kube.isvc("")
            body["metadata"] = {"generateName": "iris-"}
            r = await c.post(NS, json=body, params={"dryRun": "All"})
            assert r.status_code == 201, r.text
            assert r.json()["metadata"]["name"].startswith("iris-")
            assert (await c.get(NS)).json()["items"] == []
            r = await c.post(NS, json=body)
            name = r.json()["metadata"]["name"]
            assert len(name) == len("iris-") + 5
            assert (await c.get(f"{NS}/{name}")).status_code == 200

    run(main())


def test_tables_have_kserves_columns(kube: Kube):
    async def main() -> None:
        async with kube.client(ALICE, Accept=TABLE) as c:
            await c.post(NS, json=kube.isvc("iris"))
            for path in (NS, f"{NS}/iris"):
                table = (await c.get(path)).json()
                assert table["kind"] == "Table"
                names = [col["name"] for col in table["columnDefinitions"]]
                assert names == [
                    "Name",
                    "URL",
                    "Ready",
                    "Prev",
                    "Latest",
                    "PrevRolledoutRevision",
                    "LatestReadyRevision",
                    "Age",
                ]
                [row] = table["rows"]
                assert row["cells"][0] == "iris"
                assert row["cells"][-1].endswith("s")  # an age: 0s
                assert row["object"]["kind"] == "PartialObjectMetadata"
                assert row["object"]["metadata"]["name"] == "iris"

    run(main())


def test_label_and_field_selectors(kube: Kube):
    async def main() -> None:
        async with kube.client(ALICE) as c:
            await c.post(NS, json=kube.isvc("a", team="red", tier="web"))
            await c.post(NS, json=kube.isvc("b", team="blue"))
            await c.post(NS, json=kube.isvc("c"))

            async def names(**params: str) -> list[str]:
                r = await c.get(NS, params=params)
                assert r.status_code == 200, r.text
                return [i["metadata"]["name"] for i in r.json()["items"]]

            assert await names(labelSelector="team=red") == ["a"]
            assert await names(labelSelector="team!=red") == ["b", "c"]
            assert await names(labelSelector="team in (red, blue)") == ["a", "b"]
            assert await names(labelSelector="team notin (red),team") == ["b"]
            assert await names(labelSelector="!team") == ["c"]
            assert await names(labelSelector="team,tier==web") == ["a"]
            assert await names(fieldSelector="metadata.name=b") == ["b"]
            assert await names(fieldSelector="metadata.namespace!=team-a") == []
            for bad in ({"labelSelector": "team in (red"}, {"fieldSelector": "spec.x=1"}):
                r = await c.get(NS, params=bad)
                status(r.json(), "BadRequest", 400)

    run(main())


def test_get_and_list_in_a_namespace_that_does_not_exist(kube: Kube):
    """kubectl apply reads before it creates: NotFound lets it go on to create (and the
    platform creates the namespace, owned by the caller)."""

    async def main() -> None:
        url = f"{BASE}/namespaces/new-ns/inferenceservices"
        async with kube.client(CAROL) as c:
            r = await c.get(f"{url}/iris")
            status(r.json(), "NotFound", 404)
            assert (await c.get(url)).json()["items"] == []
            body = kube.isvc("iris", namespace="new-ns")
            body["spec"]["predictor"]["model"]["storageUri"] = "file:///srv/elsewhere"
            r = await c.post(url, json=body)
            # Carol may create the namespace, but not deploy from a local path.
            status(r.json(), "Invalid", 422)
            assert kube.authorizer.get_namespace("new-ns") is None
            body["spec"]["predictor"]["model"]["storageUri"] = "s3://bucket/iris"
            r = await c.post(url, json=body)
            assert r.status_code == 201, r.text
        assert kube.authorizer.get_namespace("new-ns").owner == CAROL

    run(main())


def test_unknown_paths_and_methods_are_status_errors(kube: Kube):
    async def main() -> None:
        async with kube.client() as c:
            for path in (
                "/apis/serving.kserve.io/v1beta1/namespaces/team-a/pods",
                "/apis/other.io/v1",
                "/apis/nothing",
                "/nowhere",
                "/apis/serving.kserve.io/v1beta1/clusterservingruntimes",
                "/apis/serving.kserve.io/v1alpha1/namespaces/x/clusterservingruntimes",
            ):
                r = await c.get(path)
                status(r.json(), "NotFound", 404)
            r = await c.post(f"{BASE}/inferenceservices", json={})
            status(r.json(), "MethodNotAllowed", 405)
            r = await c.put("/version")
            status(r.json(), "MethodNotAllowed", 405)

    run(main())
