"""A custom model written for KServe's Python SDK; only the import line was changed.

Run it alone:  python examples/custom_model/model.py --model_name temperature --http_port 8080
Then:          curl -d '{"instances": [0, 37, 100]}' localhost:8080/v1/models/temperature:predict
"""

import argparse
from typing import Dict, Union

import numpy as np

# Was: from kserve import Model, ModelServer, model_server, InferRequest, InferOutput, InferResponse
from modelport import InferOutput, InferRequest, InferResponse, Model, ModelServer, model_server


class TemperatureConverter(Model):
    def __init__(self, name: str):
        super().__init__(name)
        self.ready = False
        self.load()

    def load(self):
        # A real model would read weights here; a unit conversion keeps the example small.
        self.scale, self.offset = 9.0 / 5.0, 32.0
        self.ready = True

    def preprocess(self, payload: Union[Dict, InferRequest], headers: Dict[str, str] = None):
        if isinstance(payload, InferRequest):
            return payload
        return {"instances": np.asarray(payload["instances"], dtype=np.float64)}

    def predict(self, payload: Union[Dict, InferRequest], headers: Dict[str, str] = None):
        if isinstance(payload, InferRequest):
            celsius = payload.inputs[0].as_numpy().astype(np.float64)
            output = InferOutput(name="fahrenheit", shape=list(celsius.shape), datatype="FP64")
            output.set_data_from_numpy(celsius * self.scale + self.offset)
            return InferResponse(
                model_name=self.name, infer_outputs=[output], response_id=payload.id
            )
        fahrenheit = payload["instances"] * self.scale + self.offset
        return {"predictions": fahrenheit.tolist()}


parser = argparse.ArgumentParser(parents=[model_server.parser])
args, _ = parser.parse_known_args()

if __name__ == "__main__":
    model = TemperatureConverter(args.model_name)
    ModelServer().start([model])
