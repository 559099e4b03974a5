"""Serving one model file or folder until stopped: what ``modelport serve`` runs after
reading its flags, and what each of the platform's replicas runs directly
(``control/backends/launch.py``), without the CLI's argument parsing."""

from __future__ import annotations

import logging
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from modelport.model import Model
from modelport.server.model_server import ModelServer
from modelport.settings import REPLICA_KEY_ENV, ServerSettings


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
    factory = ModelFile(name, str(path), fmt, settings.predict_proba, settings.nthread)
    return ModelServer(settings=settings).run([factory])


@dataclass(frozen=True)
class ModelFile:
    """Makes the model at ``path`` when called (in the process that serves it); its
    ``model_name`` is what the start-up banner shows before it is loaded."""

    model_name: str
    path: str
    fmt: str
    predict_proba: bool
    nthread: int

    def __call__(self) -> Model:
        from modelport.runtimes import create_model

        return create_model(
            self.model_name,
            self.path,
            self.fmt,
            predict_proba=self.predict_proba,
            nthread=self.nthread,
        )
