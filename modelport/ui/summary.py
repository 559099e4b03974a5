"""What the pages show of an InferenceService, read from the API's document (the shape
KServe's ``kubectl get isvc -o yaml`` has), the way KServe's Models Web App reads it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from modelport.control.spec.constants import SHORT_FORMS

Doc = dict[str, Any]


@dataclass(frozen=True)
class Readiness:
    status: str  # "True", "False" or "Unknown"
    reason: str


@dataclass(frozen=True)
class Row:
    """One service in a list."""

    namespace: str
    name: str
    ready: Readiness
    created: str
    age: str
    model_format: str
    runtime: str
    protocol: str
    storage_uri: str
    url: str


def _dict(value: Any) -> Doc:
    return value if isinstance(value, dict) else {}


def readiness(doc: Doc) -> Readiness:
    for condition in _dict(doc.get("status")).get("conditions") or []:
        if _dict(condition).get("type") == "Ready":
            status = str(condition.get("status", "Unknown"))
            reason = str(condition.get("message") or condition.get("reason") or "")
            return Readiness(status, reason)
    return Readiness("Unknown", "The platform has not reported on this service yet.")


def model_spec(component: Doc) -> tuple[str, Doc]:
    """(format, the dict holding storageUri etc.) of a predictor, new style or short form."""
    model = _dict(component.get("model"))
    if model:
        return str(_dict(model.get("modelFormat")).get("name", "")), model
    for form in SHORT_FORMS:
        if isinstance(component.get(form), dict):
            return form, component[form]
    return "", {}


def predictor(doc: Doc) -> Doc:
    return _dict(_dict(doc.get("spec")).get("predictor"))


def age(created: str, now: datetime | None = None) -> str:
    try:
        then = datetime.strptime(created, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    except ValueError:
        return ""
    seconds = max(0.0, ((now or datetime.now(UTC)) - then).total_seconds())
    for limit, unit, size in ((120, "s", 1), (7200, "m", 60), (172800, "h", 3600)):
        if seconds < limit:
            return f"{round(seconds / size)}{unit}"
    return f"{round(seconds / 86400)}d"


def row(doc: Doc, runtimes: dict[str, str]) -> Row:
    """A list row; ``runtimes`` maps a model format to the runtime chosen for it."""
    meta = _dict(doc.get("metadata"))
    model_format, model = model_spec(predictor(doc))
    created = str(meta.get("creationTimestamp", ""))
    return Row(
        namespace=str(meta.get("namespace", "")),
        name=str(meta.get("name", "")),
        ready=readiness(doc),
        created=created,
        age=age(created),
        model_format=model_format or "custom",
        runtime=str(model.get("runtime") or runtimes.get(model_format, "")),
        protocol=str(model.get("protocolVersion") or "v1"),
        storage_uri=str(model.get("storageUri", "")),
        url=str(_dict(doc.get("status")).get("url", "")),
    )


def runtime_choice(runtimes: list[Doc]) -> dict[str, str]:
    """Model format -> the first auto-selectable runtime that serves it (KServe picks a
    runtime for a predictor that names none among those with autoSelect)."""
    chosen: dict[str, str] = {}
    for runtime in runtimes:
        spec = _dict(runtime.get("spec"))
        if spec.get("disabled"):
            continue
        for fmt in spec.get("supportedModelFormats") or []:
            fmt = _dict(fmt)
            if fmt.get("autoSelect") and "name" in fmt:
                chosen.setdefault(str(fmt["name"]), str(_dict(runtime.get("metadata")).get("name")))
    return chosen


def model_formats(runtimes: list[Doc]) -> list[str]:
    """Every model format some enabled runtime serves, for the create form."""
    found: set[str] = set()
    for runtime in runtimes:
        spec = _dict(runtime.get("spec"))
        if not spec.get("disabled"):
            found.update(str(_dict(f).get("name")) for f in spec.get("supportedModelFormats") or [])
    found.discard("None")
    return sorted(found)


@dataclass(frozen=True)
class Details:
    """The details tab: scaling, concurrency, canary and the optional parts."""

    min_replicas: str
    max_replicas: str
    concurrency: str
    timeout: str
    canary: str
    logger: str
    batcher: str
    transformer: str
    traffic: list[tuple[str, str, bool]]  # revision, percent, latest
    replicas: str


def details(doc: Doc) -> Details:
    spec = predictor(doc)
    status = _dict(doc.get("status"))
    traffic = _dict(_dict(status.get("components")).get("predictor")).get("traffic") or []
    logger = _dict(spec.get("logger"))
    batcher = _dict(spec.get("batcher"))
    transformer = _dict(_dict(doc.get("spec")).get("transformer"))
    return Details(
        min_replicas=str(spec.get("minReplicas", 1)),
        max_replicas=str(spec.get("maxReplicas", "no limit")),
        concurrency=str(spec.get("containerConcurrency") or "no limit"),
        timeout=f"{spec['timeout']} s" if "timeout" in spec else "60 s (default)",
        canary=f"{spec['canaryTrafficPercent']} %" if "canaryTrafficPercent" in spec else "none",
        logger=f"{logger.get('mode', 'all')} → {logger.get('url', '')}" if logger else "off",
        batcher=(
            f"max {batcher.get('maxBatchSize', 32)}, {batcher.get('maxLatency', 500)} ms"
            if batcher
            else "off"
        ),
        transformer=model_spec(transformer)[0] or ("custom" if transformer else "none"),
        traffic=[
            (
                str(t.get("revisionName", "")),
                str(t.get("percent", 0)),
                bool(t.get("latestRevision")),
            )
            for t in (_dict(x) for x in traffic)
        ],
        replicas=str(status.get("replicas", 0)),
    )


@dataclass(frozen=True)
class Condition:
    type: str
    status: str
    since: str
    reason: str


def conditions(doc: Doc) -> list[Condition]:
    found = (_dict(c) for c in _dict(doc.get("status")).get("conditions") or [])
    return [
        Condition(
            str(c.get("type", "")),
            str(c.get("status", "Unknown")),
            str(c.get("lastTransitionTime", "")),
            str(c.get("message") or c.get("reason") or ""),
        )
        for c in found
    ]
