"""Stand-in for KServe's sklearnserver, used only when its source is not available.

KServe does not publish `sklearnserver` on PyPI; PEERS.md allows an equivalent small
`kserve.Model` subclass that loads `model.joblib` and calls `predict`. This one accepts the
same command line as `python -m sklearnserver` and serves with kserve's own ModelServer:

    python bench/peers/kserve_sklearn.py --model_dir DIR --model_name sklearn-iris \
        --http_port P --grpc_port G --workers N
"""

import argparse
import pathlib
from typing import Any

import joblib
import kserve
from kserve import logging as kserve_logging
from kserve.errors import InferenceError, ModelMissingError
from kserve.utils.utils import get_predict_input, get_predict_response


class JoblibSKLearnModel(kserve.Model):
    def __init__(self, name: str, model_dir: str) -> None:
        super().__init__(name)
        self.model_dir = pathlib.Path(model_dir)
        self._model: Any = None
        self.ready = False

    def load(self) -> bool:
        files = [
            p
            for p in self.model_dir.iterdir()
            if p.is_file() and p.suffix in (".joblib", ".pkl", ".pickle")
        ]
        if len(files) != 1:
            raise ModelMissingError(str(self.model_dir))
        self._model = joblib.load(files[0])
        self.ready = True
        return self.ready

    def predict(self, payload: Any, headers: dict[str, str] | None = None) -> Any:
        try:
            rows = get_predict_input(payload)
            return get_predict_response(payload, self._model.predict(rows), self.name)
        except Exception as e:  # same mapping as the upstream server
            raise InferenceError(str(e)) from e


def main() -> None:
    parser = argparse.ArgumentParser(parents=[kserve.model_server.parser])
    parser.add_argument("--model_dir", required=True)
    args, _ = parser.parse_known_args()
    if args.configure_logging:
        kserve_logging.configure_logging(args.log_config_file)
    model = JoblibSKLearnModel(args.model_name, args.model_dir)
    model.load()
    kserve.ModelServer().start([model])


if __name__ == "__main__":
    main()
