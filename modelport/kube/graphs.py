"""InferenceGraphs in the Kubernetes-style API: their OpenAPI schema (for ``kubectl explain``
and ``kubectl apply``'s patches) and how an object is rendered (the control API's rendering,
status included). The resource type itself is in resources.py with the others."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from modelport.control.graph_api import render_graph
from modelport.control.operations import ApiContext
from modelport.control.store import Resource
from modelport.graph.headers import PROPAGATE_ANNOTATION
from modelport.kube.schemas import META, Schema, _int, _obj, _open, _str, ref

_STEP = _obj(
    "One step: exactly one of nodeName, serviceName, serviceUrl.",
    {
        "name": _str("The step's name, unique in its node (an Ensemble answers by it)."),
        "nodeName": _str("Run another node of this graph."),
        "serviceName": _str("Call this InferenceService of the graph's namespace."),
        "serviceUrl": _str(
            "Call the InferenceService this URL names on this platform "
            "(http://NAME.NAMESPACE.DOMAIN/... or .../serving/NAMESPACE/NAME/...)."
        ),
        "data": _str("$request (the graph's request, the default) or $response (the last one)."),
        "mapPredictionsToInstances": {
            "type": "boolean",
            "description": 'Send {"instances": X} for a body {"predictions": X}.',
        },
        "weight": {"type": "integer", "format": "int64", "description": "Splitter: percent."},
        "condition": _str("A GJSON path; the step matches when it exists."),
        "dependency": _str(
            "Soft (go on after a failure) or Hard (stop with it).", enum=["Soft", "Hard"]
        ),
    },
)
INFERENCE_GRAPH: Schema = _obj(
    "Models chained, switched, split or ensembled behind one address (KServe's "
    f"InferenceGraph). Annotation {PROPAGATE_ANNOTATION}: header names passed on to steps.",
    {
        "apiVersion": _str("serving.kserve.io/v1alpha1"),
        "kind": _str("InferenceGraph"),
        "metadata": ref(META),
        "spec": _obj(
            "The nodes; 'root' runs first.",
            {
                "nodes": {
                    "type": "object",
                    "description": "Nodes by name.",
                    "additionalProperties": _obj(
                        "A router node.",
                        {
                            "routerType": _str(
                                "How the steps run.",
                                enum=["Sequence", "Splitter", "Ensemble", "Switch"],
                            ),
                            "steps": {"type": "array", "items": _STEP},
                        },
                        required=["routerType"],
                    ),
                },
                "timeout": {
                    "type": "integer",
                    "format": "int64",
                    "description": "Seconds a whole request may take (504 after).",
                },
                "routerTimeouts": _obj(
                    "serviceClient: seconds each step's call may take.",
                    {"serviceClient": _int("Seconds per step call.")},
                    **{"x-kubernetes-preserve-unknown-fields": True},
                ),
            },
            required=["nodes"],
            **{"x-kubernetes-preserve-unknown-fields": True},
        ),
        "status": _open("url, address.url and the Ready condition."),
    },
)


def graph_renderer(ctx: ApiContext) -> Callable[[Resource], dict[str, Any]]:
    """InferenceGraphs with status, as /api/v1 renders them."""

    def render(row: Resource) -> dict[str, Any]:
        return render_graph(ctx, row)

    return render
