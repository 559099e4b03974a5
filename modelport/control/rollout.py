"""Revisions and the traffic split: which revisions a service has, which one carries its
traffic, and how each scales.

A revision is an immutable snapshot of a spec that needs its own processes; the store keeps
them across restarts of the platform. KServe's rollout rules (``ServiceState.desired_traffic``)
decide the split; a ready latest revision that takes all the traffic is promoted, so later
canaries fall back to it.
"""

from __future__ import annotations

from modelport.control.autoscaler import Autoscaler
from modelport.control.revisions import RevisionState, ServiceState
from modelport.control.scaling_policy import ScalingPolicy
from modelport.control.spec import Component, InferenceService, SpecError, parse_service
from modelport.control.store import Revision, Store

INITIAL_SCALE = "autoscaling.knative.dev/initial-scale"
INITIAL_SCALE_OLD = "autoscaling.knative.dev/initialScale"


class Rollout:
    """Keeps a service's revisions in step with the store and routes between them."""

    def __init__(self, store: Store, scale_to_zero_grace_s: float) -> None:
        self.store = store
        self.scale_to_zero_grace_s = scale_to_zero_grace_s

    def policy(self, component: Component, isvc: InferenceService) -> ScalingPolicy:
        """The autoscaling policy; cpu/memory metrics (KServe's HPA class) scale on
        concurrency here, which ``apply`` reports. Raises ValueError naming a bad field."""
        metric = component.scale_metric if component.scale_metric == "rps" else "concurrency"
        policy = ScalingPolicy.from_spec(
            metric,
            component.scale_target,
            component.container_concurrency,
            component.min_replicas,
            component.max_replicas,
            isvc.annotations,
        )
        policy.scale_to_zero_grace_s = self.scale_to_zero_grace_s
        return policy

    def load(self, svc: ServiceState) -> None:
        """Pick up revisions from the store after a restart of the platform."""
        if svc.revisions:
            return
        for row in self.store.revisions(svc.namespace, svc.name):
            if row.retired and not row.promoted:
                continue  # promoted ones stay known: canaryTrafficPercent can route back
            try:
                isvc = parse_service(row.document, svc.namespace)
            except SpecError:
                continue
            self.track(svc, row, isvc)

    def track(self, svc: ServiceState, row: Revision, isvc: InferenceService) -> RevisionState:
        """Start following a revision row."""
        try:
            policy = self.policy(isvc.predictor, isvc)
        except ValueError:
            policy = ScalingPolicy()  # the service's current spec decides; see reconcile
        rev = RevisionState(row, isvc, Autoscaler(policy))
        svc.revisions[row.number] = rev
        return rev

    def route(self, svc: ServiceState, latest: RevisionState, isvc: InferenceService) -> None:
        """Set the traffic split; promote a ready latest revision that takes it all, and
        bring back a retired revision that is routed to again (canaryTrafficPercent: 0)."""
        svc.traffic = svc.desired_traffic(latest, isvc.predictor.canary_traffic_percent)
        rolled_out = latest.row.state == "ready" and svc.traffic == [(latest.row.number, 100)]
        if rolled_out and not latest.row.promoted:
            latest.row.promoted = 1
            self.store.update_revision(latest.row.id, promoted=1)
        for number, _ in svc.traffic:
            routed = svc.revisions[number]
            if routed.row.retired:
                routed.row.retired = 0
                self.store.update_revision(routed.row.id, retired=0)


def rolled_out(svc: ServiceState) -> RevisionState | None:
    """The revision that carries all traffic when no canary runs: the newest promoted."""
    promoted = [r for r in svc.revisions.values() if r.row.state == "ready" and r.row.promoted]
    return max(promoted, key=lambda r: r.row.number, default=None)


def initial_scale(isvc: InferenceService) -> int:
    """autoscaling.knative.dev/initial-scale; 0 counts only when minReplicas is 0 too."""
    raw = isvc.annotations.get(INITIAL_SCALE) or isvc.annotations.get(INITIAL_SCALE_OLD)
    try:
        value = int(raw) if raw is not None else 1
    except ValueError:
        return 1
    return 0 if value == 0 and isvc.predictor.min_replicas == 0 else max(value, 1)
