"""What the spec readers return: an InferenceService with its predictor and transformer
Components, and a ServingRuntime (or ClusterServingRuntime) with its supported formats."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class Batcher:
    """Server-side batching of a component (``batcher``); None means the server's default."""

    max_batch_size: int | None = None
    max_latency_ms: float | None = None


@dataclass
class LoggerSpec:
    """Payload logging of a component (``logger``)."""

    mode: str = "all"
    url: str | None = None


@dataclass
class Component:
    """A predictor, transformer or explainer, with KServe's defaults applied."""

    model_format: str | None
    format_version: str | None
    storage_uri: str | None
    runtime: str | None
    protocol_version: str = "v1"
    args: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    min_replicas: int = 1
    max_replicas: int = 0
    scale_target: int | None = None
    scale_metric: str = "concurrency"
    container_concurrency: int = 0
    timeout_s: int | None = None
    canary_traffic_percent: int | None = None
    batcher: Batcher | None = None
    logger: LoggerSpec | None = None
    # resources.limits: bytes of memory (RLIMIT_DATA) and CPUs (affinity) per replica.
    memory_limit: int | None = None
    cpu_limit: float | None = None
    # resources.requests and nvidia.com/gpu: where a replica fits on a cluster (Ray).
    memory_request: int | None = None
    cpu_request: float | None = None
    gpu_limit: int | None = None
    # spec.predictor.nodeSelector: labels of the nodes a replica may run on (Ray).
    node_selector: dict[str, str] = field(default_factory=dict)
    # The protocolVersion as given (or as KServe's defaulting webhook sets it), None when
    # unset: runtime selection matches on it, and only a set one restricts an explicit runtime.
    requested_protocol: str | None = None
    # Where the implementation sits under the component: model, sklearn, containers[0], ...
    source: str = "model"


@dataclass
class InferenceService:
    """A parsed ``serving.kserve.io/v1beta1`` InferenceService."""

    name: str
    namespace: str
    labels: dict[str, str]
    annotations: dict[str, str]
    predictor: Component
    transformer: Component | None = None
    explainer: Component | None = None
    ignored: list[str] = field(default_factory=list)
    document: dict[str, Any] = field(default_factory=dict)

    def revision_key(self) -> str:
        """Hash of what a new revision is made for; scaling, canary and labels are left out."""
        blob = json.dumps(
            {
                "predictor": _revision_fields(self.predictor),
                "transformer": _revision_fields(self.transformer),
                # Only when there is one, so services without one keep their revision key.
                **({"explainer": _revision_fields(self.explainer)} if self.explainer else {}),
            },
            sort_keys=True,
            separators=(",", ":"),
        )
        return hashlib.sha256(blob.encode()).hexdigest()


@dataclass
class SupportedFormat:
    """One entry of a runtime's ``supportedModelFormats`` (name lower-cased)."""

    name: str
    version: str | None = None
    auto_select: bool = False
    priority: int | None = None


@dataclass
class ServingRuntime:
    """A ServingRuntime, or a ClusterServingRuntime when ``namespace`` is None."""

    name: str
    namespace: str | None
    supported_formats: list[SupportedFormat]
    protocol_versions: list[str]
    disabled: bool
    server_format: str
    args: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    document: dict[str, Any] = field(default_factory=dict)
    ignored: list[str] = field(default_factory=list)
    multi_model: bool = False  # spec.multiModel: ModelMesh runtimes, never auto-selected here
    multi_node: bool = False  # spec.workerSpec set: only for multi-node predictors
    # metadata.creationTimestamp as a Unix time, None for the built-ins; breaks ties in
    # selection (newer first) as KServe does.
    created_at: float | None = None


def _revision_fields(component: Component | None) -> dict[str, Any] | None:
    if component is None:
        return None
    return {
        "model_format": component.model_format,
        "format_version": component.format_version,
        "storage_uri": component.storage_uri,
        "runtime": component.runtime,
        "protocol_version": component.protocol_version,
        "requested_protocol": component.requested_protocol,
        "args": component.args,
        "env": component.env,
        "container_concurrency": component.container_concurrency,
        "timeout_s": component.timeout_s,
        "batcher": asdict(component.batcher) if component.batcher else None,
        "logger": asdict(component.logger) if component.logger else None,
    }
