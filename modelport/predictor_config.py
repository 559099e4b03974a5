"""How a transformer reaches its predictor: KServe's ``kserve.predictor_config`` and the
process-wide default that ``kserve.context`` holds.

KServe's ``ModelServer`` builds a :class:`PredictorConfig` from the ``--predictor_host``,
``--predictor_protocol``, ... flags and stores it for the process; ``Model.predictor_config``
reads it back (kserve/model_server.py, kserve/context.py). A model given its own
``predictor_host`` (KServe's older constructor, or the platform's replica set-up) uses that
instead, see :attr:`modelport.model.Model.predictor_config`.
"""

from __future__ import annotations

from enum import Enum


class PredictorProtocol(Enum):
    """Wire protocol used to reach a remote predictor from a transformer (KServe's values)."""

    REST_V1 = "v1"
    REST_V2 = "v2"
    GRPC_V2 = "grpc-v2"


class PredictorConfig:
    """Where and how to call the predictor; attribute names are KServe's, aliases included."""

    def __init__(
        self,
        predictor_host: str | None,
        predictor_protocol: str = PredictorProtocol.REST_V1.value,
        predictor_use_ssl: bool = False,
        predictor_request_timeout_seconds: float = 600,
        predictor_request_retries: int = 0,
        predictor_health_check: bool = False,
    ) -> None:
        self.predictor_host = predictor_host
        self.predictor_protocol = predictor_protocol
        self.predictor_use_ssl = predictor_use_ssl
        self.predictor_request_timeout_seconds = predictor_request_timeout_seconds
        self.predictor_request_retries = predictor_request_retries
        self.predictor_health_check = predictor_health_check

    @property
    def predictor_base_url(self) -> str:
        """``http(s)://HOST``; a host already written as a URL is kept as it is."""
        host = self.predictor_host or ""
        if host.startswith(("http://", "https://")):
            return host
        return f"{'https' if self.predictor_use_ssl else 'http'}://{host}"

    # KServe keeps these short names for code written before PredictorConfig existed.
    @property
    def protocol(self) -> str:
        """Alias of ``predictor_protocol``."""
        return self.predictor_protocol

    @property
    def timeout(self) -> float:
        """Alias of ``predictor_request_timeout_seconds``."""
        return self.predictor_request_timeout_seconds

    @property
    def retries(self) -> int:
        """Alias of ``predictor_request_retries``."""
        return self.predictor_request_retries

    @property
    def use_ssl(self) -> bool:
        """Alias of ``predictor_use_ssl``."""
        return self.predictor_use_ssl

    def __repr__(self) -> str:
        return (
            f"PredictorConfig(predictor_host={self.predictor_host!r}, "
            f"predictor_protocol={self.predictor_protocol!r})"
        )


# A module global rather than KServe's ContextVar: model code also runs in executor threads,
# which do not inherit context variables, and the value is one per process either way.
_default: PredictorConfig | None = None


def set_predictor_config(config: PredictorConfig | None) -> None:
    """Set the process-wide predictor configuration (ModelServer does, from its flags)."""
    global _default
    _default = config


def get_predictor_config() -> PredictorConfig | None:
    """The process-wide predictor configuration, or None before a ModelServer set one."""
    return _default
