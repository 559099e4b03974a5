"""Serving runtimes: the built-in ClusterServingRuntimes and KServe's choice of runtime.

The built-ins carry the names, ``supportedModelFormats`` (versions, ``autoSelect``,
priorities) and ``protocolVersions`` of KServe's config/runtimes/*.yaml, for the runtimes
that serve a format modelport serves, plus ``modelport-custom`` for custom ``.py`` models.
Whichever runtime is chosen, modelport's own server runs the model in the format the runtime
was chosen for (``ServingRuntime.server_format``).

Selection is KServe's: pkg/apis/serving/v1beta1/predictor_model.go (GetSupportingRuntimes,
RuntimeSupportsModel, the sorts) and pkg/controller/v1beta1/inferenceservice/components/
predictor.go (reconcileModel) with utils.GetServingRuntime for an explicit ``runtime``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from modelport.control.spec import (
    CLUSTER_RUNTIME,
    RUNTIME_API_VERSIONS,
    SERVABLE_FORMATS,
    Component,
    Problem,
    ServingRuntime,
    SpecError,
    SupportedFormat,
    parse_document,
)

__all__ = [
    "BUILTIN_RUNTIMES",
    "ServingRuntime",
    "SupportedFormat",
    "effective_protocol",
    "priority_conflicts",
    "resolve_runtime",
]

# constants.GetProtocolVersionInt: the order KServe sorts runtimes by, and picks a protocol by.
_PROTOCOL_RANK = {"v1": 1, "v2": 2, "grpc-v1": 3, "grpc-v2": 4}
_UNKNOWN_RANK = 5

_Format = tuple[str, str | None, bool | None, int | None]  # name, version, autoSelect, priority


def _builtin(
    name: str, formats: list[_Format], protocols: list[str], **spec: Any
) -> ServingRuntime:
    entries = []
    for fmt, version, auto_select, priority in formats:
        entry: dict[str, Any] = {"name": fmt}
        if version is not None:
            entry["version"] = version
        if auto_select is not None:
            entry["autoSelect"] = auto_select
        if priority is not None:
            entry["priority"] = priority
        entries.append(entry)
    document = {
        "apiVersion": RUNTIME_API_VERSIONS[0],
        "kind": CLUSTER_RUNTIME,
        "metadata": {"name": name},
        "spec": {"supportedModelFormats": entries, "protocolVersions": protocols, **spec},
    }
    runtime = parse_document(document)
    if not isinstance(runtime, ServingRuntime):  # pragma: no cover - a table typo
        raise TypeError(name)
    return runtime


BUILTIN_RUNTIMES: list[ServingRuntime] = [
    _builtin("kserve-sklearnserver", [("sklearn", "1", True, 1)], ["v1", "v2"]),
    _builtin("kserve-xgbserver", [("xgboost", "2", True, 1)], ["v1", "v2"]),
    _builtin("kserve-lgbserver", [("lightgbm", "4", True, 1)], ["v1", "v2"]),
    _builtin(
        "kserve-mlserver",
        [
            ("sklearn", "0", True, 2),
            ("sklearn", "1", True, 2),
            ("xgboost", "1", True, 2),
            ("xgboost", "2", True, 2),
            ("lightgbm", "3", True, 2),
            ("lightgbm", "4", True, 2),
            ("mlflow", "1", True, 1),
            ("mlflow", "2", True, 1),
        ],
        ["v2"],
    ),
    _builtin(
        "kserve-predictiveserver",
        [("sklearn", "1", False, 3), ("xgboost", "2", False, 3), ("lightgbm", "4", False, 3)],
        ["v1", "v2"],
        multiModel=False,
    ),
    _builtin(
        "kserve-tritonserver",
        [
            ("tensorrt", "8", True, 1),
            ("tensorflow", "1", True, 1),
            ("tensorflow", "2", True, 1),
            ("onnx", "1", True, 1),
            ("pytorch", "1", None, None),
            ("triton", "2", True, 1),
        ],
        ["v2", "grpc-v2"],
    ),
    _builtin("kserve-torchserve", [("pytorch", "1", True, 2)], ["v1", "v2", "grpc-v2"]),
    _builtin("modelport-custom", [("custom", None, True, 1)], ["v1", "v2"]),
    # config/runtimes/kserve-huggingfaceserver.yaml (its OpenAI routes come with it).
    _builtin("kserve-huggingfaceserver", [("huggingface", "1", True, 1)], ["v2", "v1"]),
]


def resolve_runtime(
    isvc_namespace: str,
    component: Component,
    runtimes: Sequence[ServingRuntime],
    path: str = "spec.predictor",
) -> ServingRuntime:
    """The runtime that serves ``component``, chosen as KServe chooses it.

    ``runtimes`` holds ServingRuntimes of any namespace and ClusterServingRuntimes; of two
    with the same scope and name the first wins, so user runtimes listed before
    ``BUILTIN_RUNTIMES`` override built-ins. The result is a copy whose ``server_format`` is
    the modelport format this component is served with (one runtime may serve several).
    """
    fmt = component.model_format or ""
    server_format = SERVABLE_FORMATS.get(fmt)
    if server_format is None:
        raise SpecError(
            [
                Problem(
                    _format_path(component, path),
                    f"modelport cannot serve {fmt or 'unnamed'} models",
                )
            ]
        )
    namespaced, cluster = _scoped(isvc_namespace, runtimes)
    if component.runtime is not None:
        return replace(
            _explicit(isvc_namespace, component, namespaced, cluster, path),
            server_format=server_format,
        )
    # GetSupportingRuntimes: ModelSpec.GetProtocol() is v1 unless a protocol is set.
    protocol = component.requested_protocol or "v1"
    chosen: list[ServingRuntime] = []
    for scope in (namespaced, cluster):  # namespace-scoped runtimes always come first
        ordered = sorted(scope.values(), key=_listing_order)
        supporting = [
            rt
            for rt in ordered
            if not rt.disabled
            and not rt.multi_model
            and not rt.multi_node
            and _supports_model(rt, component, explicit=False)
            and _supports_protocol(rt, protocol)
        ]
        # sortSupportedRuntimeByPriority: stable, a set priority before none, higher first.
        supporting.sort(key=lambda rt: _priority_order(rt, fmt))
        chosen.extend(supporting)
    if not chosen:
        version = f" (version {component.format_version})" if component.format_version else ""
        message = f"no runtime supports modelFormat {fmt}{version} with protocol {protocol}"
        hints = _hints(fmt, [*namespaced.values(), *cluster.values()])
        if hints:
            message += f"; runtimes for {fmt}: {hints}"
        raise SpecError([Problem(_format_path(component, path), message)])
    return replace(chosen[0], server_format=server_format)


def effective_protocol(component: Component, runtime: ServingRuntime) -> str:
    """``v1`` or ``v2``: the protocol the component is served with on ``runtime``.

    As reconcileModel does, an unset protocolVersion becomes the runtime's first protocol in
    KServe's order (v1, v2, grpc-v1, grpc-v2); gRPC variants are reported as their REST twin.
    """
    if component.requested_protocol is not None:
        return component.protocol_version
    rank = min(
        (_PROTOCOL_RANK.get(p, _UNKNOWN_RANK) for p in runtime.protocol_versions),
        default=_UNKNOWN_RANK,
    )
    return {1: "v1", 2: "v2", 3: "v1", 4: "v2"}.get(rank, component.protocol_version)


def priority_conflicts(
    runtime: ServingRuntime, existing: Sequence[ServingRuntime]
) -> list[Problem]:
    """Problems KServe's runtime webhook raises for a new runtime given those in its scope.

    servingruntime_webhook.go validateServingRuntimePriority: two enabled runtimes of the
    same scope that share a protocol may not give one auto-selected format (name and
    version) the same priority.
    """
    if runtime.disabled:
        return []
    problems: list[Problem] = []
    for other in existing:
        if (
            other.namespace != runtime.namespace
            or other.name == runtime.name
            or other.disabled
            or other.multi_model != runtime.multi_model
            or not set(other.protocol_versions) & set(runtime.protocol_versions)
        ):
            continue
        for i, new in enumerate(runtime.supported_formats):
            for old in other.supported_formats:
                if (
                    new.auto_select
                    and old.auto_select
                    and new.name == old.name
                    and new.version == old.version
                    and new.priority is not None
                    and new.priority == old.priority
                ):
                    problems.append(
                        Problem(
                            f"spec.supportedModelFormats[{i}].priority",
                            f"same priority assigned for the model format {new.name} in the "
                            f"runtimes {other.name} and {runtime.name}",
                        )
                    )
    return problems


def _scoped(
    namespace: str, runtimes: Sequence[ServingRuntime]
) -> tuple[dict[str, ServingRuntime], dict[str, ServingRuntime]]:
    namespaced: dict[str, ServingRuntime] = {}
    cluster: dict[str, ServingRuntime] = {}
    for rt in runtimes:
        if rt.namespace is None:
            cluster.setdefault(rt.name, rt)
        elif rt.namespace == namespace:
            namespaced.setdefault(rt.name, rt)
    return namespaced, cluster


def _explicit(
    namespace: str,
    component: Component,
    namespaced: dict[str, ServingRuntime],
    cluster: dict[str, ServingRuntime],
    path: str,
) -> ServingRuntime:
    name = component.runtime or ""
    where = f"{path}.{component.source}.runtime"
    # utils.GetServingRuntime: the namespace's ServingRuntime first, then the cluster's.
    runtime = namespaced.get(name) or cluster.get(name)
    if runtime is None:
        raise SpecError(
            [
                Problem(
                    where,
                    f"no ServingRuntime in namespace {namespace} "
                    f"or ClusterServingRuntime named {name}",
                )
            ]
        )
    problems: list[Problem] = []
    if runtime.disabled:
        problems.append(Problem(where, f"runtime {name} is disabled"))
    # Only a protocol the user (or KServe's defaulting) set must be supported.
    if component.requested_protocol is not None and not _supports_protocol(
        runtime, component.requested_protocol
    ):
        problems.append(
            Problem(
                where,
                f"runtime {name} does not support protocol {component.requested_protocol} "
                f"(it supports {', '.join(runtime.protocol_versions)})",
            )
        )
    if not _supports_model(runtime, component, explicit=True):
        version = f" version {component.format_version}" if component.format_version else ""
        offered = ", ".join(_label(f) for f in runtime.supported_formats)
        problems.append(
            Problem(
                where,
                f"runtime {name} does not support modelFormat {component.model_format}{version} "
                f"(it supports {offered})",
            )
        )
    if problems:
        raise SpecError(problems)
    return runtime


def _supports_model(runtime: ServingRuntime, component: Component, *, explicit: bool) -> bool:
    """RuntimeSupportsModel: the model's format label is among the runtime's labels.

    A model without a version matches any version of its format; with one, it matches that
    exact version string only. Without an explicit runtime only autoSelect formats count.
    """
    for fmt in runtime.supported_formats:
        if not (explicit or fmt.auto_select) or fmt.name != component.model_format:
            continue
        if component.format_version is None or component.format_version == fmt.version:
            return True
    return False


def _supports_protocol(runtime: ServingRuntime, protocol: str) -> bool:
    # IsProtocolVersionSupported: a runtime that lists no protocols supports them all.
    return not runtime.protocol_versions or protocol in runtime.protocol_versions


def _listing_order(runtime: ServingRuntime) -> tuple[int, float, str]:
    # sortServingRuntimeList: lowest protocol first, then newest first, then by name.
    rank = min(
        (_PROTOCOL_RANK.get(p, _UNKNOWN_RANK) for p in runtime.protocol_versions),
        default=_UNKNOWN_RANK,
    )
    return rank, -(runtime.created_at or 0.0), runtime.name


def _priority_order(runtime: ServingRuntime, fmt: str) -> tuple[int, int]:
    # ServingRuntimeSpec.GetPriority: the first entry of that format name, whatever its
    # version or autoSelect.
    priority = next((f.priority for f in runtime.supported_formats if f.name == fmt), None)
    return (1, 0) if priority is None else (0, -priority)


def _format_path(component: Component, path: str) -> str:
    if component.source == "model":
        return f"{path}.model.modelFormat"
    return f"{path}.{component.source}"


def _label(fmt: SupportedFormat) -> str:
    return f"{fmt.name} {fmt.version}" if fmt.version else fmt.name


def _hints(fmt: str, runtimes: list[ServingRuntime]) -> str:
    hints = []
    for rt in runtimes:
        versions = [
            f.version or "any" for f in rt.supported_formats if f.name == fmt and f.auto_select
        ]
        if not versions:
            continue
        state = ", disabled" if rt.disabled else ""
        protocols = ", ".join(rt.protocol_versions) or "any"
        hints.append(f"{rt.name} (versions {', '.join(versions)}; protocols {protocols}{state})")
    return "; ".join(hints)
