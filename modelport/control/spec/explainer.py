"""An InferenceService's ``spec.explainer`` (KServe's ExplainerSpec, pkg/apis/serving/v1beta1/
explainer.go): a custom explainer, i.e. a container whose STORAGE_URI names a ``.py`` Model
defining ``explain()``, or (a modelport extension, as for transformers) ``model.storageUri``.
The explainer's replicas run beside the predictor's and call it as KServe's explainer does."""

from __future__ import annotations

from typing import Any

from modelport.control.spec.components import (
    read_custom_container,
    read_extension_fields,
    read_transformer_model,
)
from modelport.control.spec.constants import EXTENSION_FIELDS
from modelport.control.spec.fields import FieldReader
from modelport.control.spec.objects import Component

# component.go ExactlyOneErrorFor(ExplainerSpec): the struct's fields but the last one.
EXACTLY_ONE = (
    "exactly one of [ART, PodSpec, ComponentExtensionSpec] must be specified in ExplainerSpec"
)
CUSTOM_HINT = (
    "give a custom explainer instead: containers with a STORAGE_URI environment variable "
    "naming a .py Model that defines explain()"
)
# KServe v0.13.0 removed the Alibi explainer: kserve#3443 ("Remove Seldon Alibi
# dependencies") dropped ExplainerSpec.Alibi and its image; only a sample remains in docs/.
ALIBI_REMOVED = (
    "the Alibi explainer was removed from KServe in v0.13.0 (kserve/kserve#3443) and is not "
    "supported; " + CUSTOM_HINT
)
# ExplainerSpec.ART still exists upstream (explainer_art.go), but it only runs KServe's ART
# image (an adversarial SquareAttack server), and modelport does not run container images.
ART_UNSUPPORTED = (
    "KServe's ART explainer runs KServe's own artserver image, which modelport does not run; "
    + CUSTOM_HINT
)


def read_explainer(reader: FieldReader, value: Any, path: str) -> Component | None:
    spec = reader.mapping(value, path)
    if spec is None:
        return None
    if spec.get("alibi") is not None:
        reader.problem(f"{path}.alibi", ALIBI_REMOVED)
    if spec.get("art") is not None:
        reader.problem(f"{path}.art", ART_UNSUPPORTED)
    containers = reader.list(spec.get("containers"), f"{path}.containers")
    model = spec.get("model")
    for i in range(1, len(containers)):
        reader.ignore(f"{path}.containers[{i}]")
    if spec.get("storageUris") is not None:
        reader.problem(
            f"{path}.storageUris", "multiple storage URIs are not supported; give one STORAGE_URI"
        )
    extension = read_extension_fields(reader, spec, path)
    acted = (*EXTENSION_FIELDS, "containers", "model", "storageUris", "alibi", "art")
    reader.only(spec, path, acted)
    if spec.get("alibi") is not None or spec.get("art") is not None:
        return None
    parts: dict[str, Any] | None
    if containers and model is not None:
        reader.problem(path, EXACTLY_ONE + ": give either containers or model, not both")
        return None
    if containers:
        # CustomExplainer: the first container is the explainer (GetContainer).
        source = "containers[0]"
        parts = read_custom_container(
            reader, containers[0], f"{path}.containers[0]", protocols=("v1", "v2")
        )
    elif model is not None:
        source = "model"
        parts = read_transformer_model(reader, model, f"{path}.model")
    else:
        reader.problem(path, EXACTLY_ONE + ": " + CUSTOM_HINT + " (or model.storageUri)")
        return None
    if parts is None or extension is None:
        return None
    return Component(**parts, **extension, source=source)
