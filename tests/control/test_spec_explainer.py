"""spec.explainer: a custom explainer is read as a component; the explainers KServe ships as
images (ART) or removed (Alibi) are refused with the reason; the one-of rule as KServe's."""

from __future__ import annotations

from tests.control.test_spec import model, one, problem_at, problems

CUSTOM = model() + (
    "  explainer:\n"
    "    minReplicas: 2\n"
    "    containers:\n"
    "      - name: kserve-container\n"
    "        image: example/explainer:1\n"
    "        env:\n"
    "          - {name: STORAGE_URI, value: /models/explainer.py}\n"
)


def test_custom_explainer_is_a_custom_component() -> None:
    isvc = one(CUSTOM)
    e = isvc.explainer
    assert e is not None
    assert (e.model_format, e.storage_uri, e.source) == (
        "custom",
        "/models/explainer.py",
        "containers[0]",
    )
    assert e.min_replicas == 2
    assert "spec.explainer.containers[0].image" in isvc.ignored
    assert "spec.explainer" not in isvc.ignored


def test_explainer_model_storage_uri_and_revision_key() -> None:
    with_model = one(model() + "  explainer:\n    model:\n      storageUri: /m/explain.py\n")
    assert with_model.explainer is not None
    assert with_model.explainer.storage_uri == "/m/explain.py"
    # A changed explainer makes a new revision; no explainer keeps the key it had.
    assert with_model.revision_key() != one(CUSTOM).revision_key()
    assert one(model()).explainer is None


def test_alibi_is_refused_as_removed_upstream() -> None:
    text = model() + (
        "  explainer:\n    alibi:\n      type: AnchorTabular\n      storageUri: gs://b/e\n"
    )
    message = problem_at(text, "spec.explainer.alibi")
    assert "removed from KServe in v0.13.0" in message
    assert "explain()" in message


def test_art_is_refused() -> None:
    text = model() + "  explainer:\n    art:\n      type: SquareAttack\n"
    message = problem_at(text, "spec.explainer.art")
    assert "ART explainer" in message and "custom explainer" in message


def test_explainer_without_implementation_or_with_two() -> None:
    empty = problem_at(model() + "  explainer:\n    minReplicas: 1\n", "spec.explainer")
    assert empty.startswith(
        "exactly one of [ART, PodSpec, ComponentExtensionSpec] must be specified in ExplainerSpec"
    )
    both = CUSTOM + "    model:\n      storageUri: /m/e.py\n"
    assert "not both" in problem_at(both, "spec.explainer")


def test_hostile_explainer_env_and_shapes() -> None:
    blocked = CUSTOM + "          - {name: LD_PRELOAD, value: /tmp/evil.so}\n"
    assert any("LD_PRELOAD" in p.message or "LD_PRELOAD" in p.path for p in problems(blocked))
    for body in ("  explainer: 7\n", "  explainer: [1, 2]\n", "  explainer:\n    containers: x\n"):
        assert problems(model() + body)
    no_uri = model() + "  explainer:\n    containers:\n      - name: kserve-container\n"
    assert "STORAGE_URI" in problem_at(no_uri, "spec.explainer.containers[0].env")
