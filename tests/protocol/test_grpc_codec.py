"""OIP gRPC codec: typed contents and raw contents, both directions, for every datatype."""

from __future__ import annotations

import struct
from typing import Any

import numpy as np
import pytest
import tritonclient.grpc as triton_grpc
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from tritonclient.grpc import _utils as triton_utils
from tritonclient.grpc import service_pb2 as triton_pb

from modelport.errors import InvalidInput
from modelport.protocol.datatypes import NUMPY_DTYPES, WIRE_DTYPES
from modelport.protocol.grpc import codec
from modelport.protocol.grpc import inference_pb2 as pb
from modelport.protocol.grpc.packed import fill_packed, varint
from modelport.protocol.infer import InferOutput, InferRequest, InferResponse, RequestedOutput

INT_TYPES = ["UINT8", "UINT16", "UINT32", "UINT64", "INT8", "INT16", "INT32", "INT64"]
TYPED = ["BOOL", *INT_TYPES, "FP32", "FP64", "BYTES"]  # FP16 has no typed field
ALL_TYPES = [*TYPED, "FP16"]
FIELD = {
    "BOOL": "bool_contents",
    "UINT8": "uint_contents",
    "UINT16": "uint_contents",
    "UINT32": "uint_contents",
    "UINT64": "uint64_contents",
    "INT8": "int_contents",
    "INT16": "int_contents",
    "INT32": "int_contents",
    "INT64": "int64_contents",
    "FP32": "fp32_contents",
    "FP64": "fp64_contents",
    "BYTES": "bytes_contents",
}


def sample(datatype: str) -> np.ndarray:
    """A 2x3 array of the datatype holding values at its limits."""
    if datatype == "BOOL":
        return np.array([[True, False, True], [False, False, True]])
    if datatype == "BYTES":
        arr = np.empty(6, dtype=object)
        arr[:] = [b"a", b"", b"\xff\x00", "é".encode(), b"xyz", b"0"]
        return arr.reshape(2, 3)
    dtype = NUMPY_DTYPES[datatype]
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        values = [int(info.min), int(info.max), 0, 1, int(info.max) - 1, int(info.min) // 3]
    else:
        values = [-1.5, 0.0, 3.25, 65504.0, -0.125, 1e-3]
    return np.array(values, dtype=dtype).reshape(2, 3)


def wire(arr: np.ndarray, datatype: str) -> bytes:
    if datatype == "BYTES":
        return b"".join(struct.pack("<I", len(x)) + x for x in arr.ravel())
    return arr.astype(WIRE_DTYPES[datatype]).tobytes()


def typed_request(datatype: str, shape: list[int], values: list[Any]) -> pb.ModelInferRequest:
    msg = pb.ModelInferRequest(model_name="m")
    tensor = msg.inputs.add(name="x", datatype=datatype, shape=shape)
    getattr(tensor.contents, FIELD.get(datatype, "fp32_contents")).extend(values)
    return msg


def raw_request(datatype: str, shape: list[int], raw: bytes) -> pb.ModelInferRequest:
    msg = pb.ModelInferRequest(model_name="m")
    msg.inputs.add(name="x", datatype=datatype, shape=shape)
    msg.raw_input_contents.append(raw)
    return msg


def response_to_request(msg: pb.ModelInferResponse) -> pb.ModelInferRequest:
    """Feed an encoded response back in as a request."""
    req = pb.ModelInferRequest(model_name=msg.model_name)
    for out in msg.outputs:
        tensor = req.inputs.add(name=out.name, datatype=out.datatype, shape=out.shape)
        if out.HasField("contents"):
            tensor.contents.CopyFrom(out.contents)
    req.raw_input_contents.extend(msg.raw_output_contents)
    return req


def response(*outputs: tuple[str, np.ndarray], **kwargs: Any) -> InferResponse:
    return InferResponse(
        kwargs.pop("response_id", "r"),
        "m",
        [InferOutput.from_numpy(n, a) for n, a in outputs],
        **kwargs,
    )


def no_outputs() -> InferRequest:
    return InferRequest("m", [])


def assert_same(actual: np.ndarray, expected: np.ndarray) -> None:
    assert actual.shape == expected.shape
    assert actual.dtype == expected.dtype
    if expected.dtype == object:
        assert actual.tolist() == expected.tolist()
    else:
        np.testing.assert_array_equal(actual, expected)


# ---- requests -------------------------------------------------------------------------------


@pytest.mark.parametrize("datatype", TYPED)
def test_decode_typed_contents(datatype: str) -> None:
    arr = sample(datatype)
    req = codec.decode_request(typed_request(datatype, [2, 3], arr.ravel().tolist()))
    assert req.from_grpc
    assert (req.inputs[0].name, req.inputs[0].datatype, req.inputs[0].shape) == (
        "x",
        datatype,
        [2, 3],
    )
    assert_same(req.inputs[0].as_numpy(), arr)


@pytest.mark.parametrize("datatype", ALL_TYPES)
def test_decode_raw_contents(datatype: str) -> None:
    arr = sample(datatype)
    req = codec.decode_request(raw_request(datatype, [2, 3], wire(arr, datatype)))
    assert_same(req.inputs[0].as_numpy(), arr)


def test_fp16_needs_raw_contents() -> None:
    with pytest.raises(InvalidInput, match="raw_input_contents"):
        codec.decode_request(typed_request("FP16", [1], [1.0]))


def test_request_fields() -> None:
    msg = typed_request("INT32", [2], [1, 2])
    msg.id = "rid"
    msg.model_version = "3"
    msg.parameters["flag"].bool_param = True
    msg.parameters["n"].int64_param = -4
    msg.parameters["s"].string_param = "v"
    msg.inputs[0].parameters["content_type"].string_param = "np"
    out = msg.outputs.add(name="o")
    out.parameters["binary_data"].bool_param = True
    msg.outputs.add(name="p")
    req = codec.decode_request(msg)
    assert (req.model_name, req.model_version, req.id) == ("m", "3", "rid")
    assert req.parameters == {"flag": True, "n": -4, "s": "v"}
    assert req.inputs[0].parameters == {"content_type": "np"}
    assert [(o.name, o.parameters) for o in req.request_outputs] == [
        ("o", {"binary_data": True}),
        ("p", {}),
    ]


def test_request_without_optional_fields() -> None:
    req = codec.decode_request(typed_request("INT32", [1], [1]))
    assert req.id is None and req.model_version is None
    assert req.request_outputs is None
    assert req.parameters == {}


def test_several_inputs_with_raw_contents() -> None:
    msg = pb.ModelInferRequest(model_name="m")
    msg.inputs.add(name="a", datatype="INT16", shape=[2])
    msg.inputs.add(name="b", datatype="BYTES", shape=[1])
    msg.raw_input_contents.extend([np.array([1, -1], "<i2").tobytes(), b"\x02\0\0\0hi"])
    req = codec.decode_request(msg)
    assert req.inputs[0].as_numpy().tolist() == [1, -1]
    assert req.inputs[1].as_numpy().tolist() == [b"hi"]


@pytest.mark.parametrize(
    ("msg", "match"),
    [
        (pb.ModelInferRequest(model_name="m"), "no inputs"),
        (typed_request("FP32", [3], [1.0, 2.0]), "expects 3 elements, data has 2"),
        (typed_request("FP32", [1], [1.0, 2.0]), "expects 1 elements, data has 2"),
        (typed_request("BYTES", [2, 2], [b"a"]), "expects 4 elements"),
        (typed_request("INT32", [2, -1], [1, 2]), "shape"),
        (typed_request("BF16", [1], [1.0]), "BF16"),
        (typed_request("FLOAT", [1], [1.0]), "Invalid datatype"),
        (raw_request("FP32", [3], b"\0" * 8), "needs 12 bytes, got 8"),
        (raw_request("INT64", [1], b"\0" * 9), "needs 8 bytes"),
        (raw_request("BOOL", [1], b"\x02"), "BOOL bytes must be 0 or 1"),
        (raw_request("BYTES", [1], b"\x01\0"), "truncated BYTES"),
        (raw_request("BYTES", [1], b"\x09\0\0\0abc"), "overruns"),
        (raw_request("BYTES", [2], b"\x01\0\0\0a"), "expects 2 elements"),
        (raw_request("BF16", [1], b"\0\0"), "BF16"),
    ],
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_malformed_requests(msg: pb.ModelInferRequest, match: str) -> None:
    with pytest.raises(InvalidInput, match=match):
        codec.decode_request(msg)


@pytest.mark.parametrize("n_raw", [0, 1, 3])
def test_raw_entries_must_match_inputs(n_raw: int) -> None:
    msg = pb.ModelInferRequest(model_name="m")
    msg.inputs.add(name="a", datatype="INT8", shape=[1])
    msg.inputs.add(name="b", datatype="INT8", shape=[1])
    msg.inputs[0].contents.int_contents.append(1)
    msg.inputs[1].contents.int_contents.append(2)
    msg.raw_input_contents.extend([b"\x01"] * n_raw)
    if n_raw == 0:
        assert [i.as_numpy().tolist() for i in codec.decode_request(msg).inputs] == [[1], [2]]
        return
    with pytest.raises(InvalidInput, match=f"raw_input_contents has {n_raw} entries for 2 inputs"):
        codec.decode_request(msg)


def test_contents_and_raw_both_set() -> None:
    msg = typed_request("FP32", [1], [1.0])
    msg.raw_input_contents.append(np.array([1.0], "<f4").tobytes())
    with pytest.raises(InvalidInput, match="both set"):
        codec.decode_request(msg)


@pytest.mark.parametrize(
    ("datatype", "value"),
    [
        ("INT8", 128),
        ("INT8", -129),
        ("INT8", 200),
        ("INT16", 40000),
        ("INT16", -40000),
        ("UINT8", 256),
        ("UINT16", 65536),
    ],
)
def test_widened_integers_out_of_range(datatype: str, value: int) -> None:
    with pytest.raises(InvalidInput, match=f"out of range for {datatype}"):
        codec.decode_request(typed_request(datatype, [2], [0, value]))


@pytest.mark.parametrize("datatype", ["INT8", "INT16", "UINT8", "UINT16"])
def test_widened_integers_at_their_limits(datatype: str) -> None:
    info = np.iinfo(NUMPY_DTYPES[datatype])
    req = codec.decode_request(typed_request(datatype, [2], [int(info.min), int(info.max)]))
    assert req.inputs[0].as_numpy().tolist() == [int(info.min), int(info.max)]


def test_empty_typed_tensor() -> None:
    req = codec.decode_request(typed_request("INT32", [0, 2], []))
    arr = req.inputs[0].as_numpy()
    assert arr.shape == (0, 2) and arr.dtype == np.int32


# ---- responses ------------------------------------------------------------------------------


@pytest.mark.parametrize("datatype", TYPED)
def test_encode_typed_contents(datatype: str) -> None:
    arr = sample(datatype)
    msg = codec.encode_response(response(("y", arr)), no_outputs(), raw=False)
    assert not msg.raw_output_contents
    (out,) = msg.outputs
    assert (out.name, out.datatype, list(out.shape)) == ("y", datatype, [2, 3])
    values = list(getattr(out.contents, FIELD[datatype]))
    if datatype == "FP32":
        np.testing.assert_array_equal(np.array(values, np.float32), arr.ravel())
    else:
        assert values == arr.ravel().tolist()


@pytest.mark.parametrize("datatype", ["BOOL", "FP32", "FP64"])
@pytest.mark.parametrize("layout", ["contiguous", "transposed", "big-endian"])
def test_packed_contents_equal_the_protobuf_api(datatype: str, layout: str) -> None:
    rng = np.random.default_rng(7)
    if datatype == "BOOL":
        arr = rng.random((40, 30)) > 0.5
    else:
        arr = rng.standard_normal((40, 30)).astype(NUMPY_DTYPES[datatype])
        arr[0, :4] = [np.inf, -np.inf, -0.0, np.finfo(arr.dtype).max]
    if layout == "transposed":
        arr = arr.T
    elif layout == "big-endian":
        arr = arr.astype(arr.dtype.newbyteorder(">"))
    expected = pb.InferTensorContents()
    getattr(expected, FIELD[datatype]).extend(arr.ravel().tolist())
    got = pb.InferTensorContents()
    fill_packed(got, datatype, arr)
    assert got.SerializeToString() == expected.SerializeToString()


def test_packed_empty_tensor_sets_nothing() -> None:
    contents = pb.InferTensorContents()
    fill_packed(contents, "FP32", np.zeros((0, 4), np.float32))
    assert contents.ByteSize() == 0


@pytest.mark.parametrize("value", [0, 1, 127, 128, 300, 2**31, 2**64 - 1])
def test_varint_matches_protobuf(value: int) -> None:
    msg = pb.InferTensorContents(uint64_contents=[value])
    # packed field 5: tag 0x2a, the payload length, then the varint itself
    assert msg.SerializeToString()[2:] == varint(value)


@pytest.mark.parametrize("datatype", ALL_TYPES)
def test_encode_raw_contents(datatype: str) -> None:
    arr = sample(datatype)
    msg = codec.encode_response(response(("y", arr)), no_outputs(), raw=True)
    assert list(msg.raw_output_contents) == [wire(arr, datatype)]
    assert not msg.outputs[0].HasField("contents")


def test_fp16_output_switches_every_output_to_raw() -> None:
    a = np.array([1.5], np.float16)
    b = np.array([7], np.int32)
    msg = codec.encode_response(response(("a", a), ("b", b)), no_outputs(), raw=False)
    assert list(msg.raw_output_contents) == [a.astype("<f2").tobytes(), b.astype("<i4").tobytes()]


def test_encode_response_fields() -> None:
    resp = response(
        ("y", np.array([1.0])), model_version="5", parameters={"b": True, "i": 3, "s": "x"}
    )
    resp.outputs[0].parameters = {"binary_data": True, "content_type": "np"}
    msg = codec.encode_response(resp, no_outputs(), raw=False)
    assert (msg.model_name, msg.model_version, msg.id) == ("m", "5", "r")
    assert codec.decode_parameters(msg.parameters) == {"b": True, "i": 3, "s": "x"}
    assert codec.decode_parameters(msg.outputs[0].parameters) == {"content_type": "np"}


def test_encode_selects_requested_outputs_in_order() -> None:
    resp = response(("a", np.array([1])), ("b", np.array([2.0])))
    req = InferRequest("m", [], request_outputs=[RequestedOutput("b"), RequestedOutput("a")])
    msg = codec.encode_response(resp, req, raw=False)
    assert [o.name for o in msg.outputs] == ["b", "a"]
    req = InferRequest("m", [], request_outputs=[RequestedOutput("nope")])
    with pytest.raises(InvalidInput, match="nope"):
        codec.encode_response(resp, req, raw=False)


def test_unicode_strings_are_encoded_as_utf8() -> None:
    msg = codec.encode_response(response(("y", np.array(["é", "b"]))), no_outputs(), raw=False)
    assert list(msg.outputs[0].contents.bytes_contents) == ["é".encode(), b"b"]


def test_empty_tensor_as_raw_contents() -> None:
    msg = codec.encode_response(
        response(("y", np.zeros((0, 2), np.float32))), no_outputs(), raw=True
    )
    assert list(msg.raw_output_contents) == [b""]


def test_parameters_round_trip() -> None:
    params = pb.ModelInferRequest().parameters
    codec.encode_parameters(params, {"b": False, "i": 2**40, "s": "txt", "f": 0.5})
    assert codec.decode_parameters(params) == {"b": False, "i": 2**40, "s": "txt", "f": "0.5"}


# ---- third-party client (tritonclient) interoperability -------------------------------------


@pytest.mark.parametrize("datatype", ALL_TYPES)
def test_tritonclient_requests_decode(datatype: str) -> None:
    arr = sample(datatype)
    inp = triton_grpc.InferInput("x", list(arr.shape), datatype)
    inp.set_data_from_numpy(arr)
    out = triton_grpc.InferRequestedOutput("y")
    theirs = triton_utils._get_inference_request(
        "m", [inp], "", "id-1", [out], 0, False, False, 0, None, {"k": "v"}
    )
    msg = pb.ModelInferRequest.FromString(theirs.SerializeToString())
    req = codec.decode_request(msg)
    assert req.id == "id-1"
    assert req.parameters == {"k": "v"}
    assert [o.name for o in req.request_outputs] == ["y"]
    assert_same(req.inputs[0].as_numpy(), arr)


@pytest.mark.parametrize("datatype", ALL_TYPES)
def test_tritonclient_reads_raw_responses(datatype: str) -> None:
    # tritonclient reads raw_output_contents only (what it gets for its raw requests)
    arr = sample(datatype)
    msg = codec.encode_response(response(("y", arr)), no_outputs(), raw=True)
    theirs = triton_pb.ModelInferResponse.FromString(msg.SerializeToString())
    got = triton_grpc.InferResult(theirs).as_numpy("y")
    assert got.shape == arr.shape
    if datatype == "BYTES":
        assert got.ravel().tolist() == arr.ravel().tolist()
    else:
        np.testing.assert_array_equal(got, arr)


# ---- property: encode → decode is the identity ----------------------------------------------

shapes = hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=4)


@pytest.mark.parametrize("datatype", ["BOOL", *INT_TYPES, "FP16", "FP32", "FP64"])
@pytest.mark.parametrize("raw", [True, False], ids=["raw", "typed"])
@settings(max_examples=30, deadline=None)
@given(data=st.data())
def test_property_round_trip(datatype: str, raw: bool, data: st.DataObject) -> None:
    arr = data.draw(hnp.arrays(NUMPY_DTYPES[datatype], shapes))
    msg = codec.encode_response(response(("t", arr)), no_outputs(), raw=raw)
    req = codec.decode_request(response_to_request(msg))
    got = req.inputs[0].as_numpy()
    assert req.inputs[0].datatype == datatype
    assert got.dtype == arr.dtype and got.shape == arr.shape
    np.testing.assert_array_equal(got, arr)  # NaN == NaN here
