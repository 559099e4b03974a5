"""Validation and conversion of JSON tensor data into numpy arrays (OIP "Tensor Data").

The OIP spec allows ``data`` to be flat or nested in row-major order; its element count must
equal the product of ``shape``. Values must fit the declared datatype: a string in an FP32
tensor or 300 in a UINT8 tensor is an error, never a silent cast.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from modelport.errors import InvalidInput
from modelport.protocol.datatypes import numpy_dtype

# Which inferred numpy kinds may be stored in each target kind without losing meaning.
_ACCEPTED_KINDS = {"b": "b", "i": "iub", "u": "iub", "f": "iufb"}
MAX_RANK = 32


def check_shape(name: str, shape: Any) -> tuple[int, ...]:
    """Return the shape as a tuple of non-negative ints, or raise InvalidInput."""
    if not isinstance(shape, list | tuple) or len(shape) > MAX_RANK:
        raise InvalidInput(f"Input {name}: shape must be a list of at most {MAX_RANK} integers.")
    for dim in shape:
        if type(dim) is not int or dim < 0:
            raise InvalidInput(
                f"Input {name}: shape {list(shape)} must hold non-negative integers."
            )
    return tuple(shape)


def element_count(shape: tuple[int, ...]) -> int:
    """Number of elements a tensor of this shape holds."""
    return math.prod(shape)


def array_from_json(name: str, datatype: str, shape: Any, data: Any) -> np.ndarray:
    """Build the array for one tensor from JSON-decoded ``data`` and check it against shape."""
    dims = check_shape(name, shape)
    dtype = numpy_dtype(datatype)
    if not isinstance(data, list):
        if isinstance(data, np.ndarray):
            return _fit(name, datatype, dims, data)
        raise InvalidInput(f"Input {name}: data must be a list, got {type(data).__name__}.")
    if datatype == "BYTES":
        flat = _flatten_bytes(name, data)
        arr = np.empty(len(flat), dtype=object)
        arr[:] = flat
        return _fit(name, datatype, dims, arr)
    try:
        arr = np.asarray(data)
    except (ValueError, TypeError, OverflowError):
        raise InvalidInput(
            f"Input {name}: data is not a regular {datatype} array (ragged nesting or bad values)."
        ) from None
    if arr.dtype.kind in "fO" and dtype.kind in "iu":
        # numpy widens integers beyond int64 (large UINT64 values) to float or object;
        # look at the original Python values instead.
        arr = _big_integers(name, datatype, data)
    if arr.dtype.kind not in _ACCEPTED_KINDS[dtype.kind]:
        if arr.size == 0:
            arr = arr.astype(dtype)
        else:
            raise InvalidInput(f"Input {name}: data holds values that are not {datatype}.")
    if dtype.kind in "iu" and arr.size and arr.dtype != dtype:
        info = np.iinfo(dtype)
        if arr.min() < info.min or arr.max() > info.max:
            raise InvalidInput(f"Input {name}: a value is out of range for {datatype}.")
    cast = arr.astype(dtype, copy=False)
    if dtype.kind == "f" and cast is not arr and arr.size and not np.isfinite(cast).all():
        # JSON cannot carry inf/NaN, so a non-finite value here is an overflow of the cast.
        raise InvalidInput(f"Input {name}: a value is out of range for {datatype}.")
    return _fit(name, datatype, dims, cast)


def _big_integers(name: str, datatype: str, data: list[Any]) -> np.ndarray:
    try:
        objects = np.array(data, dtype=object)
    except ValueError:
        raise InvalidInput(f"Input {name}: data is not a regular {datatype} array.") from None
    values = objects.ravel().tolist()
    if not all(type(v) is int for v in values):
        raise InvalidInput(f"Input {name}: data holds values that are not {datatype}.")
    try:
        return np.array(values, dtype=numpy_dtype(datatype)).reshape(objects.shape)
    except OverflowError:
        raise InvalidInput(f"Input {name}: a value is out of range for {datatype}.") from None


def _fit(name: str, datatype: str, dims: tuple[int, ...], arr: np.ndarray) -> np.ndarray:
    expected = element_count(dims)
    if arr.size != expected:
        raise InvalidInput(
            f"Input {name}: shape {list(dims)} expects {expected} elements, data has {arr.size}."
        )
    if arr.shape != dims:
        arr = arr.reshape(dims)
    return arr


def _flatten_bytes(name: str, data: list[Any]) -> list[Any]:
    out: list[Any] = []
    stack = [iter(data)]
    while stack:
        for item in stack[-1]:
            if isinstance(item, list):
                if len(stack) > MAX_RANK:
                    raise InvalidInput(f"Input {name}: data is nested too deeply.")
                stack.append(iter(item))
                break
            if not isinstance(item, str | bytes):
                raise InvalidInput(f"Input {name}: BYTES data must hold strings.")
            out.append(item)
        else:
            stack.pop()
    return out
