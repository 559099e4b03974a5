"""modelport: self-hostable model serving (KServe V1 / Open Inference Protocol V2).

Public names are imported on first use, so ``import modelport`` (and the ``modelport`` CLI's
supervisor process) stays small; worker processes pay for numpy and the runtimes.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from modelport.version import __version__

if TYPE_CHECKING:
    from modelport.model import InferenceVerb, Model
    from modelport.protocol.infer import InferInput, InferOutput, InferRequest, InferResponse
    from modelport.server.model_server import ModelServer

_EXPORTS = {
    "InferInput": "modelport.protocol.infer",
    "InferOutput": "modelport.protocol.infer",
    "InferRequest": "modelport.protocol.infer",
    "InferResponse": "modelport.protocol.infer",
    "InferenceVerb": "modelport.model",
    "Model": "modelport.model",
    "ModelServer": "modelport.server.model_server",
}

__all__ = [
    "InferInput",
    "InferOutput",
    "InferRequest",
    "InferResponse",
    "InferenceVerb",
    "Model",
    "ModelServer",
    "__version__",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'modelport' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
