"""LightGBM runtime: a Booster saved as a text model file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightgbm
import numpy as np

from modelport.runtimes.base import ArrayModel, check_features


class LightGBMModel(ArrayModel):
    """Serves a LightGBM Booster saved with ``save_model`` (``model.txt``)."""

    suffixes = (".txt", ".lgb")
    rowwise = True

    def _load(self, path: Path) -> None:
        self._booster = lightgbm.Booster(model_file=str(path))
        self._n_features = self._booster.num_feature()
        self._threads = int(self.options.get("nthread", 1))

    def predict_array(self, array: np.ndarray) -> np.ndarray:
        check_features(self.name, array, self._n_features)
        # A dense array in gives a dense array out (sparse only for sparse contributions).
        return np.asarray(self._booster.predict(array, num_threads=self._threads))

    def get_input_types(self) -> list[dict[str, Any]]:
        return [{"name": "input-0", "datatype": "FP64", "shape": [-1, self._n_features]}]

    @property
    def platform(self) -> str:
        return "lightgbm"
