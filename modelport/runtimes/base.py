"""Shared request handling for the built-in runtimes: one array in, one array out.

Built-in runtimes only implement ``_load`` and ``predict_array``; this class turns V1
instances or V2 inputs into the array the library wants and wraps the result the way
KServe's servers do (V2 output ``output-0``, V1 ``{"predictions": [...]}``).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any

import numpy as np

from modelport.errors import InvalidInput, ModelLoadError
from modelport.model import Headers, Model
from modelport.protocol import v1
from modelport.protocol.infer import InferOutput, InferRequest, InferResponse

# KServe's built-in servers name their single output this way.
OUTPUT_NAME = "output-0"


class ArrayModel(Model, ABC):
    """A model whose library maps one numeric array to one array of predictions."""

    #: file name suffixes this runtime loads, most preferred first
    suffixes: tuple[str, ...] = ()

    def __init__(self, name: str, model_dir: str | Path, **options: Any) -> None:
        super().__init__(name)
        self.model_dir = Path(model_dir)
        self.options = options

    def load(self) -> bool:
        path = self.model_file()
        try:
            self._load(path)
        except ModelLoadError:
            raise
        except Exception as exc:  # any library error while reading a file means "broken model"
            raise ModelLoadError(f"Cannot load {path}: {type(exc).__name__}: {exc}") from exc
        self.ready = True
        return True

    def model_file(self) -> Path:
        """The file to load: the path itself, or the one file in the directory with our suffix."""
        if self.model_dir.is_file():
            return self.model_dir
        if not self.model_dir.is_dir():
            raise ModelLoadError(f"Model path {self.model_dir} does not exist.")
        for suffix in self.suffixes:
            found = sorted(p for p in self.model_dir.iterdir() if p.name.endswith(suffix))
            if len(found) > 1:
                raise ModelLoadError(
                    f"More than one {suffix} file in {self.model_dir}: "
                    + ", ".join(p.name for p in found)
                )
            if found:
                return found[0]
        raise ModelLoadError(
            f"No model file ({', '.join(self.suffixes)}) found in {self.model_dir}."
        )

    @abstractmethod
    def _load(self, path: Path) -> None:
        """Read the model file with the runtime's library."""

    @abstractmethod
    def predict_array(self, array: np.ndarray) -> np.ndarray:
        """Run the library on one batch of rows."""

    def predict(
        self, payload: Any, headers: Headers | None = None, response_headers: Headers | None = None
    ) -> Any:
        if isinstance(payload, InferRequest):
            result = self.predict_array(request_array(payload))
            return InferResponse(
                payload.id,
                self.name,
                [InferOutput.from_numpy(OUTPUT_NAME, np.asarray(result))],
                model_version=self.version,
            )
        result = self.predict_array(v1.instances_array(payload))
        return {"predictions": result}


def request_array(request: InferRequest) -> np.ndarray:
    """One array from the V2 inputs: the single input, or several 1-column inputs side by side."""
    if len(request.inputs) == 1:
        return request.inputs[0].as_numpy()
    columns = []
    for inp in request.inputs:
        arr = inp.as_numpy()
        if arr.ndim > 2 or (arr.ndim == 2 and arr.shape[1] != 1):
            raise InvalidInput("With several inputs each must be one column (shape [N] or [N, 1]).")
        columns.append(arr.reshape(-1))
    try:
        return np.column_stack(columns)
    except ValueError:
        raise InvalidInput("All inputs must have the same number of rows.") from None


def check_features(name: str, array: np.ndarray, expected: int | None) -> None:
    """Raise InvalidInput unless the array is 2-D with the expected number of columns."""
    if array.ndim != 2:
        raise InvalidInput(
            f"Model {name} expects a 2-D input [rows, features], got shape {list(array.shape)}."
        )
    if expected is not None and array.shape[1] != expected:
        raise InvalidInput(
            f"Model {name} expects {expected} features per row, got {array.shape[1]}."
        )
