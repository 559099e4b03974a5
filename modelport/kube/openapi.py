"""OpenAPI documents, as kube-apiserver publishes them:

- ``/openapi/v3``: an index of one document per group/version (``paths`` → ``serverRelativeURL``
  with a content hash), and ``/openapi/v3/apis/GROUP/VERSION`` (or ``api/v1``) with the paths
  of each resource and the schemas of its kind, marked ``x-kubernetes-group-version-kind``.
  ``kubectl explain`` reads these; ``kubectl apply`` computes its patches from them; and the
  PATCH operations' ``fieldValidation`` parameter tells kubectl that the server validates
  fields itself, so it sends ``fieldValidation=Strict`` instead of validating client-side.
- ``/openapi/v2``: kubectl still downloads it (as gnostic protobuf) before client-side
  validation and fails without it; it gets a Swagger 2.0 document without definitions,
  against which every object passes (kubectl's schemaValidation skips kinds it does not
  find), since v3 is what describes the kinds.
"""

from __future__ import annotations

import hashlib
from functools import cache
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from modelport.kube import schemas
from modelport.kube.encoding import respond
from modelport.kube.errors import KubeError
from modelport.kube.graphs import INFERENCE_GRAPH
from modelport.kube.patch import PATCH_TYPES
from modelport.kube.resources import (
    CLUSTER_SERVING_RUNTIMES,
    INFERENCE_GRAPHS,
    INFERENCE_SERVICES,
    NAMESPACES,
    SERVING_RUNTIMES,
    TRAINED_MODELS,
    ResourceType,
)
from modelport.kube.trained_models import TRAINED_MODEL

V2_PROTOBUF = "application/com.github.proto-openapi.spec.v2@v1.0+protobuf"
# What kube-openapi answers it with: Go's mime parser refuses the "@" of the Accept form.
V2_PROTOBUF_REPLY = "application/com.github.proto-openapi.spec.v2.v1.0+protobuf"
# The gnostic openapi_v2.Document with only `swagger: "2.0"` (field 1, a length-delimited
# string): protobuf's wire form, written out rather than generated for one field.
V2_DOCUMENT_PB = b"\x0a\x032.0"
V2_DOCUMENT_JSON = {"swagger": "2.0", "info": {"title": "modelport", "version": "v1"}, "paths": {}}

KINDS: dict[ResourceType, dict[str, Any]] = {
    INFERENCE_SERVICES: schemas.INFERENCE_SERVICE,
    SERVING_RUNTIMES: schemas.runtime_schema("ServingRuntime"),
    CLUSTER_SERVING_RUNTIMES: schemas.runtime_schema("ClusterServingRuntime"),
    NAMESPACES: schemas.NAMESPACE,
    INFERENCE_GRAPHS: INFERENCE_GRAPH,
    TRAINED_MODELS: TRAINED_MODEL,
}


def schema_name(rtype: ResourceType) -> str:
    """``io.kserve.serving.v1beta1.InferenceService``: the group reversed, as apiserver names
    custom resources' schemas (core kinds: ``io.k8s.api.core.v1.Namespace``)."""
    if not rtype.group:
        return f"io.k8s.api.core.{rtype.version}.{rtype.kind}"
    reversed_group = ".".join(reversed(rtype.group.split(".")))
    return f"{reversed_group}.{rtype.version}.{rtype.kind}"


def _gvk(rtype: ResourceType) -> dict[str, str]:
    return {"group": rtype.group, "version": rtype.version, "kind": rtype.kind}


def _param(name: str, where: str = "query", description: str = "") -> dict[str, Any]:
    param: dict[str, Any] = {"name": name, "in": where, "schema": {"type": "string"}}
    if where == "path":
        param["required"] = True
    if description:
        param["description"] = description
    return param


QUERY = {
    "list": ["labelSelector", "fieldSelector", "watch", "resourceVersion", "timeoutSeconds"],
    "post": ["dryRun", "fieldManager", "fieldValidation"],
    "put": ["dryRun", "fieldManager", "fieldValidation"],
    "patch": ["dryRun", "fieldManager", "fieldValidation", "force"],
    "delete": ["dryRun"],
    "get": [],
}
ACTIONS = {"list": "list", "post": "post", "put": "put", "patch": "patch", "delete": "delete"}


def _operation(rtype: ResourceType, method: str, body: bool) -> dict[str, Any]:
    target = schemas.ref(schema_name(rtype))
    op: dict[str, Any] = {
        "operationId": f"{method}{rtype.kind}",
        "parameters": [_param(p) for p in QUERY[method]],
        "responses": {
            "200": {"description": "OK", "content": {"application/json": {"schema": target}}}
        },
        "x-kubernetes-action": ACTIONS.get(method, "get"),
        "x-kubernetes-group-version-kind": _gvk(rtype),
    }
    if body:
        types = list(PATCH_TYPES) if method == "patch" else ["application/json"]
        op["requestBody"] = {"content": {t: {"schema": target} for t in types}, "required": True}
    return op


def _paths(rtype: ResourceType) -> dict[str, Any]:
    base = f"/apis/{rtype.group}/{rtype.version}" if rtype.group else f"/api/{rtype.version}"
    scoped = f"{base}/namespaces/{{namespace}}/{rtype.plural}" if rtype.namespaced else None
    collection = scoped or f"{base}/{rtype.plural}"
    params = [_param("namespace", "path")] if rtype.namespaced else []
    verbs = set(rtype.verbs)
    ops: dict[str, Any] = {"parameters": params}
    if "list" in verbs:
        ops["get"] = _operation(rtype, "list", False)
    if "create" in verbs:
        ops["post"] = _operation(rtype, "post", True)
    item: dict[str, Any] = {"parameters": [*params, _param("name", "path")]}
    for method, verb, body in (
        ("get", "get", False),
        ("put", "update", True),
        ("patch", "patch", True),
        ("delete", "delete", False),
    ):
        if verb in verbs:
            item[method] = _operation(rtype, method if method != "get" else "get", body)
    paths = {collection: ops, f"{collection}/{{name}}": item}
    if rtype.namespaced:
        paths[f"{base}/{rtype.plural}"] = {"get": _operation(rtype, "list", False)}
    return paths


GROUP_DOCUMENTS: dict[str, tuple[ResourceType, ...]] = {
    "apis/serving.kserve.io/v1beta1": (INFERENCE_SERVICES,),
    "apis/serving.kserve.io/v1alpha1": (
        SERVING_RUNTIMES,
        CLUSTER_SERVING_RUNTIMES,
        INFERENCE_GRAPHS,
        TRAINED_MODELS,
    ),
    "api/v1": (NAMESPACES,),
}


@cache
def document(key: str) -> bytes:
    """The OpenAPI v3 document of one group/version, serialized once."""
    types = GROUP_DOCUMENTS[key]
    paths: dict[str, Any] = {}
    components: dict[str, Any] = {schemas.META: schemas.OBJECT_META}
    for rtype in types:
        paths.update(_paths(rtype))
        components[schema_name(rtype)] = {
            **KINDS[rtype],
            "x-kubernetes-group-version-kind": [_gvk(rtype)],
        }
    body = {
        "openapi": "3.0.0",
        "info": {"title": "modelport Kubernetes-style API", "version": key},
        "paths": paths,
        "components": {"schemas": components},
    }
    return orjson.dumps(body)


def _hash(key: str) -> str:
    return hashlib.sha512(document(key)).hexdigest()[:64].upper()


async def v3_index(request: Request) -> Response:
    """``/openapi/v3``: where each group/version's document is."""
    paths = {
        key: {"serverRelativeURL": f"/openapi/v3/{key}?hash={_hash(key)}"}
        for key in GROUP_DOCUMENTS
    }
    return respond({"paths": paths})


async def v3_document(request: Request) -> Response:
    """``/openapi/v3/apis/GROUP/VERSION``; immutable under its hash, as apiserver marks it."""
    key = request.path_params["path"].strip("/")
    if key not in GROUP_DOCUMENTS:
        error = KubeError(404, "NotFound", "the server could not find the requested resource")
        return respond(error.body(), 404)
    headers = {"Etag": f'"{_hash(key)}"'}
    if request.query_params.get("hash") == _hash(key):
        headers["Cache-Control"] = "public, immutable"
    return Response(document(key), media_type="application/json", headers=headers)


async def v2(request: Request) -> Response:
    """``/openapi/v2``: protobuf for kubectl, JSON for whoever asks for it."""
    accept = request.headers.get("accept", "")
    if V2_PROTOBUF in accept or V2_PROTOBUF_REPLY in accept:
        return Response(V2_DOCUMENT_PB, media_type=V2_PROTOBUF_REPLY)
    return respond(V2_DOCUMENT_JSON)
