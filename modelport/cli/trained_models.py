"""How the CLI shows TrainedModels: ``get tm`` rows (KServe's printer columns URL, READY, AGE,
as for InferenceGraphs) and ``describe tm``."""

from __future__ import annotations

from typing import Any


def describe_trained_model(item: dict[str, Any]) -> str:
    meta = item["metadata"]
    status = item.get("status") or {}
    spec = item.get("spec") or {}
    model = spec.get("model") or {}
    lines = [
        f"Name:              {meta['name']}",
        f"Namespace:         {meta['namespace']}",
        f"Created:           {meta.get('creationTimestamp', '')}",
        f"Generation:        {meta.get('generation', '')}",
        f"InferenceService:  {spec.get('inferenceService', '')}",
        f"Storage URI:       {model.get('storageUri', '')}",
        f"Framework:         {model.get('framework', '')}",
        f"Memory:            {model.get('memory', '')}",
        f"URL:               {status.get('url', '')}",
        f"Address:           {(status.get('address') or {}).get('url', '')}",
        "Conditions:",
    ]
    for c in status.get("conditions", []):
        detail = " ".join(x for x in (c.get("reason", ""), c.get("message", "")) if x)
        lines.append(f"  {c['type']:24} {c['status']:8} {detail}")
    return "\n".join(lines)
