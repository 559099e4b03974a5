"""Answers with the CPUs it may run on and whether it could allocate PROBE_ALLOCATE_MB."""

import os

from modelport import Model


class LimitsProbe(Model):
    def __init__(self, name):
        super().__init__(name)
        self.ready = True

    def predict(self, payload, headers=None):
        size = int(os.environ.get("PROBE_ALLOCATE_MB", "0")) << 20
        try:
            block = bytearray(size)
            allocated = len(block) == size
        except MemoryError:
            allocated = False
        return {"predictions": [sorted(os.sched_getaffinity(0)), allocated]}
