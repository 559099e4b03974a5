"""The control API under ``/api``: apply, list, read, delete InferenceServices and
ServingRuntimes, read replica logs. The gateway authenticates every request and puts the
caller's identity in the ASGI scope; each handler checks the caller's role in the namespace
it touches. Every route is described in ``GET /api/openapi.json``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route
from starlette.schemas import SchemaGenerator

from modelport.control.backends.process import tail
from modelport.control.controller import Controller
from modelport.control.namespaces import create_owned, creation_denied
from modelport.control.runtimes import BUILTIN_RUNTIMES, ServingRuntime, resolve_runtime
from modelport.control.spec import InferenceService, Problem, SpecError, parse_documents
from modelport.control.status import build_status, replicas
from modelport.control.storage import check_uri, local_path
from modelport.control.store import CLUSTER_RUNTIME, ISVC, RUNTIME, Resource, Store
from modelport.gateway.app import IDENTITY_KEY
from modelport.gateway.authz import EDIT, VIEW, Authorizer
from modelport.gateway.sessions import Identity

log = logging.getLogger("modelport.api")

MAX_APPLY_BYTES = 1 << 20
MAX_APPLY_OBJECTS = 100
MAX_LOG_LINES = 10000

schemas = SchemaGenerator(
    {"openapi": "3.0.3", "info": {"title": "modelport control API", "version": "v1"}}
)


@dataclass
class ApiContext:
    store: Store
    controller: Controller
    authorizer: Authorizer
    is_admin: Callable[[str], bool]
    domain: str
    gateway_url: Callable[[], str]
    # Local directories anyone with the edit role may deploy from; admins may use any path.
    # Loading a model runs its code (pickles, .py models), so a local path is a privilege.
    model_roots: list[Path] = field(default_factory=list)
    # People may create namespaces by applying into them; off: only admins (machines never).
    namespace_self_service: bool = True


class ApiError(Exception):
    def __init__(self, status: int, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.body = {"error": message, **extra}


def create_api(ctx: ApiContext) -> Starlette:
    """The ASGI app; mount it at ``/api`` behind the gateway."""
    api = _Api(ctx)
    routes = [
        Route("/v1/apply", api.apply, methods=["POST"]),
        Route("/v1/namespaces", api.namespaces, methods=["GET"]),
        Route("/v1/inferenceservices", api.list_all, methods=["GET"]),
        Route("/v1/namespaces/{namespace}/inferenceservices", api.list_ns, methods=["GET"]),
        Route(
            "/v1/namespaces/{namespace}/inferenceservices/{name}",
            api.get_isvc,
            methods=["GET"],
        ),
        Route(
            "/v1/namespaces/{namespace}/inferenceservices/{name}",
            api.delete_isvc,
            methods=["DELETE"],
        ),
        Route(
            "/v1/namespaces/{namespace}/inferenceservices/{name}/logs",
            api.logs,
            methods=["GET"],
        ),
        Route("/v1/namespaces/{namespace}/servingruntimes", api.list_runtimes, methods=["GET"]),
        Route(
            "/v1/namespaces/{namespace}/servingruntimes/{name}",
            api.delete_runtime,
            methods=["DELETE"],
        ),
        Route("/v1/clusterservingruntimes", api.list_cluster_runtimes, methods=["GET"]),
        Route(
            "/v1/clusterservingruntimes/{name}",
            api.delete_cluster_runtime,
            methods=["DELETE"],
        ),
        Route("/openapi.json", api.openapi, methods=["GET"], include_in_schema=False),
    ]
    app = Starlette(
        routes=routes, exception_handlers={ApiError: _api_error, Exception: _internal_error}
    )
    api.routes = routes
    return app


async def _api_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return _json(exc.body, exc.status)


async def _internal_error(_request: Request, exc: Exception) -> Response:
    log.error("control API error: %s: %s", type(exc).__name__, exc)
    return _json({"error": "Internal error in the control API; see the platform's log."}, 500)


def _json(body: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(body), status, media_type="application/json")


class _Api:
    def __init__(self, ctx: ApiContext) -> None:
        self.ctx = ctx
        self.routes: list[Route] = []

    # ---- authorization ------------------------------------------------------------------

    def _identity(self, request: Request) -> Identity:
        identity = request.scope.get(IDENTITY_KEY)
        if not isinstance(identity, Identity):
            raise ApiError(401, "Authentication required.")
        return identity

    def _require(self, request: Request, namespace: str, needed: str) -> Identity:
        identity = self._identity(request)
        if identity.token_namespace is not None:
            if identity.token_namespace != namespace:
                raise ApiError(
                    403, f"This API token works only in namespace {identity.token_namespace}."
                )
            if needed == EDIT and identity.token_role != EDIT:
                raise ApiError(403, "This API token has the view role; this request needs edit.")
            return identity
        denied = self.ctx.authorizer.check(
            identity.email, namespace, needed, admin=self._admin(identity)
        )
        if denied:
            raise ApiError(403, denied)
        return identity

    def _admin(self, identity: Identity) -> bool:
        return identity.token_namespace is None and self.ctx.is_admin(identity.email)

    def _visible(self, identity: Identity) -> list[str] | None:
        """Namespaces the caller may read; None means all (admins)."""
        if identity.token_namespace is not None:
            return [identity.token_namespace]
        if self._admin(identity):
            return None
        return list(self.ctx.authorizer.roles_of(identity.email))

    # ---- apply --------------------------------------------------------------------------

    async def apply(self, request: Request) -> Response:
        """
        summary: Create or update InferenceServices and ServingRuntimes.
        description: >
          The body is a YAML or JSON document stream, as for kubectl apply. All documents
          are validated before any is stored; a namespace that does not exist yet is created
          with the caller as owner (people, if the platform allows it; never API tokens or
          service accounts). Query parameter namespace is the default namespace.
        responses:
          200: {description: "results: kind, namespace, name, action, ignored fields"}
          403: {description: the caller may not edit a namespace named in the documents}
          422: {description: "validation failed: error, problems[{path, message}]"}
        """
        identity = self._identity(request)
        body = await _bounded_body(request, MAX_APPLY_BYTES)
        default_ns = request.query_params.get("namespace") or "default"
        if identity.token_namespace is not None and "namespace" not in request.query_params:
            default_ns = identity.token_namespace
        try:
            # Parsing a 1 MiB stream takes a while: not on the event loop.
            objects = await asyncio.to_thread(parse_documents, body, default_ns)
        except SpecError as exc:
            raise ApiError(422, str(exc), problems=_problems(exc.problems)) from exc
        if not objects:
            raise ApiError(422, "No documents found in the request body.")
        if len(objects) > MAX_APPLY_OBJECTS:
            raise ApiError(422, f"At most {MAX_APPLY_OBJECTS} objects per apply.")
        # Who may write where comes first (403), then whether the objects can run (422);
        # namespaces are created only once both passed.
        missing = set()
        admin, self_service = self._admin(identity), self.ctx.namespace_self_service
        for obj in objects:
            namespace = obj.namespace
            if namespace is None:  # a ClusterServingRuntime
                if not admin:
                    raise ApiError(403, "Only admins can apply ClusterServingRuntimes.")
            elif self.ctx.authorizer.get_namespace(namespace) is None:
                if why := creation_denied(
                    identity, namespace, admin=admin, self_service=self_service
                ):
                    raise ApiError(403, why)
                missing.add(namespace)
            else:
                self._require(request, namespace, EDIT)
        self._check_runnable(objects, admin=admin)
        for namespace in sorted(missing):
            if why := create_owned(self.ctx.authorizer, namespace, identity.email):
                raise ApiError(422, why)
            self._require(request, namespace, EDIT)
        results = []
        for obj in objects:
            kind = _kind(obj)
            applied = await asyncio.to_thread(
                self.ctx.store.apply,
                kind,
                obj.namespace or "",
                obj.name,
                obj.document,
                identity.email,
            )
            results.append(
                {
                    "kind": kind,
                    "namespace": obj.namespace,
                    "name": obj.name,
                    "action": applied.action,
                    "ignored": obj.ignored,
                }
            )
        self.ctx.controller.wake()
        return _json({"results": results})

    def _check_runnable(
        self, objects: list[InferenceService | ServingRuntime], *, admin: bool
    ) -> None:
        """Problems only the platform can see: storage URIs it cannot or may not read, no
        runtime."""
        problems: list[Problem] = []
        runtimes = [o for o in objects if isinstance(o, ServingRuntime)]
        runtimes += self.ctx.controller.runtimes()
        for obj in objects:
            if not isinstance(obj, InferenceService):
                continue
            components = [("spec.predictor", obj.predictor)]
            if obj.transformer is not None:
                components.append(("spec.transformer", obj.transformer))
            for path, component in components:
                if component.storage_uri:
                    why = check_uri(component.storage_uri) or (
                        None if admin else self._local_denied(component.storage_uri)
                    )
                    if why:
                        problems.append(Problem(f"{path}.model.storageUri", why))
                try:
                    resolve_runtime(obj.namespace, component, runtimes, path=path)
                except SpecError as exc:
                    problems.extend(exc.problems)
        if problems:
            exc = SpecError(problems)
            raise ApiError(422, str(exc), problems=_problems(problems))

    def _local_denied(self, uri: str) -> str | None:
        # Parsed exactly as Storage.fetch will read it (scheme in any case, no "~").
        path = local_path(uri)
        if path is None:
            return None
        resolved = path.resolve()
        if any(resolved.is_relative_to(root.resolve()) for root in self.ctx.model_roots):
            return None
        return (
            "local paths are for admins (or under a --model-root of the platform); "
            "use s3://, http(s):// or pvc://"
        )

    # ---- read ---------------------------------------------------------------------------

    async def namespaces(self, request: Request) -> Response:
        """
        summary: Namespaces the caller can read, with the caller's role in each.
        responses:
          200: {description: "items: [{name, owner, role}]"}
        """
        identity = self._identity(request)
        admin = self._admin(identity)
        roles = {} if admin else self.ctx.authorizer.roles_of(identity.email)
        items = []
        for ns in await asyncio.to_thread(self.ctx.authorizer.list_namespaces):
            if identity.token_namespace is not None:
                if ns.name == identity.token_namespace:
                    items.append({"name": ns.name, "owner": ns.owner, "role": identity.token_role})
            elif admin or ns.name in roles:
                role = "admin" if admin else roles[ns.name]
                items.append({"name": ns.name, "owner": ns.owner, "role": role})
        return _json({"items": items})

    async def list_all(self, request: Request) -> Response:
        """
        summary: InferenceServices in every namespace the caller can read (get -A).
        responses:
          200: {description: "items: InferenceService objects with status"}
        """
        visible = self._visible(self._identity(request))
        rows = await asyncio.to_thread(self.ctx.store.list, ISVC)
        items = [self._isvc(r) for r in rows if visible is None or r.namespace in visible]
        return _json({"items": items})

    async def list_ns(self, request: Request) -> Response:
        """
        summary: InferenceServices in one namespace.
        responses:
          200: {description: "items: InferenceService objects with status"}
          403: {description: the caller has no role in the namespace}
        """
        namespace = request.path_params["namespace"]
        self._require(request, namespace, VIEW)
        rows = await asyncio.to_thread(self.ctx.store.list, ISVC, namespace)
        return _json({"items": [self._isvc(r) for r in rows]})

    async def get_isvc(self, request: Request) -> Response:
        """
        summary: One InferenceService with its status.
        responses:
          200: {description: the InferenceService object}
          404: {description: no such InferenceService}
        """
        row = self._find(request, VIEW)
        return _json(self._isvc(row))

    async def delete_isvc(self, request: Request) -> Response:
        """
        summary: Delete an InferenceService; its replicas are stopped.
        responses:
          200: {description: deleted}
          404: {description: no such InferenceService}
        """
        row = self._find(request, EDIT)
        await asyncio.to_thread(self.ctx.store.delete, ISVC, row.namespace, row.name)
        self.ctx.controller.wake()
        return _json({"deleted": {"kind": ISVC, "namespace": row.namespace, "name": row.name}})

    async def logs(self, request: Request) -> Response:
        """
        summary: The last lines of the service's replica logs (current revisions).
        parameters:
          - {name: component, in: query, schema: {type: string, enum: [predictor, transformer]}}
          - {name: tail, in: query, schema: {type: integer, default: 100}}
        responses:
          200: {description: plain text}
        """
        row = self._find(request, VIEW)
        component = request.query_params.get("component", "predictor")
        if component not in ("predictor", "transformer"):
            raise ApiError(400, "component must be predictor or transformer.")
        try:
            count = max(1, min(int(request.query_params.get("tail", "100")), MAX_LOG_LINES))
        except ValueError as exc:
            raise ApiError(400, "tail must be an integer.") from exc
        svc = self.ctx.controller.lookup(row.namespace, row.name)
        base = self.ctx.controller.config.data_dir / "logs" / row.namespace / row.name
        # Files are NAME-COMPONENT-REVISION-SLOT.log; show the revisions that take traffic.
        pattern = f"{row.name}-{component}-*.log"
        files = sorted(base.glob(pattern)) if base.is_dir() else []
        if svc is not None and svc.traffic:
            current = {f"-{component}-{n:05d}-" for n, _ in svc.traffic}
            chosen = [f for f in files if any(c in f.name for c in current)]
            files = chosen or files
        out = []
        for f in files:
            out.append(f"==> {f.stem} <==")
            out.extend(tail(f, count))
        return PlainTextResponse("\n".join(out) + ("\n" if out else ""))

    def _find(self, request: Request, needed: str) -> Resource:
        namespace = request.path_params["namespace"]
        name = request.path_params["name"]
        self._require(request, namespace, needed)
        row = self.ctx.store.get(ISVC, namespace, name)
        if row is None:
            raise ApiError(404, f"InferenceService {name} not found in namespace {namespace}.")
        return row

    def _isvc(self, row: Resource) -> dict[str, Any]:
        svc = self.ctx.controller.lookup(row.namespace, row.name)
        doc = dict(row.document)
        metadata = dict(doc.get("metadata") or {})
        metadata.update(
            name=row.name,
            namespace=row.namespace,
            generation=row.generation,
            creationTimestamp=_timestamp(row.created_at),
        )
        doc["metadata"] = metadata
        doc.setdefault("apiVersion", "serving.kserve.io/v1beta1")
        doc.setdefault("kind", ISVC)
        status = build_status(svc, row.name, row.namespace, self.ctx.domain, self.ctx.gateway_url())
        status["replicas"] = replicas(svc)
        doc["status"] = status
        return doc

    # ---- runtimes -----------------------------------------------------------------------

    async def list_runtimes(self, request: Request) -> Response:
        """
        summary: ServingRuntimes applied in a namespace.
        responses:
          200: {description: "items: ServingRuntime documents"}
        """
        namespace = request.path_params["namespace"]
        self._require(request, namespace, VIEW)
        rows = await asyncio.to_thread(self.ctx.store.list, RUNTIME, namespace)
        return _json({"items": [r.document for r in rows]})

    async def list_cluster_runtimes(self, request: Request) -> Response:
        """
        summary: ClusterServingRuntimes, the built-in ones included.
        responses:
          200: {description: "items: ClusterServingRuntime documents"}
        """
        self._identity(request)
        rows = await asyncio.to_thread(self.ctx.store.list, CLUSTER_RUNTIME)
        items = [r.document for r in rows] + [rt.document for rt in BUILTIN_RUNTIMES]
        return _json({"items": items})

    async def delete_runtime(self, request: Request) -> Response:
        """
        summary: Delete a ServingRuntime from a namespace.
        responses:
          200: {description: deleted}
          404: {description: no such ServingRuntime}
        """
        namespace = request.path_params["namespace"]
        name = request.path_params["name"]
        self._require(request, namespace, EDIT)
        if not await asyncio.to_thread(self.ctx.store.delete, RUNTIME, namespace, name):
            raise ApiError(404, f"ServingRuntime {name} not found in namespace {namespace}.")
        self.ctx.controller.wake()
        return _json({"deleted": {"kind": RUNTIME, "namespace": namespace, "name": name}})

    async def delete_cluster_runtime(self, request: Request) -> Response:
        """
        summary: Delete a ClusterServingRuntime (admins only).
        responses:
          200: {description: deleted}
          403: {description: not an admin}
          404: {description: no such ClusterServingRuntime}
        """
        identity = self._identity(request)
        if not self._admin(identity):
            raise ApiError(403, "Only admins can delete ClusterServingRuntimes.")
        name = request.path_params["name"]
        if not await asyncio.to_thread(self.ctx.store.delete, CLUSTER_RUNTIME, "", name):
            raise ApiError(404, f"ClusterServingRuntime {name} not found.")
        self.ctx.controller.wake()
        return _json({"deleted": {"kind": CLUSTER_RUNTIME, "name": name}})

    async def openapi(self, request: Request) -> Response:
        schema = schemas.get_schema(self.routes)
        schema["servers"] = [{"url": "/api"}]
        # Status codes are int keys once the docstrings' YAML is read; JSON wants strings.
        return Response(
            orjson.dumps(schema, option=orjson.OPT_NON_STR_KEYS), media_type="application/json"
        )


def _kind(obj: InferenceService | ServingRuntime) -> str:
    if isinstance(obj, InferenceService):
        return ISVC
    return RUNTIME if obj.namespace is not None else CLUSTER_RUNTIME


def _problems(problems: list[Problem]) -> list[dict[str, str]]:
    return [{"path": p.path, "message": p.message} for p in problems]


async def _bounded_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise ApiError(413, f"Request body exceeds the limit of {limit} bytes.")
    chunks = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise ApiError(413, f"Request body exceeds the limit of {limit} bytes.")
        chunks.append(chunk)
    return b"".join(chunks)


def _timestamp(epoch: float) -> str:
    return datetime.fromtimestamp(epoch or time.time(), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
