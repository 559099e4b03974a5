"""KServe resource specs: InferenceService (``serving.kserve.io/v1beta1``), ServingRuntime and
ClusterServingRuntime (``serving.kserve.io/v1alpha1``, v1beta1 also accepted), read from the
same YAML or JSON a user would ``kubectl apply`` to a KServe cluster.

Validation follows KServe's admission webhooks (pkg/apis/serving/v1beta1/
inference_service_validation.go and component.go, pkg/webhook/admission/servingruntime) and
its defaulting (inference_service_defaults.go), but collects every problem with its field path
instead of stopping at the first. Fields modelport does not act on are kept in ``document``
and listed in ``ignored``. Input is untrusted: its size is limited, nesting and YAML alias
expansion are bounded, and anything malformed is a :class:`SpecError`, never another exception.

The modules, each importing only those above it:

- ``constants``: API versions, kinds, model formats, protocols and other names KServe fixes;
- ``problems``: :class:`Problem` and :class:`SpecError`, and how paths and values read in them;
- ``objects``: what parsing returns (:class:`InferenceService`, :class:`ServingRuntime`, ...);
- ``loading``: safe YAML/JSON loading within the input limits;
- ``fields``: the field reader, and the metadata and name rules the kinds share;
- ``components``: a predictor's or transformer's model or container and extension fields;
- ``inference_service`` and ``serving_runtime``: one module per kind;
- ``documents``: :func:`parse_documents` and :func:`parse_document`, which dispatch on ``kind``,
  and :func:`parse_service` for a document that must be an InferenceService.
"""

from __future__ import annotations

from modelport.control.spec.constants import (
    AUTOSCALER_CLASS,
    AUTOSCALER_CLASSES,
    BLOCKED_ENV,
    BLOCKED_ENV_PREFIX,
    CLUSTER_RUNTIME,
    COLLOCATED_TRANSFORMER,
    EXTENSION_FIELDS,
    ISVC,
    ISVC_API_VERSION,
    ISVC_PROTOCOLS,
    LOGGER_MODES,
    PREDICTOR_CONTAINER,
    RUNTIME,
    RUNTIME_API_VERSIONS,
    RUNTIME_PROTOCOLS,
    SCALE_METRICS,
    SERVABLE_FORMATS,
    SERVED,
    SHORT_FORMS,
)
from modelport.control.spec.documents import parse_document, parse_documents, parse_service
from modelport.control.spec.loading import MAX_CHARS, MAX_DEPTH, MAX_INPUT_BYTES, MAX_VALUES
from modelport.control.spec.objects import (
    Batcher,
    Component,
    InferenceService,
    LoggerSpec,
    ServingRuntime,
    SupportedFormat,
)
from modelport.control.spec.problems import Problem, SpecError

__all__ = [
    "AUTOSCALER_CLASS",
    "AUTOSCALER_CLASSES",
    "BLOCKED_ENV",
    "BLOCKED_ENV_PREFIX",
    "CLUSTER_RUNTIME",
    "COLLOCATED_TRANSFORMER",
    "EXTENSION_FIELDS",
    "ISVC",
    "ISVC_API_VERSION",
    "ISVC_PROTOCOLS",
    "LOGGER_MODES",
    "MAX_CHARS",
    "MAX_DEPTH",
    "MAX_INPUT_BYTES",
    "MAX_VALUES",
    "PREDICTOR_CONTAINER",
    "RUNTIME",
    "RUNTIME_API_VERSIONS",
    "RUNTIME_PROTOCOLS",
    "SCALE_METRICS",
    "SERVABLE_FORMATS",
    "SERVED",
    "SHORT_FORMS",
    "Batcher",
    "Component",
    "InferenceService",
    "LoggerSpec",
    "Problem",
    "ServingRuntime",
    "SpecError",
    "SupportedFormat",
    "parse_document",
    "parse_documents",
    "parse_service",
]
