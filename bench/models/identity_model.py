"""Identity model for the binary tensor extension round-trip benchmark (bench/batching.py).

Served with:
    modelport serve bench/models/identity_model.py --name identity --format custom

predict returns its input unchanged: every V2 input tensor comes back as an output with the
same name, shape, datatype and bytes (a V1 dict is returned as is).
"""

from typing import Any

import modelport
from modelport import InferOutput, InferRequest, InferResponse


class Identity(modelport.Model):
    def __init__(self, name: str = "identity") -> None:
        super().__init__(name)
        self.ready = False

    def load(self) -> bool:
        self.ready = True
        return self.ready

    def predict(
        self,
        payload: Any,
        headers: dict[str, str] | None = None,
        response_headers: dict[str, str] | None = None,
    ) -> Any:
        if isinstance(payload, InferRequest):
            outputs = [
                InferOutput(i.name, i.shape, i.datatype, i.as_numpy()) for i in payload.inputs
            ]
            return InferResponse(payload.id, self.name, outputs)
        return payload
