"""A chat model that streams fixed chunks as fast as the server takes them, so that the
streaming benchmark (bench/streaming.py) measures the path (server, gateway relay, client)
and not a transformer.

Served with:
    modelport serve bench/models/stream_chat.py --name chat --format custom

`max_tokens` chunks per answer (64 when not given), each one OpenAI `chat.completion.chunk`
whose delta carries the text "tok ", then `data: [DONE]`. Without `stream`, one
`chat.completion` with the same text.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

from modelport.openai import OpenAIGenerativeModel

DEFAULT_TOKENS = 64
TOKEN = "tok "


def _chunk_line(model: str) -> str:
    doc = {
        "id": "chatcmpl-bench",
        "object": "chat.completion.chunk",
        "created": 0,
        "model": model,
        "choices": [{"index": 0, "delta": {"content": TOKEN}, "finish_reason": None}],
    }
    return f"data: {json.dumps(doc, separators=(',', ':'))}\n\n"


class StreamChat(OpenAIGenerativeModel):
    async def create_chat_completion(
        self, request: Any, raw_request: Any = None, context: Any = None
    ) -> Any:
        tokens = int(request.max_tokens or DEFAULT_TOKENS)
        if request.stream:
            return self._stream(_chunk_line(request.model), tokens)
        return {
            "id": "chatcmpl-bench",
            "object": "chat.completion",
            "created": 0,
            "model": request.model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": TOKEN * tokens},
                    "finish_reason": "length",
                }
            ],
        }

    async def _stream(self, line: str, tokens: int) -> AsyncIterator[str]:
        # The same pre-serialised line every time: the model itself costs next to nothing.
        for _ in range(tokens):
            yield line
        yield "data: [DONE]\n\n"

    async def create_completion(
        self, request: Any, raw_request: Any = None, context: Any = None
    ) -> Any:
        raise NotImplementedError
