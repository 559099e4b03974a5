"""A transformer written the way KServe's samples are (python/custom_transformer/model.py),
with only ``kserve`` changed to ``modelport``: it divides V1 or V2 rows by 10 and sends them
to ``--predictor_host`` over ``--predictor_protocol``, converting the answer for V1 callers.
"""

# ruff: noqa: UP006, UP007, UP035  (typing.Dict and Union, as KServe's samples write them)

import argparse
from typing import Dict, Union

import numpy

from modelport import (
    InferInput,
    InferRequest,
    InferResponse,
    Model,
    ModelServer,
    logging,
    model_server,
)
from modelport.model import PredictorProtocol


class ScalingTransformer(Model):
    def __init__(self, name: str):
        super().__init__(name, return_response_headers=True)
        self.ready = True

    def preprocess(
        self, payload: Union[Dict, InferRequest], headers: Dict[str, str] = None
    ) -> Union[Dict, InferRequest]:
        if isinstance(payload, InferRequest):
            rows = payload.inputs[0].as_numpy()
        else:
            headers["request-type"] = "v1"
            rows = numpy.asarray(payload["instances"])
        input_tensors = rows / 10
        infer_inputs = [
            InferInput(
                name="INPUT__0",
                datatype="FP64",
                shape=list(input_tensors.shape),
                data=input_tensors,
            )
        ]
        infer_request = InferRequest(model_name=self.name, infer_inputs=infer_inputs)
        if self.predictor_config.predictor_protocol == PredictorProtocol.REST_V1.value:
            return {"instances": input_tensors.tolist()}
        return infer_request

    def postprocess(
        self,
        infer_response: Union[Dict, InferResponse],
        headers: Dict[str, str] = None,
        response_headers: Dict[str, str] = None,
    ) -> Union[Dict, InferResponse]:
        if "request-type" in headers and headers["request-type"] == "v1":
            if self.predictor_config.predictor_protocol == PredictorProtocol.REST_V1.value:
                return infer_response
            return {"predictions": infer_response.outputs[0].as_numpy().tolist()}
        return infer_response


parser = argparse.ArgumentParser(parents=[model_server.parser])
args, _ = parser.parse_known_args()

if __name__ == "__main__":
    if args.configure_logging:
        logging.configure_logging(args.log_config_file)
    model = ScalingTransformer(args.model_name)
    ModelServer().start([model])
