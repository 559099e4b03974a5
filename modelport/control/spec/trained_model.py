"""TrainedModel documents (``serving.kserve.io/v1alpha1``, kind TrainedModel): one more model
loaded into a running InferenceService's model server (KServe's multi-model serving).

Fields as pkg/apis/serving/v1alpha1/trained_model.go: ``spec.inferenceService`` (the parent,
in the TrainedModel's own namespace) and ``spec.model.{storageUri, framework, memory}``, all
required (the CRD's ``required`` lists). Validation as trainedmodel_webhook.go: the name
(TmNameFmt) and the storage URI's prefix, with its messages; the memory is immutable
(checked at apply against the stored object, control/trained_models.py)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from modelport.control.spec.constants import DNS1035_LABEL
from modelport.control.spec.fields import FieldReader, read_metadata
from modelport.control.spec.problems import shorten
from modelport.control.spec.quantity import parse_quantity

TM = "TrainedModel"
TM_API_VERSION = "serving.kserve.io/v1alpha1"
# trainedmodel_webhook.go TmNameFmt and InvalidTmNameFormatError.
TM_NAME = re.compile(r"[a-zA-Z0-9_-]+")
# KServe's agent takes s3://, gs://, abfs://, https:// and http:// (storage.GetAllProtocol);
# modelport's storage reads these (not abfs://), plus pvc:// and local paths (admins only).
TM_URI_PREFIXES = ("s3://", "gs://", "https://", "http://", "pvc://", "file://")


@dataclass
class TrainedModel:
    """A parsed TrainedModel; ``memory`` in bytes."""

    name: str
    namespace: str
    labels: dict[str, str]
    annotations: dict[str, str]
    inference_service: str
    storage_uri: str
    framework: str
    memory: int
    ignored: list[str] = field(default_factory=list)
    document: dict[str, Any] = field(default_factory=dict)


def read_trained_model(
    reader: FieldReader, doc: dict[str, Any], default_namespace: str
) -> TrainedModel | None:
    name, namespace, labels, annotations = read_metadata(
        reader, doc, default_namespace, namespaced=True
    )
    reader.only(doc, "", ("apiVersion", "kind", "metadata", "spec"))
    if name is not None and not TM_NAME.fullmatch(name):
        reader.problem(
            "metadata.name",
            f'the Trained Model "{shorten(name)}" is invalid: a Trained Model name must consist '
            "of alphanumeric characters, '_', or '-'. (e.g. \"my-Name\" or \"abc_123\", regex "
            f"used for validation is '^{TM_NAME.pattern}$')",
        )
    spec = reader.mapping(doc.get("spec"), "spec", required=True) or {}
    reader.only(spec, "spec", ("inferenceService", "model"))
    parent = reader.string(spec, "inferenceService", "spec", required=True)
    if parent is not None and (len(parent) > 63 or not DNS1035_LABEL.fullmatch(parent)):
        # KServe looks the parent up by this name in the TrainedModel's namespace only.
        reader.problem(
            "spec.inferenceService",
            f"{shorten(parent)!r} is not an InferenceService name; the parent must be an "
            "InferenceService of the TrainedModel's own namespace, named without a namespace",
        )
    model = reader.mapping(spec.get("model"), "spec.model", required=True) or {}
    reader.only(model, "spec.model", ("storageUri", "framework", "memory"))
    uri = reader.string(model, "storageUri", "spec.model", required=True)
    if uri is not None and "://" in uri and not uri.lower().startswith(TM_URI_PREFIXES):
        reader.problem(
            "spec.model.storageUri",
            f'the Trained Model "{shorten(name or "")}" storageUri field is invalid. The storage '
            f"uri must start with one of the prefixes: {', '.join(TM_URI_PREFIXES)}. (the "
            f'storage uri given is "{shorten(uri)}")',
        )
    framework = reader.string(model, "framework", "spec.model", required=True)
    memory = _memory(reader, model)
    if (
        name is None
        or namespace is None
        or parent is None
        or uri is None
        or framework is None
        or memory is None
        or reader.problems
    ):
        return None
    return TrainedModel(
        name=name,
        namespace=namespace,
        labels=labels,
        annotations=annotations,
        inference_service=parent,
        storage_uri=uri,
        framework=framework.lower(),
        memory=memory,
        ignored=list(reader.ignored),
        document=doc,
    )


def _memory(reader: FieldReader, model: dict[str, Any]) -> int | None:
    if "memory" not in model:
        reader.problem("spec.model.memory", "is required")
        return None
    try:
        value = parse_quantity(model["memory"])
    except ValueError as exc:
        reader.problem("spec.model.memory", str(exc))
        return None
    if value < 0:
        reader.problem("spec.model.memory", "must not be negative")
        return None
    return int(value)
