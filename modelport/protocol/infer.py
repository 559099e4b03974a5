"""Transport-neutral inference request/response objects.

Names and constructor signatures follow KServe's ``kserve.protocol.infer_type`` so that custom
model code written against KServe (``payload.inputs[0].as_numpy()``,
``InferOutput(name=..., shape=..., datatype=..., data=...)``,
``InferResponse(model_name=..., infer_outputs=[...], response_id=...)``) runs unchanged.
Internally every decoded tensor already holds a numpy array of the declared shape and dtype.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from modelport.errors import InvalidInput
from modelport.protocol.datatypes import from_numpy
from modelport.protocol.tensor import array_from_json

Parameters = dict[str, Any]


def _as_array(data: Any, shape: Sequence[int], datatype: str) -> np.ndarray:
    return array_from_json("tensor", datatype, list(shape), data)


class _Tensor:
    """What inputs and outputs share: a name, shape, datatype, parameters and the data, held
    as a numpy array, a Python list, or both (each made from the other on first use)."""

    __slots__ = ("name", "shape", "datatype", "parameters", "_array", "_data")

    def __init__(
        self,
        name: str,
        shape: Sequence[int],
        datatype: str,
        data: Any = None,
        parameters: Parameters | None = None,
    ) -> None:
        self.name = name
        self.shape = list(shape)
        self.datatype = datatype
        self.parameters: Parameters = parameters or {}
        self._array: np.ndarray | None = data if isinstance(data, np.ndarray) else None
        self._data = None if isinstance(data, np.ndarray) else data

    @property
    def data(self) -> Any:
        """The tensor contents as a flat Python list (KServe's REST representation)."""
        if self._data is None and self._array is not None:
            self._data = _to_list(self._array)
        return self._data

    @data.setter
    def data(self, value: Any) -> None:
        self._data = value
        self._array = value if isinstance(value, np.ndarray) else None

    def as_numpy(self) -> np.ndarray:
        """The tensor as a numpy array of its declared shape and datatype."""
        if self._array is None:
            if self._data is None:
                raise InvalidInput(f"Tensor {self.name} has no data.")
            self._array = _as_array(self._data, self.shape, self.datatype)
        return self._array

    def _set_array(self, array: np.ndarray) -> None:
        self._array = array
        self._data = None
        self.shape = list(array.shape)
        self.datatype = from_numpy(array.dtype)

    def set_shape(self, shape: Sequence[int]) -> None:
        """Set the declared shape."""
        self.shape = list(shape)

    def __repr__(self) -> str:
        kind = type(self).__name__
        return f"{kind}(name={self.name!r}, shape={self.shape}, datatype={self.datatype!r})"


class InferInput(_Tensor):
    """One named input tensor of an inference request."""

    __slots__ = ()

    def set_data_from_numpy(self, input_tensor: np.ndarray, binary_data: bool = True) -> None:
        """Replace the contents with an array; shape and datatype follow it."""
        self._set_array(input_tensor)


class RequestedOutput:
    """An output the client asked for by name, with its per-output parameters."""

    __slots__ = ("name", "parameters")

    def __init__(self, name: str, parameters: Parameters | None = None) -> None:
        self.name = name
        self.parameters: Parameters = parameters or {}

    @property
    def binary_data(self) -> bool:
        """True when this output should be returned with the binary tensor extension."""
        return bool(self.parameters.get("binary_data", False))


class InferRequest:
    """An inference request: inputs, optional request id, parameters and requested outputs."""

    __slots__ = (
        "model_name",
        "model_version",
        "id",
        "inputs",
        "parameters",
        "request_outputs",
        "from_grpc",
    )

    def __init__(
        self,
        model_name: str,
        infer_inputs: list[InferInput],
        request_id: str | None = None,
        raw_inputs: Any = None,
        from_grpc: bool = False,
        parameters: Parameters | None = None,
        request_outputs: list[RequestedOutput] | None = None,
        model_version: str | None = None,
    ) -> None:
        self.model_name = model_name
        self.model_version = model_version
        self.id = request_id
        self.inputs = infer_inputs
        self.parameters: Parameters = parameters or {}
        self.request_outputs = request_outputs
        self.from_grpc = from_grpc

    def get_input_by_name(self, name: str) -> InferInput | None:
        """The input with this name, or None."""
        for inp in self.inputs:
            if inp.name == name:
                return inp
        return None

    def __repr__(self) -> str:
        return f"InferRequest(model_name={self.model_name!r}, id={self.id!r}, inputs={self.inputs})"


class InferOutput(_Tensor):
    """One named output tensor of an inference response."""

    __slots__ = ()

    @classmethod
    def from_numpy(cls, name: str, array: np.ndarray) -> InferOutput:
        """Build an output whose shape and datatype follow the array."""
        return cls(name, list(array.shape), from_numpy(array.dtype), array)

    def set_data_from_numpy(self, output_tensor: np.ndarray, binary_data: bool = False) -> None:
        """Replace the contents with an array; shape and datatype follow it."""
        self._set_array(output_tensor)
        if binary_data:
            self.parameters["binary_data"] = True


class InferResponse:
    """An inference response: outputs plus the echoed model name, version and request id."""

    __slots__ = ("id", "model_name", "model_version", "outputs", "parameters", "from_grpc")

    def __init__(
        self,
        response_id: str | None,
        model_name: str,
        infer_outputs: list[InferOutput],
        model_version: str | None = None,
        raw_outputs: Any = None,
        from_grpc: bool = False,
        parameters: Parameters | None = None,
    ) -> None:
        self.id = response_id
        self.model_name = model_name
        self.model_version = model_version
        self.outputs = infer_outputs
        self.parameters: Parameters = parameters or {}
        self.from_grpc = from_grpc

    def get_output_by_name(self, name: str) -> InferOutput | None:
        """The output with this name, or None."""
        for out in self.outputs:
            if out.name == name:
                return out
        return None

    def __repr__(self) -> str:
        return f"InferResponse(model_name={self.model_name!r}, outputs={self.outputs})"


def _to_list(array: np.ndarray) -> list[Any]:
    return array.ravel().tolist()
