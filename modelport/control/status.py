"""InferenceService status as KServe reports it, derived from the controller's picture.

Shape (serving.kserve.io/v1beta1 InferenceServiceStatus): ``url``, ``address.url``,
``observedGeneration``, ``conditions`` (``IngressReady``, ``PredictorReady``, ``Ready``,
``ExplainerReady`` with an explainer;
Knative's condition fields ``type``, ``status`` "True"/"False"/"Unknown", ``reason``,
``message``, ``lastTransitionTime``), ``components.predictor`` (``latestCreatedRevision``,
``latestReadyRevision``, ``latestRolledoutRevision``, ``previousRolledoutRevision``,
``traffic``), ``components.explainer`` with an explainer, and ``modelStatus``.

The semantics are KServe's serverless mode (kserve/kserve
pkg/apis/serving/v1beta1/inference_service_status.go, ``PropagateStatus``), which copies the
Knative Service's Ready condition into ``PredictorReady`` and its ``observedGeneration``
into the InferenceService; Knative's Service is Ready only when its Configuration's latest
*created* revision is ready and the Route points where it should (knative/serving
pkg/apis/serving/v1/configuration_lifecycle.go, pkg/reconciler/service/service.go). So after
a spec change ``Ready`` is Unknown until the new revision is ready, False if it failed, and
``kubectl wait --for=condition=Ready`` or ``KServeClient.wait_isvc_ready(...,
expected_generation=N)`` wait for the new revision, not the old one still serving.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from modelport.control.revisions import RevisionState, ServiceState

# The conditions Ready depends on, in KServe's order (inference_service_status.go:
# conditionSet = apis.NewLivingConditionSet(PredictorReady, IngressReady)).
# ExplainerReady joins when the service has an explainer (PropagateStatus sets it per
# component); modelport starts an explainer with each predictor replica, so it is ready
# exactly when the predictor's revision is.
DEPENDENTS = ("PredictorReady", "IngressReady", "ExplainerReady")


def service_url(name: str, namespace: str, domain: str) -> str:
    return f"http://{name}.{namespace}.{domain}"


def build_status(
    svc: ServiceState | None, name: str, namespace: str, domain: str, gateway_url: str
) -> dict[str, Any]:
    """The ``status`` of one InferenceService, as KServe would write it."""
    if svc is None or not svc.revisions:
        return _initial_status(svc)
    # Conditions change when revisions do; a stable time keeps `get --watch` quiet.
    now = _timestamp(max(r.changed_at for r in svc.revisions.values()))
    latest = max(svc.revisions.values(), key=lambda r: r.row.number)
    ready = latest_ready(svc)
    conditions = [
        _condition("IngressReady", "True" if svc.traffic else "Unknown", now),
        _predictor_condition(svc, latest, ready, now),
    ]
    has_explainer = latest.isvc.explainer is not None
    if has_explainer:
        conditions.append({**conditions[1], "type": "ExplainerReady"})
    conditions.append(_ready_condition(conditions, now))
    address = f"{gateway_url}/serving/{namespace}/{name}"
    predictor: dict[str, Any] = {
        "latestCreatedRevision": latest.name,
        "traffic": traffic_targets(svc, ready or latest),
        "url": address,
    }
    if ready is not None:
        predictor["latestReadyRevision"] = ready.name
    rolled, previous = rolled_out(svc)
    if rolled is not None:
        predictor["latestRolledoutRevision"] = rolled.name
    if previous is not None:
        predictor["previousRolledoutRevision"] = previous.name
    status: dict[str, Any] = {
        "url": service_url(name, namespace, domain),
        "address": {"url": address},
        "conditions": conditions,
        "components": {"predictor": predictor},
        "modelStatus": _model_status(svc, latest),
    }
    if has_explainer:
        status["components"]["explainer"] = _explainer_component(latest, ready, address)
    if svc.observed_generation:
        status["observedGeneration"] = svc.observed_generation
    return status


def _explainer_component(
    latest: RevisionState, ready: RevisionState | None, address: str
) -> dict[str, Any]:
    """status.components.explainer: its revisions by Knative's names (NAME-explainer-00001)
    and the address ``:explain`` reaches it at (the service's own, routed by path)."""

    def revision(rev: RevisionState) -> str:
        return f"{rev.row.service}-explainer-{rev.row.number:05d}"

    out = {"latestCreatedRevision": revision(latest), "url": address}
    if ready is not None and ready.isvc.explainer is not None:
        out["latestReadyRevision"] = revision(ready)
    return out


def is_ready(status: dict[str, Any]) -> bool:
    return any(c["type"] == "Ready" and c["status"] == "True" for c in status["conditions"])


def replicas(svc: ServiceState | None) -> int:
    if svc is None:
        return 0
    return sum(len(r.ready_units()) for r in svc.revisions.values())


def latest_ready(svc: ServiceState) -> RevisionState | None:
    """Knative's LatestReadyRevisionName: the newest revision that became ready. Retired
    ones are left out: the controller no longer routes to them, as Knative would."""
    ready = [r for r in svc.revisions.values() if r.row.state == "ready" and not r.row.retired]
    return max(ready, key=lambda r: r.row.number, default=None)


def traffic_targets(svc: ServiceState, flagged: RevisionState) -> list[dict[str, Any]]:
    """``status.traffic`` as the Knative Route KServe programs reports it.

    KServe's ksvc_reconciler.go sends ``canaryTrafficPercent`` to a ``latestRevision: true``
    target, which Knative resolves to the latest *ready* revision, and the rest to the last
    rolled-out revision under ``tag: prev``; `kubectl get isvc` reads LATEST and
    LATESTREADYREVISION from the first and PREV and PREVROLLEDOUTREVISION from the second.
    While a new revision is not ready yet the latest ready one is still the
    ``latestRevision`` target, so it is flagged here even when it is the old one.
    """
    targets = []
    for number, percent in svc.traffic:
        rev = svc.revisions.get(number)
        if rev is None:
            continue
        target: dict[str, Any] = {"revisionName": rev.name, "percent": percent}
        if rev is flagged:
            target["latestRevision"] = True
        else:
            target.update(tag="prev", latestRevision=False)
        targets.append(target)
    if targets and not any(t["latestRevision"] for t in targets):
        # canaryTrafficPercent: 0 (KServe's rollback): the latest ready revision is still a
        # target, with 0 %, so LATEST shows 0 and LATESTREADYREVISION names it.
        targets.insert(0, {"revisionName": flagged.name, "percent": 0, "latestRevision": True})
    return targets


def rolled_out(svc: ServiceState) -> tuple[RevisionState | None, RevisionState | None]:
    """(latestRolledoutRevision, previousRolledoutRevision): revisions that carried all of
    the traffic, newest first. A rollback to an earlier one (all traffic on it again) makes
    it the latest rolled out, as KServe's PropagateStatus does; KServe then also leaves
    previousRolledoutRevision naming that same revision, here it names the one before."""
    promoted = sorted((r for r in svc.revisions.values() if r.row.promoted), key=_number)
    if not promoted:
        return None, None
    latest = promoted[-1]
    if len(svc.traffic) == 1 and svc.traffic[0][1] == 100:
        sole = svc.revisions.get(svc.traffic[0][0])
        if sole is not None and sole.row.promoted:
            latest = sole
    earlier = [r for r in promoted if r.row.number < latest.row.number]
    return latest, earlier[-1] if earlier else None


def _predictor_condition(
    svc: ServiceState, latest: RevisionState, ready: RevisionState | None, now: str
) -> dict[str, Any]:
    """PredictorReady: the Knative Service's Ready, i.e. its latest created revision's
    state (ConfigurationsReady) and whether traffic has moved to it (RoutesReady)."""
    if svc.error:
        # The current spec cannot make a revision; whatever serves is an older spec's.
        return _condition("PredictorReady", "False", now, "InvalidSpec", svc.error)
    if latest.row.state == "failed":
        # configuration_lifecycle.go MarkLatestCreatedFailed: reason and message as Knative's.
        message = f'Revision "{latest.name}" failed with message: {latest.row.message}.'
        return _condition("PredictorReady", "False", now, "RevisionFailed", message)
    if latest.row.state != "ready":
        message = f'Revision "{latest.name}" is not yet ready.'
        if latest.message:
            message += f" {latest.message}"
        # An older revision serves meanwhile ("Deploying", Knative's revision reason);
        # otherwise nothing can serve yet (Knative's route: "RevisionMissing").
        reason = "Deploying" if ready is not None else "RevisionMissing"
        return _condition("PredictorReady", "Unknown", now, reason, message)
    if svc.isvc is not None:
        wanted = svc.desired_traffic(latest, svc.isvc.predictor.canary_traffic_percent)
        if svc.traffic != wanted:
            # service.go checkRoutesNotReady: MarkRouteNotYetReady.
            return _condition(
                "PredictorReady",
                "Unknown",
                now,
                "TrafficNotMigrated",
                "Traffic is not yet migrated to the latest revision.",
            )
    return _condition("PredictorReady", "True", now)


def _ready_condition(dependents: list[dict[str, Any]], now: str) -> dict[str, Any]:
    """Ready from its dependents as Knative's living condition set does: False if any is
    False, else Unknown if any is Unknown (with that one's reason and message), else True."""
    ordered = sorted(dependents, key=lambda c: DEPENDENTS.index(c["type"]))
    for status in ("False", "Unknown"):
        for c in ordered:
            if c["status"] == status:
                return {**c, "type": "Ready"}
    return _condition("Ready", "True", now)


def _initial_status(svc: ServiceState | None) -> dict[str, Any]:
    """Before the controller made a revision: Unknown, or False if the spec cannot run."""
    now = _timestamp(svc.created_at if svc is not None and svc.created_at else time.time())
    status, reason = "Unknown", "Pending"
    message = "The controller has not picked this service up yet."
    if svc is not None and svc.error:
        status, reason, message = "False", "InvalidSpec", svc.error
    cond = _condition("PredictorReady", status, now, reason, message)
    out: dict[str, Any] = {
        "conditions": [
            _condition("IngressReady", "Unknown", now, reason, message),
            cond,
            {**cond, "type": "Ready"},
        ]
    }
    if svc is not None and svc.observed_generation:
        out["observedGeneration"] = svc.observed_generation
    return out


def _model_status(svc: ServiceState, latest: RevisionState) -> dict[str, Any]:
    """KServe's ModelStatus: the routed revisions' state (active), the latest created
    revision's (target) and how far the transition got (UpdateModelRevisionStates)."""
    routed = [svc.revisions[n] for n, p in svc.traffic if p > 0 and n in svc.revisions]
    target = {"ready": "Loaded", "failed": "FailedToLoad"}.get(latest.row.state, "Pending")
    active = "Loaded" if any(r.row.state == "ready" for r in routed) else "Pending"
    if active == "Pending" and target == "FailedToLoad":
        active = "FailedToLoad"
    transition = {
        "Loaded": "UpToDate",
        "FailedToLoad": "BlockedByFailedLoad",
    }.get(target, "InProgress")
    out: dict[str, Any] = {
        "transitionStatus": "InvalidSpec" if svc.error else transition,
        "states": {"activeModelState": active, "targetModelState": target},
        "copies": {"failedCopies": 0, "totalCopies": sum(len(r.ready_units()) for r in routed)},
    }
    if svc.error:
        out["lastFailureInfo"] = {"reason": "InvalidPredictorSpec", "message": svc.error}
    elif latest.row.state == "failed":
        out["lastFailureInfo"] = {
            "reason": "ModelLoadFailed",
            "message": latest.row.message,
            "modelRevisionName": latest.name,
        }
    return out


def _number(rev: RevisionState) -> int:
    return rev.row.number


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
