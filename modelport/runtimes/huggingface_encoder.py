"""The huggingface runtime's encoder tasks: text_embedding on the OpenAI routes (embeddings,
and rerank by cosine similarity of the query's and documents' embeddings), and fill_mask,
token_classification and sequence_classification on V1/V2 predict, with KServe's outputs
(huggingfaceserver/encoder_model.py: class ids, or probabilities with
--return_probabilities; the predicted token for each mask).

Forward passes run on one thread per model; texts of requests that arrive while it is busy
are padded into the next batch together.
"""

from __future__ import annotations

import asyncio
import base64
import os
import threading
from collections import deque
from collections.abc import Callable
from typing import Any

import numpy as np

from modelport.errors import InvalidInput
from modelport.model import Headers, Model
from modelport.openai import (
    Embedding,
    EmbeddingRequest,
    EmbeddingResponseData,
    OpenAIEncoderModel,
    OpenAIError,
    RawRequest,
    Rerank,
    RerankDocument,
    RerankRequest,
    RerankResult,
    UsageInfo,
)
from modelport.protocol.infer import InferRequest
from modelport.runtimes.huggingface import (
    CHARS_PER_TOKEN,
    HFOptions,
    context_length,
    load_config,
    load_tokenizer,
    load_weights,
)

Job = tuple[list[list[int]], asyncio.Future[list[Any]], asyncio.AbstractEventLoop]


class BatchWorker:
    """Runs ``fn`` on the token ids of every waiting request at once, on its own thread."""

    def __init__(self, fn: Callable[[list[list[int]]], list[Any]], max_batch: int) -> None:
        self.fn = fn
        self.max_batch = max(1, max_batch)
        self._jobs: deque[Job] = deque()
        self._cond = threading.Condition()
        self._pid = 0
        #: number of texts in each forward pass (observable batching)
        self.batch_sizes: deque[int] = deque(maxlen=1024)

    async def run(self, items: list[list[int]]) -> list[Any]:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[list[Any]] = loop.create_future()
        with self._cond:
            if self._pid != os.getpid():
                self._pid = os.getpid()  # threads do not survive fork: one per process
                self._jobs.clear()
                threading.Thread(target=self._loop, name="hf-encode", daemon=True).start()
            self._jobs.append((items, future, loop))
            self._cond.notify()
        return await future

    def _loop(self) -> None:
        while True:
            with self._cond:
                while not self._jobs:
                    self._cond.wait()
                jobs = [self._jobs.popleft()]
                size = len(jobs[0][0])
                while self._jobs and size + len(self._jobs[0][0]) <= self.max_batch:
                    size += len(self._jobs[0][0])
                    jobs.append(self._jobs.popleft())
            self._serve(jobs)

    def _serve(self, jobs: list[Job]) -> None:
        items = [item for job in jobs for item in job[0]]
        results: list[Any] = []
        try:
            # One request may bring many texts: never more than max_batch per forward pass.
            for start in range(0, len(items), self.max_batch):
                part = items[start : start + self.max_batch]
                self.batch_sizes.append(len(part))
                results.extend(self.fn(part))
        except Exception as exc:
            for _, future, loop in jobs:
                _settle(loop, future, None, exc)
            return
        start = 0
        for job_items, future, loop in jobs:
            _settle(loop, future, results[start : start + len(job_items)], None)
            start += len(job_items)


def _settle(
    loop: asyncio.AbstractEventLoop,
    future: asyncio.Future[list[Any]],
    result: list[Any] | None,
    error: BaseException | None,
) -> None:
    def apply() -> None:
        if future.done():
            return
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result or [])

    try:
        loop.call_soon_threadsafe(apply)
    except RuntimeError:
        pass  # the loop is gone


class _Encoder:
    """Tokenizer, weights and context limit shared by the encoder models."""

    def __init__(self, options: HFOptions, auto_class_name: str) -> None:
        import transformers

        config = load_config(options)
        self.tokenizer = load_tokenizer(options)
        self.model = load_weights(options, getattr(transformers, auto_class_name))
        self.max_len = context_length(options, config, self.tokenizer)

    def ids(self, texts: list[str]) -> list[list[int]]:
        for i, text in enumerate(texts):
            if len(text) > self.max_len * CHARS_PER_TOKEN:
                raise InvalidInput(
                    f"Input {i} is far longer than this model's maximum context length of "
                    f"{self.max_len} tokens."
                )
        out = [self.tokenizer(t)["input_ids"] for t in texts]
        for i, ids in enumerate(out):
            if len(ids) > self.max_len:
                raise InvalidInput(
                    f"Input {i} has {len(ids)} tokens; this model's maximum context length is "
                    f"{self.max_len} tokens."
                )
        return out

    def forward(self, batch: list[list[int]]) -> tuple[Any, Any]:
        """The model's output and the attention mask, for a padded batch."""
        import torch

        inputs = self.tokenizer.pad({"input_ids": batch}, padding=True, return_tensors="pt")
        with torch.inference_mode():
            return self.model(**inputs), inputs["attention_mask"]


class HFEmbeddingModel(OpenAIEncoderModel):
    """text_embedding: mean-pooled, L2-normalised last hidden states."""

    def __init__(self, name: str, options: HFOptions) -> None:
        super().__init__(name)
        self.ready = False
        self.options = options
        self.encoder: _Encoder | None = None
        self.worker: BatchWorker | None = None

    def load(self) -> bool:
        self.encoder = _Encoder(self.options, "AutoModel")
        self.worker = BatchWorker(self._embed, self.options.max_batch_size)
        self.ready = True
        return True

    def _embed(self, batch: list[list[int]]) -> list[np.ndarray]:
        assert self.encoder is not None
        output, mask = self.encoder.forward(batch)
        hidden = output.last_hidden_state.float()
        weights = mask.unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * weights).sum(1) / weights.sum(1).clamp(min=1)
        pooled = pooled / pooled.norm(dim=-1, keepdim=True).clamp(min=1e-12)
        return list(pooled.numpy().astype(np.float32))

    async def _vectors(self, texts: list[str] | list[list[int]]) -> tuple[list[np.ndarray], int]:
        if self.encoder is None or self.worker is None:
            raise OpenAIError(f"Model {self.name} is not loaded.", 503)
        if texts and isinstance(texts[0], str):
            ids = self.encoder.ids([str(t) for t in texts])
        else:
            ids = [list(map(int, t)) for t in texts]
            vocab = len(self.encoder.tokenizer)
            if any(t >= vocab for item in ids for t in item):
                raise OpenAIError(f"Token ids must be below the vocabulary size ({vocab}).")
            if any(len(item) > self.encoder.max_len for item in ids):
                raise OpenAIError(f"An input is longer than {self.encoder.max_len} tokens.")
        return await self.worker.run(ids), sum(len(i) for i in ids)

    async def create_embedding(
        self,
        request: EmbeddingRequest,
        raw_request: RawRequest | None = None,
        context: dict[str, Any] | None = None,
    ) -> Embedding:
        if request.dimensions is not None:
            raise OpenAIError("'dimensions' is not supported by this model")
        given = request.input
        texts: Any = [given] if isinstance(given, str) else given
        if texts and isinstance(texts[0], int):
            texts = [texts]
        vectors, tokens = await self._vectors(texts)
        data = [
            EmbeddingResponseData(index=i, embedding=_encode(v, request.encoding_format))
            for i, v in enumerate(vectors)
        ]
        usage = UsageInfo(prompt_tokens=tokens, completion_tokens=None, total_tokens=tokens)
        return Embedding(model=request.model, data=data, usage=usage)

    async def create_rerank(
        self,
        request: RerankRequest,
        raw_request: RawRequest | None = None,
        context: dict[str, Any] | None = None,
    ) -> Rerank:
        vectors, tokens = await self._vectors([request.query, *request.documents])
        query, docs = vectors[0], vectors[1:]
        scores = [float(np.dot(query, d)) for d in docs]
        order = sorted(range(len(docs)), key=lambda i: scores[i], reverse=True)
        if request.top_n:
            order = order[: request.top_n]
        results = [
            RerankResult(
                index=i,
                relevance_score=scores[i],
                document=RerankDocument(text=request.documents[i])
                if request.return_documents
                else None,
            )
            for i in order
        ]
        usage = UsageInfo(prompt_tokens=tokens, completion_tokens=None, total_tokens=tokens)
        return Rerank(model=request.model, usage=usage, results=results)


def _encode(vector: np.ndarray, encoding: str) -> list[float] | str:
    if encoding == "base64":
        # What the openai client asks for by default: little-endian float32 bytes.
        return base64.b64encode(vector.astype("<f4").tobytes()).decode()
    return [float(x) for x in vector]


_AUTO_CLASSES = {
    "fill_mask": "AutoModelForMaskedLM",
    "token_classification": "AutoModelForTokenClassification",
    "sequence_classification": "AutoModelForSequenceClassification",
}


class HFPredictiveModel(Model):
    """fill_mask, token_classification, sequence_classification on V1 and V2: the inputs are
    strings (V1 ``instances``, or a V2 BYTES tensor), one prediction per string."""

    def __init__(self, name: str, options: HFOptions, task: str) -> None:
        super().__init__(name)
        self.options = options
        self.task = task
        self.encoder: _Encoder | None = None
        self.worker: BatchWorker | None = None

    def load(self) -> bool:
        self.encoder = _Encoder(self.options, _AUTO_CLASSES[self.task])
        self.worker = BatchWorker(self._predict_batch, self.options.max_batch_size)
        self.ready = True
        return True

    async def predict(
        self, payload: Any, headers: Headers | None = None, response_headers: Headers | None = None
    ) -> Any:
        if self.encoder is None or self.worker is None:
            raise InvalidInput(f"Model {self.name} is not loaded.")
        texts = _texts(payload)
        results = await self.worker.run(self.encoder.ids(texts))
        return {"predictions": results}

    def _predict_batch(self, batch: list[list[int]]) -> list[Any]:
        assert self.encoder is not None
        output, mask = self.encoder.forward(batch)
        logits = output.logits.float()
        probabilities = self.options.return_probabilities
        out: list[Any] = []
        for row in range(len(batch)):
            length = int(mask[row].sum())
            if self.task == "sequence_classification":
                scores = logits[row].softmax(-1)
                out.append(scores.tolist() if probabilities else int(scores.argmax()))
            elif self.task == "token_classification":
                tokens = logits[row, :length]
                out.append(
                    tokens.softmax(-1).tolist() if probabilities else tokens.argmax(-1).tolist()
                )
            else:
                out.append(self._fill(batch[row], logits[row]))
        return out

    def _fill(self, ids: list[int], logits: Any) -> Any:
        assert self.encoder is not None
        tokenizer = self.encoder.tokenizer
        masks = [i for i, t in enumerate(ids) if t == tokenizer.mask_token_id]
        if not masks:
            raise InvalidInput(f"No {tokenizer.mask_token} token in the input.")
        words = [tokenizer.decode([int(logits[i].argmax())]).strip() for i in masks]
        return words[0] if len(words) == 1 else words


def _texts(payload: Any) -> list[str]:
    if isinstance(payload, InferRequest):
        if len(payload.inputs) != 1:
            raise InvalidInput("Send one BYTES input holding the texts.")
        values = payload.inputs[0].as_numpy().reshape(-1).tolist()
    elif isinstance(payload, dict) and isinstance(payload.get("instances"), list):
        values = payload["instances"]
    else:
        raise InvalidInput('Send {"instances": ["text", ...]} or a V2 BYTES input.')
    texts = [v.decode(errors="replace") if isinstance(v, bytes) else v for v in values]
    if not texts or not all(isinstance(t, str) for t in texts):
        raise InvalidInput("Every instance must be a string.")
    return texts
