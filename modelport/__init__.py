"""modelport: self-hostable model serving (KServe V1 / Open Inference Protocol V2)."""

from modelport.model import InferenceVerb, Model
from modelport.protocol.infer import InferInput, InferOutput, InferRequest, InferResponse
from modelport.server.model_server import ModelServer
from modelport.version import __version__

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
