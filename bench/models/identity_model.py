"""Identity model for the binary tensor extension round-trip benchmark (bench/run.py).

Served with:
    modelport serve bench/models/identity_model.py --name identity --format custom
"""

import modelport


class Identity(modelport.Model):
    def __init__(self, name: str = "identity"):
        super().__init__(name)
        self.ready = False

    def load(self) -> bool:
        self.ready = True
        return self.ready

    def predict(self, payload, headers=None):
        return payload
