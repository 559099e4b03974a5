"""KServe-compatible ``model_server`` module: the shared argument parser and ModelServer.

KServe custom models commonly do::

    parser = argparse.ArgumentParser(parents=[model_server.parser])
    args, _ = parser.parse_known_args()

so ``parser`` carries KServe's flag names, and ``args`` holds what was given on this
process's command line (unknown flags are ignored, as in KServe).
"""

from __future__ import annotations

import argparse

from modelport.server.model_server import ModelServer

__all__ = ["ModelServer", "args", "parser"]

parser = argparse.ArgumentParser(add_help=False)
parser.add_argument("--http_port", type=int, default=None, help="REST port (default 8080).")
parser.add_argument("--grpc_port", type=int, default=None, help="gRPC port (default 8081).")
parser.add_argument("--workers", type=int, default=None, help="Worker processes (default 1).")
parser.add_argument(
    "--enable_grpc",
    type=lambda v: v.lower() in ("1", "true", "yes"),
    default=None,
    help="Serve gRPC too (default true).",
)
parser.add_argument("--model_name", default="model", help="Name to serve the model under.")
parser.add_argument("--model_dir", default=None, help="Directory holding the model files.")
parser.add_argument("--predictor_host", default=None, help="Predictor host:port for transformers.")
parser.add_argument("--protocol", default="v1", help="Protocol to reach the predictor (v1|v2).")
parser.add_argument(
    "--max_threads", type=int, default=None, help="Accepted for KServe compatibility."
)

args, _ = parser.parse_known_args()
