"""``modelport serve``: one model server, no authentication (like KServe's model servers)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from modelport.cli.failure import unusable
from modelport.errors import ModelportError

ModelPath = Annotated[
    str, typer.Argument(help="Model file or directory (local path or file:// URI).")
]
Name = Annotated[
    str | None,
    typer.Option(
        "--name", help="Name to serve the model under (default: the file or directory name)."
    ),
]
Format = Annotated[
    str | None,
    typer.Option(
        "--format",
        help="sklearn, xgboost, lightgbm, onnx, pytorch, huggingface or custom "
        "(default: detected).",
    ),
]
HttpPort = Annotated[int, typer.Option("--http-port", help="REST port; 0 picks a free port.")]
GrpcPort = Annotated[
    int, typer.Option("--grpc-port", help="gRPC port; 0 picks a free port, -1 disables gRPC.")
]
MaxBatchSize = Annotated[
    int | None,
    typer.Option(
        "--max-batch-size",
        help="Adaptive batching: most requests merged into one model call; 1 turns it off "
        "[default: 32 for scikit-learn/XGBoost/LightGBM, else 1].",
        show_default=False,
    ),
]
MaxLatencyMs = Annotated[
    float,
    typer.Option("--max-latency-ms", help="Adaptive batching: longest wait for a batch to fill."),
]
MaxInflight = Annotated[
    int,
    typer.Option("--max-inflight", help="Requests per worker in flight before answering 503."),
]
MaxBodyMb = Annotated[
    float, typer.Option("--max-body-mb", help="Largest request body accepted, in MiB.")
]
PredictProba = Annotated[
    bool,
    typer.Option("--predict-proba", help="scikit-learn: return predict_proba instead of predict."),
]
LogLevel = Annotated[str, typer.Option("--log-level", help="debug logs one line per request.")]


def serve(
    path: ModelPath,
    name: Name = None,
    model_format: Format = None,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    http_port: HttpPort = 8080,
    grpc_port: GrpcPort = 8081,
    workers: Annotated[int, typer.Option(help="Worker processes sharing the ports.")] = 1,
    max_batch_size: MaxBatchSize = None,
    max_latency_ms: MaxLatencyMs = 0.0,
    max_inflight: MaxInflight = 512,
    max_body_mb: MaxBodyMb = 64.0,
    predict_proba: PredictProba = False,
    log_level: LogLevel = "info",
) -> None:
    """Serve one model over REST (V1 + V2) and gRPC (V2)."""
    from pydantic import ValidationError

    from modelport.runtimes import FORMATS, detect_format
    from modelport.server.entry import serve_path
    from modelport.server.model_server import StartupError
    from modelport.settings import ServerSettings

    model_path = Path(path.removeprefix("file://")).expanduser()
    if not model_path.exists():
        unusable(f"model path {model_path} does not exist")
    if model_format is not None and model_format not in FORMATS:
        unusable(f"unknown format {model_format!r}; choose one of {', '.join(FORMATS)}")
    try:
        fmt = model_format or detect_format(model_path)
        settings = ServerSettings(
            host=host,
            http_port=http_port,
            grpc_port=max(grpc_port, 0),
            enable_grpc=grpc_port >= 0,
            workers=workers,
            max_batch_size=max_batch_size,
            max_latency_ms=max_latency_ms,
            max_inflight=max_inflight,
            max_body_bytes=int(max_body_mb * 1024 * 1024),
            predict_proba=predict_proba,
            log_level=log_level.lower(),
        )
    except ModelportError as exc:
        unusable(str(exc))
    except ValidationError as exc:
        first = exc.errors()[0]
        unusable(f"invalid --{str(first['loc'][0]).replace('_', '-')}: {first['msg']}")
    try:
        code = serve_path(model_path, name or model_path.stem, fmt, settings)
    except StartupError as exc:
        unusable(str(exc))
    raise typer.Exit(code)
