"""The OpenAI routes through a real `modelport up` gateway, called with the official openai
client whose api_key is `modelport token`: a Hugging Face model built here (tiny GPT-2,
deployed with `modelFormat: huggingface`), and
a KServe-style OpenAI model that shows the stream is relayed as it is produced and that a
client leaving stops it upstream."""

from __future__ import annotations

import textwrap
from pathlib import Path

import httpx
import openai
import pytest

from tests.conftest import wait_for
from tests.e2e.conftest import PlatformProcess, wait_ready
from tests.openai import tiny_models

# Streams "first", then waits until a request with the prompt "release" arrives; counts the
# streams whose reader went away (the generator is closed before it finished).
HOLD_MODEL = """
import asyncio
import json

from modelport.openai import OpenAIGenerativeModel

RELEASE = asyncio.Event()
STATE = {"abandoned": 0}


def chunk(model, text):
    doc = {"id": "c", "object": "text_completion", "created": 0, "model": model,
           "choices": [{"index": 0, "text": text, "finish_reason": None}]}
    return f"data: {json.dumps(doc)}\\n\\n"


class Hold(OpenAIGenerativeModel):
    async def create_completion(self, request, raw_request=None, context=None):
        if request.prompt == "release":
            RELEASE.set()
            return self.answer(request.model, "released")
        if request.prompt == "abandoned?":
            return self.answer(request.model, str(STATE["abandoned"]))
        return self.hold(request.model)

    async def hold(self, model):
        finished = False
        try:
            yield chunk(model, "first")
            await RELEASE.wait()
            RELEASE.clear()
            yield chunk(model, "second")
            yield "data: [DONE]\\n\\n"
            finished = True
        finally:
            if not finished:
                STATE["abandoned"] += 1

    def answer(self, model, text):
        return {"id": "c", "object": "text_completion", "created": 0, "model": model,
                "choices": [{"index": 0, "text": text, "finish_reason": "stop"}]}

    async def create_chat_completion(self, request, raw_request=None, context=None):
        raise NotImplementedError
"""


def _deploy(platform: PlatformProcess, tmp_path: Path, name: str, source: Path, fmt: str) -> None:
    doc = tmp_path / f"{name}.yaml"
    doc.write_text(
        "apiVersion: serving.kserve.io/v1beta1\n"
        "kind: InferenceService\n"
        f"metadata:\n  name: {name}\n"
        "spec:\n"
        "  predictor:\n"
        "    model:\n"
        f"      modelFormat: {{name: {fmt}}}\n"
        f"      storageUri: {source}\n"
    )
    platform.cli("apply", "-f", str(doc))
    wait_ready(platform, name)


@pytest.fixture(scope="module")
def deployed(platform: PlatformProcess, tmp_path_factory: pytest.TempPathFactory) -> str:
    work = tmp_path_factory.mktemp("openai-e2e")
    # KServe's YAML for the huggingface runtime; the task is read from the model's config.
    chat = tiny_models.causal_lm(work / "chat")
    hold = work / "hold"
    hold.mkdir()
    (hold / "model.py").write_text(textwrap.dedent(HOLD_MODEL))
    _deploy(platform, work, "chat", chat, "huggingface")
    _deploy(platform, work, "hold", hold, "custom")
    return platform.token()


def _client(platform: PlatformProcess, name: str, api_key: str) -> openai.OpenAI:
    return openai.OpenAI(
        base_url=f"{platform.url}/serving/default/{name}/openai/v1",
        api_key=api_key,
        max_retries=0,
        timeout=60,
    )


def test_openai_client_through_the_gateway(platform: PlatformProcess, deployed: str) -> None:
    c = _client(platform, "chat", deployed)
    assert [m.id for m in c.models.list()] == ["chat"]
    done = c.completions.create(model="chat", prompt="hello world", max_tokens=4)
    assert done.usage is not None and done.usage.completion_tokens == 4
    chunks = list(
        c.chat.completions.create(
            model="chat",
            messages=[{"role": "user", "content": "the quick brown fox"}],
            max_tokens=10,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert chunks[0].choices[0].delta.role == "assistant"
    assert sum(1 for ch in chunks if ch.choices and ch.choices[0].delta.content) >= 1
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 10
    with pytest.raises(openai.BadRequestError) as err:
        c.completions.create(model="chat", prompt="hi", max_tokens=10**6)
    assert "maximum context length" in err.value.body["message"]  # type: ignore[index]
    with pytest.raises(openai.NotFoundError):
        c.completions.create(model="other", prompt="hi")


def test_credentials_are_required(platform: PlatformProcess, deployed: str) -> None:
    with pytest.raises(openai.AuthenticationError):
        _client(platform, "chat", "not-a-token").models.list()


def test_stream_is_relayed_as_produced(platform: PlatformProcess, deployed: str) -> None:
    url = f"{platform.url}/serving/default/hold/openai/v1/completions"
    headers = {"Authorization": f"Bearer {deployed}"}
    body = {"model": "hold", "prompt": "hold", "stream": True}
    with httpx.stream("POST", url, json=body, headers=headers, timeout=30) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        lines = r.iter_lines()
        first = next(line for line in lines if line)
        # "second" is produced only after the release below: had the gateway buffered the
        # stream, "first" could not have arrived yet (the read above would time out).
        assert '"first"' in first
        released = httpx.post(url, json={"model": "hold", "prompt": "release"}, headers=headers)
        assert released.status_code == 200
        rest = [line for line in lines if line]
    assert '"second"' in rest[0] and rest[-1] == "data: [DONE]"
    # Its chat method raises NotImplementedError: a clear 400, not a model failure.
    chat = httpx.post(
        url.replace("/completions", "/chat/completions"),
        json={"model": "hold", "messages": [{"role": "user", "content": "hi"}]},
        headers=headers,
    )
    assert chat.status_code == 400, chat.text
    assert chat.json()["error"]["message"] == "Model hold does not support Chat Completion API"


def test_client_leaving_stops_the_stream_upstream(platform: PlatformProcess, deployed: str) -> None:
    url = f"{platform.url}/serving/default/hold/openai/v1/completions"
    headers = {"Authorization": f"Bearer {deployed}"}

    def abandoned() -> int:
        r = httpx.post(url, json={"model": "hold", "prompt": "abandoned?"}, headers=headers)
        return int(r.json()["choices"][0]["text"])

    before = abandoned()
    with httpx.stream(
        "POST", url, json={"model": "hold", "prompt": "hold", "stream": True}, headers=headers
    ) as r:
        assert '"first"' in next(line for line in r.iter_lines() if line)
    # The connection is closed here, mid-stream: the gateway closes its upstream connection
    # and the model server closes the model's generator.
    assert wait_for(lambda: abandoned() == before + 1, 30)
