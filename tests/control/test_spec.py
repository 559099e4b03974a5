"""InferenceService / ServingRuntime parsing and validation (modelport.control.spec).

The example documents are KServe's own (docs/samples in kserve/kserve), so a file that
applies on a KServe cluster is shown to apply here.
"""

from __future__ import annotations

import json
import textwrap
import time
from pathlib import Path

import pytest
import yaml

from modelport.control.spec import (
    MAX_INPUT_BYTES,
    Batcher,
    InferenceService,
    LoggerSpec,
    Problem,
    ServingRuntime,
    SpecError,
    parse_document,
    parse_documents,
)

VECTORS = Path(__file__).resolve().parent.parent / "vectors" / "kserve"


def doc(text: str) -> str:
    return textwrap.dedent(text).lstrip()


def vector(name: str) -> str:
    """A document of tests/vectors/kserve: KServe's samples, and variations of them."""
    return (VECTORS / name).read_text()


def one(text: str, namespace: str = "default") -> InferenceService:
    objects = parse_documents(doc(text), namespace)
    assert len(objects) == 1
    assert isinstance(objects[0], InferenceService)
    return objects[0]


def problems(text: str | bytes, namespace: str = "default") -> list[Problem]:
    with pytest.raises(SpecError) as info:
        parse_documents(doc(text) if isinstance(text, str) else text, namespace)
    return info.value.problems


def problem_at(text: str, path: str) -> str:
    """The message of the single problem at ``path``."""
    found = [p.message for p in problems(text) if p.path == path]
    assert len(found) == 1, problems(text)
    return found[0]


SKLEARN_NEW = vector("sklearn-iris.yaml")

SKLEARN_OLD = vector("sklearn-iris-old-style.yaml")


def isvc_with(predictor: str, *, name: str = "m", extra: str = "") -> str:
    """An InferenceService whose spec.predictor body is ``predictor`` (YAML, 4-space base)."""
    body = textwrap.indent(textwrap.dedent(predictor).strip(), " " * 4)
    return (
        "apiVersion: serving.kserve.io/v1beta1\n"
        "kind: InferenceService\n"
        f"metadata:\n  name: {name}\n"
        f"spec:\n  predictor:\n{body}\n{extra}"
    )


def model(extra: str = "", fmt: str = "sklearn") -> str:
    """A new-style predictor; ``extra`` holds more predictor fields, one per line."""
    fields = textwrap.dedent(extra).strip()
    body = f"model:\n  modelFormat:\n    name: {fmt}\n  storageUri: gs://bucket/model\n"
    return isvc_with(f"{fields}\n{body}" if fields else body)


# ---- KServe's examples -------------------------------------------------------------------


def test_sklearn_iris_new_style_gets_kserve_defaults() -> None:
    isvc = one(SKLEARN_NEW)
    assert (isvc.name, isvc.namespace) == ("sklearn-iris", "default")
    p = isvc.predictor
    assert p.model_format == "sklearn"
    assert p.format_version is None
    assert p.storage_uri == "gs://kfserving-examples/models/sklearn/1.0/model"
    assert p.runtime is None
    assert (p.protocol_version, p.requested_protocol) == ("v1", None)
    assert (p.min_replicas, p.max_replicas, p.container_concurrency) == (1, 0, 0)
    assert (p.scale_target, p.scale_metric, p.timeout_s) == (None, "concurrency", None)
    assert (p.canary_traffic_percent, p.batcher, p.logger) == (None, None, None)
    assert p.source == "model"
    assert isvc.transformer is None
    assert isvc.ignored == []
    assert isvc.document == yaml.safe_load(doc(SKLEARN_NEW))


def test_sklearn_iris_old_style_is_the_same_model() -> None:
    old, new = one(SKLEARN_OLD), one(SKLEARN_NEW)
    assert old.predictor.model_format == "sklearn"
    assert old.predictor.source == "sklearn"
    assert old.predictor.storage_uri == new.predictor.storage_uri
    # Same model, same revision, whichever way it is written.
    assert old.revision_key() == new.revision_key()


def test_sklearn_v2_sample_sets_protocol() -> None:
    isvc = one(vector("sklearn-iris-v2.yaml"))
    assert (isvc.predictor.protocol_version, isvc.predictor.requested_protocol) == ("v2", "v2")


def test_xgboost_with_explicit_runtime_and_version() -> None:
    isvc = one(vector("xgboost-iris-mlserver.yaml"))
    p = isvc.predictor
    assert isvc.namespace == "kubeflow-user-example-com"
    assert (p.model_format, p.format_version, p.runtime) == ("xgboost", "2", "kserve-mlserver")
    assert (p.protocol_version, p.requested_protocol) == ("v2", "grpc-v2")


def test_lightgbm_and_onnx_short_forms() -> None:
    lgb = one(vector("lightgbm-iris.yaml"))
    onnx = one(vector("onnx-style-sample.yaml"))
    assert lgb.predictor.model_format == "lightgbm"
    assert lgb.predictor.protocol_version == "v1"
    # inference_service_defaults.go assignONNXRuntime: the onnx short form defaults to v2.
    assert onnx.predictor.model_format == "onnx"
    assert (onnx.predictor.protocol_version, onnx.predictor.requested_protocol) == ("v2", "v2")


def test_canary_traffic_percent() -> None:
    isvc = one(vector("sklearn-iris-canary.yaml"))
    assert isvc.predictor.canary_traffic_percent == 10
    assert isvc.predictor.storage_uri.endswith("model-2")


def test_transformer_with_storage_uri_is_a_custom_component() -> None:
    isvc = one(vector("torch-transformer-storage-uri.yaml"))
    t = isvc.transformer
    assert t is not None
    assert (t.model_format, t.storage_uri, t.runtime) == (
        "custom",
        "gs://bucket/transformer.py",
        None,
    )
    assert t.env == {"STORAGE_URI": "gs://bucket/transformer.py", "PROTOCOL": "v2"}
    assert t.args == ["--model_name", "mnist"]
    assert t.protocol_version == "v2"
    assert t.source == "containers[0]"
    assert isvc.predictor.model_format == "pytorch"
    for path in ("image", "command", "args"):
        assert f"spec.transformer.containers[0].{path}" in isvc.ignored


def test_kserve_transformer_sample_without_storage_uri_says_what_to_do() -> None:
    message = problem_at(
        vector("torch-transformer.yaml"),
        "spec.transformer.containers[0].env",
    )
    assert "cannot run container images" in message
    assert "STORAGE_URI" in message


def test_transformer_model_storage_uri() -> None:
    isvc = one(
        model()
        + "  transformer:\n"
        + "    minReplicas: 2\n"
        + "    model:\n"
        + "      storageUri: /models/transformer.py\n"
    )
    t = isvc.transformer
    assert t is not None
    assert (t.model_format, t.storage_uri, t.source, t.min_replicas) == (
        "custom",
        "/models/transformer.py",
        "model",
        2,
    )


def test_logger_sample() -> None:
    isvc = one(vector("sklearn-iris-logger.yaml"))
    assert isvc.predictor.logger == LoggerSpec(mode="all", url="http://message-dumper.default/")


def test_logger_mode_defaults_to_all() -> None:
    isvc = one(model("logger: {mode: request}"))
    assert isvc.predictor.logger == LoggerSpec(mode="request", url=None)
    isvc = one(model("logger: {url: http://dumper/}"))
    assert isvc.predictor.logger == LoggerSpec(mode="all", url="http://dumper/")


def test_batcher_sample() -> None:
    isvc = one(vector("pytorch-batcher.yaml"))
    assert isvc.predictor.batcher == Batcher(max_batch_size=16, max_latency_ms=300.0)
    assert isvc.predictor.timeout_s == 60
    assert isvc.predictor.min_replicas == 1


def test_scale_to_zero_and_autoscaling_fields() -> None:
    p = one(
        model(
            """
            minReplicas: 0
            maxReplicas: 5
            scaleMetric: rps
            scaleTarget: 20
            containerConcurrency: 4
            """
        )
    ).predictor
    assert (p.min_replicas, p.max_replicas) == (0, 5)
    assert (p.scale_metric, p.scale_target, p.container_concurrency) == ("rps", 20, 4)


def test_hpa_metric_is_accepted_but_not_acted_on() -> None:
    isvc = one(model("scaleMetric: cpu\nscaleTarget: 80"))
    assert isvc.predictor.scale_metric == "concurrency"
    assert isvc.predictor.scale_target is None
    assert "spec.predictor.scaleMetric" in isvc.ignored
    assert "spec.predictor.scaleTarget" in isvc.ignored


def test_custom_container_with_storage_uri() -> None:
    isvc = one(vector("custom-model-storage-uri.yaml"))
    p = isvc.predictor
    assert (p.model_format, p.storage_uri, p.source) == (
        "custom",
        "s3://bucket/model.py",
        "containers[0]",
    )
    assert p.env == {"STORAGE_URI": "s3://bucket/model.py", "GREETING": "hello"}
    assert p.protocol_version == "v1"
    assert "spec.predictor.containers[0].image" in isvc.ignored


def test_custom_container_sample_without_storage_uri_is_refused() -> None:
    text = vector("custom-simple.yaml")
    assert "STORAGE_URI" in problem_at(text, "spec.predictor.containers[0].env")


def test_custom_container_protocol_env() -> None:
    text = isvc_with(
        """
        containers:
        - name: kserve-container
          image: x
          env:
          - {name: STORAGE_URI, value: /m.py}
          - {name: PROTOCOL, value: v2}
        """
    )
    assert one(text).predictor.protocol_version == "v2"
    bad = text.replace("value: v2", "value: grpc-v2")
    # predictor_custom.go validateCustomProtocol accepts v1 and v2 only.
    assert problem_at(bad, "spec.predictor.containers[0].env") == (
        "PROTOCOL must be one of v1, v2, got 'grpc-v2'"
    )


def test_sidecar_containers_beside_a_model_are_ignored() -> None:
    isvc = one(
        isvc_with(
            """
            model:
              modelFormat: {name: sklearn}
              storageUri: gs://b/m
            containers:
            - name: sidecar
              image: busybox
            """
        )
    )
    assert isvc.predictor.model_format == "sklearn"
    assert "spec.predictor.containers[0]" in isvc.ignored


def test_json_document() -> None:
    text = json.dumps(yaml.safe_load(doc(SKLEARN_NEW)))
    [isvc] = parse_documents(text)
    assert isinstance(isvc, InferenceService)
    assert isvc.predictor.model_format == "sklearn"
    assert isvc.revision_key() == one(SKLEARN_NEW).revision_key()


def test_bytes_input_with_bom() -> None:
    [isvc] = parse_documents(b"\xef\xbb\xbf" + doc(SKLEARN_NEW).encode())
    assert isinstance(isvc, InferenceService)


def test_multi_document_stream_and_empty_documents() -> None:
    runtime = vector("serving-runtime-sklearn.yaml")
    text = "---\n" + doc(runtime) + "---\n---\n" + doc(SKLEARN_NEW)
    objects = parse_documents(text, "team-a")
    assert [type(o).__name__ for o in objects] == ["ServingRuntime", "InferenceService"]
    assert [o.namespace for o in objects] == ["team-a", "team-a"]


def test_kind_list() -> None:
    item = yaml.safe_load(doc(SKLEARN_NEW))
    text = json.dumps(
        {"apiVersion": "v1", "kind": "List", "items": [item, item | {"metadata": {"name": "b"}}]}
    )
    assert [o.name for o in parse_documents(text)] == ["sklearn-iris", "b"]
    bad = json.dumps(
        {"apiVersion": "v1", "kind": "List", "items": [item, {"kind": "Pod", "apiVersion": "v1"}]}
    )
    paths = [p.path for p in problems(bad)]
    assert paths == ["items[1].kind"]


def test_parse_document_round_trips_the_stored_document() -> None:
    isvc = one(model("minReplicas: 2"))
    again = parse_document(isvc.document, "default")
    assert isinstance(again, InferenceService)
    assert again.predictor == isvc.predictor
    assert again.document == isvc.document


def test_default_namespace_applies_and_explicit_namespace_wins() -> None:
    assert one(SKLEARN_NEW, "team-b").namespace == "team-b"
    text = SKLEARN_NEW.replace('name: "sklearn-iris"', 'name: "sklearn-iris"\n  namespace: prod')
    assert one(text, "team-b").namespace == "prod"


def test_labels_and_annotations() -> None:
    text = doc(SKLEARN_NEW).replace(
        'name: "sklearn-iris"',
        'name: "sklearn-iris"\n  labels: {team: a}\n  annotations: {sidecar.istio.io/inject: "false"}',
    )
    isvc = one(text)
    assert isvc.labels == {"team": "a"}
    assert isvc.annotations == {"sidecar.istio.io/inject": "false"}


# ---- resources ----------------------------------------------------------------------------


def test_resource_limits_are_read_as_kubernetes_quantities() -> None:
    limited = doc(SKLEARN_NEW).replace(
        "storageUri:", "resources: {limits: {memory: 512Mi, cpu: 1500m}}\n      storageUri:"
    )
    isvc = one(limited)
    assert isvc.predictor.memory_limit == 512 * 2**20
    assert isvc.predictor.cpu_limit == 1.5
    assert one(doc(SKLEARN_NEW)).revision_key != isvc.revision_key  # new limits, new processes
    placed = one(
        doc(SKLEARN_NEW).replace(
            "storageUri:",
            "resources: {requests: {cpu: 250m, memory: 1Gi, nvidia.com/gpu: 2}, "
            "limits: {nvidia.com/gpu: 2, example.com/fpga: 1}}\n      storageUri:",
        )
    )
    assert (placed.predictor.cpu_request, placed.predictor.memory_request) == (0.25, 2**30)
    assert placed.predictor.gpu_limit == 2
    assert placed.ignored == ["spec.predictor.model.resources.limits.example.com/fpga"]
    for bad, message in (("lots", "is not a quantity"), ("0", "must be more than 0")):
        text = doc(SKLEARN_NEW).replace(
            "storageUri:", f"resources: {{limits: {{memory: {bad}}}}}\n      storageUri:"
        )
        with pytest.raises(SpecError) as caught:
            one(text)
        assert "spec.predictor.model.resources.limits.memory" in str(caught.value)
        assert message in str(caught.value)


# ---- fields kept and reported ------------------------------------------------------------


def test_unknown_and_unsupported_fields_are_kept_and_reported() -> None:
    # Its ART explainer is refused now that explainers run (test_spec_explainer.py).
    text = vector("sklearn-iris-unsupported-fields.yaml")
    text = text.replace("  explainer:\n    art:\n      type: SquareAttack\n", "")
    isvc = one(text)
    assert sorted(isvc.ignored) == sorted(
        [
            "metadata.creationTimestamp",
            "metadata.uid",
            "status",
            "spec.predictor.serviceAccountName",
            "spec.predictor.scaleMetricType",
            "spec.predictor.model.modelFormat.flavour",
            "spec.predictor.model.runtimeVersion",
            "spec.predictor.model.image",
            "spec.predictor.model.args",
            "spec.predictor.model.env[0].valueFrom",
            "spec.predictor.logger.metadataHeaders",
            "spec.predictor.batcher.timeout",
        ]
    )
    # Kept as given, timestamps as text (as Kubernetes reads them), for `get -o yaml`.
    assert isvc.document["metadata"]["creationTimestamp"] == "2024-01-02T03:04:05Z"
    assert isvc.document["spec"]["predictor"]["model"]["resources"]["limits"]["memory"] == "2Gi"
    assert isvc.document["status"] == {"url": "http://x"}
    assert isvc.predictor.env == {"PLAIN": "1"}
    assert isvc.predictor.args == ["--workers", "2"]
    # Requests and GPUs place replicas on a Ray cluster.
    assert (isvc.predictor.cpu_request, isvc.predictor.gpu_limit) == (0.5, 1)
    assert isvc.predictor.node_selector == {"gpu": "true"}


def test_yaml_scalars_read_as_kubernetes_reads_them() -> None:
    text = model("minReplicas: 1").replace(
        "storageUri: gs://bucket/model",
        "storageUri: gs://bucket/model\n      env:\n        - {name: DAY, value: 2024-01-02}\n"
        "        - {name: EQ, value: =}",
    )
    env = one(text).predictor.env
    assert env == {"DAY": "2024-01-02", "EQ": "="}


def test_yaml_anchors_within_limits_work() -> None:
    text = model().replace(
        "  predictor:\n", "  predictor:\n    minReplicas: &two 2\n    maxReplicas: *two\n"
    )
    p = one(text).predictor
    assert (p.min_replicas, p.max_replicas) == (2, 2)


# ---- validation --------------------------------------------------------------------------


def test_every_problem_is_collected_with_its_path() -> None:
    text = isvc_with(
        """
        minReplicas: abc
        canaryTrafficPercent: 150
        model:
          modelFormat: {name: sklearn}
        """,
        name="Bad_Name",
    )
    found = {p.path: p.message for p in problems(text)}
    assert set(found) == {
        "metadata.name",
        "spec.predictor.minReplicas",
        "spec.predictor.canaryTrafficPercent",
        "spec.predictor.model.storageUri",
    }
    assert found["spec.predictor.minReplicas"] == "must be an integer, got string 'abc'"
    assert found["spec.predictor.canaryTrafficPercent"] == "must be between 0 and 100, got 150"
    assert found["spec.predictor.model.storageUri"] == "is required"
    with pytest.raises(SpecError) as info:
        parse_documents(text)
    assert str(info.value) == "; ".join(f"{p.path}: {p.message}" for p in info.value.problems)
    assert "spec.predictor.minReplicas: must be an integer, got string 'abc'" in str(info.value)


@pytest.mark.parametrize(
    "name",
    ["Sklearn-Iris", "1sklearn", "sklearn-", "sklearn_iris", "sklearn.iris", "-a", "a" * 64],
)
def test_invalid_names(name: str) -> None:
    message = problem_at(
        isvc_with("sklearn: {storageUri: gs://b/m}", name=f'"{name}"'), "metadata.name"
    )
    assert "lower case alphanumeric" in message


def test_name_length_follows_kserve_service_names() -> None:
    ok = "a" * 53
    assert one(isvc_with("sklearn: {storageUri: gs://b/m}", name=ok)).name == ok
    message = problem_at(
        isvc_with("sklearn: {storageUri: gs://b/m}", name="a" * 54), "metadata.name"
    )
    assert message.startswith("must be at most 53 characters, got 54")
    with_transformer = isvc_with(
        "sklearn: {storageUri: gs://b/m}",
        name="a" * 52,
        extra="  transformer:\n    model: {storageUri: /t.py}\n",
    )
    assert problem_at(with_transformer, "metadata.name").startswith("must be at most 51 characters")


def test_missing_name_and_bad_namespace() -> None:
    text = doc(SKLEARN_NEW).replace('  name: "sklearn-iris"', "  namespace: Team_A")
    found = {p.path: p.message for p in problems(text)}
    assert found["metadata.name"] == "is required"
    assert "'Team_A' is not a valid namespace" in found["metadata.namespace"]
    assert "metadata.namespace" in {p.path for p in problems(SKLEARN_NEW, namespace="-bad")}


def test_missing_spec_and_predictor() -> None:
    head = "apiVersion: serving.kserve.io/v1beta1\nkind: InferenceService\nmetadata: {name: a}\n"
    assert problem_at(head, "spec") == "is required"
    assert problem_at(head + "spec: {}\n", "spec.predictor") == "is required"
    assert problem_at(head + "spec: {predictor: {}}\n", "spec.predictor").startswith(
        "needs a model"
    )
    assert problem_at(head + "spec: []\n", "spec") == "must be a mapping, got a list"


def test_exactly_one_predictor_implementation() -> None:
    both = isvc_with(
        """
        sklearn: {storageUri: gs://b/m}
        model: {modelFormat: {name: sklearn}, storageUri: gs://b/m}
        """
    )
    assert problem_at(both, "spec.predictor").endswith("found sklearn, model")
    with_container = isvc_with(
        """
        model: {modelFormat: {name: sklearn}, storageUri: gs://b/m}
        containers: [{name: kserve-container, image: x}]
        """
    )
    assert problem_at(with_container, "spec.predictor").endswith("found model, containers[0]")


def test_unservable_formats_list_what_modelport_serves() -> None:
    short = problem_at(isvc_with("tensorflow: {storageUri: gs://b/m}"), "spec.predictor.tensorflow")
    assert short.startswith("modelport cannot serve tensorflow models; it serves sklearn, xgboost")
    assert "custom" in short
    long = problem_at(model(fmt="paddle"), "spec.predictor.model.modelFormat.name")
    assert long.startswith("modelport cannot serve paddle models")


def test_model_format_is_required_and_lower_cased() -> None:
    text = isvc_with("model: {storageUri: gs://b/m}")
    assert problem_at(text, "spec.predictor.model.modelFormat") == "is required"
    no_name = isvc_with("model: {modelFormat: {version: '1'}, storageUri: gs://b/m}")
    assert problem_at(no_name, "spec.predictor.model.modelFormat.name") == "is required"
    assert one(model(fmt="SKLearn")).predictor.model_format == "sklearn"


def test_storage_uri_is_required_for_every_format() -> None:
    assert (
        problem_at(isvc_with("xgboost: {}"), "spec.predictor.xgboost.storageUri") == "is required"
    )
    empty = isvc_with("model: {modelFormat: {name: onnx}, storageUri: ''}")
    assert problem_at(empty, "spec.predictor.model.storageUri") == "must not be empty"
    numeric = isvc_with("model: {modelFormat: {name: onnx}, storageUri: 12}")
    assert (
        problem_at(numeric, "spec.predictor.model.storageUri")
        == "must be a string, got number 12 (quote it)"
    )


def test_format_version_must_be_a_string() -> None:
    text = isvc_with("model: {modelFormat: {name: sklearn, version: 1}, storageUri: gs://b/m}")
    assert problem_at(text, "spec.predictor.model.modelFormat.version") == (
        "must be a string, got number 1 (quote it)"
    )


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("minReplicas", "-1", "must be at least 0, got -1"),
        ("minReplicas", "abc", "must be an integer, got string 'abc'"),
        ("minReplicas", "true", "must be an integer, got boolean true"),
        ("minReplicas", "1.5", "must be an integer, got number 1.5"),
        ("minReplicas", "4294967296", "must be at most 2147483647, got 4294967296"),
        ("maxReplicas", "-2", "must be at least 0, got -2"),
        ("canaryTrafficPercent", "101", "must be between 0 and 100, got 101"),
        ("canaryTrafficPercent", "-1", "must be between 0 and 100, got -1"),
        ("containerConcurrency", "-1", "must be at least 0, got -1"),
        ("scaleTarget", "0", "must be at least 1, got 0"),
        ("timeout", "0", "must be at least 1, got 0"),
        ("timeout", "[1]", "must be an integer, got a list"),
        ("scaleMetric", "latency", "must be one of concurrency, rps, cpu, memory, got 'latency'"),
    ],
)
def test_component_field_ranges_and_types(field: str, value: str, message: str) -> None:
    assert problem_at(model(f"{field}: {value}"), f"spec.predictor.{field}") == message


def test_integral_floats_are_integers() -> None:
    assert one(model("minReplicas: 2.0")).predictor.min_replicas == 2


def test_max_replicas_must_not_be_below_min_replicas() -> None:
    text = model("minReplicas: 3\nmaxReplicas: 2")
    assert problem_at(text, "spec.predictor.maxReplicas") == (
        "must be at least minReplicas (3), or 0 for no limit; got 2"
    )
    # KServe's default minReplicas is 1; maxReplicas 0 means no upper bound.
    assert one(model("minReplicas: 5\nmaxReplicas: 0")).predictor.max_replicas == 0
    assert one(model("maxReplicas: 1")).predictor.min_replicas == 1


def test_protocol_version_enum() -> None:
    text = isvc_with("sklearn: {storageUri: gs://b/m, protocolVersion: v3}")
    assert problem_at(text, "spec.predictor.sklearn.protocolVersion") == (
        "must be one of v1, v2, grpc-v2, got 'v3'"
    )
    grpc_v1 = isvc_with("sklearn: {storageUri: gs://b/m, protocolVersion: grpc-v1}")
    assert "grpc-v1 is not served" in problem_at(grpc_v1, "spec.predictor.sklearn.protocolVersion")


def test_logger_and_batcher_validation() -> None:
    assert problem_at(model("logger: {mode: everything}"), "spec.predictor.logger.mode") == (
        "must be one of all, request, response, got 'everything'"
    )
    assert problem_at(model("logger: on"), "spec.predictor.logger") == (
        "must be a mapping, got boolean true"
    )
    assert problem_at(
        model("batcher: {maxBatchSize: 0}"), "spec.predictor.batcher.maxBatchSize"
    ) == ("must be at least 1, got 0")
    assert problem_at(model("batcher: {maxLatency: -5}"), "spec.predictor.batcher.maxLatency") == (
        "must be at least 1, got -5"
    )


def test_env_and_args_validation() -> None:
    def body(env: str) -> str:
        return isvc_with(
            f"""
            model:
              modelFormat: {{name: sklearn}}
              storageUri: gs://b/m
              env: {env}
            """
        )

    assert problem_at(body("[{name: A, value: 1}]"), "spec.predictor.model.env[0].value") == (
        "must be a string, got number 1 (quote it)"
    )
    assert problem_at(body("[{value: x}]"), "spec.predictor.model.env[0].name") == "is required"
    assert problem_at(body("{A: b}"), "spec.predictor.model.env") == "must be a list, got a mapping"
    # pkg/validation/env_policy.go blocks PYTHONPATH; modelport's own settings are blocked too.
    assert problem_at(
        body("[{name: PYTHONPATH, value: /x}]"), "spec.predictor.model.env[0].name"
    ) == ("setting PYTHONPATH is not allowed for security reasons")
    assert "not allowed" in problem_at(
        body("[{name: MODELPORT_ADMIN_PASSWORD, value: x}]"), "spec.predictor.model.env[0].name"
    )
    assert problem_at(body("[{name: 'A=B', value: x}]"), "spec.predictor.model.env[0].name") == (
        "must not contain '='"
    )
    args = isvc_with("model: {modelFormat: {name: sklearn}, storageUri: gs://b/m, args: [1]}")
    assert problem_at(args, "spec.predictor.model.args[0]") == "must be a string, got number 1"


def test_name_inside_model_is_refused_as_kserve_does() -> None:
    text = isvc_with("model: {name: foo, modelFormat: {name: sklearn}, storageUri: gs://b/m}")
    assert problem_at(text, "spec.predictor.model.name") == (
        "the 'name' field is not allowed in standard predictor"
    )


def test_unsupported_kserve_features_are_problems_not_silently_dropped() -> None:
    collocated = isvc_with(
        """
        containers:
          - name: kserve-container
            image: pytorch/torchserve:0.9.0-cpu
            env: [{name: STORAGE_URI, value: gs://b/m.py}]
          - name: transformer-container
            image: kserve/image-transformer:latest
        """
    )
    assert "collocated" in problem_at(collocated, "spec.predictor.containers[1]")
    uris = isvc_with(
        "model: {modelFormat: {name: sklearn}, storageUri: gs://b/m}\nstorageUris: [{uri: gs://b/x}]"
    )
    assert "multiple storage URIs" in problem_at(uris, "spec.predictor.storageUris")
    canary = model() + "  canary:\n    - predictor: {name: c}\n"
    assert "spec.predictor.canaryTrafficPercent" in problem_at(canary, "spec.canary")
    secret = isvc_with(
        "model: {modelFormat: {name: sklearn}, storageUri: gs://b/m, confidential: {enabled: true}}"
    )
    assert "confidential" in problem_at(secret, "spec.predictor.model.confidential")


def test_transformer_shape_problems() -> None:
    both = model() + "  transformer:\n    model: {storageUri: /t.py}\n    containers: [{name: t}]\n"
    assert problem_at(both, "spec.transformer") == "give either containers or model, not both"
    neither = model() + "  transformer: {minReplicas: 1}\n"
    assert problem_at(neither, "spec.transformer").startswith("needs containers")
    not_custom = (
        model() + "  transformer:\n    model: {modelFormat: {name: sklearn}, storageUri: /t}\n"
    )
    assert "custom model" in problem_at(not_custom, "spec.transformer.model.modelFormat.name")
    bad_scale = model() + "  transformer:\n    minReplicas: -1\n    model: {storageUri: /t.py}\n"
    assert problem_at(bad_scale, "spec.transformer.minReplicas") == "must be at least 0, got -1"


def test_autoscaler_class_annotation() -> None:
    text = doc(SKLEARN_NEW).replace(
        'name: "sklearn-iris"',
        'name: "sklearn-iris"\n  annotations: {serving.kserve.io/autoscalerClass: magic}',
    )
    message = problem_at(text, "metadata.annotations[serving.kserve.io/autoscalerClass]")
    assert message.startswith("[magic] is not a supported autoscaler class type")


def test_labels_must_be_strings() -> None:
    text = doc(SKLEARN_NEW).replace(
        'name: "sklearn-iris"', 'name: "sklearn-iris"\n  labels: {v: 1}'
    )
    assert problem_at(text, "metadata.labels.v") == "must be a string, got number 1 (quote it)"


def test_kind_and_api_version() -> None:
    base = doc(SKLEARN_NEW)
    assert problem_at(
        base.replace("serving.kserve.io/v1beta1", "serving.kubeflow.org/v1alpha2"), "apiVersion"
    ) == ("InferenceService must be serving.kserve.io/v1beta1, got 'serving.kubeflow.org/v1alpha2'")
    assert problem_at(base.replace('"InferenceService"', "Deployment"), "kind").startswith(
        "unsupported kind 'Deployment'"
    )
    assert problem_at("apiVersion: v1\nmetadata: {name: a}\n", "kind") == "is required"


def test_problems_in_a_stream_name_their_document() -> None:
    text = doc(SKLEARN_NEW) + "---\n" + doc(SKLEARN_NEW).replace("storageUri", "storageURI")
    found = problems(text)
    assert [p.path for p in found] == ["documents[1].spec.predictor.model.storageUri"]
    assert "documents[1].spec.predictor.model.storageURI" not in str(found)
    [problem] = problems(doc(SKLEARN_NEW) + "---\n- not a mapping\n")
    assert problem.path == "documents[1]"


# ---- hostile input -----------------------------------------------------------------------


def billion_laughs() -> str:
    text = 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n'
    previous = "a"
    for name in "bcdefghi":
        text += f"{name}: &{name} [" + ",".join([f"*{previous}"] * 9) + "]\n"
        previous = name
    return text


@pytest.mark.parametrize(
    ("text", "path", "fragment"),
    [
        (billion_laughs(), "input", "once YAML aliases are expanded"),
        (
            "a: &a x" + "y" * 400_000 + "\nb: [" + ",".join(["*a"] * 20) + "]\n",
            "input",
            "characters once",
        ),
        ("a: &a {x: 1}\nb:\n  <<: *a\n", "line 3, column 3", "merge keys"),
        ("a: &a [*a]\n", None, "nested too deeply"),
        ("a: " + "[" * 5000 + "]" * 5000, None, "nest"),
        ("[" * 200 + "]" * 200, None, "nested too deeply"),
        ("[" * 100_000 + "]" * 100_000, "input", "nested too deeply"),
        ('{"a":' * 100_000 + "1" + "}" * 100_000, "input", "nested too deeply"),
        ("- " * 900 + "x", None, "nested too deeply"),
        ("a: " + "1" * 5000, "input", "too many digits"),
        ('{"a": ' + "1" * 5000 + "}", "input", "too many digits"),
        ("- 1\n- 2\n", "", "must be a mapping"),
        ("just a string", "", "must be a mapping"),
        ("1: a\n", "1", "keys must be strings"),
        ("? [a, b]\n: c\n", "line 1, column 3", "unhashable"),
        ("a: 1\na: 2\n", "line 2, column 1", "duplicate key 'a'"),
        ('{"a": 1, "a": 2}', "input", "duplicate key 'a'"),
        ("a: b: c\n", "line 1, column 5", "mapping values are not allowed"),
        ("a: [1, 2\n", "line 2, column 1", "expected ',' or ']'"),
        ('{"apiVersion": "v1",, }', "line 1, column 21", "Expecting property name"),
        (
            "a: !!python/object/apply:os.system ['true']\n",
            "line 1, column 4",
            "could not determine a constructor",
        ),
        ("a: !!binary aGVsbG8=\n", "a", "holds a bytes"),
        ("a: !!set {x, y}\n", "a", "holds a set"),
        ("a: \x00\n", "input", "control characters"),
        ("a: \ud800\n", "input", "not valid Unicode"),
    ],
)
def test_hostile_input_is_a_spec_error(text: str, path: str | None, fragment: str) -> None:
    started = time.monotonic()
    found = problems(text)
    assert time.monotonic() - started < 5
    assert len(found) == 1
    if path is not None:
        assert found[0].path == path
    assert fragment in found[0].message


def test_oversized_input() -> None:
    big = "a: " + "x" * MAX_INPUT_BYTES
    for text in (big, big.encode()):
        [problem] = problems(text)
        assert problem == Problem("input", f"is larger than the limit of {MAX_INPUT_BYTES} bytes")
    # Characters beyond ASCII count in bytes.
    [problem] = problems("a: " + "é" * (MAX_INPUT_BYTES // 2))
    assert problem.path == "input"


def test_invalid_utf8_bytes() -> None:
    [problem] = problems(b"a: \xff\xfe\n")
    assert problem.path == "input"
    assert problem.message.startswith("is not UTF-8 text")


def test_parse_document_guards_its_input_too() -> None:
    cyclic: dict = {"apiVersion": "serving.kserve.io/v1beta1", "kind": "InferenceService"}
    cyclic["metadata"] = cyclic
    with pytest.raises(SpecError, match="nested too deeply"):
        parse_document(cyclic)
    with pytest.raises(SpecError, match="keys must be strings"):
        parse_document({"apiVersion": "v1", 1: 2})  # type: ignore[dict-item]
    with pytest.raises(SpecError, match="must be a mapping"):
        parse_document(["not", "a", "dict"])  # type: ignore[arg-type]


def test_empty_input_has_no_objects() -> None:
    assert parse_documents("") == []
    assert parse_documents("---\n---\n# nothing\n") == []


# ---- revisions ---------------------------------------------------------------------------


BASE = vector("revision-base.yaml")


def key_after(old: str, new: str) -> str:
    text = doc(BASE)
    assert old in text
    return one(text.replace(old, new, 1)).revision_key()


def test_revision_key_is_a_stable_sha256() -> None:
    key = one(BASE).revision_key()
    assert len(key) == 64 and int(key, 16) >= 0
    assert one(BASE).revision_key() == key
    # Key order and file format do not matter.
    assert (
        parse_documents(json.dumps(yaml.safe_load(doc(BASE)), sort_keys=True))[0].revision_key()
        == key
    )


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("storageUri: gs://b/m1", "storageUri: gs://b/m2"),
        ("modelFormat: {name: sklearn}", "modelFormat: {name: sklearn, version: '1'}"),
        ("storageUri: gs://b/m1", "storageUri: gs://b/m1\n      runtime: kserve-mlserver"),
        ("storageUri: gs://b/m1", "storageUri: gs://b/m1\n      protocolVersion: v2"),
        ("storageUri: gs://b/m1", "storageUri: gs://b/m1\n      args: [--x]"),
        ("storageUri: gs://b/m1", "storageUri: gs://b/m1\n      env: [{name: A, value: b}]"),
        ("minReplicas: 1", "minReplicas: 1\n    containerConcurrency: 2"),
        ("minReplicas: 1", "minReplicas: 1\n    timeout: 30"),
        ("minReplicas: 1", "minReplicas: 1\n    batcher: {maxBatchSize: 8}"),
        ("minReplicas: 1", "minReplicas: 1\n    logger: {mode: all}"),
        ("/t1.py", "/t2.py"),
        ("  transformer:\n    model: {storageUri: /t1.py}\n", ""),
    ],
)
def test_revision_key_changes_with_what_makes_a_revision(old: str, new: str) -> None:
    assert key_after(old, new) != one(BASE).revision_key()


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("minReplicas: 1", "minReplicas: 0"),
        ("minReplicas: 1", "minReplicas: 1\n    maxReplicas: 9"),
        ("minReplicas: 1", "minReplicas: 1\n    canaryTrafficPercent: 20"),
        ("minReplicas: 1", "minReplicas: 1\n    scaleTarget: 5\n    scaleMetric: rps"),
        ("name: rev", "name: rev\n  labels: {a: b}\n  annotations: {c: d}"),
        ("storageUri: gs://b/m1", "storageUri: gs://b/m1\n      resources: {limits: {cpu: '2'}}"),
        ("model: {storageUri: /t1.py}", "minReplicas: 3\n    model: {storageUri: /t1.py}"),
    ],
)
def test_revision_key_ignores_scaling_traffic_and_labels(old: str, new: str) -> None:
    assert key_after(old, new) == one(BASE).revision_key()


# ---- ServingRuntime documents ------------------------------------------------------------


RUNTIME_DOC = vector("serving-runtime-xgboost.yaml")


def runtime(text: str, namespace: str = "default") -> ServingRuntime:
    [obj] = parse_documents(doc(text), namespace)
    assert isinstance(obj, ServingRuntime)
    return obj


def test_serving_runtime_document() -> None:
    rt = runtime(RUNTIME_DOC)
    assert (rt.name, rt.namespace, rt.disabled, rt.multi_model) == (
        "my-runtime",
        "team-a",
        False,
        False,
    )
    assert [(f.name, f.version, f.auto_select, f.priority) for f in rt.supported_formats] == [
        ("xgboost", "2", True, 5),
        ("mlflow", "1", False, None),
    ]
    assert rt.protocol_versions == ["v1", "v2"]
    assert rt.server_format == "xgboost"
    assert rt.env == {"OMP_NUM_THREADS": "2"}
    assert rt.args == ["--model_name={{.Name}}"]
    assert sorted(rt.ignored) == sorted(
        [
            "spec.annotations",
            "spec.containers[0].image",
            "spec.containers[0].args",
            "spec.containers[0].resources",
            "spec.containers[1]",
        ]
    )
    assert rt.document == yaml.safe_load(doc(RUNTIME_DOC))


def test_cluster_serving_runtime_has_no_namespace_and_v1beta1_is_accepted() -> None:
    text = (
        doc(RUNTIME_DOC)
        .replace("kind: ServingRuntime", "kind: ClusterServingRuntime")
        .replace("v1alpha1", "v1beta1")
    )
    rt = runtime(text)
    assert rt.namespace is None
    assert "metadata.namespace" in rt.ignored


def test_runtime_namespace_defaults() -> None:
    text = doc(RUNTIME_DOC).replace("  namespace: team-a\n", "")
    assert runtime(text, "team-b").namespace == "team-b"


def test_runtime_without_a_servable_format() -> None:
    text = doc(RUNTIME_DOC).replace("name: XGBoost", "name: tensorflow")
    message = problem_at(text, "spec.supportedModelFormats")
    assert message.startswith("no format modelport serves (given: mlflow, tensorflow)")


def test_torchscript_runtime_serves_pytorch() -> None:
    text = doc(RUNTIME_DOC).replace("name: XGBoost", "name: torchscript")
    assert runtime(text).server_format == "pytorch"


def test_runtime_validation_problems() -> None:
    text = (
        doc(RUNTIME_DOC)
        .replace("priority: 5", "priority: 0")
        .replace("autoSelect: true", "autoSelect: 'yes'")
        .replace("protocolVersions: [v1, v2]", "protocolVersions: [v1, v9]")
        .replace("name: my-runtime", "name: My_Runtime")
    )
    found = {p.path: p.message for p in problems(text)}
    assert found == {
        "metadata.name": found["metadata.name"],
        "spec.supportedModelFormats[0].priority": "must be at least 1, got 0",
        "spec.supportedModelFormats[0].autoSelect": "must be true or false, got string 'yes'",
        "spec.protocolVersions[1]": "must be one of v1, v2, grpc-v1, grpc-v2, got 'v9'",
    }
    assert "'My_Runtime' is invalid" in found["metadata.name"]


def test_runtime_same_format_with_different_priorities() -> None:
    text = doc(RUNTIME_DOC).replace(
        '    - name: mlflow\n      version: "1"\n',
        '    - name: xgboost\n      version: "1"\n      autoSelect: true\n      priority: 3\n',
    )
    # servingruntime_webhook.go validateModelFormatPrioritySame
    assert problem_at(text, "spec.supportedModelFormats[1].priority") == (
        "different priorities assigned for the model format xgboost"
    )
    disabled = text.replace("protocolVersions:", "disabled: true\n  protocolVersions:")
    assert runtime(disabled).disabled is True


def test_runtime_api_version() -> None:
    text = doc(RUNTIME_DOC).replace("serving.kserve.io/v1alpha1", "serving.kserve.io/v1")
    assert problem_at(text, "apiVersion") == (
        "ServingRuntime must be serving.kserve.io/v1alpha1, got 'serving.kserve.io/v1'"
    )


def test_multi_node_runtime_is_marked() -> None:
    text = doc(RUNTIME_DOC).replace(
        "  protocolVersions:", "  workerSpec: {containers: []}\n  protocolVersions:"
    )
    rt = runtime(text)
    assert rt.multi_node is True
    assert "spec.workerSpec" in rt.ignored
