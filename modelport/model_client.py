"""Forwarding from a transformer to its predictor over REST (KServe's predictor_host)."""

from __future__ import annotations

from typing import Any

import httpx
import orjson

from modelport.errors import InferenceError, InvalidInput
from modelport.protocol import v2
from modelport.protocol.infer import InferRequest


async def forward_to_predictor(
    client: httpx.AsyncClient,
    host: str,
    model_name: str,
    protocol: str,
    payload: Any,
    verb: str,
) -> Any:
    """Send the payload to ``host`` and return the decoded answer (dict or InferResponse)."""
    base = host if host.startswith(("http://", "https://")) else f"http://{host}"
    headers = {"content-type": "application/json"}
    if protocol == "v2" or isinstance(payload, InferRequest):
        if not isinstance(payload, InferRequest):
            raise InferenceError("A V2 predictor needs an InferRequest from preprocess.")
        resp = await client.post(
            f"{base}/v2/models/{model_name}/infer",
            content=v2.encode_request(payload),
            headers=headers,
        )
        _raise_for(resp)
        return v2.decode_response(resp.content)
    resp = await client.post(
        f"{base}/v1/models/{model_name}:{verb}", content=orjson.dumps(payload), headers=headers
    )
    _raise_for(resp)
    return orjson.loads(resp.content)


def _raise_for(resp: httpx.Response) -> None:
    if resp.status_code < 400:
        return
    message = f"Predictor answered {resp.status_code}: {resp.text[:500]}"
    # The predictor judged the (transformed) input bad: that is still the client's input.
    if resp.status_code == 400:
        raise InvalidInput(message)
    raise InferenceError(message)
