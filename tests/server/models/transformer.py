"""A KServe-style transformer: scales V1 instances, then the base class forwards to the predictor."""

import os

from modelport import Model


class Scaler(Model):
    def __init__(self, name):
        super().__init__(name, predictor_host=os.environ["TEST_PREDICTOR_HOST"])
        self.ready = True

    def preprocess(self, payload, headers=None):
        return {"instances": [[x / 10 for x in row] for row in payload["instances"]]}

    def postprocess(self, result, headers=None, response_headers=None):
        return {"predictions": result["predictions"], "transformed": True}
