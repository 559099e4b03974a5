"""The verbs on stored kinds (InferenceServices, ServingRuntimes, ClusterServingRuntimes):
get, list, create, update, patch, delete, each authorized by the platform's namespace roles
(view: get/list/watch; edit: create/update/patch/delete; admins: everything) and carried out
by the control plane's one implementation (control/operations.py), with kube-apiserver's
semantics on top: AlreadyExists on create, resourceVersion preconditions on update (409),
``dryRun=All``, and Status errors.
"""

from __future__ import annotations

import asyncio
import copy
import time
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from modelport.access.authz import EDIT, VIEW
from modelport.access.caller import Identity
from modelport.control.operations import Control, ControlError, Forbidden, kind_of
from modelport.control.spec import SpecError, parse_document
from modelport.control.store import Resource
from modelport.kube import errors
from modelport.kube.cache import Entry, ObjectCache, object_uid
from modelport.kube.encoding import decode, media_type, read_body, read_object, respond
from modelport.kube.errors import KubeError
from modelport.kube.objects import (
    body_metadata,
    check_scope,
    for_storage,
    generated_name,
    invalid_field,
    is_builtin,
)
from modelport.kube.patch import APPLY, PATCH_TYPES, PatchError, apply_patch
from modelport.kube.resources import ResourceType
from modelport.kube.selectors import Matcher, SelectorError, field_matcher, label_matcher
from modelport.kube.tables import table, wants_table

READ_VERBS = ("get", "list", "watch")
# Named out here: inside Verbs, ``list`` is the list verb.
Objects = list[dict[str, Any]]


class Verbs:
    """Handlers for one platform; ``caches`` holds each stored kind's objects."""

    def __init__(self, control: Control, caches: dict[ResourceType, ObjectCache]) -> None:
        self.control = control
        self.caches = caches
        # Check-then-write (exists? same resourceVersion?) must not interleave.
        self._writing = asyncio.Lock()

    # ---- authorization ------------------------------------------------------------------

    def identity(self, request: Request) -> Identity:
        try:
            return self.control.identity(request.scope)
        except ControlError:
            raise errors.unauthorized() from None

    def authorize(
        self, identity: Identity, rtype: ResourceType, namespace: str, name: str | None, verb: str
    ) -> None:
        """403 unless the caller's role allows ``verb``. A create into a namespace that does
        not exist yet is left to apply, which decides whether the caller may create it; a get
        or list there finds nothing (so ``kubectl apply`` goes on to create)."""
        needed = VIEW if verb in READ_VERBS else EDIT
        try:
            if not rtype.namespaced:
                if needed == EDIT and not self.control.admin(identity):
                    raise Forbidden(f"only admins can {verb} {rtype.plural}")
                return
            if verb in ("create", "get", "list") and self.missing(namespace):
                return
            self.control.require(identity, namespace, needed)
        except ControlError as exc:
            raise self.mapped(exc, rtype, name, identity, verb, namespace) from None

    def missing(self, namespace: str) -> bool:
        """Whether the namespace does not exist (its objects, if any, are no one's)."""
        return self.control.ctx.authorizer.get_namespace(namespace) is None

    def mapped(
        self,
        exc: ControlError,
        rtype: ResourceType,
        name: str | None,
        identity: Identity,
        verb: str,
        namespace: str,
    ) -> KubeError:
        return errors.from_control(
            exc,
            plural=rtype.plural,
            group=rtype.group,
            kind=rtype.kind,
            name=name,
            user=identity.email,
            verb=verb,
            namespace=namespace,
        )

    # ---- reading ------------------------------------------------------------------------

    async def get(
        self, request: Request, rtype: ResourceType, namespace: str, name: str
    ) -> Response:
        identity = self.identity(request)
        self.authorize(identity, rtype, namespace, name, "get")
        cache = self.caches[rtype]
        await cache.sync()
        entry = cache.get(namespace, name)
        if entry is None or (rtype.namespaced and self.missing(namespace)):
            raise errors.not_found(rtype.plural, rtype.group, name)
        if wants_table(request.headers.get("accept", "")):
            include = request.query_params.get("includeObject", "Metadata")
            return respond(
                table(rtype, [entry.obj], resource_version=str(entry.rv), include=include)
            )
        return respond(entry.obj)

    async def list(self, request: Request, rtype: ResourceType, namespace: str | None) -> Response:
        """One namespace, or (None) every namespace the caller may read, as ``get -A``."""
        identity = self.identity(request)
        objects, rv = await self.select(request, identity, rtype, namespace)
        if wants_table(request.headers.get("accept", "")):
            include = request.query_params.get("includeObject", "Metadata")
            return respond(table(rtype, objects, resource_version=rv, include=include))
        return respond(
            {
                "apiVersion": rtype.group_version,
                "kind": f"{rtype.kind}List",
                "metadata": {"resourceVersion": rv},
                "items": objects,
            }
        )

    async def select(
        self, request: Request, identity: Identity, rtype: ResourceType, namespace: str | None
    ) -> tuple[Objects, str]:
        """The objects a list returns (selectors applied) and the list's resourceVersion."""
        matches = self.matcher(request)
        if namespace is not None:
            self.authorize(identity, rtype, namespace, None, "list")
        visible = self.control.visible(identity) if namespace is None and rtype.namespaced else None
        cache = self.caches[rtype]
        await cache.sync()
        rv = str(cache.versions.value)
        if namespace is not None and rtype.namespaced and self.missing(namespace):
            return [], rv
        objects = [
            e.obj
            for e in cache.entries(namespace)
            if (visible is None or e.row.namespace in visible) and matches(e.obj)
        ]
        return objects, rv

    def matcher(self, request: Request) -> Matcher:
        try:
            labels = label_matcher(request.query_params.get("labelSelector"))
            fields = field_matcher(request.query_params.get("fieldSelector"))
        except SelectorError as exc:
            raise errors.bad_request(str(exc)) from None

        def matches(obj: dict[str, Any]) -> bool:
            return labels(obj) and fields(obj)

        return matches

    # ---- writing ------------------------------------------------------------------------

    async def create(self, request: Request, rtype: ResourceType, namespace: str) -> Response:
        identity = self.identity(request)
        body = await read_object(request)
        metadata = body_metadata(body)
        name = metadata.get("name") or generated_name(metadata.get("generateName"))
        if not isinstance(name, str) or not name:
            raise invalid_field(rtype, "metadata.name", "name or generateName is required")
        check_scope(body, rtype, namespace)
        self.authorize(identity, rtype, namespace, name, "create")
        cache = self.caches[rtype]
        async with self._writing:
            await cache.sync()
            if cache.get(namespace, name) is not None:
                raise errors.already_exists(rtype.plural, rtype.group, name)
            return await self._store(request, identity, rtype, namespace, name, body, 201)

    async def replace(
        self, request: Request, rtype: ResourceType, namespace: str, name: str
    ) -> Response:
        identity = self.identity(request)
        body = await read_object(request)
        check_scope(body, rtype, namespace, name)
        self.authorize(identity, rtype, namespace, name, "update")
        async with self._writing:
            entry = await self._existing(rtype, namespace, name)
            given = body_metadata(body).get("resourceVersion")
            if not given:
                # Custom resources refuse unconditional updates (apiextensions-apiserver's
                # AllowUnconditionalUpdate is false): kubectl replace sends what it read.
                raise invalid_field(
                    rtype, "metadata.resourceVersion", "must be specified for an update", name
                )
            if str(given) != str(entry.rv):
                raise errors.conflict(rtype.plural, rtype.group, name)
            return await self._store(request, identity, rtype, namespace, name, body, 200)

    async def patch(
        self, request: Request, rtype: ResourceType, namespace: str, name: str
    ) -> Response:
        identity = self.identity(request)
        content_type = media_type(request)
        if content_type == APPLY:
            raise errors.unsupported_media_type(
                f"{content_type} (server-side apply is not supported; use client-side kubectl "
                "apply)",
                list(PATCH_TYPES),
            )
        if content_type not in PATCH_TYPES:
            raise errors.unsupported_media_type(content_type, list(PATCH_TYPES))
        patch = decode(await read_body(request))
        self.authorize(identity, rtype, namespace, name, "patch")
        async with self._writing:
            entry = await self._existing(rtype, namespace, name)
            try:
                patched = apply_patch(content_type, copy.deepcopy(entry.obj), patch)
            except PatchError as exc:
                raise errors.bad_request(f"the patch cannot be applied: {exc}") from None
            if not isinstance(patched, dict):
                raise errors.bad_request("the patched object is not a JSON object")
            check_scope(patched, rtype, namespace, name, immutable=True)
            given = body_metadata(patched).get("resourceVersion")
            if given is not None and str(given) != str(entry.rv):
                raise errors.conflict(rtype.plural, rtype.group, name)
            return await self._store(request, identity, rtype, namespace, name, patched, 200)

    async def delete(
        self, request: Request, rtype: ResourceType, namespace: str, name: str
    ) -> Response:
        identity = self.identity(request)
        self.authorize(identity, rtype, namespace, name, "delete")
        options = await _delete_options(request)
        async with self._writing:
            entry = await self._existing(rtype, namespace, name)
            wanted = options.get("preconditions") or {}
            if not isinstance(wanted, dict):
                raise errors.bad_request("preconditions must be a JSON object")
            if wanted.get("resourceVersion") not in (None, str(entry.rv)) or wanted.get(
                "uid"
            ) not in (None, entry.obj["metadata"]["uid"]):
                raise errors.conflict(rtype.plural, rtype.group, name)
            if not _dry_run(request):
                try:
                    await self.control.delete(identity, entry.row.kind, namespace, name)
                except ControlError as exc:
                    raise self.mapped(exc, rtype, name, identity, "delete", namespace) from None
                await self.caches[rtype].sync()
        details = {"name": name, "group": rtype.group, "kind": rtype.plural}
        details["uid"] = entry.obj["metadata"]["uid"]
        return respond(
            {
                "kind": "Status",
                "apiVersion": "v1",
                "metadata": {},
                "status": "Success",
                "details": details,
            }
        )

    async def _existing(self, rtype: ResourceType, namespace: str, name: str) -> Entry:
        cache = self.caches[rtype]
        await cache.sync()
        entry = cache.get(namespace, name)
        if entry is None:
            raise errors.not_found(rtype.plural, rtype.group, name)
        if is_builtin(entry.row):
            raise errors.method_not_allowed(
                "update", f'the built-in {rtype.kind} "{name}" (apply one of another name)'
            )
        return entry

    async def _store(
        self,
        request: Request,
        identity: Identity,
        rtype: ResourceType,
        namespace: str,
        name: str,
        body: dict[str, Any],
        status: int,
    ) -> Response:
        """Validate and apply one object through the control plane; answer with it."""
        document = for_storage(body, rtype, namespace, name)
        try:
            parsed = parse_document(document, namespace or "default")
        except SpecError as exc:
            raise errors.invalid(rtype.kind, rtype.group, name, exc.problems, str(exc)) from None
        if kind_of(parsed) != rtype.store_kind:
            raise errors.bad_request(
                f"the object is a {parsed.__class__.__name__}, not a {rtype.kind}"
            )
        dry_run = _dry_run(request)
        verb = "create" if status == 201 else "update"
        try:
            await self.control.apply(identity, [parsed], dry_run=dry_run)
        except ControlError as exc:
            raise self.mapped(exc, rtype, name, identity, verb, namespace) from None
        warnings = [f"{path}: kept, but not acted on by modelport" for path in parsed.ignored]
        cache = self.caches[rtype]
        if dry_run:
            return respond(self._preview(cache, rtype, namespace, name, document), status, warnings)
        await cache.sync()
        entry = cache.get(namespace, name)
        if entry is None:  # deleted by someone else in between
            raise errors.not_found(rtype.plural, rtype.group, name)
        return respond(entry.obj, status, warnings)

    def _preview(
        self,
        cache: ObjectCache,
        rtype: ResourceType,
        namespace: str,
        name: str,
        doc: dict[str, Any],
    ) -> dict[str, Any]:
        """What a dryRun write would have stored, rendered as it would be shown."""
        current = cache.get(namespace, name)
        created = current.row.created_at if current else time.time()
        row = Resource(
            kind=rtype.store_kind,
            namespace=namespace,
            name=name,
            document=doc,
            generation=(current.row.generation + 1) if current else 1,
            created_at=created,
        )
        obj = cache.render(row)
        obj["metadata"]["uid"] = object_uid(row.kind, namespace, name, created)
        if current is not None:
            obj["metadata"]["resourceVersion"] = str(current.rv)
        return obj


def _dry_run(request: Request) -> bool:
    values = request.query_params.getlist("dryRun")
    unknown = [v for v in values if v != "All"]
    if unknown:
        raise errors.bad_request(f"dryRun: unsupported value {unknown[0]!r}; use All")
    return bool(values)


async def _delete_options(request: Request) -> dict[str, Any]:
    """DeleteOptions from the body (kubectl sends propagationPolicy; preconditions count)."""
    data = await read_body(request)
    if not data.strip():
        return {}
    options = decode(data)
    if not isinstance(options, dict):
        raise errors.bad_request("DeleteOptions must be a JSON object")
    return options
