"""The huggingface runtime's generation engine in process: concurrent requests share a
generate call, a reader that stops reading stops generation (bounded queue), and a client
that disconnects from a stream cancels its sequence."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

import pytest

from modelport.openai import CompletionRequest
from modelport.runtimes import create_model
from modelport.runtimes import huggingface_engine as engine_module
from modelport.runtimes.huggingface_engine import Sequence
from modelport.runtimes.huggingface_generate import HFGenerativeModel
from modelport.server.openai_routes import stream
from tests.openai import tiny_models


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> HFGenerativeModel:
    path = tiny_models.causal_lm(tmp_path_factory.mktemp("gpt"), positions=512)
    loaded = create_model("gpt", path, "huggingface")
    loaded.load()
    assert isinstance(loaded, HFGenerativeModel)
    return loaded


def captured(model: HFGenerativeModel, monkeypatch: pytest.MonkeyPatch) -> list[Sequence]:
    """Every sequence submitted from now on."""
    assert model.engine is not None
    seen: list[Sequence] = []
    submit = model.engine.submit

    def spy(seq: Sequence) -> None:
        seen.append(seq)
        submit(seq)

    monkeypatch.setattr(model.engine, "submit", spy)
    return seen


def test_concurrent_requests_share_a_wave(model: HFGenerativeModel) -> None:
    engine = model.engine
    assert engine is not None

    async def run() -> list[Any]:
        # Hold the engine's lock while the requests are queued, so the thread finds all four
        # waiting when it takes its next wave.
        with engine._cond:
            calls = [
                asyncio.ensure_future(
                    model.create_completion(
                        CompletionRequest(model="gpt", prompt="fox " * (i + 1), max_tokens=4)
                    )
                )
                for i in range(4)
            ]
            await asyncio.sleep(0)
        return await asyncio.gather(*calls)

    engine.wave_sizes.clear()
    results = asyncio.run(run())
    assert all(r.usage.completion_tokens == 4 for r in results)
    assert 4 in engine.wave_sizes
    # Each row of a padded batch gets what it would get alone (greedy decoding).
    alone = asyncio.run(
        model.create_completion(CompletionRequest(model="gpt", prompt="fox " * 3, max_tokens=4))
    )
    assert alone.choices[0].text == results[2].choices[0].text


def test_a_reader_that_stops_reading_stops_generation(
    model: HFGenerativeModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(engine_module, "QUEUE_DEPTH", 4)
    seqs = captured(model, monkeypatch)

    async def run() -> tuple[int, int, str]:
        request = CompletionRequest(model="gpt", prompt="hello", max_tokens=200, stream=True)
        events = await model.create_completion(request)
        first = await anext(events)  # noqa: F841 - start the stream, then stop reading
        seq = seqs[0]
        while seq.queue.qsize() < 4 and seq.finish is None:
            await asyncio.sleep(0.01)  # polling for the queue to fill, not a timed assertion
        blocked_at = len(seq.ids)
        rest = [e async for e in events]
        return blocked_at, len(seq.ids), rest[-2]

    blocked_at, total, last = asyncio.run(run())
    # Four pieces wait unread: the thread waits for a slot instead of running ahead.
    assert blocked_at <= 4 + 2 < 200
    assert total == 200 and '"finish_reason":"length"' in last


def test_disconnect_cancels_generation(
    model: HFGenerativeModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    seqs = captured(model, monkeypatch)
    sent: list[dict[str, Any]] = []
    disconnect = asyncio.Event()

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)
        if len(sent) == 3:
            disconnect.set()  # the client reads two events, then goes away

    async def receive() -> dict[str, Any]:
        await disconnect.wait()
        return {"type": "http.disconnect"}

    async def run() -> None:
        request = CompletionRequest(model="gpt", prompt="hello", max_tokens=400, stream=True)
        await stream(await model.create_completion(request), receive, send)

    asyncio.run(run())
    seq = seqs[0]
    assert seq.cancelled.is_set()
    assert len(seq.ids) < 400
    # The engine is free again: the next request is answered in full.
    after = asyncio.run(
        model.create_completion(CompletionRequest(model="gpt", prompt="hi", max_tokens=3))
    )
    assert after.usage.completion_tokens == 3


def test_unicode_and_empty_prompts(model: HFGenerativeModel) -> None:
    from modelport.openai import OpenAIError

    done = asyncio.run(
        model.create_completion(
            CompletionRequest(model="gpt", prompt="héllo 🦊 \x00", max_tokens=3)
        )
    )
    assert done.usage.completion_tokens == 3
    with pytest.raises(OpenAIError, match="empty"):
        asyncio.run(model.create_completion(CompletionRequest(model="gpt", prompt="")))


def test_task_is_inferred_from_the_architecture(tmp_path: Path) -> None:
    t5 = create_model("t5", tiny_models.seq2seq_lm(tmp_path / "t5"), "huggingface")
    assert isinstance(t5, HFGenerativeModel) and t5.task == "text2text_generation"
    t5.load()
    done = asyncio.run(
        t5.create_completion(CompletionRequest(model="t5", prompt="hello world", max_tokens=3))
    )
    assert done.choices[0].finish_reason in ("stop", "length")


def test_disconnect_before_a_whole_completion_cancels_it(
    model: HFGenerativeModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    import threading

    import orjson

    from modelport.server.dataplane import DataPlane
    from modelport.server.openai_routes import OpenAIRoutes
    from modelport.server.repository import ModelRepository

    seqs = captured(model, monkeypatch)
    resume = threading.Event()
    repository = ModelRepository()
    repository.add(model)
    routes = OpenAIRoutes(DataPlane(repository), 1 << 20)
    body = orjson.dumps({"model": "gpt", "prompt": "hello", "max_tokens": 480})
    scope = {"type": "http", "method": "POST", "path": "/openai/v1/completions", "headers": []}
    sent: list[dict[str, Any]] = []

    async def run() -> None:
        left = asyncio.Event()
        messages = [{"type": "http.request", "body": body, "more_body": False}]

        async def receive() -> dict[str, Any]:
            if messages:
                return messages.pop()
            await left.wait()
            return {"type": "http.disconnect"}

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        answer = asyncio.ensure_future(routes(scope, receive, send))
        while not seqs or len(seqs[0].ids) < 2:
            await asyncio.sleep(0.01)  # polling for progress, not a timed assertion
        left.set()  # the client leaves while generation is held after two tokens
        await answer
        resume.set()

    original = Sequence.step

    def held_step(self: Sequence, *args: Any) -> None:
        original(self, *args)
        if len(self.ids) >= 2:
            resume.wait(30)

    monkeypatch.setattr(Sequence, "step", held_step)
    asyncio.run(run())
    assert sent == []  # nobody to answer
    assert seqs[0].cancelled.is_set()
    monkeypatch.setattr(Sequence, "step", original)
    after = asyncio.run(
        model.create_completion(CompletionRequest(model="gpt", prompt="hi", max_tokens=2))
    )
    assert after.usage.completion_tokens == 2
    assert len(seqs[0].ids) < 480


def test_a_failing_generate_answers_500_and_the_engine_lives_on(
    model: HFGenerativeModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    from modelport.openai import OpenAIError

    assert model.engine is not None
    real = model.engine.model.generate
    calls = {"n": 0}

    def broken_once(*args: Any, **kwargs: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("out of cheese")
        return real(*args, **kwargs)

    monkeypatch.setattr(model.engine.model, "generate", broken_once)
    with pytest.raises(OpenAIError, match="out of cheese") as err:
        asyncio.run(
            model.create_completion(CompletionRequest(model="gpt", prompt="hi", max_tokens=2))
        )
    assert err.value.response.status == 500
    again = asyncio.run(
        model.create_completion(CompletionRequest(model="gpt", prompt="hi", max_tokens=2))
    )
    assert again.usage.completion_tokens == 2


def test_unloading_refuses_new_requests(tmp_path: Path) -> None:
    from modelport.openai import OpenAIError

    path = tiny_models.causal_lm(tmp_path / "gpt")
    gone = create_model("gpt", path, "huggingface")
    gone.load()
    assert isinstance(gone, HFGenerativeModel) and gone.engine is not None
    engine = gone.engine
    engine.stop()
    with pytest.raises(OpenAIError, match="unloaded") as err:
        asyncio.run(gone.create_completion(CompletionRequest(model="gpt", prompt="hi")))
    assert err.value.response.status == 503
    gone.unload()
    assert not gone.ready


def test_past_its_queue_the_engine_refuses_instead_of_growing(monkeypatch) -> None:
    """Sequences wait in a bounded queue: past it, submit fails (a 503 to the client)."""
    from modelport.runtimes import huggingface_engine

    monkeypatch.setattr(huggingface_engine, "MAX_WAITING", 2)
    fake_model = type("M", (), {"generation_config": None, "config": None})()
    monkeypatch.setattr(huggingface_engine, "_eos_ids", lambda model, tokenizer: set())
    engine = huggingface_engine.Engine(fake_model, None, False, 1)
    engine._owner_pid = os.getpid()  # no generation thread: everything stays queued
    for _ in range(2):
        engine.submit(object())  # type: ignore[arg-type]
    with pytest.raises(huggingface_engine.GenerationFailed, match="waiting already"):
        engine.submit(object())  # type: ignore[arg-type]
    assert engine.waiting == 2
