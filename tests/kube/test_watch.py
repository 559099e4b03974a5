"""``?watch=true``: ADDED/MODIFIED/DELETED events, resumed from a resourceVersion, for
changes made through this API and through another (the store directly, as /api/v1 does)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import orjson

from tests.kube.conftest import ALICE, BASE, BOB, CAROL, Kube

NS = f"{BASE}/namespaces/team-a/inferenceservices"


def events(body: bytes) -> list[tuple[str, str, dict[str, Any]]]:
    out = []
    for line in body.splitlines():
        event = orjson.loads(line)
        out.append((event["type"], event["object"]["metadata"].get("name", ""), event["object"]))
    return out


def test_watch_streams_changes_after_a_list(kube: Kube):
    async def main() -> None:
        async with kube.client(ALICE) as c:
            await c.post(NS, json=kube.isvc("first"))
            listed = (await c.get(NS)).json()
            rv = listed["metadata"]["resourceVersion"]
            params = {"watch": "true", "resourceVersion": rv, "timeoutSeconds": "2"}
            watcher = asyncio.create_task(c.get(NS, params=params))
            await asyncio.sleep(0.2)
            await c.post(NS, json=kube.isvc("second"))
            merge = {"Content-Type": "application/merge-patch+json"}
            await c.patch(f"{NS}/second", json={"metadata": {"labels": {"a": "b"}}}, headers=merge)
            await c.delete(f"{NS}/first")
            # Written around this API, as /api/v1 writes: seen within the poll interval.
            doc = kube.isvc("third")
            kube.store.apply("InferenceService", "team-a", "third", doc)
            seen = events((await watcher).content)
        assert [(t, n) for t, n, _ in seen] == [
            ("ADDED", "second"),
            ("MODIFIED", "second"),
            ("DELETED", "first"),
            ("ADDED", "third"),
        ]
        versions = [int(o["metadata"]["resourceVersion"]) for _, _, o in seen]
        assert versions == sorted(versions) and versions[0] > int(rv)
        # Resuming from the second event gives the rest, and nothing before it.
        async with kube.client(ALICE) as c:
            params = {"watch": "1", "resourceVersion": str(versions[1]), "timeoutSeconds": "1"}
            rest = events((await c.get(NS, params=params)).content)
        assert [(t, n) for t, n, _ in rest] == [("DELETED", "first"), ("ADDED", "third")]

    asyncio.run(main())


def test_watch_without_resource_version_starts_with_what_exists(kube: Kube):
    async def main() -> None:
        async with kube.client(ALICE) as c:
            await c.post(NS, json=kube.isvc("a", team="x"))
            await c.post(NS, json=kube.isvc("b"))
            params = {"watch": "true", "timeoutSeconds": "0.5", "labelSelector": "team=x"}
            seen = events((await c.get(NS, params=params)).content)
        assert [(t, n) for t, n, _ in seen] == [("ADDED", "a")]

    asyncio.run(main())


def test_objects_entering_and_leaving_a_selector_are_added_and_deleted(kube: Kube):
    async def main() -> None:
        merge = {"Content-Type": "application/merge-patch+json"}
        async with kube.client(ALICE) as c:
            await c.post(NS, json=kube.isvc("a", team="x"))
            rv = (await c.get(NS)).json()["metadata"]["resourceVersion"]
            params = {"watch": "1", "resourceVersion": rv, "labelSelector": "team=y"}
            watcher = asyncio.create_task(c.get(NS, params={**params, "timeoutSeconds": "1"}))
            await asyncio.sleep(0.2)
            for team in ("y", "y2", "y"):
                label = {"metadata": {"labels": {"team": team, "n": str(time.monotonic_ns())}}}
                await c.patch(f"{NS}/a", json=label, headers=merge)
            seen = events((await watcher).content)
        assert [(t, n) for t, n, _ in seen] == [
            ("ADDED", "a"),
            ("DELETED", "a"),
            ("ADDED", "a"),
        ]

    asyncio.run(main())


def test_watch_tables_and_field_selector(kube: Kube):
    async def main() -> None:
        table = {"Accept": "application/json;as=Table;v=v1;g=meta.k8s.io"}
        async with kube.client(ALICE, **table) as c:
            await c.post(NS, json=kube.isvc("a"))
            await c.post(NS, json=kube.isvc("b"))
            params = {"watch": "true", "timeoutSeconds": "0.5", "fieldSelector": "metadata.name=b"}
            body = (await c.get(NS, params=params)).content
        [line] = body.splitlines()
        event = orjson.loads(line)
        assert event["type"] == "ADDED"
        assert event["object"]["kind"] == "Table"
        assert event["object"]["rows"][0]["cells"][0] == "b"

    asyncio.run(main())


def test_watch_is_authorized_like_list(kube: Kube):
    async def main() -> None:
        async with kube.client(ALICE) as c:
            await c.post(NS, json=kube.isvc("a"))
        params = {"watch": "true", "timeoutSeconds": "0.3"}
        async with kube.client(BOB) as c:  # view role
            assert len(events((await c.get(NS, params=params)).content)) == 1
        async with kube.client(CAROL) as c:
            r = await c.get(NS, params=params)
            assert r.status_code == 403 and r.json()["reason"] == "Forbidden"
            # All namespaces: only those Carol may read (none).
            assert (await c.get(f"{BASE}/inferenceservices", params=params)).content == b""

    asyncio.run(main())


def test_watch_from_a_forgotten_resource_version_is_410_expired(kube: Kube):
    async def main() -> None:
        async with kube.client(ALICE) as c:
            await c.get(NS)  # the history starts here
            params = {"watch": "true", "resourceVersion": "5", "timeoutSeconds": "1"}
            r = await c.get(NS, params=params)
            assert r.status_code == 410
            assert r.json()["reason"] == "Expired"
            r = await c.get(NS, params={**params, "resourceVersion": "abc"})
            assert r.json()["reason"] == "BadRequest"

    asyncio.run(main())
