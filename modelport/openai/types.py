"""OpenAI request and response types, with the names KServe exports from
``kserve.protocol.rest.openai.types`` (which re-exports vLLM's protocol classes).

Requests are validated once at the edge (server/openai_routes.py): strict types (a string is
not a number), finite numbers in OpenAI's documented ranges, unknown fields kept and readable
as attributes (``request.my_field``), as vLLM's models allow extra fields.
"""

from __future__ import annotations

import time
import uuid
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "ChatCompletion",
    "ChatCompletionChoice",
    "ChatCompletionChunk",
    "ChatCompletionRequest",
    "ChatMessage",
    "ChatPrompt",
    "ChoiceDelta",
    "ChunkChoice",
    "Completion",
    "CompletionChoice",
    "CompletionChunk",
    "CompletionRequest",
    "Embedding",
    "EmbeddingRequest",
    "EmbeddingResponseData",
    "Model",
    "ModelList",
    "Rerank",
    "RerankDocument",
    "RerankRequest",
    "RerankResult",
    "UsageInfo",
    "generate_id",
]

# Bounds that keep one request's cost finite whatever the model: the token budget is further
# bounded by the model's context length (max_model_len) where it runs.
MAX_TOKENS_LIMIT = 1 << 20
MAX_STOP_SEQUENCES = 16
MAX_STOP_LENGTH = 1024

Finite = Annotated[float, Field(allow_inf_nan=False)]
Temperature = Annotated[float, Field(ge=0.0, le=2.0, allow_inf_nan=False)]
TopP = Annotated[float, Field(ge=0.0, le=1.0, allow_inf_nan=False)]
Penalty = Annotated[float, Field(ge=-2.0, le=2.0, allow_inf_nan=False)]
MaxTokens = Annotated[int, Field(ge=1, le=MAX_TOKENS_LIMIT)]
StopText = Annotated[str, Field(max_length=MAX_STOP_LENGTH)]
Stop = StopText | Annotated[list[StopText], Field(max_length=MAX_STOP_SEQUENCES)]
TokenIds = Annotated[list[Annotated[int, Field(ge=0)]], Field(min_length=1)]


def generate_id(prefix: str = "cmpl") -> str:
    """A fresh response id, e.g. ``cmpl-3f9c...``."""
    return f"{prefix}-{uuid.uuid4().hex}"


class _Request(BaseModel):
    model_config = ConfigDict(strict=True, extra="allow", protected_namespaces=())

    model: Annotated[str, Field(min_length=1, max_length=256)]
    user: str | None = None


class _Sampling(_Request):
    max_tokens: MaxTokens | None = None
    temperature: Temperature | None = None
    top_p: TopP | None = None
    n: Annotated[int, Field(ge=1, le=128)] = 1
    stream: bool = False
    stream_options: dict[str, Any] | None = None
    stop: Stop | None = None
    seed: Annotated[int, Field(ge=0, le=(1 << 63) - 1)] | None = None
    presence_penalty: Penalty | None = None
    frequency_penalty: Penalty | None = None
    logit_bias: dict[str, Finite] | None = None

    @property
    def stop_list(self) -> list[str]:
        """``stop`` as a list (OpenAI accepts one string or several)."""
        if self.stop is None:
            return []
        return [self.stop] if isinstance(self.stop, str) else list(self.stop)

    @property
    def include_usage(self) -> bool:
        """Whether a streamed answer ends with a usage chunk (``stream_options``)."""
        return bool((self.stream_options or {}).get("include_usage"))


class CompletionRequest(_Sampling):
    """POST /openai/v1/completions."""

    prompt: str | list[str] | TokenIds | list[TokenIds] | None = None
    echo: bool = False
    logprobs: Annotated[int, Field(ge=0, le=20)] | None = None
    best_of: Annotated[int, Field(ge=1, le=128)] | None = None
    suffix: str | None = None


class TextPart(BaseModel):
    """A text part of a message's content."""

    model_config = ConfigDict(strict=True, extra="allow")
    type: str
    text: str | None = None


class ChatMessage(BaseModel):
    """One message of a conversation (also the ``message`` of a chat choice)."""

    model_config = ConfigDict(strict=True, extra="allow")
    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[TextPart] | None = None
    name: str | None = None

    @property
    def text(self) -> str:
        """The content as text (parts of type ``text`` joined; others are refused upstream)."""
        if self.content is None:
            return ""
        if isinstance(self.content, str):
            return self.content
        return "".join(p.text or "" for p in self.content if p.type == "text")


class ChatCompletionRequest(_Sampling):
    """POST /openai/v1/chat/completions."""

    messages: Annotated[list[ChatMessage], Field(min_length=1)]
    max_completion_tokens: MaxTokens | None = None
    logprobs: bool = False
    top_logprobs: Annotated[int, Field(ge=0, le=20)] | None = None

    @property
    def token_budget(self) -> int | None:
        """``max_completion_tokens`` (the newer name) or ``max_tokens``."""
        return self.max_completion_tokens or self.max_tokens


class EmbeddingRequest(_Request):
    """POST /openai/v1/embeddings."""

    input: (
        Annotated[str, Field(min_length=0)]
        | Annotated[list[str], Field(min_length=1, max_length=2048)]
        | TokenIds
        | Annotated[list[TokenIds], Field(min_length=1, max_length=2048)]
    )
    encoding_format: Literal["float", "base64"] = "float"
    dimensions: Annotated[int, Field(ge=1)] | None = None


class RerankRequest(_Request):
    """POST /openai/v1/rerank (the Jina/Cohere shape vLLM serves)."""

    query: str
    documents: Annotated[list[str], Field(min_length=1, max_length=4096)]
    top_n: Annotated[int, Field(ge=0)] = 0
    return_documents: bool = True


# ---- responses ---------------------------------------------------------------------------


class _Response(BaseModel):
    model_config = ConfigDict(extra="allow", protected_namespaces=())


class UsageInfo(_Response):
    prompt_tokens: int = 0
    completion_tokens: int | None = 0
    total_tokens: int = 0


class CompletionChoice(_Response):
    index: int
    text: str
    logprobs: Any = None
    finish_reason: str | None = None


class Completion(_Response):
    id: str = Field(default_factory=generate_id)
    object: str = "text_completion"
    created: int = Field(default_factory=lambda: int(time.time()))
    model: str
    choices: list[CompletionChoice]
    usage: UsageInfo | None = None
    system_fingerprint: str | None = None


class CompletionChunk(Completion):
    """A streamed part of a completion (OpenAI streams ``text_completion`` objects too)."""


class ChoiceDelta(_Response):
    role: str | None = None
    content: str | None = None


class ChatCompletionChoice(_Response):
    index: int
    message: ChatMessage
    logprobs: Any = None
    finish_reason: str | None = None


class ChatCompletion(_Response):
    id: str = Field(default_factory=lambda: generate_id("chatcmpl"))
    object: str = "chat.completion"
    created: int = Field(default_factory=lambda: int(time.time()))
    model: str
    choices: list[ChatCompletionChoice]
    usage: UsageInfo | None = None
    system_fingerprint: str | None = None


class ChunkChoice(_Response):
    index: int
    delta: ChoiceDelta
    logprobs: Any = None
    finish_reason: str | None = None


class ChatCompletionChunk(_Response):
    id: str = Field(default_factory=lambda: generate_id("chatcmpl"))
    object: str = "chat.completion.chunk"
    created: int = Field(default_factory=lambda: int(time.time()))
    model: str
    choices: list[ChunkChoice]
    usage: UsageInfo | None = None
    system_fingerprint: str | None = None


class EmbeddingResponseData(_Response):
    index: int
    object: str = "embedding"
    embedding: list[float] | str


class Embedding(_Response):
    """The embeddings response (vLLM's EmbeddingResponse, KServe's ``Embedding``)."""

    id: str = Field(default_factory=lambda: generate_id("embd"))
    object: str = "list"
    created: int = Field(default_factory=lambda: int(time.time()))
    model: str
    data: list[EmbeddingResponseData]
    usage: UsageInfo


class RerankDocument(_Response):
    text: str


class RerankResult(_Response):
    index: int
    document: RerankDocument | None = None
    relevance_score: float


class Rerank(_Response):
    id: str = Field(default_factory=lambda: generate_id("rerank"))
    model: str
    usage: UsageInfo
    results: list[RerankResult]


class Model(_Response):
    """One entry of GET /openai/v1/models (OpenAI's Model object)."""

    id: str
    object: str = "model"
    created: int
    owned_by: str = "modelport"


class ModelList(_Response):
    object: str = "list"
    data: list[Model]


class ChatPrompt(BaseModel):
    """A conversation rendered to one prompt (KServe's openai_model.ChatPrompt)."""

    response_role: str = "assistant"
    prompt: str
