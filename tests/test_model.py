"""The Model base class: hook chain, sync/async hooks, response headers, explain, forwarding."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import numpy as np
import orjson
import pytest

from modelport import InferenceVerb, InferInput, InferOutput, InferRequest, InferResponse, Model
from modelport.errors import InferenceError, InvalidInput
from modelport.protocol import v2


class SyncChain(Model):
    def __init__(self, name: str = "sync") -> None:
        super().__init__(name)
        self.seen: list[tuple[str, Any, Any]] = []

    def preprocess(self, payload: Any, headers: dict[str, str] | None = None) -> Any:
        self.seen.append(("preprocess", payload, headers))
        return {"instances": [x + 1 for x in payload["instances"]]}

    def predict(self, payload: Any, headers: dict[str, str] | None = None) -> Any:
        self.seen.append(("predict", payload, headers))
        return {"predictions": [x * 10 for x in payload["instances"]]}

    def postprocess(self, result: Any, headers: dict[str, str] | None = None) -> Any:
        self.seen.append(("postprocess", result, headers))
        return {**result, "post": True}


class AsyncChain(Model):
    async def preprocess(self, payload: Any, headers: dict[str, str] | None = None) -> Any:
        await asyncio.sleep(0)
        return {"instances": [x + 1 for x in payload["instances"]]}

    async def predict(self, payload: Any, headers: dict[str, str] | None = None) -> Any:
        await asyncio.sleep(0)
        return {"predictions": [x * 10 for x in payload["instances"]]}

    async def postprocess(
        self,
        result: Any,
        headers: dict[str, str] | None = None,
        response_headers: dict[str, str] | None = None,
    ) -> Any:
        await asyncio.sleep(0)
        assert response_headers is not None
        response_headers["x-post"] = "async"
        return {**result, "post": True}


class Mixed(Model):
    async def preprocess(self, payload: Any, headers: dict[str, str] | None = None) -> Any:
        return {"instances": [x + 1 for x in payload["instances"]]}

    def predict(self, payload: Any, headers: dict[str, str] | None = None) -> Any:
        return {"predictions": [x * 10 for x in payload["instances"]]}


def test_sync_hooks_run_in_order_with_headers() -> None:
    model = SyncChain()
    headers = {"x-request-id": "abc"}
    result = asyncio.run(model({"instances": [1, 2]}, headers=headers))
    assert result == {"predictions": [20, 30], "post": True}
    assert [step for step, _, _ in model.seen] == ["preprocess", "predict", "postprocess"]
    assert all(h is headers for _, _, h in model.seen)
    assert model.seen[1][1] == {"instances": [2, 3]}  # predict sees preprocess's output


def test_async_hooks_are_awaited() -> None:
    response_headers: dict[str, str] = {}
    result = asyncio.run(AsyncChain("a")({"instances": [1]}, response_headers=response_headers))
    assert result == {"predictions": [20], "post": True}
    assert response_headers == {"x-post": "async"}


def test_sync_and_async_hooks_mix() -> None:
    assert asyncio.run(Mixed("m")({"instances": [0, 4]})) == {"predictions": [10, 50]}


def test_sync_hook_returning_an_awaitable_is_awaited() -> None:
    class Deferred(Model):
        def predict(self, payload: Any, headers: dict[str, str] | None = None) -> Any:
            async def later() -> Any:
                return {"predictions": payload["instances"][::-1]}

            return later()

    assert asyncio.run(Deferred("d")({"instances": [1, 2, 3]})) == {"predictions": [3, 2, 1]}


def test_postprocess_with_response_headers_gets_the_callers_dict() -> None:
    class SetsHeader(Model):
        def predict(self, payload: Any, headers: dict[str, str] | None = None) -> Any:
            return {"predictions": [1]}

        def postprocess(
            self,
            result: Any,
            headers: dict[str, str] | None = None,
            response_headers: dict[str, str] | None = None,
        ) -> Any:
            assert response_headers is not None
            response_headers["x-model"] = self.name
            return result

    response_headers: dict[str, str] = {"existing": "1"}
    out = asyncio.run(SetsHeader("h")({"instances": [0]}, response_headers=response_headers))
    assert out == {"predictions": [1]}
    assert response_headers == {"existing": "1", "x-model": "h"}


def test_postprocess_without_response_headers_is_called_with_two_arguments() -> None:
    # KServe-era code: ``def postprocess(self, result, headers=None)`` must keep working.
    class Old(Model):
        def predict(self, payload: Any, headers: dict[str, str] | None = None) -> Any:
            return {"predictions": [2]}

        def postprocess(self, result: Any, headers: dict[str, str] | None = None) -> Any:
            return {"wrapped": result, "headers": headers}

    out = asyncio.run(Old("o")({"instances": []}, headers={"h": "v"}, response_headers={}))
    assert out == {"wrapped": {"predictions": [2]}, "headers": {"h": "v"}}


def test_default_hooks_are_identity_around_predict() -> None:
    class OnlyPredict(Model):
        def predict(self, payload: Any, headers: dict[str, str] | None = None) -> Any:
            return {"predictions": payload["instances"]}

    assert asyncio.run(OnlyPredict("p")({"instances": [[1, 2]]})) == {"predictions": [[1, 2]]}


def test_v2_request_reaches_predict_as_infer_request() -> None:
    class Doubler(Model):
        def predict(self, payload: Any, headers: dict[str, str] | None = None) -> Any:
            assert isinstance(payload, InferRequest)
            x = payload.inputs[0].as_numpy()
            return InferResponse(payload.id, self.name, [InferOutput.from_numpy("y", x * 2)])

    x = np.array([[1.0, 2.0]], np.float32)
    request = InferRequest("dbl", [InferInput("x", [1, 2], "FP32", x)], request_id="7")
    response = asyncio.run(Doubler("dbl")(request))
    assert response.id == "7"
    np.testing.assert_array_equal(response.outputs[0].as_numpy(), [[2.0, 4.0]])


def test_explain_verb_calls_explain_not_predict() -> None:
    class Explains(Model):
        def predict(self, payload: Any, headers: dict[str, str] | None = None) -> Any:
            raise AssertionError("predict must not run")

        async def explain(self, payload: Any, headers: dict[str, str] | None = None) -> Any:
            return {"explanations": [len(payload["instances"])]}

        def postprocess(self, result: Any, headers: dict[str, str] | None = None) -> Any:
            return {**result, "post": True}

    out = asyncio.run(Explains("e")({"instances": [1, 2]}, verb=InferenceVerb.EXPLAIN))
    assert out == {"explanations": [2], "post": True}


def test_default_predict_without_predictor_host_is_invalid_input() -> None:
    with pytest.raises(InvalidInput, match="does not implement predict"):
        asyncio.run(Model("bare")({"instances": [1]}))


def test_default_explain_without_predictor_host_is_invalid_input() -> None:
    with pytest.raises(InvalidInput, match="does not support explain"):
        asyncio.run(Model("bare")({"instances": [1]}, verb=InferenceVerb.EXPLAIN))


def test_exceptions_from_hooks_propagate() -> None:
    class Fails(Model):
        async def preprocess(self, payload: Any, headers: dict[str, str] | None = None) -> Any:
            raise ValueError("bad feature")

    with pytest.raises(ValueError, match="bad feature"):
        asyncio.run(Fails("f")({"instances": [1]}))


def test_lifecycle_defaults() -> None:
    model = Model("life")
    assert model.ready is False
    assert asyncio.run(model.healthy()) is False
    assert model.load() is True
    assert model.ready is True
    assert asyncio.run(model.healthy()) is True
    model.unload()
    assert model.ready is False
    assert model.get_input_types() == [] and model.get_output_types() == []
    assert model.platform == ""


# ---- transformer: forwarding to predictor_host ----------------------------------------------


def forwarding_model(protocol: str, handler: Any) -> Model:
    model = Model("iris", predictor_host="predictor:8080", protocol=protocol)
    model._http_client = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    return model


@pytest.mark.parametrize(
    ("verb", "suffix"), [(InferenceVerb.PREDICT, "predict"), (InferenceVerb.EXPLAIN, "explain")]
)
def test_v1_forwarding_to_predictor(verb: InferenceVerb, suffix: str) -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"predictions": [0, 1]})

    model = forwarding_model("v1", handler)
    assert asyncio.run(model({"instances": [[1, 2], [3, 4]]}, verb=verb)) == {"predictions": [0, 1]}
    assert str(seen[0].url) == f"http://predictor:8080/v1/models/iris:{suffix}"
    assert orjson.loads(seen[0].content) == {"instances": [[1, 2], [3, 4]]}


def test_v2_forwarding_to_predictor() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        req = v2.decode_request(request.content, "iris")
        x = req.inputs[0].as_numpy()
        body = {
            "model_name": "iris",
            "id": req.id,
            "outputs": [
                {
                    "name": "y",
                    "shape": list(x.shape),
                    "datatype": "FP32",
                    "data": (x + 1).ravel().tolist(),
                }
            ],
        }
        return httpx.Response(200, content=orjson.dumps(body))

    model = forwarding_model("v2", handler)
    x = np.array([[1.0, 2.0]], np.float32)
    request = InferRequest("iris", [InferInput("x", [1, 2], "FP32", x)], request_id="q1")
    response = asyncio.run(model(request))
    assert str(seen[0].url) == "http://predictor:8080/v2/models/iris/infer"
    assert response.id == "q1"
    np.testing.assert_array_equal(response.outputs[0].as_numpy(), [[2.0, 3.0]])


def test_predictor_400_stays_a_client_error() -> None:
    model = forwarding_model("v1", lambda request: httpx.Response(400, json={"error": "bad"}))
    with pytest.raises(InvalidInput, match="400"):
        asyncio.run(model({"instances": [1]}))


def test_predictor_errors_become_inference_errors() -> None:
    model = forwarding_model("v1", lambda request: httpx.Response(503, text="warming up"))
    with pytest.raises(InferenceError, match="503: warming up"):
        asyncio.run(model({"instances": [1]}))


def oip_predictor(request: httpx.Request) -> httpx.Response:
    """A predictor that honours the binary tensor extension, as any OIP server does."""
    req = v2.decode_request(request.content, "iris")
    x = req.inputs[0].as_numpy()
    resp = InferResponse(req.id, "iris", [InferOutput.from_numpy("y", x + 1)])
    binary_default = bool(req.parameters.get("binary_data_output", False))
    body, json_length = v2.encode_response(resp, req.request_outputs, binary_default)
    headers = {} if json_length is None else {"inference-header-content-length": str(json_length)}
    return httpx.Response(200, content=body, headers=headers)


def test_v2_forwarding_when_the_client_asked_for_binary_outputs() -> None:
    from modelport.protocol.infer import RequestedOutput

    model = forwarding_model("v2", oip_predictor)
    x = np.array([[1.0, 2.0]], np.float32)
    request = InferRequest(
        "iris",
        [InferInput("x", [1, 2], "FP32", x)],
        request_outputs=[RequestedOutput("y", {"binary_data": True})],
    )
    response = asyncio.run(model(request))
    np.testing.assert_array_equal(response.outputs[0].as_numpy(), [[2.0, 3.0]])
