"""Serving one model file or folder until stopped: what ``modelport serve`` runs after
reading its flags, and what each of the platform's replicas runs directly
(``control/backends/launch.py``), without the CLI's argument parsing."""

from __future__ import annotations

import functools
import logging
import os
import sys
from pathlib import Path

from modelport.model import Model
from modelport.server.model_server import ModelServer
from modelport.settings import ServerSettings

# Set by the platform for its replicas; ServerSettings reads it (see settings.py).
REPLICA_KEY_ENV = "MODELPORT_REPLICA_KEY"


def serve_path(path: Path, name: str, fmt: str, settings: ServerSettings) -> int:
    """Load the model at ``path`` in format ``fmt`` and serve it as ``name``; the exit code.
    Raises StartupError when it cannot start (port taken, model that does not load)."""
    # The replica key is the settings' now; model code has no use for a copy in its environment.
    os.environ.pop(REPLICA_KEY_ENV, None)
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
        stream=sys.stderr,
    )
    factory = functools.partial(
        _make_model, name, str(path), fmt, settings.predict_proba, settings.nthread
    )
    factory.model_name = name  # type: ignore[attr-defined]  # shown in the banner
    return ModelServer(settings=settings).run([factory])


def _make_model(name: str, path: str, fmt: str, predict_proba: bool, nthread: int) -> Model:
    from modelport.runtimes import create_model

    return create_model(name, path, fmt, predict_proba=predict_proba, nthread=nthread)
