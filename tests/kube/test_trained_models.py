"""TrainedModels through the Kubernetes-style API: discovery (short name tm), CRUD with
KServe's webhook messages as Status errors, the table kubectl prints, and namespace roles
(view reads, edit writes, no role sees nothing)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any

from tests.kube.conftest import ALICE, BOB, CAROL, Kube

V1ALPHA1 = "/apis/serving.kserve.io/v1alpha1"
NS = f"{V1ALPHA1}/namespaces/team-a/trainedmodels"
TABLE = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"


def run(coro: Awaitable[Any]) -> Any:
    return asyncio.run(coro)  # type: ignore[arg-type]


def tm(name: str, memory: str = "256Mi", uri: str = "s3://models/extra") -> dict[str, Any]:
    return {
        "apiVersion": "serving.kserve.io/v1alpha1",
        "kind": "TrainedModel",
        "metadata": {"name": name, "namespace": "team-a"},
        "spec": {
            "inferenceService": "iris",
            "model": {"storageUri": uri, "framework": "sklearn", "memory": memory},
        },
    }


def test_discovery_and_schema(kube: Kube) -> None:
    async def main() -> None:
        async with kube.client(ALICE) as c:
            found = (await c.get(V1ALPHA1)).json()["resources"]
            [item] = [r for r in found if r["name"] == "trainedmodels"]
            assert item["kind"] == "TrainedModel" and item["shortNames"] == ["tm"]
            assert item["namespaced"] is True and "watch" in item["verbs"]
            schema = (await c.get("/openapi/v3/apis/serving.kserve.io/v1alpha1")).json()
            assert "io.kserve.serving.v1alpha1.TrainedModel" in schema["components"]["schemas"]

    run(main())


def test_create_get_table_update_delete(kube: Kube) -> None:
    async def main() -> None:
        async with kube.client(ALICE) as c:
            r = await c.post(NS, json=tm("extra"))
            assert r.status_code == 201, r.text
            obj = r.json()
            assert obj["metadata"]["labels"] == {"inferenceservice": "iris"}
            ready = [x for x in obj["status"]["conditions"] if x["type"] == "Ready"]
            assert ready and ready[0]["status"] in ("Unknown", "False")
            table = (await c.get(NS, headers={"Accept": TABLE})).json()
            assert [col["name"] for col in table["columnDefinitions"]] == [
                "Name",
                "URL",
                "Ready",
                "Age",
            ]
            assert table["rows"][0]["cells"][0] == "extra"
            # The memory is immutable (trainedmodel_webhook.go validateMemorySpecNotModified).
            update = tm("extra", memory="1Gi")
            update["metadata"]["resourceVersion"] = obj["metadata"]["resourceVersion"]
            changed = await c.put(f"{NS}/extra", json=update)
            assert changed.status_code == 422, changed.text
            causes = changed.json()["details"]["causes"]
            assert causes == [
                {
                    "reason": "FieldValueInvalid",
                    "message": 'the Trained Model "extra" memory field is immutable. The memory '
                    'was "256Mi" but it is updated to "1Gi"',
                    "field": "spec.model.memory",
                }
            ]
            bad = await c.post(NS, json=tm("bad", uri="abfs://x/y"))
            assert bad.status_code == 422
            assert "storageUri field is invalid" in bad.json()["message"]
            assert (await c.delete(f"{NS}/extra")).status_code == 200
            assert (await c.get(f"{NS}/extra")).status_code == 404

    run(main())


def test_roles(kube: Kube) -> None:
    async def main() -> None:
        async with kube.client(ALICE) as alice:
            assert (await alice.post(NS, json=tm("owned"))).status_code == 201
        async with kube.client(BOB) as bob:  # view: reads, cannot write
            assert (await bob.get(f"{NS}/owned")).status_code == 200
            assert (await bob.post(NS, json=tm("bobs"))).status_code == 403
            assert (await bob.delete(f"{NS}/owned")).status_code == 403
        async with kube.client(CAROL) as carol:  # no role: nothing
            assert (await carol.get(f"{NS}/owned")).status_code == 403
            assert (await carol.post(NS, json=tm("carols"))).status_code == 403
            everywhere = await carol.get(f"{V1ALPHA1}/trainedmodels")
            assert everywhere.status_code == 200
            assert everywhere.json()["items"] == []

    run(main())
