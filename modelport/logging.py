"""KServe's ``kserve.logging``: the package logger and ``configure_logging``.

Model code written for KServe does::

    from modelport import logging                 # was: from kserve import logging
    from modelport.logging import logger          # was: from kserve.logging import logger

    if args.configure_logging:
        logging.configure_logging(args.log_config_file)
    logger.info("loading")

``logger`` is the ``modelport`` logger, the parent of every logger the server uses (as
``kserve`` is in KServe), so one configuration covers the model's lines and the server's.
The default configuration and the file handling follow python/kserve/kserve/logging.py.
"""

from __future__ import annotations

import json
import logging
import logging.config
from typing import Any

LOGGER_NAME = "modelport"
TRACE_LOGGER_NAME = "modelport.trace"
LOGGER_FORMAT = (
    "%(asctime)s.%(msecs)03d %(process)s %(name)s "
    "%(levelname)s [%(filename)s:%(funcName)s():%(lineno)s] %(message)s"
)
TRACE_LOGGER_FORMAT = "%(asctime)s.%(msecs)03d %(process)s %(name)s %(message)s"
LOGGER_DATE_FORMAT = "%Y-%m-%d %H:%M:%S"
# KServe reads KSERVE_LOGLEVEL here; modelport reads no environment outside its settings, so
# another level is a --log_config_file away.
LOG_LEVEL = "INFO"

LOG_CONFIG: dict[str, Any] = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "modelport": {
            "()": "logging.Formatter",
            "fmt": LOGGER_FORMAT,
            "datefmt": LOGGER_DATE_FORMAT,
        },
        "modelport_trace": {
            "()": "logging.Formatter",
            "fmt": TRACE_LOGGER_FORMAT,
            "datefmt": LOGGER_DATE_FORMAT,
        },
        "uvicorn": {
            "()": "uvicorn.logging.DefaultFormatter",
            "datefmt": LOGGER_DATE_FORMAT,
            "fmt": "%(asctime)s.%(msecs)03d %(process)s %(name)s %(levelprefix)s %(message)s",
            "use_colors": None,
        },
    },
    "handlers": {
        "modelport": {
            "formatter": "modelport",
            "class": "logging.StreamHandler",
            "stream": "ext://sys.stderr",
        },
        "modelport_trace": {
            "formatter": "modelport_trace",
            "class": "logging.StreamHandler",
            "stream": "ext://sys.stderr",
        },
        "uvicorn": {
            "formatter": "uvicorn",
            "class": "logging.StreamHandler",
            "stream": "ext://sys.stderr",
        },
    },
    "loggers": {
        LOGGER_NAME: {"handlers": ["modelport"], "level": LOG_LEVEL, "propagate": False},
        TRACE_LOGGER_NAME: {
            "handlers": ["modelport_trace"],
            "level": LOG_LEVEL,
            "propagate": False,
        },
        "uvicorn": {"handlers": ["uvicorn"], "level": "INFO", "propagate": False},
        "uvicorn.error": {"level": "INFO"},
    },
}

logger = logging.getLogger(LOGGER_NAME)
trace_logger = logging.getLogger(TRACE_LOGGER_NAME)


def configure_logging(log_config: dict[str, Any] | str | None = None) -> None:
    """Configure the modelport and uvicorn loggers, as KServe's ``configure_logging`` does.

    ``None`` applies :data:`LOG_CONFIG`, unless ``logger`` already has handlers (the user
    configured it). A dict goes to :func:`logging.config.dictConfig`; a path ending in
    ``.json``, ``.yaml`` or ``.yml`` is read as such a dict; any other path is an INI file for
    :func:`logging.config.fileConfig`.
    """
    if log_config is None and logger.hasHandlers():
        return
    if log_config is None:
        logging.config.dictConfig(LOG_CONFIG)
    elif isinstance(log_config, dict):
        logging.config.dictConfig(log_config)
    elif log_config.endswith(".json"):
        with open(log_config) as file:
            logging.config.dictConfig(json.load(file))
    elif log_config.endswith((".yaml", ".yml")):
        import yaml

        with open(log_config) as file:
            logging.config.dictConfig(yaml.safe_load(file))
    else:
        logging.config.fileConfig(log_config, disable_existing_loggers=False)
