"""PyTorch runtime: a TorchScript module saved with ``torch.jit.save`` (.pt / .pth)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from modelport.errors import InvalidInput
from modelport.runtimes.base import ArrayModel

_NUMPY_FLOATS = {
    torch.float16: np.float16,
    torch.float32: np.float32,
    torch.float64: np.float64,
}


class TorchScriptModel(ArrayModel):
    """Serves a TorchScript module on the CPU; one tensor in, one tensor out."""

    suffixes = (".pt", ".pth")

    def _load(self, path: Path) -> None:
        torch.set_num_threads(int(self.options.get("nthread", 1)))
        self._module = torch.jit.load(str(path), map_location="cpu")
        self._module.eval()
        # JSON and V1 inputs decode as float64; feed floats in the dtype the weights use.
        first = next(iter(self._module.parameters()), None)
        self._float_dtype = _NUMPY_FLOATS.get(first.dtype) if first is not None else None

    def predict_array(self, array: np.ndarray) -> np.ndarray:
        if self._float_dtype is not None and array.dtype.kind == "f":
            array = array.astype(self._float_dtype, copy=False)
        if not array.flags.writeable:
            # torch.from_numpy needs a writable buffer; zero-copy request views are read-only.
            array = array.copy()
        with torch.inference_mode():
            try:
                result = self._module(torch.from_numpy(np.ascontiguousarray(array)))
            except RuntimeError as exc:
                # TorchScript reports shape and dtype mismatches of the input this way.
                raise InvalidInput(f"Model {self.name}: {str(exc).splitlines()[0]}") from None
        out: torch.Tensor = result[0] if isinstance(result, tuple | list) else result
        return out.detach().numpy()

    @property
    def platform(self) -> str:
        return "pytorch_torchscript"
