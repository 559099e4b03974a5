"""scikit-learn runtime: a joblib/pickle file holding an estimator or pipeline."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import sklearn

from modelport.errors import InvalidInput, ModelLoadError
from modelport.runtimes.base import ArrayModel, check_features


class SKLearnModel(ArrayModel):
    """Serves ``model.joblib`` / ``model.pkl``; ``predict_proba=True`` as KServe's PREDICT_PROBA."""

    suffixes = (".joblib", ".pkl", ".pickle")
    rowwise = True

    def _load(self, path: Path) -> None:
        estimator = joblib.load(path)
        if not hasattr(estimator, "predict"):
            raise ModelLoadError(f"{path} holds a {type(estimator).__name__}, not an estimator.")
        self._estimator = estimator
        self._n_features: int | None = getattr(estimator, "n_features_in_", None)
        self._allow_nan = _allows_nan(estimator)
        use_proba = bool(self.options.get("predict_proba")) and hasattr(estimator, "predict_proba")
        self._call: Callable[[np.ndarray], np.ndarray]
        self._call = estimator.predict_proba if use_proba else estimator.predict

    def predict_array(self, array: np.ndarray) -> np.ndarray:
        if array.dtype.kind in "OSU":
            # Pipelines with encoders take strings; hand them over as-is, and a numeric model
            # refusing them is the client's mistake, not the server's.
            try:
                return self._call(array)
            except (ValueError, TypeError) as exc:
                raise InvalidInput(f"Model {self.name} cannot use this input: {exc}") from None
        check_features(self.name, array, self._n_features)
        if not self._allow_nan and array.dtype.kind == "f" and not np.isfinite(array).all():
            raise InvalidInput(f"Model {self.name}: input contains NaN or infinity.")
        # Inputs were checked above, so skip sklearn's per-call re-validation: on small inputs
        # it costs far more than the math (docs/architecture.md, performance).
        with sklearn.config_context(assume_finite=True, skip_parameter_validation=True):
            return self._call(array)

    def get_input_types(self) -> list[dict[str, Any]]:
        if self._n_features is None:
            return []
        return [{"name": "input-0", "datatype": "FP64", "shape": [-1, self._n_features]}]

    @property
    def platform(self) -> str:
        return "sklearn"


def _allows_nan(estimator: Any) -> bool:
    try:
        return bool(estimator.__sklearn_tags__().input_tags.allow_nan)
    except AttributeError:
        return False
