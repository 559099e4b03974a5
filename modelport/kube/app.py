"""The Kubernetes-style API as one ASGI app, mounted by the gateway under ``/k8s`` (so a
kubeconfig's server is ``PLATFORM_URL/k8s``); the gateway authenticates every request and puts
the caller's identity in the scope. Every path it serves is in the route table below; anything
else is a ``Status`` 404, as kube-apiserver answers.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from modelport.control.namespaces import create_owned, creation_denied
from modelport.control.operations import ApiContext, Control
from modelport.kube import discovery, errors, openapi, protobuf
from modelport.kube.cache import ObjectCache, Versions
from modelport.kube.encoding import decode, media_type, read_body, read_object, respond
from modelport.kube.errors import KubeError
from modelport.kube.graphs import graph_renderer
from modelport.kube.objects import (
    builtin_runtime_rows,
    document_renderer,
    isvc_renderer,
    namespace_object,
)
from modelport.kube.patch import PATCH_TYPES, PatchError, apply_patch
from modelport.kube.resources import (
    CLUSTER_SERVING_RUNTIMES,
    EVENTS,
    INFERENCE_GRAPHS,
    INFERENCE_SERVICES,
    NAMESPACES,
    SERVING_RUNTIMES,
    TRAINED_MODELS,
    ResourceType,
    lookup,
)
from modelport.kube.selectors import SelectorError, field_matcher, label_matcher
from modelport.kube.tables import table, wants_table
from modelport.kube.tls import Endpoint
from modelport.kube.trained_models import trained_model_renderer
from modelport.kube.verbs import Verbs
from modelport.kube.watch import watch, watching

log = logging.getLogger("modelport.kube")

# Where the platform mounts the app; `modelport kubeconfig` writes PLATFORM_URL + this.
KUBE_PREFIX = "/k8s"
ITEM = "/apis/{group}/{version}/namespaces/{namespace}/{plural}/{name}"
COLLECTION = "/apis/{group}/{version}/namespaces/{namespace}/{plural}"
CLUSTER_ITEM = "/apis/{group}/{version}/{plural}/{name}"
CLUSTER_COLLECTION = "/apis/{group}/{version}/{plural}"


def create_kube_api(
    ctx: ApiContext, *, endpoint: Callable[[], Endpoint | None] | None = None
) -> Starlette:
    """The ASGI app; mount it at ``/k8s`` behind the gateway. ``endpoint`` gives the HTTPS
    listener kubectl must use when the platform's own URL is plain HTTP."""
    control = Control(ctx)
    versions = Versions()
    caches = {
        INFERENCE_SERVICES: ObjectCache(
            ctx.store, "InferenceService", isvc_renderer(control), versions
        ),
        SERVING_RUNTIMES: ObjectCache(
            ctx.store, "ServingRuntime", document_renderer(SERVING_RUNTIMES), versions
        ),
        CLUSTER_SERVING_RUNTIMES: ObjectCache(
            ctx.store,
            "ClusterServingRuntime",
            document_renderer(CLUSTER_SERVING_RUNTIMES),
            versions,
            extras=builtin_runtime_rows,
        ),
        INFERENCE_GRAPHS: ObjectCache(ctx.store, "InferenceGraph", graph_renderer(ctx), versions),
        TRAINED_MODELS: ObjectCache(
            ctx.store, "TrainedModel", trained_model_renderer(ctx), versions
        ),
    }
    api = _KubeApi(Verbs(control, caches), endpoint)
    reads, writes = ["GET"], ["GET", "POST"]
    routes = [
        Route("/version", api.version, methods=reads),
        Route("/api", api.core, methods=reads),
        Route("/api/v1", api.core_v1, methods=reads),
        Route("/api/v1/namespaces", api.namespaces, methods=writes),
        Route("/api/v1/namespaces/{name}", api.namespace, methods=["GET", "PATCH", "DELETE"]),
        Route("/api/v1/events", api.events, methods=reads),
        Route("/api/v1/namespaces/{namespace}/events", api.events, methods=reads),
        Route("/apis", api.groups, methods=reads),
        Route("/apis/{group}", api.group, methods=reads),
        Route("/apis/{group}/{version}", api.group_version, methods=reads),
        Route(ITEM, api.item, methods=["GET", "PUT", "PATCH", "DELETE"]),
        Route(COLLECTION, api.collection, methods=writes),
        Route(CLUSTER_ITEM, api.item, methods=["GET", "PUT", "PATCH", "DELETE"]),
        Route(CLUSTER_COLLECTION, api.collection, methods=writes),
        Route("/modelport/cluster", api.cluster, methods=reads),
        Route("/openapi/v2", openapi.v2, methods=reads),
        Route("/openapi/v3", openapi.v3_index, methods=reads),
        Route("/openapi/v3/{path:path}", openapi.v3_document, methods=reads),
    ]
    return Starlette(
        routes=routes,
        exception_handlers={
            KubeError: _kube_error,
            HTTPException: _http_error,
            Exception: _internal_error,
        },
    )


async def _kube_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, KubeError)
    return respond(exc.body(), exc.code)


async def _http_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 405:
        return respond(errors.method_not_allowed("", "this resource").body(), 405)
    return respond(_not_served().body(), 404)


async def _internal_error(_request: Request, exc: Exception) -> Response:
    log.exception("Kubernetes-style API error: %s", type(exc).__name__)
    error = KubeError(500, "InternalError", "Internal error; see the platform's log.")
    return respond(error.body(), 500)


def _not_served() -> KubeError:
    return KubeError(404, "NotFound", "the server could not find the requested resource")


class _KubeApi:
    def __init__(self, verbs: Verbs, endpoint: Callable[[], Endpoint | None] | None) -> None:
        self.verbs = verbs
        self.control = verbs.control
        self.endpoint = endpoint

    async def cluster(self, request: Request) -> Response:
        """The kubeconfig ``cluster`` entry for this platform (``modelport kubeconfig``)."""
        self.verbs.identity(request)
        found = self.endpoint() if self.endpoint else None
        if found is not None:
            return respond({"cluster": found.cluster()})
        # Served over HTTPS by the platform itself or by a proxy in front of it.
        return respond({"cluster": {"server": self.control.ctx.gateway_url() + KUBE_PREFIX}})

    # ---- discovery ----------------------------------------------------------------------

    async def version(self, request: Request) -> Response:
        return respond(discovery.version_info())

    async def core(self, request: Request) -> Response:
        return respond(discovery.api_versions())

    async def core_v1(self, request: Request) -> Response:
        return respond(discovery.resource_list("", "v1"))

    async def groups(self, request: Request) -> Response:
        return respond(discovery.api_group_list())

    async def group(self, request: Request) -> Response:
        return respond(_served(discovery.api_group(request.path_params["group"])))

    async def group_version(self, request: Request) -> Response:
        params = request.path_params
        return respond(_served(discovery.resource_list(params["group"], params["version"])))

    # ---- stored kinds -------------------------------------------------------------------

    def _stored_type(self, request: Request) -> ResourceType:
        params = request.path_params
        rtype = lookup(params["group"], params["version"], params["plural"])
        if rtype is None or rtype.store_kind is None:
            raise _not_served()
        if "namespace" in params and not rtype.namespaced:
            raise _not_served()
        return rtype

    async def collection(self, request: Request) -> Response:
        rtype = self._stored_type(request)
        namespace = request.path_params.get("namespace")
        if request.method == "GET":
            if watching(request):
                return await watch(self.verbs, request, rtype, namespace)
            return await self.verbs.list(request, rtype, namespace)
        if rtype.namespaced and namespace is None:
            raise errors.method_not_allowed("create", f"all namespaces' {rtype.plural}")
        return await self.verbs.create(request, rtype, namespace or "")

    async def item(self, request: Request) -> Response:
        rtype = self._stored_type(request)
        namespace = request.path_params.get("namespace")
        if rtype.namespaced and namespace is None:
            raise _not_served()
        namespace, name = namespace or "", request.path_params["name"]
        if request.method == "GET":
            return await self.verbs.get(request, rtype, namespace, name)
        if request.method == "PUT":
            return await self.verbs.replace(request, rtype, namespace, name)
        if request.method == "PATCH":
            return await self.verbs.patch(request, rtype, namespace, name)
        return await self.verbs.delete(request, rtype, namespace, name)

    # ---- core v1: namespaces, events ----------------------------------------------------

    def _namespace_objects(self, request: Request) -> list[dict[str, Any]]:
        identity = self.verbs.identity(request)
        return [
            namespace_object(name, owner, role, created)
            for name, owner, role, created in self.control.namespaces(identity)
        ]

    async def namespaces(self, request: Request) -> Response:
        if request.method == "POST":
            return await self._create_namespace(request)
        try:
            labels = label_matcher(request.query_params.get("labelSelector"))
            fields = field_matcher(request.query_params.get("fieldSelector"))
        except SelectorError as exc:
            raise errors.bad_request(str(exc)) from None
        items = [o for o in self._namespace_objects(request) if labels(o) and fields(o)]
        rv = str(self.verbs.caches[INFERENCE_SERVICES].versions.value)
        if wants_table(request.headers.get("accept", "")):
            include = request.query_params.get("includeObject", "Metadata")
            return respond(table(NAMESPACES, items, resource_version=rv, include=include))
        return respond(
            {
                "apiVersion": "v1",
                "kind": "NamespaceList",
                "metadata": {"resourceVersion": rv},
                "items": items,
            }
        )

    async def namespace(self, request: Request) -> Response:
        name = request.path_params["name"]
        if request.method == "DELETE":
            raise errors.method_not_allowed(
                "delete", "namespaces (a namespace and its owner stay; delete its objects)"
            )
        found = [o for o in self._namespace_objects(request) if o["metadata"]["name"] == name]
        if not found:
            if self.control.ctx.authorizer.get_namespace(name) is None:
                raise errors.not_found("namespaces", "", name)
            identity = self.verbs.identity(request)
            why = f"{identity.email} has no access to namespace {name}"
            raise errors.forbidden("namespaces", "", name, identity.email, "get", "", why)
        if request.method == "PATCH":
            return await self._patch_namespace(request, found[0])
        if wants_table(request.headers.get("accept", "")):
            rv = found[0]["metadata"]["resourceVersion"]
            return respond(table(NAMESPACES, found, resource_version=rv))
        return respond(found[0])

    async def _patch_namespace(self, request: Request, current: dict[str, Any]) -> Response:
        """Checked like any patch, then answered with the namespace as it is: there is
        nothing of a namespace the platform keeps that a patch could change."""
        content_type = media_type(request)
        if content_type not in PATCH_TYPES:
            raise errors.unsupported_media_type(content_type, list(PATCH_TYPES))
        try:
            patched = apply_patch(content_type, current, decode(await read_body(request)))
        except PatchError as exc:
            raise errors.bad_request(f"the patch cannot be applied: {exc}") from None
        name = current["metadata"]["name"]
        if not isinstance(patched, dict) or (patched.get("metadata") or {}).get("name") != name:
            raise errors.bad_request("a patch cannot rename a namespace")
        warning = "modelport keeps no labels or annotations on namespaces; nothing changed"
        return respond(current, warnings=[warning] if patched != current else None)

    async def _create_namespace(self, request: Request) -> Response:
        """Self-service, as applying into a new namespace: the caller becomes its owner."""
        identity = self.verbs.identity(request)
        if media_type(request) == protobuf.MEDIA_TYPE:  # kubectl create namespace
            try:
                body = protobuf.decode_object(await read_body(request))
            except protobuf.ProtobufError as exc:
                raise errors.bad_request(f"the body is not a protobuf Namespace: {exc}") from None
        else:
            body = await read_object(request)
        if body.get("kind") not in (None, "Namespace"):
            raise errors.bad_request(f"the kind in the body ({body.get('kind')}) is not Namespace")
        metadata = body.get("metadata") or {}
        name = metadata.get("name") if isinstance(metadata, dict) else None
        if not isinstance(name, str) or not name:
            raise errors.bad_request("metadata.name is required")
        authorizer = self.control.ctx.authorizer
        if authorizer.get_namespace(name) is not None:
            raise errors.already_exists("namespaces", "", name)
        admin = self.control.admin(identity)
        self_service = self.control.ctx.namespace_self_service
        if why := creation_denied(identity, name, admin=admin, self_service=self_service):
            raise errors.forbidden("namespaces", "", name, identity.email, "create", "", why)
        if why := create_owned(authorizer, name, identity.email):
            raise errors.invalid("Namespace", "", name, [], why)
        created = authorizer.get_namespace(name)
        when = created.created_at if created else 0.0
        return respond(namespace_object(name, identity.email, "edit", when), 201)

    async def events(self, request: Request) -> Response:
        """No events are recorded; ``kubectl describe`` shows none."""
        self.verbs.identity(request)
        rv = str(self.verbs.caches[INFERENCE_SERVICES].versions.value)
        if wants_table(request.headers.get("accept", "")):
            return respond(table(EVENTS, [], resource_version=rv))
        return respond(
            {
                "apiVersion": "v1",
                "kind": "EventList",
                "metadata": {"resourceVersion": rv},
                "items": [],
            }
        )


def _served(document: dict[str, Any] | None) -> dict[str, Any]:
    if document is None:
        raise _not_served()
    return document
