"""Objects as the Kubernetes-style API shows them, and documents as it stores them.

Shown: the stored document with the metadata kube-apiserver sets (``uid``,
``resourceVersion``, ``generation``, ``creationTimestamp``) and, for InferenceServices, the
status KServe reports. Stored: what the client sent, without those server-set fields and
without ``status`` (custom resources with a status subresource ignore status on writes, API
conventions "Spec and Status"), so the same object applied through ``/api/v1`` and through
kubectl is the same document. Also the checks of a client's body against the request it
came with (kind, apiVersion, namespace, name), in kube-apiserver's words.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from typing import Any

from modelport.control.operations import Control, timestamp
from modelport.control.serving_runtimes import BUILTIN_RUNTIMES
from modelport.control.spec import Problem
from modelport.control.store import CLUSTER_RUNTIME, Resource
from modelport.kube import errors
from modelport.kube.cache import object_uid
from modelport.kube.errors import KubeError
from modelport.kube.resources import ResourceType

# ObjectMeta fields only the server sets; what a client sends in them is dropped.
SERVER_METADATA = (
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "managedFields",
    "selfLink",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "generateName",
)
# kubectl's client-side apply keeps the applied configuration here and computes its next
# three-way patch from it (k8s.io/kubectl/pkg/util/apply.go); stored like any annotation.
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"


def isvc_renderer(control: Control) -> Callable[[Resource], dict[str, Any]]:
    """InferenceServices with status, as /api/v1 renders them (without its replica count)."""

    def render(row: Resource) -> dict[str, Any]:
        doc = control.render_isvc(row)
        if control.ctx.controller.lookup(row.namespace, row.name) is None:
            # Not picked up by the controller yet: build_status dates its Pending conditions
            # "now", which would change the object (and its resourceVersion) every second.
            # They have held since the object last changed.
            since = timestamp(row.updated_at or row.created_at)
            for condition in doc["status"].get("conditions", []):
                condition["lastTransitionTime"] = since
        return doc

    return render


def document_renderer(rtype: ResourceType) -> Callable[[Resource], dict[str, Any]]:
    """ServingRuntimes and ClusterServingRuntimes: the document and server-set metadata."""

    def render(row: Resource) -> dict[str, Any]:
        doc = dict(row.document)
        metadata = dict(doc.get("metadata") or {})
        metadata.update(name=row.name, generation=row.generation)
        metadata["creationTimestamp"] = timestamp(row.created_at)
        if rtype.namespaced:
            metadata["namespace"] = row.namespace
        doc["metadata"] = metadata
        # Stored at v1alpha1 or v1beta1 (both accepted); shown at the version served.
        doc["apiVersion"] = rtype.group_version
        doc["kind"] = rtype.kind
        return doc

    return render


# The built-in runtimes exist from the start, as KServe's install ships its
# ClusterServingRuntimes: created when the platform started.
_STARTED = time.time()


def builtin_runtime_rows() -> list[Resource]:
    """The built-in ClusterServingRuntimes as read-only rows (never stored, so no id)."""
    return [
        Resource(
            kind=CLUSTER_RUNTIME,
            namespace="",
            name=rt.name,
            document=rt.document,
            generation=1,
            created_at=_STARTED,
            updated_at=_STARTED,
        )
        for rt in BUILTIN_RUNTIMES
    ]


def is_builtin(row: Resource) -> bool:
    return row.kind == CLUSTER_RUNTIME and row.id is None


def for_storage(
    body: dict[str, Any], rtype: ResourceType, namespace: str, name: str
) -> dict[str, Any]:
    """The document to store from what a client sent (already checked to be for this name)."""
    doc = {k: v for k, v in body.items() if k != "status"}
    metadata = {k: v for k, v in (body.get("metadata") or {}).items() if k not in SERVER_METADATA}
    metadata["name"] = name
    if rtype.namespaced:
        metadata["namespace"] = namespace
    else:
        metadata.pop("namespace", None)
    doc["metadata"] = metadata
    return doc


def namespace_object(name: str, owner: str, role: str, created_at: float) -> dict[str, Any]:
    """A core v1 Namespace; the owner and the caller's role ride along as annotations."""
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {
            "name": name,
            "uid": object_uid("Namespace", "", name, created_at),
            "resourceVersion": str(int(created_at * 1000)),
            "creationTimestamp": timestamp(created_at),
            # Set on every namespace since Kubernetes 1.21 (NamespaceDefaultLabelName).
            "labels": {"kubernetes.io/metadata.name": name},
            "annotations": {"modelport.io/owner": owner, "modelport.io/role": role},
        },
        "spec": {"finalizers": ["kubernetes"]},
        "status": {"phase": "Active"},
    }


def body_metadata(body: dict[str, Any]) -> dict[str, Any]:
    """A client body's ``metadata`` (400 unless a mapping)."""
    metadata = body.get("metadata")
    if metadata is None:
        return {}
    if not isinstance(metadata, dict):
        raise errors.bad_request("metadata must be a JSON object")
    return metadata


def generated_name(prefix: Any) -> str | None:
    """``generateName``: the prefix and five random characters, as the API server adds."""
    if not isinstance(prefix, str) or not prefix:
        return None
    alphabet = "bcdfghjklmnpqrstvwxz2456789"  # apimachinery's rand.String alphabet
    return prefix + "".join(secrets.choice(alphabet) for _ in range(5))


def invalid_field(rtype: ResourceType, field: str, message: str, name: str = "") -> KubeError:
    """422 Invalid naming one field."""
    return errors.invalid(rtype.kind, rtype.group, name, [Problem(field, message)], message)


def check_scope(
    body: dict[str, Any],
    rtype: ResourceType,
    namespace: str,
    name: str | None = None,
    *,
    immutable: bool = False,
) -> None:
    """The body's kind, namespace and name must be the request's (400 or 422 otherwise)."""
    metadata = body_metadata(body)
    kind = body.get("kind")
    if kind is not None and kind != rtype.kind:
        raise errors.bad_request(f"the kind in the body ({kind}) is not {rtype.kind}")
    api_version = body.get("apiVersion")
    if api_version is not None and not isinstance(api_version, str):
        raise errors.bad_request("apiVersion must be a string")
    group = api_version.split("/")[0] if api_version else None
    if group is not None and group != rtype.group:
        raise errors.bad_request(
            f"the API version in the data ({body.get('apiVersion')}) does not match the "
            f"expected API version ({rtype.group_version})"
        )
    body.setdefault("apiVersion", rtype.group_version)
    body.setdefault("kind", rtype.kind)
    given_ns = metadata.get("namespace")
    if rtype.namespaced and given_ns not in (None, "", namespace):
        raise errors.bad_request(
            "the namespace of the provided object does not match the namespace sent on the request"
        )
    given = metadata.get("name")
    if name is not None and given not in (None, "") and given != name:
        if immutable:
            raise invalid_field(rtype, "metadata.name", "field is immutable", name)
        raise errors.bad_request(
            f"the name of the object ({given}) does not match the name on the URL ({name})"
        )
