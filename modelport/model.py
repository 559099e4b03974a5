"""The Model base class: the extension point for serving your own code.

It mirrors KServe's ``kserve.Model`` so that a custom model written for KServe runs with only
its import changed::

    from modelport import Model, ModelServer

    class MyModel(Model):
        def __init__(self, name: str):
            super().__init__(name)
            self.load()

        def load(self) -> bool:
            self.table = {...}
            self.ready = True
            return self.ready

        def predict(self, payload, headers=None):
            return {"predictions": [self.table[x] for x in payload["instances"]]}

    if __name__ == "__main__":
        ModelServer().start([MyModel("my-model")])

``preprocess``, ``predict``, ``postprocess`` and ``explain`` may each be plain or ``async``.
A V1 request reaches them as the decoded JSON dict; a V2 request as an
:class:`~modelport.protocol.infer.InferRequest`. ``predict`` may return an
:class:`~modelport.protocol.infer.InferResponse`, a dict, or an array-like, which the server
wraps into the shape the protocol needs. With ``return_response_headers=True`` (KServe's
switch) ``predict`` and ``postprocess`` also receive a ``response_headers`` dict to fill.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Mapping
from enum import Enum
from typing import Any

from modelport.errors import InferenceError, InvalidInput
from modelport.predictor_config import PredictorConfig, PredictorProtocol, get_predictor_config

__all__ = ["Headers", "InferenceVerb", "Model", "PredictorConfig", "PredictorProtocol"]

Headers = dict[str, str]


class InferenceVerb(Enum):
    """What the client asked the model to do."""

    PREDICT = "predict"
    EXPLAIN = "explain"


class Model:
    """Base class of every served model; subclass it and override ``load`` and ``predict``."""

    #: True when predictions are computed row by row, so requests can be merged safely
    rowwise: bool = False

    def __init__(
        self,
        name: str,
        predictor_host: str | None = None,
        protocol: str = PredictorProtocol.REST_V1.value,
        timeout: float = 60.0,
        *,
        return_response_headers: bool = False,
    ) -> None:
        self.name = name
        self.ready = False
        self.version: str | None = None
        # A transformer forwards to the predictor at this host:port. KServe's older
        # constructor took it here; newer code leaves it unset and ModelServer's
        # --predictor_host applies (see predictor_config).
        self.predictor_host = predictor_host
        # Sent with every request to the predictor (the platform's replica key goes here).
        self.predictor_headers: dict[str, str] = {}
        self.protocol = protocol
        self.timeout = timeout
        #: KServe's name: predict and postprocess get a response_headers dict to fill
        self.required_response_headers = return_response_headers
        self._hooks: dict[str, _Hook] | None = None
        self._http_client: Any = None

    # ---- lifecycle -----------------------------------------------------------------------

    def load(self) -> bool:
        """Load weights or other state; set and return ``self.ready``."""
        self.ready = True
        return self.ready

    def unload(self) -> None:
        """Release what ``load`` acquired; the model stops being ready."""
        self.ready = False

    async def healthy(self) -> bool:
        """Whether the model can take requests; defaults to ``self.ready``."""
        return bool(self.ready)

    def start(self) -> None:
        """Hook run in each worker process before it serves (KServe compatibility)."""

    def stop(self) -> None:
        """Hook run in each worker process when it shuts down (KServe compatibility)."""

    # ---- metadata ------------------------------------------------------------------------

    def get_input_types(self) -> list[dict[str, Any]]:
        """Input tensor metadata: a list of ``{"name", "datatype", "shape"}`` dicts."""
        return []

    def get_output_types(self) -> list[dict[str, Any]]:
        """Output tensor metadata: a list of ``{"name", "datatype", "shape"}`` dicts."""
        return []

    @property
    def platform(self) -> str:
        """The OIP ``platform`` string reported in model metadata."""
        return ""

    @property
    def predictor_config(self) -> PredictorConfig:
        """How this model reaches its predictor (KServe's ``Model.predictor_config``).

        This model's own ``predictor_host``/``protocol``/``timeout`` when a host was given to
        it, else the process-wide configuration ModelServer built from its flags. KServe
        answers None outside a ModelServer; here it is then a configuration without a host,
        so ``self.predictor_config.predictor_protocol`` always reads.
        """
        if self.predictor_host:
            return PredictorConfig(
                self.predictor_host,
                self.protocol,
                predictor_request_timeout_seconds=self.timeout,
            )
        shared = get_predictor_config()
        if shared is not None:
            return shared
        return PredictorConfig(None, self.protocol, predictor_request_timeout_seconds=self.timeout)

    # ---- request path --------------------------------------------------------------------

    def preprocess(self, payload: Any, headers: Headers | None = None) -> Any:
        """Transform the decoded request before ``predict``; identity by default."""
        return payload

    def predict(
        self, payload: Any, headers: Headers | None = None, response_headers: Headers | None = None
    ) -> Any:
        """Run the model. The base class forwards to the predictor when one is configured."""
        if not self.predictor_config.predictor_host:
            raise InvalidInput(f"Model {self.name} does not implement predict.")
        return self._forward(payload, headers, verb=InferenceVerb.PREDICT)

    def postprocess(
        self, result: Any, headers: Headers | None = None, response_headers: Headers | None = None
    ) -> Any:
        """Transform the result of ``predict``; identity by default."""
        return result

    def explain(self, payload: Any, headers: Headers | None = None) -> Any:
        """Explain a prediction. The base class forwards to the predictor when configured."""
        if not self.predictor_config.predictor_host:
            raise InvalidInput(f"Model {self.name} does not support explain.")
        return self._forward(payload, headers, verb=InferenceVerb.EXPLAIN)

    async def __call__(
        self,
        body: Any,
        verb: InferenceVerb = InferenceVerb.PREDICT,
        headers: Headers | None = None,
        response_headers: Headers | None = None,
    ) -> Any:
        """Run preprocess → predict (or explain) → postprocess, awaiting what is async."""
        hooks = self._hooks or self._resolve_hooks()
        wants_headers = self.required_response_headers
        if wants_headers and response_headers is None:
            # KServe always hands such a model a dict; what the caller cannot send is dropped.
            response_headers = {}
        payload = await hooks["preprocess"](body, headers)
        if verb is InferenceVerb.EXPLAIN:
            result = await hooks["explain"](payload, headers)
        elif wants_headers:
            result = await hooks["predict"](payload, headers, response_headers)
        else:
            result = await hooks["predict"](payload, headers)
        post = hooks["postprocess"]
        if wants_headers or post.takes_response_headers:
            return await post(result, headers, response_headers)
        return await post(result, headers)

    def _resolve_hooks(self) -> dict[str, _Hook]:
        # Inspect the (possibly overridden) methods once, not on every request.
        self._hooks = {
            name: _Hook(getattr(self, name))
            for name in ("preprocess", "predict", "postprocess", "explain")
        }
        return self._hooks

    async def _forward(self, payload: Any, headers: Headers | None, verb: InferenceVerb) -> Any:
        from modelport.model_client import forward_to_predictor

        config = self.predictor_config
        if config.predictor_protocol == PredictorProtocol.GRPC_V2.value:
            raise InferenceError(
                f"Model {self.name}: forwarding to the predictor over gRPC (grpc-v2) is not "
                "supported; use --predictor_protocol v1 or v2."
            )
        if self._http_client is None:
            import httpx

            self._http_client = httpx.AsyncClient(
                timeout=config.predictor_request_timeout_seconds,
                headers=self.predictor_headers,
                # KServe's REST client retries failed connections this many times.
                transport=httpx.AsyncHTTPTransport(retries=config.predictor_request_retries),
            )
        return await forward_to_predictor(
            self._http_client,
            config.predictor_base_url,
            self.name,
            config.predictor_protocol,
            payload,
            verb.value,
        )


class _Hook:
    """A model method, called uniformly whether it is sync or async."""

    __slots__ = ("fn", "is_async", "takes_response_headers")

    def __init__(self, fn: Callable[..., Any]) -> None:
        self.fn = fn
        self.is_async = inspect.iscoroutinefunction(fn)
        params: Mapping[str, inspect.Parameter]
        try:
            params = inspect.signature(fn).parameters
        except (TypeError, ValueError):
            params = {}
        self.takes_response_headers = "response_headers" in params

    async def __call__(self, *args: Any) -> Any:
        result = self.fn(*args)
        if self.is_async or inspect.isawaitable(result):
            return await _await(result)
        return result


async def _await(value: Awaitable[Any]) -> Any:
    return await value
