"""KServe's ``kserve.protocol.grpc.grpc_predict_v2_pb2`` module path: the OIP gRPC messages.

KServe's ``grpc_predict_v2.proto`` and modelport's ``inference.proto`` declare the same
package (``inference``) and messages, so these are the generated classes of
:mod:`modelport.protocol.grpc.inference_pb2` under KServe's module name.
"""

from __future__ import annotations

from modelport.protocol.grpc.inference_pb2 import (
    DESCRIPTOR,
    InferParameter,
    InferTensorContents,
    ModelInferRequest,
    ModelInferResponse,
    ModelMetadataRequest,
    ModelMetadataResponse,
    ModelReadyRequest,
    ModelReadyResponse,
    RepositoryModelLoadRequest,
    RepositoryModelLoadResponse,
    RepositoryModelUnloadRequest,
    RepositoryModelUnloadResponse,
    ServerLiveRequest,
    ServerLiveResponse,
    ServerMetadataRequest,
    ServerMetadataResponse,
    ServerReadyRequest,
    ServerReadyResponse,
)

__all__ = [
    "DESCRIPTOR",
    "InferParameter",
    "InferTensorContents",
    "ModelInferRequest",
    "ModelInferResponse",
    "ModelMetadataRequest",
    "ModelMetadataResponse",
    "ModelReadyRequest",
    "ModelReadyResponse",
    "RepositoryModelLoadRequest",
    "RepositoryModelLoadResponse",
    "RepositoryModelUnloadRequest",
    "RepositoryModelUnloadResponse",
    "ServerLiveRequest",
    "ServerLiveResponse",
    "ServerMetadataRequest",
    "ServerMetadataResponse",
    "ServerReadyRequest",
    "ServerReadyResponse",
]
