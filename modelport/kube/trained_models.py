"""TrainedModels in the Kubernetes-style API: their OpenAPI schema (KServe's CRD,
config/crd/full/serving.kserve.io_trainedmodels.yaml) and how an object is rendered (the
control API's rendering, status included). The resource type is in resources.py."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from modelport.control.operations import ApiContext
from modelport.control.store import Resource
from modelport.control.trained_model_api import render_trained_model
from modelport.kube.schemas import META, Schema, _obj, _open, _str, ref

TRAINED_MODEL: Schema = _obj(
    "A model loaded into a running InferenceService's model server (KServe's TrainedModel).",
    {
        "apiVersion": _str("serving.kserve.io/v1alpha1"),
        "kind": _str("TrainedModel"),
        "metadata": ref(META),
        "spec": _obj(
            "The parent and the model.",
            {
                "inferenceService": _str("The parent InferenceService, in this namespace."),
                "model": _obj(
                    "The model to load.",
                    {
                        "storageUri": _str("Where the model is (s3://, gs://, http(s)://, ...)."),
                        "framework": _str("Its framework: the parent's model format."),
                        "memory": {
                            "x-kubernetes-int-or-string": True,
                            "description": "The most memory it takes (immutable).",
                        },
                    },
                    required=["storageUri", "framework", "memory"],
                ),
            },
            required=["inferenceService", "model"],
        ),
        "status": _open("url, address.url and the conditions."),
    },
)


def trained_model_renderer(ctx: ApiContext) -> Callable[[Resource], dict[str, Any]]:
    """TrainedModels with status, as /api/v1 renders them."""

    def render(row: Resource) -> dict[str, Any]:
        return render_trained_model(ctx, row)

    return render
