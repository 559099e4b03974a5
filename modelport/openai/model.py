"""OpenAI-compatible model base classes with KServe's names and signatures
(python/kserve/kserve/protocol/rest/openai/openai_model.py), so a KServe OpenAI model runs
here with its import changed::

    from modelport.openai import OpenAIGenerativeModel

    class Echo(OpenAIGenerativeModel):
        async def create_completion(self, request, raw_request=None, context=None):
            return {"id": "1", "object": "text_completion", "created": 0,
                    "model": request.model, "choices": [...]}

Each method may return the typed response (``Completion`` ...), a plain dict in OpenAI's
shape, an ``ErrorResponse``, or, for ``stream: true``, an async generator of SSE lines
(``"data: {...}\\n\\n"``, ending ``"data: [DONE]\\n\\n"``) or of chunk objects/dicts, which
the server frames. Raising :class:`~modelport.openai.errors.OpenAIError` answers with its
status; ``context["headers"]`` holds the request headers.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import AsyncIterator, Mapping
from typing import Any

from modelport.errors import InvalidInput
from modelport.model import Headers, Model
from modelport.openai.errors import ErrorResponse
from modelport.openai.types import (
    ChatCompletion,
    ChatCompletionRequest,
    Completion,
    CompletionRequest,
    Embedding,
    EmbeddingRequest,
    Rerank,
    RerankRequest,
)

__all__ = ["OpenAIEncoderModel", "OpenAIGenerativeModel", "OpenAIModel", "RawRequest"]

#: What the OpenAI methods may return.
OpenAIResult = Any


class RawRequest:
    """What KServe passes as ``raw_request`` (a FastAPI Request there): the request's
    method, path, headers and body bytes."""

    __slots__ = ("method", "url_path", "headers", "_body")

    def __init__(self, method: str, path: str, headers: Mapping[str, str], body: bytes) -> None:
        self.method = method
        self.url_path = path
        self.headers = dict(headers)
        self._body = body

    async def body(self) -> bytes:
        """The request body as received."""
        return self._body


class OpenAIModel(Model):
    """A model answering OpenAI's routes. Ready on construction, as KServe's (which does not
    call ``load()`` on such models); override ``load`` and set ``ready`` if it must load."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.ready = True

    def predict(
        self, payload: Any, headers: Headers | None = None, response_headers: Headers | None = None
    ) -> Any:
        raise InvalidInput(
            f"Model {self.name} answers the OpenAI routes under /openai/v1, not V1/V2 inference."
        )


class OpenAIGenerativeModel(OpenAIModel):
    """Completions (``/openai/v1/completions``) and chat completions
    (``/openai/v1/chat/completions``)."""

    @abstractmethod
    async def create_completion(
        self,
        request: CompletionRequest,
        raw_request: RawRequest | None = None,
        context: dict[str, Any] | None = None,
    ) -> AsyncIterator[str] | Completion | ErrorResponse | dict[str, Any]:
        """Answer a completion request."""

    @abstractmethod
    async def create_chat_completion(
        self,
        request: ChatCompletionRequest,
        raw_request: RawRequest | None = None,
        context: dict[str, Any] | None = None,
    ) -> AsyncIterator[str] | ChatCompletion | ErrorResponse | dict[str, Any]:
        """Answer a chat completion request."""


class OpenAIEncoderModel(OpenAIModel):
    """Embeddings (``/openai/v1/embeddings``) and rerank (``/openai/v1/rerank``)."""

    @abstractmethod
    async def create_embedding(
        self,
        request: EmbeddingRequest,
        raw_request: RawRequest | None = None,
        context: dict[str, Any] | None = None,
    ) -> AsyncIterator[str] | Embedding | ErrorResponse | dict[str, Any]:
        """Answer an embeddings request."""

    @abstractmethod
    async def create_rerank(
        self,
        request: RerankRequest,
        raw_request: RawRequest | None = None,
        context: dict[str, Any] | None = None,
    ) -> AsyncIterator[str] | Rerank | ErrorResponse | dict[str, Any]:
        """Answer a rerank request."""
