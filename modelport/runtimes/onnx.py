"""ONNX Runtime: a ``.onnx`` graph, with named inputs and outputs passed through."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime
from onnxruntime.capi.onnxruntime_pybind11_state import InvalidArgument

from modelport.errors import InvalidInput
from modelport.model import Headers
from modelport.protocol.infer import InferOutput, InferRequest, InferResponse
from modelport.runtimes.base import ArrayModel

# ONNX tensor element types as ONNX Runtime spells them -> OIP datatypes.
_ONNX_TYPES = {
    "tensor(bool)": "BOOL",
    "tensor(uint8)": "UINT8",
    "tensor(uint16)": "UINT16",
    "tensor(uint32)": "UINT32",
    "tensor(uint64)": "UINT64",
    "tensor(int8)": "INT8",
    "tensor(int16)": "INT16",
    "tensor(int32)": "INT32",
    "tensor(int64)": "INT64",
    "tensor(float16)": "FP16",
    "tensor(float)": "FP32",
    "tensor(double)": "FP64",
    "tensor(string)": "BYTES",
}
_NUMPY_FOR = {
    "FP32": np.float32,
    "FP64": np.float64,
    "FP16": np.float16,
    "INT64": np.int64,
    "INT32": np.int32,
    "INT16": np.int16,
    "INT8": np.int8,
    "UINT8": np.uint8,
    "UINT16": np.uint16,
    "UINT32": np.uint32,
    "UINT64": np.uint64,
    "BOOL": np.bool_,
}


class ONNXModel(ArrayModel):
    """Serves an ONNX graph; V2 inputs are matched to graph inputs by name."""

    suffixes = (".onnx",)

    def _load(self, path: Path) -> None:
        opts = onnxruntime.SessionOptions()
        # Worker processes already use every core; one thread each avoids oversubscription.
        opts.intra_op_num_threads = int(self.options.get("nthread", 1))
        opts.inter_op_num_threads = 1
        self._session = onnxruntime.InferenceSession(
            str(path), sess_options=opts, providers=["CPUExecutionProvider"]
        )
        self._inputs = self._session.get_inputs()
        self._outputs = self._session.get_outputs()
        self._output_names = [o.name for o in self._outputs]

    def predict_array(self, array: np.ndarray) -> np.ndarray:
        first = self._inputs[0]
        output: np.ndarray = self._run(self._output_names[:1], {first.name: _cast(first, array)})[0]
        return output

    def _run(self, names: list[str], feed: dict[str, np.ndarray]) -> list[Any]:
        try:
            results: list[Any] = self._session.run(names, feed)
            return results
        except (InvalidArgument, ValueError) as exc:
            raise InvalidInput(f"Model {self.name}: {exc}") from None

    def predict(
        self, payload: Any, headers: Headers | None = None, response_headers: Headers | None = None
    ) -> Any:
        if not isinstance(payload, InferRequest):
            return super().predict(payload, headers)
        results = self._run(self._output_names, self._feed(payload))
        outputs = [
            InferOutput.from_numpy(n, np.asarray(r))
            for n, r in zip(self._output_names, results, strict=True)
        ]
        return InferResponse(payload.id, self.name, outputs, model_version=self.version)

    def _feed(self, request: InferRequest) -> dict[str, np.ndarray]:
        if len(self._inputs) == 1 and len(request.inputs) == 1:
            spec = self._inputs[0]
            return {spec.name: _cast(spec, request.inputs[0].as_numpy())}
        by_name = {i.name: i for i in request.inputs}
        feed = {}
        for spec in self._inputs:
            given = by_name.get(spec.name)
            if given is None:
                raise InvalidInput(f"Model {self.name} needs input {spec.name}.")
            feed[spec.name] = _cast(spec, given.as_numpy())
        return feed

    def get_input_types(self) -> list[dict[str, Any]]:
        return [_meta(i) for i in self._inputs]

    def get_output_types(self) -> list[dict[str, Any]]:
        return [_meta(o) for o in self._outputs]

    @property
    def platform(self) -> str:
        return "onnxruntime_onnx"


def _cast(spec: Any, array: np.ndarray) -> np.ndarray:
    datatype = _ONNX_TYPES.get(spec.type)
    target = _NUMPY_FOR.get(datatype or "")
    if target is not None and array.dtype != target:
        if array.dtype.kind in "OSU":
            raise InvalidInput(f"Input {spec.name} must be numeric ({datatype}).")
        return array.astype(target)
    return array


def _meta(arg: Any) -> dict[str, Any]:
    shape = [d if isinstance(d, int) else -1 for d in (arg.shape or [])]
    return {"name": arg.name, "datatype": _ONNX_TYPES.get(arg.type, "BYTES"), "shape": shape}
