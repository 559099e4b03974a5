"""The huggingface runtime served by `modelport serve DIR --format huggingface` (and KServe's
flags through `python -m modelport.server.huggingface_server`), on tiny models built here,
called with the official openai client; hostile requests get OpenAI-shaped errors."""

from __future__ import annotations

import sys
from pathlib import Path

import httpx
import numpy as np
import openai
import pytest

from tests.conftest import ServerProcess, launch, serve_argv
from tests.openai import tiny_models


@pytest.fixture(scope="module")
def gpt(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> ServerProcess:
    path = tiny_models.causal_lm(tmp_path_factory.mktemp("gpt"))
    server = launch(serve_argv(path, "tiny-gpt", "--format", "huggingface"))
    request.addfinalizer(server.stop)
    return server


def client(server: ServerProcess) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{server.url}/openai/v1", api_key="x", max_retries=0)


def test_completion_and_chat(gpt: ServerProcess) -> None:
    c = client(gpt)
    assert [m.id for m in c.models.list()] == ["tiny-gpt"]
    done = c.completions.create(model="tiny-gpt", prompt="hello world", max_tokens=5)
    # The tiny model has no end token: it stops at the budget, token for token.
    assert done.choices[0].finish_reason == "length"
    assert done.usage is not None and done.usage.completion_tokens == 5
    chat = c.chat.completions.create(
        model="tiny-gpt", messages=[{"role": "user", "content": "hi"}], max_tokens=3
    )
    assert chat.choices[0].message.role == "assistant"
    assert chat.usage is not None and chat.usage.completion_tokens == 3


def test_streaming_chat_and_usage(gpt: ServerProcess) -> None:
    stream = client(gpt).chat.completions.create(
        model="tiny-gpt",
        messages=[{"role": "user", "content": "the quick brown fox"}],
        max_tokens=12,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    assert chunks[0].choices[0].delta.role == "assistant"
    finals = [c for c in chunks if c.choices and c.choices[0].finish_reason]
    assert [c.choices[0].finish_reason for c in finals] == ["length"]
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 12
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    plain = client(gpt).chat.completions.create(
        model="tiny-gpt",
        messages=[{"role": "user", "content": "the quick brown fox"}],
        max_tokens=12,
    )
    assert text == plain.choices[0].message.content  # greedy: streamed = whole


def test_stop_sequence_and_token_prompt(gpt: ServerProcess) -> None:
    c = client(gpt)
    whole = c.completions.create(model="tiny-gpt", prompt=[5, 6, 7], max_tokens=10)
    text = whole.choices[0].text
    stop = text[3:5]
    if stop.strip():
        cut = c.completions.create(model="tiny-gpt", prompt=[5, 6, 7], max_tokens=10, stop=stop)
        assert cut.choices[0].finish_reason == "stop"
        assert cut.choices[0].text == text[: text.index(stop)]


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ({"prompt": "hi", "max_tokens": 10**6}, "maximum context length is 64 tokens"),
        ({"prompt": "fox " * 200, "max_tokens": 1}, "maximum context length is 64 tokens"),
        ({"prompt": "hi", "n": 2}, "'n' > 1 is not supported"),
        ({"prompt": "hi", "frequency_penalty": 1.0}, "frequency_penalty"),
        ({"prompt": [10**9]}, "vocabulary"),
        ({"prompt": "hi", "top_p": 2}, "top_p"),
        ({"prompt": None}, "prompt is required"),
        # Found in review: 20,000 prompts in one request held the model for minutes.
        ({"prompt": [[1, 2, 3]] * 20000, "max_tokens": 2}, "At most 32 prompts per request"),
    ],
)
def test_bad_generation_requests(gpt: ServerProcess, body: dict, needle: str) -> None:
    r = httpx.post(
        f"{gpt.url}/openai/v1/completions", json={"model": "tiny-gpt", **body}, timeout=30
    )
    assert r.status_code == 400, r.text
    assert needle in r.json()["error"]["message"]


def test_chat_without_a_template_is_refused(tmp_path: Path) -> None:
    path = tiny_models.causal_lm(tmp_path / "plain")
    config = path / "tokenizer_config.json"
    config.write_text(config.read_text().replace('"chat_template"', '"unused_template"'))
    (path / "chat_template.jinja").unlink(missing_ok=True)
    server = launch(serve_argv(path, "plain", "--format", "huggingface"))
    try:
        with pytest.raises(openai.BadRequestError) as err:
            client(server).chat.completions.create(
                model="plain", messages=[{"role": "user", "content": "hi"}]
            )
        assert "chat template" in err.value.body["message"]  # type: ignore[index]
    finally:
        server.stop()


def test_embeddings_and_rerank_with_kserve_flags(tmp_path: Path) -> None:
    path = tiny_models.bert(tmp_path / "embed", "BertModel")
    argv = [
        sys.executable, "-m", "modelport.server.huggingface_server",
        "--model_name", "emb", "--model_dir", str(path), "--task", "text_embedding",
        "--max_model_len", "16", "--http_port", "0", "--grpc_port", "0",
    ]  # fmt: skip
    server = launch(argv)
    try:
        c = client(server)
        # The openai client asks for base64 by default and decodes it.
        out = c.embeddings.create(model="emb", input=["hello world", "the lazy dog"])
        vectors = np.array([d.embedding for d in out.data])
        assert vectors.shape == (2, 32)
        assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)
        floats = c.embeddings.create(model="emb", input="hello world", encoding_format="float")
        assert np.allclose(floats.data[0].embedding, vectors[0], atol=1e-5)
        too_long = httpx.post(
            f"{server.url}/openai/v1/embeddings", json={"model": "emb", "input": "fox " * 40}
        )
        assert too_long.status_code == 400 and "16 tokens" in too_long.json()["error"]["message"]
        many = httpx.post(  # at most 2048 inputs, as OpenAI's API
            f"{server.url}/openai/v1/embeddings", json={"model": "emb", "input": ["a"] * 2049}
        )
        assert many.status_code == 400 and "input" in many.json()["error"]["message"]
        ranked = httpx.post(
            f"{server.url}/openai/v1/rerank",
            json={
                "model": "emb",
                "query": "hello world",
                "documents": ["the lazy dog", "hello world"],
                "top_n": 1,
            },
        ).json()
        assert ranked["results"][0]["index"] == 1  # the document equal to the query wins
        assert ranked["results"][0]["document"]["text"] == "hello world"
        with pytest.raises(openai.BadRequestError):
            c.completions.create(model="emb", prompt="x")
    finally:
        server.stop()


@pytest.mark.parametrize(
    ("architecture", "check"),
    [
        ("BertForSequenceClassification", lambda p: all(x in (0, 1, 2) for x in p)),
        ("BertForTokenClassification", lambda p: all(isinstance(x, list) for x in p)),
    ],
)
def test_predictive_tasks_answer_v1_and_v2(tmp_path: Path, architecture: str, check) -> None:
    path = tiny_models.bert(tmp_path / "m", architecture)
    server = launch(serve_argv(path, "clf", "--format", "huggingface"))
    try:
        v1 = httpx.post(
            f"{server.url}/v1/models/clf:predict", json={"instances": ["hello world", "a dog"]}
        )
        assert v1.status_code == 200, v1.text
        predictions = v1.json()["predictions"]
        assert len(predictions) == 2 and check(predictions)
        v2 = httpx.post(
            f"{server.url}/v2/models/clf/infer",
            json={
                "inputs": [
                    {"name": "text", "shape": [1], "datatype": "BYTES", "data": ["hello world"]}
                ]
            },
        )
        assert v2.status_code == 200, v2.text
        bad = httpx.post(f"{server.url}/v1/models/clf:predict", json={"instances": [1, 2]})
        assert bad.status_code == 400
        assert httpx.get(f"{server.url}/openai/v1/models").json()["data"] == []
    finally:
        server.stop()


def test_vllm_backend_is_refused_clearly(tmp_path: Path) -> None:
    from modelport.errors import ModelLoadError
    from modelport.runtimes import create_model

    with pytest.raises(ModelLoadError, match="no vLLM engine"):
        create_model("x", tmp_path, "huggingface", backend="vllm")


def test_fill_mask_predicts_the_masked_token(tmp_path: Path) -> None:
    path = tiny_models.bert(tmp_path / "mlm", "BertForMaskedLM")
    server = launch(serve_argv(path, "mlm", "--format", "huggingface"))
    try:
        url = f"{server.url}/v1/models/mlm:predict"
        r = httpx.post(url, json={"instances": ["the quick <mask> fox", "a <mask> b <mask>"]})
        assert r.status_code == 200, r.text
        one, two = r.json()["predictions"]
        assert isinstance(one, str) and isinstance(two, list) and len(two) == 2
        missing = httpx.post(url, json={"instances": ["no mask here"]})
        assert missing.status_code == 400 and "<mask>" in missing.json()["error"]
    finally:
        server.stop()


def test_kserve_scripts_can_still_add_their_own_task_flag() -> None:
    import argparse

    from modelport.server.kserve_flags import huggingface_parser, parser

    # KServe's huggingfaceserver (and scripts like it) extend the shared parser this way.
    mine = argparse.ArgumentParser(parents=[parser], add_help=False)
    mine.add_argument("--task")
    mine.add_argument("--dtype")
    args = huggingface_parser.parse_args(
        ["--model_dir", "/m", "--task", "fill_mask", "--max_length", "128", "--dtype", "bfloat16"]
    )
    assert (args.model_dir, args.task, args.max_model_len, args.dtype) == (
        "/m",
        "fill_mask",
        128,
        "bfloat16",
    )
