"""KServe V1 (TensorFlow-Serving-style) REST codec: ``{"instances": [...]}`` in,
``{"predictions": [...]}`` out. Spec: KServe docs, "V1 Inference Protocol".
"""

from __future__ import annotations

from typing import Any

import numpy as np

from modelport.errors import InvalidInput
from modelport.protocol.v2 import dumps, loads_object


def decode_request(body: bytes) -> dict[str, Any]:
    """Parse a V1 request; ``instances`` (or TF-serving's ``inputs``) must be a list."""
    doc = loads_object(body)
    if "instances" in doc:
        if not isinstance(doc["instances"], list):
            raise InvalidInput('Expected "instances" to be a list.')
    elif "inputs" not in doc:
        raise InvalidInput('Expected "instances" or "inputs" in the request.')
    return doc


def instances_array(doc: dict[str, Any]) -> np.ndarray:
    """The request's instances as a numeric 2-D-or-more array, or InvalidInput."""
    instances = doc.get("instances", doc.get("inputs"))
    try:
        arr = np.asarray(instances)
    except (ValueError, TypeError):
        raise InvalidInput("Instances must be a regular (non-ragged) array.") from None
    if arr.dtype.kind not in "iufb":
        raise InvalidInput("Instances must hold numbers only.")
    return arr


def encode_response(result: Any) -> bytes:
    """Encode a V1 response body; arrays inside are serialized natively."""
    return dumps(result)
