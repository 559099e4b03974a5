"""A TrainedModel's ``status`` as KServe's controller writes it (trained_model_status.go and
trainedmodel/controller.go updateStatus): ``url`` and ``address.url`` are the parent's with
the model's predict path (constants.PredictPath: ``/v1/models/NAME:predict``, or
``/v2/models/NAME/infer`` for a V2 parent), and the conditions ``InferenceServiceReady``,
``MemoryResourceAvailable`` and ``Ready``; plus the memory check KServe's webhook makes."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from modelport.control.spec import Problem, SpecError, parse_document
from modelport.control.spec.trained_model import TM, TrainedModel
from modelport.control.status import service_url
from modelport.control.store import Resource, Store

if TYPE_CHECKING:
    from modelport.control.controller import Controller

DEPENDENTS = ("InferenceServiceReady", "MemoryResourceAvailable")
# Reasons that mean "not yet" rather than "cannot": Unknown, as Knative's conditions start.
WAITING = ("Pending", "Fetching")


def predict_path(name: str, protocol: str) -> str:
    return f"/v2/models/{name}/infer" if protocol == "v2" else f"/v1/models/{name}:predict"


def trained_model_status(
    row: Resource, controller: Controller, domain: str, gateway_url: str
) -> dict[str, Any]:
    state = controller.trained_models.states.get((row.namespace, row.name))
    when = _timestamp(state.changed_at if state is not None else row.created_at)
    blocked = ("Ready", "Pending", "Not looked at yet.") if state is None else state.blocked
    conditions = []
    for kind in DEPENDENTS:
        if blocked is None:
            conditions.append(_condition(kind, "True", when))
        elif blocked[0] == kind:
            conditions.append(_condition(kind, "False", when, blocked[1], blocked[2]))
        else:
            conditions.append(_condition(kind, "Unknown", when))
    if blocked is None:
        conditions.append(_condition("Ready", "True", when))
    else:
        ready = "Unknown" if blocked[1] in WAITING else "False"
        conditions.append(_condition("Ready", ready, when, blocked[1], blocked[2]))
    status: dict[str, Any] = {"conditions": conditions}
    parent = str((row.document.get("spec") or {}).get("inferenceService", ""))
    if parent and controller.lookup(row.namespace, parent) is not None:
        path = predict_path(row.name, state.parent_protocol if state is not None else "v1")
        status["url"] = service_url(parent, row.namespace, domain) + path
        status["address"] = {"url": f"{gateway_url}/serving/{row.namespace}/{parent}{path}"}
    return status


def memory_change(store: Store, tm: TrainedModel) -> Problem | None:
    """trainedmodel_webhook.go validateMemorySpecNotModified: an applied TrainedModel's
    memory cannot change (KServe's InvalidTmMemoryModification)."""
    row = store.get(TM, tm.namespace, tm.name)
    if row is None:
        return None
    try:
        old = parse_document(row.document, tm.namespace)
    except SpecError:
        return None
    if not isinstance(old, TrainedModel) or old.memory == tm.memory:
        return None
    return Problem(
        "spec.model.memory",
        f'the Trained Model "{tm.name}" memory field is immutable. The memory was '
        f'"{_quantity(old)}" but it is updated to "{_quantity(tm)}"',
    )


def _quantity(tm: TrainedModel) -> str:
    model = (tm.document.get("spec") or {}).get("model") or {}
    return str(model.get("memory", tm.memory))


def _condition(
    kind: str, status: str, when: str, reason: str = "", message: str = ""
) -> dict[str, Any]:
    out = {"type": kind, "status": status, "lastTransitionTime": when}
    if reason:
        out["reason"] = reason
    if message:
        out["message"] = message
    return out


def _timestamp(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
