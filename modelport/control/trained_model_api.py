"""The control API's TrainedModel routes: list, read and delete (control/kind_api.py);
TrainedModels are applied with everything else through ``/v1/apply``."""

from __future__ import annotations

from typing import Any

from starlette.routing import Route

from modelport.control.kind_api import StoredKind, kind_routes, render
from modelport.control.operations import ApiContext
from modelport.control.spec.trained_model import TM, TM_API_VERSION
from modelport.control.store import Resource
from modelport.control.trained_model_status import trained_model_status


def _parent_label(doc: dict[str, Any]) -> dict[str, str]:
    # The label KServe's controller adds (constants.ParentInferenceServiceLabel).
    parent = (doc.get("spec") or {}).get("inferenceService")
    return {"inferenceservice": parent} if isinstance(parent, str) else {}


TRAINED_MODELS = StoredKind(
    kind=TM,
    plural="trainedmodels",
    api_version=TM_API_VERSION,
    short="tm",
    on_delete="it is unloaded from its parent's replicas.",
    status=trained_model_status,
    labels=_parent_label,
)


def trained_model_routes(ctx: ApiContext) -> list[Route]:
    return kind_routes(ctx, TRAINED_MODELS)


def render_trained_model(ctx: ApiContext, row: Resource) -> dict[str, Any]:
    """The stored document with server-set metadata and its status."""
    return render(ctx, TRAINED_MODELS, row)
