"""A KServe-style transformer: divides every feature by 10, the predictor does the rest.

The platform tells it where its predictor is; the class does not need to know.
"""

from modelport import Model


class Scaler(Model):
    def __init__(self, name):
        super().__init__(name)
        self.ready = True

    def preprocess(self, payload, headers=None):
        return {"instances": [[x / 10 for x in row] for row in payload["instances"]]}

    def postprocess(self, result, headers=None, response_headers=None):
        return {"predictions": result["predictions"], "transformed": True}
