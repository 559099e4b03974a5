"""What a predictor or transformer runs and how: its model (``model`` or a framework short
form), a custom container or a transformer's ``model``, its protocol, and the extension fields
(ComponentExtensionSpec: replicas, scaling, timeout, canary, logger, batcher) with KServe's
defaults."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from modelport.control.spec.constants import (
    INT32,
    INT64,
    ISVC_PROTOCOLS,
    LOGGER_MODES,
    SCALE_METRICS,
    SERVABLE_FORMATS,
    SERVED,
    V2_FORMATS,
    V2_SHORT_FORMS,
)
from modelport.control.spec.fields import FieldReader, valid_runtime_name
from modelport.control.spec.objects import Batcher, LoggerSpec
from modelport.control.spec.problems import describe_value, shorten
from modelport.control.spec.quantity import parse_quantity


def read_model(
    reader: FieldReader, value: Any, path: str, *, short: str | None
) -> dict[str, Any] | None:
    """``predictor.model`` or a framework short form (``predictor.sklearn``, ...)."""
    spec = reader.mapping(value, path)
    if spec is None:
        return None
    acted = ["storageUri", "protocolVersion", "args", "env", "name", "resources"]
    fmt: str | None = short
    version: str | None = None
    runtime: str | None = None
    if short is None:
        acted += ["modelFormat", "runtime"]
        model_format = reader.mapping(spec.get("modelFormat"), f"{path}.modelFormat", required=True)
        if model_format is not None:
            name = reader.string(model_format, "name", f"{path}.modelFormat", required=True)
            version = reader.string(model_format, "version", f"{path}.modelFormat")
            reader.only(model_format, f"{path}.modelFormat", ("name", "version"))
            # KServe compares format names exactly; modelport lower-cases both sides.
            fmt = name.lower() if name else None
            if name and fmt not in SERVABLE_FORMATS:
                reader.problem(
                    f"{path}.modelFormat.name",
                    f"modelport cannot serve {shorten(name)} models; it serves {SERVED}",
                )
        runtime = reader.string(spec, "runtime", path)
        if runtime is not None and not valid_runtime_name(runtime):
            reader.problem(f"{path}.runtime", f"{shorten(runtime)!r} is not a valid runtime name")
    elif short not in SERVABLE_FORMATS:
        reader.problem(path, f"modelport cannot serve {short} models; it serves {SERVED}")
    if spec.get("name"):
        # inference_service_validation.go validatePredictor
        reader.problem(f"{path}.name", "the 'name' field is not allowed in standard predictor")
    storage_uri = reader.string(spec, "storageUri", path, required=True)
    requested = _protocol(reader, spec, path)
    if requested is None and (short in V2_SHORT_FORMS or (short is None and fmt in V2_FORMATS)):
        requested = "v2"  # inference_service_defaults.go assign*Runtime / setPredictorModelDefaults
    confidential = spec.get("confidential")
    if isinstance(confidential, dict) and confidential.get("enabled") is True:
        reader.problem(f"{path}.confidential", "encrypted (confidential) models are not supported")
    args = reader.strings(spec.get("args"), f"{path}.args")
    if "args" in spec:
        reader.ignore(f"{path}.args")  # flags for the runtime image's own server
    env = reader.env(spec.get("env"), f"{path}.env")
    reader.only(spec, path, acted)
    return {
        **_resources(reader, spec, path),
        "model_format": fmt,
        "format_version": version,
        "storage_uri": storage_uri,
        "runtime": runtime,
        "protocol_version": _normal_protocol(requested),
        "requested_protocol": requested,
        "args": args,
        "env": env,
    }


def _protocol(reader: FieldReader, spec: dict[str, Any], path: str) -> str | None:
    value = reader.string(spec, "protocolVersion", path)
    if value is None:
        return None
    if value not in ISVC_PROTOCOLS:
        note = " (grpc-v1 is not served by modelport)" if value == "grpc-v1" else ""
        reader.problem(
            f"{path}.protocolVersion",
            f"must be one of {', '.join(ISVC_PROTOCOLS)}, got {shorten(value)!r}{note}",
        )
        return None
    return value


def _normal_protocol(protocol: str | None) -> str:
    return "v2" if protocol in ("v2", "grpc-v2") else "v1"


def read_custom_container(
    reader: FieldReader, value: Any, path: str, *, protocols: Sequence[str]
) -> dict[str, Any] | None:
    """A custom container: modelport runs the .py Model its STORAGE_URI points at instead."""
    container = reader.mapping(value, path)
    if container is None:
        return None
    env = reader.env(container.get("env"), f"{path}.env")
    args = reader.strings(container.get("args"), f"{path}.args")
    # image, command, args, ports, ... are not run
    reader.only(container, path, ("name", "env", "resources"))
    storage_uri = env.get("STORAGE_URI") or None  # CustomPredictor.GetStorageUri
    if storage_uri is None:
        reader.problem(
            f"{path}.env",
            "modelport cannot run container images: set the STORAGE_URI environment variable "
            "to a .py file (or a directory with one) defining a modelport Model",
        )
    requested = env.get("PROTOCOL")  # constants.CustomSpecProtocolEnvVarKey
    if requested is not None and requested not in protocols:
        # predictor_custom.go validateCustomProtocol
        reader.problem(
            f"{path}.env",
            f"PROTOCOL must be one of {', '.join(protocols)}, got {shorten(requested)!r}",
        )
        requested = None
    return {
        **_custom_fields(storage_uri, requested, args, env),
        **_resources(reader, container, path),
    }


def read_transformer_model(reader: FieldReader, value: Any, path: str) -> dict[str, Any] | None:
    spec = reader.mapping(value, path)
    if spec is None:
        return None
    model_format = reader.mapping(spec.get("modelFormat"), f"{path}.modelFormat")
    if model_format is not None:
        name = reader.string(model_format, "name", f"{path}.modelFormat")
        if name is not None and name.lower() != "custom":
            reader.problem(
                f"{path}.modelFormat.name",
                f"a transformer is a custom model, got {shorten(name)!r}",
            )
        reader.only(model_format, f"{path}.modelFormat", ("name",))
    storage_uri = reader.string(spec, "storageUri", path, required=True)
    requested = _protocol(reader, spec, path)
    args = reader.strings(spec.get("args"), f"{path}.args")
    if "args" in spec:
        reader.ignore(f"{path}.args")
    env = reader.env(spec.get("env"), f"{path}.env")
    acted = ("modelFormat", "storageUri", "protocolVersion", "args", "env", "resources")
    reader.only(spec, path, acted)
    return {**_custom_fields(storage_uri, requested, args, env), **_resources(reader, spec, path)}


def _custom_fields(
    storage_uri: str | None, requested: str | None, args: list[str], env: dict[str, str]
) -> dict[str, Any]:
    """The component fields of a custom (.py) model, for predictors and transformers."""
    return {
        "model_format": "custom",
        "format_version": None,
        "storage_uri": storage_uri,
        "runtime": None,
        "protocol_version": _normal_protocol(requested),
        "requested_protocol": requested,
        "args": args,
        "env": env,
    }


def _resources(reader: FieldReader, spec: dict[str, Any], path: str) -> dict[str, Any]:
    """``resources``: ``limits.memory`` and ``.cpu`` hold each replica (see
    control/backends/confine.py); ``requests`` and ``nvidia.com/gpu`` place replicas on a
    cluster (the Ray backend); other keys are kept and reported as not acted on."""
    path = f"{path}.resources"
    resources = reader.mapping(spec.get("resources"), path)
    if resources is None:
        return {}
    reader.only(resources, path, ("limits", "requests"))
    found: dict[str, Any] = {}
    for part, names in (
        ("limits", {"memory": "memory_limit", "cpu": "cpu_limit", GPU: "gpu_limit"}),
        ("requests", {"memory": "memory_request", "cpu": "cpu_request", GPU: "gpu_limit"}),
    ):
        quantities = reader.mapping(resources.get(part), f"{path}.{part}")
        if quantities is None:
            continue
        reader.only(quantities, f"{path}.{part}", names)
        for key, name in names.items():
            if key in quantities and name not in found:
                value = _quantity(reader, quantities[key], f"{path}.{part}.{key}")
                if value is not None:
                    found[name] = float(value) if key == "cpu" else int(value)
    return found


# Kubernetes' extended resource for NVIDIA GPUs: a whole number (requests equal limits).
GPU = "nvidia.com/gpu"


def _quantity(reader: FieldReader, raw: Any, path: str) -> Decimal | None:
    try:
        value = parse_quantity(raw)
    except ValueError as exc:
        reader.problem(path, str(exc))
        return None
    if value <= 0:
        reader.problem(path, "must be more than 0")
        return None
    return value


def read_extension_fields(
    reader: FieldReader, spec: dict[str, Any], path: str
) -> dict[str, Any] | None:
    """ComponentExtensionSpec (component.go), with KServe's defaults."""
    before = len(reader.problems)
    min_replicas = reader.integer(spec, "minReplicas", path, minimum=0, maximum=INT32)
    max_replicas = reader.integer(spec, "maxReplicas", path, minimum=0, maximum=INT32)
    # validateReplicas: minReplicas defaults to 1; maxReplicas 0 means no upper bound.
    lowest = 1 if min_replicas is None else min_replicas
    if max_replicas and lowest > max_replicas:
        reader.problem(
            f"{path}.maxReplicas",
            f"must be at least minReplicas ({lowest}), or 0 for no limit; got {max_replicas}",
        )
    scale_target = reader.integer(spec, "scaleTarget", path, minimum=1, maximum=INT32)
    metric = reader.choice(spec, "scaleMetric", path, SCALE_METRICS)
    if metric in ("cpu", "memory"):
        # HPA metrics: the autoscaler here scales on concurrency or rps only.
        reader.ignore(f"{path}.scaleMetric")
        if scale_target is not None:
            reader.ignore(f"{path}.scaleTarget")
            scale_target = None
        metric = "concurrency"
    concurrency = reader.integer(spec, "containerConcurrency", path, minimum=0, maximum=INT64)
    timeout = reader.integer(spec, "timeout", path, minimum=1, maximum=INT64)
    canary = reader.integer(spec, "canaryTrafficPercent", path, minimum=0, maximum=100)
    logger = _logger(reader, spec.get("logger"), f"{path}.logger")
    batcher = _batcher(reader, spec.get("batcher"), f"{path}.batcher")
    node_selector = _labels(reader, spec.get("nodeSelector"), f"{path}.nodeSelector")
    if len(reader.problems) > before:
        return None
    return {
        "node_selector": node_selector,
        "min_replicas": lowest,
        "max_replicas": max_replicas or 0,
        "scale_target": scale_target,
        "scale_metric": metric or "concurrency",
        "container_concurrency": concurrency or 0,
        "timeout_s": timeout,
        "canary_traffic_percent": canary,
        "logger": logger,
        "batcher": batcher,
    }


def _labels(reader: FieldReader, value: Any, path: str) -> dict[str, str]:
    """A pod's nodeSelector: label → value, both strings (the Ray backend places replicas
    on nodes started with those labels)."""
    labels = reader.mapping(value, path)
    if labels is None:
        return {}
    found: dict[str, str] = {}
    for key, item in labels.items():
        if not isinstance(key, str) or not isinstance(item, str):
            reader.problem(f"{path}.{key}", f"must be a string, got {describe_value(item)}")
        else:
            found[key] = item
    return found


def _logger(reader: FieldReader, value: Any, path: str) -> LoggerSpec | None:
    spec = reader.mapping(value, path)
    if spec is None:
        return None
    # Documented default "all"; current KServe's validateLogger rejects an empty mode.
    mode = reader.choice(spec, "mode", path, LOGGER_MODES) or "all"
    url = reader.string(spec, "url", path)
    reader.only(spec, path, ("mode", "url"))
    return LoggerSpec(mode=mode, url=url)


def _batcher(reader: FieldReader, value: Any, path: str) -> Batcher | None:
    spec = reader.mapping(value, path)
    if spec is None:
        return None
    # cmd/agent/main.go refuses batch sizes and latencies below 1.
    size = reader.integer(spec, "maxBatchSize", path, minimum=1, maximum=INT32)
    latency = reader.integer(spec, "maxLatency", path, minimum=1, maximum=INT32)
    reader.only(spec, path, ("maxBatchSize", "maxLatency"))
    return Batcher(max_batch_size=size, max_latency_ms=None if latency is None else float(latency))
