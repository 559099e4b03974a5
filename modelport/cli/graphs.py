"""How the CLI shows InferenceGraphs: ``get ig`` rows (KServe's printer columns URL, READY,
AGE) and ``describe ig``."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any


def graph_head(with_ns: bool) -> list[str]:
    return (["NAMESPACE"] if with_ns else []) + ["NAME", "URL", "READY", "AGE"]


def _ready(item: dict[str, Any]) -> dict[str, Any]:
    conditions = (item.get("status") or {}).get("conditions") or []
    return next((c for c in conditions if c.get("type") == "Ready"), {})


def graph_row(item: dict[str, Any], with_ns: bool) -> list[str]:
    meta = item.get("metadata") or {}
    status = item.get("status") or {}
    row = [
        meta.get("name", ""),
        status.get("url", ""),
        _ready(item).get("status", "Unknown"),
        age(meta.get("creationTimestamp")),
    ]
    return ([meta.get("namespace", "")] if with_ns else []) + row


def describe_graph(item: dict[str, Any]) -> str:
    meta = item["metadata"]
    status = item.get("status") or {}
    lines = [
        f"Name:         {meta['name']}",
        f"Namespace:    {meta['namespace']}",
        f"Created:      {meta.get('creationTimestamp', '')}",
        f"Generation:   {meta.get('generation', '')}",
        f"URL:          {status.get('url', '')}",
        f"Address:      {(status.get('address') or {}).get('url', '')}",
        "Conditions:",
    ]
    for c in status.get("conditions", []):
        detail = " ".join(x for x in (c.get("reason", ""), c.get("message", "")) if x)
        lines.append(f"  {c['type']:16} {c['status']:8} {detail}")
    spec = item.get("spec") or {}
    if spec.get("timeout"):
        lines.append(f"Timeout:      {spec['timeout']}s")
    lines.append("Nodes:")
    for node_name, node in (spec.get("nodes") or {}).items():
        lines.append(f"  {node_name} ({node.get('routerType', '')}):")
        for i, step in enumerate(node.get("steps") or []):
            target = next(
                (
                    f"{k} {step[k]}"
                    for k in ("serviceName", "nodeName", "serviceUrl")
                    if step.get(k)
                ),
                "",
            )
            extras = [
                f"{k}={step[k]}"
                for k in ("weight", "condition", "data", "dependency")
                if step.get(k) not in (None, "")
            ]
            label = step.get("name") or str(i)
            lines.append(f"    {label}: {target} {' '.join(extras)}".rstrip())
    return "\n".join(lines)


def age(timestamp: str | None) -> str:
    if not timestamp:
        return ""
    created = datetime.strptime(timestamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    seconds = int((datetime.now(UTC) - created).total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{max(seconds, 0)}s"
