"""Process settings: the one place that names modelport's environment variables and reads them.

Each process reads what it needs once, at startup, and passes the values on:

- a model server (``modelport serve``, each replica of ``modelport up``):
  :class:`ServerSettings` (``MODELPORT_*``, e.g. ``MODELPORT_REPLICA_KEY``, and KServe's
  ``PREDICT_PROBA``), in :mod:`modelport.settings.server`;
- a custom model run as a transformer by the platform: :func:`predictor_link`
  (``MODELPORT_PREDICTOR_HOST`` / ``_PROTOCOL`` / ``_KEY``);
- ``modelport up``: :func:`first_admin` (``MODELPORT_ADMIN_EMAIL`` / ``_PASSWORD``);
- the CLI: ``--url`` and ``--namespace`` fall back to :data:`URL_ENV` and
  :data:`NAMESPACE_ENV` (typer reads them, under these names), :func:`api_token`
  (``MODELPORT_TOKEN``) and :func:`config_dir` (``MODELPORT_CONFIG_DIR``, ``XDG_CONFIG_HOME``).

Secrets (the predictor key, the admin password) are taken out of the environment as they
are read, so that model code and processes started later never see them.

Outside this package the environment is only passed on or written: the control plane gives
replicas a filtered copy and sets their variables under these names, and a model server drops
its replica key once ServerSettings holds it. Variables whose names other software defines
are read where its convention applies: Dex's ``idEnv``/``secretEnv`` (identity/dex_config.py),
KServe's storage credentials (control/storage), ``PROMETHEUS_MULTIPROC_DIR``
(server/metrics.py, for prometheus_client).

This module imports nothing heavy: every CLI command imports it. :class:`ServerSettings`
(pydantic) is imported on first use.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from modelport.settings.server import ServerSettings

__all__ = [
    "ADMIN_EMAIL_ENV",
    "ADMIN_PASSWORD_ENV",
    "AUTO_BATCH_SIZE",
    "CONFIG_DIR_ENV",
    "NAMESPACE_ENV",
    "PREDICTOR_HOST_ENV",
    "PREDICTOR_KEY_ENV",
    "PREDICTOR_PROTOCOL_ENV",
    "REPLICA_KEY_ENV",
    "TOKEN_ENV",
    "URL_ENV",
    "FirstAdmin",
    "PredictorLink",
    "SecretTaker",
    "ServerSettings",
    "api_token",
    "config_dir",
    "explicit_config_dir",
    "first_admin",
    "predictor_link",
]

# Without a setting, runtimes whose predictions are row by row (scikit-learn, XGBoost,
# LightGBM) merge requests that are already queued: no added latency, identical results.
AUTO_BATCH_SIZE = 32

URL_ENV = "MODELPORT_URL"
NAMESPACE_ENV = "MODELPORT_NAMESPACE"
TOKEN_ENV = "MODELPORT_TOKEN"
CONFIG_DIR_ENV = "MODELPORT_CONFIG_DIR"
# The platform's shared database (`modelport up --database-url`, the admin commands).
DATABASE_URL_ENV = "MODELPORT_DATABASE_URL"
ADMIN_EMAIL_ENV = "MODELPORT_ADMIN_EMAIL"
ADMIN_PASSWORD_ENV = "MODELPORT_ADMIN_PASSWORD"
PREDICTOR_HOST_ENV = "MODELPORT_PREDICTOR_HOST"
PREDICTOR_PROTOCOL_ENV = "MODELPORT_PREDICTOR_PROTOCOL"
PREDICTOR_KEY_ENV = "MODELPORT_PREDICTOR_KEY"
# ServerSettings.replica_key, under its env_prefix; named here for the code that sets it.
REPLICA_KEY_ENV = "MODELPORT_REPLICA_KEY"

# How a secret leaves the environment: popped by default; the platform passes a taker that
# also blanks it in /proc/PID/environ (control/backends/isolation.py).
SecretTaker = Callable[[str], str | None]


def _pop(name: str) -> str | None:
    return os.environ.pop(name, None)


@dataclass(frozen=True)
class PredictorLink:
    """Where a transformer's predictor answers, as the platform's controller set it."""

    host: str | None
    protocol: str | None
    # The predictor's port answers nothing without it (modelport/protocol/replica_key.py).
    key: str | None = field(repr=False)


def predictor_link(take: SecretTaker = _pop) -> PredictorLink:
    """The predictor variables; the key is taken out of the environment, out of model code's
    reach."""
    return PredictorLink(
        host=os.environ.get(PREDICTOR_HOST_ENV),
        protocol=os.environ.get(PREDICTOR_PROTOCOL_ENV),
        key=take(PREDICTOR_KEY_ENV),
    )


@dataclass(frozen=True)
class FirstAdmin:
    """The admin ``modelport up`` creates on first start; None where the variable is unset."""

    email: str | None
    password: str | None = field(repr=False)


def first_admin(take: SecretTaker = _pop) -> FirstAdmin:
    """The first admin's variables; the password is taken out of the environment."""
    return FirstAdmin(email=os.environ.get(ADMIN_EMAIL_ENV), password=take(ADMIN_PASSWORD_ENV))


def api_token() -> str | None:
    """An API token for the CLI to send instead of the saved login's (``MODELPORT_TOKEN``)."""
    return os.environ.get(TOKEN_ENV) or None


def explicit_config_dir() -> Path | None:
    """The config directory ``MODELPORT_CONFIG_DIR`` names, if it names one."""
    explicit = os.environ.get(CONFIG_DIR_ENV)
    return Path(explicit) if explicit else None


def config_dir() -> Path:
    """``$MODELPORT_CONFIG_DIR``, else ``$XDG_CONFIG_HOME/modelport`` or ``~/.config/modelport``."""
    explicit = explicit_config_dir()
    if explicit is not None:
        return explicit
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "modelport"


def __getattr__(name: str) -> Any:
    # ServerSettings needs pydantic (~150 ms to import); only model servers pay for it.
    if name == "ServerSettings":
        from modelport.settings.server import ServerSettings

        return ServerSettings
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
