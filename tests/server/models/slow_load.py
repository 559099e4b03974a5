"""A custom model whose load takes a minute: for stopping a server while it prepares."""

import time

from modelport import Model


class SlowLoad(Model):
    def load(self):
        time.sleep(60)
        self.ready = True
        return True

    def predict(self, payload, headers=None):
        return {"predictions": [0]}
