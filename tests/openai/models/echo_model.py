"""A KServe-style OpenAI model: only its import differs from KServe's
(``from kserve.protocol.rest.openai import OpenAIGenerativeModel``). It returns each of the
shapes a method may return: typed objects, plain dicts, an async generator of SSE lines."""

import json

from modelport.openai import (
    ChatCompletion,
    ChatCompletionChoice,
    ChatMessage,
    OpenAIError,
    OpenAIGenerativeModel,
)


class EchoModel(OpenAIGenerativeModel):
    async def create_completion(self, request, raw_request=None, context=None):
        if request.prompt == "fail":
            raise OpenAIError("the prompt asked to fail")
        if request.prompt == "crash":
            raise RuntimeError("boom")
        if request.prompt == "not json":
            return {"choices": {1, 2}}
        if request.prompt == "not a response":
            return 42
        if request.stream:
            return self._stream(str(request.prompt), request.model)
        # A plain dict in OpenAI's shape; unknown request fields are attributes.
        return {
            "id": "cmpl-echo",
            "object": "text_completion",
            "created": 0,
            "model": request.model,
            "choices": [
                {
                    "index": 0,
                    "text": f"{request.prompt}|{getattr(request, 'flavour', '-')}",
                    "finish_reason": "stop",
                    "logprobs": None,
                }
            ],
        }

    async def _stream(self, prompt, model):
        for word in prompt.split():
            chunk = json.dumps(
                {
                    "id": "cmpl-echo",
                    "object": "text_completion",
                    "created": 0,
                    "model": model,
                    "choices": [{"index": 0, "text": word, "finish_reason": None}],
                }
            )
            yield f"data: {chunk}\n\n"
        yield "data: [DONE]\n\n"

    async def create_chat_completion(self, request, raw_request=None, context=None):
        last = request.messages[-1].content
        return ChatCompletion(
            model=request.model,
            choices=[
                ChatCompletionChoice(
                    index=0,
                    message=ChatMessage(role="assistant", content=f"you said: {last}"),
                    finish_reason="stop",
                )
            ],
        )
