"""The /openai/v1 routes of `modelport serve` with a KServe-style OpenAI model (a .py file,
--format custom), called with the official openai client and with raw HTTP for hostile input."""

from __future__ import annotations

from pathlib import Path

import httpx
import openai
import pytest

from tests.conftest import ServerProcess, serve_argv

MODEL = Path(__file__).parent / "models" / "echo_model.py"


@pytest.fixture(scope="module")
def echo(request: pytest.FixtureRequest) -> ServerProcess:
    from tests.conftest import launch

    server = launch(serve_argv(MODEL, "echo", "--format", "custom"))
    request.addfinalizer(server.stop)
    return server


def client(server: ServerProcess) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{server.url}/openai/v1", api_key="unused", max_retries=0)


def test_models_list_and_retrieve(echo: ServerProcess) -> None:
    c = client(echo)
    assert [m.id for m in c.models.list()] == ["echo"]
    assert c.models.retrieve("echo").id == "echo"
    with pytest.raises(openai.NotFoundError) as err:
        c.models.retrieve("ghost")
    assert err.value.body["type"] == "NotFoundError"  # type: ignore[index]


def test_dict_and_typed_answers_with_extra_fields(echo: ServerProcess) -> None:
    c = client(echo)
    done = c.completions.create(model="echo", prompt="hi", extra_body={"flavour": "mint"})
    assert done.choices[0].text == "hi|mint"
    chat = c.chat.completions.create(model="echo", messages=[{"role": "user", "content": "yo"}])
    assert chat.choices[0].message.content == "you said: yo"
    assert chat.object == "chat.completion"


def test_stream_of_sse_lines(echo: ServerProcess) -> None:
    pieces = [
        chunk.choices[0].text
        for chunk in client(echo).completions.create(
            model="echo", prompt="one two three", stream=True
        )
    ]
    assert pieces == ["one", "two", "three"]
    with httpx.stream(
        "POST",
        f"{echo.url}/openai/v1/completions",
        json={"model": "echo", "prompt": "a b", "stream": True},
    ) as r:
        assert r.headers["content-type"].startswith("text/event-stream")
        lines = [line for line in r.iter_lines() if line]
    assert lines[-1] == "data: [DONE]" and len(lines) == 3


def test_model_errors_are_openai_shaped(echo: ServerProcess) -> None:
    c = client(echo)
    with pytest.raises(openai.BadRequestError) as err:
        c.completions.create(model="echo", prompt="fail")
    assert err.value.body["message"] == "the prompt asked to fail"  # type: ignore[index]
    with pytest.raises(openai.InternalServerError) as crash:
        c.completions.create(model="echo", prompt="crash")
    assert "boom" in crash.value.body["message"]  # type: ignore[index]
    with pytest.raises(openai.NotFoundError):
        c.completions.create(model="ghost", prompt="x")
    # The model answers completions only: embeddings are refused as KServe does.
    with pytest.raises(openai.BadRequestError) as wrong:
        c.embeddings.create(model="echo", input="x")
    assert "does not support Embeddings API" in wrong.value.body["message"]  # type: ignore[index]


@pytest.mark.parametrize(
    ("body", "status", "needle"),
    [
        (b"{not json", 400, "not valid JSON"),
        (b"[1, 2]", 400, "JSON object"),
        (b'{"prompt": "x"}', 400, "'model' is required"),
        (b'{"model": 7, "prompt": "x"}', 400, "'model' is required"),
        (b'{"model": "echo", "prompt": "x", "max_tokens": -5}', 400, "max_tokens"),
        (b'{"model": "echo", "prompt": "x", "max_tokens": "10"}', 400, "max_tokens"),
        (b'{"model": "echo", "prompt": "x", "max_tokens": 1e308}', 400, "max_tokens"),
        (b'{"model": "echo", "prompt": "x", "temperature": -1}', 400, "temperature"),
        (b'{"model": "echo", "prompt": "x", "temperature": NaN}', 400, "not valid JSON"),
        (b'{"model": "echo", "prompt": "x", "top_p": 1e999}', 400, ""),
        (b'{"model": "echo", "prompt": "x", "stream": "yes"}', 400, "stream"),
        (b'{"model": "echo", "prompt": {"a": 1}}', 400, "prompt"),
        (
            b'{"model": "echo", "prompt": "x", "stop": ["a","b","c","d","e","f","g","h","i","j","k","l","m","n","o","p","q"]}',
            400,
            "stop",
        ),
        (b'{"model": "ghost", "prompt": "x"}', 404, "does not exist"),
    ],
)
def test_hostile_bodies(echo: ServerProcess, body: bytes, status: int, needle: str) -> None:
    r = httpx.post(f"{echo.url}/openai/v1/completions", content=body, timeout=30)
    assert r.status_code == status, r.text
    error = r.json()["error"]
    assert set(error) >= {"message", "type", "code"} and error["code"] == str(status)
    assert needle in error["message"]


def test_routes_methods_and_size(echo: ServerProcess) -> None:
    base = f"{echo.url}/openai/v1"
    assert httpx.get(f"{base}/completions").status_code == 405
    assert httpx.post(f"{base}/models").status_code == 405
    unknown = httpx.post(f"{base}/edits", json={})
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "404"
    huge = httpx.post(
        f"{base}/completions", content=b'{"model": "echo", "prompt": "' + b"x" * (65 << 20) + b'"}'
    )
    assert huge.status_code == 413 and "error" in huge.json()


def test_v2_on_an_openai_model_is_refused(echo: ServerProcess) -> None:
    r = httpx.post(f"{echo.url}/v1/models/echo:predict", json={"instances": [1]})
    assert r.status_code == 400 and "/openai/v1" in r.json()["error"]


def test_requests_are_counted_for_known_models_only(echo: ServerProcess) -> None:
    c = client(echo)
    c.completions.create(model="echo", prompt="count me")
    with pytest.raises(openai.NotFoundError):
        c.completions.create(model="made-up-name", prompt="x")
    text = httpx.get(f"{echo.url}/metrics").text
    assert 'model="echo",protocol="openai",status="200"' in text
    assert "made-up-name" not in text


@pytest.mark.parametrize("prompt", ["not json", "not a response"])
def test_answers_that_are_not_responses_are_500(echo: ServerProcess, prompt: str) -> None:
    r = httpx.post(f"{echo.url}/openai/v1/completions", json={"model": "echo", "prompt": prompt})
    assert r.status_code == 500 and r.json()["error"]["code"] == "500"
