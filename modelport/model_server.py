"""KServe-compatible ``model_server`` module: the shared argument parser and ModelServer.

KServe custom models commonly do::

    parser = argparse.ArgumentParser(parents=[model_server.parser])
    args, _ = parser.parse_known_args()
    if args.configure_logging:
        logging.configure_logging(args.log_config_file)

so ``parser`` carries KServe's flag names and defaults (``modelport.server.kserve_flags``), and
``args`` holds what was given on this process's command line, read when first asked for
rather than at import (unknown flags are ignored, as in KServe).
"""

from __future__ import annotations

import argparse

from modelport.server.kserve_flags import command_line, parser, strtobool
from modelport.server.model_server import ModelServer

__all__ = ["ModelServer", "parser", "strtobool"]  # and ``args``, through __getattr__


def __getattr__(name: str) -> argparse.Namespace:
    # PEP 562: ``model_server.args`` parses sys.argv only when a script reads it.
    if name == "args":
        return command_line()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
