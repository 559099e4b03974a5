"""Open Inference Protocol tensor datatypes and their numpy equivalents.

The OIP (KServe V2) spec names twelve fixed-size datatypes plus BYTES; BF16 is listed by the
spec but numpy has no native type for it, so it is rejected with a clear message.
"""

from __future__ import annotations

import numpy as np

from modelport.errors import InvalidInput

# OIP name -> numpy dtype. BYTES maps to object arrays holding bytes/str elements.
NUMPY_DTYPES: dict[str, np.dtype] = {
    "BOOL": np.dtype(np.bool_),
    "UINT8": np.dtype(np.uint8),
    "UINT16": np.dtype(np.uint16),
    "UINT32": np.dtype(np.uint32),
    "UINT64": np.dtype(np.uint64),
    "INT8": np.dtype(np.int8),
    "INT16": np.dtype(np.int16),
    "INT32": np.dtype(np.int32),
    "INT64": np.dtype(np.int64),
    "FP16": np.dtype(np.float16),
    "FP32": np.dtype(np.float32),
    "FP64": np.dtype(np.float64),
    "BYTES": np.dtype(object),
}

# Little-endian wire dtypes for the binary tensor extension and gRPC raw contents.
WIRE_DTYPES: dict[str, np.dtype] = {
    name: dt.newbyteorder("<") for name, dt in NUMPY_DTYPES.items() if name != "BYTES"
}

_BY_NUMPY: dict[np.dtype, str] = {dt: name for name, dt in NUMPY_DTYPES.items()}


def numpy_dtype(datatype: str) -> np.dtype:
    """Return the numpy dtype for an OIP datatype name, or raise InvalidInput."""
    try:
        return NUMPY_DTYPES[datatype]
    except (KeyError, TypeError):
        if datatype == "BF16":
            raise InvalidInput("Datatype BF16 is not supported by this server.") from None
        raise InvalidInput(f"Invalid datatype {datatype!r}.") from None


def from_numpy(dtype: np.dtype) -> str:
    """Return the OIP datatype name for a numpy dtype (strings and bytes map to BYTES)."""
    name = _BY_NUMPY.get(dtype)
    if name is not None:
        return name
    if dtype.kind in "OSU":
        return "BYTES"
    if dtype.kind in "iufb":
        native = dtype.newbyteorder("=")
        if native in _BY_NUMPY:
            return _BY_NUMPY[native]
    raise InvalidInput(f"Numpy dtype {dtype} has no Open Inference Protocol datatype.")
