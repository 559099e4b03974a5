"""Whatever a client sends, the API answers with a Kubernetes ``Status`` and a 4xx code (or
success), never a 500: generated bodies, patches, paths and query parameters."""

from __future__ import annotations

import asyncio
import json
from typing import Any
from urllib.parse import quote

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.kube.conftest import ALICE, BASE, Kube

NS = f"{BASE}/namespaces/team-a/inferenceservices"
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=12,
)
# Objects that get past the first checks: the right kind, with a metadata mapping.
OBJECTS = st.fixed_dictionaries(
    {"metadata": st.fixed_dictionaries({"name": st.just("iris")}, optional={"labels": JSON})},
    optional={"spec": JSON, "apiVersion": JSON, "kind": JSON, "status": JSON},
)
CALLS = st.sampled_from(
    [
        ("POST", NS, "application/json"),
        ("PUT", f"{NS}/iris", "application/json"),
        ("PATCH", f"{NS}/iris", "application/merge-patch+json"),
        ("PATCH", f"{NS}/iris", "application/strategic-merge-patch+json"),
        ("PATCH", f"{NS}/iris", "application/json-patch+json"),
        ("DELETE", f"{NS}/iris", "application/json"),
        ("POST", "/api/v1/namespaces", "application/json"),
    ]
)
PARAMS = st.dictionaries(
    st.sampled_from(
        ["watch", "labelSelector", "fieldSelector", "resourceVersion", "timeoutSeconds", "dryRun"]
    ),
    st.text(max_size=12),
    max_size=3,
)


def check(response: Any) -> None:
    assert response.status_code < 500, response.text
    if response.status_code >= 400:
        body = response.json()
        assert body["kind"] == "Status" and body["code"] == response.status_code, body


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(call=CALLS, body=JSON | OBJECTS, params=PARAMS)
def test_bodies_and_parameters(kube: Kube, call: tuple[str, str, str], body: Any, params: dict):
    method, path, content_type = call

    async def main() -> None:
        async with kube.client(ALICE) as c:
            seed = kube.isvc("iris")
            await c.post(NS, json=seed)
            if params.get("watch"):
                params["timeoutSeconds"] = "0"
            r = await c.request(
                method,
                path,
                content=json.dumps(body),
                params=params,
                headers={"Content-Type": content_type},
            )
            check(r)
            await c.delete(f"{NS}/iris")

    asyncio.run(main())


@settings(max_examples=100, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    segments=st.lists(st.text(min_size=1, max_size=10).filter(lambda s: "/" not in s), max_size=7)
)
def test_paths(kube: Kube, segments: list[str]):
    async def main() -> None:
        async with kube.client(ALICE) as c:
            for prefix in ("/apis/serving.kserve.io/v1beta1/", "/api/v1/", "/"):
                check(await c.get(prefix + "/".join(quote(s, safe="") for s in segments)))

    asyncio.run(main())
