"""Conversion between OIP gRPC messages and the transport-neutral infer objects."""

from __future__ import annotations

from typing import Any

import numpy as np

from modelport.errors import InvalidInput
from modelport.protocol.datatypes import numpy_dtype
from modelport.protocol.grpc import inference_pb2 as pb
from modelport.protocol.grpc.packed import PACKED_FIELDS, fill_packed
from modelport.protocol.infer import InferInput, InferRequest, InferResponse, RequestedOutput
from modelport.protocol.tensor import check_shape, element_count
from modelport.protocol.v2 import (
    array_from_bytes,
    bytes_element,
    select_outputs,
    tensor_to_wire,
)

# datatype -> typed contents field (OIP gRPC "Tensor Data"); FP16 travels raw only.
CONTENTS_FIELD = {
    "BOOL": "bool_contents",
    "INT8": "int_contents",
    "INT16": "int_contents",
    "INT32": "int_contents",
    "INT64": "int64_contents",
    "UINT8": "uint_contents",
    "UINT16": "uint_contents",
    "UINT32": "uint_contents",
    "UINT64": "uint64_contents",
    "FP32": "fp32_contents",
    "FP64": "fp64_contents",
    "BYTES": "bytes_contents",
}


def decode_parameters(params: Any) -> dict[str, Any]:
    """Protobuf parameter map -> plain dict."""
    out: dict[str, Any] = {}
    for key, value in params.items():
        kind = value.WhichOneof("parameter_choice")
        out[key] = getattr(value, kind) if kind else None
    return out


def encode_parameters(target: Any, params: dict[str, Any]) -> None:
    """Plain dict -> protobuf parameter map (bool, int and str values; others as strings)."""
    for key, value in params.items():
        slot = target[key]
        if isinstance(value, bool):
            slot.bool_param = value
        elif isinstance(value, int):
            slot.int64_param = value
        else:
            slot.string_param = str(value)


def decode_request(msg: pb.ModelInferRequest) -> InferRequest:
    """ModelInferRequest -> InferRequest, validating shapes, datatypes and sizes."""
    raw = msg.raw_input_contents
    if raw and len(raw) != len(msg.inputs):
        raise InvalidInput(
            f"raw_input_contents has {len(raw)} entries for {len(msg.inputs)} inputs."
        )
    if not msg.inputs:
        raise InvalidInput("The request has no inputs.")
    inputs = []
    for i, tensor in enumerate(msg.inputs):
        shape = list(tensor.shape)
        if raw:
            if tensor.HasField("contents"):
                raise InvalidInput(
                    f"Input {tensor.name}: contents and raw_input_contents are both set."
                )
            array = array_from_bytes(tensor.name, tensor.datatype, shape, raw[i])
        else:
            array = _from_contents(tensor.name, tensor.datatype, shape, tensor.contents)
        inputs.append(
            InferInput(
                tensor.name,
                array.shape,
                tensor.datatype,
                array,
                decode_parameters(tensor.parameters),
            )
        )
    outputs = [
        RequestedOutput(o.name, decode_parameters(o.parameters)) for o in msg.outputs
    ] or None
    return InferRequest(
        msg.model_name,
        inputs,
        request_id=msg.id or None,
        from_grpc=True,
        parameters=decode_parameters(msg.parameters),
        request_outputs=outputs,
        model_version=msg.model_version or None,
    )


def _from_contents(name: str, datatype: str, shape: list[int], contents: Any) -> np.ndarray:
    dims = check_shape(name, shape)
    dtype = numpy_dtype(datatype)
    field = CONTENTS_FIELD.get(datatype)
    if field is None:
        raise InvalidInput(f"Input {name}: {datatype} data must be sent in raw_input_contents.")
    values = getattr(contents, field)
    count = element_count(dims)
    if len(values) != count:
        raise InvalidInput(
            f"Input {name}: shape {list(dims)} expects {count} elements, data has {len(values)}."
        )
    if datatype == "BYTES":
        arr = np.empty(count, dtype=object)
        arr[:] = list(values)
        return arr.reshape(dims)
    wide = np.array(values)
    if dtype.kind in "iu" and wide.size and wide.dtype != dtype:
        info = np.iinfo(dtype)
        if wide.min() < info.min or wide.max() > info.max:
            raise InvalidInput(f"Input {name}: a value is out of range for {datatype}.")
    return wide.astype(dtype, copy=False).reshape(dims)


def encode_response(
    response: InferResponse, request: InferRequest, raw: bool
) -> pb.ModelInferResponse:
    """InferResponse -> ModelInferResponse; raw contents when asked for or when needed."""
    outputs = select_outputs(response, request.request_outputs)
    msg = pb.ModelInferResponse(
        model_name=response.model_name,
        model_version=response.model_version or "",
        id=response.id or "",
    )
    if response.parameters:
        encode_parameters(msg.parameters, response.parameters)
    use_raw = raw or any(o.datatype not in CONTENTS_FIELD for o in outputs)
    for out in outputs:
        tensor = msg.outputs.add(name=out.name, datatype=out.datatype, shape=out.shape)
        params = {k: v for k, v in out.parameters.items() if k != "binary_data"}
        if params:
            encode_parameters(tensor.parameters, params)
        array = out.as_numpy()
        if use_raw:
            msg.raw_output_contents.append(bytes(tensor_to_wire(array, out.datatype)))
        elif out.datatype in PACKED_FIELDS:
            fill_packed(tensor.contents, out.datatype, array)
        else:
            values = getattr(tensor.contents, CONTENTS_FIELD[out.datatype])
            if out.datatype == "BYTES":
                values.extend(bytes_element(x) for x in array.ravel())
            else:
                values.extend(array.ravel().tolist())
    return msg
