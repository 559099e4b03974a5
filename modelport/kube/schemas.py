"""OpenAPI v3 schemas of the served kinds, for ``kubectl explain`` and for the patches
``kubectl apply`` computes. They describe the fields of KServe's InferenceService and
ServingRuntime that modelport reads, in our own words, and keep every other field
(``x-kubernetes-preserve-unknown-fields``): a manifest written for KServe keeps whatever it
carries, and modelport reports what it does not act on."""

from __future__ import annotations

from typing import Any

from modelport.control.spec.constants import LOGGER_MODES, SCALE_METRICS, SHORT_FORMS

Schema = dict[str, Any]
META = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"


def ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def _obj(description: str, properties: dict[str, Schema], **extra: Any) -> Schema:
    return {"type": "object", "description": description, "properties": properties, **extra}


def _str(description: str, **extra: Any) -> Schema:
    return {"type": "string", "description": description, **extra}


def _int(description: str, **extra: Any) -> Schema:
    return {"type": "integer", "format": "int32", "description": description, **extra}


def _open(description: str) -> Schema:
    """An object whose fields are not described here and are kept as given."""
    return {
        "type": "object",
        "description": description,
        "x-kubernetes-preserve-unknown-fields": True,
    }


def _strings(description: str) -> Schema:
    return {"type": "array", "description": description, "items": {"type": "string"}}


def _string_map(description: str) -> Schema:
    return {
        "type": "object",
        "description": description,
        "additionalProperties": {"type": "string"},
    }


OBJECT_META = _obj(
    "Standard object metadata: name, namespace, labels, annotations and the fields the server "
    "sets.",
    {
        "name": _str("Name, unique in the namespace."),
        "generateName": _str("A prefix from which the server makes a unique name."),
        "namespace": _str("The namespace; applying into a new one creates it, owned by you."),
        "labels": _string_map("Labels, for selecting objects (kubectl get -l)."),
        "annotations": _string_map(
            "Annotations; KServe's autoscaling and deployment annotations are read."
        ),
        "uid": _str("Set by the server: unique for the object's life."),
        "resourceVersion": _str("Set by the server: changes with every change of the object."),
        "generation": {"type": "integer", "format": "int64", "description": "Set by the server."},
        "creationTimestamp": _str("Set by the server.", format="date-time"),
    },
)

ENV = {
    "type": "array",
    "description": "Environment variables of the model server (name, value).",
    "items": _obj("An environment variable.", {"name": _str("Name."), "value": _str("Value.")}),
}
RESOURCES = _obj(
    "Compute resources: limits.cpu pins the replica to that many CPUs, limits.memory bounds "
    "its memory.",
    {
        "limits": _string_map("Upper bounds: cpu, memory."),
        "requests": _string_map("What the replica asks for."),
    },
)
MODEL_FORMAT = _obj(
    "The model's format (sklearn, xgboost, lightgbm, onnx, pytorch, custom, ...).",
    {"name": _str("Format name."), "version": _str("Format version, if it matters.")},
    required=["name"],
)
MODEL = _obj(
    "The model to serve: its format and where it is stored; a runtime is chosen for the "
    "format unless one is named.",
    {
        "modelFormat": MODEL_FORMAT,
        "storageUri": _str("Where the model is: s3://, gs://, http(s)://, pvc:// or a local path."),
        "runtime": _str("A ServingRuntime or ClusterServingRuntime to serve it with."),
        "protocolVersion": _str("Inference protocol: v1, v2 or grpc-v2."),
        "args": _strings("Arguments for the model server."),
        "env": ENV,
        "resources": RESOURCES,
    },
    **{"x-kubernetes-preserve-unknown-fields": True},
)
FRAMEWORK = _obj(
    "A model of this framework (the older form of model.modelFormat).",
    {
        "storageUri": _str("Where the model is stored."),
        "protocolVersion": _str("Inference protocol: v1, v2 or grpc-v2."),
        "runtimeVersion": _str("Runtime version (not acted on)."),
        "args": _strings("Arguments for the model server."),
        "env": ENV,
        "resources": RESOURCES,
    },
    **{"x-kubernetes-preserve-unknown-fields": True},
)
COMPONENT_FIELDS: dict[str, Schema] = {
    "minReplicas": _int("Fewest replicas; 0 scales to zero when idle.", minimum=0),
    "maxReplicas": _int("Most replicas the autoscaler may run.", minimum=0),
    "scaleTarget": _int("Target of the scale metric per replica."),
    "scaleMetric": _str("What the autoscaler follows.", enum=list(SCALE_METRICS)),
    "containerConcurrency": {
        "type": "integer",
        "format": "int64",
        "description": "Requests one replica handles at once (0: no limit).",
    },
    "timeout": {"type": "integer", "format": "int64", "description": "Request timeout, seconds."},
    "canaryTrafficPercent": {
        "type": "integer",
        "format": "int64",
        "description": "Traffic the latest revision gets; the rest stays on the previous one.",
    },
    "batcher": _obj(
        "Server-side batching.",
        {
            "maxBatchSize": _int("Largest batch."),
            "maxLatency": _int("Longest wait for a batch to fill, milliseconds."),
            "timeout": _int("Batch timeout, seconds."),
        },
    ),
    "logger": _obj(
        "Payload logging as CloudEvents.",
        {
            "url": _str("Where events are sent."),
            "mode": _str("What is logged.", enum=list(LOGGER_MODES)),
        },
    ),
    "containers": {
        "type": "array",
        "description": "Containers: a custom model server (kserve-container).",
        "items": _open("A container: name, image, args, command, env, resources, ports."),
    },
}
PREDICTOR = _obj(
    "The model server of the service: a model (model, or a framework field such as sklearn) "
    "or containers, with its scaling, batching and logging.",
    {"model": MODEL, **{name: FRAMEWORK for name in SHORT_FORMS}, **COMPONENT_FIELDS},
    **{"x-kubernetes-preserve-unknown-fields": True},
)
TRANSFORMER = _obj(
    "A pre/post-processing server in front of the predictor (containers).",
    dict(COMPONENT_FIELDS),
    **{"x-kubernetes-preserve-unknown-fields": True},
)
CONDITION = _obj(
    "A condition of the service (Knative's shape).",
    {
        "type": _str("Ready, PredictorReady, IngressReady."),
        "status": _str("True, False or Unknown."),
        "reason": _str("One word saying why."),
        "message": _str("What happened."),
        "lastTransitionTime": _str("When status last changed.", format="date-time"),
    },
)
ISVC_STATUS = _obj(
    "What the platform reports: URL, conditions, revisions and traffic.",
    {
        "url": _str("URL of the service (Host: NAME.NAMESPACE.DOMAIN)."),
        "address": _obj("Address.", {"url": _str("URL through the gateway's path prefix.")}),
        "conditions": {"type": "array", "items": CONDITION, "description": "Conditions."},
        "components": _open("Per component: revisions and traffic."),
        "modelStatus": _open("The model's load state."),
        "observedGeneration": {
            "type": "integer",
            "format": "int64",
            "description": "The generation this status describes.",
        },
    },
)
INFERENCE_SERVICE = _obj(
    "A model served over HTTP and gRPC (KServe's InferenceService).",
    {
        "apiVersion": _str("serving.kserve.io/v1beta1"),
        "kind": _str("InferenceService"),
        "metadata": ref(META),
        "spec": _obj(
            "What to serve.",
            {
                "predictor": PREDICTOR,
                "transformer": TRANSFORMER,
                "explainer": _open("An explainer (kept, not acted on)."),
            },
            required=["predictor"],
        ),
        "status": ISVC_STATUS,
    },
)
RUNTIME_SPEC = _obj(
    "Which model formats the runtime serves, with which protocols and server arguments.",
    {
        "supportedModelFormats": {
            "type": "array",
            "description": "Formats served: name, version, autoSelect, priority.",
            "items": _obj(
                "A model format.",
                {
                    "name": _str("Format name."),
                    "version": _str("Format version."),
                    "autoSelect": {"type": "boolean", "description": "Chosen automatically."},
                    "priority": _int("Preference among runtimes that auto-select the format."),
                },
            ),
        },
        "protocolVersions": _strings("Protocols: v1, v2, grpc-v1, grpc-v2."),
        "disabled": {"type": "boolean", "description": "Not chosen for any service."},
        "multiModel": {"type": "boolean", "description": "A ModelMesh runtime (not chosen)."},
        "containers": {
            "type": "array",
            "description": "The server container: args and env are read.",
            "items": _open("A container."),
        },
    },
    **{"x-kubernetes-preserve-unknown-fields": True},
)


def runtime_schema(kind: str) -> Schema:
    """ServingRuntime or ClusterServingRuntime."""
    return _obj(
        f"A model server for some formats ({kind}).",
        {
            "apiVersion": _str("serving.kserve.io/v1alpha1"),
            "kind": _str(kind),
            "metadata": ref(META),
            "spec": RUNTIME_SPEC,
        },
    )


NAMESPACE = _obj(
    "A namespace: services and runtimes live in one; its owner and contributors decide who "
    "may read or change them.",
    {
        "apiVersion": _str("v1"),
        "kind": _str("Namespace"),
        "metadata": ref(META),
        "spec": _open("Finalizers."),
        "status": _obj("Phase.", {"phase": _str("Active.")}),
    },
)
