"""The ``serving.kserve.io/deploymentMode`` annotation of an InferenceService: KServe's three
ways of running one (constants.DeploymentModeType in kserve/kserve pkg/constants/constants.go).

modelport runs every service one way: its own processes, scaled by its own autoscaler. The
Knative-backed mode (``Serverless``, renamed ``Knative`` upstream) is what that stands for, so
it is accepted as is. ``RawDeployment`` (renamed ``Standard``) asks KServe for a Deployment
scaled by an HPA; it is accepted and reported as not acted on, since the scaling stays
modelport's. ``ModelMesh`` is refused: it hands the service to the separate ModelMesh
controller, and kserve/modelmesh-serving was archived upstream in April 2026 (its README
update kserve/modelmesh-serving#554, with the sibling modelmesh repositories marked archived
the same day)."""

from __future__ import annotations

from modelport.control.spec.fields import FieldReader
from modelport.control.spec.problems import shorten

DEPLOYMENT_MODE = "serving.kserve.io/deploymentMode"  # constants.DeploymentMode
# Upstream's names, the legacy one first (both are accepted by KServe's ParseDeploymentMode).
ACTED_ON_MODES = ("Serverless", "Knative")
NOT_ACTED_ON_MODES = ("RawDeployment", "Standard")
MODEL_MESH = "ModelMesh"


def read_deployment_mode(reader: FieldReader, annotations: dict[str, str]) -> None:
    """Refuse ModelMesh and unknown modes; report RawDeployment as not acted on."""
    mode = annotations.get(DEPLOYMENT_MODE)
    if mode is None or mode in ACTED_ON_MODES:
        return
    path = f"metadata.annotations[{DEPLOYMENT_MODE}]"
    if mode in NOT_ACTED_ON_MODES:
        # Kept, so the document round-trips; modelport's autoscaler still scales the service
        # (minReplicas/maxReplicas, scale to zero), not an HPA.
        reader.ignore(path)
        return
    if mode == MODEL_MESH:
        reader.problem(
            path,
            "ModelMesh is not supported: the ModelMesh project (kserve/modelmesh-serving) is "
            "archived upstream; remove the annotation (or set Serverless or RawDeployment) "
            "to serve the model with modelport's own replicas",
        )
        return
    # KServe falls back to its configured default for a value it does not know; a typo here
    # would go unnoticed, so it is refused with the values there are.
    known = ", ".join((*ACTED_ON_MODES, *NOT_ACTED_ON_MODES, MODEL_MESH))
    reader.problem(path, f"unknown deployment mode {shorten(mode)!r}; KServe's are {known}")
