"""A model that takes 200 ms per request, so concurrency builds up under load."""

import time

from modelport import Model


class Slow(Model):
    def __init__(self, name):
        super().__init__(name)
        self.ready = True

    def predict(self, payload, headers=None):
        time.sleep(0.2)
        return {"predictions": [0 for _ in payload["instances"]]}
