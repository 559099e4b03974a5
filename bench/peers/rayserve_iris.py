"""The Ray Serve peer of bench/ray: the iris model behind Ray Serve's HTTP proxy, answering
the Open Inference Protocol V2 infer that modelport answers.

Run with the Ray Serve venv's interpreter (bench/.venvs/rayserve), as a driver that deploys
and exits; the application lives on in the cluster (Serve's controller is detached):

    python bench/peers/rayserve_iris.py --address HOST:PORT --http-port P \
        --model DIR/model.joblib --app iris --route-prefix / --replicas 2
    python bench/peers/rayserve_iris.py ... --app cold --route-prefix /cold --from-zero
    python bench/peers/rayserve_iris.py --address HOST:PORT --http-port P --delete iris

The proxy listens on 127.0.0.1 and on the head node only (two nodes of this machine would
otherwise both bind the port). The handler is an async `__call__` on a Starlette request
(no FastAPI app: less work per request for the peer), one predict per request: Ray Serve
batches only where a deployment asks for it with `@serve.batch`.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from typing import Any, cast

import joblib
import numpy as np
import ray
from ray import serve
from ray.serve.deployment import Deployment
from starlette.requests import Request
from starlette.responses import JSONResponse

MODEL_NAME = "sklearn-iris"


class IrisV2:
    """One replica: the scikit-learn model, loaded once, and the V2 infer route."""

    def __init__(self, model_file: str) -> None:
        self.model = joblib.load(model_file)
        self.suffix = f"/v2/models/{MODEL_NAME}/infer"

    async def __call__(self, request: Request) -> JSONResponse:
        if not request.url.path.endswith(self.suffix):
            return JSONResponse({"error": "not found"}, status_code=404)
        if request.method != "POST":
            return JSONResponse({"error": "use POST"}, status_code=405, headers={"Allow": "POST"})
        try:
            body = await request.json()
            tensor = body["inputs"][0]
            rows = np.asarray(tensor["data"], dtype=np.float32).reshape(tensor["shape"])
            classes = self.model.predict(rows)
        except (ValueError, KeyError, IndexError, TypeError) as e:
            return JSONResponse({"error": f"bad request: {e}"}, status_code=400)
        output = {"name": "output-0", "shape": [len(classes)], "datatype": "INT64"}
        return JSONResponse(
            {"model_name": MODEL_NAME, "outputs": [{**output, "data": classes.tolist()}]}
        )


# Called on a class, serve.deployment returns a Deployment; its overloads make mypy pick the
# decorator-factory one.
IRIS = cast(Deployment, serve.deployment(IrisV2))


def autoscaling(args: argparse.Namespace) -> dict[str, Any]:
    """From zero to one replica on the first request, and back to zero when idle."""
    return {
        "min_replicas": 0,
        "initial_replicas": 0,
        "max_replicas": 1,
        "upscale_delay_s": 0,
        # Averaged over 30 s by default: the replica would stay up that long after each try.
        "look_back_period_s": args.downscale_delay,
        "downscale_delay_s": args.downscale_delay,
        "downscale_to_zero_delay_s": args.downscale_delay,
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--address", required=True, help="the cluster's GCS, HOST:PORT")
    p.add_argument("--http-port", type=int, required=True)
    p.add_argument("--model", help="path of model.joblib")
    p.add_argument("--app")
    p.add_argument("--delete", metavar="APP", help="delete this application and exit")
    p.add_argument("--route-prefix", default="/")
    p.add_argument("--replicas", type=int, default=1)
    p.add_argument("--num-cpus", type=float, default=1.0, help="per replica, as modelport's")
    p.add_argument("--from-zero", action="store_true", help="autoscale 0..1 (cold starts)")
    p.add_argument("--downscale-delay", type=float, default=2.0)
    p.add_argument(
        "--max-ongoing-requests", type=int, help="per replica [default: Ray Serve's own]"
    )
    args = p.parse_args()
    if not args.delete and not (args.model and args.app):
        p.error("--model and --app are needed to deploy")
    ray.init(address=args.address, logging_level=logging.ERROR, log_to_driver=False)
    serve.start(
        proxy_location="HeadOnly", http_options={"host": "127.0.0.1", "port": args.http_port}
    )
    if args.delete:
        serve.delete(args.delete)
        print(json.dumps({"deleted": args.delete}))
        return 0
    options: dict[str, Any] = {"ray_actor_options": {"num_cpus": args.num_cpus}}
    if args.max_ongoing_requests:
        options["max_ongoing_requests"] = args.max_ongoing_requests
    if args.from_zero:
        options["autoscaling_config"] = autoscaling(args)
    else:
        options["num_replicas"] = args.replicas
    app = IRIS.options(**options).bind(args.model)
    serve.run(app, name=args.app, route_prefix=args.route_prefix, blocking=False)
    print(json.dumps({"app": args.app, "deployment": options, "ray": ray.__version__}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
