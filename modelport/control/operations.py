"""What the control plane does for a caller, whichever API the request came through: who may
do what (the platform's namespace roles), applying parsed objects (namespace creation,
checks only the platform can make, the store), deleting, and rendering stored
InferenceServices with their status.

The control API (``/api/v1``, control/api.py) and the Kubernetes-style API (kube/) are thin
edges over this one implementation; each maps the errors below to its own bodies once::

    ControlError
    ├── Unauthenticated   no identity in the request             → 401
    ├── Forbidden         the caller's role does not allow it    → 403
    ├── NotFound          no such object                         → 404
    └── Invalid           the objects cannot be stored or run    → 422 (with problems)
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, MutableMapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from modelport.access.authz import EDIT, Authorizer
from modelport.access.caller import Identity
from modelport.control.controller import Controller
from modelport.control.namespaces import create_owned, creation_denied
from modelport.control.serving_runtimes import ServingRuntime, resolve_runtime
from modelport.control.spec import InferenceService, Problem, SpecError, parse_documents
from modelport.control.spec.inference_graph import IG, InferenceGraph
from modelport.control.spec.trained_model import TM, TrainedModel
from modelport.control.status import build_status
from modelport.control.storage import check_uri, local_path
from modelport.control.store import CLUSTER_RUNTIME, ISVC, RUNTIME, Resource, Store
from modelport.control.trained_model_status import memory_change
from modelport.errors import ModelportError
from modelport.gateway.app import IDENTITY_KEY

MAX_APPLY_OBJECTS = 100

Parsed = InferenceService | ServingRuntime | InferenceGraph | TrainedModel


@dataclass
class ApiContext:
    """What the control plane's APIs work with, built once by ``build_platform``."""

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


class ControlError(ModelportError):
    """A request the control plane refuses; the message says why."""


class Unauthenticated(ControlError):
    """The request carries no identity (the gateway lets none through; a safeguard)."""


class Forbidden(ControlError):
    """The caller's role in the namespace (or lack of admin rights) does not allow this."""


class NotFound(ControlError):
    """No object of this kind and name (in this namespace)."""

    def __init__(self, kind: str, namespace: str, name: str) -> None:
        where = f" in namespace {namespace}" if namespace else ""
        super().__init__(f"{kind} {name} not found{where}.")
        self.kind, self.namespace, self.name = kind, namespace, name


class Invalid(ControlError):
    """The objects are not valid, or cannot run here; ``problems`` has each field's reason."""

    def __init__(self, message: str, problems: Sequence[Problem] = ()) -> None:
        super().__init__(message)
        self.problems = list(problems)


@dataclass(frozen=True)
class ApplyResult:
    """What applying one object did (``action``: created, configured, unchanged)."""

    kind: str
    namespace: str | None
    name: str
    action: str
    ignored: list[str]


def placement_fields(isvc: InferenceService) -> list[str]:
    """The fields that choose a node, which a one-machine backend does not act on."""
    found = []
    parts = (
        ("predictor", isvc.predictor),
        ("transformer", isvc.transformer),
        ("explainer", isvc.explainer),
    )
    for part, component in parts:
        if component is None:
            continue
        if component.node_selector:
            found.append(f"spec.{part}.nodeSelector")
        resources = f"spec.{part}.{component.source}.resources"
        if component.cpu_request or component.memory_request:
            found.append(f"{resources}.requests")
        if component.gpu_limit:
            found.append(f"{resources}.limits.nvidia.com/gpu")
    return found


def kind_of(obj: Parsed) -> str:
    """The store's kind of a parsed object."""
    if isinstance(obj, InferenceService):
        return ISVC
    if isinstance(obj, InferenceGraph):
        return IG
    if isinstance(obj, TrainedModel):
        return TM
    return RUNTIME if obj.namespace is not None else CLUSTER_RUNTIME


def parse(body: bytes, default_namespace: str) -> list[Parsed]:
    """A YAML/JSON document stream as kubectl apply -f reads it; Invalid if it is not one."""
    try:
        objects = parse_documents(body, default_namespace)
    except SpecError as exc:
        raise Invalid(str(exc), exc.problems) from exc
    if not objects:
        raise Invalid("No documents found in the request body.")
    if len(objects) > MAX_APPLY_OBJECTS:
        raise Invalid(f"At most {MAX_APPLY_OBJECTS} objects per apply.")
    return objects


class Control:
    """The operations, over one platform's store, controller and authorizer."""

    def __init__(self, ctx: ApiContext) -> None:
        self.ctx = ctx

    # ---- who may do what ----------------------------------------------------------------

    def identity(self, scope: MutableMapping[str, Any]) -> Identity:
        """The caller the gateway authenticated."""
        identity = scope.get(IDENTITY_KEY)
        if not isinstance(identity, Identity):
            raise Unauthenticated("Authentication required.")
        return identity

    def admin(self, identity: Identity) -> bool:
        """Admins act everywhere; an API token never does, whoever created it."""
        return identity.token_namespace is None and self.ctx.is_admin(identity.email)

    def require(self, identity: Identity, namespace: str, needed: str) -> None:
        """Forbidden unless the caller has the ``needed`` role (view or edit) in namespace."""
        if identity.token_namespace is not None:
            if identity.token_namespace != namespace:
                raise Forbidden(
                    f"This API token works only in namespace {identity.token_namespace}."
                )
            if needed == EDIT and identity.token_role != EDIT:
                raise Forbidden("This API token has the view role; this request needs edit.")
            return
        denied = self.ctx.authorizer.refusal(
            identity.email, namespace, needed, admin=self.admin(identity)
        )
        if denied:
            raise Forbidden(denied)

    def visible(self, identity: Identity) -> list[str] | None:
        """Namespaces the caller may read; None means all (admins)."""
        if identity.token_namespace is not None:
            return [identity.token_namespace]
        if self.admin(identity):
            return None
        return list(self.ctx.authorizer.roles_of(identity.email))

    def namespaces(self, identity: Identity) -> list[tuple[str, str, str, float]]:
        """(name, owner, the caller's role, created_at) of each namespace the caller sees."""
        admin = self.admin(identity)
        roles = {} if admin else self.ctx.authorizer.roles_of(identity.email)
        out = []
        for ns in self.ctx.authorizer.list_namespaces():
            if identity.token_namespace is not None:
                if ns.name == identity.token_namespace:
                    out.append((ns.name, ns.owner, identity.token_role or "", ns.created_at))
            elif admin or ns.name in roles:
                out.append((ns.name, ns.owner, "admin" if admin else roles[ns.name], ns.created_at))
        return out

    # ---- apply and delete ---------------------------------------------------------------

    async def apply(
        self, identity: Identity, objects: list[Parsed], *, dry_run: bool = False
    ) -> list[ApplyResult]:
        """Store the objects (all or none pass the checks first); namespaces that do not
        exist yet are created with the caller as owner, where the platform allows it."""
        missing = self._authorize(identity, objects)
        self.check_runnable(objects, admin=self.admin(identity))
        if dry_run:
            return [
                ApplyResult(kind_of(o), o.namespace, o.name, "unchanged", o.ignored)
                for o in objects
            ]
        for namespace in sorted(missing):
            if why := create_owned(self.ctx.authorizer, namespace, identity.email):
                raise Invalid(why)
            self.require(identity, namespace, EDIT)
        results = []
        places = self.ctx.controller.backend.places_replicas
        for obj in objects:
            kind = kind_of(obj)
            applied = await asyncio.to_thread(
                self.ctx.store.apply,
                kind,
                obj.namespace or "",
                obj.name,
                obj.document,
                identity.email,
            )
            ignored = obj.ignored
            if isinstance(obj, InferenceService) and not places:
                ignored = [*ignored, *placement_fields(obj)]
            results.append(ApplyResult(kind, obj.namespace, obj.name, applied.action, ignored))
        self.ctx.controller.wake()
        return results

    def _authorize(self, identity: Identity, objects: list[Parsed]) -> set[str]:
        """Who may write where comes first (403), then whether the objects can run (422);
        namespaces are created only once both passed. Returns the namespaces to create."""
        missing = set()
        admin, self_service = self.admin(identity), self.ctx.namespace_self_service
        for obj in objects:
            namespace = obj.namespace
            if namespace is None:  # a ClusterServingRuntime
                if not admin:
                    raise Forbidden("Only admins can apply ClusterServingRuntimes.")
            elif self.ctx.authorizer.get_namespace(namespace) is None:
                if why := creation_denied(
                    identity, namespace, admin=admin, self_service=self_service
                ):
                    raise Forbidden(why)
                missing.add(namespace)
            else:
                self.require(identity, namespace, EDIT)
        return missing

    def check_runnable(self, objects: list[Parsed], *, admin: bool) -> None:
        """Problems only the platform can see: storage URIs it cannot or may not read, no
        runtime."""
        problems: list[Problem] = []
        runtimes = [o for o in objects if isinstance(o, ServingRuntime)]
        runtimes += self.ctx.controller.runtimes()
        for obj in objects:
            if isinstance(obj, TrainedModel):
                problems += self._trained_model_problems(obj, admin=admin)
            if not isinstance(obj, InferenceService):
                continue
            components = [("spec.predictor", obj.predictor)]
            if obj.transformer is not None:
                components.append(("spec.transformer", obj.transformer))
            if obj.explainer is not None:
                components.append(("spec.explainer", obj.explainer))
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
            raise Invalid(str(SpecError(problems)), problems)

    def _trained_model_problems(self, tm: TrainedModel, *, admin: bool) -> list[Problem]:
        """Its storage URI is checked as a predictor's; its memory may not change."""
        uri = tm.storage_uri
        why = check_uri(uri) or (None if admin else self._local_denied(uri))
        found = [Problem("spec.model.storageUri", why)] if why else []
        changed = memory_change(self.ctx.store, tm)
        return [*found, changed] if changed else found

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

    def find(
        self, identity: Identity, kind: str, namespace: str, name: str, needed: str
    ) -> Resource:
        """The stored object, once the caller's role allows ``needed``; else 403 or 404."""
        self._authorize_kind(identity, kind, namespace, needed, "change")
        row = self.ctx.store.get(kind, namespace, name)
        if row is None:
            raise NotFound(kind, namespace, name)
        return row

    async def delete(self, identity: Identity, kind: str, namespace: str, name: str) -> None:
        """Delete an object (an InferenceService's replicas stop at the next reconcile)."""
        self._authorize_kind(identity, kind, namespace, EDIT, "delete")
        if not await asyncio.to_thread(self.ctx.store.delete, kind, namespace, name):
            raise NotFound(kind, namespace, name)
        self.ctx.controller.wake()

    def _authorize_kind(
        self, identity: Identity, kind: str, namespace: str, needed: str, verb: str
    ) -> None:
        if kind == CLUSTER_RUNTIME:
            # Everyone may read them (services select them); only admins change them.
            if needed == EDIT and not self.admin(identity):
                raise Forbidden(f"Only admins can {verb} ClusterServingRuntimes.")
            return
        self.require(identity, namespace, needed)

    # ---- rendering ----------------------------------------------------------------------

    def render_isvc(self, row: Resource) -> dict[str, Any]:
        """The stored document with server-set metadata and the status KServe would report."""
        svc = self.ctx.controller.lookup(row.namespace, row.name)
        doc = dict(row.document)
        metadata = dict(doc.get("metadata") or {})
        metadata.update(
            name=row.name,
            namespace=row.namespace,
            generation=row.generation,
            creationTimestamp=timestamp(row.created_at),
        )
        doc["metadata"] = metadata
        doc.setdefault("apiVersion", "serving.kserve.io/v1beta1")
        doc.setdefault("kind", ISVC)
        doc["status"] = build_status(
            svc, row.name, row.namespace, self.ctx.domain, self.ctx.gateway_url()
        )
        return doc


def timestamp(epoch: float) -> str:
    """RFC 3339 in UTC to the second, as Kubernetes writes metav1.Time."""
    return datetime.fromtimestamp(epoch or time.time(), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
