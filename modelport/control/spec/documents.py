"""Streams of documents as ``kubectl apply -f`` reads them (YAML ``---``, JSON, ``kind: List``),
each sent to the reader of its kind; problems carry the document's place in the stream."""

from __future__ import annotations

from typing import Any

from modelport.control.spec.constants import (
    CLUSTER_RUNTIME,
    ISVC,
    ISVC_API_VERSION,
    RUNTIME,
    RUNTIME_API_VERSIONS,
)
from modelport.control.spec.fields import FieldReader
from modelport.control.spec.inference_graph import (
    IG,
    IG_API_VERSION,
    InferenceGraph,
    read_inference_graph,
)
from modelport.control.spec.inference_service import read_inference_service
from modelport.control.spec.loading import BadInput, InputBudget, load_text, plain_data
from modelport.control.spec.objects import InferenceService, ServingRuntime
from modelport.control.spec.problems import Problem, SpecError, describe_value, shorten
from modelport.control.spec.serving_runtime import read_serving_runtime
from modelport.control.spec.trained_model import (
    TM,
    TM_API_VERSION,
    TrainedModel,
    read_trained_model,
)

# Every kind a document may hold.
Parsed = InferenceService | ServingRuntime | InferenceGraph | TrainedModel


def parse_documents(text: str | bytes, default_namespace: str = "default") -> list[Parsed]:
    """Parse a YAML stream (``---``-separated) or JSON document, as ``kubectl apply -f`` reads."""
    problems: list[Problem] = []
    raw = load_text(text)
    docs: list[tuple[str, Any]] = []
    many = sum(d is not None for d in raw) > 1
    budget = InputBudget()
    index = 0
    for doc in raw:
        if doc is None:  # an empty document, as between two `---`
            continue
        prefix = f"documents[{index}]." if many else ""
        index += 1
        try:
            doc = plain_data(doc, (), 0, budget)
        except BadInput as bad:
            problems.append(Problem(_prefixed(prefix, bad.path), bad.message))
            continue
        if isinstance(doc, dict) and doc.get("kind") == "List" and "items" in doc:
            items = doc["items"]
            if not isinstance(items, list):
                problems.append(
                    Problem(prefix + "items", f"must be a list, got {describe_value(items)}")
                )
                continue
            docs.extend((f"{prefix}items[{i}].", item) for i, item in enumerate(items))
        else:
            docs.append((prefix, doc))
    objects: list[Parsed] = []
    for prefix, doc in docs:
        reader = FieldReader()
        obj = _parse(reader, doc, default_namespace)
        problems.extend(Problem(_prefixed(prefix, p.path), p.message) for p in reader.problems)
        if obj is not None and not reader.problems:
            objects.append(obj)
    if problems:
        raise SpecError(problems)
    return objects


def _prefixed(prefix: str, path: str) -> str:
    return prefix + path if path else prefix.rstrip(".")


def parse_document(doc: dict[str, Any], default_namespace: str = "default") -> Parsed:
    """Parse one document already decoded from YAML or JSON (for example, from the store)."""
    try:
        plain = plain_data(doc, (), 0, InputBudget())
    except BadInput as bad:
        raise SpecError([Problem(bad.path, bad.message)]) from None
    reader = FieldReader()
    obj = _parse(reader, plain, default_namespace)
    if reader.problems or obj is None:
        raise SpecError(reader.problems or [Problem("", "not a document")])
    return obj


def parse_service(doc: dict[str, Any], default_namespace: str = "default") -> InferenceService:
    """Parse a stored InferenceService; any other kind is a SpecError."""
    obj = parse_document(doc, default_namespace)
    if not isinstance(obj, InferenceService):
        raise SpecError([Problem("kind", f"expected {ISVC}, got a serving runtime")])
    return obj


def _parse(reader: FieldReader, doc: Any, default_namespace: str) -> Parsed | None:
    if not isinstance(doc, dict):
        reader.problem(
            "",
            "a document must be a mapping with apiVersion, kind, metadata and spec, "
            f"got {describe_value(doc)}",
        )
        return None
    kind = reader.string(doc, "kind", "", required=True)
    api_version = reader.string(doc, "apiVersion", "", required=True)
    if kind is None or api_version is None:
        return None
    if kind == ISVC:
        if api_version != ISVC_API_VERSION:
            reader.problem(
                "apiVersion",
                f"InferenceService must be {ISVC_API_VERSION}, got {shorten(api_version)!r}",
            )
            return None
        return read_inference_service(reader, doc, default_namespace)
    if kind in (RUNTIME, CLUSTER_RUNTIME):
        if api_version not in RUNTIME_API_VERSIONS:
            reader.problem(
                "apiVersion",
                f"{kind} must be {RUNTIME_API_VERSIONS[0]}, got {shorten(api_version)!r}",
            )
            return None
        return read_serving_runtime(reader, doc, default_namespace, cluster=kind == CLUSTER_RUNTIME)
    if kind == IG:
        if api_version != IG_API_VERSION:
            reader.problem(
                "apiVersion", f"{IG} must be {IG_API_VERSION}, got {shorten(api_version)!r}"
            )
            return None
        return read_inference_graph(reader, doc, default_namespace)
    if kind == TM:
        if api_version != TM_API_VERSION:
            reader.problem(
                "apiVersion", f"{TM} must be {TM_API_VERSION}, got {shorten(api_version)!r}"
            )
            return None
        return read_trained_model(reader, doc, default_namespace)
    reader.problem(
        "kind",
        f"unsupported kind {shorten(kind)!r}; "
        f"modelport accepts {ISVC}, {RUNTIME}, {CLUSTER_RUNTIME}, {IG} and {TM}",
    )
    return None
