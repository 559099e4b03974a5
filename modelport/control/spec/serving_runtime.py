"""ServingRuntime and ClusterServingRuntime documents: supported model formats, protocols and
the predictor container, validated as KServe's servingruntime webhook does."""

from __future__ import annotations

from typing import Any

from modelport.control.spec.constants import (
    INT32,
    PREDICTOR_CONTAINER,
    RUNTIME_PROTOCOLS,
    SERVABLE_FORMATS,
    SERVED,
)
from modelport.control.spec.fields import FieldReader, read_metadata, valid_runtime_name
from modelport.control.spec.objects import ServingRuntime, SupportedFormat
from modelport.control.spec.problems import shorten


def read_serving_runtime(
    reader: FieldReader, doc: dict[str, Any], default_namespace: str, *, cluster: bool
) -> ServingRuntime | None:
    name, namespace, _, _ = read_metadata(reader, doc, default_namespace, namespaced=not cluster)
    if name is not None and not valid_runtime_name(name):
        reader.problem(
            "metadata.name",
            f"{shorten(name)!r} is invalid: at most 253 lower case alphanumeric characters, "
            "'-' or '.', starting and ending with an alphanumeric",
        )
    reader.only(doc, "", ("apiVersion", "kind", "metadata", "spec"))
    spec = reader.mapping(doc.get("spec"), "spec", required=True) or {}
    formats = _formats(reader, spec)
    protocols = _protocols(reader, spec)
    disabled = bool(reader.boolean(spec, "disabled", "spec"))
    multi_model = bool(reader.boolean(spec, "multiModel", "spec"))
    args, env = _container(reader, spec)
    reader.only(
        spec,
        "spec",
        ("supportedModelFormats", "protocolVersions", "disabled", "multiModel", "containers"),
    )
    if not disabled:
        _same_priority(reader, formats)
    served = [SERVABLE_FORMATS[f.name] for f in formats if f.name in SERVABLE_FORMATS]
    if not served:
        names = ", ".join(sorted({f.name for f in formats})) or "none"
        reader.problem(
            "spec.supportedModelFormats",
            f"no format modelport serves (given: {shorten(names, 120)}); it serves {SERVED}",
        )
    if name is None or reader.problems:
        return None
    return ServingRuntime(
        name=name,
        namespace=namespace,
        supported_formats=formats,
        protocol_versions=protocols,
        disabled=disabled,
        server_format=served[0],
        args=args,
        env=env,
        document=doc,
        ignored=list(reader.ignored),
        multi_model=multi_model,
        multi_node=spec.get("workerSpec") is not None,
    )


def _formats(reader: FieldReader, spec: dict[str, Any]) -> list[SupportedFormat]:
    """``spec.supportedModelFormats``, names lower-cased."""
    formats: list[SupportedFormat] = []
    for i, item in enumerate(
        reader.list(spec.get("supportedModelFormats"), "spec.supportedModelFormats")
    ):
        where = f"spec.supportedModelFormats[{i}]"
        entry = reader.mapping(item, where)
        if entry is None:
            continue
        fmt_name = reader.string(entry, "name", where, required=True)
        version = reader.string(entry, "version", where)
        auto_select = reader.boolean(entry, "autoSelect", where)
        priority = reader.integer(entry, "priority", where, minimum=1, maximum=INT32)
        reader.only(entry, where, ("name", "version", "autoSelect", "priority"))
        if fmt_name:
            formats.append(SupportedFormat(fmt_name.lower(), version, bool(auto_select), priority))
    return formats


def _protocols(reader: FieldReader, spec: dict[str, Any]) -> list[str]:
    """``spec.protocolVersions``, each one KServe knows."""
    protocols: list[str] = []
    for i, item in enumerate(reader.strings(spec.get("protocolVersions"), "spec.protocolVersions")):
        if item not in RUNTIME_PROTOCOLS:
            reader.problem(
                f"spec.protocolVersions[{i}]",
                f"must be one of {', '.join(RUNTIME_PROTOCOLS)}, got {shorten(item)!r}",
            )
        else:
            protocols.append(item)
    return protocols


def _container(reader: FieldReader, spec: dict[str, Any]) -> tuple[list[str], dict[str, str]]:
    """Args and environment of the predictor container (``kserve-container``, else the
    first); the other containers are reported as not acted on."""
    args: list[str] = []
    env: dict[str, str] = {}
    containers = reader.list(spec.get("containers"), "spec.containers")
    main = next(
        (
            i
            for i, c in enumerate(containers)
            if isinstance(c, dict) and c.get("name") == PREDICTOR_CONTAINER
        ),
        0,
    )
    for i, item in enumerate(containers):
        where = f"spec.containers[{i}]"
        if i != main:
            reader.ignore(where)
            continue
        container = reader.mapping(item, where)
        if container is not None:
            # The image, its command and its args belong to a server modelport does not
            # run; the environment reaches the model code.
            args = reader.strings(container.get("args"), f"{where}.args")
            env = reader.env(container.get("env"), f"{where}.env")
            reader.only(container, where, ("name", "env"))
    return args, env


def _same_priority(reader: FieldReader, formats: list[SupportedFormat]) -> None:
    # servingruntime_webhook.go validateModelFormatPrioritySame: the first auto-selectable
    # entry of a format sets its priority; a later one with another priority is an error.
    first: dict[str, int | None] = {}
    for i, fmt in enumerate(formats):
        if not fmt.auto_select:
            continue
        if fmt.name not in first:
            first[fmt.name] = fmt.priority
        elif None not in (first[fmt.name], fmt.priority) and first[fmt.name] != fmt.priority:
            reader.problem(
                f"spec.supportedModelFormats[{i}].priority",
                f"different priorities assigned for the model format {fmt.name}",
            )
