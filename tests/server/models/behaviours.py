"""A custom model for server tests: each input value triggers one behaviour.

V1 instances (numbers): 0..n → echoed doubled; -1 → raise; -2 → sleep 0.5 s (async);
-3 → kill this worker process; -4 → return a value that is not a tensor.
V2: the first input is returned as output "echo" unchanged (identity), any datatype.
"""

import asyncio
import os

from modelport import InferOutput, InferRequest, InferResponse, Model


class Behaviours(Model):
    def load(self):
        self.ready = True
        return True

    async def predict(self, payload, headers=None):
        if isinstance(payload, InferRequest):
            first = payload.inputs[0]
            if payload.parameters.get("sleep"):
                await asyncio.sleep(float(payload.parameters["sleep"]))
            out = InferOutput("echo", first.shape, first.datatype, first.as_numpy())
            rows = InferOutput.from_numpy("pid", __import__("numpy").array([os.getpid()]))
            return InferResponse(payload.id, self.name, [out, rows])
        values = payload["instances"]
        if -1 in values:
            raise RuntimeError("asked to fail")
        if -2 in values:
            await asyncio.sleep(0.5)
        if -3 in values:
            os._exit(3)
        if -4 in values:
            return {"predictions": object()}
        return {"predictions": [v * 2 for v in values], "pid": os.getpid()}
