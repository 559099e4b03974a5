"""KServe's model-server command-line flags (python/kserve/kserve/model_server.py), which a
KServe-style script reads through ``modelport.model_server.parser``/``args``.

Flags marked "accepted" have no effect here; they parse so scripts that pass or read them keep
working. The command line is read once, on first use, never at import.
"""

from __future__ import annotations

import argparse
import functools


def strtobool(value: str) -> bool:
    """KServe's boolean flag values: y/yes/t/true/on/1 and n/no/f/false/off/0."""
    lowered = value.lower()
    if lowered in ("y", "yes", "t", "true", "on", "1"):
        return True
    if lowered in ("n", "no", "f", "false", "off", "0"):
        return False
    raise ValueError(f"invalid truth value {value!r}")


parser = argparse.ArgumentParser(add_help=False)
# Model server flags (the ModelServer defaults live in ServerSettings, hence None here).
parser.add_argument("--http_port", type=int, default=None, help="REST port (default 8080).")
parser.add_argument("--grpc_port", type=int, default=None, help="gRPC port (default 8081).")
parser.add_argument("--workers", type=int, default=None, help="Worker processes (default 1).")
parser.add_argument(
    "--enable_grpc", type=strtobool, default=None, help="Serve gRPC too (default true)."
)
parser.add_argument(
    "--configure_logging",
    type=strtobool,
    default=True,
    help="Configure the modelport and uvicorn loggers (modelport.logging).",
)
parser.add_argument(
    "--log_config_file",
    default=None,
    help="Logging configuration: a .json or .yaml dictConfig, or an INI fileConfig.",
)
parser.add_argument(
    "--max_threads", type=int, default=None, help="Accepted for KServe compatibility."
)
parser.add_argument("--max_asyncio_workers", type=int, default=None, help="Accepted.")
parser.add_argument("--enable_docs_url", type=strtobool, default=False, help="Accepted.")
parser.add_argument("--enable_latency_logging", type=strtobool, default=True, help="Accepted.")
parser.add_argument("--access_log_format", default=None, help="Accepted.")
# Model flags.
parser.add_argument("--model_name", default="model", help="Name to serve the model under.")
parser.add_argument("--model_dir", default=None, help="Directory holding the model files.")
parser.add_argument("--predictor_host", default=None, help="Predictor host:port for transformers.")
parser.add_argument(
    "--protocol", default="v1", help="Deprecated by KServe for --predictor_protocol."
)
parser.add_argument(
    "--predictor_protocol", default="v1", help="Protocol to reach the predictor (v1|v2)."
)
parser.add_argument(
    "--predictor_use_ssl", type=strtobool, default=False, help="Reach the predictor over https."
)
parser.add_argument(
    "--predictor_request_timeout_seconds",
    type=float,
    default=600,
    help="Timeout of a request to the predictor.",
)
parser.add_argument(
    "--predictor_request_retries",
    type=int,
    default=0,
    help="Retries of a request whose connection to the predictor failed.",
)
parser.add_argument("--enable_predictor_health_check", action="store_true", help="Accepted.")
# The huggingface runtime's flags (KServe's python/huggingfaceserver/huggingfaceserver/
# __main__.py), read by ``python -m modelport.server.huggingface_server``. A parser of their
# own: KServe scripts extend ``parser`` with flags such as --task or --dtype themselves
# (argparse refuses a flag defined twice), as KServe's huggingfaceserver does.
huggingface_parser = argparse.ArgumentParser(parents=[parser], add_help=False)
huggingface_parser.add_argument(
    "--model_id", default=None, help="Hugging Face model id (else --model_dir)."
)
huggingface_parser.add_argument(
    "--model_revision", default=None, help="Hugging Face model revision."
)
huggingface_parser.add_argument(
    "--tokenizer_revision", default=None, help="Hugging Face tokenizer revision."
)
huggingface_parser.add_argument(
    "--max_length", dest="max_model_len", type=int, default=None, help="Old --max_model_len."
)
huggingface_parser.add_argument(
    "--max_model_len", type=int, default=None, help="Tokens a request may use, prompt included."
)
huggingface_parser.add_argument(
    "--task", default=None, help="text_generation, text_embedding, fill_mask..."
)
huggingface_parser.add_argument(
    "--dtype", default="auto", help="auto|float16|float32|bfloat16|float|half."
)
huggingface_parser.add_argument("--backend", default="auto", help="auto|huggingface|vllm.")
huggingface_parser.add_argument(
    "--trust_remote_code", action="store_true", help="Run the model's own code."
)
huggingface_parser.add_argument(
    "--return_probabilities", action="store_true", help="Probabilities instead of class ids."
)


@functools.cache
def command_line() -> argparse.Namespace:
    """The flags given on this process's command line; unknown ones are ignored, as KServe
    does."""
    args, _ = parser.parse_known_args()
    return args


@functools.cache
def huggingface_command_line() -> argparse.Namespace:
    """The model server's and the huggingface runtime's flags on this command line."""
    args, _ = huggingface_parser.parse_known_args()
    return args
