"""The UI's pieces without a platform: what a page makes of API documents, the canary
form's changes, the graph layout, the metrics quantiles, the CSRF guard, the error page."""

from __future__ import annotations

import math
from typing import Any

import pytest
from starlette.testclient import TestClient

from modelport.access.caller import Identity
from modelport.control.metrics_history import Totals, _delta, parse, quantile
from modelport.gateway.app import IDENTITY_KEY
from modelport.ui import summary
from modelport.ui.app import create_ui
from modelport.ui.base import PageError
from modelport.ui.create import canary_change, editable, field_of, own_namespace, service_document
from modelport.ui.graph_drawing import draw


def test_rows_read_new_and_short_forms():
    new = {
        "metadata": {"name": "a", "namespace": "n", "creationTimestamp": "2026-01-01T00:00:00Z"},
        "spec": {"predictor": {"model": {"modelFormat": {"name": "onnx"}, "storageUri": "s3://b"}}},
        "status": {"conditions": [{"type": "Ready", "status": "False", "message": "why"}]},
    }
    row = summary.row(new, {"onnx": "kserve-tritonserver"})
    assert (row.model_format, row.runtime, row.protocol, row.storage_uri) == (
        "onnx",
        "kserve-tritonserver",
        "v1",
        "s3://b",
    )
    assert row.ready == summary.Readiness("False", "why")
    short = {"spec": {"predictor": {"sklearn": {"storageUri": "gs://x", "protocolVersion": "v2"}}}}
    row = summary.row(short, {})
    assert (row.model_format, row.protocol, row.ready.status) == ("sklearn", "v2", "Unknown")


def test_runtime_choice_takes_the_first_auto_selectable():
    runtimes = [
        {"metadata": {"name": "off"}, "spec": {"disabled": True, "supportedModelFormats": [
            {"name": "sklearn", "autoSelect": True}]}},
        {"metadata": {"name": "manual"}, "spec": {"supportedModelFormats": [{"name": "sklearn"}]}},
        {"metadata": {"name": "auto"}, "spec": {"supportedModelFormats": [
            {"name": "sklearn", "autoSelect": True}]}},
    ]  # fmt: skip
    assert summary.runtime_choice(runtimes) == {"sklearn": "auto"}
    assert summary.model_formats(runtimes) == ["sklearn"]


def test_form_fields_and_problem_paths():
    doc, errors = service_document(
        {"name": " a ", "model_format": "sklearn", "storage_uri": "s3://x", "min_replicas": "x"}
    )
    assert doc["metadata"]["name"] == "a" and errors == {
        "min_replicas": "“x” is not a whole number."
    }
    assert field_of("spec.predictor.model.storageUri") == "storage_uri"
    assert field_of("metadata.name") == "name"
    assert field_of("spec.predictor.model.modelFormat.name") == "model_format"
    assert field_of("spec.predictor.containers[0].image") is None
    assert own_namespace("First.Last+tag@example.com") == "first-last-tag"
    assert own_namespace("@x") == "my-namespace"


def test_canary_changes():
    predictor: dict[str, Any] = {"model": {"storageUri": "a"}}
    assert "30 %" in canary_change(
        predictor, {"action": "set", "percent": "30", "storage_uri": "b"}
    )
    assert predictor == {"model": {"storageUri": "b"}, "canaryTrafficPercent": 30}
    canary_change(predictor, {"action": "rollback"})
    assert predictor["canaryTrafficPercent"] == 0
    canary_change(predictor, {"action": "promote"})
    assert "canaryTrafficPercent" not in predictor
    with pytest.raises(PageError):
        canary_change(predictor, {"action": "delete everything"})
    doc = {"metadata": {"name": "a", "generation": 3}, "spec": {}, "status": {"url": "u"}}
    assert editable(doc) == {"metadata": {"name": "a"}, "spec": {}}


def test_graph_layout_columns_and_arrows():
    spec = {
        "nodes": {
            "root": {"routerType": "Sequence", "steps": [{"nodeName": "b"}, {"serviceName": "s"}]},
            "b": {"routerType": "Switch", "steps": [{"nodeName": "root", "condition": "x"}]},
            "lonely": {"routerType": "Ensemble"},
        }
    }
    drawing = draw(spec)
    boxes = {b.name: b for b in drawing.boxes}
    assert boxes["root"].x < boxes["b"].x < boxes["lonely"].x
    assert len(drawing.edges) == 2  # root → b, and b's step back to root
    assert boxes["b"].steps[0].label == "node root (if x)"
    assert draw({}).boxes == [] and draw({"nodes": "junk"}).boxes == []


def test_quantiles_and_counters():
    text = (
        'modelport_requests_total{model="m",protocol="v1",status="200"} 9\n'
        'modelport_requests_total{model="m",protocol="v1",status="400"} 1\n'
        'modelport_request_duration_seconds_bucket{model="m",protocol="v1",le="0.01"} 5\n'
        'modelport_request_duration_seconds_bucket{model="m",protocol="v1",le="0.1"} 10\n'
        'modelport_request_duration_seconds_bucket{model="m",protocol="v1",le="+Inf"} 10\n'
        'modelport_inflight_requests{model="m"} 2\n'
    )
    totals = parse(text)
    assert (totals.requests, totals.errors, totals.inflight) == (10, 1, 2)
    assert quantile(0.5, totals.buckets) == pytest.approx(10.0)  # 5 of 10 within 10 ms
    assert quantile(0.99, totals.buckets) == pytest.approx(98.2)
    assert quantile(0.5, {}) is None and quantile(0.5, {math.inf: 0.0}) is None
    restarted = _delta(Totals(requests=2, buckets={math.inf: 2}), totals)
    assert restarted.requests == 2  # a replica that restarted counts from zero


def _with_identity(app: Any) -> Any:
    async def wrapped(scope: dict, receive: Any, send: Any) -> None:
        await app({**scope, IDENTITY_KEY: Identity("a@example.com")}, receive, send)

    return wrapped


def test_a_failing_page_answers_in_words():
    async def broken_api(scope: dict, receive: Any, send: Any) -> None:
        raise RuntimeError("the API fell over")

    client = TestClient(_with_identity(create_ui(broken_api)), raise_server_exceptions=False)
    r = client.get("/ns/default/services")
    assert r.status_code == 500
    assert "Something went wrong in the platform" in r.text and "fell over" not in r.text
    assert "unsafe-inline" not in r.headers["content-security-policy"]
    r = client.get("/nope")
    assert r.status_code == 404 and "There is no such page." in r.text
