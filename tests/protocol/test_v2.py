"""OIP (V2) REST codec: JSON and binary tensor extension, both directions."""

from __future__ import annotations

import struct
import time
from typing import Any

import numpy as np
import orjson
import pytest
import tritonclient.http as triton
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from modelport.errors import InferenceError, InvalidInput
from modelport.protocol import v2
from modelport.protocol.datatypes import NUMPY_DTYPES, WIRE_DTYPES
from modelport.protocol.infer import (
    InferInput,
    InferOutput,
    InferRequest,
    InferResponse,
    RequestedOutput,
)

INT_TYPES = ["UINT8", "UINT16", "UINT32", "UINT64", "INT8", "INT16", "INT32", "INT64"]
FLOAT_TYPES = ["FP16", "FP32", "FP64"]
NUMERIC_TYPES = INT_TYPES + FLOAT_TYPES
ALL_TYPES = ["BOOL", *NUMERIC_TYPES, "BYTES"]


# ---- helpers --------------------------------------------------------------------------------


def sample(datatype: str, shape: tuple[int, ...] = (2, 3)) -> np.ndarray:
    """A small array of the datatype holding values near its limits."""
    n = int(np.prod(shape))
    if datatype == "BOOL":
        values = np.array([i % 3 == 0 for i in range(n)])
    elif datatype == "BYTES":
        values = np.empty(n, dtype=object)
        values[:] = [f"s{i}é".encode() for i in range(n)]
    elif datatype in INT_TYPES:
        info = np.iinfo(NUMPY_DTYPES[datatype])
        pool = [int(info.min), int(info.max), 0, 1, int(info.max) - 1, int(info.min) // 2]
        values = np.array([pool[i % len(pool)] for i in range(n)], dtype=NUMPY_DTYPES[datatype])
    else:
        pool = [-1.5, 0.0, 3.25, 65504.0, -0.125, 1.0]
        values = np.array([pool[i % len(pool)] for i in range(n)], dtype=NUMPY_DTYPES[datatype])
    return values.reshape(shape)


def wire(arr: np.ndarray, datatype: str) -> bytes:
    """Bytes of a tensor in the binary tensor extension layout, built independently."""
    if datatype == "BYTES":
        out = b""
        for item in arr.ravel():
            data = item.encode() if isinstance(item, str) else item
            out += struct.pack("<I", len(data)) + data
        return out
    return arr.astype(WIRE_DTYPES[datatype]).tobytes()


def json_value(arr: np.ndarray) -> list[Any]:
    if arr.dtype == object:
        return [x.decode() if isinstance(x, bytes) else x for x in arr.ravel()]
    return arr.ravel().tolist()


def binary_request(
    inputs: list[dict[str, Any]], chunks: list[bytes], **extra: Any
) -> tuple[bytes, int]:
    header = orjson.dumps({"inputs": inputs, **extra})
    return header + b"".join(chunks), len(header)


def decode_json(doc: dict[str, Any]) -> InferRequest:
    return v2.decode_request(orjson.dumps(doc), "m")


def one_input(**fields: Any) -> dict[str, Any]:
    return {"inputs": [{"name": "x", "shape": [1], "datatype": "FP32", "data": [1.0], **fields}]}


def response_of(*arrays: tuple[str, np.ndarray], **kwargs: Any) -> InferResponse:
    outputs = [InferOutput.from_numpy(name, arr) for name, arr in arrays]
    return InferResponse(kwargs.pop("response_id", "r1"), "m", outputs, **kwargs)


def as_request(body: bytes, json_length: int | None) -> InferRequest:
    """Feed an encoded response back in as a request (outputs become inputs)."""
    if json_length is None:
        doc = orjson.loads(body)
        return v2.decode_request(orjson.dumps({"inputs": doc["outputs"]}), "m")
    header = orjson.loads(body[:json_length])
    new_header = orjson.dumps({"inputs": header["outputs"]})
    return v2.decode_request(new_header + body[json_length:], "m", header_length=len(new_header))


def assert_same(actual: np.ndarray, expected: np.ndarray) -> None:
    assert actual.shape == expected.shape
    if expected.dtype == object:
        assert [x.encode() if isinstance(x, str) else x for x in actual.ravel()] == [
            x.encode() if isinstance(x, str) else x for x in expected.ravel()
        ]
    else:
        assert actual.dtype == expected.dtype
        np.testing.assert_array_equal(actual, expected)


# ---- JSON requests --------------------------------------------------------------------------


@pytest.mark.parametrize("datatype", ALL_TYPES)
@pytest.mark.parametrize("nested", [False, True], ids=["flat", "nested"])
def test_decode_json_every_datatype(datatype: str, nested: bool) -> None:
    arr = sample(datatype)
    data = json_value(arr)
    if nested:
        data = [data[0:3], data[3:6]]
    req = decode_json(
        {"inputs": [{"name": "x", "shape": [2, 3], "datatype": datatype, "data": data}]}
    )
    inp = req.inputs[0]
    assert (inp.name, inp.datatype, inp.shape) == ("x", datatype, [2, 3])
    assert_same(inp.as_numpy(), arr)


def test_decode_json_request_fields() -> None:
    doc = {
        "id": "req-7",
        "parameters": {"priority": 2, "tag": "a"},
        "inputs": [
            {"name": "a", "shape": [2], "datatype": "INT32", "data": [1, 2]},
            {
                "name": "b",
                "shape": [1, 2],
                "datatype": "BYTES",
                "data": ["x", "y"],
                "parameters": {"content_type": "str"},
            },
        ],
        "outputs": [{"name": "o2", "parameters": {"binary_data": True}}, {"name": "o1"}],
    }
    req = v2.decode_request(orjson.dumps(doc), "model-a", "3")
    assert (req.model_name, req.model_version, req.id) == ("model-a", "3", "req-7")
    assert req.parameters == {"priority": 2, "tag": "a"}
    assert [i.name for i in req.inputs] == ["a", "b"]
    assert req.get_input_by_name("b").parameters == {"content_type": "str"}
    assert req.get_input_by_name("missing") is None
    assert [(o.name, o.binary_data) for o in req.request_outputs] == [("o2", True), ("o1", False)]


def test_decode_without_optional_fields() -> None:
    req = decode_json(one_input())
    assert req.id is None
    assert req.parameters == {}
    assert req.request_outputs is None


@pytest.mark.parametrize(
    ("body", "match"),
    [
        (b"{not json", "invalid JSON"),
        (b"", "invalid JSON"),
        (b"[1, 2]", "expected a JSON object"),
        (b'"inputs"', "expected a JSON object"),
        (b"{}", "non-empty list"),
        (b'{"inputs": []}', "non-empty list"),
        (b'{"inputs": {"name": "x"}}', "non-empty list"),
        (b'{"inputs": [1]}', "JSON object"),
        (b'{"inputs": [{"shape": [1], "datatype": "FP32", "data": [1]}]}', '"name"'),
        (b'{"inputs": [{"name": "", "shape": [1], "datatype": "FP32", "data": [1]}]}', '"name"'),
        (b'{"inputs": [{"name": 3, "shape": [1], "datatype": "FP32", "data": [1]}]}', '"name"'),
        (b'{"inputs": [{"name": "x", "shape": [1], "data": [1]}]}', "datatype"),
        (b'{"inputs": [{"name": "x", "shape": [1], "datatype": 7, "data": [1]}]}', "datatype"),
        (b'{"inputs": [{"name": "x", "shape": [1], "datatype": "FP32"}]}', 'no "data"'),
        (b'{"inputs": [{"name": "x", "datatype": "FP32", "data": [1]}]}', "shape"),
    ],
)
def test_malformed_requests(body: bytes, match: str) -> None:
    with pytest.raises(InvalidInput, match=match):
        v2.decode_request(body, "m")


@pytest.mark.parametrize(
    ("doc", "match"),
    [
        (one_input(parameters=[1]), '"parameters" must be an object'),
        ({**one_input(), "parameters": "x"}, '"parameters" must be an object'),
        ({**one_input(), "id": 5}, '"id" must be a string'),
        ({**one_input(), "outputs": {"name": "o"}}, '"outputs" must be a list'),
        ({**one_input(), "outputs": [{"nom": "o"}]}, "requested output"),
        ({**one_input(), "outputs": ["o"]}, "requested output"),
        ({**one_input(), "outputs": [{"name": "o", "parameters": 1}]}, "Output o"),
    ],
)
def test_malformed_request_fields(doc: dict[str, Any], match: str) -> None:
    with pytest.raises(InvalidInput, match=match):
        decode_json(doc)


@pytest.mark.parametrize(
    ("datatype", "data"),
    [
        ("FP32", ["1.5"]),
        ("UINT8", [300]),
        ("UINT32", [-1]),
        ("INT32", [1.5]),
        ("BOOL", [1]),
        ("BF16", [1.0]),
        ("FLOAT", [1.0]),
    ],
)
def test_json_values_are_checked_against_the_datatype(datatype: str, data: list[Any]) -> None:
    with pytest.raises(InvalidInput):
        decode_json({"inputs": [{"name": "x", "shape": [1], "datatype": datatype, "data": data}]})


def test_json_data_length_must_match_shape() -> None:
    with pytest.raises(InvalidInput, match="expects 4 elements, data has 3"):
        decode_json(
            {"inputs": [{"name": "x", "shape": [2, 2], "datatype": "FP32", "data": [1, 2, 3]}]}
        )


def test_deeply_nested_json_is_rejected() -> None:
    body = b'{"inputs": [{"name": "x", "shape": [1], "datatype": "FP32", "data": ' + b"[" * 100_000
    body += b"1" + b"]" * 100_000 + b"}]}"
    with pytest.raises(InvalidInput):
        v2.decode_request(body, "m")


def test_huge_declared_shape_with_tiny_data_fails_fast() -> None:
    start = time.perf_counter()
    with pytest.raises(InvalidInput, match="expects"):
        decode_json(
            {"inputs": [{"name": "x", "shape": [2**62, 2**62], "datatype": "FP32", "data": [1]}]}
        )
    body, length = binary_request(
        [
            {
                "name": "x",
                "shape": [2**62],
                "datatype": "FP32",
                "parameters": {"binary_data_size": 4},
            }
        ],
        [b"\0\0\0\0"],
    )
    with pytest.raises(InvalidInput, match="bytes"):
        v2.decode_request(body, "m", header_length=length)
    assert time.perf_counter() - start < 1.0


# ---- binary tensor extension: requests ------------------------------------------------------


@pytest.mark.parametrize("datatype", ALL_TYPES)
def test_decode_binary_every_datatype(datatype: str) -> None:
    arr = sample(datatype)
    raw = wire(arr, datatype)
    body, length = binary_request(
        [
            {
                "name": "x",
                "shape": [2, 3],
                "datatype": datatype,
                "parameters": {"binary_data_size": len(raw)},
            }
        ],
        [raw],
    )
    req = v2.decode_request(body, "m", header_length=length)
    assert req.inputs[0].datatype == datatype
    assert_same(req.inputs[0].as_numpy(), arr)


def test_binary_numeric_tensors_are_zero_copy_views() -> None:
    arr = np.arange(6, dtype=np.float32)
    body, length = binary_request(
        [{"name": "x", "shape": [6], "datatype": "FP32", "parameters": {"binary_data_size": 24}}],
        [arr.tobytes()],
    )
    got = v2.decode_request(body, "m", header_length=length).inputs[0].as_numpy()
    assert not got.flags.owndata
    assert not got.flags.writeable


def test_binary_and_json_inputs_mix_in_declared_order() -> None:
    a = np.array([[1, 2], [3, 4]], dtype=np.int16)
    c = np.array([b"hello", b"", b"\xff\x00"], dtype=object)
    inputs = [
        {"name": "a", "shape": [2, 2], "datatype": "INT16", "parameters": {"binary_data_size": 8}},
        {"name": "b", "shape": [2], "datatype": "FP64", "data": [0.5, 1.5]},
        {"name": "c", "shape": [3], "datatype": "BYTES", "parameters": {"binary_data_size": 19}},
    ]
    body, length = binary_request(inputs, [wire(a, "INT16"), wire(c, "BYTES")], id="r")
    req = v2.decode_request(body, "m", header_length=length)
    assert req.id == "r"
    np.testing.assert_array_equal(req.inputs[0].as_numpy(), a)
    np.testing.assert_array_equal(req.inputs[1].as_numpy(), [0.5, 1.5])
    assert req.inputs[2].as_numpy().tolist() == [b"hello", b"", b"\xff\x00"]


def test_header_length_equal_to_body_without_binary_inputs() -> None:
    body = orjson.dumps(one_input())
    req = v2.decode_request(body, "m", header_length=len(body))
    assert req.inputs[0].as_numpy().tolist() == [1.0]


def _binary_x(size: Any, shape: list[int] | None = None, datatype: str = "FP32") -> dict[str, Any]:
    return {
        "name": "x",
        "shape": shape if shape is not None else [2],
        "datatype": datatype,
        "parameters": {"binary_data_size": size},
    }


@pytest.mark.parametrize(
    ("inputs", "chunks", "match"),
    [
        ([_binary_x(16)], [b"\0" * 8], "exceeds the body"),
        ([_binary_x(8), _binary_x(8)], [b"\0" * 12], "exceeds the body"),
        ([_binary_x(-8)], [b"\0" * 8], "binary_data_size -8"),
        ([_binary_x(8.0)], [b"\0" * 8], "binary_data_size"),
        ([_binary_x("8")], [b"\0" * 8], "binary_data_size"),
        ([_binary_x(True, [1], "BOOL")], [b"\1"], "binary_data_size"),
        ([_binary_x(8)], [b"\0" * 12], "4 bytes of binary data that no input declares"),
        ([one_input()["inputs"][0]], [b"\0"], "1 bytes of binary data"),
        ([_binary_x(4)], [b"\0" * 4], "needs 8 bytes, got 4"),
        ([_binary_x(12, [3], "FP16")], [b"\0" * 12], "needs 6 bytes"),
        ([_binary_x(2, [2], "BOOL")], [b"\1\2"], "BOOL bytes must be 0 or 1"),
        ([_binary_x(8, [2], "BF16")], [b"\0" * 8], "BF16"),
        ([_binary_x(8, [2], "COMPLEX")], [b"\0" * 8], "Invalid datatype"),
        ([_binary_x(8, [-2])], [b"\0" * 8], "shape"),
    ],
)
def test_malformed_binary_requests(inputs: list[Any], chunks: list[bytes], match: str) -> None:
    body, length = binary_request(inputs, chunks)
    with pytest.raises(InvalidInput, match=match):
        v2.decode_request(body, "m", header_length=length)


@pytest.mark.parametrize(
    ("raw", "count", "match"),
    [
        (b"\x02\x00", 1, "truncated BYTES element length"),
        (struct.pack("<I", 1) + b"a" + b"\x01\x00\x00", 2, "truncated BYTES element length"),
        (struct.pack("<I", 5) + b"abc", 1, "overruns"),
        (struct.pack("<I", 2**32 - 1) + b"abc", 1, "overruns"),
        (struct.pack("<I", 1) + b"a", 2, "expects 2 elements, data has 1"),
        (struct.pack("<I", 0) * 3, 2, "expects 2 elements, data has 3"),
    ],
)
def test_malformed_binary_bytes(raw: bytes, count: int, match: str) -> None:
    body, length = binary_request([_binary_x(len(raw), [count], "BYTES")], [raw])
    with pytest.raises(InvalidInput, match=match):
        v2.decode_request(body, "m", header_length=length)


@pytest.mark.parametrize("header_length", [10_000, -1])
def test_header_length_outside_the_body(header_length: int) -> None:
    with pytest.raises(InvalidInput, match="Inference-Header-Content-Length"):
        v2.decode_request(orjson.dumps(one_input()), "m", header_length=header_length)


def test_header_length_cutting_the_json_short() -> None:
    body, length = binary_request([_binary_x(8)], [b"\0" * 8])
    with pytest.raises(InvalidInput, match="invalid JSON"):
        v2.decode_request(body, "m", header_length=length - 3)


def test_binary_data_size_without_the_header() -> None:
    body = orjson.dumps({"inputs": [_binary_x(8)]})
    with pytest.raises(InvalidInput, match="no Inference-Header-Content-Length"):
        v2.decode_request(body, "m")


def test_array_from_bytes_directly() -> None:
    raw = np.array([[1.0, -2.0]], dtype="<f8").tobytes()
    np.testing.assert_array_equal(v2.array_from_bytes("x", "FP64", [1, 2], raw), [[1.0, -2.0]])
    assert v2.array_from_bytes("x", "FP32", [0, 4], b"").shape == (0, 4)
    assert v2.array_from_bytes("x", "BYTES", [0], b"").shape == (0,)
    assert v2.array_from_bytes("x", "BYTES", [1], b"\0\0\0\0").tolist() == [b""]
    assert v2.array_from_bytes("x", "INT32", [], b"\x07\0\0\0").tolist() == 7


# ---- third-party client (tritonclient) interoperability -------------------------------------


@pytest.mark.parametrize("datatype", ALL_TYPES)
@pytest.mark.parametrize("binary", [True, False], ids=["binary", "json"])
def test_tritonclient_request_bodies_decode(datatype: str, binary: bool) -> None:
    arr = sample(datatype)
    inp = triton.InferInput("x", list(arr.shape), datatype)
    inp.set_data_from_numpy(arr, binary_data=binary)
    outs = [triton.InferRequestedOutput("y", binary_data=True)]
    body, length = triton.InferenceServerClient.generate_request_body(
        [inp], outputs=outs, request_id="abc", parameters={"k": "v"}
    )
    req = v2.decode_request(body, "m", header_length=length)
    assert req.id == "abc"
    assert req.parameters == {"k": "v"}
    assert [(o.name, o.binary_data) for o in req.request_outputs] == [("y", True)]
    assert_same(req.inputs[0].as_numpy(), arr)


@pytest.mark.parametrize("datatype", ALL_TYPES)
@pytest.mark.parametrize("binary", [True, False], ids=["binary", "json"])
def test_tritonclient_reads_encoded_responses(datatype: str, binary: bool) -> None:
    arr = sample(datatype)
    if datatype == "BYTES" and not binary:
        arr = np.array([x.decode() for x in arr.ravel()], dtype=object).reshape(arr.shape)
    body, length = v2.encode_response(response_of(("y", arr)), binary_default=binary)
    assert (length is not None) is binary
    result = triton.InferResult.from_response_body(body, header_length=length)
    got = result.as_numpy("y")
    assert got is not None
    if datatype == "BYTES":
        assert [x if isinstance(x, bytes) else x.encode() for x in got.ravel()] == [
            x if isinstance(x, bytes) else x.encode() for x in arr.ravel()
        ]
    else:
        assert got.shape == arr.shape
        np.testing.assert_array_equal(got, arr)
    assert result.get_response()["id"] == "r1"


# ---- responses ------------------------------------------------------------------------------


@pytest.mark.parametrize("datatype", ALL_TYPES)
def test_encode_json_every_datatype(datatype: str) -> None:
    arr = sample(datatype)
    body, length = v2.encode_response(response_of(("y", arr)))
    assert length is None
    doc = orjson.loads(body)
    (out,) = doc["outputs"]
    assert out == {"name": "y", "shape": [2, 3], "datatype": datatype, "data": json_value(arr)}


def test_encode_response_envelope() -> None:
    resp = response_of(("y", np.array([1.0])), model_version="2", parameters={"a": 1})
    doc = orjson.loads(v2.encode_response(resp)[0])
    assert doc["model_name"] == "m"
    assert doc["model_version"] == "2"
    assert doc["id"] == "r1"
    assert doc["parameters"] == {"a": 1}
    resp = response_of(("y", np.array([1.0])), response_id=None)
    doc = orjson.loads(v2.encode_response(resp)[0])
    assert "id" not in doc and "model_version" not in doc and "parameters" not in doc


def test_encode_keeps_output_parameters() -> None:
    out = InferOutput("y", [1], "FP32", np.array([1.0], np.float32), {"content_type": "np"})
    doc = orjson.loads(v2.encode_response(InferResponse(None, "m", [out]))[0])
    assert doc["outputs"][0]["parameters"] == {"content_type": "np"}


def test_encode_output_given_as_python_list() -> None:
    out = InferOutput("y", [2, 2], "INT64", [[1, 2], [3, 4]])
    doc = orjson.loads(v2.encode_response(InferResponse(None, "m", [out]))[0])
    assert doc["outputs"][0]["shape"] == [2, 2]
    assert np.array(doc["outputs"][0]["data"]).ravel().tolist() == [1, 2, 3, 4]


@pytest.mark.parametrize("datatype", ALL_TYPES)
def test_encode_binary_every_datatype(datatype: str) -> None:
    arr = sample(datatype)
    body, length = v2.encode_response(
        response_of(("y", arr)), [RequestedOutput("y", {"binary_data": True})]
    )
    assert length is not None
    header = orjson.loads(body[:length])
    (out,) = header["outputs"]
    assert "data" not in out
    assert out["parameters"] == {"binary_data_size": len(wire(arr, datatype))}
    assert body[length:] == wire(arr, datatype)


def test_requested_outputs_select_and_order() -> None:
    resp = response_of(("a", np.array([1])), ("b", np.array([2.0])), ("c", np.array([True])))
    req = [RequestedOutput("c"), RequestedOutput("a", {"binary_data": True})]
    body, length = v2.encode_response(resp, req)
    header = orjson.loads(body[:length])
    assert [o["name"] for o in header["outputs"]] == ["c", "a"]
    assert header["outputs"][0]["data"] == [True]
    assert header["outputs"][1]["parameters"] == {"binary_data_size": 8}
    assert body[length:] == np.array([1], "<i8").tobytes()


def test_select_outputs() -> None:
    resp = response_of(("a", np.array([1])), ("b", np.array([2])))
    assert v2.select_outputs(resp, None) == resp.outputs
    assert v2.select_outputs(resp, []) == resp.outputs
    assert [o.name for o in v2.select_outputs(resp, [RequestedOutput("b")])] == ["b"]
    with pytest.raises(InvalidInput, match="Requested output zz"):
        v2.select_outputs(resp, [RequestedOutput("zz")])


def test_binary_outputs_follow_in_output_order() -> None:
    a = np.arange(3, dtype=np.uint16)
    b = np.array([[1.5, 2.5]], dtype=np.float64)
    body, length = v2.encode_response(response_of(("a", a), ("b", b)), binary_default=True)
    header = orjson.loads(body[:length])
    sizes = [o["parameters"]["binary_data_size"] for o in header["outputs"]]
    assert sizes == [6, 16]
    assert body[length:] == a.astype("<u2").tobytes() + b.astype("<f8").tobytes()


def test_output_marked_binary_by_the_model() -> None:
    out = InferOutput("y", [1], "FP32")
    out.set_data_from_numpy(np.array([2.0], np.float32), binary_data=True)
    body, length = v2.encode_response(InferResponse(None, "m", [out]))
    assert length is not None
    header = orjson.loads(body[:length])
    assert header["outputs"][0]["parameters"] == {"binary_data_size": 4}
    assert out.parameters == {"binary_data": True}  # the model's object is left alone


def test_binary_data_flag_never_appears_in_response_parameters() -> None:
    out = InferOutput("y", [1], "FP32")
    out.set_data_from_numpy(np.array([2.0], np.float32), binary_data=True)
    body, length = v2.encode_response(InferResponse(None, "m", [out]), binary_default=True)
    assert orjson.loads(body[:length])["outputs"][0]["parameters"] == {"binary_data_size": 4}


def test_non_utf8_bytes_need_binary_output() -> None:
    resp = response_of(("y", np.array([b"\xff\xfe"], dtype=object)))
    with pytest.raises(InferenceError, match="binary_data"):
        v2.encode_response(resp)
    body, length = v2.encode_response(resp, binary_default=True)
    assert body[length:] == b"\x02\x00\x00\x00\xff\xfe"


def test_unicode_string_outputs() -> None:
    arr = np.array(["setosa", "virginica", "ü"])  # a numpy <U array, as sklearn returns labels
    body, _ = v2.encode_response(response_of(("y", arr)))
    assert orjson.loads(body)["outputs"][0] == {
        "name": "y",
        "shape": [3],
        "datatype": "BYTES",
        "data": ["setosa", "virginica", "ü"],
    }
    body, length = v2.encode_response(response_of(("y", arr)), binary_default=True)
    assert body[length:] == wire(np.array(["setosa", "virginica", "ü"], dtype=object), "BYTES")


@pytest.mark.parametrize("binary", [False, True])
def test_big_endian_and_strided_outputs(binary: bool) -> None:
    big = np.arange(6, dtype=">f4").reshape(2, 3)
    strided = np.arange(12, dtype=np.int32).reshape(3, 4).T  # not C-contiguous
    body, length = v2.encode_response(
        response_of(("a", big), ("b", strided)), binary_default=binary
    )
    req = as_request(body, length)
    np.testing.assert_array_equal(req.inputs[0].as_numpy(), big)
    np.testing.assert_array_equal(req.inputs[1].as_numpy(), strided)
    assert req.inputs[1].as_numpy().shape == (4, 3)


@pytest.mark.parametrize("binary", [False, True])
def test_scalar_output(binary: bool) -> None:
    body, length = v2.encode_response(
        response_of(("s", np.array(7.5, np.float32))), binary_default=binary
    )
    req = as_request(body, length)
    assert req.inputs[0].shape == []
    assert float(req.inputs[0].as_numpy()) == 7.5


def test_empty_output_as_json() -> None:
    body, _ = v2.encode_response(response_of(("e", np.zeros((0, 3), np.float32))))
    assert orjson.loads(body)["outputs"][0]["data"] == []


@pytest.mark.parametrize("datatype", ["FP32", "BOOL", "INT64"])
def test_empty_output_as_binary(datatype: str) -> None:
    arr = np.zeros((0, 3), NUMPY_DTYPES[datatype])
    body, length = v2.encode_response(response_of(("e", arr)), binary_default=True)
    header = orjson.loads(body[:length])
    assert header["outputs"][0]["parameters"] == {"binary_data_size": 0}
    assert len(body) == length


def test_bytes_output_holding_non_bytes_objects_is_not_corrupted() -> None:
    arr = np.array([5, "a"], dtype=object)
    try:
        raw = v2.bytes_to_wire(arr)
    except InferenceError:
        return  # refusing is acceptable; silently writing 5 NUL bytes is not
    assert raw == wire(np.array(["5", "a"], dtype=object), "BYTES")


def test_unencodable_json_output_is_an_inference_error() -> None:
    out = InferOutput("y", [1], "BYTES", [{1, 2}])
    with pytest.raises(InferenceError, match="cannot be encoded"):
        v2.encode_response(InferResponse(None, "m", [out]))


def test_encode_request_decode_response_round_trip() -> None:
    req = InferRequest(
        "m",
        [InferInput("a", [2], "INT8", np.array([-1, 2], np.int8), {"p": 1})],
        request_id="q",
        parameters={"z": True},
        request_outputs=[RequestedOutput("o", {"binary_data": False})],
    )
    back = v2.decode_request(v2.encode_request(req), "m")
    assert back.id == "q" and back.parameters == {"z": True}
    assert back.inputs[0].parameters == {"p": 1}
    assert back.inputs[0].as_numpy().tolist() == [-1, 2]
    assert back.request_outputs[0].name == "o"

    body, _ = v2.encode_response(
        response_of(("y", np.array([[1, 2]], np.uint32)), model_version="4")
    )
    resp = v2.decode_response(body)
    assert (resp.id, resp.model_name, resp.model_version) == ("r1", "m", "4")
    assert resp.outputs[0].as_numpy().dtype == np.uint32
    assert resp.outputs[0].as_numpy().tolist() == [[1, 2]]


def test_binary_request_can_be_forwarded_as_json() -> None:
    # A transformer decodes a binary request, then forwards it with encode_request.
    body, length = binary_request([_binary_x(8)], [np.array([1.0, 2.0], "<f4").tobytes()])
    req = v2.decode_request(body, "m", header_length=length)
    forwarded = v2.decode_request(v2.encode_request(req), "m")
    assert forwarded.inputs[0].as_numpy().tolist() == [1.0, 2.0]


# ---- property: every numeric datatype round-trips through JSON and binary -------------------


def _finite_elements(datatype: str) -> st.SearchStrategy[Any] | None:
    if datatype in FLOAT_TYPES:
        width = {"FP16": 16, "FP32": 32, "FP64": 64}[datatype]
        return st.floats(width=width, allow_nan=False, allow_infinity=False)
    return None


shapes = hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=4)
ROUND_TRIP = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.mark.parametrize("datatype", ["BOOL", *NUMERIC_TYPES])
@ROUND_TRIP
@given(data=st.data())
def test_property_json_round_trip(datatype: str, data: st.DataObject) -> None:
    arr = data.draw(hnp.arrays(NUMPY_DTYPES[datatype], shapes, elements=_finite_elements(datatype)))
    body, length = v2.encode_response(response_of(("t", arr)))
    got = as_request(body, length).inputs[0]
    assert got.datatype == datatype
    assert_same(got.as_numpy(), arr)


@pytest.mark.parametrize("datatype", ["BOOL", *NUMERIC_TYPES])
@ROUND_TRIP
@given(data=st.data())
def test_property_binary_round_trip(datatype: str, data: st.DataObject) -> None:
    # Empty tensors are left out: see test_empty_output_as_binary.
    arr = data.draw(hnp.arrays(NUMPY_DTYPES[datatype], shapes).filter(lambda a: a.size > 0))
    body, length = v2.encode_response(response_of(("t", arr)), binary_default=True)
    got = as_request(body, length).inputs[0]
    assert got.datatype == datatype
    assert got.as_numpy().shape == arr.shape
    # Compare bit patterns so that NaN payloads and -0.0 count too.
    want = np.ascontiguousarray(arr).astype(WIRE_DTYPES[datatype]).tobytes()
    assert got.as_numpy().tobytes() == want


@settings(max_examples=50, deadline=None)
@given(
    st.lists(st.binary(max_size=20) | st.text(max_size=10), min_size=1, max_size=10),
)
def test_property_bytes_binary_round_trip(items: list[bytes | str]) -> None:
    arr = np.empty(len(items), dtype=object)
    arr[:] = items
    body, length = v2.encode_response(response_of(("t", arr)), binary_default=True)
    got = as_request(body, length).inputs[0].as_numpy()
    assert got.tolist() == [x.encode() if isinstance(x, str) else x for x in items]
