"""Token generation on transformers for the huggingface runtime: one thread per model runs
``generate`` on waves of requests, streaming each request's text to its own bounded queue.

- Batching: requests waiting when a wave starts, with the same sampling settings, are padded
  into one ``generate`` call (at most ``max_batch`` of them); later ones wait for the next wave.
- Backpressure: a request's queue holds at most ``QUEUE_DEPTH`` pieces; the thread waits for
  its reader before producing more. A reader that stops reading for ``STALL_S`` is dropped,
  so one stuck client cannot hold its wave-mates for ever.
- Cancellation: a reader that goes away marks its request cancelled; a stopping criterion
  ends that row at the next step, and the wave ends once every row has.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger("modelport.runtimes.huggingface")

QUEUE_DEPTH = 256
STALL_S = 30.0
_POLL_S = 0.1


# Sequences queued behind the running wave, over all requests: past it, a 503.
MAX_WAITING = 256


class GenerationFailed(Exception):
    """generate raised, or the reader was too slow."""


@dataclass(frozen=True)
class Sampling:
    """What must be equal for requests to share a generate call."""

    do_sample: bool
    temperature: float | None
    top_p: float | None
    seed: int | None


@dataclass
class Sequence:
    """One prompt being generated, shared by the engine thread and its async reader."""

    prompt_ids: list[int]
    max_tokens: int
    stops: list[str]
    sampling: Sampling
    loop: asyncio.AbstractEventLoop
    queue: asyncio.Queue[tuple[str, Any]] = field(default_factory=asyncio.Queue)
    slots: threading.Semaphore = field(default_factory=lambda: threading.Semaphore(QUEUE_DEPTH))
    cancelled: threading.Event = field(default_factory=threading.Event)
    ids: list[int] = field(default_factory=list)
    text: str = ""  # emitted so far
    decoded: str = ""  # all generated text so far
    finish: str | None = None

    # ---- engine thread side ---------------------------------------------------------------

    def step(self, token: int, tokenizer: Any, eos_ids: set[int]) -> None:
        """Take one generated token: emit new text, detect a stop, EOS or the length limit.

        Text that could be the start of a stop sequence is held back until it is known not
        to be one: what was emitted cannot be taken back."""
        if self.finish is not None:
            return
        if token in eos_ids:
            self.finish = "stop"
            self._flush(self.decoded)
            return
        self.ids.append(token)
        full = tokenizer.decode(self.ids, skip_special_tokens=True)
        self.decoded = full
        at_limit = len(self.ids) >= self.max_tokens
        cut = _first_stop(full, self.stops, len(self.text))
        if cut is not None:
            self.finish = "stop"
            self._flush(full[:cut])
        elif at_limit:
            self.finish = "length"
            self._flush(full)
        elif not full.endswith("\ufffd"):  # else an incomplete UTF-8 character: wait
            self._flush(full[: len(full) - _stop_prefix(full, self.stops)])

    def _flush(self, upto: str) -> None:
        """Emit what ``upto`` adds to the text emitted so far."""
        if upto.startswith(self.text) and len(upto) > len(self.text):
            delta, self.text = upto[len(self.text) :], upto
            self._emit("text", delta)

    def _emit(self, kind: str, value: Any) -> None:
        waited = 0.0
        while not self.slots.acquire(timeout=_POLL_S):
            waited += _POLL_S
            if self.cancelled.is_set():
                return
            if waited >= STALL_S:
                self.cancelled.set()
                self._post("error", GenerationFailed("the client stopped reading the stream"))
                return
        self._post(kind, value)

    def close(self, error: BaseException | None = None) -> None:
        """The wave ended: tell the reader how this sequence finished."""
        if error is not None:
            self._post("error", error)
            return
        if self.finish is None:
            self._flush(self.decoded)  # text held back for a stop sequence that never came
        self._post("end", self.finish or "length")

    def _post(self, kind: str, value: Any) -> None:
        try:
            self.loop.call_soon_threadsafe(self.queue.put_nowait, (kind, value))
        except RuntimeError:
            self.cancelled.set()  # the event loop is gone (server shutting down)

    # ---- reader side ----------------------------------------------------------------------

    async def pieces(self) -> AsyncIterator[str]:
        """The generated text piece by piece; ``finish`` is set once it ends."""
        try:
            while True:
                kind, value = await self.queue.get()
                if kind == "text":
                    self.slots.release()
                    yield value
                elif kind == "end":
                    self.finish = value
                    return
                else:
                    raise GenerationFailed(str(value)) from value
        finally:
            self.cancelled.set()  # no-op when finished; stops generation when abandoned


def _first_stop(text: str, stops: list[str], emitted: int) -> int | None:
    """Where the earliest stop sequence starts, looking only where new text could hold one."""
    best: int | None = None
    for stop in stops:
        found = text.find(stop, max(0, emitted - len(stop) + 1))
        if found >= 0 and (best is None or found < best):
            best = found
    return best


def _stop_prefix(text: str, stops: list[str]) -> int:
    """The length of the longest end of ``text`` that begins some stop sequence."""
    longest = 0
    for stop in stops:
        for size in range(min(len(stop) - 1, len(text)), longest, -1):
            if text.endswith(stop[:size]):
                longest = size
                break
    return longest


class Engine:
    """The generation thread of one model (started lazily, again after a fork)."""

    def __init__(self, model: Any, tokenizer: Any, encoder_decoder: bool, max_batch: int):
        self.model = model
        self.tokenizer = tokenizer
        self.encoder_decoder = encoder_decoder
        self.max_batch = max(1, max_batch)
        self.eos_ids = _eos_ids(model, tokenizer)
        self._pending: deque[Sequence] = deque()
        self._cond = threading.Condition()
        self._owner_pid = 0
        self._stopped = False
        #: sizes of the waves run so far (observable batching, for tests and metrics)
        self.wave_sizes: deque[int] = deque(maxlen=1024)

    @property
    def waiting(self) -> int:
        """Sequences queued for a wave (not yet generating)."""
        with self._cond:
            return len(self._pending)

    def submit(self, seq: Sequence) -> None:
        """Queue a sequence for the next wave (GenerationFailed when too many wait)."""
        with self._cond:
            if self._stopped:
                raise GenerationFailed("the model was unloaded")
            if len(self._pending) >= MAX_WAITING:
                raise GenerationFailed(f"{MAX_WAITING} prompts are waiting already: retry")
            if self._owner_pid != os.getpid():
                # Threads do not survive fork: each worker process starts its own.
                self._owner_pid = os.getpid()
                self._pending.clear()
                threading.Thread(target=self._run, name="hf-generate", daemon=True).start()
            self._pending.append(seq)
            self._cond.notify()

    def stop(self) -> None:
        """Stop after the running wave; requests still waiting are answered with an error."""
        with self._cond:
            self._stopped = True
            waiting, self._pending = list(self._pending), deque()
            self._cond.notify_all()
        for seq in waiting:
            seq.close(GenerationFailed("the model was unloaded"))

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._pending and not self._stopped:
                    self._cond.wait()
                if self._stopped:
                    return
                wave = self._take()
            wave = [s for s in wave if not s.cancelled.is_set()]
            if wave:
                self._generate(wave)

    def _take(self) -> list[Sequence]:
        first = self._pending.popleft()
        wave, rest = [first], deque[Sequence]()
        while self._pending:
            seq = self._pending.popleft()
            if seq.sampling == first.sampling and len(wave) < self.max_batch:
                wave.append(seq)
            else:
                rest.append(seq)
        self._pending = rest
        return wave

    def _generate(self, wave: list[Sequence]) -> None:
        self.wave_sizes.append(len(wave))
        error: BaseException | None = None
        try:
            self._run_wave(wave)
        except Exception as exc:  # a failing model or input must not take the thread down
            log.exception("generate failed")
            error = GenerationFailed(f"generation failed: {type(exc).__name__}: {exc}")
        for seq in wave:
            seq.close(error)

    def _run_wave(self, wave: list[Sequence]) -> None:
        import torch
        from transformers import GenerationConfig, StoppingCriteriaList

        inputs = self.tokenizer.pad(
            {"input_ids": [s.prompt_ids for s in wave]},
            padding=True,
            return_tensors="pt",
            padding_side="right" if self.encoder_decoder else "left",
        )
        sampling = wave[0].sampling
        kwargs: dict[str, Any] = {"do_sample": sampling.do_sample}
        if sampling.do_sample:
            kwargs.update(temperature=sampling.temperature or 1.0, top_p=sampling.top_p or 1.0)
        config = GenerationConfig(  # type: ignore[no-untyped-call]
            max_new_tokens=max(s.max_tokens for s in wave),
            pad_token_id=self.tokenizer.pad_token_id,
            eos_token_id=sorted(self.eos_ids) or None,
            **kwargs,
        )
        if sampling.seed is not None:
            torch.manual_seed(sampling.seed)
        with torch.inference_mode():
            self.model.generate(
                **inputs,
                generation_config=config,
                streamer=_Fanout(wave, self.tokenizer, self.eos_ids),
                stopping_criteria=StoppingCriteriaList([_Finished(wave)]),
            )


def _eos_ids(model: Any, tokenizer: Any) -> set[int]:
    found: set[int] = set()
    for value in (getattr(model.generation_config, "eos_token_id", None), tokenizer.eos_token_id):
        if isinstance(value, int):
            found.add(value)
        elif isinstance(value, list):
            found.update(v for v in value if isinstance(v, int))
    return found


class _Fanout:
    """A transformers streamer handing each step's tokens to their sequences."""

    def __init__(self, wave: list[Sequence], tokenizer: Any, eos_ids: set[int]) -> None:
        self.wave = wave
        self.tokenizer = tokenizer
        self.eos_ids = eos_ids
        self.prompt_seen = False

    def put(self, value: Any) -> None:
        if not self.prompt_seen:
            self.prompt_seen = True  # generate's first call hands over the prompt itself
            return
        tokens = value.reshape(len(self.wave), -1)[:, -1].tolist()
        for seq, token in zip(self.wave, tokens, strict=True):
            if not seq.cancelled.is_set():
                seq.step(int(token), self.tokenizer, self.eos_ids)

    def end(self) -> None:
        pass


class _Finished:
    """A stopping criterion: a row is done once its sequence finished or was cancelled."""

    def __init__(self, wave: list[Sequence]) -> None:
        self.wave = wave

    def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
        import torch

        done = [s.finish is not None or s.cancelled.is_set() for s in self.wave]
        return torch.tensor(done, dtype=torch.bool, device=input_ids.device)
