"""CPU time of the whole machine, to tell when processes other than the benchmark's own
(a test suite, a build) ran beside it: on 2 CPUs they shift the figures more than anything
measured."""

from __future__ import annotations

import os
from pathlib import Path

FOREIGN_LIMIT = 0.25  # cores used by other processes that make a measurement "disturbed"


def machine_busy_seconds() -> float:
    """CPU seconds all CPUs have spent busy since boot (from the first line of /proc/stat)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")
