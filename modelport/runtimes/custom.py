"""Custom Python models: a ``.py`` file defining one :class:`modelport.Model` subclass."""

from __future__ import annotations

import importlib.util
import inspect
import sys
from pathlib import Path
from typing import Any

from modelport.errors import ModelLoadError
from modelport.model import Model
from modelport.protocol.replica_key import REPLICA_KEY_HEADER
from modelport.settings import predictor_link


def load_custom_model(name: str, path: str | Path, **options: Any) -> Model:
    """Import the file, instantiate its Model subclass with ``name`` and load it."""
    file = _python_file(Path(path))
    module_name = f"modelport_custom_{file.stem}"
    spec = importlib.util.spec_from_file_location(module_name, file)
    if spec is None or spec.loader is None:
        raise ModelLoadError(f"Cannot import {file}.")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    # Let the model file import helper modules that sit beside it, as `python model.py` would.
    sys.path.insert(0, str(file.parent))
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        raise ModelLoadError(f"Importing {file} failed: {type(exc).__name__}: {exc}") from exc
    finally:
        sys.path.remove(str(file.parent))
    classes = [
        obj
        for obj in vars(module).values()
        if inspect.isclass(obj) and issubclass(obj, Model) and obj.__module__ == module_name
    ]
    if len(classes) != 1:
        found = ", ".join(c.__name__ for c in classes) or "none"
        raise ModelLoadError(f"{file} must define exactly one Model subclass (found: {found}).")
    try:
        model = classes[0](name)
        _connect_predictor(model)
        if not model.ready:
            model.load()
    except Exception as exc:
        raise ModelLoadError(
            f"{classes[0].__name__} failed to load: {type(exc).__name__}: {exc}"
        ) from exc
    return model


def _connect_predictor(model: Model) -> None:
    """Point a transformer at its predictor when the platform runs it.

    On KServe the controller passes ``--predictor_host`` to the transformer's container;
    modelport's controller sets environment variables instead (read by
    :func:`modelport.settings.predictor_link`), so the same class works unchanged.
    """
    link = predictor_link()
    if link.host and not model.predictor_host:
        model.predictor_host = link.host
        if link.protocol is not None:
            model.protocol = link.protocol
        if link.key:
            model.predictor_headers[REPLICA_KEY_HEADER.decode()] = link.key


def _python_file(path: Path) -> Path:
    if path.is_file():
        return path
    if path.is_dir():
        files = sorted(p for p in path.glob("*.py") if not p.name.startswith("_"))
        if len(files) == 1:
            return files[0]
        if (path / "model.py").is_file():
            return path / "model.py"
        raise ModelLoadError(f"{path} must hold one .py file or a model.py.")
    raise ModelLoadError(f"Model path {path} does not exist.")
