"""InferenceService (``serving.kserve.io/v1beta1``) documents: the name, which implementation
the predictor and the transformer give, and the autoscaler class, validated as KServe's
inference_service_validation.go does."""

from __future__ import annotations

from typing import Any

from modelport.control.spec.components import (
    read_custom_container,
    read_extension_fields,
    read_model,
    read_transformer_model,
)
from modelport.control.spec.constants import (
    AUTOSCALER_CLASS,
    AUTOSCALER_CLASSES,
    COLLOCATED_TRANSFORMER,
    DNS1035_LABEL,
    EXTENSION_FIELDS,
    ISVC_PROTOCOLS,
    PREDICTOR_CONTAINER,
    SHORT_FORMS,
)
from modelport.control.spec.deployment_mode import read_deployment_mode
from modelport.control.spec.explainer import read_explainer
from modelport.control.spec.fields import FieldReader, read_metadata
from modelport.control.spec.objects import Component, InferenceService
from modelport.control.spec.problems import shorten


def read_inference_service(
    reader: FieldReader, doc: dict[str, Any], default_namespace: str
) -> InferenceService | None:
    name, namespace, labels, annotations = read_metadata(
        reader, doc, default_namespace, namespaced=True
    )
    reader.only(doc, "", ("apiVersion", "kind", "metadata", "spec"))
    spec = reader.mapping(doc.get("spec"), "spec", required=True) or {}
    if name is not None:
        _isvc_name(reader, name, transformer=spec.get("transformer") is not None)
    predictor = _predictor(reader, spec.get("predictor"), "spec.predictor")
    transformer = None
    if spec.get("transformer") is not None:
        transformer = _transformer(reader, spec["transformer"], "spec.transformer")
    explainer = None
    if spec.get("explainer") is not None:
        explainer = read_explainer(reader, spec["explainer"], "spec.explainer")
    if spec.get("canary") is not None:
        reader.problem(
            "spec.canary",
            "named canary predictors are not supported; use spec.predictor.canaryTrafficPercent",
        )
    reader.only(spec, "spec", ("predictor", "transformer", "explainer", "canary"))
    autoscaler = annotations.get(AUTOSCALER_CLASS)
    if autoscaler is not None and autoscaler not in AUTOSCALER_CLASSES:
        # inference_service_validation.go validateInferenceServiceAutoscaler
        reader.problem(
            f"metadata.annotations[{AUTOSCALER_CLASS}]",
            f"[{shorten(autoscaler)}] is not a supported autoscaler class type; "
            f"use one of {', '.join(AUTOSCALER_CLASSES)}",
        )
    read_deployment_mode(reader, annotations)
    if name is None or namespace is None or predictor is None or reader.problems:
        return None
    return InferenceService(
        name=name,
        namespace=namespace,
        labels=labels,
        annotations=annotations,
        predictor=predictor,
        transformer=transformer,
        explainer=explainer,
        ignored=list(reader.ignored),
        document=doc,
    )


def _isvc_name(reader: FieldReader, name: str, *, transformer: bool) -> None:
    if len(name) > 63 or not DNS1035_LABEL.fullmatch(name):
        # inference_service_validation.go validateInferenceServiceName (IsvcNameFmt)
        reader.problem(
            "metadata.name",
            f"{shorten(name)!r} is invalid: an InferenceService name must consist of lower case "
            "alphanumeric characters or '-', start with a letter and end with a letter or "
            "digit (e.g. 'my-name' or 'abc-123', regex [a-z]([-a-z0-9]*[a-z0-9])?)",
        )
        return
    # KServe's webhook has no length rule, but it names the component Services
    # "<name>-predictor" / "<name>-transformer" (constants.PredictorServiceName), and a
    # Service name is a DNS-1035 label of at most 63 characters: longer names are accepted
    # and then never become ready.
    suffix = "-transformer" if transformer else "-predictor"
    limit = 63 - len(suffix)
    if len(name) > limit:
        reader.problem(
            "metadata.name",
            f"must be at most {limit} characters, got {len(name)}: KServe names the "
            f"{suffix[1:]} Service '<name>{suffix}', which must fit in 63",
        )


def _predictor(reader: FieldReader, value: Any, path: str) -> Component | None:
    spec = reader.mapping(value, path, required=True)
    if spec is None:
        return None
    present = [key for key in (*SHORT_FORMS, "model") if spec.get(key) is not None]
    containers = reader.list(spec.get("containers"), f"{path}.containers")
    # PredictorSpec.GetImplementations: every container named kserve-container is a custom
    # predictor; with no framework given, the first container is.
    custom = [
        i
        for i, c in enumerate(containers)
        if isinstance(c, dict) and c.get("name") == PREDICTOR_CONTAINER
    ]
    if containers and not present and not custom:
        custom = [0]
    found = present + [f"containers[{i}]" for i in custom]
    for i, container in enumerate(containers):
        if i in custom:
            continue
        if isinstance(container, dict) and container.get("name") == COLLOCATED_TRANSFORMER:
            reader.problem(
                f"{path}.containers[{i}]",
                "a transformer collocated in the predictor's pod is not supported; "
                "give it as spec.transformer",
            )
        else:
            reader.ignore(f"{path}.containers[{i}]")
    if spec.get("storageUris") is not None:
        reader.problem(
            f"{path}.storageUris", "multiple storage URIs are not supported; give one storageUri"
        )
    extension = read_extension_fields(reader, spec, path)
    reader.only(spec, path, (*EXTENSION_FIELDS, *present, "containers", "storageUris"))
    if len(found) != 1:
        choices = f"model, {', '.join(SHORT_FORMS)} or containers"
        if found:
            reader.problem(
                path, f"exactly one of {choices} must be given, found {', '.join(found)}"
            )
        else:
            reader.problem(path, f"needs a model: give one of {choices}")
        return None
    source = found[0]
    if source.startswith("containers["):
        parts = read_custom_container(
            reader, containers[custom[0]], f"{path}.{source}", protocols=("v1", "v2")
        )
    else:
        parts = read_model(
            reader, spec[source], f"{path}.{source}", short=None if source == "model" else source
        )
    if parts is None or extension is None:
        return None
    return Component(**parts, **extension, source=source)


def _transformer(reader: FieldReader, value: Any, path: str) -> Component | None:
    spec = reader.mapping(value, path)
    if spec is None:
        return None
    containers = reader.list(spec.get("containers"), f"{path}.containers")
    model = spec.get("model")
    for i in range(1, len(containers)):
        reader.ignore(f"{path}.containers[{i}]")
    if spec.get("storageUris") is not None:
        reader.problem(
            f"{path}.storageUris", "multiple storage URIs are not supported; give one STORAGE_URI"
        )
    extension = read_extension_fields(reader, spec, path)
    reader.only(spec, path, (*EXTENSION_FIELDS, "containers", "model", "storageUris"))
    parts: dict[str, Any] | None
    if containers and model is not None:
        reader.problem(path, "give either containers or model, not both")
        return None
    if containers:
        # TransformerSpec.GetImplementations: the first container is the transformer.
        source = "containers[0]"
        parts = read_custom_container(
            reader, containers[0], f"{path}.containers[0]", protocols=ISVC_PROTOCOLS
        )
    elif model is not None:
        source = "model"  # a modelport extension: the transformer's .py Model without an image
        parts = read_transformer_model(reader, model, f"{path}.model")
    else:
        reader.problem(
            path, "needs containers (a custom transformer with a STORAGE_URI) or model.storageUri"
        )
        return None
    if parts is None or extension is None:
        return None
    return Component(**parts, **extension, source=source)
