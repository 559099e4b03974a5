"""A transformer model forwarding to a predictor server, both real processes."""

from __future__ import annotations

import httpx
import pytest

from tests.conftest import TEST_MODELS, ServerProcess, serve_argv


@pytest.fixture
def transformer(iris_server: ServerProcess, start_server) -> ServerProcess:
    """The transformer model of tests/server/models, forwarding to the iris server."""
    argv = serve_argv(
        TEST_MODELS / "transformer.py", "sklearn-iris", "--format", "custom", "--grpc-port", "-1"
    )
    return start_server(argv, env={"TEST_PREDICTOR_HOST": f"127.0.0.1:{iris_server.http_port}"})


def test_transformer_forwards_preprocessed_request(iris_server: ServerProcess, transformer):
    rows = [[68, 28, 48, 14], [51, 35, 14, 2]]
    with transformer.client() as c:
        r = c.post("/v1/models/sklearn-iris:predict", json={"instances": rows})
    assert r.status_code == 200, r.text
    direct = httpx.post(
        f"{iris_server.url}/v1/models/sklearn-iris:predict",
        json={"instances": [[x / 10 for x in row] for row in rows]},
    ).json()
    assert r.json() == {"predictions": direct["predictions"], "transformed": True}


def test_transformer_reports_predictor_errors(transformer):
    with transformer.client() as c:
        r = c.post("/v1/models/sklearn-iris:predict", json={"instances": [[1, 2, 3]]})
    assert r.status_code == 400
    assert "Predictor answered 400" in r.json()["error"]
