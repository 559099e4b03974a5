"""Answers with the names of its environment variables (to check what replicas inherit)."""

import os

from modelport import Model


class EnvProbe(Model):
    def __init__(self, name):
        super().__init__(name)
        self.ready = True

    def predict(self, payload, headers=None):
        return {"predictions": sorted(os.environ)}
