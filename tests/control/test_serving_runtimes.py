"""Built-in runtimes and KServe's runtime selection (modelport.control.serving_runtimes)."""

from __future__ import annotations

import textwrap

import pytest

from modelport.control.serving_runtimes import (
    BUILTIN_RUNTIMES,
    ServingRuntime,
    SupportedFormat,
    effective_protocol,
    priority_conflicts,
    resolve_runtime,
)
from modelport.control.spec import (
    Component,
    InferenceService,
    SpecError,
    parse_document,
    parse_documents,
)

BUILTINS = {rt.name: rt for rt in BUILTIN_RUNTIMES}


def predictor(body: str, namespace: str = "ns") -> Component:
    text = (
        "apiVersion: serving.kserve.io/v1beta1\nkind: InferenceService\n"
        f"metadata: {{name: m, namespace: {namespace}}}\nspec:\n  predictor:\n"
        + textwrap.indent(textwrap.dedent(body).strip(), "    ")
        + "\n"
    )
    [isvc] = parse_documents(text)
    assert isinstance(isvc, InferenceService)
    return isvc.predictor


def model(
    fmt: str, *, version: str | None = None, protocol: str | None = None, runtime: str | None = None
) -> Component:
    lines = [
        f"model:\n  modelFormat: {{name: {fmt}"
        + (f", version: '{version}'" if version else "")
        + "}"
    ]
    if protocol:
        lines.append(f"  protocolVersion: {protocol}")
    if runtime:
        lines.append(f"  runtime: {runtime}")
    lines.append("  storageUri: gs://b/m")
    return predictor("\n".join(lines))


def user_runtime(
    name: str,
    formats: list[SupportedFormat],
    *,
    namespace: str | None = None,
    protocols: tuple[str, ...] = ("v1", "v2"),
    disabled: bool = False,
    created_at: float | None = None,
    multi_model: bool = False,
) -> ServingRuntime:
    return ServingRuntime(
        name=name,
        namespace=namespace,
        supported_formats=formats,
        protocol_versions=list(protocols),
        disabled=disabled,
        server_format="sklearn",
        created_at=created_at,
        multi_model=multi_model,
    )


def sklearn(
    priority: int | None = None, *, auto: bool = True, version: str | None = "1"
) -> SupportedFormat:
    return SupportedFormat("sklearn", version, auto, priority)


def resolve_error(
    component: Component, runtimes: list[ServingRuntime], path: str = "spec.predictor"
) -> SpecError:
    with pytest.raises(SpecError) as info:
        resolve_runtime("ns", component, runtimes, path=path)
    return info.value


# ---- built-ins ---------------------------------------------------------------------------


def test_builtins_mirror_kserve_config_runtimes() -> None:
    assert list(BUILTINS) == [
        "kserve-sklearnserver",
        "kserve-xgbserver",
        "kserve-lgbserver",
        "kserve-mlserver",
        "kserve-predictiveserver",
        "kserve-tritonserver",
        "kserve-torchserve",
        "modelport-custom",
        "kserve-huggingfaceserver",
    ]
    assert all(rt.namespace is None and not rt.disabled for rt in BUILTIN_RUNTIMES)

    def formats(name: str) -> list[tuple[str, str | None, bool, int | None]]:
        return [
            (f.name, f.version, f.auto_select, f.priority) for f in BUILTINS[name].supported_formats
        ]

    assert formats("kserve-sklearnserver") == [("sklearn", "1", True, 1)]
    assert formats("kserve-xgbserver") == [("xgboost", "2", True, 1)]
    assert formats("kserve-lgbserver") == [("lightgbm", "4", True, 1)]
    assert formats("kserve-mlserver")[:2] == [("sklearn", "0", True, 2), ("sklearn", "1", True, 2)]
    assert ("mlflow", "2", True, 1) in formats("kserve-mlserver")
    assert formats("kserve-torchserve") == [("pytorch", "1", True, 2)]
    assert formats("kserve-huggingfaceserver") == [("huggingface", "1", True, 1)]
    assert ("pytorch", "1", False, None) in formats("kserve-tritonserver")
    assert ("onnx", "1", True, 1) in formats("kserve-tritonserver")
    assert all(not f[2] for f in formats("kserve-predictiveserver"))
    assert BUILTINS["kserve-mlserver"].protocol_versions == ["v2"]
    assert BUILTINS["kserve-tritonserver"].protocol_versions == ["v2", "grpc-v2"]
    assert BUILTINS["kserve-torchserve"].protocol_versions == ["v1", "v2", "grpc-v2"]
    assert BUILTINS["modelport-custom"].server_format == "custom"


def test_builtin_documents_are_valid_cluster_serving_runtimes() -> None:
    from modelport.runtimes import FORMATS

    for rt in BUILTIN_RUNTIMES:
        again = parse_document(rt.document)
        assert again == rt
        assert rt.document["kind"] == "ClusterServingRuntime"
        assert rt.server_format in FORMATS


# ---- automatic selection -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "name", "server_format"),
    [
        ("sklearn: {storageUri: gs://b/m}", "kserve-sklearnserver", "sklearn"),
        # v2: kserve-mlserver (priority 2) wins over kserve-sklearnserver (priority 1).
        ("sklearn: {storageUri: gs://b/m, protocolVersion: v2}", "kserve-mlserver", "sklearn"),
        ("xgboost: {storageUri: gs://b/m}", "kserve-xgbserver", "xgboost"),
        ("xgboost: {storageUri: gs://b/m, protocolVersion: v2}", "kserve-mlserver", "xgboost"),
        ("lightgbm: {storageUri: gs://b/m}", "kserve-lgbserver", "lightgbm"),
        ("lightgbm: {storageUri: gs://b/m, protocolVersion: v2}", "kserve-mlserver", "lightgbm"),
        # The onnx short form defaults to v2, which kserve-tritonserver serves.
        ("onnx: {storageUri: gs://b/m}", "kserve-tritonserver", "onnx"),
        # kserve-tritonserver lists pytorch without autoSelect.
        ("pytorch: {storageUri: gs://b/m, protocolVersion: v2}", "kserve-torchserve", "pytorch"),
        (
            "containers: [{name: kserve-container, image: x, env: [{name: STORAGE_URI, value: /m.py}]}]",
            "modelport-custom",
            "custom",
        ),
    ],
)
def test_auto_selection_of_builtins(body: str, name: str, server_format: str) -> None:
    rt = resolve_runtime("ns", predictor(body), BUILTIN_RUNTIMES)
    assert (rt.name, rt.server_format) == (name, server_format)


def test_chosen_runtime_is_a_copy_specialised_for_the_format() -> None:
    rt = resolve_runtime("ns", model("xgboost", protocol="v2"), BUILTIN_RUNTIMES)
    assert rt.server_format == "xgboost"
    assert BUILTINS["kserve-mlserver"].server_format == "sklearn"


def test_new_style_onnx_needs_v2_as_on_kserve() -> None:
    error = resolve_error(model("onnx"), BUILTIN_RUNTIMES)
    [problem] = error.problems
    assert problem.path == "spec.predictor.model.modelFormat"
    assert problem.message.startswith("no runtime supports modelFormat onnx with protocol v1")
    assert "kserve-tritonserver (versions 1; protocols v2, grpc-v2)" in problem.message
    assert (
        resolve_runtime("ns", model("onnx", protocol="v2"), BUILTIN_RUNTIMES).name
        == "kserve-tritonserver"
    )


@pytest.mark.parametrize(
    ("version", "protocol", "expected"),
    [
        ("1", None, "kserve-sklearnserver"),
        ("1", "v2", "kserve-mlserver"),
        ("0", "v2", "kserve-mlserver"),
        ("0", None, None),  # kserve-sklearnserver serves version 1 only; mlserver is v2 only
        ("1.3", None, None),  # versions compare as exact strings, as KServe's labels do
        ("2", "v2", None),
    ],
)
def test_format_version_matching(version: str, protocol: str | None, expected: str | None) -> None:
    component = model("sklearn", version=version, protocol=protocol)
    if expected is None:
        message = resolve_error(component, BUILTIN_RUNTIMES).problems[0].message
        assert message.startswith(f"no runtime supports modelFormat sklearn (version {version})")
    else:
        assert resolve_runtime("ns", component, BUILTIN_RUNTIMES).name == expected


def test_protocol_mismatch_for_auto_selection() -> None:
    # No built-in lists grpc-v2 for sklearn (config/runtimes: v1, v2 / v2).
    message = (
        resolve_error(model("sklearn", protocol="grpc-v2"), BUILTIN_RUNTIMES).problems[0].message
    )
    assert message.startswith("no runtime supports modelFormat sklearn with protocol grpc-v2")
    runtimes = [user_runtime("grpc-sk", [sklearn(1)], protocols=("grpc-v2",)), *BUILTIN_RUNTIMES]
    assert resolve_runtime("ns", model("sklearn", protocol="grpc-v2"), runtimes).name == "grpc-sk"


def test_highest_priority_wins_and_no_priority_comes_last() -> None:
    runtimes = [
        user_runtime("none", [sklearn(None)]),
        user_runtime("five", [sklearn(5)]),
        *BUILTIN_RUNTIMES,
    ]
    assert resolve_runtime("ns", model("sklearn"), runtimes).name == "five"
    runtimes = [user_runtime("none", [sklearn(None)]), *BUILTIN_RUNTIMES]
    assert resolve_runtime("ns", model("sklearn"), runtimes).name == "kserve-sklearnserver"


def test_auto_select_false_is_only_used_when_named() -> None:
    manual = user_runtime("manual", [sklearn(100, auto=False)])
    runtimes = [manual, *BUILTIN_RUNTIMES]
    assert resolve_runtime("ns", model("sklearn"), runtimes).name == "kserve-sklearnserver"
    assert resolve_runtime("ns", model("sklearn", runtime="manual"), runtimes).name == "manual"
    assert resolve_runtime(
        "ns", model("sklearn", runtime="kserve-predictiveserver"), runtimes
    ).name == ("kserve-predictiveserver")


def test_disabled_and_multi_model_runtimes_are_skipped() -> None:
    runtimes = [
        user_runtime("off", [sklearn(9)], namespace="ns", disabled=True),
        user_runtime("mesh", [sklearn(9)], namespace="ns", multi_model=True),
        *BUILTIN_RUNTIMES,
    ]
    assert resolve_runtime("ns", model("sklearn"), runtimes).name == "kserve-sklearnserver"
    only_disabled = [user_runtime("off", [sklearn(9)], disabled=True)]
    message = resolve_error(model("sklearn"), only_disabled).problems[0].message
    assert "off (versions 1; protocols v1, v2, disabled)" in message


def test_namespaced_runtimes_come_before_cluster_runtimes() -> None:
    runtimes = [
        user_runtime("cluster-ten", [sklearn(10)]),
        user_runtime("local-one", [sklearn(1)], namespace="ns"),
        user_runtime("elsewhere", [sklearn(50)], namespace="other"),
        *BUILTIN_RUNTIMES,
    ]
    assert resolve_runtime("ns", model("sklearn"), runtimes).name == "local-one"
    assert resolve_runtime(
        "other", predictor("sklearn: {storageUri: gs://b/m}", "other"), runtimes
    ).name == ("elsewhere")
    assert resolve_runtime("third", model("sklearn"), runtimes).name == "cluster-ten"


def test_ties_break_by_protocol_then_newest_then_name() -> None:
    def pick(*runtimes: ServingRuntime) -> str:
        return resolve_runtime("ns", model("sklearn", protocol="v2"), list(runtimes)).name

    # sortServingRuntimeList: a runtime whose lowest protocol is v1 sorts before a v2-only one.
    assert (
        pick(
            user_runtime("a-v2", [sklearn(3)], protocols=("v2",)),
            user_runtime("b-v1", [sklearn(3)]),
        )
        == "b-v1"
    )
    # Then the newest first...
    old = user_runtime("a-old", [sklearn(3)], created_at=100.0)
    new = user_runtime("b-new", [sklearn(3)], created_at=200.0)
    assert pick(old, new) == "b-new"
    # ...then by name.
    assert pick(user_runtime("zeta", [sklearn(3)]), user_runtime("alpha", [sklearn(3)])) == "alpha"


def test_priority_is_read_from_the_first_entry_of_the_format() -> None:
    # ServingRuntimeSpec.GetPriority returns the first entry with the format's name, whatever
    # its version or autoSelect.
    odd = user_runtime("odd", [sklearn(9, auto=False, version="0"), sklearn(1)])
    assert resolve_runtime("ns", model("sklearn"), [odd, *BUILTIN_RUNTIMES]).name == "odd"


def test_runtime_without_protocols_supports_all() -> None:
    any_protocol = user_runtime("any", [sklearn(7)], protocols=())
    assert resolve_runtime("ns", model("sklearn", protocol="grpc-v2"), [any_protocol]).name == "any"


def test_first_of_a_name_wins_so_users_override_builtins() -> None:
    override = user_runtime("kserve-sklearnserver", [sklearn(1)], disabled=True)
    runtimes = [override, *BUILTIN_RUNTIMES]
    # The built-in of that name no longer serves sklearn over v1, and mlserver is v2 only.
    message = resolve_error(model("sklearn"), runtimes).problems[0].message
    assert "kserve-sklearnserver (versions 1; protocols v1, v2, disabled)" in message
    assert resolve_runtime("ns", model("sklearn"), BUILTIN_RUNTIMES).name == "kserve-sklearnserver"
    error = resolve_error(model("sklearn", runtime="kserve-sklearnserver"), runtimes)
    assert error.problems[0].message == "runtime kserve-sklearnserver is disabled"


def test_transformer_path_in_problems() -> None:
    [isvc] = parse_documents(
        "apiVersion: serving.kserve.io/v1beta1\nkind: InferenceService\nmetadata: {name: t}\n"
        "spec:\n  predictor: {sklearn: {storageUri: gs://b/m}}\n"
        "  transformer: {model: {storageUri: /t.py}}\n"
    )
    assert isinstance(isvc, InferenceService) and isvc.transformer is not None
    assert resolve_runtime(
        "default", isvc.transformer, BUILTIN_RUNTIMES, path="spec.transformer"
    ).name == ("modelport-custom")
    error = resolve_error(isvc.transformer, [], path="spec.transformer")
    assert error.problems[0].path == "spec.transformer.model.modelFormat"


# ---- explicit runtime --------------------------------------------------------------------


def test_explicit_runtime_must_exist() -> None:
    error = resolve_error(model("sklearn", runtime="nope"), BUILTIN_RUNTIMES)
    assert [(p.path, p.message) for p in error.problems] == [
        (
            "spec.predictor.model.runtime",
            "no ServingRuntime in namespace ns or ClusterServingRuntime named nope",
        )
    ]


def test_explicit_runtime_namespace_first_then_cluster() -> None:
    local = user_runtime("shared", [sklearn(None)], namespace="ns")
    cluster = user_runtime("shared", [SupportedFormat("xgboost", "2", True, None)])
    chosen = resolve_runtime("ns", model("sklearn", runtime="shared"), [cluster, local])
    assert chosen.namespace == "ns"
    # In a namespace without its own "shared", the cluster runtime is found (and lacks sklearn).
    other = predictor(
        "model: {modelFormat: {name: sklearn}, runtime: shared, storageUri: gs://b/m}", "other"
    )
    with pytest.raises(SpecError, match="runtime shared does not support modelFormat sklearn"):
        resolve_runtime("other", other, [cluster, local])


def test_explicit_runtime_format_and_version_mismatch() -> None:
    error = resolve_error(model("sklearn", runtime="kserve-xgbserver"), BUILTIN_RUNTIMES)
    assert error.problems[0].message == (
        "runtime kserve-xgbserver does not support modelFormat sklearn (it supports xgboost 2)"
    )
    error = resolve_error(
        model("xgboost", version="1", runtime="kserve-xgbserver"), BUILTIN_RUNTIMES
    )
    assert "does not support modelFormat xgboost version 1" in error.problems[0].message


def test_explicit_runtime_protocol_mismatch_and_all_problems_reported() -> None:
    error = resolve_error(
        model("xgboost", protocol="grpc-v2", runtime="kserve-sklearnserver"), BUILTIN_RUNTIMES
    )
    assert [p.path for p in error.problems] == ["spec.predictor.model.runtime"] * 2
    assert error.problems[0].message == (
        "runtime kserve-sklearnserver does not support protocol grpc-v2 (it supports v1, v2)"
    )
    assert "does not support modelFormat xgboost" in error.problems[1].message


def test_explicit_runtime_without_protocol_takes_the_runtimes() -> None:
    # reconcileModel: an unset protocolVersion is not checked against an explicit runtime and
    # becomes the runtime's first protocol.
    component = model("pytorch", runtime="kserve-tritonserver")
    rt = resolve_runtime("ns", component, BUILTIN_RUNTIMES)
    assert (rt.name, rt.server_format) == ("kserve-tritonserver", "pytorch")
    assert component.protocol_version == "v1"
    assert effective_protocol(component, rt) == "v2"
    sk = model("sklearn")
    assert effective_protocol(sk, resolve_runtime("ns", sk, BUILTIN_RUNTIMES)) == "v1"
    requested = model("sklearn", protocol="grpc-v2", runtime="kserve-mlserver")
    assert effective_protocol(requested, BUILTINS["kserve-torchserve"]) == "v2"


def test_user_runtime_document_is_resolved() -> None:
    [rt] = parse_documents(
        textwrap.dedent(
            """
            apiVersion: serving.kserve.io/v1alpha1
            kind: ServingRuntime
            metadata: {name: team-lgb, namespace: ns}
            spec:
              supportedModelFormats:
                - {name: lightgbm, version: "4", autoSelect: true, priority: 3}
              protocolVersions: [v1, v2]
              containers:
                - {name: kserve-container, image: my/lgb}
            """
        )
    )
    assert isinstance(rt, ServingRuntime)
    chosen = resolve_runtime("ns", model("lightgbm"), [rt, *BUILTIN_RUNTIMES])
    assert (chosen.name, chosen.server_format) == ("team-lgb", "lightgbm")


# ---- priority conflicts ------------------------------------------------------------------


def test_priority_conflicts_follow_the_runtime_webhook() -> None:
    clash = user_runtime("mine", [sklearn(1)], protocols=("v1",))
    [problem] = priority_conflicts(clash, BUILTIN_RUNTIMES)
    assert problem.path == "spec.supportedModelFormats[0].priority"
    assert "same priority assigned for the model format sklearn" in problem.message
    assert "kserve-sklearnserver" in problem.message
    assert (
        priority_conflicts(user_runtime("mine", [sklearn(2)], protocols=("v1",)), BUILTIN_RUNTIMES)
        == []
    )
    assert (
        priority_conflicts(user_runtime("mine", [sklearn(1, version="7")]), BUILTIN_RUNTIMES) == []
    )
    assert (
        priority_conflicts(user_runtime("mine", [sklearn(1)], disabled=True), BUILTIN_RUNTIMES)
        == []
    )
    assert (
        priority_conflicts(
            user_runtime("mine", [sklearn(1)], protocols=("grpc-v2",)), BUILTIN_RUNTIMES
        )
        == []
    )
    # Namespaced runtimes are checked against their own namespace only.
    assert (
        priority_conflicts(user_runtime("mine", [sklearn(1)], namespace="ns"), BUILTIN_RUNTIMES)
        == []
    )
    # Re-applying a runtime does not conflict with its stored self.
    assert priority_conflicts(BUILTINS["kserve-sklearnserver"], BUILTIN_RUNTIMES) == []
