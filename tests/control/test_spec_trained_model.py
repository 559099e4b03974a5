"""TrainedModel documents: KServe's fields and required lists, the webhook's name and storage
URI messages, and hostile shapes refused with the path of the problem."""

from __future__ import annotations

import textwrap

import pytest

from modelport.control.spec import SpecError, parse_documents
from modelport.control.spec.trained_model import TrainedModel

# KServe's docs/samples/multimodelserving/sklearn/trainedmodels.yaml, as given there.
SAMPLE = textwrap.dedent(
    """
    apiVersion: "serving.kserve.io/v1alpha1"
    kind: "TrainedModel"
    metadata:
      name: "model1-sklearn"
    spec:
      inferenceService: "sklearn-iris-example"
      model:
        storageUri: "gs://kfserving-examples/models/sklearn/1.0/model"
        framework: "sklearn"
        memory: "256Mi"
    """
)


def one(text: str) -> TrainedModel:
    (obj,) = parse_documents(text, "team")
    assert isinstance(obj, TrainedModel)
    return obj


def messages(text: str) -> dict[str, str]:
    with pytest.raises(SpecError) as caught:
        parse_documents(text, "team")
    return {p.path: p.message for p in caught.value.problems}


def test_kserve_sample() -> None:
    tm = one(SAMPLE)
    assert (tm.name, tm.namespace, tm.inference_service) == (
        "model1-sklearn",
        "team",
        "sklearn-iris-example",
    )
    assert (tm.framework, tm.memory) == ("sklearn", 256 * 2**20)
    assert tm.storage_uri.startswith("gs://")


def test_required_fields() -> None:
    found = messages(SAMPLE.replace('  inferenceService: "sklearn-iris-example"\n', ""))
    assert found == {"spec.inferenceService": "is required"}
    found = messages(SAMPLE.replace('    memory: "256Mi"\n', ""))
    assert found == {"spec.model.memory": "is required"}


def test_webhook_messages() -> None:
    name = messages(SAMPLE.replace('name: "model1-sklearn"', 'name: "bad.name"'))
    assert name["metadata.name"].startswith('the Trained Model "bad.name" is invalid')
    assert "'^[a-zA-Z0-9_-]+$'" in name["metadata.name"]
    uri = messages(SAMPLE.replace("gs://kfserving", "abfs://kfserving"))
    assert uri["spec.model.storageUri"].startswith(
        'the Trained Model "model1-sklearn" storageUri field is invalid. The storage uri must '
        "start with one of the prefixes: s3://"
    )


def test_parent_is_a_name_in_the_same_namespace() -> None:
    for parent in ("other/sklearn-iris", "sklearn-iris.other", "UPPER"):
        found = messages(SAMPLE.replace("sklearn-iris-example", parent))
        assert "own namespace" in found["spec.inferenceService"]


def test_hostile_shapes() -> None:
    for bad in (
        SAMPLE.replace('"256Mi"', '"lots"'),
        SAMPLE.replace('"256Mi"', "-1"),
        SAMPLE.replace('framework: "sklearn"', "framework: [1]"),
        SAMPLE.replace("  model:\n", "  model: 3\n  x:\n"),
        SAMPLE.replace('apiVersion: "serving.kserve.io/v1alpha1"', "apiVersion: v1"),
    ):
        with pytest.raises(SpecError):
            parse_documents(bad, "team")
