"""Names, ports and targets shared by the control-plane scenario's modules."""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass, field
from pathlib import Path

from bench.lib import procs

BENCH = Path(__file__).resolve().parent.parent
REPO = BENCH.parent

log = procs.log
HOST = procs.HOST

ADMIN = "admin@example.com"
ADMIN_PASSWORD = "bench-admin-password-1"
NS = "bench"
GW_SERVICE = "gw-iris"
DOMAIN = "example.com"
LEVELS = {"c64": (2, 64), "c8": (2, 8), "c1": (1, 1)}
GW_VARIANTS = ("host", "serving", "direct")
GW_LABELS = {
    "host": "gateway, Host header",
    "serving": "gateway, /serving path",
    "direct": "model server direct",
}
TARGETS = {
    "cold_p50_s": 0.5,
    "gateway_ratio": 0.70,
    "gateway_added_p50_ms": 1.0,
    "get_isvc_ms": 200.0,
}
CLK_TCK = os.sysconf("SC_CLK_TCK")
PLATFORM_START_TIMEOUT = 90.0


@dataclass
class Ctx:
    """What the parts of one run share: options, interpreter, folders, model and bodies."""

    args: argparse.Namespace
    py: str
    work: Path
    logs: Path
    model_dir: Path = Path()
    expected: list[int] = field(default_factory=list)
    v2_file: Path = Path()
    v2_body: bytes = b""
    v1_body: bytes = b""
