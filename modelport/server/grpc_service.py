"""gRPC transport: ``inference.GRPCInferenceService`` over the same data plane as REST."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

import grpc

from modelport.errors import ModelportError
from modelport.protocol.grpc import codec
from modelport.protocol.grpc import inference_pb2 as pb
from modelport.protocol.grpc import inference_pb2_grpc as pb_grpc
from modelport.server.dataplane import DataPlane
from modelport.server.errors_map import grpc_status
from modelport.server.metrics import RequestMetrics


async def _abort(context: grpc.aio.ServicerContext, exc: ModelportError) -> Any:
    await context.abort(grpc_status(exc), exc.reason)


def _guarded(fn: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
    async def wrapper(self: InferenceServicer, request: Any, context: Any) -> Any:
        try:
            return await fn(self, request, context)
        except ModelportError as exc:
            return await _abort(context, exc)

    wrapper.__name__ = fn.__name__
    return wrapper


_INFER_PATH = "/inference.GRPCInferenceService/ModelInfer"


class InferenceServicer(pb_grpc.GRPCInferenceServiceServicer):
    """Implements every RPC of the OIP gRPC service."""

    def __init__(self, dataplane: DataPlane) -> None:
        self.dp = dataplane
        self.metrics = RequestMetrics()

    @_guarded
    async def ServerLive(self, request: Any, context: Any) -> pb.ServerLiveResponse:
        return pb.ServerLiveResponse(live=self.dp.live())

    @_guarded
    async def ServerReady(self, request: Any, context: Any) -> pb.ServerReadyResponse:
        return pb.ServerReadyResponse(ready=self.dp.ready())

    @_guarded
    async def ModelReady(self, request: Any, context: Any) -> pb.ModelReadyResponse:
        return pb.ModelReadyResponse(
            ready=self.dp.model_ready(request.name, request.version or None)
        )

    @_guarded
    async def ServerMetadata(self, request: Any, context: Any) -> pb.ServerMetadataResponse:
        return pb.ServerMetadataResponse(**self.dp.server_metadata())

    @_guarded
    async def ModelMetadata(self, request: Any, context: Any) -> pb.ModelMetadataResponse:
        meta = self.dp.model_metadata(request.name, request.version or None)
        return pb.ModelMetadataResponse(
            name=meta["name"],
            versions=meta["versions"],
            platform=meta["platform"],
            inputs=[_tensor_meta(t) for t in meta["inputs"]],
            outputs=[_tensor_meta(t) for t in meta["outputs"]],
        )

    async def ModelInfer(self, request: pb.ModelInferRequest, context: Any) -> Any:
        start = time.perf_counter()
        status = "OK"
        try:
            infer_request = codec.decode_request(request)
            response = await self.dp.infer(infer_request, _metadata(context))
            return codec.encode_response(
                response, infer_request, raw=bool(request.raw_input_contents)
            )
        except ModelportError as exc:
            status = grpc_status(exc).name
            return await _abort(context, exc)
        finally:
            elapsed = time.perf_counter() - start
            self.metrics.observe(request.model_name, "grpc", status, elapsed, _INFER_PATH)

    @_guarded
    async def RepositoryModelLoad(self, request: Any, context: Any) -> Any:
        self.dp.load(request.model_name)
        return pb.RepositoryModelLoadResponse(model_name=request.model_name, isLoaded=True)

    @_guarded
    async def RepositoryModelUnload(self, request: Any, context: Any) -> Any:
        self.dp.unload(request.model_name)
        return pb.RepositoryModelUnloadResponse(model_name=request.model_name, isUnloaded=True)


def _tensor_meta(t: dict[str, Any]) -> pb.ModelMetadataResponse.TensorMetadata:
    return pb.ModelMetadataResponse.TensorMetadata(
        name=t.get("name", ""), datatype=t.get("datatype", ""), shape=t.get("shape", [])
    )


def _metadata(context: Any) -> dict[str, str]:
    md = context.invocation_metadata() or ()
    return {k: v for k, v in md if isinstance(v, str)}


def add_to_server(server: grpc.aio.Server, dataplane: DataPlane) -> InferenceServicer:
    """Register the servicer on a grpc.aio server."""
    servicer = InferenceServicer(dataplane)
    pb_grpc.add_GRPCInferenceServiceServicer_to_server(servicer, server)
    return servicer
