"""InferenceGraphs through the Kubernetes-style API: discovery (short name ig), CRUD with
KServe's webhook messages as Status errors, the table kubectl prints, namespace roles, and
the watch."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any

import orjson

from tests.kube.conftest import ALICE, BOB, CAROL, Kube

V1ALPHA1 = "/apis/serving.kserve.io/v1alpha1"
NS = f"{V1ALPHA1}/namespaces/team-a/inferencegraphs"
TABLE = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"


def run(coro: Awaitable[Any]) -> Any:
    return asyncio.run(coro)  # type: ignore[arg-type]


def graph(name: str, **root: Any) -> dict[str, Any]:
    node = {"routerType": "Sequence", "steps": [{"serviceName": "iris", "name": "s1"}], **root}
    return {
        "apiVersion": "serving.kserve.io/v1alpha1",
        "kind": "InferenceGraph",
        "metadata": {"name": name, "namespace": "team-a"},
        "spec": {"nodes": {"root": node}},
    }


def test_discovery_serves_inferencegraphs(kube: Kube) -> None:
    async def main() -> None:
        async with kube.client(ALICE) as c:
            found = (await c.get(V1ALPHA1)).json()["resources"]
            [ig] = [r for r in found if r["name"] == "inferencegraphs"]
            assert ig["kind"] == "InferenceGraph" and ig["shortNames"] == ["ig"]
            assert ig["namespaced"] is True and "watch" in ig["verbs"]
            schema = (await c.get("/openapi/v3/apis/serving.kserve.io/v1alpha1")).json()
            names = schema["components"]["schemas"]
            assert "io.kserve.serving.v1alpha1.InferenceGraph" in names

    run(main())


def test_create_get_table_delete(kube: Kube) -> None:
    async def main() -> None:
        async with kube.client(ALICE) as c:
            r = await c.post(NS, json=graph("chain"))
            assert r.status_code == 201, r.text
            obj = r.json()
            assert obj["status"]["url"] == "http://chain.team-a.example.com"
            [ready] = obj["status"]["conditions"]
            # No InferenceService iris: the graph is not ready, and says why.
            assert (ready["status"], ready["reason"]) == ("False", "ServiceNotFound")
            again = await c.post(NS, json=graph("chain"))
            assert again.status_code == 409
            table = (await c.get(NS, headers={"Accept": TABLE})).json()
            columns = [col["name"] for col in table["columnDefinitions"]]
            assert columns == ["Name", "URL", "Ready", "Age"]
            assert table["rows"][0]["cells"][:3] == [
                "chain",
                "http://chain.team-a.example.com",
                "False",
            ]
            patched = await c.patch(
                f"{NS}/chain",
                content=orjson.dumps({"spec": {"timeout": 10}}),
                headers={"Content-Type": "application/merge-patch+json"},
            )
            assert patched.status_code == 200, patched.text
            assert patched.json()["spec"]["timeout"] == 10
            assert patched.json()["metadata"]["generation"] == 2
            gone = await c.delete(f"{NS}/chain")
            assert gone.status_code == 200
            assert (await c.get(f"{NS}/chain")).status_code == 404

    run(main())


def test_webhook_messages_are_invalid_status(kube: Kube) -> None:
    async def main() -> None:
        doc = graph("split", routerType="Splitter")
        async with kube.client(ALICE) as c:
            r = await c.post(NS, json=doc)
            assert r.status_code == 422
            body = r.json()
            assert body["kind"] == "Status" and body["reason"] == "Invalid"
            assert (
                "InferenceGraph[split] Node[root] Route[iris] missing the 'Weight'"
                in body["message"]
            )
            cyclic = graph("loop")
            cyclic["spec"]["nodes"]["root"]["steps"] = [{"nodeName": "root"}]
            r = await c.post(NS, json=cyclic)
            assert r.status_code == 422 and "cycle" in r.json()["message"]

    run(main())


def test_roles_apply_as_for_services(kube: Kube) -> None:
    async def main() -> None:
        async with kube.client(ALICE) as c:
            assert (await c.post(NS, json=graph("mine"))).status_code == 201
        async with kube.client(BOB) as c:  # view role
            assert (await c.get(f"{NS}/mine")).status_code == 200
            assert (await c.post(NS, json=graph("bobs"))).status_code == 403
            assert (await c.delete(f"{NS}/mine")).status_code == 403
        async with kube.client(CAROL) as c:  # no role
            assert (await c.get(f"{NS}/mine")).status_code == 403
            listed = (await c.get(f"{V1ALPHA1}/inferencegraphs")).json()
            assert listed["items"] == []

    run(main())


def test_watch_sees_a_graph_added_and_deleted(kube: Kube) -> None:
    async def main() -> None:
        async with kube.client(ALICE) as c:
            rv = (await c.get(NS)).json()["metadata"]["resourceVersion"]
            assert (await c.post(NS, json=graph("w"))).status_code == 201
            assert (await c.delete(f"{NS}/w")).status_code == 200
            r = await c.get(NS, params={"watch": "1", "resourceVersion": rv, "timeoutSeconds": "1"})
            events = [orjson.loads(line) for line in r.text.splitlines() if line]
            assert [e["type"] for e in events] == ["ADDED", "DELETED"]
            assert events[0]["object"]["kind"] == "InferenceGraph"

    run(main())
