"""PyTorch runtime: a TorchScript module saved with ``torch.jit.save`` (.pt / .pth)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from modelport.runtimes.base import ArrayModel


class TorchScriptModel(ArrayModel):
    """Serves a TorchScript module on the CPU; one tensor in, one tensor out."""

    suffixes = (".pt", ".pth")

    def _load(self, path: Path) -> None:
        torch.set_num_threads(int(self.options.get("nthread", 1)))
        self._module = torch.jit.load(str(path), map_location="cpu")
        self._module.eval()

    def predict_array(self, array: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            # torch.from_numpy needs a writable buffer; zero-copy request views are read-only.
            if not array.flags.writeable:
                array = array.copy()
            out = self._module(torch.from_numpy(np.ascontiguousarray(array)))
        if isinstance(out, tuple | list):
            out = out[0]
        return out.detach().numpy()

    @property
    def platform(self) -> str:
        return "pytorch_torchscript"
