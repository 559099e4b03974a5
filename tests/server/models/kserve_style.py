"""A predictor written the way KServe's samples are (python/custom_model/model.py), with only
``kserve`` changed to ``modelport`` in its imports.

It multiplies numbers by a factor read from ``--model_dir`` (fetched with Storage.download)
and upper-cases strings; V1 and V2 go through get_predict_input/get_predict_response.
"""

# ruff: noqa: UP006, UP007, UP035  (typing.Dict and Union, as KServe's samples write them)

import argparse
import os
import tempfile
import time
from typing import Dict, Union

from modelport import InferRequest, InferResponse, Model, ModelServer, logging, model_server
from modelport.errors import InvalidInput
from modelport.logging import logger
from modelport.protocol.grpc.grpc_predict_v2_pb2 import ModelInferRequest
from modelport.storage import Storage
from modelport.utils.utils import generate_uuid, get_predict_input, get_predict_response


class KServeStyleModel(Model):
    def __init__(self, name: str):
        super().__init__(name, return_response_headers=True)
        self.factor = 2
        self.ready = False
        self.load()

    def load(self):
        if args.model_dir:
            model_dir = Storage.download(args.model_dir, tempfile.mkdtemp())
            with open(os.path.join(model_dir, "factor.txt")) as f:
                self.factor = int(f.read())
        logger.info("loaded %s with factor %d", self.name, self.factor)
        self.ready = True

    def preprocess(
        self, payload: Union[Dict, InferRequest, ModelInferRequest], headers: Dict[str, str] = None
    ):
        if isinstance(payload, Dict) and "instances" in payload:
            headers["request-type"] = "v1"
        elif not isinstance(payload, InferRequest):
            raise InvalidInput("invalid payload")
        return payload

    def predict(
        self,
        payload: Union[Dict, InferRequest],
        headers: Dict[str, str] = None,
        response_headers: Dict[str, str] = None,
    ) -> Union[Dict, InferResponse]:
        start = time.time()
        data = get_predict_input(payload)
        if isinstance(data, list):
            result = [s.upper() for s in data]
        else:
            result = data * self.factor
        # The samples fill response_headers without a None check.
        response_headers.update({"prediction-time-latency": f"{(time.time() - start) * 1000}"})
        # preprocess marked V1 requests in the headers, as the samples do.
        kind = headers.get("request-type", "v2")
        logger.info(
            "predicted %d rows for a %s request, trace %s", len(result), kind, generate_uuid()
        )
        return get_predict_response(payload, result, self.name)


parser = argparse.ArgumentParser(parents=[model_server.parser])
args, _ = parser.parse_known_args()

if __name__ == "__main__":
    if args.configure_logging:
        logging.configure_logging(args.log_config_file)
    model = KServeStyleModel(args.model_name)
    model.load()
    ModelServer().start([model])
