"""InferenceService status as KServe reports it, derived from the controller's picture.

Shape (serving.kserve.io/v1beta1 InferenceServiceStatus): ``url``, ``address.url``,
``conditions`` (``PredictorReady``, ``IngressReady``, ``Ready``; Knative's condition fields
``type``, ``status`` "True"/"False"/"Unknown", ``reason``, ``message``,
``lastTransitionTime``) and ``components.predictor`` with ``latestCreatedRevision``,
``latestReadyRevision``, ``latestRolledoutRevision``, ``previousRolledoutRevision`` and
``traffic``.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from modelport.control.revisions import RevisionRuntime, ServiceRuntime


def service_url(name: str, namespace: str, domain: str) -> str:
    return f"http://{name}.{namespace}.{domain}"


def build_status(
    svc: ServiceRuntime | None, name: str, namespace: str, domain: str, gateway_url: str
) -> dict[str, Any]:
    # Conditions change when revisions do; a stable time keeps `get --watch` quiet.
    changes = [r.changed_at for r in svc.revisions.values()] if svc is not None else []
    now = _timestamp(max(changes, default=svc.created_at if svc else time.time()))
    if svc is None or svc.isvc is None or not svc.revisions:
        reason, message = "Pending", "The controller has not picked this service up yet."
        if svc is not None and svc.error:
            reason, message = "InvalidSpec", svc.error
        cond = _condition("PredictorReady", "Unknown", now, reason, message)
        return {
            "conditions": [
                _condition("IngressReady", "Unknown", now, reason, message),
                cond,
                {**cond, "type": "Ready"},
            ]
        }
    revisions = sorted(svc.revisions.values(), key=lambda r: r.row.number)
    latest = revisions[-1]
    ready = [r for r in revisions if r.row.state == "ready"]
    promoted = [r for r in revisions if r.row.promoted]
    serving = [svc.revisions[n] for n, p in svc.traffic if p > 0 and n in svc.revisions]
    predictor_ok = bool(serving) and all(r.row.state == "ready" for r in serving)
    if predictor_ok:
        pred = _condition("PredictorReady", "True", now)
    elif latest.row.state == "failed":
        pred = _condition("PredictorReady", "False", now, "RevisionFailed", latest.row.message)
    else:
        pred = _condition(
            "PredictorReady",
            "Unknown",
            now,
            "RevisionMissing" if not ready else "RevisionPending",
            latest.message or f"Revision {latest.name} is starting.",
        )
    ingress = _condition("IngressReady", "True" if svc.traffic else "Unknown", now)
    overall = {**pred, "type": "Ready"}
    if predictor_ok and latest.row.state == "failed":
        # Traffic still flows to the old revision; say why the new one is not serving.
        overall = _condition("Ready", "True", now)
        pred = {**pred, "message": f"Latest revision {latest.name} failed: {latest.row.message}"}
    predictor: dict[str, Any] = {
        "latestCreatedRevision": latest.name,
        "traffic": [_traffic(svc.revisions[n], p, latest) for n, p in svc.traffic],
        "url": f"{gateway_url}/serving/{namespace}/{name}",
    }
    if ready:
        predictor["latestReadyRevision"] = ready[-1].name
    if promoted:
        predictor["latestRolledoutRevision"] = promoted[-1].name
        if len(promoted) > 1:
            predictor["previousRolledoutRevision"] = promoted[-2].name
    return {
        "url": service_url(name, namespace, domain),
        "address": {"url": f"{gateway_url}/serving/{namespace}/{name}"},
        "conditions": [ingress, pred, overall],
        "components": {"predictor": predictor},
        "modelStatus": _model_status(serving or [latest]),
        "observedGeneration": svc.generation,
    }


def is_ready(status: dict[str, Any]) -> bool:
    return any(c["type"] == "Ready" and c["status"] == "True" for c in status["conditions"])


def replicas(svc: ServiceRuntime | None) -> int:
    if svc is None:
        return 0
    return sum(len(r.ready_units()) for r in svc.revisions.values())


def _traffic(rev: RevisionRuntime, percent: int, latest: RevisionRuntime) -> dict[str, Any]:
    return {"revisionName": rev.name, "percent": percent, "latestRevision": rev is latest}


def _model_status(revisions: list[RevisionRuntime]) -> dict[str, Any]:
    rev = revisions[0]
    state = {
        "ready": "Loaded",
        "failed": "FailedToLoad",
        "pending": "Pending",
    }.get(rev.row.state, "Unknown")
    out: dict[str, Any] = {
        "states": {"activeModelState": state, "targetModelState": state},
        "copies": {"totalCopies": len(rev.units), "failedCopies": 0},
    }
    if rev.row.state == "failed":
        out["lastFailureInfo"] = {"reason": "ModelLoadFailed", "message": rev.row.message}
    return out


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
