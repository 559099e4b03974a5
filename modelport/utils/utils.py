"""KServe's ``kserve.utils.utils`` module path: the helpers its sample models import.

Only the model-facing helpers are here, with KServe's behaviour
(python/kserve/kserve/utils/utils.py): :func:`generate_uuid`, and :func:`get_predict_input` /
:func:`get_predict_response`, which let one ``predict`` serve V1 (dict) and V2
(:class:`~modelport.protocol.infer.InferRequest`) requests alike. pandas is needed only for
the DataFrame cases (records in, ``content_type: pd``, a DataFrame out), as in KServe; it is
not a modelport dependency, so it is imported only then.
"""

from __future__ import annotations

import sys
import uuid
from typing import Any

import numpy as np

from modelport.errors import InferenceError, InvalidInput
from modelport.protocol.infer import InferOutput, InferRequest, InferResponse

__all__ = ["generate_uuid", "get_predict_input", "get_predict_response"]


def generate_uuid() -> str:
    """A random UUID4 as a string (KServe's response ids)."""
    return str(uuid.uuid4())


def get_predict_input(
    payload: dict[str, Any] | InferRequest, columns: list[str] | None = None
) -> Any:
    """The model input in a request: a numpy array, a list of strings, or a DataFrame.

    V1: ``inputs`` or ``instances``; rows that are dicts (records) become a DataFrame with
    ``columns``, a list of strings stays a list. V2: the first input's array, its strings when
    it is BYTES of text, or every input as a DataFrame column when the request's
    ``content_type`` parameter is ``pd``.
    """
    if isinstance(payload, dict):
        instances = payload["inputs"] if "inputs" in payload else payload["instances"]
        if len(instances) == 0:
            return np.array(instances)
        first = instances[0]
        if isinstance(first, dict) or (
            isinstance(first, list) and len(first) != 0 and isinstance(first[0], dict)
        ):
            pd = _pandas("records input")
            return pd.concat([pd.DataFrame(row, columns=columns) for row in instances], axis=0)
        if isinstance(first, str):
            return instances
        return np.array(instances)
    if isinstance(payload, InferRequest):
        if _content_type(payload) == "pd":
            return _as_dataframe(payload)
        first_input = payload.inputs[0]
        data = first_input.data
        if first_input.datatype == "BYTES" and len(data) > 0 and isinstance(data[0], str):
            return data
        return first_input.as_numpy()
    raise InvalidInput(f"unsupported payload type {type(payload)}")


def get_predict_response(
    payload: dict[str, Any] | InferRequest, result: Any, model_name: str
) -> dict[str, Any] | InferResponse:
    """Wrap ``result`` in the response the request's protocol expects.

    V1: ``{"predictions": ...}`` (arrays as lists, a DataFrame as records). V2: an
    InferResponse with one ``output-0`` tensor, or one output per DataFrame column, carrying
    the request's id (a new UUID when it has none). Binary outputs, when asked for, are the
    server's to encode from the request.
    """
    if isinstance(payload, dict):
        if _is_dataframe(result):
            return {"predictions": [row.to_dict() for _, row in result.iterrows()]}
        if isinstance(result, np.ndarray):
            return {"predictions": result.tolist()}
        return {"predictions": result}
    if isinstance(payload, InferRequest):
        if _is_dataframe(result):
            outputs = [
                InferOutput.from_numpy(str(col), result[col].to_numpy()) for col in result.columns
            ]
        elif isinstance(result, list) and len(result) > 0 and isinstance(result[0], str):
            strings = np.empty(len(result), dtype=object)
            strings[:] = result
            outputs = [InferOutput("output-0", [len(result)], "BYTES", strings)]
        else:
            outputs = [InferOutput.from_numpy("output-0", np.asarray(result))]
        return InferResponse(payload.id or generate_uuid(), model_name, outputs)
    raise InvalidInput(f"unsupported payload type {type(payload)}")


def _content_type(request: InferRequest) -> str:
    value = (request.parameters or {}).get("content_type", "")
    # KServe's gRPC requests carry an InferParameter message; modelport decodes it to a str.
    return str(getattr(value, "string_param", value) or "")


def _as_dataframe(request: InferRequest) -> Any:
    # KServe's InferRequest.as_dataframe: one column per input, text for BYTES.
    pd = _pandas('content_type "pd"')
    frames = []
    for tensor in request.inputs:
        data = tensor.data
        if tensor.datatype == "BYTES":
            data = [v.decode() if isinstance(v, bytes) else v for v in data]
        frames.append(pd.DataFrame(data, columns=[tensor.name]))
    return pd.concat(frames, axis=1)


def _is_dataframe(value: Any) -> bool:
    # A DataFrame can exist only if its model imported pandas; never import it for the check.
    pd = sys.modules.get("pandas")
    return pd is not None and isinstance(value, pd.DataFrame)


def _pandas(why: str) -> Any:
    try:
        import pandas
    except ImportError:
        # The model's environment lacks it: the server's fault, not the request's.
        raise InferenceError(f"{why} needs pandas, which is not installed.") from None
    return pandas
