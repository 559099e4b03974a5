"""KServe resource specs: InferenceService (``serving.kserve.io/v1beta1``), ServingRuntime and
ClusterServingRuntime (``serving.kserve.io/v1alpha1``, v1beta1 also accepted), read from the
same YAML or JSON a user would ``kubectl apply`` to a KServe cluster.

Validation follows KServe's admission webhooks (pkg/apis/serving/v1beta1/
inference_service_validation.go and component.go, pkg/webhook/admission/servingruntime) and
its defaulting (inference_service_defaults.go), but collects every problem with its field path
instead of stopping at the first. Fields modelport does not act on are kept in ``document``
and listed in ``ignored``. Input is untrusted: its size is limited, nesting and YAML alias
expansion are bounded, and anything malformed is a :class:`SpecError`, never another exception.

The three kinds live in one module, longer than most, because they share the metadata,
container and field-reading rules and ``parse_document`` returns either of them.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import yaml

from modelport.errors import ModelportError

ISVC_API_VERSION = "serving.kserve.io/v1beta1"
# KServe serves ServingRuntime and ClusterServingRuntime as v1alpha1 only; v1beta1 is accepted
# because users write the whole stream with one apiVersion.
RUNTIME_API_VERSIONS = ("serving.kserve.io/v1alpha1", "serving.kserve.io/v1beta1")
ISVC = "InferenceService"
RUNTIME = "ServingRuntime"
CLUSTER_RUNTIME = "ClusterServingRuntime"

MAX_INPUT_BYTES = 1 << 20
MAX_DEPTH = 64  # Kubernetes objects nest ~15 levels; this only stops hostile input
MAX_VALUES = 200_000  # values after YAML aliases are expanded ("billion laughs")
MAX_CHARS = 4 << 20  # characters in strings after aliases are expanded

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
}
SERVED = (
    "sklearn, xgboost, lightgbm, onnx, pytorch (TorchScript) and custom "
    "(a .py file defining a modelport Model)"
)
# inference_service_defaults.go: these default to protocol v2 when none is given.
_V2_SHORT_FORMS = ("triton", "onnx", "huggingface")
_V2_FORMATS = ("triton", "vllm")
ISVC_PROTOCOLS = ("v1", "v2", "grpc-v2")  # grpc-v1 (TF Serving's API) is not served here
RUNTIME_PROTOCOLS = ("v1", "v2", "grpc-v1", "grpc-v2")
SCALE_METRICS = ("concurrency", "rps", "cpu", "memory")  # the CRD's enum
LOGGER_MODES = ("all", "request", "response")
# Extension fields of a component (ComponentExtensionSpec) that modelport acts on.
EXTENSION_FIELDS = (
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

_INT32 = 2**31 - 1
_INT64 = 2**63 - 1
_DNS1035_LABEL = re.compile(r"[a-z]([-a-z0-9]*[a-z0-9])?")  # KServe's IsvcNameFmt
_DNS1123_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_DNS1123_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a document, at a field path like ``spec.predictor.minReplicas``."""

    path: str
    message: str


class SpecError(ModelportError):
    """A document is not a valid spec; ``problems`` holds every problem found."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = list(problems)
        super().__init__(
            "; ".join(f"{p.path}: {p.message}" if p.path else p.message for p in self.problems)
        )


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
    """A predictor or transformer, with KServe's defaults applied."""

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
    ignored: list[str] = field(default_factory=list)
    document: dict[str, Any] = field(default_factory=dict)

    def revision_key(self) -> str:
        """Hash of what a new revision is made for; scaling, canary and labels are left out."""
        blob = json.dumps(
            {
                "predictor": _revision_fields(self.predictor),
                "transformer": _revision_fields(self.transformer),
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


def parse_documents(
    text: str | bytes, default_namespace: str = "default"
) -> list[InferenceService | ServingRuntime]:
    """Parse a YAML stream (``---``-separated) or JSON document, as ``kubectl apply -f`` reads."""
    problems: list[Problem] = []
    raw = _load(text)
    docs: list[tuple[str, Any]] = []
    many = sum(d is not None for d in raw) > 1
    budget = _Budget()
    index = 0
    for doc in raw:
        if doc is None:  # an empty document, as between two `---`
            continue
        prefix = f"documents[{index}]." if many else ""
        index += 1
        try:
            doc = _plain(doc, (), 0, budget)
        except _Bad as bad:
            problems.append(Problem(_prefixed(prefix, bad.path), bad.message))
            continue
        if isinstance(doc, dict) and doc.get("kind") == "List" and "items" in doc:
            items = doc["items"]
            if not isinstance(items, list):
                problems.append(
                    Problem(prefix + "items", f"must be a list, got {_describe(items)}")
                )
                continue
            docs.extend((f"{prefix}items[{i}].", item) for i, item in enumerate(items))
        else:
            docs.append((prefix, doc))
    objects: list[InferenceService | ServingRuntime] = []
    for prefix, doc in docs:
        reader = _Reader()
        obj = _parse(reader, doc, default_namespace)
        problems.extend(Problem(_prefixed(prefix, p.path), p.message) for p in reader.problems)
        if obj is not None and not reader.problems:
            objects.append(obj)
    if problems:
        raise SpecError(problems)
    return objects


def _prefixed(prefix: str, path: str) -> str:
    return prefix + path if path else prefix.rstrip(".")


def parse_document(
    doc: dict[str, Any], default_namespace: str = "default"
) -> InferenceService | ServingRuntime:
    """Parse one document already decoded from YAML or JSON (for example, from the store)."""
    try:
        plain = _plain(doc, (), 0, _Budget())
    except _Bad as bad:
        raise SpecError([Problem(bad.path, bad.message)]) from None
    reader = _Reader()
    obj = _parse(reader, plain, default_namespace)
    if reader.problems or obj is None:
        raise SpecError(reader.problems or [Problem("", "not a document")])
    return obj


# ---- loading ------------------------------------------------------------------------------


_BaseLoader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_STRING_TAGS = ("tag:yaml.org,2002:timestamp", "tag:yaml.org,2002:value")


class _Loader(_BaseLoader):  # type: ignore[misc,valid-type]
    """Safe YAML loading with Kubernetes' reading of a few corner cases."""

    # Timestamps stay strings, as sigs.k8s.io/yaml turns them into JSON strings; so does a
    # plain "=", which PyYAML would tag as a YAML 1.1 "value" it cannot construct.
    yaml_implicit_resolvers = {
        first: [(tag, rx) for tag, rx in resolvers if tag not in _STRING_TAGS]
        for first, resolvers in _BaseLoader.yaml_implicit_resolvers.items()
    }

    def flatten_mapping(self, node: Any) -> None:
        # Merge keys copy whole mappings at construction time, so nested merges grow
        # exponentially before any budget could be checked; plain aliases share objects.
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                raise yaml.constructor.ConstructorError(
                    None, None, "YAML merge keys (<<) are not supported", key_node.start_mark
                )

    def construct_mapping(self, node: Any, deep: bool = False) -> Any:
        # kubectl rejects duplicate keys rather than silently keeping the last one.
        seen: set[tuple[str, str]] = set()
        for key_node, _ in node.value:
            if isinstance(key_node, yaml.ScalarNode):
                key = (key_node.tag, key_node.value)
                if key in seen:
                    raise yaml.constructor.ConstructorError(
                        None, None, f"duplicate key {_short(key_node.value)!r}", key_node.start_mark
                    )
                seen.add(key)
        return super().construct_mapping(node, deep=deep)


def _load(text: str | bytes) -> list[Any]:
    if isinstance(text, str):
        if len(text) > MAX_INPUT_BYTES:
            raise _too_large()
        try:
            size = len(text.encode("utf-8"))
        except UnicodeEncodeError as exc:
            raise SpecError(
                [Problem("input", f"is not valid Unicode text ({exc.reason} at {exc.start})")]
            ) from None
        if size > MAX_INPUT_BYTES:
            raise _too_large()
    else:
        if len(text) > MAX_INPUT_BYTES:
            raise _too_large()
        try:
            text = text.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise SpecError(
                [Problem("input", f"is not UTF-8 text ({exc.reason} at byte {exc.start})")]
            ) from None
    stripped = text.lstrip()
    json_error: Problem | None = None
    if stripped.startswith(("{", "[")):
        try:
            return [json.loads(text, object_pairs_hook=_json_object)]
        except json.JSONDecodeError as exc:
            # A YAML flow mapping also starts with "{"; if YAML cannot read it either, the
            # JSON error is the one that helps.
            json_error = Problem(f"line {exc.lineno}, column {exc.colno}", exc.msg)
        except _DuplicateKey as exc:
            raise SpecError([Problem("input", f"duplicate key {_short(exc.key)!r}")]) from None
        except (RecursionError, ValueError) as exc:
            raise SpecError([Problem("input", _reason(exc))]) from None
    try:
        return list(yaml.load_all(text, Loader=_Loader))
    except yaml.MarkedYAMLError as exc:
        if json_error is not None:
            raise SpecError([json_error]) from None
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "input"
        message = exc.problem or "invalid YAML"
        if exc.context:
            message = f"{message} ({exc.context})"
        raise SpecError([Problem(where, message)]) from None
    except (yaml.YAMLError, RecursionError, ValueError, TypeError, OverflowError) as exc:
        # ValueError: e.g. an integer with more digits than Python converts (int_max_str_digits).
        raise SpecError(
            [Problem(json_error.path if json_error else "input", _reason(exc))]
        ) from None


class _DuplicateKey(Exception):
    def __init__(self, key: str) -> None:
        self.key = key


def _json_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _DuplicateKey(key)
        out[key] = value
    return out


def _too_large() -> SpecError:
    return SpecError([Problem("input", f"is larger than the limit of {MAX_INPUT_BYTES} bytes")])


def _reason(exc: BaseException) -> str:
    if isinstance(exc, RecursionError):
        return f"is nested too deeply (more than {MAX_DEPTH} levels)"
    if isinstance(exc, ValueError) and "integer string conversion" in str(exc):
        return "holds an integer with too many digits"
    return _short(str(exc).splitlines()[0] if str(exc) else type(exc).__name__, 200)


class _Budget:
    def __init__(self) -> None:
        self.values = MAX_VALUES
        self.chars = MAX_CHARS


class _Bad(Exception):
    def __init__(self, path: str, message: str) -> None:
        self.path = path
        self.message = message


def _plain(value: Any, parts: tuple[str, ...], depth: int, budget: _Budget) -> Any:
    """A fresh tree of plain JSON values; aliases expanded within budget, cycles refused."""
    if depth > MAX_DEPTH:
        where = _short(_path(parts), 100) or "input"
        raise _Bad(where, f"is nested too deeply (more than {MAX_DEPTH} levels)")
    budget.values -= 1
    if budget.values < 0:
        raise _Bad("input", f"has more than {MAX_VALUES} values once YAML aliases are expanded")
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise _Bad(
                    _path((*parts, str(key))),
                    f"keys must be strings, got {_describe(key)} (quote it)",
                )
            _spend(budget, key)
            out[key] = _plain(item, (*parts, key), depth + 1, budget)
        return out
    if isinstance(value, list):
        return [_plain(item, (*parts, f"[{i}]"), depth + 1, budget) for i, item in enumerate(value)]
    if isinstance(value, str):
        _spend(budget, value)
        return value
    if value is None or isinstance(value, (bool, int, float)):
        return value
    raise _Bad(
        _path(parts) or "input",
        f"holds a {type(value).__name__}; "
        "only strings, numbers, booleans, lists and mappings are allowed",
    )


def _spend(budget: _Budget, text: str) -> None:
    budget.chars -= len(text)
    if budget.chars < 0:
        raise _Bad("input", f"has more than {MAX_CHARS} characters once YAML aliases are expanded")


def _path(parts: Iterable[str]) -> str:
    out = ""
    for part in parts:
        out = out + part if part.startswith("[") else _join(out, part)
    return out


def _join(path: str, key: str) -> str:
    key = _short(key, 80)
    return f"{path}.{key}" if path else key


def _short(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _describe(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"boolean {str(value).lower()}"
    if isinstance(value, int):
        return f"number {_short(str(value), 30)}"
    if isinstance(value, float):
        return f"number {value!r}"
    if isinstance(value, str):
        return f"string {_short(value, 40)!r}"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__


# ---- reading fields -----------------------------------------------------------------------


class _Reader:
    """Reads typed fields from plain dicts, collecting problems and fields not acted on."""

    def __init__(self) -> None:
        self.problems: list[Problem] = []
        self.ignored: list[str] = []

    def problem(self, path: str, message: str) -> None:
        self.problems.append(Problem(path, message))

    def ignore(self, path: str) -> None:
        if path not in self.ignored:
            self.ignored.append(path)

    def only(self, mapping: dict[str, Any], path: str, acted: Iterable[str]) -> None:
        """Report every key of ``mapping`` outside ``acted`` as not acted on."""
        known = set(acted)
        for key in mapping:
            if key not in known:
                self.ignore(_join(path, key))

    def mapping(self, value: Any, path: str, *, required: bool = False) -> dict[str, Any] | None:
        if value is None:
            if required:
                self.problem(path, "is required")
            return None
        if not isinstance(value, dict):
            self.problem(path, f"must be a mapping, got {_describe(value)}")
            return None
        return value

    def string(
        self, mapping: dict[str, Any], key: str, path: str, *, required: bool = False
    ) -> str | None:
        where = _join(path, key)
        value = mapping.get(key)
        if value is None:
            if required:
                self.problem(where, "is required")
            return None
        if not isinstance(value, str):
            hint = " (quote it)" if isinstance(value, (bool, int, float)) else ""
            self.problem(where, f"must be a string, got {_describe(value)}{hint}")
            return None
        if "\x00" in value:
            self.problem(where, "must not contain NUL characters")
            return None
        if required and not value:
            self.problem(where, "must not be empty")
            return None
        return value

    def choice(
        self, mapping: dict[str, Any], key: str, path: str, choices: Sequence[str]
    ) -> str | None:
        value = self.string(mapping, key, path)
        if value is not None and value not in choices:
            self.problem(
                _join(path, key), f"must be one of {', '.join(choices)}, got {_short(value)!r}"
            )
            return None
        return value

    def integer(
        self, mapping: dict[str, Any], key: str, path: str, *, minimum: int, maximum: int
    ) -> int | None:
        where = _join(path, key)
        value = mapping.get(key)
        if value is None:
            return None
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            self.problem(where, f"must be an integer, got {_describe(value)}")
            return None
        if not minimum <= value <= maximum:
            if maximum < _INT32:
                self.problem(where, f"must be between {minimum} and {maximum}, got {value}")
            elif value < minimum:
                self.problem(where, f"must be at least {minimum}, got {value}")
            else:
                self.problem(where, f"must be at most {maximum}, got {_short(str(value), 30)}")
            return None
        return value

    def boolean(self, mapping: dict[str, Any], key: str, path: str) -> bool | None:
        value = mapping.get(key)
        if value is None:
            return None
        if not isinstance(value, bool):
            self.problem(_join(path, key), f"must be true or false, got {_describe(value)}")
            return None
        return value

    def list(self, value: Any, path: str) -> list[Any]:
        if value is None:
            return []
        if not isinstance(value, list):
            self.problem(path, f"must be a list, got {_describe(value)}")
            return []
        return value

    def strings(self, value: Any, path: str) -> list[str]:
        out: list[str] = []
        for i, item in enumerate(self.list(value, path)):
            if not isinstance(item, str):
                self.problem(f"{path}[{i}]", f"must be a string, got {_describe(item)}")
            elif "\x00" in item:
                self.problem(f"{path}[{i}]", "must not contain NUL characters")
            else:
                out.append(item)
        return out

    def string_map(self, value: Any, path: str) -> dict[str, str]:
        mapping = self.mapping(value, path)
        out: dict[str, str] = {}
        for key in mapping or {}:
            item = self.string(mapping or {}, key, path)
            if item is not None:
                out[key] = item
        return out

    def env(self, value: Any, path: str) -> dict[str, str]:
        """A container's ``env`` list as a dict; ``valueFrom`` entries are not acted on."""
        out: dict[str, str] = {}
        for i, item in enumerate(self.list(value, path)):
            where = f"{path}[{i}]"
            entry = self.mapping(item, where)
            if entry is None:
                continue
            name = self.string(entry, "name", where, required=True)
            self.only(entry, where, ("name", "value"))
            if name is None:
                continue
            if "=" in name:
                self.problem(f"{where}.name", "must not contain '='")
                continue
            if name in BLOCKED_ENV or name.startswith(BLOCKED_ENV_PREFIX):
                self.problem(
                    f"{where}.name", f"setting {_short(name)} is not allowed for security reasons"
                )
                continue
            if "value" not in entry and "valueFrom" in entry:
                continue  # secrets and field references cannot be resolved here
            text = self.string(entry, "value", where)
            out[name] = text or ""
        return out


# ---- InferenceService ---------------------------------------------------------------------


def _parse(
    reader: _Reader, doc: Any, default_namespace: str
) -> InferenceService | ServingRuntime | None:
    if not isinstance(doc, dict):
        reader.problem(
            "",
            "a document must be a mapping with apiVersion, kind, metadata and spec, "
            f"got {_describe(doc)}",
        )
        return None
    kind = reader.string(doc, "kind", "", required=True)
    api_version = reader.string(doc, "apiVersion", "", required=True)
    if kind is None or api_version is None:
        return None
    if kind == ISVC:
        if api_version != ISVC_API_VERSION:
            reader.problem(
                "apiVersion",
                f"InferenceService must be {ISVC_API_VERSION}, got {_short(api_version)!r}",
            )
            return None
        return _isvc(reader, doc, default_namespace)
    if kind in (RUNTIME, CLUSTER_RUNTIME):
        if api_version not in RUNTIME_API_VERSIONS:
            reader.problem(
                "apiVersion",
                f"{kind} must be {RUNTIME_API_VERSIONS[0]}, got {_short(api_version)!r}",
            )
            return None
        return _runtime(reader, doc, default_namespace, cluster=kind == CLUSTER_RUNTIME)
    reader.problem(
        "kind",
        f"unsupported kind {_short(kind)!r}; "
        f"modelport accepts {ISVC}, {RUNTIME} and {CLUSTER_RUNTIME}",
    )
    return None


def _metadata(
    reader: _Reader, doc: dict[str, Any], default_namespace: str, *, namespaced: bool
) -> tuple[str | None, str | None, dict[str, str], dict[str, str]]:
    meta = reader.mapping(doc.get("metadata"), "metadata", required=True) or {}
    name = reader.string(meta, "name", "metadata", required=True)
    namespace: str | None = None
    if namespaced:
        namespace = reader.string(meta, "namespace", "metadata") or default_namespace
        if len(namespace) > 63 or not _DNS1123_LABEL.fullmatch(namespace):
            reader.problem(
                "metadata.namespace",
                f"{_short(namespace)!r} is not a valid namespace: at most 63 lower case "
                "alphanumeric characters or '-', starting and ending with an alphanumeric",
            )
    labels = reader.string_map(meta.get("labels"), "metadata.labels")
    annotations = reader.string_map(meta.get("annotations"), "metadata.annotations")
    reader.only(
        meta,
        "metadata",
        ("name", "namespace", "labels", "annotations")
        if namespaced
        else ("name", "labels", "annotations"),
    )
    return name, namespace, labels, annotations


def _isvc(reader: _Reader, doc: dict[str, Any], default_namespace: str) -> InferenceService | None:
    name, namespace, labels, annotations = _metadata(
        reader, doc, default_namespace, namespaced=True
    )
    reader.only(doc, "", ("apiVersion", "kind", "metadata", "spec"))
    spec = reader.mapping(doc.get("spec"), "spec", required=True) or {}
    if name is not None:
        _isvc_name(reader, name, transformer=spec.get("transformer") is not None)
    predictor = _predictor(reader, spec.get("predictor"), "spec.predictor")
    transformer = None
    if spec.get("transformer") is not None:
        transformer = _transformer(reader, spec["transformer"], "spec.transformer")
    if spec.get("canary") is not None:
        reader.problem(
            "spec.canary",
            "named canary predictors are not supported; use spec.predictor.canaryTrafficPercent",
        )
    reader.only(spec, "spec", ("predictor", "transformer", "canary"))
    autoscaler = annotations.get(AUTOSCALER_CLASS)
    if autoscaler is not None and autoscaler not in AUTOSCALER_CLASSES:
        # inference_service_validation.go validateInferenceServiceAutoscaler
        reader.problem(
            f"metadata.annotations[{AUTOSCALER_CLASS}]",
            f"[{_short(autoscaler)}] is not a supported autoscaler class type; "
            f"use one of {', '.join(AUTOSCALER_CLASSES)}",
        )
    if name is None or namespace is None or predictor is None or reader.problems:
        return None
    return InferenceService(
        name=name,
        namespace=namespace,
        labels=labels,
        annotations=annotations,
        predictor=predictor,
        transformer=transformer,
        ignored=list(reader.ignored),
        document=doc,
    )


def _isvc_name(reader: _Reader, name: str, *, transformer: bool) -> None:
    if len(name) > 63 or not _DNS1035_LABEL.fullmatch(name):
        # inference_service_validation.go validateInferenceServiceName (IsvcNameFmt)
        reader.problem(
            "metadata.name",
            f"{_short(name)!r} is invalid: an InferenceService name must consist of lower case "
            "alphanumeric characters or '-', start with a letter and end with a letter or "
            "digit (e.g. 'my-name' or 'abc-123', regex [a-z]([-a-z0-9]*[a-z0-9])?)",
        )
        return
    # KServe's webhook has no length rule, but it names the component Services
    # "<name>-predictor" / "<name>-transformer" (constants.PredictorServiceName), and a
    # Service name is a DNS-1035 label of at most 63 characters: longer names are accepted
    # and then never become ready.
    suffix = "-transformer" if transformer else "-predictor"
    limit = 63 - len(suffix)
    if len(name) > limit:
        reader.problem(
            "metadata.name",
            f"must be at most {limit} characters, got {len(name)}: KServe names the "
            f"{suffix[1:]} Service '<name>{suffix}', which must fit in 63",
        )


def _predictor(reader: _Reader, value: Any, path: str) -> Component | None:
    spec = reader.mapping(value, path, required=True)
    if spec is None:
        return None
    present = [key for key in (*SHORT_FORMS, "model") if spec.get(key) is not None]
    containers = reader.list(spec.get("containers"), f"{path}.containers")
    # PredictorSpec.GetImplementations: every container named kserve-container is a custom
    # predictor; with no framework given, the first container is.
    custom = [
        i
        for i, c in enumerate(containers)
        if isinstance(c, dict) and c.get("name") == PREDICTOR_CONTAINER
    ]
    if containers and not present and not custom:
        custom = [0]
    found = present + [f"containers[{i}]" for i in custom]
    for i, container in enumerate(containers):
        if i in custom:
            continue
        if isinstance(container, dict) and container.get("name") == COLLOCATED_TRANSFORMER:
            reader.problem(
                f"{path}.containers[{i}]",
                "a transformer collocated in the predictor's pod is not supported; "
                "give it as spec.transformer",
            )
        else:
            reader.ignore(f"{path}.containers[{i}]")
    if spec.get("storageUris") is not None:
        reader.problem(
            f"{path}.storageUris", "multiple storage URIs are not supported; give one storageUri"
        )
    extension = _extension(reader, spec, path)
    reader.only(spec, path, (*EXTENSION_FIELDS, *present, "containers", "storageUris"))
    if len(found) != 1:
        choices = f"model, {', '.join(SHORT_FORMS)} or containers"
        if found:
            reader.problem(
                path, f"exactly one of {choices} must be given, found {', '.join(found)}"
            )
        else:
            reader.problem(path, f"needs a model: give one of {choices}")
        return None
    source = found[0]
    if source.startswith("containers["):
        parts = _custom(reader, containers[custom[0]], f"{path}.{source}", protocols=("v1", "v2"))
    else:
        parts = _model(
            reader, spec[source], f"{path}.{source}", short=None if source == "model" else source
        )
    if parts is None or extension is None:
        return None
    return Component(**parts, **extension, source=source)


def _model(reader: _Reader, value: Any, path: str, *, short: str | None) -> dict[str, Any] | None:
    """``predictor.model`` or a framework short form (``predictor.sklearn``, ...)."""
    spec = reader.mapping(value, path)
    if spec is None:
        return None
    acted = ["storageUri", "protocolVersion", "args", "env", "name"]
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
                    f"modelport cannot serve {_short(name)} models; it serves {SERVED}",
                )
        runtime = reader.string(spec, "runtime", path)
        if runtime is not None and not _valid_runtime_name(runtime):
            reader.problem(f"{path}.runtime", f"{_short(runtime)!r} is not a valid runtime name")
    elif short not in SERVABLE_FORMATS:
        reader.problem(path, f"modelport cannot serve {short} models; it serves {SERVED}")
    if spec.get("name"):
        # inference_service_validation.go validatePredictor
        reader.problem(f"{path}.name", "the 'name' field is not allowed in standard predictor")
    storage_uri = reader.string(spec, "storageUri", path, required=True)
    requested = _protocol(reader, spec, path)
    if requested is None and (short in _V2_SHORT_FORMS or (short is None and fmt in _V2_FORMATS)):
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
        "model_format": fmt,
        "format_version": version,
        "storage_uri": storage_uri,
        "runtime": runtime,
        "protocol_version": _normal_protocol(requested),
        "requested_protocol": requested,
        "args": args,
        "env": env,
    }


def _protocol(reader: _Reader, spec: dict[str, Any], path: str) -> str | None:
    value = reader.string(spec, "protocolVersion", path)
    if value is None:
        return None
    if value not in ISVC_PROTOCOLS:
        note = " (grpc-v1 is not served by modelport)" if value == "grpc-v1" else ""
        reader.problem(
            f"{path}.protocolVersion",
            f"must be one of {', '.join(ISVC_PROTOCOLS)}, got {_short(value)!r}{note}",
        )
        return None
    return value


def _normal_protocol(protocol: str | None) -> str:
    return "v2" if protocol in ("v2", "grpc-v2") else "v1"


def _custom(
    reader: _Reader, value: Any, path: str, *, protocols: Sequence[str]
) -> dict[str, Any] | None:
    """A custom container: modelport runs the .py Model its STORAGE_URI points at instead."""
    container = reader.mapping(value, path)
    if container is None:
        return None
    env = reader.env(container.get("env"), f"{path}.env")
    args = reader.strings(container.get("args"), f"{path}.args")
    reader.only(container, path, ("name", "env"))  # image, command, args, ports, ... are not run
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
            f"PROTOCOL must be one of {', '.join(protocols)}, got {_short(requested)!r}",
        )
        requested = None
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


def _transformer(reader: _Reader, value: Any, path: str) -> Component | None:
    spec = reader.mapping(value, path)
    if spec is None:
        return None
    containers = reader.list(spec.get("containers"), f"{path}.containers")
    model = spec.get("model")
    for i in range(1, len(containers)):
        reader.ignore(f"{path}.containers[{i}]")
    if spec.get("storageUris") is not None:
        reader.problem(
            f"{path}.storageUris", "multiple storage URIs are not supported; give one STORAGE_URI"
        )
    extension = _extension(reader, spec, path)
    reader.only(spec, path, (*EXTENSION_FIELDS, "containers", "model", "storageUris"))
    parts: dict[str, Any] | None
    if containers and model is not None:
        reader.problem(path, "give either containers or model, not both")
        return None
    if containers:
        # TransformerSpec.GetImplementations: the first container is the transformer.
        source = "containers[0]"
        parts = _custom(reader, containers[0], f"{path}.containers[0]", protocols=ISVC_PROTOCOLS)
    elif model is not None:
        source = "model"  # a modelport extension: the transformer's .py Model without an image
        parts = _transformer_model(reader, model, f"{path}.model")
    else:
        reader.problem(
            path, "needs containers (a custom transformer with a STORAGE_URI) or model.storageUri"
        )
        return None
    if parts is None or extension is None:
        return None
    return Component(**parts, **extension, source=source)


def _transformer_model(reader: _Reader, value: Any, path: str) -> dict[str, Any] | None:
    spec = reader.mapping(value, path)
    if spec is None:
        return None
    model_format = reader.mapping(spec.get("modelFormat"), f"{path}.modelFormat")
    if model_format is not None:
        name = reader.string(model_format, "name", f"{path}.modelFormat")
        if name is not None and name.lower() != "custom":
            reader.problem(
                f"{path}.modelFormat.name", f"a transformer is a custom model, got {_short(name)!r}"
            )
        reader.only(model_format, f"{path}.modelFormat", ("name",))
    storage_uri = reader.string(spec, "storageUri", path, required=True)
    requested = _protocol(reader, spec, path)
    args = reader.strings(spec.get("args"), f"{path}.args")
    if "args" in spec:
        reader.ignore(f"{path}.args")
    env = reader.env(spec.get("env"), f"{path}.env")
    reader.only(spec, path, ("modelFormat", "storageUri", "protocolVersion", "args", "env"))
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


def _extension(reader: _Reader, spec: dict[str, Any], path: str) -> dict[str, Any] | None:
    """ComponentExtensionSpec (component.go), with KServe's defaults."""
    before = len(reader.problems)
    min_replicas = reader.integer(spec, "minReplicas", path, minimum=0, maximum=_INT32)
    max_replicas = reader.integer(spec, "maxReplicas", path, minimum=0, maximum=_INT32)
    # validateReplicas: minReplicas defaults to 1; maxReplicas 0 means no upper bound.
    lowest = 1 if min_replicas is None else min_replicas
    if max_replicas and lowest > max_replicas:
        reader.problem(
            f"{path}.maxReplicas",
            f"must be at least minReplicas ({lowest}), or 0 for no limit; got {max_replicas}",
        )
    scale_target = reader.integer(spec, "scaleTarget", path, minimum=1, maximum=_INT32)
    metric = reader.choice(spec, "scaleMetric", path, SCALE_METRICS)
    if metric in ("cpu", "memory"):
        # HPA metrics: the autoscaler here scales on concurrency or rps only.
        reader.ignore(f"{path}.scaleMetric")
        if scale_target is not None:
            reader.ignore(f"{path}.scaleTarget")
            scale_target = None
        metric = "concurrency"
    concurrency = reader.integer(spec, "containerConcurrency", path, minimum=0, maximum=_INT64)
    timeout = reader.integer(spec, "timeout", path, minimum=1, maximum=_INT64)
    canary = reader.integer(spec, "canaryTrafficPercent", path, minimum=0, maximum=100)
    logger = _logger(reader, spec.get("logger"), f"{path}.logger")
    batcher = _batcher(reader, spec.get("batcher"), f"{path}.batcher")
    if len(reader.problems) > before:
        return None
    return {
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


def _logger(reader: _Reader, value: Any, path: str) -> LoggerSpec | None:
    spec = reader.mapping(value, path)
    if spec is None:
        return None
    # Documented default "all"; current KServe's validateLogger rejects an empty mode.
    mode = reader.choice(spec, "mode", path, LOGGER_MODES) or "all"
    url = reader.string(spec, "url", path)
    reader.only(spec, path, ("mode", "url"))
    return LoggerSpec(mode=mode, url=url)


def _batcher(reader: _Reader, value: Any, path: str) -> Batcher | None:
    spec = reader.mapping(value, path)
    if spec is None:
        return None
    # cmd/agent/main.go refuses batch sizes and latencies below 1.
    size = reader.integer(spec, "maxBatchSize", path, minimum=1, maximum=_INT32)
    latency = reader.integer(spec, "maxLatency", path, minimum=1, maximum=_INT32)
    reader.only(spec, path, ("maxBatchSize", "maxLatency"))
    return Batcher(max_batch_size=size, max_latency_ms=None if latency is None else float(latency))


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


# ---- ServingRuntime -----------------------------------------------------------------------


def _valid_runtime_name(name: str) -> bool:
    return len(name) <= 253 and _DNS1123_SUBDOMAIN.fullmatch(name) is not None


def _runtime(
    reader: _Reader, doc: dict[str, Any], default_namespace: str, *, cluster: bool
) -> ServingRuntime | None:
    name, namespace, _, _ = _metadata(reader, doc, default_namespace, namespaced=not cluster)
    if name is not None and not _valid_runtime_name(name):
        reader.problem(
            "metadata.name",
            f"{_short(name)!r} is invalid: at most 253 lower case alphanumeric characters, "
            "'-' or '.', starting and ending with an alphanumeric",
        )
    reader.only(doc, "", ("apiVersion", "kind", "metadata", "spec"))
    spec = reader.mapping(doc.get("spec"), "spec", required=True) or {}
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
        priority = reader.integer(entry, "priority", where, minimum=1, maximum=_INT32)
        reader.only(entry, where, ("name", "version", "autoSelect", "priority"))
        if fmt_name:
            formats.append(SupportedFormat(fmt_name.lower(), version, bool(auto_select), priority))
    protocols: list[str] = []
    for i, item in enumerate(reader.strings(spec.get("protocolVersions"), "spec.protocolVersions")):
        if item not in RUNTIME_PROTOCOLS:
            reader.problem(
                f"spec.protocolVersions[{i}]",
                f"must be one of {', '.join(RUNTIME_PROTOCOLS)}, got {_short(item)!r}",
            )
        else:
            protocols.append(item)
    disabled = bool(reader.boolean(spec, "disabled", "spec"))
    multi_model = bool(reader.boolean(spec, "multiModel", "spec"))
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
            f"no format modelport serves (given: {_short(names, 120)}); it serves {SERVED}",
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


def _same_priority(reader: _Reader, formats: list[SupportedFormat]) -> None:
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
