"""Server-side printing: the ``meta.k8s.io/v1`` ``Table`` kube-apiserver answers when a
client asks for ``Accept: application/json;as=Table;v=v1;g=meta.k8s.io`` (what ``kubectl
get`` sends). For custom resources the columns are ``Name`` plus the CRD's
``additionalPrinterColumns``; these are KServe's (config/crd), so ``kubectl get isvc`` prints
the header it prints on KServe: NAME URL READY PREV LATEST PREVROLLEDOUTREVISION
LATESTREADYREVISION AGE. ``date`` columns are printed as kubectl's ages (apimachinery's
duration.HumanDuration); the ``includeObject`` parameter picks what each row carries.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from modelport.kube.resources import (
    CLUSTER_SERVING_RUNTIMES,
    EVENTS,
    INFERENCE_GRAPHS,
    INFERENCE_SERVICES,
    NAMESPACES,
    SERVING_RUNTIMES,
    TRAINED_MODELS,
    ResourceType,
)

Cell = Callable[[dict[str, Any]], Any]
Column = tuple[str, str, str, Cell]  # name, type, description, cell


def _path(obj: dict[str, Any], *keys: str) -> Any:
    node: Any = obj
    for key in keys:
        if not isinstance(node, dict):
            return None
        node = node.get(key)
    return node


def _ready(obj: dict[str, Any]) -> Any:
    conditions = _path(obj, "status", "conditions") or []
    return next((c.get("status") for c in conditions if c.get("type") == "Ready"), None)


def _traffic(obj: dict[str, Any], field: str, *, latest: bool) -> Any:
    # KServe's columns: traffic[?(@.latestRevision==true)] and traffic[?(@.tag=='prev')].
    traffic = _path(obj, "status", "components", "predictor", "traffic") or []
    for entry in traffic:
        if not isinstance(entry, dict):
            continue
        if latest and entry.get("latestRevision") is True:
            return entry.get(field)
        if not latest and entry.get("tag") == "prev":
            return entry.get(field)
    return None


def _names(items: Any) -> Any:
    names = [i.get("name") for i in items or [] if isinstance(i, dict) and i.get("name")]
    return ",".join(str(n) for n in names) or None


def _created(obj: dict[str, Any]) -> Any:
    return _path(obj, "metadata", "creationTimestamp")


NAME: Column = ("Name", "string", "Name of the object", lambda o: _path(o, "metadata", "name"))
AGE: Column = ("Age", "date", "Time since the object was created", _created)
RUNTIME_COLUMNS: list[Column] = [
    NAME,
    ("Disabled", "boolean", "spec.disabled", lambda o: _path(o, "spec", "disabled")),
    (
        "ModelType",
        "string",
        "Formats served",
        lambda o: _names(_path(o, "spec", "supportedModelFormats")),
    ),
    ("Containers", "string", "Containers", lambda o: _names(_path(o, "spec", "containers"))),
    AGE,
]
COLUMNS: dict[ResourceType, list[Column]] = {
    INFERENCE_SERVICES: [
        NAME,
        ("URL", "string", "status.url", lambda o: _path(o, "status", "url")),
        ("Ready", "string", "The Ready condition's status", _ready),
        (
            "Prev",
            "integer",
            "Traffic percent of the previous revision",
            lambda o: _traffic(o, "percent", latest=False),
        ),
        (
            "Latest",
            "integer",
            "Traffic percent of the latest revision",
            lambda o: _traffic(o, "percent", latest=True),
        ),
        (
            "PrevRolledoutRevision",
            "string",
            "The previous rolled-out revision",
            lambda o: _traffic(o, "revisionName", latest=False),
        ),
        (
            "LatestReadyRevision",
            "string",
            "The latest revision",
            lambda o: _traffic(o, "revisionName", latest=True),
        ),
        AGE,
    ],
    SERVING_RUNTIMES: RUNTIME_COLUMNS,
    CLUSTER_SERVING_RUNTIMES: RUNTIME_COLUMNS,
    # KServe's printer columns for InferenceGraph: URL, Ready, Age.
    INFERENCE_GRAPHS: [
        NAME,
        ("URL", "string", "status.url", lambda o: _path(o, "status", "url")),
        ("Ready", "string", "The Ready condition's status", _ready),
        AGE,
    ],
    # KServe's printer columns for TrainedModel: URL, Ready, Age.
    TRAINED_MODELS: [
        NAME,
        ("URL", "string", "status.url", lambda o: _path(o, "status", "url")),
        ("Ready", "string", "The Ready condition's status", _ready),
        AGE,
    ],
    NAMESPACES: [
        NAME,
        ("Status", "string", "Phase", lambda o: _path(o, "status", "phase")),
        AGE,
    ],
    EVENTS: [
        ("Last Seen", "string", "", lambda o: None),
        ("Type", "string", "", lambda o: o.get("type")),
        ("Reason", "string", "", lambda o: o.get("reason")),
        ("Object", "string", "", lambda o: None),
        ("Message", "string", "", lambda o: o.get("message")),
    ],
}


def wants_table(accept: str) -> bool:
    """Whether the Accept header asks for meta.k8s.io Tables (kubectl get's first choice)."""
    for media in accept.split(","):
        params = {p.strip() for p in media.split(";")[1:]}
        if "as=Table" in params and "g=meta.k8s.io" in params:
            return True
    return False


def table(
    rtype: ResourceType,
    objects: list[dict[str, Any]],
    *,
    resource_version: str,
    include: str = "Metadata",
    now: float | None = None,
) -> dict[str, Any]:
    """A Table of the objects; ``include`` is the includeObject parameter."""
    columns = COLUMNS[rtype]
    when = time.time() if now is None else now
    rows = []
    for obj in objects:
        row: dict[str, Any] = {"cells": [_cell(col, obj, when) for col in columns]}
        if include == "Object":
            row["object"] = obj
        elif include != "None":
            row["object"] = {
                "kind": "PartialObjectMetadata",
                "apiVersion": "meta.k8s.io/v1",
                "metadata": obj.get("metadata") or {},
            }
        rows.append(row)
    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": {"resourceVersion": resource_version},
        "columnDefinitions": [
            {
                "name": name,
                "type": kind,
                "format": "name" if name == "Name" else "",
                "description": description,
                "priority": 0,
            }
            for name, kind, description, _ in columns
        ],
        "rows": rows,
    }


def _cell(column: Column, obj: dict[str, Any], now: float) -> Any:
    value = column[3](obj)
    if column[1] == "date" and isinstance(value, str):
        try:
            created = datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
        except ValueError:
            return "<invalid>"
        return human_duration(now - created)
    return value


def human_duration(seconds: float) -> str:
    """kubectl's AGE: ``45s``, ``3m20s``, ``12m``, ``5h10m``, ``2d3h``, ``400d``, ``2y30d``."""
    s = int(seconds)
    if s < -1:
        return "<invalid>"
    if s < 0:
        return "0s"
    if s < 120:
        return f"{s}s"
    minutes = s // 60
    if minutes < 10:
        return f"{minutes}m{s % 60}s" if s % 60 else f"{minutes}m"
    if minutes < 180:
        return f"{minutes}m"
    hours = s // 3600
    if hours < 8:
        return f"{hours}h{minutes % 60}m" if minutes % 60 else f"{hours}h"
    if hours < 48:
        return f"{hours}h"
    days = hours // 24
    if hours < 24 * 8:
        return f"{days}d{hours % 24}h" if hours % 24 else f"{days}d"
    if days < 365 * 2:
        return f"{days}d"
    if days < 365 * 8:
        return f"{days // 365}y{days % 365}d" if days % 365 else f"{days // 365}y"
    return f"{days // 365}y"
