"""Names and enums KServe fixes for its resources, shared by the spec readers: API versions and
kinds, model formats and protocols, container names, blocked environment variables, and the
integer and name limits of the Kubernetes API."""

from __future__ import annotations

import re

ISVC_API_VERSION = "serving.kserve.io/v1beta1"
# KServe serves ServingRuntime and ClusterServingRuntime as v1alpha1 only; v1beta1 is accepted
# because users write the whole stream with one apiVersion.
RUNTIME_API_VERSIONS = ("serving.kserve.io/v1alpha1", "serving.kserve.io/v1beta1")
ISVC = "InferenceService"
RUNTIME = "ServingRuntime"
CLUSTER_RUNTIME = "ClusterServingRuntime"

# PredictorSpec's framework fields, in KServe's order (predictor.go).
SHORT_FORMS = (
    "sklearn",
    "xgboost",
    "tensorflow",
    "pytorch",
    "triton",
    "onnx",
    "huggingface",
    "pmml",
    "lightgbm",
    "paddle",
)
# KServe model format -> the `modelport serve --format` that serves it (modelport.runtimes).
SERVABLE_FORMATS: dict[str, str] = {
    "sklearn": "sklearn",
    "xgboost": "xgboost",
    "lightgbm": "lightgbm",
    "onnx": "onnx",
    "pytorch": "pytorch",
    "torchscript": "pytorch",
    "custom": "custom",
    "huggingface": "huggingface",  # modelport.runtimes.huggingface (task from the config)
}
SERVED = (
    "sklearn, xgboost, lightgbm, onnx, pytorch (TorchScript), huggingface and custom "
    "(a .py file defining a modelport Model)"
)
# inference_service_defaults.go: these default to protocol v2 when none is given.
V2_SHORT_FORMS = ("triton", "onnx", "huggingface")
V2_FORMATS = ("triton", "vllm")
ISVC_PROTOCOLS = ("v1", "v2", "grpc-v2")  # grpc-v1 (TF Serving's API) is not served here
RUNTIME_PROTOCOLS = ("v1", "v2", "grpc-v1", "grpc-v2")
SCALE_METRICS = ("concurrency", "rps", "cpu", "memory")  # the CRD's enum
LOGGER_MODES = ("all", "request", "response")
# Extension fields of a component (ComponentExtensionSpec) that modelport acts on.
EXTENSION_FIELDS = (
    "nodeSelector",
    "minReplicas",
    "maxReplicas",
    "scaleTarget",
    "scaleMetric",
    "containerConcurrency",
    "timeout",
    "canaryTrafficPercent",
    "logger",
    "batcher",
)
PREDICTOR_CONTAINER = "kserve-container"  # constants.InferenceServiceContainerName
COLLOCATED_TRANSFORMER = "transformer-container"  # constants.TransformerContainerName
# KServe blocks PYTHONPATH (pkg/validation/env_policy.go). Model servers here are host
# processes, so the loader's and the platform's own variables are blocked as well.
BLOCKED_ENV = frozenset({"PYTHONPATH", "PYTHONHOME", "LD_PRELOAD", "LD_LIBRARY_PATH"})
BLOCKED_ENV_PREFIX = "MODELPORT_"
AUTOSCALER_CLASS = "serving.kserve.io/autoscalerClass"
AUTOSCALER_CLASSES = ("hpa", "external", "keda", "none")  # constants.AutoscalerAllowedClassList

INT32 = 2**31 - 1
INT64 = 2**63 - 1
DNS1035_LABEL = re.compile(r"[a-z]([-a-z0-9]*[a-z0-9])?")  # KServe's IsvcNameFmt
DNS1123_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
DNS1123_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
