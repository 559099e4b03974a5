"""KServe's ``kserve.protocol.infer_type`` module path: the request and response objects.

``from kserve.protocol.infer_type import InferInput, InferRequest`` becomes
``from modelport.protocol.infer_type import ...``; the classes are those of
:mod:`modelport.protocol.infer`.
"""

from __future__ import annotations

from modelport.protocol.infer import (
    InferInput,
    InferOutput,
    InferRequest,
    InferResponse,
    RequestedOutput,
)

__all__ = ["InferInput", "InferOutput", "InferRequest", "InferResponse", "RequestedOutput"]
