"""XGBoost runtime: a Booster saved as .json, .ubj or .bst."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import xgboost

from modelport.runtimes.base import ArrayModel, check_features


class XGBoostModel(ArrayModel):
    """Serves an XGBoost Booster; predictions come from ``inplace_predict`` (no DMatrix copy)."""

    suffixes = (".ubj", ".json", ".bst")
    rowwise = True

    def _load(self, path: Path) -> None:
        booster = xgboost.Booster(params={"nthread": int(self.options.get("nthread", 1))})
        booster.load_model(str(path))
        self._booster = booster
        self._n_features = booster.num_features()

    def predict_array(self, array: np.ndarray) -> np.ndarray:
        check_features(self.name, array, self._n_features)
        return self._booster.inplace_predict(array)

    def get_input_types(self) -> list[dict[str, Any]]:
        return [{"name": "input-0", "datatype": "FP32", "shape": [-1, self._n_features]}]

    @property
    def platform(self) -> str:
        return "xgboost"
