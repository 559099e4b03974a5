"""JSON tensor data → numpy (OIP "Tensor Data"): datatypes, shapes, ranges, hostile input."""

from __future__ import annotations

import time
import warnings

import numpy as np
import pytest

from modelport.errors import InvalidInput
from modelport.protocol.datatypes import NUMPY_DTYPES, from_numpy, numpy_dtype
from modelport.protocol.tensor import MAX_RANK, array_from_json, check_shape

INT_TYPES = ["UINT8", "UINT16", "UINT32", "UINT64", "INT8", "INT16", "INT32", "INT64"]
FLOAT_TYPES = ["FP16", "FP32", "FP64"]
NUMERIC_TYPES = INT_TYPES + FLOAT_TYPES


# ---- every datatype, flat and nested ---------------------------------------------------------


@pytest.mark.parametrize("datatype", NUMERIC_TYPES)
@pytest.mark.parametrize("nested", [False, True], ids=["flat", "nested"])
def test_numeric_datatypes_flat_and_nested(datatype: str, nested: bool) -> None:
    flat = [0, 1, 2, 3, 4, 5]
    data = [flat[0:3], flat[3:6]] if nested else flat
    arr = array_from_json("x", datatype, [2, 3], data)
    assert arr.dtype == NUMPY_DTYPES[datatype]
    assert arr.shape == (2, 3)
    assert arr.tolist() == [[0, 1, 2], [3, 4, 5]]


@pytest.mark.parametrize("datatype", FLOAT_TYPES)
def test_float_datatypes_take_fractions_and_negative_values(datatype: str) -> None:
    arr = array_from_json("x", datatype, [3], [-1.5, 0.25, 2])
    assert arr.dtype == NUMPY_DTYPES[datatype]
    assert arr.tolist() == [-1.5, 0.25, 2.0]


@pytest.mark.parametrize("nested", [False, True], ids=["flat", "nested"])
def test_bool_datatype(nested: bool) -> None:
    data = [[True, False], [False, True]] if nested else [True, False, False, True]
    arr = array_from_json("b", "BOOL", [2, 2], data)
    assert arr.dtype == np.bool_
    assert arr.tolist() == [[True, False], [False, True]]


@pytest.mark.parametrize("nested", [False, True], ids=["flat", "nested"])
def test_bytes_datatype(nested: bool) -> None:
    data = [["a", "bé"], ["", "d"]] if nested else ["a", "bé", "", "d"]
    arr = array_from_json("s", "BYTES", [2, 2], data)
    assert arr.dtype == object
    assert arr.shape == (2, 2)
    assert arr.tolist() == [["a", "bé"], ["", "d"]]


def test_bytes_rejects_numbers() -> None:
    with pytest.raises(InvalidInput, match="BYTES data must hold strings"):
        array_from_json("s", "BYTES", [2], ["a", 1])


def test_bytes_rejects_null() -> None:
    with pytest.raises(InvalidInput):
        array_from_json("s", "BYTES", [1], [None])


def test_scalar_shape_takes_one_element() -> None:
    arr = array_from_json("x", "FP32", [], [5])
    assert arr.shape == ()
    assert float(arr) == 5.0


@pytest.mark.parametrize("datatype", [*NUMERIC_TYPES, "BOOL", "BYTES"])
def test_empty_tensor(datatype: str) -> None:
    arr = array_from_json("x", datatype, [0, 3], [])
    assert arr.shape == (0, 3)
    assert arr.dtype == NUMPY_DTYPES[datatype]


def test_nested_data_is_reshaped_to_the_declared_shape() -> None:
    # Row-major order is what matters; the nesting need not mirror the shape.
    arr = array_from_json("x", "INT32", [3, 2], [[1, 2, 3], [4, 5, 6]])
    assert arr.tolist() == [[1, 2], [3, 4], [5, 6]]


# ---- shape ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("shape", "data"),
    [
        ([3], [1, 2]),
        ([2], [1, 2, 3]),
        ([2, 2], [1, 2, 3]),
        ([2, 3], [[1, 2], [3, 4]]),
        ([], [1, 2]),
        ([0], [1]),
    ],
)
def test_data_length_must_equal_shape_product(shape: list[int], data: list[int]) -> None:
    with pytest.raises(InvalidInput, match="expects"):
        array_from_json("x", "INT32", shape, data)


def test_bytes_length_must_equal_shape_product() -> None:
    with pytest.raises(InvalidInput, match="expects 3 elements, data has 2"):
        array_from_json("s", "BYTES", [3], ["a", "b"])


@pytest.mark.parametrize(
    "shape",
    [[-1], [2, -3], [1.0], ["2"], [True], [None], None, "3", 3, {"0": 1}, [[2]]],
    ids=repr,
)
def test_bad_shapes_are_rejected(shape: object) -> None:
    with pytest.raises(InvalidInput, match="shape"):
        array_from_json("x", "FP32", shape, [1.0])


def test_check_shape_accepts_tuples_and_lists() -> None:
    assert check_shape("x", [1, 2]) == (1, 2)
    assert check_shape("x", (0,)) == (0,)
    assert check_shape("x", []) == ()


def test_rank_limit() -> None:
    assert check_shape("x", [1] * MAX_RANK) == (1,) * MAX_RANK
    with pytest.raises(InvalidInput):
        check_shape("x", [1] * (MAX_RANK + 1))


def test_error_names_the_input() -> None:
    with pytest.raises(InvalidInput, match="my_input"):
        array_from_json("my_input", "FP32", [2], [1.0])


# ---- values that do not fit the datatype ----------------------------------------------------


@pytest.mark.parametrize(
    ("datatype", "data"),
    [
        ("FP32", ["1.0"]),
        ("FP32", ["a", "b"]),
        ("FP64", [1.0, "2"]),
        ("FP32", [None]),
        ("FP32", [{"a": 1}]),
        ("UINT8", [300]),
        ("UINT8", [-1]),
        ("UINT32", [-1]),
        ("UINT64", [-1]),
        ("INT8", [128]),
        ("INT8", [-129]),
        ("INT16", [40000]),
        ("INT32", [1.5]),
        ("INT32", [1.0]),
        ("INT64", [0.5]),
        ("UINT16", [2.0]),
        ("BOOL", [0]),
        ("BOOL", [1]),
        ("BOOL", ["true"]),
        ("INT32", ["1"]),
    ],
    ids=repr,
)
def test_values_that_do_not_fit_the_datatype(datatype: str, data: list[object]) -> None:
    with pytest.raises(InvalidInput, match="x"):
        array_from_json("x", datatype, [len(data)], data)


@pytest.mark.parametrize("datatype", INT_TYPES)
def test_integer_range_boundaries(datatype: str) -> None:
    info = np.iinfo(NUMPY_DTYPES[datatype])
    lo, hi = int(info.min), int(info.max)
    assert array_from_json("x", datatype, [1], [lo]).tolist() == [lo]
    assert array_from_json("x", datatype, [1], [hi]).tolist() == [hi]
    with pytest.raises(InvalidInput):
        array_from_json("x", datatype, [1], [hi + 1])
    with pytest.raises(InvalidInput):
        array_from_json("x", datatype, [1], [lo - 1])


def test_out_of_range_is_detected_among_valid_values() -> None:
    with pytest.raises(InvalidInput, match="out of range for UINT8"):
        array_from_json("x", "UINT8", [2, 2], [[1, 2], [3, 256]])


def test_uint64_values_above_int64_max_mixed_with_small_ones() -> None:
    # numpy alone would infer float64 here and lose precision
    big = 2**64 - 1
    arr = array_from_json("x", "UINT64", [2, 2], [[big, 1], [2**63 + 1, 0]])
    assert arr.dtype == np.uint64
    assert arr.tolist() == [[big, 1], [2**63 + 1, 0]]


@pytest.mark.parametrize("data", [[2**64, 1], [2**63, -1], [2**63, 1.5], [2**63, "1"]], ids=repr)
def test_uint64_big_values_mixed_with_invalid_ones(data: list[object]) -> None:
    with pytest.raises(InvalidInput):
        array_from_json("x", "UINT64", [2], data)


def test_int64_rejects_values_above_its_range_mixed_with_negatives() -> None:
    with pytest.raises(InvalidInput):
        array_from_json("x", "INT64", [2], [2**63, -1])


@pytest.mark.parametrize(("datatype", "value"), [("FP16", 1e6), ("FP32", 1e300)])
def test_float_overflow_is_rejected_not_cast_to_inf(datatype: str, value: float) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        with pytest.raises(InvalidInput):
            array_from_json("x", datatype, [1], [value])


# ---- ragged, non-list and hostile data -------------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [[[1, 2], [3]], [[1, 2], 3, 4], [[[1], [2]], [3, 4]]],
    ids=repr,
)
def test_ragged_nesting_is_rejected(data: list[object]) -> None:
    with pytest.raises(InvalidInput, match="ragged"):
        array_from_json("x", "FP32", [4], data)


@pytest.mark.parametrize("data", [5, 1.5, "abc", None, {"a": [1]}, True, b"\x00"], ids=repr)
@pytest.mark.parametrize("datatype", ["FP32", "BYTES"])
def test_non_list_data_is_rejected(data: object, datatype: str) -> None:
    with pytest.raises(InvalidInput, match="data must be a list"):
        array_from_json("x", datatype, [1], data)


def _nest(value: object, depth: int) -> object:
    for _ in range(depth):
        value = [value]
    return value


def test_numeric_nesting_deeper_than_the_shape_keeps_row_major_order() -> None:
    assert array_from_json("x", "FP32", [1], _nest(1.0, MAX_RANK + 5)).tolist() == [1.0]


@pytest.mark.parametrize("depth", [100, 5_000, 200_000])
def test_deeply_nested_numeric_data(depth: int) -> None:
    with pytest.raises(InvalidInput):
        array_from_json("x", "FP32", [1], _nest(1.0, depth))


@pytest.mark.parametrize("depth", [MAX_RANK + 5, 200_000])
def test_deeply_nested_bytes_data(depth: int) -> None:
    with pytest.raises(InvalidInput, match="nested too deeply"):
        array_from_json("x", "BYTES", [1], _nest("a", depth))


@pytest.mark.parametrize("datatype", ["FP32", "BYTES", "INT8"])
def test_huge_declared_shape_with_tiny_data_fails_fast(datatype: str) -> None:
    value = "a" if datatype == "BYTES" else 1
    start = time.perf_counter()
    with pytest.raises(InvalidInput, match="expects"):
        array_from_json("x", datatype, [2**40, 2**40, 2**40], [value])
    assert time.perf_counter() - start < 1.0


# ---- datatype names ------------------------------------------------------------------------


def test_bf16_is_rejected_with_a_clear_message() -> None:
    with pytest.raises(InvalidInput, match="BF16 is not supported"):
        array_from_json("x", "BF16", [1], [1.0])


@pytest.mark.parametrize("datatype", ["FLOAT32", "fp32", "", "STRING", "INT128"])
def test_unknown_datatype(datatype: str) -> None:
    with pytest.raises(InvalidInput, match="Invalid datatype"):
        array_from_json("x", datatype, [1], [1])


@pytest.mark.parametrize("name", sorted(NUMPY_DTYPES))
def test_datatype_names_round_trip_through_numpy(name: str) -> None:
    assert from_numpy(numpy_dtype(name)) == name


@pytest.mark.parametrize(
    ("dtype", "name"),
    [(np.dtype(">f4"), "FP32"), (np.dtype(">i8"), "INT64"), (np.dtype("<U3"), "BYTES")],
)
def test_from_numpy_maps_byte_order_and_strings(dtype: np.dtype, name: str) -> None:
    assert from_numpy(dtype) == name


@pytest.mark.parametrize("dtype", [np.dtype(np.complex64), np.dtype("datetime64[s]")])
def test_from_numpy_rejects_types_without_an_oip_name(dtype: np.dtype) -> None:
    with pytest.raises(InvalidInput):
        from_numpy(dtype)
