"""KServe's ``kserve.protocol.grpc.grpc_predict_v2_pb2_grpc`` module path: the OIP gRPC
service stubs of :mod:`modelport.protocol.grpc.inference_pb2_grpc` under KServe's name."""

from __future__ import annotations

from modelport.protocol.grpc.inference_pb2_grpc import (
    GRPCInferenceService,
    GRPCInferenceServiceServicer,
    GRPCInferenceServiceStub,
    add_GRPCInferenceServiceServicer_to_server,
)

__all__ = [
    "GRPCInferenceService",
    "GRPCInferenceServiceServicer",
    "GRPCInferenceServiceStub",
    "add_GRPCInferenceServiceServicer_to_server",
]
