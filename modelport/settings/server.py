"""A model server's settings: built once at startup from flags and ``MODELPORT_*`` environment
variables (see :mod:`modelport.settings`); everything else receives the settings object.
"""

from __future__ import annotations

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from modelport.settings import AUTO_BATCH_SIZE


class ServerSettings(BaseSettings):
    """Settings of one model server (``modelport serve`` / ``ModelServer``)."""

    model_config = SettingsConfigDict(
        env_prefix="MODELPORT_", frozen=True, extra="ignore", populate_by_name=True
    )

    host: str = Field("127.0.0.1", description="Address to bind the HTTP and gRPC ports to.")
    http_port: int = Field(8080, ge=0, le=65535, description="HTTP port; 0 picks a free one.")
    grpc_port: int = Field(
        8081, ge=0, le=65535, description="gRPC port; 0 picks a free one, -1 disables."
    )
    enable_grpc: bool = True
    workers: int = Field(1, ge=1, le=64, description="Worker processes sharing the ports.")
    max_body_bytes: int = Field(
        64 * 1024 * 1024, ge=1024, description="Largest request body accepted."
    )
    max_inflight: int = Field(
        512, ge=1, description="Requests one worker holds per model before answering 503."
    )
    max_batch_size: int | None = Field(
        None,
        ge=1,
        description="Adaptive batching: most requests merged per call (unset: "
        f"{AUTO_BATCH_SIZE} for row-wise runtimes such as scikit-learn, 1 otherwise).",
    )
    max_latency_ms: float = Field(
        0.0,
        ge=0,
        description="Adaptive batching: longest wait for a batch (0 = merge what is queued).",
    )
    log_level: str = "info"
    access_log: bool = False
    metrics_dir: str | None = Field(
        None,
        description="Directory for cross-process Prometheus metrics (made temporary if unset).",
    )
    # KServe's sklearnserver honours PREDICT_PROBA; keep that switch working.
    predict_proba: bool = Field(
        False,
        validation_alias=AliasChoices("predict_proba", "PREDICT_PROBA", "MODELPORT_PREDICT_PROBA"),
    )
    nthread: int = Field(
        1, ge=1, description="Library threads per worker for tree/ONNX/torch runtimes."
    )
    # Set by ``modelport up`` for the replicas it starts (never on a command line, where
    # every local user could read it): requests without it are refused.
    replica_key: SecretStr | None = Field(
        None, description="Key every request must carry in the modelport-replica-key header."
    )
