"""API discovery as kube-apiserver serves it without aggregation (the "legacy" documents that
client-go falls back to when a response is not an ``APIGroupDiscoveryList``): ``/version``,
``/api`` (APIVersions), ``/api/v1`` and ``/apis/G/V`` (APIResourceList), ``/apis``
(APIGroupList) and ``/apis/G`` (APIGroup). kubectl builds its REST mapping (short names such
as ``isvc``, scope, verbs) from these."""

from __future__ import annotations

import hashlib
from typing import Any

from modelport.kube.resources import GROUP_VERSIONS, ResourceType, of_group_version
from modelport.version import __version__

# The Kubernetes API level served: kubectl warns only beyond one minor version of skew.
KUBE_MAJOR, KUBE_MINOR = "1", "32"


def version_info() -> dict[str, str]:
    """``/version`` (version.Info); gitVersion names modelport as a semver build tag."""
    return {
        "major": KUBE_MAJOR,
        "minor": KUBE_MINOR,
        "gitVersion": f"v{KUBE_MAJOR}.{KUBE_MINOR}.0+modelport.{__version__}",
        "gitCommit": "",
        "gitTreeState": "clean",
        "buildDate": "1970-01-01T00:00:00Z",
        "goVersion": "",
        "compiler": "",
        "platform": "modelport",
    }


def api_versions() -> dict[str, Any]:
    """``/api``: the core group's versions."""
    return {
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": ""}],
    }


def _group(name: str) -> dict[str, Any]:
    versions = [{"groupVersion": f"{name}/{v}", "version": v} for v in GROUP_VERSIONS[name]]
    return {"name": name, "versions": versions, "preferredVersion": versions[0]}


def api_group_list() -> dict[str, Any]:
    """``/apis``: every named group and its versions."""
    return {
        "kind": "APIGroupList",
        "apiVersion": "v1",
        "groups": [_group(name) for name in GROUP_VERSIONS],
    }


def api_group(name: str) -> dict[str, Any] | None:
    """``/apis/GROUP``, or None for a group not served."""
    if name not in GROUP_VERSIONS:
        return None
    return {"kind": "APIGroup", "apiVersion": "v1", **_group(name)}


def resource_list(group: str, version: str) -> dict[str, Any] | None:
    """``/apis/GROUP/VERSION`` or ``/api/v1``, or None for a version not served."""
    types = of_group_version(group, version)
    if not types:
        return None
    return {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": f"{group}/{version}" if group else version,
        "resources": [_resource(t) for t in types],
    }


def _resource(rtype: ResourceType) -> dict[str, Any]:
    out: dict[str, Any] = {
        "name": rtype.plural,
        "singularName": rtype.singular,
        "namespaced": rtype.namespaced,
        "kind": rtype.kind,
        "verbs": list(rtype.verbs),
    }
    if rtype.short_names:
        out["shortNames"] = list(rtype.short_names)
    if rtype.categories:
        out["categories"] = list(rtype.categories)
    # Clients compare it to notice that the stored form changed; ours changes with the kind.
    digest = hashlib.sha256(f"{rtype.group_version}/{rtype.kind}".encode()).digest()
    out["storageVersionHash"] = _base64(digest[:8])
    return out


def _base64(data: bytes) -> str:
    import base64

    return base64.b64encode(data).decode()
