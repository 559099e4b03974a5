"""Open Inference Protocol (KServe V2) REST JSON codec, with the binary tensor data extension.

Spec: https://github.com/kserve/open-inference-protocol (REST inference request/response
JSON objects) and the binary tensor data extension as defined by Triton/KServe: when the
``Inference-Header-Content-Length`` header is present, the body is that many bytes of JSON
followed by the raw tensors, in input order, for each input that declares
``parameters.binary_data_size``. Raw tensors are little-endian, row-major; BOOL is one byte
per element; BYTES elements are each prefixed with a 4-byte little-endian length.
"""

from __future__ import annotations

import struct
from typing import Any

import numpy as np
import orjson

from modelport.errors import InferenceError, InvalidInput
from modelport.protocol.datatypes import WIRE_DTYPES, numpy_dtype
from modelport.protocol.infer import (
    InferInput,
    InferOutput,
    InferRequest,
    InferResponse,
    RequestedOutput,
)
from modelport.protocol.tensor import array_from_json, check_shape, element_count

HEADER_LENGTH = "inference-header-content-length"
_U32 = struct.Struct("<I")


def loads_object(body: bytes, what: str = "request") -> dict[str, Any]:
    """Parse a JSON object or raise InvalidInput naming what was expected."""
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvalidInput(f"Unrecognized {what} format: invalid JSON ({exc}).") from None
    if not isinstance(doc, dict):
        raise InvalidInput(f"Unrecognized {what} format: expected a JSON object.")
    return doc


def decode_request(
    body: bytes,
    model_name: str,
    model_version: str | None = None,
    header_length: int | None = None,
) -> InferRequest:
    """Decode a V2 infer request body (JSON, or JSON + binary tensors) into an InferRequest."""
    if header_length is not None:
        if header_length < 0 or header_length > len(body):
            raise InvalidInput(f"Inference-Header-Content-Length {header_length} exceeds the body.")
        doc = loads_object(memoryview(body)[:header_length].tobytes())
        binary = memoryview(body)[header_length:]
    else:
        doc = loads_object(body)
        binary = None

    raw_inputs = doc.get("inputs")
    if not isinstance(raw_inputs, list) or not raw_inputs:
        raise InvalidInput('Expected "inputs" to be a non-empty list.')
    offset = 0
    inputs: list[InferInput] = []
    for raw in raw_inputs:
        if not isinstance(raw, dict):
            raise InvalidInput("Each input must be a JSON object.")
        name = raw.get("name")
        datatype = raw.get("datatype")
        if not isinstance(name, str) or not name:
            raise InvalidInput('Each input needs a "name" string.')
        if not isinstance(datatype, str):
            raise InvalidInput(f'Input {name}: "datatype" must be a string.')
        params = raw.get("parameters")
        if params is None:
            params = {}
        elif not isinstance(params, dict):
            raise InvalidInput(f'Input {name}: "parameters" must be an object.')
        size = params.get("binary_data_size")
        if size is not None:
            if binary is None:
                raise InvalidInput(
                    f"Input {name} declares binary_data_size but the request has no "
                    "Inference-Header-Content-Length header."
                )
            if type(size) is not int or size < 0 or offset + size > len(binary):
                raise InvalidInput(f"Input {name}: binary_data_size {size} exceeds the body.")
            array = array_from_bytes(
                name, datatype, raw.get("shape"), binary[offset : offset + size]
            )
            offset += size
            # The size describes this body only; a re-encoder must not send it on.
            params = {k: v for k, v in params.items() if k != "binary_data_size"}
        else:
            if "data" not in raw:
                raise InvalidInput(f'Input {name} has no "data".')
            array = array_from_json(name, datatype, raw.get("shape"), raw["data"])
        inputs.append(InferInput(name, array.shape, datatype, array, params))
    if binary is not None and offset != len(binary):
        raise InvalidInput(
            f"The body holds {len(binary) - offset} bytes of binary data that no input declares."
        )

    request_id = doc.get("id")
    if request_id is not None and not isinstance(request_id, str):
        raise InvalidInput('"id" must be a string.')
    parameters = doc.get("parameters")
    if parameters is not None and not isinstance(parameters, dict):
        raise InvalidInput('"parameters" must be an object.')
    return InferRequest(
        model_name,
        inputs,
        request_id=request_id,
        parameters=parameters,
        request_outputs=_requested_outputs(doc.get("outputs")),
        model_version=model_version,
    )


def _requested_outputs(raw: Any) -> list[RequestedOutput] | None:
    if raw is None:
        return None
    if not isinstance(raw, list):
        raise InvalidInput('"outputs" must be a list.')
    outs = []
    for item in raw:
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            raise InvalidInput('Each requested output needs a "name" string.')
        params = item.get("parameters")
        if params is not None and not isinstance(params, dict):
            raise InvalidInput(f'Output {item["name"]}: "parameters" must be an object.')
        outs.append(RequestedOutput(item["name"], params))
    return outs


def array_from_bytes(name: str, datatype: str, shape: Any, raw: memoryview | bytes) -> np.ndarray:
    """Decode one raw little-endian tensor (binary extension or gRPC raw contents)."""
    dims = check_shape(name, shape)
    count = element_count(dims)
    if datatype == "BYTES":
        items = _split_bytes(name, raw)
        if len(items) != count:
            raise InvalidInput(
                f"Input {name}: shape {list(dims)} expects {count} elements, data has {len(items)}."
            )
        arr = np.empty(count, dtype=object)
        arr[:] = items
        return arr.reshape(dims)
    numpy_dtype(datatype)  # raises InvalidInput for unknown names
    wire = WIRE_DTYPES[datatype]
    if len(raw) != count * wire.itemsize:
        raise InvalidInput(
            f"Input {name}: shape {list(dims)} of {datatype} needs {count * wire.itemsize} bytes, "
            f"got {len(raw)}."
        )
    # Zero-copy view over the request body; read-only, as the body is.
    arr = np.frombuffer(raw, dtype=wire).reshape(dims)
    if datatype == "BOOL" and arr.size and arr.view(np.uint8).max() > 1:
        raise InvalidInput(f"Input {name}: BOOL bytes must be 0 or 1.")
    return arr


def _split_bytes(name: str, raw: memoryview | bytes) -> list[bytes]:
    view = memoryview(raw)
    items = []
    pos = 0
    end = len(view)
    while pos < end:
        if pos + 4 > end:
            raise InvalidInput(f"Input {name}: truncated BYTES element length.")
        (length,) = _U32.unpack_from(view, pos)
        pos += 4
        if pos + length > end:
            raise InvalidInput(f"Input {name}: BYTES element overruns the data.")
        items.append(view[pos : pos + length].tobytes())
        pos += length
    return items


def bytes_to_wire(array: np.ndarray) -> bytes:
    """Serialize a BYTES tensor with 4-byte little-endian length prefixes."""
    parts = []
    for item in array.ravel():
        data = bytes_element(item)
        parts.append(_U32.pack(len(data)))
        parts.append(data)
    return b"".join(parts)


def bytes_element(item: Any) -> bytes:
    """One BYTES element as bytes; only str and bytes-like values are BYTES."""
    if isinstance(item, str):
        return item.encode()
    if isinstance(item, bytes | bytearray | memoryview | np.bytes_):
        return bytes(item)
    raise InferenceError(f"A BYTES output holds a {type(item).__name__}, not bytes or str.")


def tensor_to_wire(array: np.ndarray, datatype: str) -> bytes | memoryview:
    """Raw little-endian bytes of a tensor, without copying when already in wire layout."""
    if datatype == "BYTES":
        return bytes_to_wire(array)
    wire = WIRE_DTYPES[datatype]
    arr = np.ascontiguousarray(array, dtype=wire)
    if arr.size == 0:
        return b""
    return arr.data.cast("B")


def encode_response(
    response: InferResponse,
    requested: list[RequestedOutput] | None = None,
    binary_default: bool = False,
) -> tuple[bytes, int | None]:
    """Encode a V2 response; returns (body, json_header_length or None when all-JSON)."""
    outputs = select_outputs(response, requested)
    binary_names = {o.name for o in requested or () if o.binary_data}
    chunks: list[bytes | memoryview] = []
    out_docs = []
    for out in outputs:
        doc: dict[str, Any] = {"name": out.name, "shape": out.shape, "datatype": out.datatype}
        params = dict(out.parameters) if out.parameters else {}
        asked = params.pop("binary_data", False)
        want_binary = binary_default or out.name in binary_names or asked
        if want_binary:
            raw = tensor_to_wire(out.as_numpy(), out.datatype)
            params["binary_data_size"] = len(raw)
            chunks.append(raw)
        else:
            doc["data"] = _json_data(out)
        if params:
            doc["parameters"] = params
        out_docs.append(doc)
    body: dict[str, Any] = {"model_name": response.model_name}
    if response.model_version is not None:
        body["model_version"] = response.model_version
    if response.id is not None:
        body["id"] = response.id
    if response.parameters:
        body["parameters"] = response.parameters
    body["outputs"] = out_docs
    header = dumps(body)
    if not chunks:
        return header, None
    return b"".join([header, *chunks]), len(header)


def select_outputs(
    response: InferResponse, requested: list[RequestedOutput] | None
) -> list[InferOutput]:
    """The outputs the client asked for, in the order asked; all when none were named."""
    if not requested:
        return response.outputs
    by_name = {o.name: o for o in response.outputs}
    selected = []
    for want in requested:
        out = by_name.get(want.name)
        if out is None:
            raise InvalidInput(f"Requested output {want.name} is not produced by the model.")
        selected.append(out)
    return selected


def _json_data(out: InferOutput) -> Any:
    arr = out._array
    if arr is None:
        return out.data
    if arr.dtype.kind in "OSU":
        return [_text(x) for x in arr.ravel()]
    if arr.dtype.byteorder == ">":
        arr = arr.astype(arr.dtype.newbyteorder("="))
    return np.ascontiguousarray(arr.ravel())


def _text(item: Any) -> Any:
    if isinstance(item, bytes):
        try:
            return item.decode()
        except UnicodeDecodeError:
            raise InferenceError(
                "An output holds non-UTF-8 bytes; request it with binary_data to receive it."
            ) from None
    return item


def dumps(doc: Any) -> bytes:
    """JSON-encode a response document; numpy arrays inside are serialized natively."""
    try:
        return orjson.dumps(doc, option=orjson.OPT_SERIALIZE_NUMPY)
    except TypeError as exc:
        raise InferenceError(f"The model returned a value that cannot be encoded: {exc}") from None


# Binary-extension parameters describe one body; a request re-encoded as JSON drops them (and
# asks for JSON outputs, since the answer is parsed as JSON).
_BINARY_PARAMS = frozenset({"binary_data", "binary_data_size", "binary_data_output"})


def _json_params(params: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in params.items() if k not in _BINARY_PARAMS}


def encode_request(request: InferRequest) -> bytes:
    """Encode an InferRequest as V2 JSON (used when a transformer calls its predictor)."""
    inputs = []
    for i in request.inputs:
        doc_in: dict[str, Any] = {
            "name": i.name,
            "shape": i.shape,
            "datatype": i.datatype,
            "data": _json_data(InferOutput(i.name, i.shape, i.datatype, i.as_numpy())),
        }
        params = _json_params(i.parameters)
        if params:
            doc_in["parameters"] = params
        inputs.append(doc_in)
    doc: dict[str, Any] = {"inputs": inputs}
    if request.id is not None:
        doc["id"] = request.id
    params = _json_params(request.parameters)
    if params:
        doc["parameters"] = params
    if request.request_outputs:
        doc["outputs"] = [
            {"name": o.name, "parameters": _json_params(o.parameters)}
            for o in request.request_outputs
        ]
    return dumps(doc)


def decode_response(body: bytes) -> InferResponse:
    """Decode a V2 JSON infer response (used by transformers and clients)."""
    doc = loads_object(body, "response")
    outputs = []
    for raw in doc.get("outputs") or []:
        outputs.append(
            InferOutput(
                raw["name"],
                raw["shape"],
                raw["datatype"],
                array_from_json(raw["name"], raw["datatype"], raw["shape"], raw.get("data", [])),
                raw.get("parameters"),
            )
        )
    return InferResponse(
        doc.get("id"),
        doc.get("model_name", ""),
        outputs,
        model_version=doc.get("model_version"),
        parameters=doc.get("parameters"),
    )
