"""The one table of resource types the Kubernetes-style API serves, as their CRDs (KServe's
config/crd) and core v1 name them: group, version, plural, kind, scope, verbs, short names.
Discovery, routing, OpenAPI and tables all read this table."""

from __future__ import annotations

from dataclasses import dataclass

from modelport.control.spec.inference_graph import IG
from modelport.control.spec.trained_model import TM
from modelport.control.store import CLUSTER_RUNTIME, ISVC, RUNTIME

KSERVE_GROUP = "serving.kserve.io"
ALL_VERBS = ("create", "delete", "get", "list", "patch", "update", "watch")


@dataclass(frozen=True)
class ResourceType:
    """One resource of the API (an APIResource in discovery)."""

    group: str  # "" for the core group
    version: str
    plural: str
    singular: str
    kind: str
    namespaced: bool
    verbs: tuple[str, ...]
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    # The control store's kind holding these objects; None for namespaces and events.
    store_kind: str | None = None

    @property
    def group_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def qualified(self) -> str:
        return f"{self.plural}.{self.group}" if self.group else self.plural


INFERENCE_SERVICES = ResourceType(
    KSERVE_GROUP,
    "v1beta1",
    "inferenceservices",
    "inferenceservice",
    "InferenceService",
    namespaced=True,
    verbs=ALL_VERBS,
    short_names=("isvc",),
    categories=("kserve",),
    store_kind=ISVC,
)
# KServe serves its runtimes at v1alpha1 (config/crd/full/serving.kserve.io_servingruntimes.yaml);
# a manifest that applies there applies here.
SERVING_RUNTIMES = ResourceType(
    KSERVE_GROUP,
    "v1alpha1",
    "servingruntimes",
    "servingruntime",
    "ServingRuntime",
    namespaced=True,
    verbs=ALL_VERBS,
    categories=("kserve",),
    store_kind=RUNTIME,
)
CLUSTER_SERVING_RUNTIMES = ResourceType(
    KSERVE_GROUP,
    "v1alpha1",
    "clusterservingruntimes",
    "clusterservingruntime",
    "ClusterServingRuntime",
    namespaced=False,
    verbs=ALL_VERBS,
    categories=("kserve",),
    store_kind=CLUSTER_RUNTIME,
)
# KServe's CRD: config/crd/full/serving.kserve.io_inferencegraphs.yaml (shortName ig).
INFERENCE_GRAPHS = ResourceType(
    KSERVE_GROUP,
    "v1alpha1",
    "inferencegraphs",
    "inferencegraph",
    "InferenceGraph",
    namespaced=True,
    verbs=ALL_VERBS,
    short_names=("ig",),
    categories=("kserve",),
    store_kind=IG,
)
# KServe's CRD: config/crd/full/serving.kserve.io_trainedmodels.yaml (shortName tm).
TRAINED_MODELS = ResourceType(
    KSERVE_GROUP,
    "v1alpha1",
    "trainedmodels",
    "trainedmodel",
    "TrainedModel",
    namespaced=True,
    verbs=ALL_VERBS,
    short_names=("tm",),
    categories=("kserve",),
    store_kind=TM,
)
NAMESPACES = ResourceType(
    "",
    "v1",
    "namespaces",
    "namespace",
    "Namespace",
    namespaced=False,
    # patch is accepted (kubectl apply patches a namespace it applied before) and changes
    # nothing: the platform keeps no labels or annotations on namespaces.
    verbs=("create", "get", "list", "patch"),
    short_names=("ns",),
)
# Always empty: `kubectl describe` lists an object's events and shows none.
EVENTS = ResourceType(
    "", "v1", "events", "event", "Event", namespaced=True, verbs=("list",), short_names=("ev",)
)

RESOURCE_TYPES = (
    INFERENCE_SERVICES,
    SERVING_RUNTIMES,
    CLUSTER_SERVING_RUNTIMES,
    INFERENCE_GRAPHS,
    TRAINED_MODELS,
    NAMESPACES,
    EVENTS,
)
STORED = tuple(t for t in RESOURCE_TYPES if t.store_kind is not None)

# group -> versions, the preferred (first listed) first, as APIGroup.versions orders them.
GROUP_VERSIONS: dict[str, tuple[str, ...]] = {KSERVE_GROUP: ("v1beta1", "v1alpha1")}


def lookup(group: str, version: str, plural: str) -> ResourceType | None:
    """The resource type served at /apis/GROUP/VERSION/PLURAL (or /api/v1/PLURAL)."""
    for rtype in RESOURCE_TYPES:
        if (rtype.group, rtype.version, rtype.plural) == (group, version, plural):
            return rtype
    return None


def of_group_version(group: str, version: str) -> list[ResourceType]:
    """The resource types of one group/version, in table order."""
    return [t for t in RESOURCE_TYPES if t.group == group and t.version == version]
