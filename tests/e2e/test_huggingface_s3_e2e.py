"""The huggingface runtime loading its model from s3 through `modelport up`: a tiny GPT-2
built here (random weights, a tokenizer trained on the spot, nothing downloaded) is uploaded
to moto's real S3-compatible server, deployed with KServe's `modelFormat: huggingface` and
`storageUri: s3://...`, and answers the OpenAI routes through the gateway."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import wait_for
from tests.e2e.conftest import PlatformProcess, start_platform, wait_ready
from tests.openai import tiny_models
from tests.s3server import S3Server, start_s3_server

NAME = "gpt-from-s3"


@pytest.fixture(scope="module")
def s3() -> Iterator[S3Server]:
    server = start_s3_server()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory, s3: S3Server) -> Iterator[PlatformProcess]:
    work = tmp_path_factory.mktemp("hf-s3")
    running = start_platform(work / "data", work / "config", env=s3.env())
    yield running
    running.stop()


def _upload(s3: S3Server, folder: Path, bucket: str, prefix: str) -> list[str]:
    """Every file of ``folder`` under ``prefix``; the keys uploaded."""
    import boto3  # type: ignore[import-untyped]

    client = boto3.client("s3", **s3.client_kwargs())
    client.create_bucket(Bucket=bucket)
    keys = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        key = f"{prefix}/{path.relative_to(folder).as_posix()}"
        client.upload_file(str(path), bucket, key)
        keys.append(key)
    return keys


def test_huggingface_model_from_s3_answers_openai_routes(
    platform: PlatformProcess, s3: S3Server, tmp_path: Path
) -> None:
    model = tiny_models.causal_lm(tmp_path / "tiny-gpt")
    keys = _upload(s3, model, "models", "llm/tiny-gpt")
    assert "llm/tiny-gpt/config.json" in keys and any(k.endswith(".safetensors") for k in keys)
    doc = tmp_path / "isvc.yaml"
    doc.write_text(
        "apiVersion: serving.kserve.io/v1beta1\n"
        "kind: InferenceService\n"
        f"metadata:\n  name: {NAME}\n"
        "spec:\n  predictor:\n    model:\n"
        "      modelFormat: {name: huggingface}\n"
        "      storageUri: s3://models/llm/tiny-gpt\n"
    )
    platform.cli("apply", "-f", str(doc))
    wait_ready(platform, NAME, timeout=180)

    base = f"/serving/default/{NAME}/openai/v1"
    with platform.client() as c:
        models = c.get(f"{base}/models")
        assert models.status_code == 200, models.text
        assert [m["id"] for m in models.json()["data"]] == [NAME]
        done = c.post(
            f"{base}/completions", json={"model": NAME, "prompt": "hello world", "max_tokens": 5}
        )
        assert done.status_code == 200, done.text
        assert done.json()["usage"]["completion_tokens"] == 5
        chat = {
            "model": NAME,
            "messages": [{"role": "user", "content": "the quick brown fox"}],
            "max_tokens": 4,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        with c.stream("POST", f"{base}/chat/completions", json=chat) as r:
            assert r.status_code == 200
            assert r.headers["content-type"].startswith("text/event-stream")
            events = [line[6:] for line in r.iter_lines() if line.startswith("data: ")]
    assert events[-1] == "[DONE]"
    last = json.loads(events[-2])
    assert last["usage"]["completion_tokens"] == 4


def test_without_credentials_the_route_is_refused(platform: PlatformProcess) -> None:
    r = httpx.get(
        f"{platform.url}/serving/default/{NAME}/openai/v1/models",
        headers={"Accept": "application/json"},
    )
    assert r.status_code == 401


def test_a_missing_s3_prefix_is_reported_not_served(
    platform: PlatformProcess, s3: S3Server, tmp_path: Path
) -> None:
    doc = tmp_path / "missing.yaml"
    doc.write_text(
        "apiVersion: serving.kserve.io/v1beta1\n"
        "kind: InferenceService\n"
        "metadata:\n  name: gpt-missing\n"
        "spec:\n  predictor:\n    model:\n"
        "      modelFormat: {name: huggingface}\n"
        "      storageUri: s3://no-such-bucket/llm\n"
    )
    platform.cli("apply", "-f", str(doc))
    found: list[dict[str, Any]] = []
    with platform.client() as c:

        def not_ready_with_reason() -> bool:
            item = c.get("/api/v1/namespaces/default/inferenceservices/gpt-missing").json()
            conds = (item.get("status") or {}).get("conditions") or []
            found[:] = [x for x in conds if x["type"] == "Ready" and x["status"] == "False"]
            return bool(found and found[0].get("message"))

        assert wait_for(not_ready_with_reason, 30), found
    assert "404" in found[0]["message"] or "no-such-bucket" in found[0]["message"], found
    platform.cli("delete", "isvc", "gpt-missing")
