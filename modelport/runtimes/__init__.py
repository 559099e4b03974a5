"""Built-in runtimes, one module per framework, chosen from the table below."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from modelport.errors import ModelLoadError, UnsupportedModelFormat
from modelport.model import Model

# format -> (module, class, pip extra that installs its library)
RUNTIMES: dict[str, tuple[str, str, str]] = {
    "sklearn": ("modelport.runtimes.sklearn", "SKLearnModel", ""),
    "xgboost": ("modelport.runtimes.xgboost", "XGBoostModel", "xgboost"),
    "lightgbm": ("modelport.runtimes.lightgbm", "LightGBMModel", "lightgbm"),
    "onnx": ("modelport.runtimes.onnx", "ONNXModel", "onnx"),
    "pytorch": ("modelport.runtimes.torch", "TorchScriptModel", "torch"),
    # A factory: the class depends on --task (runtimes/huggingface.py).
    "huggingface": ("modelport.runtimes.huggingface", "huggingface_model", "huggingface"),
}
FORMATS = (*RUNTIMES, "custom")

# file suffix -> format, for detection when --format is not given
SUFFIX_FORMATS: dict[str, str] = {
    ".joblib": "sklearn",
    ".pkl": "sklearn",
    ".pickle": "sklearn",
    ".bst": "xgboost",
    ".ubj": "xgboost",
    ".json": "xgboost",
    ".txt": "lightgbm",
    ".onnx": "onnx",
    ".pt": "pytorch",
    ".pth": "pytorch",
    ".py": "custom",
}


# Files that sit beside models but are never the model itself.
NOT_MODEL_FILES = frozenset(
    {
        "requirements.txt",
        "README.txt",
        "LICENSE.txt",
        "model-settings.json",
        "settings.json",
        "config.json",
        "__init__.py",
        "conda.yaml",
    }
)


def detect_format(path: str | Path) -> str:
    """Guess the model format from the file, or the files in the directory."""
    p = Path(path)
    if p.is_file():
        candidates = [p]
    elif p.is_dir():
        candidates = [
            c
            for c in p.iterdir()
            if c.is_file() and not c.name.startswith(".") and c.name not in NOT_MODEL_FILES
        ]
    else:
        raise ModelLoadError(f"Model path {p} does not exist.")
    found = {SUFFIX_FORMATS[c.suffix] for c in candidates if c.suffix in SUFFIX_FORMATS}
    # settings files (model-settings.json etc.) sit beside real models: prefer anything else
    if (
        len(found) > 1
        and "xgboost" in found
        and not any(c.suffix in (".ubj", ".bst") for c in candidates)
    ):
        found.discard("xgboost")
    if len(found) == 1:
        return found.pop()
    if not found:
        raise UnsupportedModelFormat(
            f"Cannot tell the model format of {p}: no file ends in "
            f"{', '.join(sorted(SUFFIX_FORMATS))}. Pass --format."
        )
    raise UnsupportedModelFormat(
        f"{p} holds files of several formats ({', '.join(sorted(found))}). Pass --format."
    )


def create_model(
    name: str, path: str | Path, model_format: str | None = None, **options: Any
) -> Model:
    """Instantiate (without loading) the model for ``path``; custom models load on import."""
    fmt = model_format or detect_format(path)
    if fmt == "custom":
        from modelport.runtimes.custom import load_custom_model

        return load_custom_model(name, path, **options)
    try:
        module_name, class_name, extra = RUNTIMES[fmt]
    except KeyError:
        raise UnsupportedModelFormat(
            f"Unknown model format {fmt!r}; choose one of {', '.join(FORMATS)}."
        ) from None
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        hint = f' Install it with: pip install "modelport[{extra}]"' if extra else ""
        raise UnsupportedModelFormat(
            f"The {fmt} runtime needs {exc.name}, which is not installed.{hint}"
        ) from None
    model: Model = getattr(module, class_name)(name, path, **options)
    return model
