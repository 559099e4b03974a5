"""The transport-neutral data plane: REST and gRPC decode, call this, and encode.

Every request path goes through here, so readiness, versions, the in-flight bound, batching
and the mapping of model exceptions happen in one place for both protocols.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from modelport.errors import (
    InferenceError,
    ModelNotFound,
    ModelNotReady,
    ModelportError,
    ServerOverloaded,
)
from modelport.model import Headers, InferenceVerb, Model
from modelport.protocol.infer import InferOutput, InferRequest, InferResponse
from modelport.server.batching import Batcher
from modelport.server.metrics import families
from modelport.server.repository import READY, Entry, ModelRepository
from modelport.settings import AUTO_BATCH_SIZE
from modelport.version import __version__

if TYPE_CHECKING:
    from prometheus_client import Gauge

log = logging.getLogger("modelport.server")

SERVER_NAME = "modelport"
EXTENSIONS = ["model_repository_extension", "binary_tensor_data"]


class DataPlane:
    """Operations of the KServe V1 and OIP V2 protocols over one model repository."""

    def __init__(
        self,
        repository: ModelRepository,
        *,
        max_inflight: int = 512,
        max_batch_size: int | None = None,
        max_latency_ms: float = 0.0,
    ) -> None:
        self.repository = repository
        self.max_inflight = max_inflight
        self.max_batch_size = max_batch_size
        self.max_latency_s = max_latency_ms / 1000.0
        #: told of each load/unload asked of this worker, so other workers can follow
        self.on_repository_change: Callable[[str, str], None] | None = None

    # ---- health and metadata -------------------------------------------------------------

    @staticmethod
    def live() -> bool:
        """The process answers: always true once serving."""
        return True

    def ready(self) -> bool:
        """True when every registered model is ready in this worker."""
        entries = self.repository.entries()
        return bool(entries) and all(_is_ready(e) for e in entries)

    def model_ready(self, name: str, version: str | None = None) -> bool:
        """Whether the model is ready in this worker; ModelNotFound if unknown."""
        return _is_ready(self._entry(name, version))

    @staticmethod
    def server_metadata() -> dict[str, Any]:
        """OIP server metadata."""
        return {"name": SERVER_NAME, "version": __version__, "extensions": EXTENSIONS}

    def model_metadata(self, name: str, version: str | None = None) -> dict[str, Any]:
        """OIP model metadata: name, versions, platform, input and output tensors."""
        entry = self._entry(name, version)
        model = entry.model
        if model is None:
            raise ModelNotReady(name)
        doc: dict[str, Any] = {
            "name": name,
            "versions": [model.version] if model.version else [],
            "platform": model.platform,
            "inputs": model.get_input_types(),
            "outputs": model.get_output_types(),
        }
        return doc

    def index(self) -> list[dict[str, Any]]:
        """Repository index: every model with its state."""
        out = []
        for e in self.repository.entries():
            item: dict[str, Any] = {"name": e.name, "state": READY if _is_ready(e) else e.state}
            if e.model is not None and e.model.version:
                item["version"] = e.model.version
            if e.reason:
                item["reason"] = e.reason
            out.append(item)
        return out

    def load(self, name: str, *, announce: bool = True, path: str | None = None) -> None:
        """Repository extension: (re)load a model by name, in every worker; with ``path``,
        the model there as ``name`` (see ModelRepository.load)."""
        entry = self.repository.load(name, path)
        self._prepare(entry)
        if announce and self.on_repository_change is not None:
            self.on_repository_change("load", name)

    def unload(self, name: str, *, announce: bool = True) -> None:
        """Repository extension: unload a model by name, in every worker."""
        self.repository.unload(name)
        if announce and self.on_repository_change is not None:
            self.on_repository_change("unload", name)

    # ---- inference -----------------------------------------------------------------------

    async def infer(
        self,
        request: InferRequest,
        headers: Headers | None = None,
        response_headers: dict[str, str] | None = None,
    ) -> InferResponse:
        """V2 inference; the result is always an InferResponse. A model made with
        ``return_response_headers=True`` fills ``response_headers`` (KServe's contract)."""
        entry = self._serving_entry(request.model_name, request.model_version)
        result = await self._run(entry, request, headers, InferenceVerb.PREDICT, response_headers)
        response = to_v2_response(result, request, entry)
        if response.id is None:
            response.id = request.id
        return response

    async def predict_v1(
        self,
        name: str,
        body: dict[str, Any],
        headers: Headers | None = None,
        verb: InferenceVerb = InferenceVerb.PREDICT,
        response_headers: dict[str, str] | None = None,
    ) -> Any:
        """V1 predict/explain; the result is a JSON-encodable value."""
        entry = self._serving_entry(name, None)
        result = await self._run(entry, body, headers, verb, response_headers)
        return to_v1_response(result)

    async def _run(
        self,
        entry: Entry,
        payload: Any,
        headers: Headers | None,
        verb: InferenceVerb,
        response_headers: dict[str, str] | None = None,
    ) -> Any:
        if entry.inflight >= self.max_inflight:
            raise ServerOverloaded(entry.name, self.max_inflight)
        model = entry.model
        assert model is not None  # _serving_entry checked it
        entry.inflight += 1
        gauge = entry.inflight_gauge or self._equip(entry, model)
        gauge.inc()
        try:
            batcher = entry.batcher if verb is InferenceVerb.PREDICT else None
            if batcher is not None:
                return await batcher.submit(payload)
            return await _guard(model.name, model(payload, verb, headers, response_headers))
        finally:
            entry.inflight -= 1
            gauge.dec()

    def _prepare(self, entry: Entry) -> None:
        """Set up what serving a (re)loaded model needs, or drop what an unloaded one had."""
        entry.inflight_gauge = entry.batcher = None
        if entry.model is not None:
            self._equip(entry, entry.model)

    def _equip(self, entry: Entry, model: Model) -> Gauge:
        """Give a loaded model its in-flight gauge and, where it batches, its batcher."""
        gauge = entry.inflight_gauge = families().inflight.labels(entry.name)
        size = self.max_batch_size
        if size is None:
            size = AUTO_BATCH_SIZE if getattr(model, "rowwise", False) else 1
        if size > 1:

            async def call(payload: Any) -> Any:
                return await _guard(model.name, model(payload, InferenceVerb.PREDICT, None))

            hist = families().batch_size.labels(entry.name)
            entry.batcher = Batcher(call, size, self.max_latency_s, hist.observe)
        return gauge

    def _entry(self, name: str, version: str | None) -> Entry:
        entry = self.repository.get(name)
        if version and (entry.model is None or entry.model.version != version):
            raise ModelNotFound(name, version)
        return entry

    def _serving_entry(self, name: str, version: str | None) -> Entry:
        entry = self._entry(name, version)
        if not _is_ready(entry):
            raise ModelNotReady(name, entry.reason)
        return entry


def _is_ready(entry: Entry) -> bool:
    return entry.model is not None and bool(entry.model.ready)


async def _guard(name: str, call: Any) -> Any:
    try:
        return await call
    except ModelportError:
        raise
    except Exception as exc:
        log.exception("model %s raised while handling a request", name)
        raise InferenceError(f"Model {name} failed: {type(exc).__name__}: {exc}") from exc


def to_v2_response(result: Any, request: InferRequest, entry: Entry) -> InferResponse:
    """Wrap whatever a model returned into an InferResponse."""
    if isinstance(result, InferResponse):
        return result
    model = entry.model
    version = model.version if model is not None else None
    if isinstance(result, dict) and isinstance(result.get("outputs"), list):
        outputs = []
        for raw in result["outputs"]:
            if not isinstance(raw, dict) or "name" not in raw:
                raise InferenceError("The model returned an output without a name.")
            data = raw.get("data")
            if isinstance(data, np.ndarray):
                outputs.append(InferOutput(raw["name"], data.shape, raw.get("datatype", ""), data))
            else:
                outputs.append(
                    InferOutput(
                        raw["name"],
                        raw.get("shape", []),
                        raw.get("datatype", ""),
                        data,
                        raw.get("parameters"),
                    )
                )
        return InferResponse(
            result.get("id", request.id),
            request.model_name,
            outputs,
            model_version=version,
            parameters=result.get("parameters"),
        )
    if isinstance(result, dict) and "predictions" in result:
        result = result["predictions"]
    try:
        array = np.asarray(result)
        output = InferOutput.from_numpy("output-0", array)
    except (ValueError, TypeError, ModelportError) as exc:
        raise InferenceError(f"The model returned a value that is not a tensor: {exc}") from None
    return InferResponse(request.id, request.model_name, [output], model_version=version)


def to_v1_response(result: Any) -> Any:
    """Wrap whatever a model returned into a V1 body."""
    if isinstance(result, InferResponse):
        if len(result.outputs) == 1:
            return {"predictions": result.outputs[0].as_numpy()}
        return {"predictions": {o.name: o.as_numpy() for o in result.outputs}}
    if isinstance(result, dict):
        return result
    return {"predictions": result}
