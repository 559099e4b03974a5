"""The huggingface runtime's generative tasks (text_generation, text2text_generation) as an
OpenAI generative model: completions and chat completions, streamed or not, after KServe's
huggingfaceserver/generative_model.py (its limits and messages are kept where noted).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from modelport.openai import (
    ChatCompletion,
    ChatCompletionChoice,
    ChatCompletionChunk,
    ChatCompletionRequest,
    ChatMessage,
    ChoiceDelta,
    ChunkChoice,
    Completion,
    CompletionChoice,
    CompletionChunk,
    CompletionRequest,
    OpenAIError,
    OpenAIGenerativeModel,
    RawRequest,
    UsageInfo,
    generate_id,
)
from modelport.runtimes.huggingface import (
    CHARS_PER_TOKEN,
    HFOptions,
    context_length,
    load_config,
    load_tokenizer,
    load_weights,
)
from modelport.runtimes.huggingface_engine import (
    MAX_WAITING,
    Engine,
    GenerationFailed,
    Sampling,
    Sequence,
)

# Prompts one completion request may carry: each is a sequence generated in turn (the
# OpenAI API takes a list; a long one would hold the model for everyone else).
MAX_PROMPTS = 32


class HFGenerativeModel(OpenAIGenerativeModel):
    """A causal or sequence-to-sequence language model answering completions and chat."""

    def __init__(self, name: str, options: HFOptions, task: str) -> None:
        super().__init__(name)
        self.ready = False  # unlike a hand-written OpenAI model, this one loads weights
        self.options = options
        self.task = task
        self.max_model_len = 0
        self.engine: Engine | None = None
        self.tokenizer: Any = None

    def load(self) -> bool:
        from transformers import AutoModelForCausalLM, AutoModelForSeq2SeqLM

        encoder_decoder = self.task == "text2text_generation"
        auto = AutoModelForSeq2SeqLM if encoder_decoder else AutoModelForCausalLM
        config = load_config(self.options)
        self.tokenizer = load_tokenizer(self.options, "right" if encoder_decoder else "left")
        model = load_weights(self.options, auto)
        self.max_model_len = context_length(self.options, config, self.tokenizer)
        self.engine = Engine(model, self.tokenizer, encoder_decoder, self.options.max_batch_size)
        self.ready = True
        return True

    def unload(self) -> None:
        if self.engine is not None:
            self.engine.stop()
        self.engine = None
        self.ready = False

    # ---- completions ----------------------------------------------------------------------

    async def create_completion(
        self,
        request: CompletionRequest,
        raw_request: RawRequest | None = None,
        context: dict[str, Any] | None = None,
    ) -> AsyncIterator[str] | Completion:
        if request.prompt is None:
            raise OpenAIError("prompt is required")  # KServe's message
        _refuse_unsupported(request)
        if request.echo or request.logprobs is not None or (request.best_of or 1) > 1:
            raise OpenAIError("'echo', 'logprobs' and 'best_of' are not supported")
        if request.suffix:
            raise OpenAIError("'suffix' is not supported")
        prompts = self._prompt_ids(request.prompt)
        if request.stream and len(prompts) > 1:
            raise OpenAIError("Streaming takes one prompt per request.")
        if len(prompts) > MAX_PROMPTS:
            raise OpenAIError(f"At most {MAX_PROMPTS} prompts per request; got {len(prompts)}.")
        if self.engine is not None and self.engine.waiting + len(prompts) > MAX_WAITING:
            # All or none: a request half queued would generate for no one.
            raise OpenAIError(f"Model {self.name} has too many prompts waiting: retry.", 503)
        seqs = [self._sequence(ids, request.max_tokens, request) for ids in prompts]
        if request.stream:
            return self._stream_completion(seqs[0], request)
        texts = await asyncio.gather(*(_collect(s) for s in seqs))
        return Completion(
            model=request.model,
            choices=[
                CompletionChoice(index=i, text=t, finish_reason=s.finish)
                for i, (s, t) in enumerate(zip(seqs, texts, strict=True))
            ],
            usage=_usage(seqs),
        )

    async def _stream_completion(
        self, seq: Sequence, request: CompletionRequest
    ) -> AsyncIterator[str]:
        response_id = generate_id()
        try:
            async for piece in seq.pieces():
                chunk = CompletionChunk(
                    id=response_id,
                    model=request.model,
                    choices=[CompletionChoice(index=0, text=piece)],
                )
                yield _event(chunk)
        except GenerationFailed as exc:
            raise OpenAIError(str(exc), 500) from exc
        last = CompletionChunk(
            id=response_id,
            model=request.model,
            choices=[CompletionChoice(index=0, text="", finish_reason=seq.finish)],
        )
        yield _event(last)
        if request.include_usage:
            usage = CompletionChunk(
                id=response_id, model=request.model, choices=[], usage=_usage([seq])
            )
            yield _event(usage)
        yield "data: [DONE]\n\n"

    # ---- chat -----------------------------------------------------------------------------

    async def create_chat_completion(
        self,
        request: ChatCompletionRequest,
        raw_request: RawRequest | None = None,
        context: dict[str, Any] | None = None,
    ) -> AsyncIterator[str] | ChatCompletion:
        _refuse_unsupported(request)
        if request.logprobs:
            raise OpenAIError("'logprobs' is not supported")
        prompt = self.apply_chat_template(request)
        seq = self._sequence(self._prompt_ids(prompt)[0], request.token_budget, request)
        if request.stream:
            return self._stream_chat(seq, request)
        text = await _collect(seq)
        return ChatCompletion(
            model=request.model,
            choices=[
                ChatCompletionChoice(
                    index=0,
                    message=ChatMessage(role="assistant", content=text),
                    finish_reason=seq.finish,
                )
            ],
            usage=_usage([seq]),
        )

    def apply_chat_template(self, request: ChatCompletionRequest) -> str:
        """The conversation rendered by the tokenizer's chat template (KServe's rule: no
        template, no chat)."""
        if self.tokenizer.chat_template is None:
            raise OpenAIError(  # KServe's message (generative_model.apply_hf_chat_template)
                "As of transformers v4.44, default chat template is no longer allowed, so you "
                "must provide a chat template if the tokenizer does not define one."
            )
        for message in request.messages:
            if isinstance(message.content, list) and any(p.type != "text" for p in message.content):
                raise OpenAIError("Only text content parts are supported.")
        conversation = [{"role": m.role, "content": m.text} for m in request.messages]
        try:
            text = self.tokenizer.apply_chat_template(
                conversation, tokenize=False, add_generation_prompt=True
            )
        except Exception as exc:
            raise OpenAIError(f"The chat template failed: {exc}") from exc
        return str(text)

    async def _stream_chat(
        self, seq: Sequence, request: ChatCompletionRequest
    ) -> AsyncIterator[str]:
        response_id = generate_id("chatcmpl")

        def chunk(delta: ChoiceDelta, finish: str | None = None) -> str:
            choice = ChunkChoice(index=0, delta=delta, finish_reason=finish)
            return _event(
                ChatCompletionChunk(id=response_id, model=request.model, choices=[choice])
            )

        yield chunk(ChoiceDelta(role="assistant", content=""))
        try:
            async for piece in seq.pieces():
                yield chunk(ChoiceDelta(content=piece))
        except GenerationFailed as exc:
            raise OpenAIError(str(exc), 500) from exc
        yield chunk(ChoiceDelta(), seq.finish)
        if request.include_usage:
            usage = ChatCompletionChunk(
                id=response_id, model=request.model, choices=[], usage=_usage([seq])
            )
            yield _event(usage)
        yield "data: [DONE]\n\n"

    # ---- shared ---------------------------------------------------------------------------

    def _prompt_ids(self, prompt: Any) -> list[list[int]]:
        """The prompts as token ids: text is tokenized, ids are checked against the vocab."""
        if isinstance(prompt, str):
            return [self._tokenize(prompt)]
        if prompt and all(isinstance(p, int) for p in prompt):
            prompt = [prompt]
        out = []
        vocab = len(self.tokenizer)
        for item in prompt:
            if isinstance(item, str):
                out.append(self._tokenize(item))
            else:
                if any(t >= vocab for t in item):
                    raise OpenAIError(f"Token ids must be below the vocabulary size ({vocab}).")
                out.append(list(item))
        return out

    def _tokenize(self, text: str) -> list[int]:
        if len(text) > self.max_model_len * CHARS_PER_TOKEN:
            raise OpenAIError(
                f"This model's maximum context length is {self.max_model_len} tokens; the "
                f"prompt ({len(text)} characters) is far longer."
            )
        ids: list[int] = self.tokenizer(text)["input_ids"]
        return ids

    def _sequence(self, ids: list[int], max_tokens: int | None, request: Any) -> Sequence:
        if self.engine is None:
            raise OpenAIError(f"Model {self.name} is not loaded.", 503)
        if not ids:
            raise OpenAIError("The prompt is empty.")
        limit = self.max_model_len
        budget = max_tokens if max_tokens is not None else limit - len(ids)
        if len(ids) + max(budget, 1) > limit:
            raise OpenAIError(  # KServe's message (generative_model.create_completion)
                f"This model's maximum context length is {limit} tokens. "
                f"However, you requested {max(budget, 0) + len(ids)} tokens "
                f"({len(ids)} in the messages, {max(budget, 0)} in the completion). "
                "Please reduce the length of the messages or completion."
            )
        temperature = request.temperature
        sampling = Sampling(
            do_sample=temperature is not None and temperature > 0,
            temperature=temperature,
            top_p=request.top_p,
            seed=request.seed,
        )
        seq = Sequence(ids, budget, request.stop_list, sampling, asyncio.get_running_loop())
        try:
            self.engine.submit(seq)
        except GenerationFailed as exc:
            raise OpenAIError(f"Model {self.name}: {exc}", 503) from exc
        return seq


def _refuse_unsupported(request: CompletionRequest | ChatCompletionRequest) -> None:
    # KServe's validate_supported_completion_params, with presence_penalty and logit_bias
    # refused as well (not applied, so not silently accepted).
    n, frequency, presence = request.n, request.frequency_penalty, request.presence_penalty
    if request.logit_bias:
        raise OpenAIError("'logit_bias' is not supported")
    if frequency:
        raise OpenAIError("'frequency_penalty' is not supported")
    if presence:
        raise OpenAIError("'presence_penalty' is not supported")
    if n > 1:
        raise OpenAIError("'n' > 1 is not supported")


async def _collect(seq: Sequence) -> str:
    try:
        return "".join([piece async for piece in seq.pieces()])
    except GenerationFailed as exc:
        raise OpenAIError(str(exc), 500) from exc


def _usage(seqs: list[Sequence]) -> UsageInfo:
    prompt = sum(len(s.prompt_ids) for s in seqs)
    completion = sum(len(s.ids) for s in seqs)
    return UsageInfo(
        prompt_tokens=prompt, completion_tokens=completion, total_tokens=prompt + completion
    )


def _event(chunk: Any) -> str:
    return f"data: {chunk.model_dump_json(exclude_none=True)}\n\n"
